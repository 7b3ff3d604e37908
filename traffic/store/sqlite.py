"""The embedded default store: one SQLite file in WAL mode.

Writes are few and small to spare SD cards: the collector commits once per ``save_interval``, and
a commit touches as few pages as it can. Buckets still filling (the current 5 minutes, hour, day
and month of each key) live in the small ``recent`` table, so a commit changes one page there
instead of one page per resolution in ``rollups``; a bucket moves to ``rollups`` when the next
one starts. The rows of ``intervals`` and ``rollups`` are ordered by time before key, so a save
appends its rows in one place in each table, not in one place per key.
"""

import os
import sqlite3
from _thread import RLock
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from zoneinfo import ZoneInfo

from traffic import log
from traffic.counters import CounterState, Delta
from traffic.hints import Any
from traffic.runtime import StatusFile, automatic_runtime_dir, read_document
from traffic.store import (
    ALERT_EVENT_KINDS,
    TABLES,
    AlertCounts,
    Chunk,
    Delivery,
    Event,
    GaugeSample,
    Key,
    NoStore,
    StoreError,
)
from traffic.store.rollup import (
    RESOLUTION_CODES,
    RollupIncrements,
    Spread,
    cover,
    gauge_rows,
    gauge_value,
    raw_share,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

    from traffic.store.unfolded import Unfolded

PAGE_SIZE = 512
"""Small pages: each page a save changes is written whole to the WAL, and on an SD card every
written byte counts."""
WRITER_CHECKPOINT_PAGES = 20_000
"""How many WAL pages the collector's connection lets gather before SQLite copies them into
the file (SQLite's default is 1000, about a day of saves at the defaults). A checkpoint
rewrites each part of the file that any of those pages belongs to, and once the daily prune
has freed pages across the file the saves' new pages are scattered: measured on a year of
four interfaces, each checkpoint writes 2 to 4 MB, whether it holds one day or ten. At 20,000
(about 10 MB of WAL, some ten days of saves) that is a tenth of a checkpoint a day instead of
two: about 4.7 MB written a day instead of 8."""
MIGRATIONS: list[str] = [
    # 1: raw intervals, rollups per local bucket, tracker state, settings
    """
    CREATE TABLE intervals (
        key TEXT NOT NULL, start INTEGER NOT NULL, end INTEGER NOT NULL,
        rx INTEGER NOT NULL, tx INTEGER NOT NULL,
        PRIMARY KEY (key, start)
    ) WITHOUT ROWID;
    CREATE TABLE rollups (
        key TEXT NOT NULL, resolution INTEGER NOT NULL, bucket INTEGER NOT NULL,
        rx INTEGER NOT NULL, tx INTEGER NOT NULL,
        PRIMARY KEY (key, resolution, bucket)
    ) WITHOUT ROWID;
    CREATE TABLE tracker (
        key TEXT PRIMARY KEY, life TEXT NOT NULL, at INTEGER NOT NULL,
        rx INTEGER NOT NULL, tx INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
    """,
    # 2: the newest bucket of each key and resolution, kept apart from the rollups
    """
    CREATE TABLE recent (
        key TEXT NOT NULL, resolution INTEGER NOT NULL, bucket INTEGER NOT NULL,
        rx INTEGER NOT NULL, tx INTEGER NOT NULL,
        PRIMARY KEY (key, resolution)
    ) WITHOUT ROWID;
    """,
    # 3: what happened to the link (keeper) and what was sent (alerts)
    """
    CREATE TABLE events (
        id INTEGER PRIMARY KEY, at INTEGER NOT NULL, kind TEXT NOT NULL,
        duration_ms INTEGER, detail TEXT NOT NULL
    );
    CREATE INDEX events_at ON events (at);
    """,
    # 4: held falls of a router's totals; gauges (signal, status) per 5 minutes
    """
    ALTER TABLE tracker ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE gauges (
        key TEXT NOT NULL, name TEXT NOT NULL, bucket INTEGER NOT NULL,
        sum REAL NOT NULL, count INTEGER NOT NULL, text TEXT,
        PRIMARY KEY (key, name, bucket)
    ) WITHOUT ROWID;
    """,
    # 5: alerts: what was raised (each once) and the messages still to deliver
    """
    CREATE TABLE alert_marks (mark TEXT PRIMARY KEY, at INTEGER NOT NULL) WITHOUT ROWID;
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY, created INTEGER NOT NULL, rule TEXT NOT NULL,
        mark TEXT NOT NULL, target INTEGER NOT NULL, title TEXT NOT NULL, body TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL,
        sending_since INTEGER
    );
    """,
    # 6: events of some kinds (the alerts' record) found without reading the others
    """
    CREATE INDEX events_kind ON events (kind, at);
    """,
    # 7: each delivery names its notify URL by a fingerprint, not only by its position
    """
    ALTER TABLE outbox ADD COLUMN fingerprint TEXT;
    """,
    # 8: every row belongs to a site; what was there belongs to the site that opens it first
    """
    CREATE TABLE intervals_ (
        site TEXT NOT NULL, key TEXT NOT NULL, start INTEGER NOT NULL, end INTEGER NOT NULL,
        rx INTEGER NOT NULL, tx INTEGER NOT NULL,
        PRIMARY KEY (site, key, start)
    ) WITHOUT ROWID;
    CREATE TABLE rollups_ (
        site TEXT NOT NULL, key TEXT NOT NULL, resolution INTEGER NOT NULL,
        bucket INTEGER NOT NULL, rx INTEGER NOT NULL, tx INTEGER NOT NULL,
        PRIMARY KEY (site, key, resolution, bucket)
    ) WITHOUT ROWID;
    CREATE TABLE recent_ (
        site TEXT NOT NULL, key TEXT NOT NULL, resolution INTEGER NOT NULL,
        bucket INTEGER NOT NULL, rx INTEGER NOT NULL, tx INTEGER NOT NULL,
        PRIMARY KEY (site, key, resolution)
    ) WITHOUT ROWID;
    CREATE TABLE tracker_ (
        site TEXT NOT NULL, key TEXT NOT NULL, life TEXT NOT NULL, at INTEGER NOT NULL,
        rx INTEGER NOT NULL, tx INTEGER NOT NULL, held INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (site, key)
    ) WITHOUT ROWID;
    CREATE TABLE gauges_ (
        site TEXT NOT NULL, key TEXT NOT NULL, name TEXT NOT NULL, bucket INTEGER NOT NULL,
        sum REAL NOT NULL, count INTEGER NOT NULL, text TEXT,
        PRIMARY KEY (site, key, name, bucket)
    ) WITHOUT ROWID;
    CREATE TABLE alert_marks_ (
        site TEXT NOT NULL, mark TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (site, mark)
    ) WITHOUT ROWID;
    CREATE TABLE meta_ (
        site TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (site, name)
    ) WITHOUT ROWID;
    INSERT INTO intervals_ SELECT {site}, * FROM intervals;
    INSERT INTO rollups_ SELECT {site}, * FROM rollups;
    INSERT INTO recent_ SELECT {site}, * FROM recent;
    INSERT INTO tracker_ SELECT {site}, key, life, at, rx, tx, held FROM tracker;
    INSERT INTO gauges_ SELECT {site}, * FROM gauges;
    INSERT INTO alert_marks_ SELECT {site}, * FROM alert_marks;
    INSERT INTO meta_ SELECT {site}, * FROM meta;
    DROP TABLE intervals; ALTER TABLE intervals_ RENAME TO intervals;
    DROP TABLE rollups; ALTER TABLE rollups_ RENAME TO rollups;
    DROP TABLE recent; ALTER TABLE recent_ RENAME TO recent;
    DROP TABLE tracker; ALTER TABLE tracker_ RENAME TO tracker;
    DROP TABLE gauges; ALTER TABLE gauges_ RENAME TO gauges;
    DROP TABLE alert_marks; ALTER TABLE alert_marks_ RENAME TO alert_marks;
    DROP TABLE meta; ALTER TABLE meta_ RENAME TO meta;
    ALTER TABLE events ADD COLUMN site TEXT NOT NULL DEFAULT {site};
    DROP INDEX events_at; DROP INDEX events_kind;
    CREATE INDEX events_at ON events (site, at);
    CREATE INDEX events_kind ON events (site, kind, at);
    ALTER TABLE outbox ADD COLUMN site TEXT NOT NULL DEFAULT {site};
    CREATE INDEX outbox_site ON outbox (site, next_at);
    """,
    # 9: what each key is (its source, its name there, its role), written by the collector
    """
    CREATE TABLE keys (
        site TEXT NOT NULL, key TEXT NOT NULL, source TEXT NOT NULL, name TEXT NOT NULL,
        role TEXT NOT NULL, PRIMARY KEY (site, key)
    ) WITHOUT ROWID;
    """,
    # 10: time before key in the primary keys of intervals and rollups, so that a save appends
    # its rows beside each other (one leaf and its neighbours) instead of one leaf per key
    """
    CREATE TABLE intervals_ (
        site TEXT NOT NULL, key TEXT NOT NULL, start INTEGER NOT NULL, end INTEGER NOT NULL,
        rx INTEGER NOT NULL, tx INTEGER NOT NULL,
        PRIMARY KEY (site, start, key)
    ) WITHOUT ROWID;
    CREATE TABLE rollups_ (
        site TEXT NOT NULL, key TEXT NOT NULL, resolution INTEGER NOT NULL,
        bucket INTEGER NOT NULL, rx INTEGER NOT NULL, tx INTEGER NOT NULL,
        PRIMARY KEY (site, resolution, bucket, key)
    ) WITHOUT ROWID;
    INSERT INTO intervals_ SELECT * FROM intervals ORDER BY site, start, key;
    INSERT INTO rollups_ SELECT * FROM rollups ORDER BY site, resolution, bucket, key;
    DROP TABLE intervals; ALTER TABLE intervals_ RENAME TO intervals;
    DROP TABLE rollups; ALTER TABLE rollups_ RENAME TO rollups;
    """,
    # 11: a save held as one record of a fixed size, folded into the tables by the next save
    """
    CREATE TABLE unfolded (
        slot INTEGER PRIMARY KEY, site TEXT NOT NULL UNIQUE, record BLOB NOT NULL
    );
    """,
    # 12: time before key and name in the gauges' primary key, so that a save's samples go
    # beside each other instead of one leaf per gauge; the names kept apart for their readers
    """
    CREATE TABLE gauges_ (
        site TEXT NOT NULL, key TEXT NOT NULL, name TEXT NOT NULL, bucket INTEGER NOT NULL,
        sum REAL NOT NULL, count INTEGER NOT NULL, text TEXT,
        PRIMARY KEY (site, bucket, key, name)
    ) WITHOUT ROWID;
    INSERT INTO gauges_ SELECT * FROM gauges ORDER BY site, bucket, key, name;
    DROP TABLE gauges; ALTER TABLE gauges_ RENAME TO gauges;
    CREATE TABLE gauge_names (
        site TEXT NOT NULL, key TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (site, key, name)
    ) WITHOUT ROWID;
    INSERT INTO gauge_names SELECT DISTINCT site, key, name FROM gauges;
    """,
]
STORE_WIDE = ""
"""The site of the meta entries that belong to the store file, not to one site (its writer)."""
WRITER_META = "writer_pid"
NOTIFY_TARGETS_META = "alerts.notify_targets"
"""The fingerprints of the ``alerts.notify`` entries, in order (``set_notify_targets``)."""
DELIVERY_COLUMNS = ("id, created, rule, mark, target, title, body, attempts, next_at, "
                    "sending_since, fingerprint")
BUCKETS = "(SELECT * FROM rollups UNION ALL SELECT * FROM recent)"
ADD_ROLLUP = """
    INSERT INTO rollups VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (site, resolution, bucket, key) DO UPDATE
    SET rx = rx + excluded.rx, tx = tx + excluded.tx
"""
CLOSE_RECENT = """
    INSERT INTO rollups SELECT * FROM recent WHERE site = ? AND key = ? AND resolution = ?
    ON CONFLICT (site, resolution, bucket, key) DO UPDATE
    SET rx = rx + excluded.rx, tx = tx + excluded.tx
"""
ADD_GAUGE = """
    INSERT INTO gauges VALUES (?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (site, bucket, key, name) DO UPDATE SET sum = sum + excluded.sum,
        count = count + excluded.count, text = COALESCE(excluded.text, text)
"""
EXPORT_ORDER = {"keys": ("key",), "meta": ("name",), "tracker": ("key",), "alert_marks": ("mark",),
                "outbox": ("id",), "events": ("id",), "gauges": ("bucket", "key", "name"),
                "rollups": ("resolution", "bucket", "key"), "intervals": ("start", "key")}
"""The columns that order each table's export: its primary key within the site."""
ADD_GAUGE_NAME = "INSERT OR IGNORE INTO gauge_names VALUES (?, ?, ?)"
ADD_RECENT = """
    INSERT INTO recent VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (site, key, resolution) DO UPDATE SET rx = rx + excluded.rx, tx = tx + excluded.tx
"""



def _mount(path: "Path") -> str:
    """The mount point of the filesystem holding ``path``."""
    point = path.parent.resolve()
    while not os.path.ismount(point) and point != point.parent:
        point = point.parent
    return str(point)


def _read_only(path: "Path") -> bool:
    try:
        return bool(os.statvfs(path.parent).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _unwritable(path: "Path") -> list[str]:
    """The store's folder and files this process may not write, with owner and mode."""
    found = []
    for each in (path.parent, path, path.with_name(path.name + "-wal"),
                 path.with_name(path.name + "-shm")):
        try:
            stat = each.stat()
        except OSError:
            continue
        if not os.access(each, os.W_OK, effective_ids=os.access in os.supports_effective_ids):
            found.append(f"{each} (owner uid {stat.st_uid}, mode {stat.st_mode & 0o7777:04o})")
    return found


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def _quoted(text: str) -> str:
    """``text`` as an SQL string literal (for the migration that writes the site into rows)."""
    return "'" + text.replace("'", "''") + "'"


def _serialized(method: Callable[..., Any]) -> Callable[..., Any]:
    """One call at a time on the store's connection, whichever thread makes it."""
    def serialized(self: "SQLiteStore", *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self._mend_shm()
            return method(self, *args, **kwargs)

    serialized.__name__, serialized.__doc__ = method.__name__, method.__doc__
    return serialized


class SQLiteStore:
    """The store in one SQLite file. It owns its thread-safety: the collector's threads share
    one store, and each call runs alone; ``consistent()`` holds several calls together."""

    def __init__(self, path: str, tz: ZoneInfo, retention: Mapping[str, float],
                 create: bool = True, site: str = "home", status_dir: str | None = None
                 ) -> None:
        self._lock = RLock()
        self.site = site
        self._status_dir = status_dir
        """Where the status documents are kept (``publish``); the automatic runtime folder
        when None, found at the first use."""
        self._status_files: dict[str, StatusFile] = {}
        """Each document this process publishes, its file kept open."""
        self._file = path or "."
        """The file as given; ``path`` is it as a ``Path``, made when something needs one
        (importing ``pathlib`` costs a third of a ``python -c pass``, and reading needs none)."""
        if os.path.isdir(self._file):
            raise StoreError(f"store.url: {self.path} is a folder; name the file in it, such as "
                             f"sqlite://{self.path / 'traffic.db'}")
        if not create and not os.path.isfile(self._file):
            raise NoStore(f"store.url: no store at {self.path} yet (the collector creates it "
                             "when it first runs: traffic collect)")
        self.tz = tz
        self.retention = dict(retention)
        self._writer_lock: int | None = None
        self._identity = (0, 0)
        self._lost = ""
        self._shm_size = 0
        self._keys: list[str] | None = None
        """known_keys(), until add() or prune() may change it."""
        self._held_cache: tuple[bytes, Unfolded | None, dict] = (b"", None, {})
        """The last held record read, decoded, and its views by keys (``_held_of``)."""
        try:
            os.makedirs(os.path.dirname(self._file) or ".", exist_ok=True)
            self.db = sqlite3.connect(self._file, isolation_level=None, timeout=10,
                                      check_same_thread=False)
            self.db.execute("PRAGMA synchronous = NORMAL")
            self._migrate(create)
            self._mend_shm()
        except sqlite3.OperationalError as error:
            self._close_quietly()
            if _read_only(self.path):
                raise StoreError(f"store.url: cannot open {self.path}: {error}: "
                                 f"{_mount(self.path)} is mounted read-only") from None
            if "readonly" in str(error):
                raise StoreError(
                    f"store.url: cannot read {self.path} as user {_user()}: SQLite "
                    f"also writes beside it (the -wal and -shm files in {self.path.parent}); "
                    "run this as the collector's user, e.g. with sudo") from None
            raise StoreError(f"store.url: cannot open {self.path}: {error}") from None
        except (OSError, sqlite3.Error) as error:
            self._close_quietly()
            raise StoreError(f"store.url: cannot open {self.path}: {error}") from None
        except StoreError:
            self._close_quietly()
            raise

    def consistent(self) -> "RLock":
        """Hold this while several calls must see the store as one moment: no other thread's
        call (a save) runs in between. Re-entrant."""
        return self._lock

    @property
    def path(self) -> "Path":
        from pathlib import Path

        return Path(self._file)

    def _close_quietly(self) -> None:
        if hasattr(self, "db"):
            self.db.close()

    def _migrate(self, create: bool) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise StoreError(f"{self.path} was written by a newer Traffic (schema {version})")
        if version == 0 and (not create or self.db.execute(
                "SELECT 1 FROM sqlite_master LIMIT 1").fetchone()):
            raise StoreError(f"store.url: {self.path} is not a Traffic store (it is empty, or "
                             "another program's file)")
        if version == 0:  # a new file: both settings stay with it
            self.db.execute(f"PRAGMA page_size = {PAGE_SIZE}")
            self.db.execute("PRAGMA journal_mode = WAL")
        for number in range(version, len(MIGRATIONS)):
            try:
                script = MIGRATIONS[number].replace("{site}", _quoted(self.site))
                self.db.executescript(f"BEGIN IMMEDIATE; {script}; "
                                      f"PRAGMA user_version = {number + 1}; COMMIT;")
            except sqlite3.Error:
                self._roll_back()
                raise

    @_serialized
    def add(self, deltas: Iterable[Delta], tracker_state: Mapping[str, CounterState],
            gauges: Iterable[GaugeSample] = (), keys: Iterable[Key] = ()) -> int:
        """Every other save is held as one record (``unfolded``) when it can be: no new key
        types, no key new to the tracker or in a new life, and a record that fits. The next
        save folds it into the tables with its own; readers add a held record. Gauges go to
        their table at once (a save's samples sit together there: a page or two)."""
        site = self.site
        rows = [(site, d.key, d.start, d.end, d.rx, d.tx) for d in deltas if d.rx or d.tx]
        keys = list(keys)
        self._keys = None
        try:
            with self._transaction():
                self._add_gauges(gauges)
                held = self._held()
                if held is None and not keys:
                    new = self._hold(rows, tracker_state)
                    if new is not None:
                        return sum(row[4] + row[5] for row in new)
                return self._fold(held, rows, tracker_state, keys)
        except sqlite3.Error as error:
            raise StoreError(self.write_failure(error)) from None

    def _not_stored(self, rows: list[tuple]) -> list[tuple]:
        """The rows whose (key, start) is neither stored nor repeated earlier in ``rows``."""
        if not rows:
            return []
        seen = set(self.db.execute(
            "SELECT key, start FROM intervals WHERE site = ? AND start BETWEEN ? AND ?",
            (self.site, min(row[2] for row in rows), max(row[2] for row in rows))))
        new = []
        for row in rows:
            if (row[1], row[2]) not in seen:
                new.append(row)
            seen.add((row[1], row[2]))
        return new

    def _hold(self, rows: list[tuple], tracker_state: Mapping[str, CounterState]
              ) -> list[tuple] | None:
        """Write the save as the held record; the rows new to the store, or None when it
        cannot be one."""
        from traffic.store.unfolded import RECORD_BYTES, encode

        if len(rows) * 4 > RECORD_BYTES:  # a delta takes 4 bytes at least: a big batch
            return None
        if not rows and not tracker_state:
            return []  # gauges only: nothing to hold
        lives = self._lives()
        if any(lives.get(key) != state.life for key, state in tracker_state.items()):
            return None
        new = self._not_stored(rows)
        record = encode(tracker_state, [Delta(*row[1:]) for row in new])
        if record is None:
            return None
        if not self.db.execute("UPDATE unfolded SET record = ? WHERE site = ?",
                               (record, self.site)).rowcount:
            self.db.execute("INSERT INTO unfolded (site, record) VALUES (?, ?)",
                            (self.site, record))
        return new

    def _add_gauges(self, gauges: Iterable[GaugeSample]) -> None:
        rows = gauge_rows(gauges)
        self.db.executemany(ADD_GAUGE, [(self.site, *row) for row in rows])
        self.db.executemany(ADD_GAUGE_NAME, {(self.site, key, name) for key, name, *_ in rows})

    def _fold(self, held: "Unfolded | None", rows: list[tuple],
              tracker_state: Mapping[str, CounterState], keys: list[Key]) -> int:
        """Write the held record and this save into the tables; the bytes this save added."""
        site = self.site
        states = dict(tracker_state)
        earlier: list[tuple] = []
        if held is not None:
            earlier = [(site, d.key, d.start, d.end, d.rx, d.tx) for d in held.deltas]
            states = {**held.states(self._lives()), **states}
        folded = self._insert_intervals(earlier)
        new = self._insert_intervals(rows)
        increments = RollupIncrements(self.tz)
        increments.add(Delta(*row[1:]) for row in [*folded, *new])
        self._add_to_buckets(increments.rows())
        self.db.executemany("INSERT OR REPLACE INTO tracker VALUES (?, ?, ?, ?, ?, ?, ?)",
                            [(site, key, s.life, s.at, s.rx, s.tx, s.held)
                             for key, s in states.items()])
        self._set_keys(keys)
        if held is not None:
            self.db.execute("UPDATE unfolded SET record = zeroblob(length(record)) "
                            "WHERE site = ?", (site,))
        return sum(row[4] + row[5] for row in new)

    def _lives(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT key, life FROM tracker WHERE site = ?",
                                    (self.site,)).fetchall())

    def _held(self) -> "Unfolded | None":
        """The held record, decoded once per content (readers ask for it at every call)."""
        row = self.db.execute("SELECT record FROM unfolded WHERE site = ?",
                              (self.site,)).fetchone()
        if row is None or not row[0] or not row[0][0]:
            return None
        if row[0] != self._held_cache[0]:
            self._held_cache = (row[0], self._decoded(row[0]), {})
        return self._held_cache[1]

    def _decoded(self, record: bytes) -> "Unfolded | None":
        from traffic.store.unfolded import UnknownVersion, decode

        try:
            return decode(record)
        except UnknownVersion as error:
            raise StoreError(f"{self.path}: its held save was written by a newer Traffic "
                             f"({error})") from None
        except ValueError as error:
            log.warning(__name__, "%s: the held save (one save interval's bytes) cannot be "
                      "read, %s: it is left out, and the next save replaces it", self.path,
                      error)
            return None

    def _fold_held(self) -> None:
        """Fold a held record into the tables now (a writer starting or closing)."""
        with self._transaction():
            self._fold_if_held()

    def _fold_if_held(self) -> None:
        held = self._held()
        if held is not None:
            self._fold(held, [], {}, [])

    def _insert_intervals(self, rows: list[tuple]) -> list[tuple]:
        """The rows that were not stored before (a replay inserts nothing)."""
        self.db.execute("SAVEPOINT fast")
        try:
            self.db.executemany("INSERT INTO intervals VALUES (?, ?, ?, ?, ?, ?)", rows)
            self.db.execute("RELEASE fast")
            return rows
        except sqlite3.IntegrityError:
            self.db.execute("ROLLBACK TO fast")
            self.db.execute("RELEASE fast")
        insert = "INSERT OR IGNORE INTO intervals VALUES (?, ?, ?, ?, ?, ?)"
        return [row for row in rows if self.db.execute(insert, row).rowcount == 1]

    def _add_to_buckets(self, rows: list[tuple[str, int, int, int, int]]) -> None:
        """Add to the newest bucket in ``recent``; a newer one closes it into ``rollups``."""
        site = self.site
        open_buckets = {(key, code): bucket for key, code, bucket in self.db.execute(
            "SELECT key, resolution, bucket FROM recent WHERE site = ?", (site,))}
        newest: dict[tuple[str, int], int] = {}
        for key, code, bucket, _, _ in rows:
            newest[(key, code)] = max(bucket, newest.get((key, code), bucket))
        closing = [pair for pair, bucket in newest.items()
                   if pair in open_buckets and bucket > open_buckets[pair]]
        closing_rows = [(site, *pair) for pair in closing]
        self.db.executemany(CLOSE_RECENT, closing_rows)
        self.db.executemany("DELETE FROM recent WHERE site = ? AND key = ? AND resolution = ?",
                            closing_rows)
        current = [row for row in rows if row[2] == newest[row[:2]]
                   and row[2] >= open_buckets.get(row[:2], row[2])]
        self.db.executemany(ADD_RECENT, [(site, *row) for row in current])
        self.db.executemany(ADD_ROLLUP, [(site, *row) for row in rows if row[2] < max(
            newest[row[:2]], open_buckets.get(row[:2], newest[row[:2]]))])

    @_serialized
    def claim_writer(self) -> None:
        """Lock the store file itself (``flock``, which SQLite's own ``fcntl`` locks do not
        touch), so a symlink, a hard link or a deleted file beside it cannot let a second
        collector in; the holder's pid is recorded in the store, so any name for the file
        finds it."""
        import fcntl

        descriptor = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            raise StoreError(f"store.url: another collector (pid {self._holder()}) is already "
                             f"writing to {self.path}") from None
        self._writer_lock = descriptor
        stat = os.fstat(descriptor)
        self._identity = (stat.st_dev, stat.st_ino)
        try:
            self.db.execute(f"PRAGMA wal_autocheckpoint = {WRITER_CHECKPOINT_PAGES}")
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?, ?)",
                            (STORE_WIDE, WRITER_META, str(os.getpid())))
            self._fold_held()  # what a killed writer held, for a copy (migrate) to read
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # seen through a hard link too
        except sqlite3.Error as error:
            if "readonly" not in str(error):
                return  # a full disk at start is said by the saves, which keep retrying
            os.close(descriptor)
            self._writer_lock = None
            raise StoreError(f"store.url: {self.write_failure(error)}") from None

    def _holder(self) -> str:
        try:
            row = self.db.execute("SELECT value FROM meta WHERE site = ? AND name = ?",
                                  (STORE_WIDE, WRITER_META)).fetchone()
            return row[0] if row else "unknown"
        except sqlite3.Error:
            return "unknown"

    @_serialized
    def key_types(self) -> list[Key]:
        return [Key(*row) for row in self.db.execute(
            "SELECT key, source, name, role FROM keys WHERE site = ? ORDER BY key", (self.site,))]

    @_serialized
    def set_keys(self, keys: Iterable[Key]) -> None:
        try:
            self._set_keys(keys)
        except sqlite3.Error as error:
            raise StoreError(self.write_failure(error)) from None

    def _set_keys(self, keys: Iterable[Key]) -> None:
        self.db.executemany("INSERT OR REPLACE INTO keys VALUES (?, ?, ?, ?, ?)",
                            [(self.site, k.key, k.source, k.name, k.role) for k in keys])

    @_serialized
    def sites(self) -> list[str]:
        return [row[0] for row in self.db.execute(
            "SELECT site FROM tracker UNION SELECT site FROM recent UNION "
            "SELECT DISTINCT site FROM events ORDER BY 1")]

    @_serialized
    def tracker_state(self) -> dict[str, CounterState]:
        with _Reading(self.db):
            states = {key: CounterState(life, at, rx, tx, held)
                      for key, life, at, rx, tx, held in self.db.execute(
                          "SELECT key, life, at, rx, tx, held FROM tracker WHERE site = ?",
                          (self.site,))}
            held = self._held()
        if held is not None:
            states.update(held.states({key: state.life for key, state in states.items()}))
        return states

    @_serialized
    def known_keys(self) -> list[str]:
        if self._keys is None:
            self._keys = [row[0] for row in self.db.execute(
                "SELECT key FROM tracker WHERE site = ?1 UNION SELECT key FROM recent "
                "WHERE site = ?1 ORDER BY 1", (self.site,))]
        return list(self._keys)

    def _key_filter(self, keys: Iterable[str] | None) -> tuple[str, list[str]]:
        """``site = ? AND key IN (...)`` and its values, for the given keys or all the site's."""
        chosen = list(self.known_keys() if keys is None else keys)
        return f"site = ? AND key IN ({', '.join('?' * len(chosen))})", [self.site, *chosen]

    @_serialized
    def series(self, resolution: str, start: int, end: int,
               keys: Iterable[str] | None = None) -> list[tuple[int, int, int]]:
        where, chosen = self._key_filter(keys)
        code = RESOLUTION_CODES[resolution]
        with _Reading(self.db):
            points = self.db.execute(
                f"SELECT bucket, SUM(rx), SUM(tx) FROM {BUCKETS} WHERE {where} AND "
                "resolution = ? AND bucket >= ? AND bucket < ? GROUP BY bucket ORDER BY bucket",
                [*chosen, code, start, end]).fetchall()
            held = self._held_of(chosen[1:])
        if held is None:
            return points
        sums = {bucket: [rx, tx] for bucket, rx, tx in points}
        for bucket, (rx, tx) in held.buckets(resolution, start, end).items():
            entry = sums.setdefault(bucket, [0, 0])
            entry[0] += rx
            entry[1] += tx
        return [(bucket, rx, tx) for bucket, (rx, tx) in sorted(sums.items())]

    def _held_of(self, keys: list[str]) -> Spread | None:
        """The held record's deltas of ``keys`` as readers add them (None when none)."""
        held = self._held()
        if held is None:
            return None
        views = self._held_cache[2]
        wanted = tuple(keys)
        if wanted not in views:
            chosen = set(wanted)
            views[wanted] = Spread([delta for delta in held.deltas if delta.key in chosen],
                                   self.tz)
        return views[wanted]

    @_serialized
    def totals(self, start: int, end: int, keys: Iterable[str] | None = None) -> tuple[int, int]:
        where, chosen = self._key_filter(keys)
        rx = tx = 0
        with _Reading(self.db):
            held = self._held_of(chosen[1:])
            for resolution, first, last in cover(start, end, self.tz):
                if resolution == "raw":
                    intervals = self.db.execute(
                        f"SELECT start, end, rx, tx FROM intervals WHERE {where} "
                        "AND start < ? AND end > ?", [*chosen, last, first]).fetchall()
                    part = raw_share([*intervals, *(held.raw if held else ())], first, last)
                else:
                    part = self.db.execute(
                        f"SELECT COALESCE(SUM(rx), 0), COALESCE(SUM(tx), 0) FROM {BUCKETS} "
                        f"WHERE {where} AND resolution = ? AND bucket >= ? AND bucket < ?",
                        [*chosen, RESOLUTION_CODES[resolution], first, last]).fetchone()
                    if held is not None:
                        sums = held.buckets(resolution, first, last).values()
                        part = (part[0] + sum(rx for rx, _ in sums),
                                part[1] + sum(tx for _, tx in sums))
                rx += part[0]
                tx += part[1]
        return rx, tx

    @_serialized
    def gauge_series(self, key: str, name: str, start: int, end: int
                     ) -> list[tuple[int, float | str]]:
        rows = self.db.execute(
            "SELECT bucket, sum, count, text FROM gauges WHERE site = ? AND key = ? AND name = ? "
            "AND bucket >= ? AND bucket < ? ORDER BY bucket", (self.site, key, name, start, end))
        return [(bucket, gauge_value(total, count, text)) for bucket, total, count, text in rows]

    @_serialized
    def gauge_names(self) -> list[tuple[str, str]]:
        return self.db.execute("SELECT key, name FROM gauge_names WHERE site = ? "
                               "ORDER BY key, name", (self.site,)).fetchall()

    @_serialized
    def first_bucket(self, resolution: str) -> int | None:
        where, chosen = self._key_filter(None)
        code = RESOLUTION_CODES[resolution]
        with _Reading(self.db):
            firsts = [self.db.execute(f"SELECT MIN(bucket) FROM {table} WHERE {where} "
                                      "AND resolution = ?", [*chosen, code]).fetchone()[0]
                      for table in ("rollups", "recent")]
            held = self._held_of(chosen[1:])
        if held is not None:
            firsts.append(held.first_bucket(resolution))
        return min((first for first in firsts if first is not None), default=None)

    @_serialized
    def add_events(self, events: Iterable[Event]) -> None:
        import json

        self.db.executemany(
            "INSERT INTO events (at, kind, duration_ms, detail, site) VALUES (?, ?, ?, ?, ?)",
            [(e.at, e.kind, e.duration_ms, json.dumps(e.detail, separators=(",", ":")),
              self.site) for e in events])

    @_serialized
    def events(self, since: int = 0, until: int | None = None, limit: int = 100,
               kinds: Iterable[str] | None = None) -> list[Event]:
        where, chosen = "", []
        if kinds is not None:
            chosen = list(kinds)
            where = f"kind IN ({', '.join('?' * len(chosen))}) AND "
        rows = self.db.execute(
            f"SELECT at, kind, duration_ms, detail FROM events WHERE site = ? AND {where}"
            "at >= ? AND at < ? ORDER BY at DESC, id DESC LIMIT ?",
            (self.site, *chosen, since, until or 2**62, limit)
        ).fetchall()
        if not rows:
            return []
        import json

        return [Event(at, kind, json.loads(detail), duration_ms)
                for at, kind, duration_ms, detail in rows]

    @_serialized
    def alert_counts(self) -> AlertCounts:
        kinds = ", ".join("?" * len(ALERT_EVENT_KINDS))
        rows = self.db.execute(
            "SELECT kind, COALESCE(json_extract(detail, '$.rule'), ''), COUNT(*) FROM events "
            f"WHERE site = ? AND kind IN ({kinds}) GROUP BY 1, 2 "
            "UNION ALL SELECT '', '', COUNT(*) FROM outbox WHERE site = ?",
            (self.site, *ALERT_EVENT_KINDS, self.site)).fetchall()
        return AlertCounts({(kind, str(rule)): count for kind, rule, count in rows if kind},
                           sum(count for kind, _, count in rows if not kind))

    @_serialized
    def raise_alert(self, mark: str, event: Event,
                    deliveries: Iterable[tuple[int, str, str]]) -> bool:
        with self._durable(), self._transaction():
            if self.db.execute("INSERT OR IGNORE INTO alert_marks VALUES (?, ?, ?)",
                               (self.site, mark, event.at)).rowcount == 0:
                return False
            self.add_events([event])
            self.db.executemany(
                "INSERT INTO outbox (created, rule, mark, target, title, body, next_at, "
                "fingerprint, site) VALUES (?, ?, ?, ?, ?, ?, ?, (SELECT json_extract(value, "
                "'$[' || ? || ']') FROM meta WHERE site = ? AND name = ?), ?)",
                [(event.at, event.detail.get("rule", event.kind), mark, target, title, body,
                  event.at, target, self.site, NOTIFY_TARGETS_META, self.site)
                 for target, title, body in deliveries])
            return True

    @_serialized
    def has_alert_mark(self, mark: str) -> bool:
        return self.db.execute("SELECT 1 FROM alert_marks WHERE site = ? AND mark = ?",
                               (self.site, mark)).fetchone() is not None

    @_serialized
    def due_deliveries(self, now: int, limit: int = 20) -> list[Delivery]:
        rows = self.db.execute(
            f"SELECT {DELIVERY_COLUMNS} FROM outbox WHERE site = ? AND next_at <= ? "
            "ORDER BY next_at, id LIMIT ?", (self.site, now, limit))
        return [Delivery(*row) for row in rows]

    @_serialized
    def pending_deliveries(self) -> list[Delivery]:
        rows = self.db.execute(f"SELECT {DELIVERY_COLUMNS} FROM outbox WHERE site = ? "
                               "ORDER BY next_at, id", (self.site,))
        return [Delivery(*row) for row in rows]

    @_serialized
    def set_notify_targets(self, fingerprints: Sequence[str]) -> None:
        import json

        listed = json.dumps(list(fingerprints))
        with self._transaction():
            self.set_meta(NOTIFY_TARGETS_META, listed)
            self.db.execute("UPDATE outbox SET fingerprint = json_extract(?, '$[' || target "
                            "|| ']') WHERE site = ? AND fingerprint IS NULL", (listed, self.site))

    @_serialized
    def delivery_started(self, delivery_id: int, now: int) -> None:
        with self._durable():
            self.db.execute("UPDATE outbox SET sending_since = ? WHERE id = ?",
                            (now, delivery_id))

    def _durable(self) -> "_Durable":
        """Commits that must survive a power cut, not only a crash: what says an alert was
        raised or is being sent (with ``synchronous = NORMAL`` the last commits before a power
        cut may be lost, and the message would then go out twice). They are few."""
        return _Durable(self.db)

    @_serialized
    def delivery_ended(self, delivery_id: int, event: Event, retry_at: int | None = None,
                       hold_until: int | None = None) -> None:
        with self._transaction():
            if hold_until is not None:
                self.db.execute(
                    "UPDATE outbox SET next_at = MAX(next_at, ?) WHERE site = ? AND "
                    "fingerprint = (SELECT fingerprint FROM outbox WHERE id = ?) AND id != ? "
                    "AND sending_since IS NULL", (hold_until, self.site, delivery_id, delivery_id))
            if retry_at is None:
                self.db.execute("DELETE FROM outbox WHERE id = ?", (delivery_id,))
            else:
                self.db.execute("UPDATE outbox SET attempts = attempts + 1, next_at = ?, "
                                "sending_since = NULL WHERE id = ?", (retry_at, delivery_id))
            self.add_events([event])

    def _transaction(self) -> "_Transaction":
        return _Transaction(self.db)

    def _roll_back(self) -> None:
        _roll_back(self.db)

    def _mend_shm(self) -> None:
        """Grow the ``-shm`` file back when something cut it short under the open connection
        (a cleanup that emptied it): SQLite has it mapped, and touching the lost pages would
        end the process with SIGBUS. Zeroed pages make SQLite rebuild its index from the
        ``-wal``, as when another connection grows the file. Every call on the connection
        looks first (a stat), and so does the open, so that a cut before the first save is
        seen too."""
        shm = self._file + "-shm"
        try:
            size = os.stat(shm).st_size
            if size < self._shm_size:
                os.truncate(shm, self._shm_size)
                log.warning(__name__, "%s was cut from %d to %d bytes while in use; grown back "
                            "(SQLite rebuilds it from the -wal file)", shm, self._shm_size, size)
            self._shm_size = max(size, self._shm_size)
        except OSError:
            pass

    def write_failure(self, error: sqlite3.Error) -> str:
        """SQLite's own reason for a failed write, and what to do about it."""
        reason = str(error) or type(error).__name__
        if "full" in reason:
            return f"cannot save to {self.path}: {reason}: free space on {_mount(self.path)}"
        unwritable = _unwritable(self.path) if "readonly" in reason else []
        if unwritable:
            return (f"cannot save to {self.path}: {reason}: user {_user()} may not write "
                    f"{', '.join(unwritable)}; give the collector's user write access to the "
                    "store's folder and its -wal and -shm files")
        if "readonly" in reason or "I/O" in reason:
            return (f"cannot save to {self.path}: {reason}: check that {self.path.parent} is "
                    f"writable and {_mount(self.path)} is mounted read-write")
        return f"cannot save to {self.path}: {reason}"

    @_serialized
    def replaced(self) -> str:
        """What happened to the store file this store opened, or "" when it is still the one
        at its path (compared by device and inode with the writer lock's descriptor)."""
        if self._writer_lock is None:
            return self._lost
        try:
            now = os.stat(self.path)
        except FileNotFoundError:
            return f"{self.path} was deleted"
        except OSError as error:
            return f"{self.path} cannot be read any more ({error.strerror})"
        if (now.st_dev, now.st_ino) != self._identity:
            return f"{self.path} was replaced by another file"
        return ""

    @_serialized
    def reopen(self) -> None:
        """Open the file now at the path, creating a new store if there is none, and claim
        it; the old file's connection and lock are let go first, so its ``-wal`` and ``-shm``
        files are not taken for the new file's."""
        self._lost = f"{self.path} could not be opened again"
        if self._writer_lock is not None:
            try:
                self.db.close()
            except sqlite3.Error as error:
                log.warning(__name__, "closing %s: %s", self.path, error)
            os.close(self._writer_lock)
            self._writer_lock = None
        if not self.path.exists():
            for leftover in ("-wal", "-shm"):
                self.path.with_name(self.path.name + leftover).unlink(missing_ok=True)
        self._keys = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, isolation_level=None, timeout=10,
                                      check_same_thread=False)
            self.db.execute("PRAGMA synchronous = NORMAL")
            self._migrate(True)
        except sqlite3.Error as error:
            raise StoreError(self.write_failure(error)) from None
        except OSError as error:
            raise StoreError(f"cannot create {self.path}: {error.strerror}") from None
        self.claim_writer()
        self._lost = ""

    def publish(self, name: str, document: dict[str, Any]) -> None:
        """A file on the RAM disk per document (see ``traffic.runtime``): not under the
        store's lock, and nothing written to the SD card."""
        status_file = self._status_files.get(name)
        if status_file is None:
            status_file = self._status_files[name] = StatusFile(self._status_file(name))
        status_file.write(document)

    def published(self, name: str) -> Any:
        try:
            return read_document(self._status_file(name))
        except (OSError, ValueError):
            return None

    def _status_file(self, name: str) -> str:
        if self._status_dir is None:
            self._status_dir = automatic_runtime_dir()
        return os.path.join(self._status_dir, f"{self.site}.{name}")

    @_serialized
    def last_sample_at(self) -> int | None:
        with _Reading(self.db):
            last = self.db.execute("SELECT MAX(at) FROM tracker WHERE site = ?",
                                   (self.site,)).fetchone()[0]
            held = self._held()
        held_last = max((at for at, *_ in held.readings.values()), default=None) if held else None
        return max((at for at in (last, held_last) if at is not None), default=None)

    @_serialized
    def get_meta(self, name: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE site = ? AND name = ?",
                              (self.site, name)).fetchone()
        return row[0] if row else None

    @_serialized
    def set_meta(self, name: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?, ?)", (self.site, name, value))

    @_serialized
    def prune(self, now: int) -> int:
        self._keys = None
        try:
            with self._transaction():
                self._fold_if_held()  # retention applies to its buckets too
                removed = self._prune(now)
        except sqlite3.Error as error:
            raise StoreError(self.write_failure(error)) from None
        return removed

    def _prune(self, now: int) -> int:
        removed = 0
        for table, column, keep in (("intervals", "start", self.retention.get("raw", 0)),
                                    ("gauges", "bucket", self.retention.get("gauges", 0)),
                                    ("events", "at", self.retention.get("events", 0))):
            if keep:
                gone = self.db.execute(f"DELETE FROM {table} WHERE site = ? AND {column} < ?",
                                       (self.site, now - int(keep * 1000))).rowcount
                removed += gone
                if table == "gauges" and gone:
                    self.db.execute(
                        "DELETE FROM gauge_names WHERE site = ? AND NOT EXISTS (SELECT 1 FROM "
                        "gauges WHERE site = gauge_names.site AND key = gauge_names.key AND "
                        "name = gauge_names.name)", (self.site,))
        for resolution, code in RESOLUTION_CODES.items():
            keep = self.retention.get(resolution, 0)
            if keep:
                for table in ("rollups", "recent"):
                    removed += self.db.execute(
                        f"DELETE FROM {table} WHERE site = ? AND resolution = ? AND bucket < ?",
                        (self.site, code, now - int(keep * 1000))).rowcount
        return removed

    @_serialized
    def count_rows(self, table: str) -> int:
        if table not in TABLES:
            raise ValueError(f"no table {table!r} in a store")
        counted = (f"(SELECT 1 FROM {BUCKETS} WHERE site = ? GROUP BY key, resolution, bucket)"
                   if table == "rollups" else f"{table} WHERE site = ?")
        return self.db.execute(f"SELECT COUNT(*) FROM {counted}", (self.site,)).fetchone()[0]

    def export_rows(self, table: str, after: Any = None, size: int = 5000) -> Iterator[Chunk]:
        """Chunk by chunk, each read on its own (the store is not held in between), in the
        order of the table's primary key: a chunk's ``after`` is its last row's key."""
        import json

        width = len(TABLES[table])
        if table == "gauges" and isinstance(after, list | tuple) and after and isinstance(
                after[0], str):
            after = None  # a copy stopped by a Traffic that ordered them by key: copied again
        while True:
            rows = self._export_chunk(table, after, size)
            if not rows:
                return
            after = list(rows[-1][width:])
            if table == "events":
                rows = [(at, kind, duration, json.loads(detail))
                        for at, kind, duration, detail, _ in rows]
            yield Chunk([tuple(row[:width]) for row in rows], after)
            if len(rows) < size:
                return

    @_serialized
    def _export_chunk(self, table: str, after: list[Any] | None, size: int) -> list[tuple]:
        position = ", ".join(EXPORT_ORDER[table])
        selected, source, group = ", ".join(TABLES[table]), table, ""
        if table == "rollups":
            selected = "key, resolution, bucket, SUM(rx), SUM(tx)"
            source, group = BUCKETS, "GROUP BY key, resolution, bucket"
        where = ""
        if after is not None:
            where = f"AND ({position}) > ({', '.join('?' * len(after))})"
        try:
            return self.db.execute(
                f"SELECT {selected}, {position} FROM {source} WHERE site = ? {where} {group} "
                f"ORDER BY {position} LIMIT ?", [self.site, *(after or ()), size]).fetchall()
        except sqlite3.Error as error:
            raise StoreError(f"cannot read {self.path}: {error}") from None

    @_serialized
    def import_rows(self, table: str, rows: Sequence[tuple[Any, ...]],
                    meta: Mapping[str, str] | None = None) -> None:
        import json

        site, columns = self.site, TABLES[table]
        named, marks = ", ".join(columns), ", ".join("?" * (len(columns) + 1))
        self._keys = None
        try:
            with self._transaction():
                if table == "events":
                    self.db.executemany(
                        f"INSERT INTO events (site, {named}) VALUES ({marks})",
                        [(site, at, kind, duration, json.dumps(detail, separators=(",", ":")))
                         for at, kind, duration, detail in rows])
                elif table == "outbox":
                    self.db.executemany(
                        f"INSERT INTO outbox (site, {named}) SELECT {marks} WHERE NOT EXISTS "
                        "(SELECT 1 FROM outbox WHERE site = ? AND mark = ? AND target = ?)",
                        [(site, *row, site, row[2], row[3]) for row in rows])
                elif table == "rollups":
                    self._import_buckets(rows)
                else:
                    self.db.executemany(
                        f"INSERT OR REPLACE INTO {table} (site, {named}) VALUES ({marks})",
                        [(site, *row) for row in rows])
                if table == "gauges":
                    self.db.executemany(ADD_GAUGE_NAME, {(site, row[0], row[1]) for row in rows})
                self.db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?, ?)",
                                    [(site, *item) for item in (meta or {}).items()])
        except sqlite3.Error as error:
            raise StoreError(self.write_failure(error)) from None

    def _import_buckets(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Each bucket as imported (replacing, not adding): the newest of each key and
        resolution in ``recent``, as ``add`` keeps it, the others in ``rollups``; a bucket is
        never in both."""
        site = self.site
        newest = {(key, code): bucket for key, code, bucket in self.db.execute(
            "SELECT key, resolution, bucket FROM recent WHERE site = ?", (site,))}
        for key, code, bucket, _, _ in rows:
            newest[(key, code)] = max(bucket, newest.get((key, code), bucket))
        self.db.executemany(
            "INSERT OR REPLACE INTO rollups SELECT * FROM recent WHERE site = ? AND key = ? AND "
            "resolution = ? AND bucket < ?", [(site, *pair, bucket)
                                              for pair, bucket in newest.items()])
        for table, chosen in (("recent", [row for row in rows if row[2] == newest[row[:2]]]),
                              ("rollups", [row for row in rows if row[2] < newest[row[:2]]])):
            other = "rollups" if table == "recent" else "recent"
            self.db.executemany(f"DELETE FROM {other} WHERE site = ? AND key = ? AND "
                                "resolution = ? AND bucket = ?",
                                [(site, *row[:3]) for row in chosen])
            self.db.executemany(f"INSERT OR REPLACE INTO {table} VALUES (?, ?, ?, ?, ?, ?)",
                                [(site, *row) for row in chosen])

    @_serialized
    def close(self) -> None:
        try:
            if self._writer_lock is not None:
                self._fold_held()  # a stopped writer's file holds everything in its tables
        except (sqlite3.Error, StoreError):  # still held: read, and folded later
            pass
        finally:
            self.db.close()
            for status_file in self._status_files.values():
                status_file.close()
            if self._writer_lock is not None:
                os.close(self._writer_lock)
                self._writer_lock = None


class _Transaction:
    """``BEGIN IMMEDIATE`` to ``COMMIT``, rolled back on any exception, the commit's own
    included; the WAL read mark taken after the commit (``_take_read_mark``). A class rather
    than ``contextlib.contextmanager``: ``contextlib`` and the ``functools`` it imports are a
    tenth of ``traffic status``, which only reads."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        if kind is not None:
            _roll_back(self.db)
            return
        try:
            self.db.execute("COMMIT")
        except BaseException:
            _roll_back(self.db)
            raise
        _take_read_mark(self.db)


class _Reading:
    """``BEGIN`` to ``COMMIT`` around reads that must see one moment of the file: the tables
    and the held record, which a fold in another process moves into them. Inside a
    transaction already, nothing."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.began = False

    def __enter__(self) -> None:
        if not self.db.in_transaction:
            self.db.execute("BEGIN")
            self.began = True

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        if self.began and self.db.in_transaction:
            self.db.execute("COMMIT" if kind is None else "ROLLBACK")


class _Durable:
    """``synchronous = FULL`` inside, back to ``NORMAL`` after, whatever happens."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("PRAGMA synchronous = FULL")

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        self.db.execute("PRAGMA synchronous = NORMAL")


def _take_read_mark(db: sqlite3.Connection) -> None:
    """Begin a read at once after a commit. A read records where in the WAL it reads (a read
    mark, in the first page of the ``-shm`` file) when the last mark is older than the newest
    commit. The commit has just dirtied that page; the next read, minutes later and after the
    kernel wrote the page back, would dirty it again: 4 KiB more on the card for every save,
    and for any other process's first read after it."""
    try:
        db.execute("PRAGMA user_version").fetchone()
    except sqlite3.Error:
        return  # the commit is done; the next read takes the mark


def _roll_back(db: sqlite3.Connection) -> None:
    """Undo the open transaction, if any: SQLite itself rolls back on some failures (a full
    disk, an I/O error), and a second error here must not hide the first one."""
    if db.in_transaction:
        try:
            db.execute("ROLLBACK")
        except sqlite3.Error:
            return

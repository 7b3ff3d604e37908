"""The spool: what a collector counted while its store's server could not be reached, kept in a
file on disk (``collector.state_dir``/SITE.spool) until the server answers again.

Each save that fails appends one entry: the deltas counted since the previous save (merged per
key and 5-minute bucket), the tracker state they were counted up to, the gauges (summed per
5-minute bucket), the key types and the events not stored yet. When the store answers, the
entries are added in order, a batch of them per transaction, and the file is removed. The
store plus the spool is then what the store alone is otherwise: every byte counted, each once.

Why nothing is lost or counted twice:

- An entry is one line, ``CRC32 JSON``, written with a single ``write`` and ``fsync``ed before
  the save returns. A line that is cut short (a kill or a power cut in the middle of the
  append) or whose checksum does not match is dropped when the spool is opened. That loses
  nothing: the entry was not complete, so the collector died before it could count on from
  it, and the reading it was counted up to is not the newest one kept; a restarted collector
  counts on from the previous entry's tracker state (or the store's), and its first delta
  holds those bytes again, once, as after any crash. What a reset of the counter (the
  interface made anew) takes away in the meantime is gone, as it is after any crash.
- Entries are added in order, each with its own tracker state, so the store ends at the newest
  one's. Deltas keep their start times (entries are never merged with each other), and the
  store keeps a delta once per key and start: an entry added again (the collector stopped
  between adding it and removing the file, or the server went away in the middle of a replay)
  adds no byte. Its gauges do add again to their 5-minute means (sum and count together, so
  a mean barely moves), and its events are recorded twice: a window of a few milliseconds.
- A line damaged on the card (its checksum does not match, and it is not the last) ends what
  can be read: the rest goes to SITE.spool.damaged, with an error in the log.
- A replay cut short keeps the entries not added yet (the file is replaced whole, on disk
  before the next entry is appended), so the next replay starts where this one stopped.

Size: an entry holds a delta or two per key and a gauge row or two per gauge name: 320 bytes
for one key, 230 more per key, 155 per gauge. At the default ``collector.save_interval`` of
10 minutes that is 144 entries a day: 46 KB a day for a kernel source with one interface,
170 KB for a router's WAN beside it with four signal gauges (1.2 MB a week). The collector
keeps no entry in memory, only the file's totals; what it counts between two saves is all it
holds, as when the store answers.
"""

import json
import logging
import os
import zlib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from traffic.config import Config
from traffic.counters import CounterState, Delta
from traffic.files import remove_if_there, replace_file, sync_folder
from traffic.hints import Any
from traffic.record import Record
from traffic.runtime import check_writable
from traffic.store import Event, GaugeSample, Key, Store
from traffic.store.rollup import gauge_rows

log = logging.getLogger(__name__)

REPLAY_BATCH = 50
"""Entries added in one transaction during a replay: a week's outage is some 20 transactions."""


def uses_spool(config: Config) -> bool:
    """A store on a server spools while the server cannot be reached. A SQLite store does not:
    its file is on this box, and what keeps it from saving (a full or read-only disk, a broken
    file) would keep a spool beside it from being written too; the collector keeps its counts
    in memory and says so (see ``Collector.save``)."""
    return not config.store.url.startswith("sqlite://")


def spool_path(config: Config) -> Path:
    return Path(config.collector.state_dir) / f"{config.site}.spool"


def check_state_dir(config: Config) -> None:
    """Fail early, naming the setting, when the collector could not spool."""
    check_writable(Path(config.collector.state_dir), "collector", "state_dir")


class Entry(Record):
    """One failed save, as the spool keeps it."""

    at: int
    """When the save began (its tracker state was taken then)."""
    deltas: tuple[Delta, ...]
    state: Mapping[str, CounterState]
    gauges: tuple[tuple[str, str, int, float, int, str | None], ...] = ()
    """``gauge_rows`` of the samples: (key, name, 5-minute bucket, sum, count, text)."""
    keys: tuple[Key, ...] = ()
    events: tuple[Event, ...] = ()

    @property
    def size(self) -> int:
        return sum(delta.rx + delta.tx for delta in self.deltas)

    def line(self) -> bytes:
        payload = json.dumps({
            "at": self.at,
            "deltas": [[d.key, d.start, d.end, d.rx, d.tx] for d in self.deltas],
            "state": {key: [s.life, s.at, s.rx, s.tx, s.held] for key, s in self.state.items()},
            "gauges": [list(row) for row in self.gauges],
            "keys": [[k.key, k.source, k.name, k.role] for k in self.keys],
            "events": [[e.at, e.kind, e.detail, e.duration_ms] for e in self.events],
        }, separators=(",", ":")).encode()
        return b"%08x %s\n" % (zlib.crc32(payload), payload)


def entry_of(at: int, deltas: Iterable[Delta], state: Mapping[str, CounterState],
             gauges: Iterable[GaugeSample], keys: Iterable[Key], events: Iterable[Event]
             ) -> Entry:
    return Entry(at, tuple(deltas), dict(state), tuple(gauge_rows(gauges)), tuple(keys),
                 tuple(events))


def parse_line(line: bytes) -> Entry | None:
    """The entry of one complete line, or None when it is not one (cut short, damaged)."""
    checksum, _, payload = line.rstrip(b"\n").partition(b" ")
    try:
        if not line.endswith(b"\n") or int(checksum, 16) != zlib.crc32(payload):
            return None
        data = json.loads(payload)
        return Entry(
            data["at"], tuple(Delta(*delta) for delta in data["deltas"]),
            {key: CounterState(*state) for key, state in data["state"].items()},
            tuple(tuple(row) for row in data["gauges"]),
            tuple(Key(*key) for key in data["keys"]),
            tuple(Event(*event) for event in data["events"]))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def gauge_samples(rows: Iterable[tuple[str, str, int, float, int, str | None]]
                  ) -> list[GaugeSample]:
    """Samples that ``gauge_rows`` sums to exactly ``rows`` again (the store takes samples):
    a numeric row's sum in one sample and as many zeros as make its count, its text last."""
    samples = []
    for key, name, bucket, total, count, text in rows:
        if count:
            samples.append(GaugeSample(key, name, bucket, total))
            samples.extend(GaugeSample(key, name, bucket, 0.0) for _ in range(count - 1))
        if text is not None:
            samples.append(GaugeSample(key, name, bucket, text))
    return samples


class SpoolScan(Record):
    """What a spool file holds, read without changing it."""

    entries: int
    size: int
    """Bytes counted (received and sent) in its entries."""
    first_at: int | None
    """When its oldest entry was spooled."""
    state: Mapping[str, CounterState]
    """The newest entry's tracker state (empty without entries)."""
    good: int
    """Length of the readable part: the entries up to the first that is not one."""
    damaged: bool
    """Something follows the readable part that is more than one line cut short."""


def scan(path: Path) -> SpoolScan:
    """Read the spool at ``path`` (no file: an empty one), one line at a time."""
    entries = size = good = 0
    first_at = None
    state: Mapping[str, CounterState] = {}
    damaged = False
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return SpoolScan(0, 0, None, {}, 0, False)
    with handle:
        for line in handle:
            entry = parse_line(line)
            if entry is None:
                damaged = line.endswith(b"\n") or bool(handle.read(1))
                break
            entries += 1
            size += entry.size
            first_at = entry.at if first_at is None else first_at
            state = entry.state
            good += len(line)
    return SpoolScan(entries, size, first_at, state, good, damaged)


def read_entries(path: Path) -> Iterator[tuple[Entry, int]]:
    """Each readable entry, with the offset just after it."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return
    offset = 0
    with handle:
        for line in handle:
            entry = parse_line(line)
            if entry is None:
                return
            offset += len(line)
            yield entry, offset


class Spool:
    """The collector's spool file: opened once at start (a line cut short is dropped then,
    damage moved aside), appended to while the store fails, replayed when it answers."""

    def __init__(self, path: Path) -> None:
        self.path = path
        found = scan(path)
        if found.good < self._length():
            self._keep_readable(found)
        self.entries = found.entries
        self.size = found.size
        self.first_at = found.first_at
        self.state = dict(found.state)
        """The newest entry's tracker state."""

    def _length(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def _keep_readable(self, found: SpoolScan) -> None:
        """Cut the file after its readable part, so the next entry starts a line of its own;
        what was more than a line cut short goes to SITE.spool.damaged, for a person to see."""
        if found.damaged:
            self._set_aside(found.good, found.entries)
        else:
            log.warning("spool %s: its last entry was cut short (the collector stopped while "
                        "writing it) and is dropped; its bytes are counted again from the "
                        "entry before", self.path)
        os.truncate(self.path, found.good)
        with self.path.open("rb+") as handle:
            os.fsync(handle.fileno())

    def _set_aside(self, good: int, entries: int) -> None:
        """Append what follows the first ``good`` bytes (``entries`` readable entries) to
        SITE.spool.damaged, for a person to see."""
        with self.path.open("rb") as handle:
            handle.seek(good)
            rest = handle.read()
        damaged = self.path.with_name(self.path.name + ".damaged")
        with damaged.open("ab") as handle:
            handle.write(rest)
            os.fsync(handle.fileno())
        log.error("spool %s: %d bytes after its %d readable entries are damaged; moved to %s",
                  self.path, len(rest), entries, damaged)

    def append(self, entry: Entry) -> None:
        """Add ``entry`` at the end, on disk before this returns."""
        line = entry.line()
        created = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(descriptor, line)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        if created:
            sync_folder(str(self.path.parent))
        self.entries += 1
        self.size += entry.size
        self.first_at = entry.at if self.first_at is None else self.first_at
        self.state = dict(entry.state)

    def replay(self, store: Store) -> int:
        """Add every entry to ``store`` in order and remove the file; returns bytes newly
        counted. When the store fails, the entries not added yet are kept (the file replaced
        by them) and the ``StoreError`` raised."""
        added = done = 0
        batch: list[Entry] = []
        offset = end = 0
        try:
            for entry, end in read_entries(self.path):
                batch.append(entry)
                if len(batch) == REPLAY_BATCH:
                    added += _add(store, batch)
                    done, offset, batch = done + len(batch), end, []
            if batch:
                added += _add(store, batch)
        except Exception:
            if offset:
                self._keep_from(offset, done)
            raise
        if end < self._length():  # damaged since the spool was opened
            self._set_aside(end, done + len(batch))
        self.clear()
        return added

    def _keep_from(self, offset: int, done: int) -> None:
        with self.path.open("rb") as handle:
            handle.seek(offset)
            rest = handle.read()
        replace_file(self.path, rest, durable=True)
        found = scan(self.path)
        self.entries, self.size, self.first_at = found.entries, found.size, found.first_at
        log.info("spool %s: %d entries added to the store, %d still to add", self.path, done,
                 self.entries)

    def clear(self) -> None:
        remove_if_there(self.path)
        sync_folder(str(self.path.parent))
        self.entries = self.size = 0
        self.first_at = None

    def document(self) -> dict[str, Any]:
        """What the collector publishes of its spool (in its ``save`` document)."""
        return {"spooled": self.size, "spooled_entries": self.entries,
                "spooled_since": self.first_at, "spool": str(self.path)}


def _add(store: Store, batch: list[Entry]) -> int:
    """Several entries in one transaction: their deltas as they are (never merged, so each
    keeps the start the store knows it by), the newest tracker state, every key type."""
    keys = {key.key: key for entry in batch for key in entry.keys}
    added = store.add([delta for entry in batch for delta in entry.deltas], batch[-1].state,
                      gauge_samples(row for entry in batch for row in entry.gauges),
                      list(keys.values()))
    events = [event for entry in batch for event in entry.events]
    if events:
        store.add_events(events)
    return added


def newer_state(stored: Mapping[str, CounterState], spooled: Mapping[str, CounterState]
                ) -> dict[str, CounterState]:
    """Each key's newer reading of the two: the spool's is newer than the store's while its
    entries are not added yet."""
    state = dict(stored)
    for key, spooled_state in spooled.items():
        if key not in state or spooled_state.at > state[key].at:
            state[key] = spooled_state
    return state

"""``traffic migrate``: copy what a store holds, site by site, into another store.

Each site's tables (``traffic.store.TABLES``) are copied in chunks. Every chunk is written in
one transaction with a note in the target site's meta (``MARKER``: the source, the table and
where its next chunk starts), so a copy that was stopped (Ctrl-C, kill -9, a server gone)
continues where it stopped when run again. Afterwards the totals of every key, and the rows of
every table, are compared between the two stores.
"""

import json
import os
from collections.abc import Callable
from zoneinfo import ZoneInfo

from traffic.periods import bucket_start
from traffic.progress import Progress
from traffic.record import Record
from traffic.store import TABLES, Store, StoreError

MARKER = "migrate.from"
"""The target site's meta entry saying where its content was copied from: JSON
``{"from": SOURCE, "table": TABLE, "after": POSITION}`` while copying, ``{"from": SOURCE,
"done": true}`` once done. It stays, as a record of the site's origin."""
FAR_FUTURE = 4_102_444_800_000
"""2100: later than any count a store holds."""
CHUNK_ROWS = 5000

Opener = Callable[[str, str, bool], Store]
"""Opens the store at a URL for a site (creating it when told to)."""


class MigrationRefused(StoreError):
    """The copy would mix or lose counts; the message says why, in one line."""


class SiteCheck(Record):
    """A site's totals and rows compared after the copy: only what differs is listed."""

    site: str
    copied: bool
    """False when an earlier run had copied it already: only checked."""
    keys: int
    totals: tuple[int, int]
    """The site's bytes received and sent, all keys together, in the source."""
    differing_keys: dict[str, tuple[tuple[int, int], tuple[int, int]]]
    """Key -> its ``(rx, tx)`` in the source and in the target."""
    differing_rows: dict[str, tuple[int, int]]
    """Table -> its rows in the source and in the target."""

    @property
    def identical(self) -> bool:
        return not self.differing_keys and not self.differing_rows


def place(url: str) -> str:
    """The store ``url`` names, without credentials or options: how two URLs are compared, and
    how the target's ``MARKER`` names its source."""
    if url.startswith("sqlite://"):
        return "sqlite://" + os.path.realpath(url.removeprefix("sqlite://") or ".")
    scheme, _, rest = url.partition("://")
    authority, _, path = rest.partition("/")
    return f"{scheme}://{authority.rpartition('@')[2]}/{path.partition('?')[0] or 'traffic'}"


def all_time(tz: ZoneInfo) -> tuple[int, int]:
    """1970 to 2100, from local midnight to local midnight: the whole days that hold every
    count, read from the daily totals alone."""
    return bucket_start("day", 0, tz), bucket_start("day", FAR_FUTURE, tz)


def migrate(source_url: str, target_url: str, opener: Opener, site: str | None,
            default_site: str, tz: ZoneInfo, progress: Progress) -> list[SiteCheck]:
    """Copy ``site`` (every site when None) from ``source_url`` into ``target_url``, then
    compare. ``default_site`` opens the source to list its sites (a store from before sites
    belongs to the site that opens it first); ``tz`` is the stores' time zone."""
    source_place = place(source_url)
    if source_place == place(target_url):
        raise MigrationRefused("migrate: --to names the --from store itself")
    migration = _Migration(source_url, target_url, opener, source_place, all_time(tz))
    found = migration.store(source_url, site or default_site, "--from")
    try:
        sites = found.sites()
    finally:
        found.close()
    if site is not None and site not in sites:
        raise MigrationRefused(f"migrate: --from {_shown(source_url)} has no site {site!r}; "
                               f"it has {', '.join(map(repr, sites)) or 'none'}")
    if not sites:
        raise MigrationRefused(f"migrate: --from {_shown(source_url)} holds no site: "
                               "nothing to copy")
    chosen = [site] if site is not None else sites
    markers = {each: migration.prepare(each) for each in chosen}
    for each in chosen:
        if not markers[each].get("done"):
            migration.copy(each, markers[each], progress)
    progress.say("comparing each key's totals and each table's rows in both stores")
    return [migration.check(each, copied=not markers[each].get("done")) for each in chosen]


class _Migration:
    def __init__(self, source_url: str, target_url: str, opener: Opener,
                 source_place: str, span: tuple[int, int]) -> None:
        self.urls = {"--from": source_url, "--to": target_url}
        self.opener = opener
        self.source_place = source_place
        self.span = span
        """What the totals are compared over."""

    def store(self, url: str, site: str, option: str, claim: bool = False) -> Store:
        """The store, its errors said as this option's; with ``claim``, held as its site's
        writer: no collector may write it meanwhile (nor is one writing it now)."""
        try:
            store = self.opener(url, site, option == "--to")
        except StoreError as error:
            raise type(error)(f"migrate: {option}: {_reason(error)}") from None
        if claim:
            try:
                store.claim_writer()
            except StoreError as error:
                store.close()
                raise type(error)(f"migrate: {option}: {_reason(error)}; stop that collector "
                                  "first") from None
        return store

    def both(self, site: str, claim: bool) -> tuple[Store, Store]:
        source = self.store(self.urls["--from"], site, "--from", claim)
        try:
            return source, self.store(self.urls["--to"], site, "--to", claim)
        except BaseException:
            source.close()
            raise

    def prepare(self, site: str) -> dict:
        """The target site's ``MARKER`` (empty for a new copy), once sure that no collector
        writes either store and that the target site holds nothing but an earlier copy of
        this source."""
        source, target = self.both(site, claim=True)
        try:
            marker = json.loads(target.get_meta(MARKER) or "{}")
            origin = marker.get("from")
            if origin == self.source_place:
                return marker
            if origin is not None or _holds_anything(target):
                copied = f" copied from {origin}" if origin else ""
                raise MigrationRefused(
                    f"migrate: --to {_shown(self.urls['--to'])}: site {site!r} already holds "
                    f"counts{copied}; copy only into a store where the site is empty (nothing "
                    "is merged)")
            return marker
        finally:
            source.close()
            target.close()

    def copy(self, site: str, marker: dict, progress: Progress) -> None:
        source, target = self.both(site, claim=True)
        try:
            tables = list(TABLES)
            after = marker.get("after")
            if marker.get("table") in TABLES:
                tables = tables[tables.index(marker["table"]):]
            for table in tables:
                self._copy_table(source, target, table, after, progress)
                after = None
            target.set_meta(MARKER, json.dumps({"from": self.source_place, "done": True}))
        finally:
            source.close()
            target.close()

    def _copy_table(self, source: Store, target: Store, table: str, after: object,
                    progress: Progress) -> None:
        label = f"{source.site} {table}"
        with _SaidAs("--from"):
            total = source.count_rows(table)
            chunks = source.export_rows(table, after, CHUNK_ROWS)
        with _SaidAs("--to"):
            done = min(target.count_rows(table), total) if after is not None else 0
        progress.update(label, done, total)
        while True:
            with _SaidAs("--from"):
                chunk = next(chunks, None)
            if chunk is None:
                break
            rows = [row for row in chunk.rows if table != "meta" or row[0] != MARKER]
            with _SaidAs("--to"):
                target.import_rows(table, rows, {MARKER: json.dumps(
                    {"from": self.source_place, "table": table, "after": chunk.after})})
            done = min(done + len(chunk.rows), total)
            progress.update(label, done, total)
        if done < total:  # rows added meanwhile, or fewer copied than counted
            progress.update(label, total, total)

    def check(self, site: str, copied: bool) -> SiteCheck:
        source, target = self.both(site, claim=False)
        try:
            keys = sorted(set(source.known_keys()) | set(target.known_keys()))
            totals = {key: (source.totals(*self.span, [key]), target.totals(*self.span, [key]))
                      for key in keys}
            rows = {table: (source.count_rows(table), target.count_rows(table))
                    for table in TABLES if table != "meta"}
        finally:
            source.close()
            target.close()
        return SiteCheck(site, copied, len(keys),
                         (sum(pair[0][0] for pair in totals.values()),
                          sum(pair[0][1] for pair in totals.values())),
                         {key: pair for key, pair in totals.items() if pair[0] != pair[1]},
                         {table: pair for table, pair in rows.items() if pair[0] != pair[1]})


class _SaidAs:
    """A store's failure in the middle of the copy, said as this option's, with what to do."""

    def __init__(self, option: str) -> None:
        self.option = option

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        if isinstance(error, StoreError):
            raise type(error)(f"migrate: {self.option}: {_reason(error)}; run the same command "
                              "again to continue where it stopped") from None


def _holds_anything(store: Store) -> bool:
    return any(store.count_rows(table) for table in TABLES)


def _reason(error: StoreError) -> str:
    """A store's message without the ``store.url:`` it starts with (here the URL is an
    option's)."""
    return str(error).removeprefix("store.url: ")


def _shown(url: str) -> str:
    from traffic.store.mongo import masked_url

    return masked_url(url)

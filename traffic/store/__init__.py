"""The store: one protocol, backends chosen by URL."""

from collections.abc import Iterable, Iterator, Mapping, Sequence
from zoneinfo import ZoneInfo

from traffic.counters import CounterState, Delta
from traffic.hints import Any, Protocol
from traffic.record import Record, field

BILLED, UNBILLED, DEVICE, GAUGE, RETIRED = "billed", "unbilled", "device", "gauge", "retired"
ROLES = (BILLED, UNBILLED, DEVICE, GAUGE, RETIRED)
"""What a key's counts are: the link the contract bills (period totals, the quota and the alerts
add these up), another view of the same link (shown beside the bill with the difference, never
added), one device's share of the link, a gauge (signal, status: values, not bytes), or a
counter no longer read (its source left the config: kept as history, part of no total)."""


class Key(Record):
    """A stored key and what it is: readers take its role from here, not from the string."""

    key: str
    """How the counts name it: ``SOURCE:NAME`` (``kernel:ppp0``, ``router:wan``)."""
    source: str
    """The ``[[sources]]`` table that reads it."""
    name: str
    """What it is within the source: an interface, the router's WAN, a device."""
    role: str


class Event(Record):
    """Something that happened: the link went down or up, an attempt, a lock, an alert sent."""

    at: int
    kind: str
    detail: dict[str, Any] = field(default_factory=dict)
    duration_ms: int | None = None


class GaugeSample(Record):
    """A value read at ``at``: a signal level, a status word. Kept per 5 minutes (the mean of
    a number, the latest text)."""

    key: str
    name: str
    at: int
    value: float | str


class Delivery(Record):
    """One alert message still to be delivered to one ``alerts.notify`` entry: ``target`` is
    the entry's position when the alert was raised, ``fingerprint`` names its URL (see
    ``Store.set_notify_targets``), so that a message goes to that URL wherever it moved."""

    id: int
    created: int
    rule: str
    mark: str
    target: int
    title: str
    body: str
    attempts: int
    next_at: int
    sending_since: int | None
    """Set while a send is under way: after a crash, the message may or may not have gone."""
    fingerprint: str | None = None
    """None when no fingerprint was known for ``target`` (see ``set_notify_targets``)."""


ALERT_OUTCOMES = {"alert_sent": "sent", "alert_failed": "failed", "alert_given_up": "given_up",
                  "alert_unconfirmed": "unconfirmed"}
"""How a delivery of an alert went (see collector/notify.py): the event's kind, and its outcome
as ``traffic status`` and ``/metrics`` name it."""
ALERT_DELIVERY_KINDS = tuple(ALERT_OUTCOMES)
ALERT_EVENT_KINDS = ("alert", *ALERT_DELIVERY_KINDS)


class AlertCounts(Record):
    """The alerts' record in the store, counted at once."""

    events: dict[tuple[str, str], int]
    """Events of ``ALERT_EVENT_KINDS`` still kept (``retention.events``), by kind and rule."""
    pending: int
    """Deliveries waiting in the outbox: to be retried, or waiting for the link."""


TABLES: dict[str, tuple[str, ...]] = {
    "keys": ("key", "source", "name", "role"),
    "meta": ("name", "value"),
    "tracker": ("key", "life", "at", "rx", "tx", "held"),
    "alert_marks": ("mark", "at"),
    "outbox": ("created", "rule", "mark", "target", "title", "body", "attempts", "next_at",
               "sending_since", "fingerprint"),
    "events": ("at", "kind", "duration_ms", "detail"),
    "gauges": ("key", "name", "bucket", "sum", "count", "text"),
    "rollups": ("key", "resolution", "bucket", "rx", "tx"),
    "intervals": ("key", "start", "end", "rx", "tx"),
}
"""What a site's store holds, table by table, as ``export_rows`` gives it and ``import_rows``
takes it: the columns of each row, the same in every backend (an event's ``detail`` a dict, a
rollup's ``resolution`` a code of ``rollup.RESOLUTION_CODES``, a bucket its sums). Status
documents (``publish``) and the writer's claim are not part of it: they belong to the running
collector."""


class Chunk(Record):
    """Rows of one table (``TABLES``), and where the next chunk starts: ``after`` given back
    to ``export_rows`` continues after these rows (a value that JSON keeps as it is)."""

    rows: list[tuple[Any, ...]]
    after: Any


class StoreError(Exception):
    """The store cannot be opened or used; the message says what to fix."""


class NoStore(StoreError):
    """There is no store at ``store.url`` yet: the collector has not run."""


class StoreUnreachable(StoreError):
    """The store's server does not answer (yet): worth trying again, unlike a wrong setting."""


class Store(Protocol):
    def add(self, deltas: Iterable[Delta], tracker_state: Mapping[str, CounterState],
            gauges: Iterable[GaugeSample] = (), keys: Iterable[Key] = ()) -> int:
        """Store deltas, tracker state, gauge samples and the types of new or changed keys in
        one transaction; returns bytes newly counted.

        Idempotent per key and interval start: a replayed delta adds nothing.
        """

    def key_types(self) -> list[Key]:
        """The site's typed keys, by key."""

    def set_keys(self, keys: Iterable[Key]) -> None:
        """Type (or type again) these keys of the site."""

    def claim_writer(self) -> None:
        """Become the store's only collector, or raise StoreError naming the one that is.

        Two collectors counting the same link into one store would count every byte twice.
        """

    def replaced(self) -> str:
        """What happened to the store the writer claimed (deleted, replaced), or ""."""

    def consistent(self) -> Any:
        """A context manager (re-entrant) in which several calls see the store as one moment:
        no other thread's call on this store runs in between. Each call alone is safe from
        any thread without it: the store owns its thread-safety."""

    def reopen(self) -> None:
        """Open (or create) the store now at the same place and claim it again."""

    site: str
    """The site every read and write of this store is about."""

    def sites(self) -> list[str]:
        """Every site with counts or events in the store, this one or not, sorted."""

    def tracker_state(self) -> dict[str, CounterState]: ...

    def known_keys(self) -> list[str]: ...

    def series(self, resolution: str, start: int, end: int,
               keys: Iterable[str] | None = None) -> list[tuple[int, int, int]]:
        """``(bucket, rx, tx)`` for the stored buckets starting in ``[start, end)``."""

    def totals(self, start: int, end: int, keys: Iterable[str] | None = None) -> tuple[int, int]:
        """Bytes received and sent in ``[start, end)``."""

    def gauge_series(self, key: str, name: str, start: int, end: int
                     ) -> list[tuple[int, float | str]]:
        """``(5-minute bucket, value)`` of one gauge in ``[start, end)``."""

    def gauge_names(self) -> list[tuple[str, str]]:
        """``(key, name)`` of every gauge stored."""

    def first_bucket(self, resolution: str) -> int | None:
        """Start of the oldest stored bucket of ``resolution`` with traffic, of any key."""

    def add_events(self, events: Iterable[Event]) -> None: ...

    def events(self, since: int = 0, until: int | None = None, limit: int = 100,
               kinds: Iterable[str] | None = None) -> list[Event]:
        """Newest first; with ``kinds``, only events of those kinds."""

    def alert_counts(self) -> AlertCounts:
        """The alert events kept, by kind and rule, and the deliveries waiting, in one query
        (``/metrics`` asks at every scrape)."""

    def raise_alert(self, mark: str, event: Event,
                    deliveries: Iterable[tuple[int, str, str]]) -> bool:
        """In one transaction, unless ``mark`` is set already: set it, add ``event`` and queue
        one delivery ``(target, title, body)`` per notify entry, each with the fingerprint
        ``set_notify_targets`` gave for its target. False when the mark was set (the alert
        was raised before: by this run, an earlier one, or another collector)."""

    def has_alert_mark(self, mark: str) -> bool: ...

    def due_deliveries(self, now: int, limit: int = 20) -> list[Delivery]:
        """Deliveries whose time has come, oldest first."""

    def pending_deliveries(self) -> list[Delivery]: ...

    def delivery_started(self, delivery_id: int, now: int) -> None:
        """Note that a send begins (committed before the send)."""

    def set_notify_targets(self, fingerprints: Sequence[str]) -> None:
        """The fingerprint of each ``alerts.notify`` entry, by position: kept for the
        deliveries ``raise_alert`` queues from now on, and given at once to those queued
        without one (before fingerprints were kept)."""

    def delivery_ended(self, delivery_id: int, event: Event, retry_at: int | None = None,
                       hold_until: int | None = None) -> None:
        """In one transaction: record ``event``, and drop the delivery (sent, or given up) or,
        with ``retry_at``, count the failed attempt and try again then; with ``hold_until``,
        the other deliveries to the same URL (fingerprint) wait until then too."""

    def last_sample_at(self) -> int | None: ...

    def publish(self, name: str, document: dict[str, Any]) -> None:
        """Replace the site's status document ``name``: what the running collector tells its
        readers beside the counts (``traffic.published``). Kept apart from the counts: it
        never waits for a save, and a failing save can still be told."""

    def published(self, name: str) -> Any:
        """The site's latest status document ``name`` as published, or None."""

    def get_meta(self, name: str) -> str | None: ...

    def set_meta(self, name: str, value: str) -> None: ...

    def prune(self, now: int) -> int:
        """Drop what the retention settings no longer keep; returns rows removed."""

    def count_rows(self, table: str) -> int:
        """How many rows of ``table`` (a name in ``TABLES``) ``export_rows`` gives for the
        site."""

    def export_rows(self, table: str, after: Any = None, size: int = 5000) -> Iterator[Chunk]:
        """The site's rows of ``table`` in chunks of at most ``size``, always in the same
        order; with ``after`` (a chunk's), only those after that chunk: an interrupted copy
        continues where it stopped."""

    def import_rows(self, table: str, rows: Sequence[tuple[Any, ...]],
                    meta: Mapping[str, str] | None = None) -> None:
        """Write exported rows of ``table`` into the site, with the ``meta`` values, in one
        transaction. Importing a row again changes nothing, except that an event (which has
        no key of its own) is added twice: keep events' progress in ``meta``. A delivery
        gets a number of this store's; one already queued for the same mark and target is
        not queued again."""

    def close(self) -> None: ...


def open_store(url: str, tz: ZoneInfo, retention: Mapping[str, float] | None = None,
               create: bool = True, site: str = "home", status_dir: str | None = None) -> Store:
    """Open the store at ``url`` for ``site``; with ``create=False`` a store that is not there
    is an error (a mistyped ``store.url`` must not look like a new, empty store).
    ``status_dir`` is where a SQLite store keeps its status documents (by default the
    automatic runtime folder, see ``traffic.runtime``)."""
    if url.startswith("sqlite://"):
        from traffic.store.sqlite import SQLiteStore

        return SQLiteStore(url.removeprefix("sqlite://"), tz, retention or {}, create, site,
                           status_dir)
    if url.startswith(("mongodb://", "mongodb+srv://")):
        from traffic.store.mongo import MongoStore

        return MongoStore(url, tz, retention or {}, create, site)
    raise StoreError(f"store.url: unsupported store {url.split(':', 1)[0]!r} (use sqlite:// "
                      "or mongodb://)")


def open_site_store(config: Any, create: bool = False, site: str | None = None,
                    tz: ZoneInfo | None = None) -> Store:
    """The store of ``config``'s site, as its collector and its readers open it; with ``site``
    and ``tz``, another site of the same store, read in its own time zone (``traffic.sites``)."""
    from traffic.runtime import runtime_dir_name

    return open_store(config.store.url, tz or config.timezone, config.retention, create,
                      site or config.site, runtime_dir_name(config))

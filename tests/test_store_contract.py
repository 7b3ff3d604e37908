"""What every store backend promises, run against each (``store`` is parametrized by backend)."""

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import STOCKHOLM
from traffic.counters import CounterState, Delta
from traffic.store import Store, open_store

T0 = 1_795_000_000_000
STEP = 5_000


BACKENDS = ["sqlite", "mongodb"]
"""Each case runs on both."""


@pytest.fixture(params=BACKENDS)
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[str], Store]]:
    """Opens the store of a site, all sites in one store (one file, one database)."""
    if request.param == "sqlite":
        url = f"sqlite://{tmp_path}/traffic.db"
    else:
        from tests.mongo_server import database_url

        url = database_url(request.getfixturevalue("mongodb_base"))
    opened: list[Store] = []

    def open_site(site: str) -> Store:
        if url.startswith("sqlite://"):
            store = open_store(url, STOCKHOLM, site=site, status_dir=str(tmp_path / "run"))
        else:
            from traffic.store.mongo import MongoStore

            store = MongoStore(url, STOCKHOLM, {}, site=site)
        opened.append(store)
        return store

    yield open_site
    for store in opened:
        store.close()


@pytest.fixture
def store(opener: Callable[[str], Store]) -> Store:
    return opener("home")


def deltas(key: str, count: int, first: int = 0) -> list[Delta]:
    return [Delta(key, T0 + (first + i) * STEP, T0 + (first + i + 1) * STEP, 1000 + i, 10 + i)
            for i in range(count)]


def test_threads_share_one_store_without_a_lock_of_their_own(store: Store) -> None:
    """The collector's poll, save, keeper, alerts and delivery threads call one store."""
    errors: list[BaseException] = []
    per_thread, batches = 20, 10

    def writer(number: int) -> None:
        key = f"kernel:eth{number}"
        try:
            for batch in range(batches):
                added = deltas(key, per_thread, batch * per_thread)
                store.add(added, {key: CounterState("1", added[-1].end, 0, 0)})
                store.totals(T0, T0 + 10**9)
                store.known_keys()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    one_key = batches * sum(d.rx for d in deltas("k", per_thread))
    assert store.totals(T0, T0 + 10**9)[0] == 6 * one_key
    assert len(store.tracker_state()) == 6


def test_consistent_holds_other_threads_calls_until_it_ends(store: Store) -> None:
    saved = threading.Event()

    def save() -> None:
        store.add(deltas("kernel:wan0", 3), {"kernel:wan0": CounterState("1", T0, 0, 0)})
        saved.set()

    with store.consistent():
        before = store.totals(T0, T0 + 10**9)
        thread = threading.Thread(target=save)
        thread.start()
        time.sleep(0.2)
        assert not saved.is_set()
        with store.consistent():  # re-entrant
            assert store.totals(T0, T0 + 10**9) == before == (0, 0)
    thread.join(5)
    assert saved.is_set() and store.totals(T0, T0 + 10**9) == (3003, 33)


def test_every_read_and_write_is_scoped_to_the_store_site(
        store: Store, opener: Callable[[str], Store]) -> None:
    from traffic.store import Event

    other = opener("cabin")
    store.add(deltas("kernel:wan0", 4), {"kernel:wan0": CounterState("1", T0, 1, 1)})
    other.add(deltas("kernel:wan0", 2, 100), {"kernel:wan0": CounterState("2", T0, 2, 2)})
    other.add(deltas("router:wan", 1), {"router:wan": CounterState("3", T0, 3, 3)})
    store.add_events([Event(T0, "up")])
    other.add_events([Event(T0 + 1, "down", {"reason": "no answer"})])
    other.set_meta("keeper.state", "cabin's")
    other.publish("realtime", {"updated": T0, "points": [(T0, 1.5, 2.5)]})

    assert store.sites() == other.sites() == ["cabin", "home"]
    assert store.known_keys() == ["kernel:wan0"]
    assert other.known_keys() == ["kernel:wan0", "router:wan"]
    assert store.totals(T0, T0 + 10**9) == (4006, 46)
    assert other.totals(T0, T0 + 10**9, ["kernel:wan0"]) == (2001, 21)
    assert store.tracker_state()["kernel:wan0"].life == "1"
    assert other.tracker_state()["kernel:wan0"].life == "2"
    assert [event.kind for event in store.events()] == ["up"]
    assert [(e.kind, e.detail) for e in other.events()] == [("down", {"reason": "no answer"})]
    assert store.get_meta("keeper.state") is None and other.get_meta("keeper.state") == "cabin's"
    assert store.published("realtime") is None
    assert list(other.published("realtime")["points"][0]) == [T0, 1.5, 2.5]
    assert store.series("day", T0 - 86_400_000, T0 + 86_400_000)[0][1:] == (4006, 46)
    assert store.last_sample_at() == other.last_sample_at() == T0


def test_a_replayed_save_adds_nothing(store: Store) -> None:
    saved = deltas("kernel:wan0", 5)
    state = {"kernel:wan0": CounterState("1", T0 + 5 * STEP, 0, 0)}
    assert store.add(saved, state) == sum(d.rx + d.tx for d in saved)
    assert store.add([*saved, *deltas("kernel:wan0", 1, 5)], state) == 1000 + 10
    assert store.totals(T0, T0 + 6 * STEP) == (5010 + 1000, 60 + 10)
    bucket = T0 - T0 % 300_000  # the 30 s of deltas lie inside one 5-minute bucket
    assert store.series("5min", T0 - 300_000, T0 + 300_000) == [(bucket, 6010, 70)]
    assert store.first_bucket("5min") == bucket


def test_alerts_and_messages_are_scoped_to_the_site(store: Store,
                                                     opener: Callable[[str], Store]) -> None:
    from traffic.store import Event

    other = opener("cabin")
    other.set_notify_targets(["fp-a", "fp-b"])
    assert other.raise_alert("quota-80", Event(T0, "alert", {"rule": "quota"}),
                             [(0, "title", "body"), (1, "title", "body")])
    assert not other.raise_alert("quota-80", Event(T0 + 1, "alert", {"rule": "quota"}),
                                 [(0, "again", "again")])
    assert not store.has_alert_mark("quota-80") and other.has_alert_mark("quota-80")
    assert store.pending_deliveries() == []
    first, second = other.pending_deliveries()
    assert (first.fingerprint, second.fingerprint, first.next_at) == ("fp-a", "fp-b", T0)
    assert other.alert_counts().events == {("alert", "quota"): 1}
    assert other.alert_counts().pending == 2 and store.alert_counts().pending == 0

    other.delivery_started(first.id, T0 + 5)
    other.delivery_ended(first.id, Event(T0 + 6, "alert_failed", {"rule": "quota"}),
                         retry_at=T0 + 60_000)
    other.delivery_ended(second.id, Event(T0 + 7, "alert_sent", {"rule": "quota"}))
    [retried] = other.pending_deliveries()
    assert (retried.id, retried.attempts, retried.next_at, retried.sending_since) == (
        first.id, 1, T0 + 60_000, None)
    assert other.due_deliveries(T0 + 59_999) == [] and other.due_deliveries(T0 + 60_000)
    assert store.alert_counts().events == {}


def test_gauges_and_retention_per_site(store: Store, opener: Callable[[str], Store]) -> None:
    from traffic.store import GaugeSample

    other = opener("cabin")
    day = 86_400_000
    for at, value in ((T0, -90), (T0 + 60_000, -94)):
        other.add([], {}, [GaugeSample("router:wan", "rsrp", at, value),
                           GaugeSample("router:wan", "operator", at, "Telia")])
    store.add(deltas("kernel:wan0", 2), {"kernel:wan0": CounterState("1", T0, 0, 0)})
    other.add(deltas("router:wan", 2), {"router:wan": CounterState("1", T0, 0, 0)})
    assert other.gauge_names() == [("router:wan", "operator"), ("router:wan", "rsrp")]
    assert store.gauge_names() == []
    bucket = T0 - T0 % 300_000
    assert other.gauge_series("router:wan", "rsrp", T0 - day, T0 + day) == [(bucket, -92.0)]
    assert other.gauge_series("router:wan", "operator", T0 - day, T0 + day) == [
        (bucket, "Telia")]

    store.retention.update({"raw": 86400, "5min": 86400, "gauges": 86400})
    assert store.prune(T0 + 2 * day) > 0
    assert store.totals(T0, T0 + 10 * STEP) == (0, 0)  # raw and 5-minute buckets gone
    assert store.series("day", T0 - day, T0 + day) != []  # the day's bucket is kept
    assert other.totals(T0, T0 + 10 * STEP) == (2001, 21)  # the other site keeps its own
    assert other.gauge_names() != []


def test_a_store_from_before_sites_belongs_to_the_site_that_opens_it(tmp_path: Path) -> None:
    import sqlite3

    from traffic.store.sqlite import MIGRATIONS

    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    for number, script in enumerate(MIGRATIONS[:7]):
        db.executescript(f"BEGIN; {script}; PRAGMA user_version = {number + 1}; COMMIT;")
    db.execute("INSERT INTO intervals VALUES ('kernel:ppp0', ?, ?, 500, 50)", (T0, T0 + STEP))
    db.execute("INSERT INTO recent VALUES ('kernel:ppp0', 0, ?, 500, 50)", (T0,))
    db.execute("INSERT INTO tracker VALUES ('kernel:ppp0', 'boot', ?, 9, 9, 0)", (T0 + STEP,))
    db.execute("INSERT INTO meta VALUES ('keeper.state', '{}')")
    db.execute("INSERT INTO events (at, kind, detail) VALUES (?, 'up', '{}')", (T0,))
    db.close()

    store = open_store(f"sqlite://{path}", STOCKHOLM, site="o'hara")
    try:
        assert store.sites() == ["o'hara"]
        assert store.known_keys() == ["kernel:ppp0"]
        assert store.totals(T0, T0 + STEP) == (500, 50)
        assert store.get_meta("keeper.state") == "{}" and len(store.events()) == 1
    finally:
        store.close()
    assert open_store(f"sqlite://{path}", STOCKHOLM, site="home").known_keys() == []


def test_keys_are_typed_per_site_in_the_save_that_first_writes_them(
        store: Store, opener: Callable[[str], Store]) -> None:
    from traffic.store import BILLED, RETIRED, UNBILLED, Key

    wan = Key("kernel:wan0", "kernel", "wan0", BILLED)
    router = Key("router:wan", "router", "wan", UNBILLED)
    store.add(deltas("kernel:wan0", 1), {"kernel:wan0": CounterState("1", T0, 0, 0)},
              keys=[wan, router])
    store.set_keys([Key("router:wan", "router", "wan", RETIRED)])
    assert opener("cabin").key_types() == []
    assert store.key_types() == [wan, Key("router:wan", "router", "wan", RETIRED)]


def test_a_hold_after_a_failure_holds_only_that_urls_messages(store: Store) -> None:
    """Deliveries queued before fingerprints were known have none: a failure of one of them
    must not hold the others, which may go to other URLs."""
    from traffic.store import Event

    assert store.raise_alert("a", Event(T0, "alert", {"rule": "quota"}), [(0, "t", "b")])
    assert store.raise_alert("b", Event(T0, "alert", {"rule": "quota"}), [(1, "t", "b")])
    first, second = store.pending_deliveries()
    assert first.fingerprint is second.fingerprint is None
    store.delivery_ended(first.id, Event(T0 + 1, "alert_failed", {"rule": "quota"}),
                         retry_at=T0 + 600_000, hold_until=T0 + 600_000)
    assert [d.id for d in store.due_deliveries(T0 + 1)] == [second.id]


def _filled(store: Store) -> None:
    """A site with something in every table: counts, typed keys, gauges, events, a delivered
    and a pending alert, meta values."""
    from traffic.store import BILLED, Event, GaugeSample, Key

    store.set_notify_targets(["fp-a", "fp-b"])
    key = "kernel:wan0"
    store.add(deltas(key, 400), {key: CounterState("1", T0 + 400 * STEP, 7, 8, 1)},
              [GaugeSample("router:wan", "rsrp", T0, -90),
               GaugeSample("router:wan", "operator", T0, "Telia")],
              [Key(key, "kernel", "wan0", BILLED)])
    store.add_events([Event(T0, "down", {"reason": "no answer"}, 1500), Event(T0 + 1, "up")])
    assert store.raise_alert("quota-80", Event(T0 + 2, "alert", {"rule": "quota"}),
                             [(0, "80 %", "used"), (1, "80 %", "used")])
    sent, _ = store.pending_deliveries()
    store.delivery_ended(sent.id, Event(T0 + 3, "alert_sent", {"rule": "quota"}))
    store.set_meta("alerts.ip", '["10.0.0.1"]')


def _content(store: Store) -> dict[str, object]:
    """What a reader sees of a site, deliveries without their numbers (each store numbers
    its own)."""
    from dataclasses import replace

    return {"totals": store.totals(T0, T0 + 10**9), "keys": store.key_types(),
            "series": store.series("5min", T0 - 300_000, T0 + 10**9),
            "month": store.series("month", T0 - 40 * 86_400_000, T0 + 10**9),
            "tracker": store.tracker_state(), "gauges": store.gauge_names(),
            "rsrp": store.gauge_series("router:wan", "rsrp", T0 - 10**6, T0 + 10**6),
            "events": store.events(), "alerts": store.alert_counts(),
            "marked": store.has_alert_mark("quota-80"), "ip": store.get_meta("alerts.ip"),
            "pending": [replace(d, id=0) for d in store.pending_deliveries()]}


def test_every_table_of_a_site_exports_and_imports_in_chunks(
        store: Store, opener: Callable[[str], Store]) -> None:
    from traffic.store import TABLES

    _filled(store)
    copy = opener("cabin")
    for table in TABLES:
        chunks = list(store.export_rows(table, size=150))
        assert sum(len(chunk.rows) for chunk in chunks) == store.count_rows(table)
        assert all(len(chunk.rows) <= 150 for chunk in chunks)
        for chunk in chunks:
            copy.import_rows(table, chunk.rows)
        assert copy.count_rows(table) == store.count_rows(table), table
    assert store.count_rows("intervals") == 400 and store.count_rows("outbox") == 1
    assert _content(copy) == _content(store)
    [pending] = copy.pending_deliveries()
    assert (pending.target, pending.fingerprint) == (1, "fp-b")


def test_an_export_continues_after_a_chunk_and_a_chunk_imported_again_adds_nothing(
        store: Store, opener: Callable[[str], Store]) -> None:
    from traffic.store import TABLES

    _filled(store)
    copy = opener("cabin")
    for table in TABLES:
        first, *rest = store.export_rows(table, size=100)
        later = list(store.export_rows(table, after=first.after, size=100))
        assert [chunk.rows for chunk in later] == [chunk.rows for chunk in rest]
        for chunk in [first, *rest]:
            copy.import_rows(table, chunk.rows, {"copied": f"{table} {chunk.after}"})
        if table != "events":  # events have no key: their progress is kept in meta
            copy.import_rows(table, first.rows)
    assert _content(copy) == _content(store)
    assert copy.get_meta("copied") == f"intervals {[*store.export_rows('intervals')][-1].after}"


def test_imported_buckets_go_on_filling_from_the_collectors_saves(
        store: Store, opener: Callable[[str], Store]) -> None:
    key = "kernel:wan0"
    store.add(deltas(key, 10), {key: CounterState("1", T0 + 10 * STEP, 0, 0)})
    copy = opener("cabin")
    for table in ("rollups", "intervals", "tracker"):
        for chunk in store.export_rows(table):
            copy.import_rows(table, chunk.rows)
    later = deltas(key, 5, 10)
    for each in (store, copy):
        each.add(later, {key: CounterState("1", T0 + 15 * STEP, 0, 0)})
        each.add(deltas(key, 2, 80), {key: CounterState("1", T0 + 82 * STEP, 0, 0)})
    assert copy.totals(T0, T0 + 10**9) == store.totals(T0, T0 + 10**9)
    for resolution in ("5min", "hour", "day", "month"):
        assert copy.series(resolution, 0, T0 + 10**9) == store.series(resolution, 0, T0 + 10**9)


def test_a_key_known_only_by_its_buckets_is_known_in_the_copy(
        store: Store, opener: Callable[[str], Store]) -> None:
    store.add(deltas("router:wan", 3), {})
    store.add(deltas("router:wan", 3, 100), {})
    copy = opener("cabin")
    for chunk in store.export_rows("rollups", size=2):
        copy.import_rows("rollups", chunk.rows)
    assert copy.known_keys() == store.known_keys() == ["router:wan"]
    assert copy.sites() == ["cabin", "home"]
    assert copy.totals(0, T0 + 10**9) == store.totals(0, T0 + 10**9) == (6006, 66)


def test_a_key_known_only_by_its_buckets_is_forgotten_when_retention_drops_them(
        store: Store, opener: Callable[[str], Store]) -> None:
    day = 86_400_000
    store.add(deltas("router:wan", 3), {})
    store.add(deltas("kernel:wan0", 2, 100), {"kernel:wan0": CounterState("1", T0, 0, 0)})
    assert store.known_keys() == ["kernel:wan0", "router:wan"]
    assert store.totals(T0, T0 + 10**9, ["router:wan", "router:wan"]) == (3003, 33)
    assert store.series("5min", 0, T0 + 10**9, ["router:wan", "router:wan"])[0][1:] == (
        3003, 33)
    assert store.first_bucket("month") is not None
    store.retention.update({resolution: 86400 for resolution in ("5min", "hour", "day",
                                                                 "month")})
    store.prune(T0 + 400 * day)
    reopened = opener("home")  # SQLite's store keeps the keys it knew until its next save
    assert reopened.known_keys() == ["kernel:wan0"]  # the tracker still names it
    assert reopened.first_bucket("5min") is None
    assert reopened.totals(0, T0 + 10**9) == (0, 0)


def test_the_first_bucket_is_the_oldest_stored_whatever_retention_says(store: Store) -> None:
    from traffic.periods import bucket_start

    key, day = "kernel:wan0", 86_400_000
    store.add(deltas(key, 2), {key: CounterState("1", T0, 0, 0)})
    store.add(deltas(key, 2, 20 * day // STEP), {key: CounterState("1", T0, 0, 0)})
    firsts = {resolution: bucket_start(resolution, T0, STOCKHOLM)
              for resolution in ("5min", "hour", "day", "month")}
    store.retention.update({"5min": 86400, "hour": 86400})  # not pruned yet
    assert {resolution: store.first_bucket(resolution) for resolution in firsts} == firsts
    store.retention.clear()
    store.retention.update({"month": 86400})
    assert store.prune(T0 + 100 * day) > 0  # the months go, the other buckets stay
    assert store.first_bucket("month") is None
    del firsts["month"]
    assert {resolution: store.first_bucket(resolution) for resolution in firsts} == firsts

"""The SQLite store through its public methods, on a real file."""

import os
import shutil
import sqlite3
import subprocess
import tempfile
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import traffic
from traffic.counters import CounterState, Delta
from traffic.periods import to_ms
from traffic.store import StoreError, open_store
from traffic.store.sqlite import MIGRATIONS

TZ = ZoneInfo("Europe/Stockholm")
KEY = "kernel:ppp0"


def local(*parts: int) -> int:
    return to_ms(datetime(*parts, tzinfo=TZ))


def every_5s(start: int, end: int, rx: int, tx: int, key: str = KEY) -> list[Delta]:
    return [Delta(key, t, t + 5000, rx, tx) for t in range(start, end, 5000)]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "traffic.db"


@pytest.fixture
def store(db_path: Path):
    opened = open_store(f"sqlite://{db_path}", TZ, {"raw": 7 * 86400, "5min": 60 * 86400,
                                                    "hour": 730 * 86400})
    yield opened
    opened.close()


def test_file_is_wal_with_schema_version(store, db_path: Path) -> None:
    raw = sqlite3.connect(db_path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert raw.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_the_writer_gathers_many_saves_in_the_wal_before_a_checkpoint(db_path: Path) -> None:
    """The collector's connection lets the WAL grow well past SQLite's default 1000 pages
    before copying it into the file (``WRITER_CHECKPOINT_PAGES``); readers read it all."""
    from traffic.store.sqlite import WRITER_CHECKPOINT_PAGES

    writer = open_store(f"sqlite://{db_path}", TZ)
    writer.claim_writer()
    start = local(2026, 11, 10)
    writer.add(every_5s(start, start + 86_400_000, 7, 1),
               {KEY: CounterState("1", start + 86_400_000, 0, 0)})
    writer.add(every_5s(start + 86_400_000, start + 86_405_000, 7, 1),
               {KEY: CounterState("1", start + 86_405_000, 0, 0)})
    assert writer.totals(start, start + 86_405_000) == (17_281 * 7, 17_281)
    raw = sqlite3.connect(db_path)
    _, frames, _ = raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert 1000 < frames < WRITER_CHECKPOINT_PAGES
    raw.close()
    writer.close()


def test_newer_schema_is_refused(db_path: Path) -> None:
    raw = sqlite3.connect(db_path)
    raw.execute("PRAGMA user_version = 99")
    raw.close()
    with pytest.raises(StoreError, match="written by a newer Traffic"):
        open_store(f"sqlite://{db_path}", TZ)


def test_unwritable_location_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreError, match=r"^store.url: cannot open .*file/traffic.db"):
        open_store(f"sqlite://{tmp_path}/file/traffic.db", TZ)


def test_add_then_read_back_every_resolution(store) -> None:
    start = local(2026, 11, 10, 12)
    deltas = every_5s(start, start + 3_600_000, 1000, 10)
    assert store.add(deltas, {}) == 720 * 1010
    assert store.totals(start, start + 3_600_000) == (720_000, 7_200)
    five = store.series("5min", start, start + 3_600_000)
    assert len(five) == 12 and all(point[1:] == (60_000, 600) for point in five)
    assert store.series("hour", start, start + 3_600_000) == [(start, 720_000, 7_200)]
    assert store.series("day", local(2026, 11, 10), local(2026, 11, 11)) == [
        (local(2026, 11, 10), 720_000, 7_200)]
    assert store.series("month", local(2026, 11, 1), local(2026, 12, 1)) == [
        (local(2026, 11, 1), 720_000, 7_200)]


def test_replay_adds_nothing(store) -> None:
    start = local(2026, 11, 10, 12)
    deltas = every_5s(start, start + 60_000, 500, 50)
    store.add(deltas, {})
    assert store.add(deltas, {}) == 0
    assert store.add([*deltas[-3:], *every_5s(start + 60_000, start + 70_000, 1, 1)], {}) == 4
    assert store.totals(start, start + 3_600_000) == (12 * 500 + 2, 12 * 50 + 2)


def test_delta_spanning_buckets_is_shared_exactly(store) -> None:
    start = local(2026, 11, 10, 12, 58)
    store.add([Delta(KEY, start, start + 10 * 60_000, 1_000_003, 7)], {})  # 12:58 .. 13:08
    five = store.series("5min", start - 300_000, start + 900_000)
    assert [b for b, _, _ in five] == [local(2026, 11, 10, 12, 55), local(2026, 11, 10, 13),
                                       local(2026, 11, 10, 13, 5)]
    assert sum(rx for _, rx, _ in five) == 1_000_003 and sum(tx for _, _, tx in five) == 7
    assert [rx for _, rx, _ in five] == [200_001, 500_001, 300_001]
    hours = store.series("hour", local(2026, 11, 10), local(2026, 11, 11))
    assert [(rx, tx) for _, rx, tx in hours] == [(200_001, 1), (800_002, 6)]


def test_autumn_dst_day_holds_25_hours(store) -> None:
    day, next_day = local(2026, 10, 25), local(2026, 10, 26)
    store.add(every_5s(day, next_day, 100, 1), {})
    assert store.series("day", day, next_day) == [(day, 25 * 720 * 100, 25 * 720)]
    hours = store.series("hour", day, next_day)
    assert len(hours) == 25 and {rx for _, rx, _ in hours} == {72_000}
    assert store.totals(day, next_day) == (25 * 72_000, 25 * 720)


def test_totals_add_up_across_any_split(store) -> None:
    start = local(2026, 11, 10, 11, 3, 2)
    store.add(every_5s(start, start + 5 * 3_600_000, 997, 13), {})
    whole = store.totals(start - 1, start + 6 * 3_600_000)
    assert whole == (997 * 3600, 13 * 3600)
    for cut in (start + 61_234, local(2026, 11, 10, 12, 0, 2), start + 2 * 3_600_000 + 7):
        left = store.totals(start - 1, cut)
        right = store.totals(cut, start + 6 * 3_600_000)
        assert abs(left[0] + right[0] - whole[0]) <= 1, cut
        assert abs(left[1] + right[1] - whole[1]) <= 1, cut


def test_tracker_state_is_saved_with_deltas(store, db_path: Path) -> None:
    state = {KEY: CounterState("boot/3", 5000, 123, 456)}
    store.add([Delta(KEY, 0, 5000, 123, 456)], state)
    store.close()
    reopened = open_store(f"sqlite://{db_path}", TZ)
    assert reopened.tracker_state() == state
    assert reopened.last_sample_at() == 5000
    assert reopened.known_keys() == [KEY]
    reopened.close()


def test_failed_add_changes_nothing(store) -> None:
    good = Delta(KEY, 0, 5000, 1, 1)
    with pytest.raises((TypeError, sqlite3.Error)):
        store.add([good, Delta(KEY, 5000, 10000, "many", 1)], {KEY: CounterState("x", 1, 1, 1)})
    assert store.totals(0, 10_000) == (0, 0) and store.tracker_state() == {}


def test_keys_filter(store) -> None:
    start = local(2026, 11, 10, 12)
    store.add(every_5s(start, start + 60_000, 10, 0) +
              every_5s(start, start + 60_000, 1, 0, key="kernel:wwan0"), {})
    assert store.totals(start, start + 60_000) == (132, 0)
    assert store.totals(start, start + 60_000, ["kernel:wwan0"]) == (12, 0)
    assert store.series("5min", start, start + 300_000, ["kernel:ppp0"]) == [(start, 120, 0)]


def test_retention_prunes_old_rows_only(store) -> None:
    now = local(2026, 11, 10, 12)
    old = now - 90 * 86_400_000
    store.add(every_5s(old, old + 600_000, 10, 1) + every_5s(now - 600_000, now, 10, 1), {})
    assert store.prune(now) > 0
    assert store.series("5min", old - 1, old + 600_000) == []
    assert store.series("day", old - 86_400_000, old + 86_400_000) != []  # days kept forever
    assert store.totals(now - 600_000, now) == (1200, 120)


def test_meta(store) -> None:
    assert store.get_meta("period_reset_at") is None
    store.set_meta("period_reset_at", "123")
    assert store.get_meta("period_reset_at") == "123"


def test_only_one_writer(store, db_path: Path) -> None:
    store.claim_writer()
    other = open_store(f"sqlite://{db_path}", TZ)
    with pytest.raises(StoreError, match=rf"another collector \(pid {os.getpid()}\) is already "
                                         rf"writing to {db_path}$"):
        other.claim_writer()
    store.close()
    other.claim_writer()  # free again once the first writer is gone
    other.close()


@pytest.mark.parametrize("alias", ["symlink", "hard link", "the same name"])
def test_one_writer_however_the_store_is_named(store, db_path: Path, alias: str) -> None:
    """The lock is on the store file itself: another name for it does not let a second
    collector in (it would count every byte twice), and the refusal names the holder."""
    store.claim_writer()
    other_path = db_path.with_name("other.db")
    if alias == "symlink":
        other_path.symlink_to(db_path)
    elif alias == "hard link":
        os.link(db_path, other_path)
    else:
        other_path = db_path
    with pytest.raises(StoreError, match=rf"another collector \(pid {os.getpid()}\) is already "
                                         rf"writing to {other_path}$"):
        open_store(f"sqlite://{other_path}", TZ).claim_writer()


def test_small_saves_and_one_bulk_add_agree(tmp_path: Path) -> None:
    """The collector saves a minute at a time, out of order after a restart; a bulk import adds
    days at once. Both must give the same buckets."""
    start = local(2026, 10, 24, 22, 2, 30)
    deltas = every_5s(start, start + 6 * 3_600_000, 997, 13)  # across the autumn DST night
    late = [Delta(KEY, start - 3_600_000, start - 3_590_000, 5, 5)]  # older than the rest
    bulk = open_store(f"sqlite://{tmp_path}/bulk.db", TZ)
    bulk.add(deltas + late, {})
    small = open_store(f"sqlite://{tmp_path}/small.db", TZ)
    for i in range(0, len(deltas), 12):
        small.add(deltas[i:i + 12], {})
        if i == 600:
            small.add(late, {})
    span = (start - 86_400_000, start + 86_400_000)
    for resolution in ("5min", "hour", "day", "month"):
        assert small.series(resolution, *span) == bulk.series(resolution, *span), resolution
    assert small.totals(*span) == bulk.totals(*span) == (997 * 4320 + 5, 13 * 4320 + 5)
    assert len(small.series("hour", *span)) == 8  # 22:00 .. 04:00 with 02:00 twice


def test_schema_1_files_are_migrated(db_path: Path) -> None:
    raw = sqlite3.connect(db_path)
    raw.executescript(MIGRATIONS[0] + "; PRAGMA user_version = 1;")
    raw.execute("INSERT INTO rollups VALUES (?, 2, ?, 100, 10)", (KEY, local(2026, 11, 1)))
    raw.commit()
    raw.close()
    store = open_store(f"sqlite://{db_path}", TZ)
    day = local(2026, 11, 1)
    store.add([Delta(KEY, day + 60_000, day + 65_000, 1, 1)], {})
    assert store.series("day", day, day + 86_400_000) == [(day, 101, 11)]
    store.close()



def test_retention_prunes_old_events(db_path: Path) -> None:
    from traffic.store import Event

    store = open_store(f"sqlite://{db_path}", TZ, {"events": 730 * 86400})
    now = local(2026, 11, 10, 12)
    store.add_events([Event(now - 800 * 86_400_000, "down"), Event(now - 86_400_000, "up")])
    assert store.prune(now) == 1
    assert [e.kind for e in store.events()] == ["up"]
    store.close()


@pytest.mark.parametrize("create", [True, False])
def test_a_folder_given_as_the_store_is_named_as_such(tmp_path: Path, create: bool) -> None:
    with pytest.raises(StoreError) as raised:
        open_store(f"sqlite://{tmp_path}", TZ, create=create)
    assert str(raised.value) == (f"store.url: {tmp_path} is a folder; name the file in it, "
                                 f"such as sqlite://{tmp_path}/traffic.db")


def test_an_empty_file_is_not_taken_for_a_store(tmp_path: Path) -> None:
    path = tmp_path / "traffic.db"
    path.write_bytes(b"")
    with pytest.raises(StoreError) as raised:
        open_store(f"sqlite://{path}", TZ, create=False)
    assert str(raised.value) == (f"store.url: {path} is not a Traffic store (it is empty, or "
                                 "another program's file)")
    assert path.stat().st_size == 0 and sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_another_programs_database_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    other = sqlite3.connect(path)
    other.execute("CREATE TABLE photos (name TEXT)")
    other.close()
    with pytest.raises(StoreError, match="is not a Traffic store"):
        open_store(f"sqlite://{path}", TZ)
    tables = sqlite3.connect(path).execute("SELECT name FROM sqlite_master").fetchall()
    assert tables == [("photos",)]


def test_a_reader_without_write_access_beside_the_store_is_told_what_to_do() -> None:
    """Another user (here ``nobody``) reading a store in a folder it cannot write to."""
    top = Path(tempfile.mkdtemp(prefix="traffic-ro-", dir="/tmp"))
    try:
        shutil.copytree(Path(traffic.__file__).parent, top / "traffic")
        (top / "store").mkdir()
        open_store(f"sqlite://{top}/store/traffic.db", TZ).close()
        for path in (top, top / "store"):
            path.chmod(0o755)
        script = ("from zoneinfo import ZoneInfo; from traffic.store import open_store; "
                  f"open_store('sqlite://{top}/store/traffic.db', ZoneInfo('UTC'), create=False)")
        result = subprocess.run(["/usr/bin/python3", "-c", script], capture_output=True,
                                text=True, user="nobody", cwd="/",
                                env={"PYTHONPATH": str(top), "PATH": "/usr/bin:/bin"})
    finally:
        shutil.rmtree(top)
    assert result.stderr.splitlines()[-1] == (
        f"traffic.store.StoreError: store.url: cannot read {top}/store/traffic.db as user "
        f"nobody: SQLite also writes beside it (the -wal and -shm files in {top}/store); run "
        "this as the collector's user, e.g. with sudo")


def test_gauges_are_kept_per_five_minutes_with_the_deltas(store, db_path: Path) -> None:
    """A number is its bucket's mean, a text its latest; a replayed save keeps the mean."""
    from traffic.store import GaugeSample

    start = local(2026, 11, 10, 12, 0)
    samples = [GaugeSample("hilink:wan", "rsrp", start + i * 10_000, -90.0 - i) for i in range(3)]
    samples += [GaugeSample("hilink:wan", "operator", start + 20_000, "Telia"),
                GaugeSample("hilink:wan", "rsrp", start + 300_000, -80.0)]
    state = {"hilink:wan": CounterState("SERIAL", start + 300_000, 10, 5, held=1)}
    store.add([Delta("hilink:wan", start, start + 300_000, 10, 5)], state, samples)
    store.add([], state, samples[:3])
    assert store.gauge_series("hilink:wan", "rsrp", start, start + 600_000) == [
        (start, -91.0), (start + 300_000, -80.0)]
    assert store.gauge_series("hilink:wan", "operator", start, start + 600_000) == [
        (start, "Telia")]
    assert store.gauge_names() == [("hilink:wan", "operator"), ("hilink:wan", "rsrp")]
    store.close()
    reopened = open_store(f"sqlite://{db_path}", TZ, {"gauges": 86400})
    assert reopened.tracker_state()["hilink:wan"].held == 1
    assert reopened.prune(start + 86_400_000 + 600_000) >= 2
    assert reopened.gauge_series("hilink:wan", "rsrp", 0, 2**62) == []
    assert reopened.gauge_names() == []  # none of their samples is kept any more
    reopened.close()


def test_an_alert_is_raised_once_and_its_deliveries_are_kept(store, db_path: Path) -> None:
    """The mark, the event and the deliveries are one transaction; a second raise of the same
    mark (a restart, another collector) adds nothing; a failed delivery is retried later."""
    from traffic.store import Event

    event = Event(1_000, "alert", {"rule": "threshold", "text": "50 % used"})
    assert store.raise_alert("threshold:50:p1", event, [(0, "Traffic", "50 % used"),
                                                        (1, "Traffic", "50 % used")])
    assert not store.raise_alert("threshold:50:p1", event, [(0, "Traffic", "again")])
    assert store.has_alert_mark("threshold:50:p1") and not store.has_alert_mark("other")
    first, second = store.due_deliveries(1_000)
    assert (first.target, second.target, first.body) == (0, 1, "50 % used")
    store.delivery_started(first.id, 2_000)
    store.delivery_ended(first.id, Event(2_100, "alert_sent", {"rule": "threshold"}))
    store.delivery_ended(second.id, Event(2_100, "alert_failed", {"rule": "threshold"}),
                         retry_at=60_000)
    assert store.due_deliveries(59_999) == []
    store.close()
    reopened = open_store(f"sqlite://{db_path}", TZ)
    [left] = reopened.pending_deliveries()
    assert (left.target, left.attempts, left.next_at, left.sending_since) == (1, 1, 60_000, None)
    assert [e.kind for e in reopened.events()] == ["alert_failed", "alert_sent", "alert"]
    reopened.close()


def test_alert_events_are_found_and_counted_without_reading_the_others(db_path: Path) -> None:
    """events(kinds=...) picks the alerts' record out of the keeper's events; alert_counts()
    counts it by kind and rule, with the deliveries waiting, in one query on an index."""
    from traffic.store import AlertCounts, Event

    store = open_store(f"sqlite://{db_path}", TZ, {"events": 730 * 86400})
    now = local(2026, 11, 10, 12)
    store.add_events([Event(now - 3000, "down", {"reason": "ppp0 is not there"}),
                      Event(now - 1000, "up", {"reason": "received bytes"}, 2000)])
    for mark, rule, at in [("threshold:50:p", "threshold", now - 2000),
                           ("threshold:80:p", "threshold", now), ("burst:h", "burst", now)]:
        store.raise_alert(mark, Event(at, "alert", {"rule": rule, "mark": mark}),
                          [(0, rule, "text"), (1, rule, "text")])
    sent, failed, *_ = store.due_deliveries(now - 2000)
    store.delivery_ended(sent.id, Event(now + 1, "alert_sent", {"rule": "threshold"}))
    store.delivery_ended(failed.id, Event(now + 2, "alert_failed", {"rule": "threshold"}),
                         retry_at=now + 30_000)
    assert store.events(kinds=["alert_sent", "alert_failed"]) == [
        Event(now + 2, "alert_failed", {"rule": "threshold"}),
        Event(now + 1, "alert_sent", {"rule": "threshold"})]
    assert [e.detail["mark"] for e in store.events(now - 2000, now, kinds=["alert"])] == [
        "threshold:50:p"]
    assert [e.kind for e in store.events(kinds=["down", "up"], limit=1)] == ["up"]
    assert store.events(kinds=[]) == []
    assert store.alert_counts() == AlertCounts(
        {("alert", "threshold"): 2, ("alert", "burst"): 1, ("alert_sent", "threshold"): 1,
         ("alert_failed", "threshold"): 1}, pending=5)
    plan = " ".join(str(row) for row in store.db.execute(
        "EXPLAIN QUERY PLAN SELECT kind, COUNT(*) FROM events WHERE kind IN ('alert') "
        "GROUP BY 1"))
    assert "events_kind" in plan
    store.prune(now + 731 * 86_400_000)  # the events are gone; the outbox is not
    assert store.alert_counts() == AlertCounts({}, pending=5)
    store.close()


def test_schema_5_stores_get_the_events_kind_index(db_path: Path) -> None:
    raw = sqlite3.connect(db_path)
    raw.executescript("; ".join(MIGRATIONS[:5]) + "; PRAGMA user_version = 5;")
    raw.execute("INSERT INTO events (at, kind, detail) VALUES (1, 'alert', ?)",
                ('{"rule": "burst"}',))
    raw.commit()
    raw.close()
    store = open_store(f"sqlite://{db_path}", TZ)
    assert store.alert_counts().events == {("alert", "burst"): 1}
    store.close()
    raw = sqlite3.connect(db_path)
    assert raw.execute("SELECT name FROM sqlite_master WHERE name = 'events_kind'").fetchone()
    assert raw.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    raw.close()


def test_schema_9_stores_are_ordered_by_time_and_keep_every_row(db_path: Path) -> None:
    """Migration 10 puts time before key in the primary keys of intervals and rollups (a save
    then appends in one place per table); every row and every figure stays as it was."""
    raw = sqlite3.connect(db_path)
    raw.executescript("; ".join(MIGRATIONS[:9]).replace("{site}", "'home'")
                      + "; PRAGMA user_version = 9;")
    raw.executemany("INSERT INTO intervals VALUES ('home', ?, ?, ?, ?, ?)",
                    [(key, t, t + 5000, 10, 1) for t in range(0, 600_000, 5000)
                     for key in ("kernel:eth0", "kernel:eth1")])
    raw.executemany("INSERT INTO rollups VALUES ('home', ?, 0, ?, 100, 10)",
                    [(key, t) for t in range(0, 3_600_000, 300_000)
                     for key in ("kernel:eth0", "kernel:eth1")])
    raw.commit()
    before = {table: sorted(raw.execute(f"SELECT * FROM {table}"))
              for table in ("intervals", "rollups")}
    raw.close()
    store = open_store(f"sqlite://{db_path}", TZ)
    assert store.totals(0, 600_000, ["kernel:eth0"]) == (200, 20)
    assert store.totals(5000, 15_000, ["kernel:eth0"]) == (20, 2)
    assert store.series("5min", 0, 3_600_000, ["kernel:eth1"])[0] == (0, 100, 10)
    store.close()
    raw = sqlite3.connect(db_path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    for table, first_columns in (("intervals", ["site", "start", "key"]),
                                 ("rollups", ["site", "resolution", "bucket", "key"])):
        assert sorted(raw.execute(f"SELECT * FROM {table}")) == before[table]
        primary = sorted((row[5], row[1]) for row in raw.execute(f"PRAGMA table_info({table})")
                         if row[5])
        assert [name for _, name in primary] == first_columns, table
    raw.close()


def test_schema_11_stores_order_gauges_by_time_and_keep_every_row(db_path: Path) -> None:
    """Migration 12 puts time before key and name in the gauges' primary key (a save's samples
    then sit together) and lists each site's gauges apart; every row stays as it was."""
    raw = sqlite3.connect(db_path)
    raw.executescript("; ".join(MIGRATIONS[:11]).replace("{site}", "'home'")
                      + "; PRAGMA user_version = 11;")
    raw.executemany("INSERT INTO gauges VALUES (?, 'hilink:wan', ?, ?, ?, 1, ?)",
                    [(site, name, bucket, -90.0 if name == "rsrp" else 0.0,
                      None if name == "rsrp" else "Telia")
                     for site in ("home", "cabin") for name in ("rsrp", "operator")
                     for bucket in range(0, 3_600_000, 300_000)])
    raw.commit()
    before = sorted(raw.execute("SELECT * FROM gauges"))
    raw.close()
    store = open_store(f"sqlite://{db_path}", TZ)
    assert store.gauge_names() == [("hilink:wan", "operator"), ("hilink:wan", "rsrp")]
    assert store.gauge_series("hilink:wan", "rsrp", 600_000, 1_200_000) == [
        (600_000, -90.0), (900_000, -90.0)]
    store.close()
    raw = sqlite3.connect(db_path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert sorted(raw.execute("SELECT * FROM gauges")) == before
    primary = sorted((row[5], row[1]) for row in raw.execute("PRAGMA table_info(gauges)")
                     if row[5])
    assert [name for _, name in primary] == ["site", "bucket", "key", "name"]
    assert sorted(raw.execute("SELECT * FROM gauge_names")) == [
        (site, "hilink:wan", name) for site in ("cabin", "home") for name in ("operator", "rsrp")]
    raw.close()


def _written() -> int:
    """Bytes this process has sent to storage (``write_bytes``, counted as pages get dirty)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    raise AssertionError("no write_bytes in /proc/self/io")


def _written_back(db_path: Path) -> None:
    """Write the store's dirty pages to the disk, as the kernel does within 30 s."""
    for suffix in ("", "-wal", "-shm"):
        descriptor = os.open(f"{db_path}{suffix}", os.O_RDWR)
        try:
            os.fdatasync(descriptor)
        finally:
            os.close(descriptor)


def test_the_first_read_after_a_save_writes_nothing(store, db_path: Path) -> None:
    """The next read after a save (the alert checks', a reader's, minutes later) dirties no
    page: the save takes its WAL read mark while its page of the -shm file is dirty anyway. A
    commit by another connection, which takes none, shows what that read would cost."""
    now = local(2026, 11, 10, 12)
    store.add(every_5s(now, now + 600_000, 10, 1), {KEY: CounterState("1", now, 0, 0)})
    _written_back(db_path)
    before = _written()
    assert store.tracker_state()[KEY].at == now
    assert _written() - before == 0
    raw = sqlite3.connect(db_path)
    raw.execute("INSERT INTO meta VALUES ('home', 'other', 'writer')")
    raw.commit()
    raw.close()
    _written_back(db_path)
    before = _written()
    store.tracker_state()
    assert _written() - before == os.sysconf("SC_PAGE_SIZE")


def test_deliveries_name_their_url_by_fingerprint_and_wait_together(db_path: Path) -> None:
    """Schema 6 deliveries (by position only) get the fingerprint of the entry at their
    position when the targets are first given; new ones get theirs when raised; a failure held
    with ``hold_until`` makes the same URL's other deliveries wait, and no other URL's."""
    from traffic.store import Event

    raw = sqlite3.connect(db_path)
    raw.executescript("; ".join(MIGRATIONS[:6]) + "; PRAGMA user_version = 6;")
    raw.executemany("INSERT INTO outbox (created, rule, mark, target, title, body, next_at) "
                    "VALUES (1, 'burst', 'old', ?, 't', 'b', 1)", [(0,), (1,), (5,)])
    raw.commit()
    raw.close()
    store = open_store(f"sqlite://{db_path}", TZ)
    assert {d.fingerprint for d in store.pending_deliveries()} == {None}
    store.set_notify_targets(["fp-a", "fp-b"])
    assert sorted((d.target, d.fingerprint or "") for d in store.pending_deliveries()) == [
        (0, "fp-a"), (1, "fp-b"), (5, "")]
    store.set_notify_targets(["fp-b", "fp-a"])  # reordered: queued ones keep theirs
    assert store.raise_alert("new", Event(2, "alert", {"rule": "threshold"}),
                             [(0, "t", "b"), (1, "t", "b"), (2, "t", "b")])
    by_mark = sorted((d.mark, d.target, d.fingerprint or "") for d in store.pending_deliveries())
    assert by_mark == [("new", 0, "fp-b"), ("new", 1, "fp-a"), ("new", 2, ""),
                       ("old", 0, "fp-a"), ("old", 1, "fp-b"), ("old", 5, "")]
    [failing] = [d for d in store.due_deliveries(10, 50) if (d.mark, d.target) == ("old", 0)]
    store.delivery_ended(failing.id, Event(10, "alert_failed", {}), retry_at=30_010,
                         hold_until=30_010)
    waits = {(d.mark, d.fingerprint or ""): (d.next_at, d.attempts)
             for d in store.pending_deliveries()}
    assert waits == {("old", "fp-a"): (30_010, 1), ("new", "fp-a"): (30_010, 0),
                     ("old", "fp-b"): (1, 0), ("new", "fp-b"): (2, 0),
                     ("old", ""): (1, 0), ("new", ""): (2, 0)}
    given_up = next(d for d in store.pending_deliveries() if d.fingerprint == "fp-a"
                    and d.mark == "old")
    store.delivery_ended(given_up.id, Event(20, "alert_given_up", {}), hold_until=90_000)
    assert [(d.mark, d.next_at) for d in store.pending_deliveries()
            if d.fingerprint == "fp-a"] == [("new", 90_000)]
    store.close()


def test_a_second_collector_through_a_symlink_is_refused(tmp_path: Path) -> None:
    """Through the real command: a collector runs; another, given a symlink to its store,
    exits 2 with one line naming the first one's pid."""
    import sys

    from tests.collector_process import HostCollector, wait_until
    from tests.stack import clean_env

    first = HostCollector(tmp_path, '[[sources]]\ntype = "kernel"\ninterfaces = ["lo"]\n')
    first.start()
    try:
        wait_until(lambda: (tmp_path / "run" / "home.realtime").exists(),
                   "the first collector")
        (tmp_path / "alias.db").symlink_to(tmp_path / "traffic.db")
        config = tmp_path / "second.toml"
        config.write_text(f'[store]\nurl = "sqlite://{tmp_path}/alias.db"\n'
                          f'[collector]\nruntime_dir = "{tmp_path}/run2"\n'
                          '[[sources]]\ntype = "kernel"\ninterfaces = ["lo"]\n')
        second = subprocess.run([sys.executable, "-m", "cli", "--config", str(config),
                                 "collect"], capture_output=True, text=True, env=clean_env(),
                                timeout=60)
        assert second.returncode == 2
        assert first.process is not None
        assert second.stderr == (f"traffic: store.url: another collector (pid "
                                 f"{first.process.pid}) is already writing to "
                                 f"{tmp_path}/alias.db\n")
    finally:
        first.stop()


def test_a_collector_that_may_not_write_the_shm_file_says_so_in_one_line(
        tmp_path: Path) -> None:
    """A ``-shm`` file left by another user (a reader run as root while the collector runs as
    its own user) made the collector fail on its first write with a traceback. Run here as
    root without the capability to override file modes, as a non-root collector would be."""
    import sys

    from tests.stack import clean_env

    tmp_path.chmod(0o777)
    config = tmp_path / "traffic.toml"
    config.write_text(f'[store]\nurl = "sqlite://{tmp_path}/traffic.db"\n'
                      f'[collector]\nruntime_dir = "{tmp_path}/run"\n'
                      '[[sources]]\ntype = "kernel"\ninterfaces = ["lo"]\n')
    open_store(f"sqlite://{tmp_path}/traffic.db", TZ).close()
    reader = sqlite3.connect(tmp_path / "traffic.db")  # keeps the -wal and -shm files
    reader.execute("SELECT COUNT(*) FROM meta").fetchone()
    shm = tmp_path / "traffic.db-shm"
    shm.chmod(0o444)
    without_override = ["setpriv", "--inh-caps=-dac_override,-dac_read_search",
                        "--bounding-set=-dac_override,-dac_read_search", "--"]
    command = [*without_override, sys.executable, "-m", "cli", "--config", str(config),
               "collect", "--once"]
    try:
        refused = subprocess.run(command, capture_output=True, text=True, env=clean_env(),
                                 timeout=60)
        assert refused.returncode == 2
        assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
        assert refused.stderr.startswith(f"traffic: store.url: cannot save to {tmp_path}/"
                                         "traffic.db: attempt to write a readonly database: ")
        assert f"{shm} (owner uid 0, mode 0444)" in refused.stderr
        shm.chmod(0o666)
        allowed = subprocess.run(command, capture_output=True, text=True, env=clean_env(),
                                 timeout=60)
        assert allowed.returncode == 0, allowed.stderr
    finally:
        reader.close()


def _wal_frames(db_path: Path) -> int:
    wal = Path(f"{db_path}-wal").read_bytes()
    page = int.from_bytes(wal[8:12], "big")
    return (len(wal) - 32) // (24 + page)


def _held_records(raw: sqlite3.Connection) -> int:
    """How many held records (not all zero) the store's ``unfolded`` table has."""
    return raw.execute("SELECT COUNT(*) FROM unfolded WHERE record != zeroblob(length(record))"
                       ).fetchone()[0]


def per_5min(start: int, buckets: int, rx: int, tx: int) -> list[Delta]:
    """The deltas of a save as the collector merges them: one per key and 5-minute bucket."""
    return [Delta(KEY, start + n * 300_000, start + (n + 1) * 300_000, rx, tx)
            for n in range(buckets)]


def test_every_other_save_writes_one_page_and_readers_see_it_at_once(store, db_path: Path
                                                                     ) -> None:
    """A save after a fold is held as one record: one frame in the WAL, at most 4 pages of
    4 KiB dirtied in all. A reader in another connection sees its bytes in the totals, the
    series and the counter's state; the next save folds it into the tables, and the reader's
    figures stay the same across the fold. (The first held save of a store's life also
    adds the record's row, so the measured one comes after a first round on the day before.)"""
    now = local(2026, 11, 10, 12)
    for start in (now - 86_400_000, now - 86_100_000):
        store.add(per_5min(start, 1, 10, 1), {KEY: CounterState("1", start + 300_000, 0, 0)})
    assert store.add(per_5min(now, 2, 600, 60), {KEY: CounterState("1", now + 600_000,
                                                                    1200, 120)}) == 1320
    frames = _wal_frames(db_path)
    _written_back(db_path)
    before = _written()
    assert store.add(per_5min(now + 600_000, 2, 1200, 120),
                     {KEY: CounterState("1", now + 1_200_000, 3600, 360)}) == 2640
    assert _wal_frames(db_path) - frames == 1
    assert _written() - before <= 4 * os.sysconf("SC_PAGE_SIZE")
    reader = open_store(f"sqlite://{db_path}", TZ, create=False)
    day = (local(2026, 11, 10), local(2026, 11, 11))

    def seen() -> tuple:
        return (reader.totals(*day), reader.totals(now + 450_000, now + 750_000),
                reader.series("5min", *day), reader.series("hour", *day),
                reader.tracker_state()[KEY], reader.last_sample_at())

    held = seen()
    assert held == ((3600, 360), (900, 90),
                    [(now + n * 300_000, rx, rx // 10) for n, rx in
                     enumerate((600, 600, 1200, 1200))],
                    [(now, 3600, 360)], CounterState("1", now + 1_200_000, 3600, 360),
                    now + 1_200_000)
    raw = sqlite3.connect(db_path)
    assert raw.execute("SELECT COUNT(*) FROM intervals WHERE start >= ?", (now,)
                       ).fetchone()[0] == 2
    assert store.add(per_5min(now + 1_200_000, 1, 300, 30),
                     {KEY: CounterState("1", now + 1_500_000, 3900, 390)}) == 330
    assert raw.execute("SELECT COUNT(*), SUM(rx) FROM intervals WHERE start >= ?", (now,)
                       ).fetchone() == (5, 3900)
    assert _held_records(raw) == 0
    after = seen()
    assert after[:2] == ((3900, 390), held[1])
    assert after[2] == [*held[2], (now + 1_200_000, 300, 30)]
    assert after[4] == CounterState("1", now + 1_500_000, 3900, 390)
    reader.close()
    raw.close()


def test_a_held_save_replayed_adds_nothing(store) -> None:
    """Nor does a delta given twice in one save, held or folded."""
    now = local(2026, 11, 10, 12)
    store.add(per_5min(now, 1, 600, 60), {KEY: CounterState("1", now + 300_000, 600, 60)})
    twice = per_5min(now + 300_000, 2, 700, 70)
    again = ([*twice, twice[0]], {KEY: CounterState("1", now + 900_000, 2000, 200)})
    assert store.add(*again) == 1540  # held
    assert store.totals(now, now + 900_000) == (2000, 200)
    assert store.add(*again) == 0  # folded with the held one, which it repeats
    assert store.add(per_5min(now, 3, 1, 1), {}) == 0
    assert store.totals(now, now + 900_000) == (2000, 200)


def test_a_save_of_a_new_key_or_life_goes_to_the_tables(store, db_path: Path) -> None:
    """A key the tables do not know yet, or a counter's new life, is never held: the
    tracker's row in the tables names the life the held readings belong to."""
    now = local(2026, 11, 10, 12)
    raw = sqlite3.connect(db_path)

    store.add(per_5min(now, 1, 600, 60), {KEY: CounterState("1", now + 300_000, 600, 60)})
    assert _held_records(raw) == 0
    store.add(per_5min(now + 300_000, 1, 600, 60),
              {KEY: CounterState("2", now + 600_000, 600, 60)})
    assert _held_records(raw) == 0
    assert store.tracker_state()[KEY].life == "2"
    store.add(per_5min(now + 600_000, 1, 600, 60),
              {KEY: CounterState("2", now + 900_000, 1200, 120)})
    assert _held_records(raw) == 1
    assert store.tracker_state()[KEY] == CounterState("2", now + 900_000, 1200, 120)
    raw.close()


def test_a_save_held_by_a_killed_collector_is_read_and_then_folded(tmp_path: Path) -> None:
    """``kill -9`` right after a held save: readers count it, the next writer folds it into
    the tables when it claims the store, and nothing is lost or doubled."""
    import sys

    db_path = tmp_path / "traffic.db"
    now = local(2026, 11, 10, 12)
    script = f"""
import os, signal
from zoneinfo import ZoneInfo
from traffic.counters import CounterState, Delta
from traffic.store import open_store
store = open_store("sqlite://{db_path}", ZoneInfo("Europe/Stockholm"))
store.claim_writer()
key, now = {KEY!r}, {now}
store.add([Delta(key, now, now + 300_000, 500, 50)], {{key: CounterState("1", now + 300_000,
                                                                        500, 50)}})
store.add([Delta(key, now + 300_000, now + 600_000, 700, 70)],
          {{key: CounterState("1", now + 600_000, 1200, 120)}})
os.kill(os.getpid(), signal.SIGKILL)
"""
    ended = subprocess.run([sys.executable, "-c", script], cwd=Path(traffic.__file__).parents[1],
                           timeout=60)
    assert ended.returncode == -9
    reader = open_store(f"sqlite://{db_path}", TZ, create=False)
    assert reader.totals(now, now + 600_000) == (1200, 120)
    assert reader.tracker_state()[KEY] == CounterState("1", now + 600_000, 1200, 120)
    writer = open_store(f"sqlite://{db_path}", TZ, create=False)
    writer.claim_writer()
    raw = sqlite3.connect(db_path)
    assert raw.execute("SELECT COUNT(*), SUM(rx) FROM intervals").fetchone() == (2, 1200)
    assert raw.execute("SELECT rx FROM tracker").fetchone() == (1200,)
    raw.close()
    assert reader.totals(now, now + 600_000) == (1200, 120)
    writer.close()
    reader.close()


def test_a_garbled_held_record_is_said_and_left_out(store, db_path: Path, caplog) -> None:
    """A held record that cannot be read (a bit flipped on the card) costs its own save
    interval's bytes, said in the log; the store goes on saving."""
    now = local(2026, 11, 10, 12)
    store.add(per_5min(now, 1, 600, 60), {KEY: CounterState("1", now + 300_000, 600, 60)})
    store.add(per_5min(now + 300_000, 1, 700, 70), {KEY: CounterState("1", now + 600_000,
                                                                      1300, 130)})
    raw = sqlite3.connect(db_path)
    raw.execute("UPDATE unfolded SET record = ? ", (bytes([2]) + b"\xff" * 439,))
    raw.commit()
    raw.close()
    assert store.totals(now, now + 900_000) == (600, 60)
    assert "the held save (one save interval's bytes) cannot be read, cut short" in caplog.text
    assert store.add(per_5min(now + 600_000, 1, 800, 80),
                     {KEY: CounterState("1", now + 900_000, 2100, 210)}) == 880
    assert store.totals(now, now + 900_000) == (1400, 140)
    assert store.tracker_state()[KEY].rx == 2100


def test_a_save_of_gauges_alone_holds_nothing(store, db_path: Path) -> None:
    """A modem's save (its signal, no counters) writes its gauges and no held record, so the
    next save has nothing to fold."""
    from traffic.store import GaugeSample

    now = local(2026, 11, 10, 12)
    store.add([], {}, [GaugeSample("modem:modem", "rssi", now, -73.0)])
    raw = sqlite3.connect(db_path)
    assert _held_records(raw) == 0
    assert store.gauge_series("modem:modem", "rssi", now, now + 300_000) == [(now, -73.0)]
    raw.close()


def test_a_writer_closing_over_a_newer_held_record_lets_the_file_go(db_path: Path) -> None:
    """A writer that cannot fold a held record at close (a newer Traffic's) still closes
    its connection and lets go of the file's lock, as a collector stopping must."""
    writer = open_store(f"sqlite://{db_path}", TZ)
    writer.claim_writer()
    raw = sqlite3.connect(db_path)
    raw.execute("INSERT INTO unfolded (site, record) VALUES ('home', ?)",
                (b"\x07" + bytes(439),))
    raw.commit()
    raw.close()
    writer.close()
    import fcntl

    descriptor = os.open(db_path, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the writer's lock is gone
    finally:
        os.close(descriptor)


ROUTER_GAUGES = ("rx_rate", "tx_rate", "rsrp", "rsrq", "sinr", "rssi", "network_type",
                 "operator", "band", "cell_id", "sim", "roaming", "wan_ip")


def test_a_routers_save_is_held_and_its_gauges_sit_together(store, db_path: Path) -> None:
    """A save with a router's 13 gauges, two 5-minute buckets each, on a table holding two
    days of them, is held like a save without gauges, and its gauge rows go beside each
    other: it writes fewer pages than there are gauges (ordered by gauge first, each gauge's
    newest leaf was one page, 63 frames a save on a grown store). Readers see them at once."""
    from traffic.store import GaugeSample

    now = local(2026, 11, 10, 12)
    raw = sqlite3.connect(db_path)
    raw.executemany("INSERT INTO gauges VALUES ('home', 'hilink:wan', ?, ?, -95.0, 1, NULL)",
                    [(name, bucket) for bucket in range(now - 2 * 86_400_000, now, 300_000)
                     for name in ROUTER_GAUGES])
    raw.executemany("INSERT INTO gauge_names VALUES ('home', 'hilink:wan', ?)",
                    [(name,) for name in ROUTER_GAUGES])
    raw.commit()
    for start in (now - 86_400_000, now - 86_100_000, now - 600_000):
        store.add(per_5min(start, 1, 10, 1), {KEY: CounterState("1", start + 300_000, 0, 0)})
    raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    samples = [GaugeSample("hilink:wan", name, at, -90.0)
               for at in range(now, now + 600_000, 10_000) for name in ROUTER_GAUGES]
    assert store.add(per_5min(now, 2, 600, 60), {KEY: CounterState("1", now + 600_000, 1, 1)},
                     samples) == 1320
    assert _held_records(raw) == 1
    assert _wal_frames(db_path) < len(ROUTER_GAUGES)
    reader = open_store(f"sqlite://{db_path}", TZ, create=False)
    assert reader.gauge_series("hilink:wan", "sinr", now - 300_000, now + 600_000) == [
        (now - 300_000, -95.0), (now, -90.0), (now + 300_000, -90.0)]
    assert reader.totals(now, now + 600_000) == (1200, 120)
    reader.close()
    raw.close()


def test_a_gauge_copy_stopped_by_an_older_traffic_starts_that_table_again(store) -> None:
    """Where an older Traffic (gauges ordered by key and name first) stopped copying the
    gauges, the copy goes on from their first row: importing a row again replaces it with
    itself, so nothing is lost and nothing doubles."""
    from traffic.store import GaugeSample

    now = local(2026, 11, 10, 12)
    store.add([], {}, [GaugeSample("hilink:wan", name, now + n * 300_000, -90.0 - n)
                       for name in ("rsrp", "sinr") for n in range(3)])
    rows = [row for chunk in store.export_rows("gauges") for row in chunk.rows]
    assert [(row[2], row[1]) for row in rows] == [
        (now + n * 300_000, name) for n in range(3) for name in ("rsrp", "sinr")]
    older = ["hilink:wan", "rsrp", now + 300_000]
    assert [row for chunk in store.export_rows("gauges", older) for row in chunk.rows] == rows

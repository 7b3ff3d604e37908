"""The spool file (collector/spool.py) through real files and a real SQLite store: entries
read back as written, a line cut short dropped, damage moved aside, a replay in order that
empties the file, adds nothing the second time, and keeps what it could not add."""

import logging
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from collector import spool as spool_module
from collector.spool import Entry, Spool, entry_of, gauge_samples, newer_state, scan
from traffic.counters import CounterState, Delta
from traffic.store import Event, GaugeSample, Key, open_store
from traffic.store.rollup import gauge_rows

T = 1_795_000_200_000  # a 5-minute boundary, epoch ms
KEY = "kernel:veth0"
TZ = ZoneInfo("Europe/Stockholm")


def entry(index: int, rx: int = 1000) -> Entry:
    """The save after ``index`` polls of a minute each: its delta and the reading it ends on."""
    start, end = T + index * 60_000, T + (index + 1) * 60_000
    return entry_of(end, [Delta(KEY, start, end, rx, rx // 10)],
                    {KEY: CounterState("life1", end, (index + 1) * rx, (index + 1) * rx // 10)},
                    [GaugeSample(KEY, "signal", start, -70.0 - index),
                     GaugeSample(KEY, "signal", start + 5000, -71.0 - index)],
                    [Key(KEY, "kernel", "veth0", "billed")],
                    [Event(start, "source_up", {"source": "kernel"})] if index == 0 else [])


def written(path: Path, count: int) -> Spool:
    spool = Spool(path)
    for index in range(count):
        spool.append(entry(index))
    return spool


def test_entries_read_back_as_written_with_the_newest_state(tmp_path: Path) -> None:
    path = tmp_path / "home.spool"
    spool = written(path, 3)
    found = scan(path)
    assert (found.entries, found.size, found.first_at) == (3, 3 * 1100, T + 60_000)
    assert found.state == {KEY: CounterState("life1", T + 180_000, 3000, 300)}
    assert (spool.entries, spool.size, spool.state) == (3, 3300, found.state)
    reopened = Spool(path)
    assert (reopened.entries, reopened.size, reopened.state) == (3, 3300, found.state)
    [first, *_] = [line for line in path.read_bytes().splitlines(keepends=True)]
    assert spool_module.parse_line(first) == entry(0)


def test_a_last_entry_cut_short_is_dropped_and_the_next_one_starts_its_own_line(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "home.spool"
    written(path, 2)
    whole = path.read_bytes()
    path.write_bytes(whole + entry(2).line()[:40])  # killed in the middle of the append
    assert scan(path).entries == 2 and not scan(path).damaged
    spool = Spool(path)
    assert "cut short" in caplog.text
    assert path.read_bytes() == whole
    assert spool.state == {KEY: CounterState("life1", T + 120_000, 2000, 200)}
    spool.append(entry(3))
    assert scan(path).entries == 3
    assert [e.deltas[0].start for e, _ in spool_module.read_entries(path)] == [
        T, T + 60_000, T + 180_000]


def test_damage_before_the_end_is_moved_aside_and_said(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "home.spool"
    written(path, 3)
    lines = path.read_bytes().splitlines(keepends=True)
    broken = lines[1].replace(b"veth0", b"veth1", 1)  # a bit flipped on the card
    path.write_bytes(lines[0] + broken + lines[2])
    with caplog.at_level(logging.ERROR):
        spool = Spool(path)
    assert spool.entries == 1 and path.read_bytes() == lines[0]
    assert (tmp_path / "home.spool.damaged").read_bytes() == broken + lines[2]
    assert "damaged" in caplog.text and "home.spool.damaged" in caplog.text


def test_damage_found_by_a_replay_is_moved_aside_not_removed(tmp_path: Path) -> None:
    path = tmp_path / "home.spool"
    spool = written(path, 3)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(lines[0] + lines[1].replace(b"veth0", b"veth1", 1) + lines[2])
    store = open_store(f"sqlite://{tmp_path}/traffic.db", TZ)
    try:
        assert spool.replay(store) == 1100
        assert store.totals(T, T + 3_600_000) == (1000, 100)
    finally:
        store.close()
    assert not path.exists()
    assert (tmp_path / "home.spool.damaged").read_bytes().endswith(lines[2])


def test_gauge_rows_survive_the_spool_exactly() -> None:
    samples = [GaugeSample(KEY, "rsrp", T + i * 5000, -90.0 - i * 0.1) for i in range(60)]
    samples += [GaugeSample(KEY, "operator", T + 1000, "Telia"),
                GaugeSample(KEY, "operator", T + 2000, "Tele2")]
    rows = gauge_rows(samples)
    assert gauge_rows(gauge_samples(rows)) == rows


def test_newer_state_takes_each_keys_later_reading() -> None:
    stored = {"a": CounterState("1", 100, 5, 5), "b": CounterState("1", 300, 9, 9)}
    spooled = {"a": CounterState("2", 200, 1, 1), "b": CounterState("1", 250, 8, 8),
               "c": CounterState("1", 50, 2, 2)}
    assert newer_state(stored, spooled) == {"a": spooled["a"], "b": stored["b"],
                                            "c": spooled["c"]}


def test_replay_adds_in_order_empties_the_file_and_adds_nothing_twice(tmp_path: Path) -> None:
    path = tmp_path / "home.spool"
    spool = written(path, 5)
    copy = path.read_bytes()
    store = open_store(f"sqlite://{tmp_path}/traffic.db", TZ)
    try:
        assert spool.replay(store) == 5 * 1100
        assert not path.exists() and (spool.entries, spool.size) == (0, 0)
        assert store.totals(T, T + 3_600_000) == (5000, 500)
        assert store.tracker_state() == {KEY: CounterState("life1", T + 300_000, 5000, 500)}
        assert [key.role for key in store.key_types()] == ["billed"]
        assert [e.kind for e in store.events()] == ["source_up"]
        # ten samples in the first 5 minutes, -70 - i and -71 - i for i in 0..4
        assert store.gauge_series(KEY, "signal", T, T + 3_600_000) == [(T, -72.5)]

        path.write_bytes(copy)  # stopped after adding, before the file was removed
        assert Spool(path).replay(store) == 0
        assert store.totals(T, T + 3_600_000) == (5000, 500)
    finally:
        store.close()


def test_a_replay_cut_short_keeps_what_it_did_not_add(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The third entry cannot be stored (a count no database column holds): the two before it
    are added, the file keeps the third and the fourth, in order."""
    monkeypatch.setattr(spool_module, "REPLAY_BATCH", 1)
    path = tmp_path / "home.spool"
    spool = written(path, 2)
    spool.append(entry(2, rx=2**64))
    spool.append(entry(3))
    store = open_store(f"sqlite://{tmp_path}/traffic.db", TZ)
    try:
        with pytest.raises(OverflowError):
            spool.replay(store)
        assert store.totals(T, T + 3_600_000) == (2000, 200)
        assert store.tracker_state()[KEY].at == T + 120_000
        assert spool.entries == 2 and scan(path).entries == 2
        assert [e.deltas[0].start for e, _ in spool_module.read_entries(path)] == [
            T + 120_000, T + 180_000]
    finally:
        store.close()


def test_status_says_what_waits_in_the_spool() -> None:
    from traffic.report import save_problem

    save = {"saved_at": T - 600_000, "failing_since": T, "error": "store.url: no answer",
            "spooled": 12_345_678, "spooled_entries": 3, "spooled_since": T,
            "spool": "/var/lib/traffic/home.spool"}
    said = save_problem(save, TZ)
    assert said.startswith("The collector cannot save since ")
    assert said.endswith("12.3 MB of it wait in its spool (/var/lib/traffic/home.spool), "
                         "added to the store when it answers.")
    assert save_problem({**save, "failing_since": None}, TZ) == ""


def test_a_collector_started_with_a_spool_counts_on_from_it_and_replays_it_first(
        tmp_path: Path, mongodb_base: str) -> None:
    """Killed during an outage, started again once the server answers: its counters go on
    from the spool's newer readings, and its first save adds the spool before anything."""
    from collector.worker import Collector
    from tests.conftest import make_config
    from tests.mongo_server import database_url
    from traffic.store import open_site_store

    config = make_config(tmp_path, '[[sources]]\ntype = "kernel"\ninterfaces = ["veth0"]\n',
                         store__url=database_url(mongodb_base))
    store = open_site_store(config, create=True)
    try:
        store.add([Delta(KEY, T - 60_000, T, 500, 50)],
                  {KEY: CounterState("life1", T, 0, 0), "kernel:other": CounterState(
                      "x", T + 900_000, 7, 7)})
        written(tmp_path / "state" / "home.spool", 3)
        collector = Collector(config, store)
        assert collector.tracker.state == {KEY: CounterState("life1", T + 180_000, 3000, 300),
                                           "kernel:other": CounterState("x", T + 900_000, 7, 7)}
        collector.save()
        assert not (tmp_path / "state" / "home.spool").exists()
        assert store.totals(T - 60_000, T + 3_600_000, [KEY]) == (3500, 350)
        assert store.tracker_state()[KEY] == CounterState("life1", T + 180_000, 3000, 300)
        assert collector.save_state["failing_since"] is None
    finally:
        store.close()

"""Uptime per day counts only what the keeper observed; the rest is unknown (None)."""

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from collector.keeper import Keeper
from collector.probe import LinkEvidence
from tests.conftest import make_config
from traffic.periods import to_ms
from traffic.store import Event, open_site_store
from traffic.uptime import observed, uptime_by_day

TZ = ZoneInfo("Europe/Stockholm")
H = 3_600_000
DAY = to_ms(datetime(2026, 11, 3, tzinfo=TZ))


def test_down_from_the_first_check_is_not_100_percent() -> None:
    events = [Event(DAY + 6 * H, "down", {"first_check": True}, None)]
    days = uptime_by_day(events, DAY - 24 * H, DAY + 12 * H, TZ)
    assert days == [(DAY - 24 * H, 0, None), (DAY, 6 * H, 0.0)]


def test_days_before_the_keeper_ran_are_unknown() -> None:
    events = [Event(DAY + 6 * H, "up", {"first_check": True}, None),
              Event(DAY + 9 * H, "down", {}, 3 * H)]
    days = uptime_by_day(events, DAY - 48 * H, DAY + 12 * H, TZ)
    assert [percent for _, _, percent in days] == [None, None, 50.0]
    assert days[-1][1] == 3 * H


def test_the_oldest_duration_reaches_back_and_current_covers_a_quiet_window() -> None:
    back = [Event(DAY + 1 * H, "up", {}, 1 * H)]  # down from 00:00 to 01:00, up since
    assert uptime_by_day(back, DAY, DAY + 4 * H, TZ) == [(DAY, H, 75.0)]
    quiet = uptime_by_day([], DAY - 24 * H, DAY + 4 * H, TZ, current=("up", DAY - 30 * H))
    assert [percent for _, _, percent in quiet] == [100.0, 100.0]
    assert uptime_by_day([], DAY, DAY + 4 * H, TZ) == [(DAY, 0, None)]


def up(at: int, duration: int | None = None) -> Event:
    return Event(at, "up", {} if duration else {"first_check": True}, duration)


def down(at: int, duration: int | None = None) -> Event:
    return Event(at, "down", {} if duration else {"first_check": True}, duration)


def stop(at: int) -> Event:
    return Event(at, "stop", {})


def attempt(at: int) -> Event:
    return Event(at, "attempt", {"step": 0}, 40)


@pytest.mark.parametrize(("events", "spans"), [
    # a clean stop ends the span; the next run starts at its first check
    ([up(1 * H), stop(2 * H), down(5 * H)], [(1 * H, 2 * H, True), (5 * H, 8 * H, False)]),
    # killed (no stop): the span ends at the run's latest event, whatever its kind
    ([down(1 * H), attempt(1 * H + 30_000), up(6 * H)],
     [(1 * H, 1 * H + 30_000, False), (6 * H, 8 * H, True)]),
    ([up(1 * H), up(6 * H)], [(1 * H, 1 * H, True), (6 * H, 8 * H, True)]),
    # within a run a change ends the span before it; a stop with nothing open does nothing
    ([up(1 * H), down(2 * H, H), stop(3 * H), stop(4 * H)],
     [(1 * H, 2 * H, True), (2 * H, 3 * H, False)]),
    # the oldest event's duration reaches back, once
    ([up(2 * H, H), stop(3 * H), up(4 * H)],
     [(1 * H, 2 * H, False), (2 * H, 3 * H, True), (4 * H, 8 * H, True)]),
    ([stop(1 * H)], []),
])
def test_observed_spans_end_where_a_run_of_the_keeper_ended(events: list[Event],
                                                            spans: list[tuple]) -> None:
    assert observed(events, 8 * H) == spans


def test_days_the_collector_was_stopped_are_unknown() -> None:
    events = [up(DAY + 6 * H), stop(DAY + 12 * H), up(DAY + 72 * H + 6 * H)]
    days = uptime_by_day(events, DAY, DAY + 72 * H + 12 * H, TZ)
    assert [percent for _, _, percent in days] == [100.0, None, None, 100.0]
    killed = [down(DAY + 6 * H), attempt(DAY + 12 * H), down(DAY + 72 * H + 6 * H)]
    days = uptime_by_day(killed, DAY, DAY + 72 * H + 12 * H, TZ)
    assert [(down_ms, percent) for _, down_ms, percent in days] == [
        (6 * H, 0.0), (0, None), (0, None), (6 * H, 0.0)]


class Evidence:
    """A prober that reports what the test says, sending nothing."""

    def __init__(self) -> None:
        self.up = True

    def check(self, now: int, probe_anyway: bool = False) -> LinkEvidence:
        return LinkEvidence(self.up, "ppp0", "received bytes" if self.up else "ppp0 is down")


def test_each_run_of_the_keeper_starts_afresh_and_a_clean_stop_is_recorded(
        tmp_path: Path) -> None:
    config = make_config(tmp_path, '[keeper]\nenabled = true\nconnect = ["true"]\n'
                                   'targets = ["127.0.0.1:9"]\n')
    store = open_site_store(config, create=True)
    wall, prober = [DAY], Evidence()

    def run(stop: bool) -> None:
        keeper = Keeper(config, store, lambda: wall[0], prober)
        keeper.check()
        wall[0] += 30_000
        keeper.check()
        if stop:
            keeper.stop()
        wall[0] += 72 * H

    run(stop=True)
    prober.up = False
    run(stop=False)  # killed: no stop
    run(stop=True)
    found = [(e.kind, e.duration_ms, e.detail.get("first_check", False))
             for e in reversed(store.events()) if e.kind != "attempt"]
    store.close()
    assert found == [("up", None, True), ("stop", None, False), ("down", None, True),
                     ("down", None, True), ("stop", None, False)]


def test_a_check_during_a_long_action_is_skipped_and_said_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The scheduler may start a check while the previous one runs its action: it returns at
    once, with one INFO line per action instead of a warning at every check."""
    config = make_config(tmp_path, '[keeper]\nenabled = true\nconnect = ["true"]\n'
                                   'targets = ["127.0.0.1:9"]\n')
    store = open_site_store(config, create=True)
    keeper = Keeper(config, store, lambda: DAY, Evidence())
    caplog.set_level("INFO", "collector.keeper")
    with keeper._checking:  # a check running its action
        assert keeper.check() is None and keeper.check() is None
    assert keeper.check() is not None
    store.close()
    busy = [r for r in caplog.records if "still running its action" in r.getMessage()]
    assert [r.levelname for r in busy] == ["INFO"]

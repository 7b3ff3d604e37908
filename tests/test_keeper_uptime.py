"""Uptime per day counts only what the keeper observed; the rest is unknown (None)."""

from datetime import datetime
from zoneinfo import ZoneInfo

from traffic.periods import to_ms
from traffic.store import Event
from traffic.uptime import uptime_by_day

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

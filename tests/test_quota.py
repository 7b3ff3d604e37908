"""The billing period's use, read from a real store as the collector leaves it over time."""

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from traffic.config import load_config
from traffic.counters import Delta
from traffic.quota import PERIOD_RESET_META, usage
from traffic.store import open_site_store

DAY_MS = 86_400_000
MINUTE_MS = 60_000
KEY = "kernel:ppp0"


def test_a_reset_period_keeps_its_total_after_the_raw_intervals_are_pruned(
        tmp_path: Path) -> None:
    config = load_config(None, [f"store.url=sqlite://{tmp_path}/traffic.db",
                                "timezone=Europe/Stockholm", "quota.billing_day=1"],
                         environ={}, system_path=None)
    store = open_site_store(config, create=True)
    first_of_month = 1_793_487_600_000  # 2026-11-01T00:00+01:00
    start = first_of_month + 10 * DAY_MS + 12 * 60 * MINUTE_MS  # 11 November, 12:00
    store.add([Delta(KEY, at, at + 5_000, 1_000_000, 100_000)
               for at in range(start, start + 10 * MINUTE_MS, 5_000)], {})
    store.set_meta(PERIOD_RESET_META, str(start + 2 * MINUTE_MS))  # reset at 12:02
    a_day_later = start + DAY_MS
    before = usage(store, config, a_day_later)

    store.prune(start + 8 * DAY_MS)  # raw intervals older than 7 days go
    after = usage(store, config, a_day_later + 7 * DAY_MS)

    assert before.period_start == after.period_start == start  # the start of the 5 minutes
    assert (before.rx, before.tx) == (after.rx, after.tx) == (120_000_000, 12_000_000)
    store.close()


def test_a_new_install_estimates_from_when_counting_began(tmp_path: Path) -> None:
    config = load_config(None, [f"store.url=sqlite://{tmp_path}/traffic.db",
                                "timezone=Europe/Stockholm", "quota.billing_day=1",
                                "quota.monthly=40 GB"], environ={}, system_path=None)
    store = open_site_store(config, create=True)
    first_of_month = 1_793_487_600_000  # 2026-11-01T00:00+01:00, a 30-day period
    installed = first_of_month + 20 * DAY_MS + 15 * 60 * MINUTE_MS  # 21 November, 15:00
    store.add([Delta(KEY, at, at + 5_000, 50_000, 5_000)
               for at in range(installed, installed + DAY_MS, 5_000)], {})  # 1 GB a day
    now = installed + DAY_MS

    day = usage(store, config, now)
    assert day.counted_since == installed and day.total == 950_400_000
    # A day counted, 8 days 9 hours to go at the same pace (not 21 days of nothing)
    assert day.estimate == day.total * 9_375 // 1_000 == 8_910_000_000
    store.close()


def test_minutes_after_a_start_are_not_taken_for_a_months_pace(tmp_path: Path) -> None:
    config = load_config(None, [f"store.url=sqlite://{tmp_path}/traffic.db",
                                "timezone=Europe/Stockholm"], environ={}, system_path=None)
    store = open_site_store(config, create=True)
    installed = 1_793_487_600_000 + 20 * DAY_MS  # 21 November, midnight
    store.add([Delta(KEY, at, at + 5_000, 50_000, 5_000)
               for at in range(installed, installed + 10 * MINUTE_MS, 5_000)], {})
    early = usage(store, config, installed + 10 * MINUTE_MS)
    to_go = early.period_end - early.now
    assert early.estimate == early.total + early.total * to_go // 3_600_000  # an hour's pace
    store.close()


def test_deltas_not_saved_yet_count_where_they_are_billed(tmp_path: Path) -> None:
    config = load_config(None, [f"store.url=sqlite://{tmp_path}/traffic.db",
                                "timezone=Europe/Stockholm", "quota.billing_day=1"],
                         environ={}, system_path=None)
    store = open_site_store(config, create=True)
    first_of_month = 1_793_487_600_000  # 2026-11-01T00:00+01:00
    installed = first_of_month + 20 * DAY_MS + 23 * 60 * MINUTE_MS + 50 * MINUTE_MS
    unsaved = [Delta(KEY, installed, installed + 20 * MINUTE_MS, 2_000_000, 200_000),
               Delta("elsewhere:eth0", installed, installed + 5_000, 7_000_000, 0)]
    now = installed + 20 * MINUTE_MS  # 22 November, 00:10

    assert usage(store, config, now).total == 0
    with_unsaved = usage(store, config, now, unsaved)
    assert (with_unsaved.rx, with_unsaved.tx) == (2_000_000, 200_000)  # only the billed key
    assert (with_unsaved.today_rx, with_unsaved.today_tx) == (1_000_000, 100_000)  # half today
    assert with_unsaved.counted_since == installed  # counting began with them
    store.close()


@pytest.mark.parametrize(("now", "days"), [
    ((2026, 10, 20, 0, 30), 19),   # 20 Oct to 7 Nov; 25 Oct has 25 hours
    ((2026, 3, 20, 23, 30), 19),   # 20 Mar to 7 Apr; 29 Mar has 23 hours
    ((2026, 11, 7, 23, 59), 1),    # the last day
    ((2026, 11, 8, 0, 0), 30),     # the first day of the next period
])
def test_days_left_are_counted_by_the_calendar(now: tuple[int, ...], days: int) -> None:
    from datetime import datetime

    from traffic.periods import billing_period, to_ms
    from traffic.quota import calendar_days

    tz = ZoneInfo("Europe/Stockholm")
    at = to_ms(datetime(*now, tzinfo=tz))
    assert calendar_days(at, billing_period(at, 8, tz)[1], tz) == days

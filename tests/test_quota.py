"""The billing period's use, read from a real store as the collector leaves it over time."""

from pathlib import Path

from traffic.config import load_config
from traffic.counters import Delta
from traffic.quota import PERIOD_RESET_META, usage
from traffic.store import open_store

DAY_MS = 86_400_000
MINUTE_MS = 60_000
KEY = "kernel:ppp0"


def test_a_reset_period_keeps_its_total_after_the_raw_intervals_are_pruned(
        tmp_path: Path) -> None:
    config = load_config(None, [f"store.url=sqlite://{tmp_path}/traffic.db",
                                "timezone=Europe/Stockholm", "quota.billing_day=1"],
                         environ={}, system_path=None)
    store = open_store(config.store.url, config.timezone, config.retention)
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

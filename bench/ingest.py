"""Bulk ingest rate of the SQLite store (target: at least 100,000 deltas/s).

Deltas of 5 seconds with non-zero byte counts for 3 keys, one key-day (17,280 deltas) per
``SQLiteStore.add`` call, into a fresh file on the real disk. Only the ``add`` calls are timed
(``time.perf_counter``); building the ``Delta`` lists is not. The time zone is Europe/Stockholm, so
rollup buckets follow a zone with DST.

The note also gives the rate of one more day-batch whose first delta was already stored (a
replay after a crash): the store then falls back from one ``executemany`` to one statement per row.
"""

import os
import random
import time
from zoneinfo import ZoneInfo

from bench.common import CACHE, Result, remove_db
from traffic.counters import CounterState, Delta
from traffic.periods import DAY_MS

TARGET = 100_000.0
KEYS = ("kernel:wan0", "kernel:wlan0", "kernel:eth1")
STEP_MS = 5000
PER_DAY = DAY_MS // STEP_MS
TZ = ZoneInfo("Europe/Stockholm")


def day_of_deltas(key: str, start: int, rng: random.Random) -> list[Delta]:
    return [Delta(key, start + i * STEP_MS, start + (i + 1) * STEP_MS,
                  rng.randrange(1, 400_000), rng.randrange(1, 60_000)) for i in range(PER_DAY)]


def run(quick: bool) -> list[Result]:
    from traffic.store.sqlite import SQLiteStore

    days = 2 if quick else 7
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"ingest-{os.getpid()}.db"
    remove_db(path)
    rng = random.Random(7)
    now = time.time_ns() // 1_000_000
    first = now - now % DAY_MS - days * DAY_MS
    store = SQLiteStore(str(path), TZ, {})
    try:
        spent = 0.0
        count = 0
        for day in range(days):
            for key in KEYS:
                deltas = day_of_deltas(key, first + day * DAY_MS, rng)
                state = {key: CounterState("bench/1", deltas[-1].end, 0, 0)}
                began = time.perf_counter()
                store.add(deltas, state)
                spent += time.perf_counter() - began
                count += len(deltas)
        replay = day_of_deltas(KEYS[0], first + (days - 1) * DAY_MS + DAY_MS - STEP_MS, rng)
        began = time.perf_counter()
        store.add(replay, {})
        replay_rate = len(replay) / (time.perf_counter() - began)
    except Exception as error:
        return [Result("ingest", None, "deltas/s", TARGET, True, error=str(error))]
    finally:
        store.close()
        remove_db(path)
    note = (f"{count:,} deltas in {days * len(KEYS)} calls of {PER_DAY:,}, {spent:.2f} s; "
            f"a day-batch with 1 replayed delta: {replay_rate:,.0f} deltas/s")
    return [Result("ingest", count / spent, "deltas/s", TARGET, True, note=note)]

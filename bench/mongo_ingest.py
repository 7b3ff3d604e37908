"""Ingest into MongoDB through the collector's save path (target: a day's backlog of 4 keys
at least 1,000 deltas/s, so that 4 days of it fit in one 10 s transaction).

``MongoStore.add`` gets what ``collector.worker.Collector.save`` hands it: the 5-second deltas
of 4 keys (one kernel source, 4 interfaces) merged per 5-minute bucket by the collector's own
``BucketMerger``, with the tracker state of every key, and the key types in the first save.
Two batch sizes, in this order on one fresh database:

- saves: one 10-minute save interval each (12 in a row, ``--quick``: 3), as a running
  collector saves; each holds about 20 deltas (two per bucket, since the polls are not aligned
  with the buckets, and one more where the save cuts a bucket);
- backlogs: a day each (3 in a row, ``--quick``: 1), as a collector that could not reach the
  server for a day saves when it answers again (its unsaved deltas merged the same way, about
  2,300): the figure, deltas over the summed wall time of these ``add`` calls.

A backlog whose ``add`` fails (``MongoStore`` gives a transaction up after ``TRANSACTION_S``)
ends the run; the figure is then its deltas over the time to the failure, an upper bound.

The floor, interleaved batch by batch: the same interval documents put on the same server by
one plain ``insert_many`` (no transaction, no replay check, no rollups, no tracker), into a
database of its own. The note gives both batch sizes against their floor, and what answered.
"""

import os
import time
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from bench.common import CACHE, Result, median
from bench.mongo_common import SAVE_MS, Server, first_poll_after, polls, server
from collector.worker import BucketMerger
from traffic.counters import CounterState, Delta
from traffic.periods import DAY_MS
from traffic.store import BILLED, Key, StoreError
from traffic.store.mongo import TRANSACTION_S

NAME = "mongo-ingest"
TARGET = 1_000.0
KEYS = ("kernel:wan0", "kernel:wlan0", "kernel:eth1", "kernel:usb0")
RATES = {"kernel:wan0": (310_000, 41_000), "kernel:wlan0": (120_000, 15_000),
         "kernel:eth1": (90_000, 9_000), "kernel:usb0": (2_000, 1_500)}
"""Bytes per 5-second poll (rx, tx): every poll counts, so no delta is dropped as zero."""
TZ = ZoneInfo("Europe/Stockholm")
LIMIT_S = 300
"""Every server call of the run ends by then: SecantusDB went on working on a failed backlog's
replay check and answered nothing for 17 minutes once."""


@dataclass
class _Batch:
    deltas: int
    polls: int
    spent: float
    """Seconds ``add`` took, or until it failed."""
    floor: float
    failed: str = ""
    """Why ``add`` failed (a transaction longer than ``TRANSACTION_S`` is given up)."""


class _Run:
    """One collector's saves into a fresh database, each timed beside its floor."""

    def __init__(self, store: object, floor: object, start: int) -> None:
        self.store = store
        self.floor = floor
        self.at = start
        self.totals = {key: [0, 0] for key in KEYS}
        self.types = [Key(key, "kernel", key.split(":")[1], BILLED) for key in KEYS]

    def save(self, span_ms: int) -> _Batch:
        """``span_ms`` of polls, merged and added as one save."""
        counted = polls(KEYS, self.at, self.at + span_ms, RATES)
        merged = BucketMerger(counted).deltas
        self.at += span_ms
        for delta in counted:
            self.totals[delta.key][0] += delta.rx
            self.totals[delta.key][1] += delta.tx
        state = {key: CounterState(f"bench/{key}", self.at, rx, tx)
                 for key, (rx, tx) in self.totals.items()}
        failed = ""
        began = time.perf_counter()
        try:
            self.store.add(merged, state, (), self.types)  # type: ignore[attr-defined]
        except StoreError as error:
            failed = "timed out" if "timed out" in str(error) else str(error)[-80:]
        spent = time.perf_counter() - began
        self.types = []
        began = time.perf_counter()
        self.floor.insert_many(_documents(merged))  # type: ignore[attr-defined]
        return _Batch(len(merged), len(counted), spent, time.perf_counter() - began, failed)


def _documents(deltas: list[Delta]) -> list[dict[str, object]]:
    """The interval documents ``MongoStore.add`` writes for ``deltas``."""
    return [{"site": "home", "key": d.key, "start": d.start, "end": d.end, "rx": d.rx,
             "tx": d.tx} for d in deltas]


def run(quick: bool) -> list[Result]:
    import pymongo

    workdir = CACHE / f"mongo-ingest-{os.getpid()}"
    try:
        with server(workdir) as answering, pymongo.timeout(LIMIT_S):
            return [_measure(answering, quick)]
    except Exception as error:
        return [Result(NAME, None, "deltas/s", TARGET, True,
                       error=f"{type(error).__name__}: {error}")]
    finally:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)


def _measure(answering: Server, quick: bool) -> Result:
    from pymongo import MongoClient

    from traffic.config import load_config
    from traffic.store import open_store

    saves, backlogs = (3, 1) if quick else (12, 3)
    database = f"traffic_bench_ingest_{os.getpid()}"
    floor_database = f"{database}_floor"
    retention = load_config(None, [], environ={}, system_path=None).retention
    store = open_store(answering.url(database), TZ, retention, create=True)
    client = MongoClient(answering.url(floor_database))
    try:
        now = time.time_ns() // 1_000_000
        begin = first_poll_after(now - (saves * SAVE_MS + backlogs * DAY_MS) - DAY_MS)
        run_ = _Run(store, client.get_default_database()["intervals"], begin)
        saved = [run_.save(SAVE_MS) for _ in range(saves)]
        days: list[_Batch] = []
        while len(days) < backlogs and not any(batch.failed for batch in days):
            days.append(run_.save(DAY_MS))
        stored = store.db.intervals.count_documents({})  # type: ignore[attr-defined]
    finally:
        store.close()
        store.client.drop_database(database)  # type: ignore[attr-defined]
        client.drop_database(floor_database)
        client.close()
    written = sum(batch.deltas for batch in [*saved, *days] if not batch.failed)
    if stored != written or any(batch.failed for batch in saved):
        raise RuntimeError(f"{stored} intervals stored, {written} added; "
                           + "; ".join(batch.failed for batch in saved if batch.failed))
    day_rows = sum(batch.deltas for batch in days)
    failed = next((batch for batch in days if batch.failed), None)
    rate = (failed.deltas / failed.spent if failed
            else day_rows / sum(batch.spent for batch in days))
    floor_rate = day_rows / sum(batch.floor for batch in days)
    save_rows = sum(batch.deltas for batch in saved)
    save_rate = save_rows / sum(batch.spent for batch in saved)
    save_floor_rate = save_rows / sum(batch.floor for batch in saved)
    outcome = (f"backlog {len(days)} FAILED after {failed.spent:.1f} s ({failed.failed}): "
               f"a day does not fit in one transaction (at most {TRANSACTION_S} s), so the "
               f"figure is that backlog's deltas over that time, an upper bound; "
               if failed else "")
    note = (f"{answering.what}; 4 keys; {outcome}day backlogs: {len(days)} of "
            f"{day_rows // len(days):,} deltas (BucketMerger of {days[0].polls:,} polls), "
            f"{', '.join(f'{batch.spent:.2f}' for batch in days)} s; floor (insert_many of the "
            f"same documents) {floor_rate:,.0f} deltas/s, ratio {rate / floor_rate:.2f}; "
            f"10-minute saves: {saves} of {save_rows / saves:.0f} deltas, median "
            f"{median([batch.spent for batch in saved]) * 1000:.0f} ms ({save_rate:,.0f} "
            f"deltas/s; floor {save_floor_rate:,.0f} deltas/s, median "
            f"{median([batch.floor for batch in saved]) * 1000:.0f} ms, ratio "
            f"{save_rate / save_floor_rate:.2f})")
    return Result(NAME, rate, "deltas/s", TARGET, True, note=note)

"""A year of data for each of 20 sites in one MongoDB database, as the collectors' saves and
daily prunes leave it, built with ``insert_many`` and cached between runs.

Building it through ``MongoStore.add`` would take hours on SecantusDB (about 1,000 upserts/s),
so the documents are made here exactly as ``MongoStore`` writes them (same collections, fields
and values; the store is opened with ``create=True`` first, so its indexes exist while they are
inserted):

- ``intervals``: the deltas the collector saves, merged per 5-minute bucket. Its polls are not
  aligned with the buckets, so every bucket holds a 5-second delta that straddles its start and
  one for the rest; a save every 10 minutes cuts one more. ``rows`` makes exactly what
  ``collector.worker.BucketMerger`` makes of 5-second polls (checked against it on a day at
  every build). Kept for ``retention.raw`` (7 days) before the end;
- ``rollups``: ``traffic.store.rollup.RollupIncrements`` of those deltas (the store's own
  arithmetic): 5-minute buckets for ``retention.5min`` (60 days), hours for ``retention.hour``
  (730 days, so the whole year), days and months;
- ``tracker`` (the counters' latest state) and ``keys`` (the key's type), one per site.

One key per site, ``kernel:wan0``, billed, as in the SQLite year store of ``api-usage``. Bytes
are the same in every poll of an hour of a site, so a delta's bytes are its polls times the
hour's: cutting a delta anywhere adds up to the same sums, and ``expected_usage`` can work out
any range's bytes independently of the database.

SecantusDB keeps the database under ``~/.cache/traffic-bench/`` in a directory named by
``LAYOUT`` (bump it when the shape changes); a server of ``TRAFFIC_BENCH_MONGODB_URI`` keeps it in
a database of that name. A marker document, written last, says the set is complete and where it
ends. A run more than a day after that end tops it up to the present through
``MongoStore.add``, 6 hours per call, and the store's ``prune`` (the collector's own path), or
rebuilds it when it is more than ``MAX_BEHIND_MS`` (2 days) behind.
"""

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bench.mongo_common import POLL_MS, SAVE_MS, Server, first_poll_after
from traffic.counters import CounterState, Delta
from traffic.periods import DAY_MS, FIVE_MIN_MS, HOUR_MS
from traffic.store import BILLED
from traffic.store.rollup import RollupIncrements, split_delta

LAYOUT = "mongo-year-v1"
DATABASE = "traffic_bench_year_v1"
CACHE_HOME = Path.home() / ".cache" / "traffic-bench"
SITES = tuple(f"site{number:02d}" for number in range(1, 21))
KEY = "kernel:wan0"
TZ = ZoneInfo("Europe/Stockholm")
YEAR_DAYS = 365
TOP_UP_AFTER_MS = DAY_MS
"""A set less behind than this is used as it is: a day more or less does not change what a
usage reads, and topping up is slow on SecantusDB."""
MAX_BEHIND_MS = 2 * DAY_MS
"""A set more behind than this is rebuilt (10 minutes): on SecantusDB, topping up takes about
2.5 s per ``add`` of 6 hours of a site (its replay check scans every site's intervals), so a
day of 20 sites takes about 4 minutes."""
TOP_UP_CALL_MS = 6 * HOUR_MS
CHUNK = 10_000
"""Documents per ``insert_many``."""


def workdir() -> Path:
    return CACHE_HOME / LAYOUT


def _poll_bytes(site: int, hour: int) -> tuple[int, int]:
    """Bytes of each poll in the hour numbered ``hour`` (since the epoch) at ``site``: a
    household's day (busy evenings), about 1 GB a day, varied hour by hour and site by site."""
    import math

    shape = 0.3 + math.sin(math.pi * ((hour - 6) % 24) / 24) ** 2
    noise = 0.5 + (hour * 2_654_435_761 + site * 40_503) % 1_009 / 1_009
    rx = int(60_000 * shape * noise) + 1
    return rx, rx // 8 + site


def _save_phase(site: int) -> int:
    """When in its 10 minutes the collector of ``site`` saves (each started at another time)."""
    return site * 37_000 % SAVE_MS


def rows(site: int, start: int, end: int) -> list[Delta]:
    """The deltas of ``site``'s collector saved in ``[start, end)`` (poll instants), merged per
    bucket as ``BucketMerger`` merges them, cut where a save falls."""
    cuts = {start, end}
    for bucket in range(start - start % FIVE_MIN_MS + FIVE_MIN_MS, end, FIVE_MIN_MS):
        before = bucket - (bucket - start) % POLL_MS
        cuts.update((before, before + POLL_MS) if before < bucket else (bucket,))
    phase = _save_phase(site)
    for save in range(start - (start - phase) % SAVE_MS + SAVE_MS, end, SAVE_MS):
        cuts.add(save - (save - start) % POLL_MS)
    ordered = sorted(at for at in cuts if start <= at <= end)
    out = []
    for first, last in itertools.pairwise(ordered):
        rx, tx = _poll_bytes(site, first // HOUR_MS)
        polls = (last - first) // POLL_MS
        out.append(Delta(KEY, first, last, rx * polls, tx * polls))
    return out


def _save_of(delta_end: int, phase: int) -> int:
    """Which save takes the delta that ends at ``delta_end``: the first at or after it."""
    return (delta_end - phase - 1) // SAVE_MS


def check_rows() -> None:
    """``rows`` against the collector's own ``BucketMerger`` over a day of 5-second polls."""
    from collector.worker import BucketMerger

    site = 3
    start = first_poll_after(int(time.time() * 1000) - 2 * DAY_MS)
    end = start + DAY_MS
    merged: list[Delta] = []
    window: list[Delta] = []
    phase = _save_phase(site)
    for at in range(start, end, POLL_MS):
        if window and _save_of(at + POLL_MS, phase) != _save_of(window[-1].end, phase):
            merged.extend(BucketMerger(window).deltas)
            window = []
        rx, tx = _poll_bytes(site, at // HOUR_MS)
        window.append(Delta(KEY, at, at + POLL_MS, rx, tx))
    merged.extend(BucketMerger(window).deltas)
    made = rows(site, start, end)
    if made != merged:
        first = next((i for i, (a, b) in enumerate(zip(made, merged, strict=False)) if a != b),
                     min(len(made), len(merged)))
        raise RuntimeError(f"the bench's deltas differ from BucketMerger's at {first}: "
                           f"{made[first:first + 1]} against {merged[first:first + 1]}")


def expected_usage(site: int, start: int, end: int, stored_from: int, stored_to: int
                   ) -> tuple[int, int]:
    """Bytes the store holds for ``site`` in the buckets of ``[start, end)`` (5-minute
    boundaries), from the deltas made for ``[stored_from, stored_to)``: a delta straddling a
    boundary is shared by time as the store shares it (``split_delta``)."""
    rx = tx = 0
    low, high = max(start - FIVE_MIN_MS, stored_from), min(end + FIVE_MIN_MS, stored_to)
    if low >= high:
        return 0, 0
    low = first_poll_after(low)
    for delta in rows(site, low, high - (high - low) % POLL_MS):
        for bucket, _, piece_rx, piece_tx in split_delta(delta.start, delta.end, delta.rx,
                                                         delta.tx):
            if start <= bucket < end:
                rx += piece_rx
                tx += piece_tx
    return rx, tx


def _documents(site_name: str, deltas: list[Delta], end: int,
               retention: dict[str, float]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(collection, document)`` of what ``MongoStore`` holds of ``deltas`` after its prune
    at ``end``."""
    from traffic.store.rollup import RESOLUTION_CODES

    def kept(setting: str) -> int:
        keep = retention.get(setting, 0)
        return end - int(keep * 1000) if keep else -(2**62)

    raw_from = kept("raw")
    for d in deltas:
        if d.start >= raw_from:
            yield "intervals", {"site": site_name, "key": d.key, "start": d.start,
                                "end": d.end, "rx": d.rx, "tx": d.tx}
    increments = RollupIncrements(TZ)
    increments.add(deltas)
    since = {code: kept(name) for name, code in RESOLUTION_CODES.items()}
    for key, code, bucket, rx, tx in increments.rows():
        if bucket >= since[code]:
            yield "rollups", {"site": site_name, "key": key, "resolution": code,
                              "bucket": bucket, "rx": rx, "tx": tx}


def _retention() -> dict[str, float]:
    from traffic.config import load_config

    return dict(load_config(None, [], environ={}, system_path=None).retention)


def ensure(server: Server) -> tuple[dict[str, Any], str]:
    """The data set on ``server``, built or topped up; returns its marker and what was done."""
    from traffic.store import open_store
    from traffic.store.mongo import _make_indexes

    url = server.url(DATABASE)
    retention = _retention()
    began = time.perf_counter()
    store = open_store(url, TZ, retention, create=True, site=SITES[0])
    db = store.db  # type: ignore[attr-defined]
    marker = db.bench.find_one({"_id": "layout"})
    now = first_poll_after(int(time.time() * 1000)) - POLL_MS
    if marker and marker.get("layout") == LAYOUT and now - marker["end"] <= MAX_BEHIND_MS:
        if now - marker["end"] < TOP_UP_AFTER_MS:
            return marker, "cached"
        _top_up(server, db, marker, now, retention)
        marker = db.bench.find_one({"_id": "layout"})
        return marker, f"cached, topped up in {time.perf_counter() - began:.0f} s"
    check_rows()
    store.client.drop_database(DATABASE)  # type: ignore[attr-defined]
    _make_indexes(db)
    start = first_poll_after(now - YEAR_DAYS * DAY_MS)
    count = 0
    for index, site_name in enumerate(SITES):
        count += _build_site(db, index, site_name, start, now, retention)
    marker = {"_id": "layout", "layout": LAYOUT, "start": start, "end": now,
              "documents": count}
    db.bench.replace_one({"_id": "layout"}, marker, upsert=True)
    return marker, f"built in {time.perf_counter() - began:.0f} s"


def _build_site(db: Any, index: int, site_name: str, start: int, end: int,
                retention: dict[str, float]) -> int:
    deltas = rows(index, start, end)
    batches: dict[str, list[dict[str, Any]]] = {"intervals": [], "rollups": []}
    count = 0
    for collection, document in _documents(site_name, deltas, end, retention):
        batch = batches[collection]
        batch.append(document)
        if len(batch) >= CHUNK:
            db[collection].insert_many(batch, ordered=False)
            count += len(batch)
            batch.clear()
    for collection, batch in batches.items():
        if batch:
            db[collection].insert_many(batch, ordered=False)
            count += len(batch)
    rx = sum(d.rx for d in deltas)
    tx = sum(d.tx for d in deltas)
    db.tracker.insert_one({"site": site_name, "key": KEY, "life": f"bench/{site_name}",
                           "at": end, "rx": rx, "tx": tx, "held": 0})
    db.keys.insert_one({"site": site_name, "key": KEY, "source": "kernel", "name": "wan0",
                        "role": BILLED})
    return count + 2


def _top_up(server: Server, db: Any, marker: dict[str, Any], now: int,
            retention: dict[str, float]) -> None:
    """Each site's deltas from the set's end to ``now`` through ``MongoStore.add``, 6 hours
    per call (well inside the 10 s a transaction may take on a busy SecantusDB), then the
    store's prune."""
    from traffic.store import open_store

    for index, site_name in enumerate(SITES):
        store = open_store(server.url(DATABASE), TZ, retention, create=True, site=site_name)
        try:
            state = store.tracker_state()[KEY]
            rx, tx = state.rx, state.tx
            at = marker["end"]
            while at < now:
                until = min(at + TOP_UP_CALL_MS, now)
                deltas = rows(index, at, until)
                rx += sum(d.rx for d in deltas)
                tx += sum(d.tx for d in deltas)
                store.add(deltas, {KEY: CounterState(state.life, until, rx, tx)})
                at = until
            store.prune(now)
        finally:
            store.close()
    db.bench.update_one({"_id": "layout"}, {"$set": {"end": now}})

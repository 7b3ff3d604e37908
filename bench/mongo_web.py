"""``GET /api/v1/usage`` through nginx and gunicorn over a MongoDB store holding 20 sites with a
year of data each (target: the p95 of ``api-usage``, 25 ms).

The data set is ``bench.mongo_year``'s (built once, cached). The stack is ``tests.stack.WebStack``
as for ``api-usage`` (``util/gunicorn.conf.py``, 2 sync workers, behind
``util/nginx/traffic.conf``), its config naming the database as ``store.url``, the first site as
``site``, the data set's time zone, a kernel source on ``wan0``, ``[quota] monthly = "40 GB"``.
Every site gets what its running collector publishes: a realtime document (120 points), which
``/api/v1/usage`` reads at every request, and its settings where this version has them
(``traffic.sites``).

The requests go to the sites in turn with ``?site=NAME`` when the app takes that parameter (one
request to another site tells: a 400, or the first site's figures, mean it does not), else all
to the config's site. 40 sequential requests (``--quick``: 3) after 4 warm-up ones (1), on one
keep-alive ``http.client`` connection, ``Accept-Encoding: gzip``. Each answer is checked: its
``rx``, ``tx``, ``today_rx`` and ``today_tx`` must be the bytes the data set holds for that
site in the period and the day, worked out from the deltas made for it, not from the database.

Two floors, interleaved request by request: the app refusing an unknown query parameter (400,
through the same nginx, gunicorn and Flask, without opening the store), and one ``find_one`` by
pymongo from this process on the same server (the least a request that reads the store
waits for). The note adds where a usage's time goes: each store call ``usage`` makes, timed in
this process on the first site (not with ``--quick``).
"""

import contextlib
import gzip
import http.client
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench import mongo_year
from bench.common import CACHE, Result, clean_env, median, tmpfs_dir
from bench.mongo_common import Server, server
from bench.web import API_TARGET_MS, percentile, realtime_document, timed_get

NAME = "mongo-api-usage"
WARMUP = 4
"""Warm-up requests (``--quick``: 1): each gunicorn worker makes its client at its first."""
USAGE = "/api/v1/usage"
FLOOR = "/api/v1/usage?bench-floor=1"


def _write_config(path: Path, url: str, run_dir: Path) -> None:
    path.write_text(
        f'site = "{mongo_year.SITES[0]}"\n'
        f'timezone = "{mongo_year.TZ.key}"\n'
        f'[store]\nurl = "{url}"\n'
        f'[collector]\nruntime_dir = "{run_dir}"\n'
        f'[[sources]]\ntype = "kernel"\ninterfaces = ["{mongo_year.KEY.split(":")[1]}"]\n'
        '[quota]\nmonthly = "40 GB"\n'
        '[web]\nallow = ["127.0.0.0/8"]\n')


def _publish(answering: Server, config_path: Path) -> None:
    """What each site's running collector publishes for its readers: its realtime document
    and, where this version has them, its settings (``traffic.sites``)."""
    from traffic.config import load_config
    from traffic.published import REALTIME
    from traffic.store import open_store

    try:
        from traffic.sites import publish_settings  # type: ignore[import-not-found]
    except ImportError:
        publish_settings = None
    now = time.time_ns() // 1_000_000
    for site in mongo_year.SITES:
        config = load_config(config_path, [f"site={site}"], environ=clean_env())
        store = open_store(answering.url(mongo_year.DATABASE), mongo_year.TZ, {}, create=False,
                           site=site)
        try:
            store.publish(REALTIME, realtime_document(site, now))
            if publish_settings is not None:
                publish_settings(store, config)
        finally:
            store.close()


@contextlib.contextmanager
def _stack(answering: Server) -> Iterator[Any]:
    from tests.stack import WebStack

    work = CACHE / f"mongo-web-{os.getpid()}"
    run_dir = Path(tempfile.mkdtemp(prefix="traffic-bench-mongo-web-", dir=tmpfs_dir()))
    stack = None
    try:
        work.mkdir(parents=True, exist_ok=True)
        config = work / "traffic.toml"
        _write_config(config, answering.url(mongo_year.DATABASE), run_dir / "run")
        _publish(answering, config)
        stack = WebStack(config, run_dir)
        stack.start()
        yield stack
    finally:
        if stack is not None:
            stack.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


class _Checker:
    """Each answer's figures against the bytes made for its site."""

    def __init__(self, marker: dict[str, Any]) -> None:
        self.marker = marker
        self.known: dict[tuple[int, int, int], tuple[int, int]] = {}

    def expected(self, site: int, start: int, end: int) -> tuple[int, int]:
        if (site, start, end) not in self.known:
            self.known[(site, start, end)] = mongo_year.expected_usage(
                site, start, end, self.marker["start"], self.marker["end"])
        return self.known[(site, start, end)]

    def check(self, site: int, document: dict[str, Any]) -> None:
        from traffic.periods import billing_period, day_bounds

        period = billing_period(document["now"], 1, mongo_year.TZ)
        if (document["period_start"], document["period_end"]) != period:
            raise RuntimeError(f"{mongo_year.SITES[site]}: the API's period is "
                               f"{document['period_start']}..{document['period_end']}, "
                               f"not the month {period[0]}..{period[1]}")
        for what, (start, end) in (("", period),
                                   ("today_", day_bounds(document["now"], mongo_year.TZ))):
            rx, tx = self.expected(site, start, end)
            if (document[f"{what}rx"], document[f"{what}tx"]) != (rx, tx):
                raise RuntimeError(
                    f"{mongo_year.SITES[site]}: the API says {what}rx {document[f'{what}rx']}, "
                    f"{what}tx {document[f'{what}tx']}; the data set holds {rx}, {tx}")


def _usage(conn: http.client.HTTPConnection, path: str) -> tuple[float, dict[str, Any]]:
    elapsed, status, body, encoding = timed_get(conn, path)
    if status != 200:
        raise RuntimeError(f"GET {path}: {status}: {body[:200]!r}")
    return elapsed, json.loads(gzip.decompress(body) if encoding == "gzip" else body)


def _takes_site(conn: http.client.HTTPConnection, checker: _Checker) -> str:
    """Empty when the app answers ``?site=`` with that site's figures, else why not."""
    _, status, body, _ = timed_get(conn, f"{USAGE}?site={mongo_year.SITES[1]}")
    if status == 400:
        with contextlib.suppress(ValueError, AttributeError):
            return f"400: {json.loads(body)['detail'][:70]}"
        return "400"
    if status != 200:
        raise RuntimeError(f"GET {USAGE}?site=: {status}: {body[:200]!r}")
    document = json.loads(body if body[:1] == b"{" else gzip.decompress(body))
    try:
        checker.check(1, document)
    except RuntimeError:
        checker.check(0, document)  # else the answer is wrong for either site: an error
        return "200 with the config's site's figures (the parameter is ignored)"
    return ""


def _store_calls(answering: Server, marker: dict[str, Any]) -> str:
    """Median ms of 3 runs of each store call ``usage`` makes, on the first site, in this
    process."""
    from traffic.periods import billing_period, day_bounds
    from traffic.published import REALTIME
    from traffic.quota import PERIOD_RESET_META
    from traffic.store import open_store

    now = marker["end"]
    store = open_store(answering.url(mongo_year.DATABASE), mongo_year.TZ, {}, create=False,
                       site=mongo_year.SITES[0])
    period = billing_period(now, 1, mongo_year.TZ)
    today = day_bounds(now, mongo_year.TZ)
    keys = [mongo_year.KEY]
    calls = {
        "key_types": store.key_types, "known_keys": store.known_keys,
        "totals(period)": lambda: store.totals(*period, keys),
        "totals(today)": lambda: store.totals(*today, keys),
        "first_bucket": lambda: store.first_bucket("5min"),
        "last_sample_at": store.last_sample_at,
        "get_meta": lambda: store.get_meta(PERIOD_RESET_META),
        "published": lambda: store.published(REALTIME)}
    spent = {}
    try:
        for name, call in calls.items():
            times = []
            for _ in range(3):
                began = time.perf_counter()
                call()
                times.append((time.perf_counter() - began) * 1000)
            spent[name] = median(times)
    finally:
        store.close()
    return ", ".join(f"{name} {ms:.0f}" for name, ms in
                     sorted(spent.items(), key=lambda item: item[1], reverse=True))


def run(quick: bool) -> list[Result]:
    try:
        with server(mongo_year.workdir()) as answering:
            marker, how = mongo_year.ensure(answering)
            with _stack(answering) as stack:
                return [_measure(answering, stack, marker, how, quick)]
    except Exception as error:
        return [Result(NAME, None, "ms", API_TARGET_MS, error=f"{type(error).__name__}: {error}")]


def _measure(answering: Server, stack: Any, marker: dict[str, Any], how: str,
             quick: bool) -> Result:
    from pymongo import MongoClient

    runs, warmup = (3, 1) if quick else (40, WARMUP)
    checker = _Checker(marker)
    parts = urlsplit(stack.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    client = MongoClient(answering.url(mongo_year.DATABASE))
    tracker = client.get_default_database()["tracker"]
    try:
        refused = _takes_site(conn, checker)
        sites = [0] if refused else list(range(len(mongo_year.SITES)))
        times, floors, finds = [], [], []
        size = 0
        for turn in range(warmup + runs):
            site = sites[turn % len(sites)]
            path = USAGE if refused else f"{USAGE}?site={mongo_year.SITES[site]}"
            elapsed, document = _usage(conn, path)
            checker.check(site, document)
            floor, status, body, _ = timed_get(conn, FLOOR)
            if status != 400:
                raise RuntimeError(f"GET {FLOOR}: {status}, not 400: {body[:200]!r}")
            began = time.perf_counter()
            tracker.find_one({"site": mongo_year.SITES[site]})
            found = (time.perf_counter() - began) * 1000
            if turn >= warmup:
                times.append(elapsed)
                floors.append(floor)
                finds.append(found)
                size = len(json.dumps(document))
    finally:
        conn.close()
        client.close()
    calls = "not timed with --quick" if quick else _store_calls(answering, marker)
    p95 = percentile(times, 0.95)
    floor_p95 = percentile(floors, 0.95)
    sites_note = (f"{len(mongo_year.SITES)} sites in turn with ?site=" if not refused else
                  f"?site= not taken ({refused}): every request reads the config's site "
                  f"{mongo_year.SITES[0]}")
    note = (f"{answering.what}; {sites_note}; {runs} sequential after {warmup} through nginx: "
            f"p50 {percentile(times, 0.5):.0f} ms, max {max(times):.0f} ms; every answer's "
            f"period and today bytes equal the data set's; floors interleaved: app refusing a "
            f"parameter p50 {percentile(floors, 0.5):.1f} ms, p95 {floor_p95:.1f} ms "
            f"(ratio of p95s {p95 / floor_p95:.0f}), one pymongo find_one p50 "
            f"{percentile(finds, 0.5):.2f} ms, p95 {percentile(finds, 0.95):.2f} ms; "
            f"store calls of a usage, ms each in process: {calls}; body {size:,} B; "
            f"data set {marker['documents']:,} documents ({len(mongo_year.SITES)} sites x 1 key, "
            f"a year to {time.strftime('%Y-%m-%d %H:%M', time.gmtime(marker['end'] / 1000))} "
            f"UTC), {how}")
    return Result(NAME, p95, "ms", API_TARGET_MS, note=note)

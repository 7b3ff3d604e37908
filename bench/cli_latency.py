"""``traffic status`` and ``traffic report --resolution day`` over a year of 5-second data.

Target: each whole process (interpreter start, imports, config, store, queries, output) takes at
most 2.5 times ``python -c pass`` from the same venv, wall clock. The two are run alternately in
the same loop, one warm-up each and then 10 of each (``--quick``: 5), and the figure is the ratio
of their medians, so a busy or slow machine slows both alike.

The store is built once and cached in ``bench/.cache`` (gitignored): one key, one year of
5-second deltas ending now, written through ``SQLiteStore.add`` one day (17,280 deltas) per call
and pruned after each day with the default retention (raw 7 d, 5min 60 d, hour 730 d), as the
collector's daily prune would have left it. Later runs top the cached store up to the present
(rebuilding it when it is more than 30 days behind), so "now" always has data.
"""

import math
import os
import random
import shutil
import subprocess
import time
from pathlib import Path

from bench.common import CACHE, TRAFFIC, VENV_BIN, Result, clean_env, median, remove_db
from traffic.config import Config, load_config
from traffic.counters import CounterState, Delta
from traffic.periods import DAY_MS
from traffic.store.sqlite import SQLiteStore

RATIO_TARGET = 2.5
PYTHON = VENV_BIN / "python"
KEY = "kernel:wan0"
STEP_MS = 5000
PER_DAY = DAY_MS // STEP_MS
YEAR_DAYS = 365
MAX_BEHIND_MS = 30 * DAY_MS
VERSION = 1
FLOOR_SCRIPT = """\
import re, sys
re.sub(r"(-script\\.pyw|\\.exe)?$", "", sys.argv[0])
import sqlite3, zoneinfo
zone = zoneinfo.ZoneInfo(sys.argv[2])
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("SELECT MAX(at) FROM tracker").fetchall()
"""
"""What no ``traffic`` command can go below: what the installed console script does before
``main`` (pip's wrapper imports ``re`` and calls ``re.sub``), importing ``sqlite3`` and
``zoneinfo``, loading the time zone, opening the store and one query."""


def cli_config() -> Config:
    """The config the CLI subprocesses will see (for their time zone)."""
    return load_config(None, [], environ=clean_env())


def year_store_path() -> Path:
    tz = cli_config().timezone.key.replace("/", "_")
    return CACHE / f"year-v{VERSION}-{tz}.db"


def _deltas(start: int, end: int, seed: int) -> list[Delta]:
    """5-second deltas in ``[start, end)``: a household's day, busy evenings, ~1.3 GB a day."""
    rng = random.Random(seed)
    out = []
    for at in range(start, end, STEP_MS):
        hour = (at // 3_600_000) % 24
        shape = 0.3 + math.sin(math.pi * ((hour - 6) % 24) / 24) ** 2
        rx = int(rng.expovariate(1.0) * 60_000 * shape) + 1
        out.append(Delta(KEY, at, at + STEP_MS, rx, rx // 8 + rng.randrange(0, 200)))
    return out


def ensure_year_store() -> tuple[Path, str]:
    """The cached store, built or topped up to now; returns it and what was done."""
    config = cli_config()
    retention = load_config(None, [], environ={}, system_path=None).retention
    path = year_store_path()
    CACHE.mkdir(parents=True, exist_ok=True)
    now = time.time_ns() // 1_000_000
    now -= now % STEP_MS
    began = time.perf_counter()
    if path.exists():
        store = SQLiteStore(str(path), config.timezone, retention)
        try:
            state = store.tracker_state().get(KEY)
            if state is not None and now - state.at <= MAX_BEHIND_MS:
                _fill(store, state, now)
                return path, f"cached store topped up in {time.perf_counter() - began:.1f} s"
        finally:
            store.close()
    building = path.with_name(path.name + f".building-{os.getpid()}")
    remove_db(building)
    store = SQLiteStore(str(building), config.timezone, retention)
    try:
        _fill(store, CounterState("bench/1", now - YEAR_DAYS * DAY_MS, 0, 0), now)
    except BaseException:
        store.close()
        remove_db(building)
        raise
    store.close()
    remove_db(path)
    building.rename(path)
    return path, f"store built in {time.perf_counter() - began:.0f} s"


def _fill(store: SQLiteStore, state: CounterState, now: int) -> None:
    """Add day-sized batches from ``state.at`` to ``now``, pruning after each as at run time."""
    at, rx_total, tx_total = state.at, state.rx, state.tx
    while at < now:
        end = min(at + DAY_MS, now)
        deltas = _deltas(at, end, seed=at)
        rx_total += sum(d.rx for d in deltas)
        tx_total += sum(d.tx for d in deltas)
        store.add(deltas, {KEY: CounterState("bench/1", end, rx_total, tx_total)})
        store.prune(end)
        at = end


def _timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env,
                          stdin=subprocess.DEVNULL)
    elapsed = (time.perf_counter() - began) * 1000
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[1:])}: exit {done.returncode}: "
                           f"{done.stderr.strip()[-200:]}")
    return elapsed, done.stdout


def _side_by_side(command: list[str], floor: list[str], runs: int
                  ) -> tuple[list[float], list[float], list[float], str]:
    """Wall times in ms of ``command``, of ``python -c pass`` and of ``floor``, run in turn."""
    env = clean_env()
    baseline = [str(PYTHON), "-c", "pass"]
    _timed(baseline, env)
    _timed(floor, env)
    _, out = _timed(command, env)
    times, bare, floors = [], [], []
    for _ in range(runs):
        bare.append(_timed(baseline, env)[0])
        floors.append(_timed(floor, env)[0])
        elapsed, out = _timed(command, env)
        times.append(elapsed)
    return times, bare, floors, out


def run(quick: bool, names: tuple[str, ...] = ("status", "report-day")) -> list[Result]:
    runs = 5 if quick else 10
    try:
        path, how = ensure_year_store()
    except Exception as error:
        return [Result(name, None, "x pass", RATIO_TARGET, error=f"year store: {error}")
                for name in names]
    url = f"store.url=sqlite://{path}"
    commands = {
        "status": [str(TRAFFIC), "--set", url, "status"],
        "report-day": [str(TRAFFIC), "--set", url, "report", "--resolution", "day"],
    }
    floor = [str(PYTHON), "-c", FLOOR_SCRIPT, str(path), cli_config().timezone.key]
    expect = {"status": "Traffic at", "report-day": "total"}
    size_mb = sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 1e6
    results = []
    for name in names:
        try:
            times, bare, floors, out = _side_by_side(commands[name], floor, runs)
            if expect[name] not in out:
                raise RuntimeError(f"unexpected output: {out[:100]!r}")
        except Exception as error:
            results.append(Result(name, None, "x pass", RATIO_TARGET, error=str(error)))
            continue
        note = (f"median of {runs}: {median(times):.1f} ms (min {min(times):.0f}, "
                f"max {max(times):.0f}) against python -c pass {median(bare):.1f} ms; "
                f"floor {median(floors) / median(bare):.2f} x pass ({median(floors):.1f} ms: "
                f"console script, sqlite3, zoneinfo, open the store); "
                f"store {size_mb:.1f} MB, {how}")
        results.append(Result(name, median(times) / median(bare), "x pass", RATIO_TARGET,
                              note=note))
    return results


def copy_of_year_store(target: Path) -> Path:
    """A private copy of the year store (for measuring commits on a grown store)."""
    path, _ = ensure_year_store()
    remove_db(target)
    shutil.copyfile(path, target)
    return target

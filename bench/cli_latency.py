"""``traffic status`` and ``traffic report --resolution day`` over a year of 5-second data.

Target: each whole process (interpreter start, imports, config, store, queries, output) takes at
most 2.5 times ``python -c pass`` from the same venv, wall clock. The two are run alternately in
the same loop, one warm-up each and then 25 of each (``--quick``: 10), and the figure is the ratio
of their medians, so a busy or slow machine slows both alike (with 10, the floor's own ratio moved
by a tenth between two loops of one run: the medians of 25 move less).

They run as a user meets them: the installed ``traffic`` command, a config file (read through
the parsed-settings cache, as at every command but the first after an edit), and the files a
running collector keeps on the RAM disk (120 realtime points, the source's state, unsaved
deltas, the latest save), so the readers add the unsaved bytes as they do on a live box.

The store is built once and cached in ``bench/.cache`` (gitignored): one key, one year of
5-second deltas ending now, written through ``SQLiteStore.add`` one day (17,280 deltas) per call
and pruned after each day with the default retention (raw 7 d, 5min 60 d, hour 730 d), as the
collector's daily prune would have left it; its last 10 minutes are a held save (one record
that the next save folds into the tables), which the readers add. Later runs top the cached
store up to the present (rebuilding it when it is more than 30 days behind), so "now" always has
data.
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
HELD_MS = 600_000
VERSION = 1
FLOOR_SCRIPT = """\
import sys
import sqlite3, zoneinfo
zone = zoneinfo.ZoneInfo(sys.argv[2])
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("SELECT MAX(at) FROM tracker").fetchall()
"""
"""What no ``traffic`` command can go below: importing ``sqlite3`` and ``zoneinfo``, loading the
time zone, opening the store and one query."""


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
    """Add day-sized batches from ``state.at`` to ``now``, pruning after each as at run time.

    The last 10 minutes come as the collector saves them (merged per 5-minute bucket) after a
    save into the tables, so the store holds them as its held record (every other save is
    one), which the readers then add: the costlier of a live store's two states."""
    from collector.worker import BucketMerger

    at, rx_total, tx_total = state.at, state.rx, state.tx
    held_from = max(at, now - HELD_MS)
    while at < now:
        end = min(at + DAY_MS, held_from) if at < held_from else now
        deltas = _deltas(at, end, seed=at)
        rx_total += sum(d.rx for d in deltas)
        tx_total += sum(d.tx for d in deltas)
        if at < held_from:
            store.add(deltas, {KEY: CounterState("bench/1", end, rx_total, tx_total)})
            store.prune(end)
        else:
            store.prune(at)  # folds a record held by the last top-up, so these are held
            store.add(BucketMerger(deltas).deltas,
                      {KEY: CounterState("bench/1", end, rx_total, tx_total)})
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


def _user_setup(path: Path, workdir: Path) -> Path:
    """A user's config file for the year store, and the runtime files of a collector running
    on it, published just now; returns the config file."""
    from traffic.runtime import realtime_path, save_path, write_atomically

    tz = cli_config().timezone.key
    config = workdir / "traffic.toml"
    config.write_text(f'site = "home"\ntimezone = "{tz}"\n[store]\nurl = "sqlite://{path}"\n'
                      f'[collector]\nruntime_dir = "{workdir / "run"}"\n'
                      f'[[sources]]\ntype = "kernel"\ninterfaces = ["{KEY.split(":")[1]}"]\n'
                      f'[quota]\nmonthly = "40 GB"\nbilling_day = 1\n')
    loaded = load_config(config, [], environ=clean_env())
    store = SQLiteStore(str(path), loaded.timezone, loaded.retention)
    try:
        saved_at = store.tracker_state()[KEY].at
    finally:
        store.close()
    now = time.time_ns() // 1_000_000
    unsaved = [[KEY, at, min(at + 300_000, now), 2_000_000, 250_000]
               for at in range(saved_at, now, 300_000)]
    points = [(now - (119 - i) * STEP_MS, 12_345.6 + 97.3 * i, 1_234.5 + 9.1 * i)
              for i in range(120)]
    write_atomically(realtime_path(loaded), {
        "site": "home", "interval_s": STEP_MS / 1000, "updated": now, "read_at": now,
        "sources": {"kernel": {"read_at": now, "failing_since": None, "error": "",
                               "gauges": {}}},
        "unsaved": unsaved, "points": points})
    write_atomically(save_path(loaded), {"saved_at": saved_at, "failing_since": None,
                                         "error": ""})
    return config


def run(quick: bool, names: tuple[str, ...] = ("status", "report-day")) -> list[Result]:
    import tempfile

    runs = 10 if quick else 25
    try:
        path, how = ensure_year_store()
    except Exception as error:
        return [Result(name, None, "x pass", RATIO_TARGET, error=f"year store: {error}")
                for name in names]
    root = Path(__file__).resolve().parents[1]
    subprocess.run([str(PYTHON), "-m", "compileall", "-q", "traffic", "collector", "cli"],
                   cwd=root, check=True, stdout=subprocess.DEVNULL)  # as ``make install``
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(prefix="traffic-bench-", dir=shm) as workdir:
        config = str(_user_setup(path, Path(workdir)))
        commands = {
            "status": [str(TRAFFIC), "--config", config, "status"],
            "report-day": [str(TRAFFIC), "--config", config, "report", "--resolution", "day"],
        }
        return _measure(names, commands, path, how, runs)


def _measure(names: tuple[str, ...], commands: dict[str, list[str]], path: Path, how: str,
             runs: int) -> list[Result]:
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
                f"sqlite3, zoneinfo, open the store, one query); config file, collector's "
                f"runtime files; store {size_mb:.1f} MB, {how}")
        results.append(Result(name, median(times) / median(bare), "x pass", RATIO_TARGET,
                              note=note))
    return results


def copy_of_year_store(target: Path) -> Path:
    """A private copy of the year store (for measuring commits on a grown store)."""
    path, _ = ensure_year_store()
    remove_db(target)
    shutil.copyfile(path, target)
    return target

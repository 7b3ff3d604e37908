"""CPU time of one router poll cycle in the collector, against the HiLink simulator.

The simulator (``tests/sim/hilink.py``) runs in a process of its own, so only the collector's
side is measured: a real ``Collector`` with one ``hilink`` source (the real ``huawei-lte-api``
client, logged in once) and its SQLite store, timed with ``time.process_time()`` around
``poll()``. A cycle makes every call the source makes (traffic statistics, status, signal,
operator, month statistics) and turns the answers into a reading, a delta and gauges.

The floor, measured interleaved in the same run: the same five requests, in the source's own
logged-in session, made in a bare loop with ``requests`` over one kept-alive connection, their
answers left unparsed. The target is a ratio to it:
what the client library, the parsing and the tracker add must stay small beside the HTTP
exchanges themselves.
"""

import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, Result, clean_env, median, tmpfs_dir

RATIO_TARGET = 3.0
CALLS = ("api/monitoring/traffic-statistics", "api/monitoring/status", "api/device/signal",
         "api/net/current-plmn", "api/monitoring/month_statistics")
PASSWORD = "bench-router-password"


def run(quick: bool) -> list[Result]:
    rounds = 5 if quick else 20
    cycles = 20 if quick else 50
    simulator = _start_simulator()
    try:
        url = simulator[1]
        polls, bare = _measure(url, rounds, cycles)
    except Exception as error:
        return [Result("router-poll", None, "x floor", RATIO_TARGET,
                       error=f"{type(error).__name__}: {error}")]
    finally:
        simulator[0].send_signal(signal.SIGTERM)
        simulator[0].wait(timeout=10)
    poll_ms, bare_ms = median(polls), median(bare)
    note = (f"{poll_ms:.2f} ms CPU per cycle (5 calls) vs {bare_ms:.2f} ms for the same "
            f"requests in a bare loop; medians of {rounds} rounds of {cycles} cycles, "
            f"interleaved; at the default 10 s interval {poll_ms / 100:.3f} % of a core")
    return [Result("router-poll", poll_ms / bare_ms, "x floor", RATIO_TARGET, note=note)]


def _start_simulator() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.sim.hilink", "--port", "0", "--password", PASSWORD,
         "--grow", "250000"], cwd=ROOT, stdout=subprocess.PIPE, text=True, env=clean_env())
    assert process.stdout is not None
    line = process.stdout.readline()
    if "http://" not in line:
        process.kill()
        raise RuntimeError(f"the simulator did not start: {line!r}")
    return process, line.split()[-1]


def _measure(url: str, rounds: int, cycles: int) -> tuple[list[float], list[float]]:
    import requests

    from collector.sources import source_schemas
    from collector.worker import Collector
    from traffic.config import load_config
    from traffic.store import open_site_store

    with tempfile.TemporaryDirectory(prefix="traffic-bench-") as work, \
            tempfile.TemporaryDirectory(prefix="traffic-bench-run-", dir=tmpfs_dir()) as run_dir:
        config_file = Path(work) / "traffic.toml"
        config_file.write_text(
            f'[store]\nurl = "sqlite://{work}/traffic.db"\n'
            f'[collector]\nruntime_dir = "{run_dir}"\n'
            f'[[sources]]\ntype = "hilink"\nurl = "{url}"\npassword = "{PASSWORD}"\n')
        config = load_config(config_file, environ={}, system_path=None,
                             source_schemas=source_schemas())
        store = open_site_store(config, create=True)
        now = [time.time_ns() // 1_000_000]
        collector = Collector(config, store, clock=lambda: now[0])
        session = requests.Session()
        polls: list[float] = []
        bare: list[float] = []
        try:
            for _ in range(3):  # log in, read the serial number, warm up
                now[0] += 10_000
                collector.poll()
            router = collector.sources[0]._client.connection  # the same logged-in session
            session.cookies.update(router.requests_session.cookies)
            for _ in range(rounds):
                began = time.process_time()
                for _ in range(cycles):
                    now[0] += 10_000
                    if not collector.poll():
                        raise RuntimeError("a poll counted nothing")
                polls.append(1000 * (time.process_time() - began) / cycles)
                began = time.process_time()
                for _ in range(cycles):
                    for call in CALLS:
                        session.get(url + call, timeout=5).content  # noqa: B018
                bare.append(1000 * (time.process_time() - began) / cycles)
        finally:
            collector.close()
            session.close()
            store.close()
    return polls, bare


if __name__ == "__main__":
    for result in run(quick="--quick" in sys.argv):
        print(result.line())

"""End to end on a real link: bytes through a veth pair, counted by the real collector process.

The stored totals must equal the kernel's counters byte for byte, through a PPP-style reconnect
(the interface deleted and created anew) and a ``kill -9`` of the collector mid-transfer.
"""

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.collector_process import CollectorProcess, clean_env
from tests.sim.link import Link

pytestmark = pytest.mark.netns
MB = 1_000_000


def test_stored_totals_equal_kernel_counters(link: Link, tmp_path: Path,
        spawn_collector: Callable[..., CollectorProcess]) -> None:
    collector = spawn_collector()
    collector.start()
    before = link.counters()
    time.sleep(0.5)
    assert link.counters() == before, "the link must be quiet before the test sends"

    # One TCP stream of 110 MB at about 30 MB/s, carried across a PPP-style reconnect and
    # across a kill -9 of the collector.
    sink = link.start_sink()
    sender = link.send(110 * MB, rate=30 * MB)
    wait_until(lambda: link.counters()[1] - before[1] > 20 * MB)
    # The reconnect comes mid-transfer. The sender pauses just before it, so that no byte
    # crosses the old interface after the collector's last look at it: no tool can count those.
    sender.send_signal(signal.SIGSTOP)
    collector.wait_polls(3)
    first_life = link.counters()
    old_ifindex = link.ifindex()
    link.reconnect()  # the interface comes back with a new ifindex, counters from zero
    assert link.ifindex() != old_ifindex
    sender.send_signal(signal.SIGCONT)

    wait_until(lambda: link.counters()[1] > 20 * MB)
    collector.kill()  # kill -9 mid-transfer: whatever was not committed is counted on restart
    assert link.counters()[1] < 80 * MB, "the transfer ended before the kill"
    collector.start()
    assert sender.wait(timeout=60) == 0
    assert int(sink.communicate(timeout=60)[0]) == 110 * MB
    collector.wait_polls(3)
    collector.stop()

    second_life = link.counters()
    expected_rx = first_life[0] - before[0] + second_life[0]
    expected_tx = first_life[1] - before[1] + second_life[1]
    assert collector.stored() == (expected_rx, expected_tx)


def wait_until(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_kill_before_the_first_save_loses_nothing(link: Link, tmp_path: Path,
        spawn_collector: Callable[..., CollectorProcess]) -> None:
    """The first reading of a new interface is stored at once, not at the first save."""
    collector = spawn_collector(save_interval="1h")
    before = link.counters()
    collector.start()
    assert link.transfer(5 * MB) == 5 * MB
    collector.wait_polls(2)
    collector.kill()
    assert link.transfer(3 * MB) == 3 * MB
    collector.start()
    collector.stop()
    after = link.counters()
    assert collector.stored() == (after[0] - before[0], after[1] - before[1])
    assert after[1] - before[1] > 8 * MB


def test_collect_once_polls_commits_and_exits(link: Link, tmp_path: Path,
        spawn_collector: Callable[..., CollectorProcess]) -> None:
    collector = spawn_collector()
    run_once = link.in_near(sys.executable, "-m", "cli", "--config", str(collector.config),
                            "collect", "--once")
    subprocess.run(run_once, check=True, env=clean_env(), capture_output=True)
    before = link.counters()
    assert link.transfer(3 * MB) == 3 * MB
    subprocess.run(run_once, check=True, env=clean_env(), capture_output=True)
    after = link.counters()
    assert collector.stored() == (after[0] - before[0], after[1] - before[1])


def test_second_collector_on_the_same_store_is_refused(link: Link, tmp_path: Path,
        spawn_collector: Callable[..., CollectorProcess]) -> None:
    collector = spawn_collector()
    collector.start()
    second = subprocess.run(link.in_near(sys.executable, "-m", "cli", "--config",
                                         str(collector.config), "collect", "--once"),
                            env=clean_env(), capture_output=True, text=True)
    collector.stop()
    assert second.returncode == 2
    assert second.stderr == (f"traffic: store.url: another collector (pid "
                             f"{collector.process.pid}) is already writing to "
                             f"{tmp_path}/traffic.db\n")

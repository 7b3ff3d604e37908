"""Alerts raised by real ``traffic collect`` processes, killed and restarted: each threshold is
in the store's events exactly once, whatever happened to the process after raising it, and one
reached while no collector ran is raised when one is back."""

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.collector_process import CollectorProcess
from tests.sim.link import Link
from traffic.config import load_config
from traffic.store import Event, open_site_store

pytestmark = pytest.mark.netns

LIMIT = 2_000_000
SETTINGS = '[quota]\nmonthly = "2 MB"\n[alerts]\nnotify = []\n'


def alerts(collector: CollectorProcess) -> list[Event]:
    config = load_config(collector.config, environ={}, system_path=None)
    store = open_site_store(config, create=False)
    try:
        return [event for event in reversed(store.events(limit=1000)) if event.kind == "alert"]
    finally:
        store.close()


def wait_alerts(collector: CollectorProcess, count: int, timeout: float = 30) -> list[Event]:
    deadline = time.monotonic() + timeout
    while len(found := alerts(collector)) < count:
        assert time.monotonic() < deadline, f"waited {timeout}s for {count} alerts: {found}"
        time.sleep(0.1)
    return found


def send_until(link: Link, collector: CollectorProcess, share: float) -> None:
    """Send from the box so that its billed total reaches about ``share`` of the limit (TCP
    headers and the ACKs coming back add a few percent to the payload)."""
    rx, tx = collector.stored()
    link.transfer(int((share * LIMIT - rx - tx) / 1.06))


def test_each_threshold_once_across_kill_9_and_restarts(
        link: Link, spawn_collector: Callable[..., CollectorProcess]) -> None:
    collector = spawn_collector(SETTINGS)
    collector.start()
    send_until(link, collector, 0.65)
    assert len(wait_alerts(collector, 1)) == 1
    collector.kill()  # kill -9 right after the raise

    collector.start()
    collector.wait_polls(10)  # checks run at start and every second (save_interval = 1s)
    assert len(alerts(collector)) == 1
    send_until(link, collector, 0.88)
    wait_alerts(collector, 2)
    collector.kill()

    send_until(link, collector, 1.2)  # while no collector runs: counted when one is back
    collector.start()
    wait_alerts(collector, 3)
    collector.stop()
    collector.start()
    collector.wait_polls(10)
    collector.stop()

    found = alerts(collector)
    assert [event.detail["rule"] for event in found] == ["threshold"] * 3
    texts = [event.detail["text"] for event in found]
    assert texts[0].startswith("50% of the monthly limit is used: 1.")
    assert texts[1].startswith("80% of the monthly limit is used: 1.")
    assert texts[2].startswith("The monthly limit is used up: 2.")
    assert not any(event.detail.get("quiet") for event in found)
    assert [event.at for event in found] == sorted(event.at for event in found)


def test_thresholds_reached_while_stopped_are_raised_once_at_the_start(
        link: Link, spawn_collector: Callable[..., CollectorProcess], tmp_path: Path) -> None:
    collector = spawn_collector(SETTINGS)
    collector.start()
    collector.stop()
    send_until(link, collector, 0.9)  # 50% and 80% while stopped
    collector.start()
    found = wait_alerts(collector, 2)
    collector.kill()
    collector.start()
    collector.wait_polls(10)
    collector.stop()

    assert alerts(collector) == found
    assert [(event.detail["text"][:3], event.detail.get("quiet", False)) for event in found] == [
        ("50%", True), ("80%", False)]
    log = (tmp_path / "collector.log").read_text()
    assert log.count("alert threshold") == 2

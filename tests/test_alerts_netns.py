"""Alerts end to end on a real link: bytes through a veth pair, counted by a real ``traffic
collect`` in the near namespace, cross 50 % and then 80 % of a small monthly limit; a ``json://``
receiver reachable from that namespace (on its own 127.0.0.1) gets exactly those two messages,
through Apprise, and nothing more."""

import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.collector_process import CollectorProcess, events
from tests.sim import receivers
from tests.sim.link import Link
from tests.stack import clean_env
from traffic.config import load_config
from traffic.store import open_site_store

pytestmark = pytest.mark.netns
LIMIT = 4_000_000
OVERHEAD = 1.06
"""Bytes on the wire per byte sent, about: TCP/IP headers and the ACKs coming back."""
DELIVERY_WAIT_S = 25
"""The collector delivers an alert as soon as it is raised, and checks the rules every second
here (save_interval = 1s)."""


class NearReceiver:
    """``tests/sim/receivers.py json`` run inside the near namespace: the collector reaches it
    on 127.0.0.1 there, and its posts never cross the veth being counted."""

    def __init__(self, link: Link) -> None:
        self.process = subprocess.Popen(
            link.in_near(sys.executable, receivers.__file__, "json"),
            stdout=subprocess.PIPE, text=True, env=clean_env())
        assert self.process.stdout is not None
        self.port = json.loads(self.process.stdout.readline())["port"]
        self.posts: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/alerts"

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._lock:
                self.posts.append(json.loads(line)["document"])

    def messages(self) -> list[str]:
        with self._lock:
            return [post["message"] for post in self.posts]

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def receiver(link: Link) -> Iterator[NearReceiver]:
    running = NearReceiver(link)
    yield running
    running.close()



def pending(collector: CollectorProcess) -> int:
    config = load_config(collector.config, environ={}, system_path=None)
    store = open_site_store(config, create=False)
    try:
        return len(store.pending_deliveries())
    finally:
        store.close()


def wait_until(done: Callable[[], bool], what: str, timeout: float,
               collector: CollectorProcess) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            log = (collector.tmp_path / "collector.log").read_text()
            found = [(event.kind, event.detail) for event in events(collector)]
            raise AssertionError(f"waited {timeout}s for {what}; events: {found}; "
                                 f"collector log:\n{log}")
        time.sleep(0.1)


def counted(link: Link, start: tuple[int, int]) -> int:
    rx, tx = link.counters()
    return rx - start[0] + tx - start[1]


def send_until(link: Link, start: tuple[int, int], share: float) -> None:
    """Send from the near side until the veth has carried ``share`` of the limit since
    ``start`` (the collector counts the same bytes)."""
    while (missing := share * LIMIT - counted(link, start)) > 0:
        link.transfer(int(missing / OVERHEAD) + 1)


def used(message: str, pct: int) -> float:
    """The megabytes a threshold message says are used (of the 4 MB limit)."""
    found = re.match(rf"{pct}% of the monthly limit is used: ([0-9.]+) MB of 4 MB, ", message)
    assert found, message
    return float(found[1])


def test_the_receiver_gets_the_50_and_the_80_percent_messages_and_nothing_else(
        link: Link, receiver: NearReceiver,
        spawn_collector: Callable[..., CollectorProcess]) -> None:
    collector = spawn_collector(f'[quota]\nmonthly = "4 MB"\n'
                                f'[alerts]\nnotify = ["{receiver.url()}"]\n')
    start = link.counters()
    collector.start()
    time.sleep(0.5)
    assert counted(link, start) == 0, "the link must be quiet before the test sends"

    send_until(link, start, 0.65)
    wait_until(lambda: len(receiver.messages()) == 1, "the 50% message", DELIVERY_WAIT_S,
               collector)
    assert 0.5 * LIMIT <= counted(link, start) < 0.8 * LIMIT
    send_until(link, start, 0.92)
    wait_until(lambda: len(receiver.messages()) == 2, "the 80% message", DELIVERY_WAIT_S,
               collector)
    assert 0.8 * LIMIT <= counted(link, start) < LIMIT

    wait_until(lambda: [event.kind for event in events(collector)].count("alert_sent") == 2,
               "both deliveries to be recorded", 10, collector)
    collector.wait_polls(15)  # three more alert checks: nothing new is raised or queued
    assert pending(collector) == 0
    collector.stop()

    messages = receiver.messages()
    assert 2 <= used(messages[0], 50) <= 3.2
    assert 3.2 <= used(messages[1], 80) < 4
    found = events(collector)
    alerts = [event.detail for event in found if event.kind == "alert"]
    assert [(alert["rule"], alert["text"]) for alert in alerts] == [
        ("threshold", messages[0]), ("threshold", messages[1])]
    assert not any(alert.get("quiet") for alert in alerts)
    assert [event.kind for event in found if event.kind.startswith("alert_")] == [
        "alert_sent", "alert_sent"]
    assert receiver.messages() == messages
    assert 0.8 * LIMIT <= sum(collector.stored()) < LIMIT


def test_a_threshold_crossed_between_two_checks_is_sent_at_once(
        link: Link, receiver: NearReceiver,
        spawn_collector: Callable[..., CollectorProcess]) -> None:
    """At the default save interval the rules are checked every 5 minutes at most; the collector
    checks at once when the bytes it counts reach the next threshold, as the poll that counts
    them sees."""
    collector = spawn_collector(f'[quota]\nmonthly = "4 MB"\n'
                                f'[alerts]\nnotify = ["{receiver.url()}"]\n',
                                save_interval="10m")
    start = link.counters()
    collector.start()
    collector.wait_polls(3)  # the check at start has run
    send_until(link, start, 0.55)
    wait_until(lambda: len(receiver.messages()) == 1, "the 50% message", DELIVERY_WAIT_S,
               collector)
    collector.stop()
    assert used(receiver.messages()[0], 50) >= 2

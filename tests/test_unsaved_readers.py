"""Readers with a 10-minute save interval (issue 11): ``traffic status`` and ``/api/v1/usage``
show the bytes the running collector counted seconds ago and has not saved yet; a ``kill -9``
loses none of them while the interface is there; after a save nothing is counted twice."""

import json
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.collector_process import CollectorProcess
from tests.sim.link import Link
from tests.stack import WebStack
from traffic.config import load_config
from traffic.periods import LATEST_MS
from traffic.runtime import read_document
from traffic.store import open_site_store

pytestmark = pytest.mark.netns

MB = 1_000_000
TEN_MINUTES = "10m"


def grown(after: tuple[int, int], before: tuple[int, int]) -> tuple[int, int]:
    return after[0] - before[0], after[1] - before[1]


def in_store_file(collector: CollectorProcess) -> tuple[int, int]:
    """What the store file itself holds, without the collector's published unsaved bytes."""
    config = load_config(collector.config, environ={}, system_path=None)
    store = open_site_store(config, create=False)
    try:
        return store.totals(0, LATEST_MS)
    finally:
        store.close()


def status(collector: CollectorProcess) -> tuple[int, int]:
    shown = json.loads(collector.cli("status", "--json"))
    return shown["rx"], shown["tx"]


def unsaved_published(collector: CollectorProcess) -> list[list]:
    return read_document(collector.realtime)["unsaved"]


def counting_unsaved(link: Link, spawn_collector: Callable[..., CollectorProcess]
                     ) -> tuple[CollectorProcess, tuple[int, int]]:
    """A collector saving every 10 minutes, past its start-up save, with 3 MB sent since then
    and a few polls made. Returns it with the kernel's counters from before it started."""
    link.static_neighbours()  # no ARP probe between the kernel's counters and the readers'
    collector = spawn_collector(save_interval=TEN_MINUTES)
    before = link.counters()
    collector.start()
    assert link.transfer(3 * MB) == 3 * MB
    collector.wait_polls(4)
    return collector, before


def test_status_shows_the_bytes_of_the_last_seconds_not_saved_yet(
        link: Link, spawn_collector: Callable[..., CollectorProcess]) -> None:
    collector, before = counting_unsaved(link, spawn_collector)
    counted = grown(link.counters(), before)

    assert status(collector) == counted
    saved = in_store_file(collector)
    assert saved[1] <= counted[1] - 3 * MB
    assert sum(entry[4] for entry in unsaved_published(collector)) >= 3 * MB


@pytest.fixture
def web_for(tmp_path: Path) -> Iterator[Callable[[CollectorProcess], WebStack]]:
    """gunicorn behind nginx for a collector's own config file (same store, same runtime_dir)."""
    started: list[WebStack] = []

    def start(collector: CollectorProcess) -> WebStack:
        started.append(WebStack(collector.config, tmp_path).start())
        return started[-1]
    yield start
    for stack in started:
        stack.stop()


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=20) as response:
        return json.loads(response.read())


def test_api_usage_includes_the_bytes_not_saved_yet(
        link: Link, spawn_collector: Callable[..., CollectorProcess],
        web_for: Callable[[CollectorProcess], WebStack]) -> None:
    collector, before = counting_unsaved(link, spawn_collector)
    stack = web_for(collector)
    counted = grown(link.counters(), before)

    usage = get_json(stack.url + "/api/v1/usage")
    assert (usage["rx"], usage["tx"]) == counted
    assert usage["total"] == sum(counted)
    assert sum(in_store_file(collector)) <= sum(counted) - 3 * MB


def test_kill_9_with_ten_minutes_of_pending_bytes_loses_none(
        link: Link, spawn_collector: Callable[..., CollectorProcess]) -> None:
    collector, before = counting_unsaved(link, spawn_collector)
    assert collector.process is not None
    collector.process.kill()
    collector.process.wait(timeout=30)
    at_kill = grown(link.counters(), before)
    assert in_store_file(collector)[1] <= at_kill[1] - 3 * MB
    assert status(collector) == at_kill  # the dead collector's last publication, still fresh

    assert link.transfer(MB) == MB
    collector.start()
    collector.wait_polls(4)
    assert status(collector) == grown(link.counters(), before)
    collector.stop()

    counted = grown(link.counters(), before)
    assert in_store_file(collector) == counted
    assert collector.stored() == counted
    assert counted[1] > 4 * MB


def test_after_a_save_status_shows_the_store_and_counts_nothing_twice(
        link: Link, spawn_collector: Callable[..., CollectorProcess]) -> None:
    collector, before = counting_unsaved(link, spawn_collector)
    published_before_the_save = collector.realtime.read_bytes()
    assert unsaved_published(collector)
    collector.stop()

    counted = grown(link.counters(), before)
    assert unsaved_published(collector) == []
    assert in_store_file(collector) == counted
    assert status(collector) == counted

    collector.realtime.write_bytes(published_before_the_save)  # a read racing the final save
    assert status(collector) == counted


def test_a_new_life_is_saved_at_once_and_a_kill_after_it_loses_nothing(
        link: Link, spawn_collector: Callable[..., CollectorProcess]) -> None:
    """At a reconnect the old life's last bytes exist nowhere but in the collector: the kernel
    forgot them with the interface. So a new life is saved at once, whatever the save interval,
    and a ``kill -9`` right after it loses none of them.

    Sent bytes are compared: a veth's final ``RTM_DELLINK`` counters lack what it received
    (see tests/test_dellink_netns.py), so only the upload is byte-exact across a deletion."""
    collector, before = counting_unsaved(link, spawn_collector)
    first_life = grown(link.counters(), before)
    assert in_store_file(collector)[1] < first_life[1] - 2 * MB, "not saved before the reconnect"
    link.reconnect()
    assert link.transfer(MB) == MB
    collector.wait_polls(4)
    assert in_store_file(collector)[1] >= first_life[1], "the new life was saved at once"
    second_life = link.counters()
    assert collector.process is not None
    collector.process.kill()
    collector.process.wait(timeout=30)
    collector.start()
    collector.stop()
    assert collector.stored()[1] == first_life[1] + second_life[1]

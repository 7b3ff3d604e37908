"""The real collector counting into MongoDB: bytes through a veth pair, a ``kill -9`` mid-
transfer, and the stored totals equal to the kernel's counters, byte for byte.

The server (SecantusDB) runs in the collector's namespace, on its loopback, as a MongoDB
server would run on the box or beside it; every command of the test runs there too.
"""

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.collector_process import CollectorProcess, wait_until
from tests.mongo_server import running_server, wait_in_namespace
from tests.sim.link import Link

pytestmark = pytest.mark.netns
MB = 1_000_000


@pytest.fixture
def store_url(link: Link, tmp_path: Path) -> Iterator[str]:
    server = running_server(tmp_path, prefix=tuple(link.in_near()))
    base = next(server)
    url = f"{base}/traffic?directConnection=true"
    wait_in_namespace(url, tuple(link.in_near()))
    yield url
    server.close()


def test_stored_totals_equal_kernel_counters_across_a_kill(
        link: Link, store_url: str, spawn_collector: Callable[..., CollectorProcess]) -> None:
    collector = spawn_collector(store_url=store_url)
    before = link.counters()
    collector.start()
    sink = link.start_sink()
    sender = link.send(40 * MB, rate=10 * MB)
    wait_until(lambda: link.counters()[1] - before[1] > 10 * MB, "10 MB sent")
    collector.kill()  # kill -9 mid-transfer
    assert link.counters()[1] - before[1] < 35 * MB, "the transfer ended before the kill"
    collector.start()
    assert sender.wait(timeout=60) == 0
    assert int(sink.communicate(timeout=60)[0]) == 40 * MB
    time.sleep(0.5)
    collector.wait_polls(3)
    collector.stop()
    after = link.counters()
    assert collector.stored() == (after[0] - before[0], after[1] - before[1])
    assert collector.stored()[1] > 40 * MB

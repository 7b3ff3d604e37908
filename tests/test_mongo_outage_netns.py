"""A MongoDB outage under a real collector (issue 12, items 4 and 5): bytes cross a veth pair
while the server (SecantusDB in the collector's namespace, its data on disk) is stopped and
later started again on the same port. The collector keeps polling into its spool meanwhile,
replays and empties it when the server is back, and the stored totals equal the kernel's
counters byte for byte; the same when the collector is killed (-9) during the outage and
started again before the server is: a site whose link to the central server was down catches
up the same way.
"""

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from collector.spool import read_entries, scan
from tests.collector_process import CollectorProcess, wait_until
from tests.mongo_server import running_server, wait_in_namespace
from tests.sim.link import Link
from tests.stack import clean_env, free_port

pytestmark = pytest.mark.netns
MB = 1_000_000
ENDLESS, RATE = 10**12, 4 * MB
"""A transfer that flows before, through and after the outage, however late the first spooled
saves come (``spooling``), until the test stops it once the spool is replayed."""


class Server:
    """SecantusDB in the link's near namespace on a fixed port, stopped (SIGTERM) and started
    again with its data kept."""

    def __init__(self, link: Link, workdir: Path) -> None:
        self.prefix = tuple(link.in_near())
        self.workdir = workdir
        self.port = free_port()
        self.url = f"mongodb://127.0.0.1:{self.port}/traffic?directConnection=true"
        self._running: Iterator[str] | None = None

    def start(self) -> None:
        self._running = running_server(self.workdir, prefix=self.prefix, port=self.port)
        next(self._running)
        wait_in_namespace(self.url, self.prefix)

    def stop(self) -> None:
        if self._running is not None:
            self._running.close()
            self._running = None


@pytest.fixture
def server(link: Link, tmp_path: Path) -> Iterator[Server]:
    made = Server(link, tmp_path)
    made.start()
    yield made
    made.stop()


def log_text(tmp_path: Path) -> str:
    return (tmp_path / "collector.log").read_text()


def sent(link: Link, before: tuple[int, int]) -> int:
    return link.counters()[1] - before[1]


def spooling(spool: Path, entries: int) -> None:
    """Wait until the spool holds ``entries`` saves and is still growing. A save in flight
    when the server stops waits for its socket (up to ``socketTimeoutMS``, 20 s) while a loaded
    server shuts down slowly: the first entries may come that much later."""
    wait_until(lambda: scan(spool).entries >= entries, f"{entries} saves in the spool", 60)
    size = scan(spool).size
    wait_until(lambda: scan(spool).size > size + MB, "the spool growing", 30)


def reading_ages_ms(spool: Path) -> list[int]:
    """For each spooled save, how old its newest counter reading was when the save began: the
    polls' cadence through the outage."""
    return [entry.at - max(state.at for state in entry.state.values())
            for entry, _ in read_entries(spool)]


def replayed_and_exact(collector: CollectorProcess, link: Link, spool: Path,
                       before: tuple[int, int], sender: object, sink: object) -> None:
    wait_until(lambda: not spool.exists(), "the spool replayed and removed", 60)
    collector.wait_polls(10)  # the transfer goes on after the replay
    size = link.stop_sending(sender)  # type: ignore[arg-type]
    assert int(sink.communicate(timeout=60)[0]) == size  # type: ignore[attr-defined]
    time.sleep(0.5)
    collector.wait_polls(3)
    collector.stop()
    after = link.counters()
    assert collector.stored() == (after[0] - before[0], after[1] - before[1])
    assert collector.stored()[1] > size


def outage_mid_transfer(link: Link, server: Server, tmp_path: Path,
                        spawn_collector: Callable[..., CollectorProcess], entries: int
                        ) -> tuple[CollectorProcess, Path, tuple[int, int], Any, Any]:
    """A collector counting into ``server`` while 8 MB cross the link, then the server
    stopped until the spool holds ``entries``: the collector, its spool, the counters before,
    the sink and the sender still sending."""
    collector = spawn_collector(store_url=server.url)
    spool = tmp_path / "state" / "home.spool"
    link.static_neighbours()  # no ARP probe after the last poll: stored equals the kernel's
    before = link.counters()
    collector.start()
    sink = link.start_sink()
    sender = link.send(ENDLESS, rate=RATE)
    wait_until(lambda: sent(link, before) > 8 * MB, "8 MB sent")
    assert not spool.exists()
    server.stop()
    spooling(spool, entries)
    return collector, spool, before, sink, sender


def test_an_outage_mid_transfer_is_spooled_and_replayed_byte_for_byte(
        link: Link, server: Server, tmp_path: Path,
        spawn_collector: Callable[..., CollectorProcess]) -> None:
    collector, spool, before, sink, sender = outage_mid_transfer(
        link, server, tmp_path, spawn_collector, entries=4)
    assert sender.poll() is None, "the transfer ended during the outage"
    ages = reading_ages_ms(spool)
    assert sorted(ages)[len(ages) // 2] < 1000, ages  # polled every 0.2 s throughout
    assert max(ages) < 3000, ages  # no poll waited for the server longer than a publication
    status = subprocess.run(collector.cli_command("status"), capture_output=True, text=True,
                            env=clean_env(), timeout=60)
    assert status.returncode == 2 and status.stdout == ""
    assert f"wait in this box's spool {spool}" in status.stderr, status.stderr

    server.start()
    replayed_and_exact(collector, link, spool, before, sender, sink)
    log = log_text(tmp_path)
    assert log.count("counting on into the spool") == 1, log
    assert log.count("the spool's") == 1 and log.count("saving again") == 1, log


def test_a_kill_during_the_outage_restarts_from_the_spool_without_the_server(
        link: Link, server: Server, tmp_path: Path,
        spawn_collector: Callable[..., CollectorProcess]) -> None:
    collector, spool, before, sink, sender = outage_mid_transfer(
        link, server, tmp_path, spawn_collector, entries=2)
    collector.kill()  # kill -9 during the outage, perhaps in the middle of an append
    at_kill = scan(spool).entries
    collector.start(wait=False)
    wait_until(lambda: "counting on from the spool" in log_text(tmp_path),
               "the restarted collector counting on from its spool", 30)
    spooling(spool, at_kill + 3)
    assert collector.process is not None and collector.process.poll() is None
    assert sender.poll() is None, "the transfer ended during the outage"

    server.start()
    replayed_and_exact(collector, link, spool, before, sender, sink)
    assert "the store answers again" in log_text(tmp_path)

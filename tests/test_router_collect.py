"""``traffic collect`` with a HiLink router: real collector processes against the router
simulator, the store read afterwards."""

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.sim.hilink import HilinkSim
from tests.stack import clean_env
from traffic.config import load_config
from traffic.store import open_store

PASSWORD = "collect-router-pw"


class Collect:
    """``traffic collect`` processes for one config file, one at a time."""

    def __init__(self, tmp_path: Path, sources: str) -> None:
        self.config = tmp_path / "traffic.toml"
        self.config.write_text(
            f'[store]\nurl = "sqlite://{tmp_path}/traffic.db"\n'
            f'[collector]\ninterval = "250ms"\nsave_interval = "1s"\n'
            f'runtime_dir = "{tmp_path}/run"\n{sources}')
        self.log = (tmp_path / "collector.log").open("ab")
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cli", "--config", str(self.config), "collect"],
            stdout=self.log, stderr=self.log, env=clean_env())

    def stop(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(timeout=30) == 0

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)

    def cli(self, *args: str) -> str:
        return subprocess.run([sys.executable, "-m", "cli", "--config", str(self.config),
                               *args], check=True, capture_output=True, text=True,
                              env=clean_env(), timeout=60).stdout

    def totals(self, keys: list[str], start: int, end: int) -> tuple[int, int]:
        config = load_config(self.config, environ={}, system_path=None)
        store = open_store(config.store.url, config.timezone, create=False)
        try:
            return store.totals(start, end, keys)
        finally:
            store.close()


@pytest.fixture
def router() -> Iterator[HilinkSim]:
    with HilinkSim(password=PASSWORD) as sim:
        yield sim


@pytest.fixture
def collect(tmp_path: Path) -> Iterator[Callable[[str], Collect]]:
    made: list[Collect] = []

    def make(sources: str) -> Collect:
        made.append(Collect(tmp_path, sources))
        return made[-1]
    yield make
    for collector in made:
        collector.kill()


def router_table(router: HilinkSim, billed: str = "") -> str:
    return (f'[[sources]]\ntype = "hilink"\nname = "router"\nurl = "{router.url}"\n'
            f'password = "{PASSWORD}"\ninterval = "250ms"\ntimeout = "2s"\n{billed}')


def wait_until(done: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"waited {timeout}s for {what}"
        time.sleep(0.02)


def wait_reads(router: HilinkSim, count: int) -> None:
    """Until the router has served ``count`` more traffic reads: the cycle of the first of them
    has ended (cycles run one at a time) when the next begins."""
    goal = router.traffic_reads + count
    wait_until(lambda: router.traffic_reads >= goal, f"{count} traffic reads")


def test_stored_totals_are_the_growth_served_across_expiry_dip_clear_and_restarts(
        router: HilinkSim, collect: Callable[[str], Collect]) -> None:
    collector = collect(router_table(router))
    grown = [0, 0]

    def grow(rx: int, tx: int) -> None:
        router.grow(rx, tx)
        grown[0] += rx
        grown[1] += tx

    collector.start()
    wait_reads(router, 2)  # the first reading, the baseline, is taken and stored
    grow(1_000_003, 100_001)
    wait_reads(router, 2)

    router.expire_session()
    grow(2_000_000, 200_000)
    wait_until(lambda: len(router.login_attempts) == 2, "a login after the session expired")
    wait_reads(router, 2)

    router.dip(400_000, reads=1)  # read lower once, then as before
    wait_reads(router, 2)
    grow(3_000_000, 300_000)
    wait_reads(router, 2)

    collector.stop()
    assert router.logouts == 1
    grow(4_000_000, 400_000)  # while no collector runs
    collector.start()
    wait_reads(router, 3)

    collector.kill()  # kill -9: no last poll, no save, no logout
    grow(5_000_000, 500_000)
    collector.start()
    wait_reads(router, 3)

    router.clear()
    grow(6_000_000, 600_000)
    wait_reads(router, 5)  # three readings below the highest make it a clear
    collector.stop()

    now = int(time.time() * 1000)
    assert collector.totals(["router:wan"], now - 86_400_000, now + 3_600_000) == tuple(grown)
    assert [attempt.code for attempt in router.login_attempts] == [0, 0, 0, 0]
    assert router.logouts == 2


def loopback_transfer(size: int) -> None:
    """``size`` bytes through a TCP connection on 127.0.0.1 (so across ``lo``)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        received = []

        def sink() -> None:
            connection, _ = server.accept()
            with connection:
                total = 0
                while chunk := connection.recv(65536):
                    total += len(chunk)
                received.append(total)
        reader = threading.Thread(target=sink)
        reader.start()
        with socket.create_connection(server.getsockname()) as sender:
            sender.sendall(b"\0" * size)
        reader.join(timeout=10)
    assert received == [size]


def test_the_kernel_is_the_bill_and_the_router_is_shown_beside_it(
        router: HilinkSim, collect: Callable[[str], Collect]) -> None:
    collector = collect('[[sources]]\ntype = "kernel"\ninterfaces = ["lo"]\n'
                        + router_table(router, "billed = false\n"))
    collector.start()
    wait_reads(router, 2)
    router.grow(7_000_000, 700_000)
    loopback_transfer(3_000_000)
    wait_reads(router, 3)
    collector.stop()

    status = json.loads(collector.cli("status", "--json"))
    start, end = status["period_start"], status["period_end"]
    kernel = collector.totals(["kernel:lo"], start, end)
    assert (status["rx"], status["tx"]) == kernel
    assert kernel[0] >= 3_000_000 and kernel[1] >= 3_000_000  # lo counts each byte both ways
    beside = {item["what"]: item for item in status["beside"]}
    counter = beside["counter"]
    assert (counter["source"], counter["label"]) == ("router", "router")
    assert (counter["rx"], counter["tx"]) == (7_000_000, 700_000)
    assert counter["difference"] == 7_700_000 - status["total"]
    month = beside["router month"]
    assert (month["rx"], month["tx"]) == (router.month_rx, router.month_tx)

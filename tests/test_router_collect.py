"""``traffic collect`` with a HiLink router: real collector processes against the router
simulator, the store read afterwards."""

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from tests.collector_process import HostCollector, wait_until
from tests.sim.hilink import HilinkSim

PASSWORD = "collect-router-pw"


@pytest.fixture
def router() -> Iterator[HilinkSim]:
    with HilinkSim(password=PASSWORD) as sim:
        yield sim


def router_table(router: HilinkSim, billed: str = "") -> str:
    return (f'[[sources]]\ntype = "hilink"\nname = "router"\nurl = "{router.url}"\n'
            f'password = "{PASSWORD}"\ninterval = "250ms"\ntimeout = "2s"\n{billed}')


def wait_reads(router: HilinkSim, count: int) -> None:
    """Until the router has served ``count`` more traffic reads: the cycle of the first of them
    has ended (cycles run one at a time) when the next begins."""
    goal = router.traffic_reads + count
    wait_until(lambda: router.traffic_reads >= goal, f"{count} traffic reads")


def test_stored_totals_are_the_growth_served_across_expiry_dip_clear_and_restarts(
        router: HilinkSim, collect: Callable[[str], HostCollector]) -> None:
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
        router: HilinkSim, collect: Callable[[str], HostCollector]) -> None:
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

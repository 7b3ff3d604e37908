"""``traffic collect`` with a B593: real collector processes against the B593 simulator, the
store read afterwards."""

import time
from collections.abc import Callable, Iterator

import pytest
from Cryptodome.PublicKey import RSA

from tests.collector_process import HostCollector, wait_until
from tests.sim.b593 import B593

PASSWORD = "collect-b593-pw"
KIB = 1024
"""The simulator's volumes are in the source's default ``volume_unit``, KiB."""


@pytest.fixture
def router() -> Iterator[B593]:
    with B593(RSA.generate(1024), password=PASSWORD) as sim:
        yield sim


def wait_reads(router: B593, count: int) -> None:
    """Until the router has served ``count`` more status pages: the poll of the first of them
    has ended (a source's polls run one at a time) when the next begins."""
    goal = len(router.served) + count
    wait_until(lambda: len(router.served) >= goal, f"{count} status pages")


def logouts(router: B593) -> int:
    return sum(request.path == "/index/logout.cgi" for request in router.requests)


def test_stored_totals_are_the_growth_served_across_expiry_dips_and_restarts(
        router: B593, collect: Callable[[str], HostCollector]) -> None:
    router.grow(5_000_000, 700_000)  # what the router counted before
    collector = collect(
        f'[[sources]]\ntype = "b593"\nname = "router"\nurl = "{router.url}"\n'
        f'password = "{PASSWORD}"\npublic_key = "{router.modulus}"\ninterval = "250ms"\n'
        'timeout = "2s"\n')
    grown = [0, 0]

    def grow(down: int, up: int) -> None:
        router.grow(down, up)
        grown[0] += down * KIB
        grown[1] += up * KIB

    collector.start()
    wait_reads(router, 2)  # the first reading, the baseline, is taken and stored
    grow(1_003, 101)
    wait_reads(router, 2)

    router.expire_session()  # the next status page is 'replace': a new login, the same poll
    grow(2_000, 200)
    wait_until(lambda: len(router.logins()) == 2, "a login after the session ended")
    wait_reads(router, 2)

    router.dip(400, 40, reads=1)  # read lower once, then as before
    wait_reads(router, 2)
    grow(3_000, 300)
    wait_reads(router, 2)
    router.dip(900, 90, reads=4)  # lower for a while: not the router's "clear"
    wait_reads(router, 1)
    grow(500, 50)  # grows while it reads lower
    wait_reads(router, 5)

    collector.stop()
    assert logouts(router) == 1
    grow(4_000, 400)  # while no collector runs
    collector.start()
    wait_reads(router, 3)

    collector.kill()  # kill -9: no last poll, no save, no logout
    grow(5_000, 500)
    collector.start()
    wait_reads(router, 3)
    collector.stop()

    now = int(time.time() * 1000)
    assert collector.totals(["router:wan"], now - 86_400_000, now + 3_600_000) == tuple(grown)
    assert len(router.logins()) == 4 and logouts(router) == 2
    highest, lower = 0, 0
    for down, _ in router.served:
        lower += down < highest
        highest = max(highest, down)
    assert lower == 5, "both dips were served: once, then four pages in a row"

"""Two real collectors of two sites, each with its own time zone, billing day and limit, counting
their own links into one MongoDB at the same time: each site's stored totals are its own and
equal its kernel's counters, byte for byte, and a reader of either site (``traffic status
--site``, with the other box's config) sees them with that site's own settings.

Both collectors run in one namespace, each counting its own veth pair, beside the server on
that namespace's loopback (as two boxes on one LAN would reach one server).
"""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.collector_process import CollectorProcess
from tests.sim.link import Link
from tests.test_collect_mongo_netns import store_url  # noqa: F401  (the fixture)

pytestmark = pytest.mark.netns
MB = 1_000_000
SITES = {"home": ('timezone = "Europe/Stockholm"', 'monthly = "40 GB"\nbilling_day = 8'),
         "cabin": ('timezone = "America/New_York"', 'monthly = "10 GB"\nbilling_day = 20')}


@pytest.fixture
def cabin_link(link: Link) -> Iterator[Link]:
    second = link.beside()
    yield second
    second.destroy()


def site_collector(link: Link, workdir: Path, site: str, url: str) -> CollectorProcess:
    """``traffic collect`` of ``site`` on ``link``, with a config of its own."""
    workdir.mkdir()
    zone, quota = SITES[site]
    collector = CollectorProcess(link, workdir, f"[quota]\n{quota}\n", store_url=url)
    collector.config.write_text(f'site = "{site}"\n{zone}\n{collector.config.read_text()}')
    return collector


def test_two_sites_count_into_one_mongodb_at_once(
        link: Link, cabin_link: Link, store_url: str,  # noqa: F811
        tmp_path: Path) -> None:
    home = site_collector(link, tmp_path / "home", "home", store_url)
    cabin = site_collector(cabin_link, tmp_path / "cabin", "cabin", store_url)
    started: list[CollectorProcess] = []
    for each in (link, cabin_link):
        each.static_neighbours()
    try:
        before = {"home": link.counters(), "cabin": cabin_link.counters()}
        for collector in (home, cabin):
            collector.start()
            started.append(collector)
        transfers = [(each.start_sink(), each.send(size, rate=8 * MB))
                     for each, size in ((link, 24 * MB), (cabin_link, 9 * MB))]
        for sink, sender in transfers:
            assert sender.wait(timeout=60) == 0
            sink.communicate(timeout=60)
        for collector in (home, cabin):
            collector.wait_polls(3)
            collector.stop()
        after = {"home": link.counters(), "cabin": cabin_link.counters()}
    finally:
        for collector in started:
            collector.kill()
    counted = {site: (after[site][0] - before[site][0], after[site][1] - before[site][1])
               for site in SITES}
    assert counted["home"][1] > 24 * MB and 9 * MB < counted["cabin"][1] < 10 * MB
    assert home.stored() == counted["home"]
    assert cabin.stored() == counted["cabin"]

    seen_from_home = json.loads(home.cli("status", "--site", "cabin", "--json"))
    assert (seen_from_home["rx"], seen_from_home["tx"]) == counted["cabin"]
    assert seen_from_home["limit"] == 10 * 10**9
    assert seen_from_home["period_start_iso"].endswith(("-04:00", "-05:00"))  # New York
    assert seen_from_home["period_start_iso"][8:10] == "20"
    seen_from_cabin = json.loads(cabin.cli("status", "--site", "home", "--json"))
    assert (seen_from_cabin["rx"], seen_from_cabin["tx"]) == counted["home"]
    assert seen_from_cabin["limit"] == 40 * 10**9
    assert seen_from_cabin["period_start_iso"][8:10] == "08"

"""The kernel source, reading real sysfs counters inside a network namespace."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.sim.link import Link

pytestmark = pytest.mark.netns

PROBE = """
import json, sys
from traffic.config import SourceConfig
from collector.sources.kernel import KernelSource, default_route_interface
source = KernelSource(SourceConfig("kernel", "kernel", True,
                                   settings={"interfaces": tuple(sys.argv[1:])}), lambda: 1000)
print(json.dumps({"default": default_route_interface(),
                  "readings": [[r.key, r.counters, r.life, r.bits] for r in source.poll()]}))
"""


def poll_in(link: Link, *interfaces: str) -> dict:
    out = subprocess.run(link.in_near(sys.executable, "-c", PROBE, *interfaces), check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def test_reads_configured_interface_with_its_life(link: Link) -> None:
    link.transfer(100_000)
    rx, tx = link.counters()
    result = poll_in(link, link.near_if)
    [[key, counters, life, bits]] = result["readings"]
    assert key == f"kernel:{link.near_if}"
    assert counters == {"rx": rx, "tx": tx}
    boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert life == f"{boot_id}/{link.ifindex()}"
    assert bits == 64


def test_new_interface_is_a_new_life(link: Link) -> None:
    first = poll_in(link, link.near_if)["readings"][0][2]
    link.reconnect()
    second = poll_in(link, link.near_if)["readings"][0][2]
    assert first != second


def test_missing_interface_gives_no_reading(link: Link) -> None:
    assert poll_in(link, "ppp7")["readings"] == []


def test_default_route_interface_is_followed(link: Link) -> None:
    assert poll_in(link)["readings"] == [] and poll_in(link)["default"] is None
    subprocess.run(["ip", "-n", link.near, "route", "add", "default", "via", link.far_ip],
                   check=True)
    result = poll_in(link)
    assert result["default"] == link.near_if
    assert [reading[0] for reading in result["readings"]] == [f"kernel:{link.near_if}"]


RESUME = """
import json, socket, subprocess, sys
from traffic.config import SourceConfig
from collector.sources.kernel import KernelSource
from traffic.counters import Tracker
source = KernelSource(SourceConfig("kernel", "kernel", True), lambda: 1000)
tracker = Tracker(250_000_000)
route = ["ip", "route", "{verb}", "default", "via", sys.argv[1]]
steps = []
for verb in ("add", "del", "add"):
    subprocess.run([part.format(verb=verb) for part in route], check=True)
    if verb == "del":  # bytes over the interface while it is not the link
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            for _ in range(200):
                udp.sendto(b"x" * 1400, (sys.argv[1], 9))
    readings = source.poll()
    steps.append([[r.key, r.resumed, tracker.update(r) is not None] for r in readings])
print(json.dumps(steps))
"""


def test_an_interface_the_default_route_comes_back_to_is_counted_from_there(
        link: Link) -> None:
    """While another interface (or none) was the default, this one's bytes were not the
    link's: the tracker starts again from the reading it resumes with."""
    out = subprocess.run(link.in_near(sys.executable, "-c", RESUME, link.far_ip), check=True,
                         capture_output=True, text=True).stdout
    key = f"kernel:{link.near_if}"
    assert json.loads(out) == [[[key, False, False]], [], [[key, True, False]]]


SWAP = """
import json, socket, subprocess, sys
from traffic.config import SourceConfig
from collector.sources.kernel import KernelSource
def ip(*args):
    subprocess.run(["ip", *args], check=True)
name = sys.argv[1]
source = KernelSource(SourceConfig("kernel", "kernel", True,
                                   settings={"interfaces": (name,)}), lambda: 1000)
lives = [source.poll()[-1].life]
ip("link", "add", "spare0", "type", "veth", "peer", "name", "spare1")
ip("link", "set", name, "down")
ip("link", "set", name, "name", "old0")
ip("link", "set", "spare0", "name", name)
lives.append(source.poll()[-1].life)
ip("link", "del", name)
ip("link", "add", name, "type", "veth", "peer", "name", "spare2")
lives.append(source.poll()[-1].life)
print(json.dumps({"lives": [life.split("/")[1] for life in lives],
                  "indexes": [socket.if_nametoindex(n) for n in ("old0", name)]}))
"""


def test_an_interface_renamed_or_made_again_between_polls_is_read_by_its_new_index(
        link: Link) -> None:
    """The source keeps each name's ifindex between polls; a rename or a new interface of the
    same name (heard as link events) must make it look the name up again."""
    first = link.ifindex()
    out = subprocess.run(link.in_near(sys.executable, "-c", SWAP, link.near_if), check=True,
                         capture_output=True, text=True).stdout
    result = json.loads(out)
    old, new = result["indexes"]
    assert old == first
    assert [int(index) for index in result["lives"][:1]] == [first]
    renamed_to, made_again = (int(index) for index in result["lives"][1:])
    assert renamed_to not in (first, new) and made_again == new

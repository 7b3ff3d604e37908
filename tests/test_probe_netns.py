"""The keeper's probe on a real link: evidence first, probes only when needed."""

import json
import subprocess
import sys

import pytest

from tests.sim.link import Link

pytestmark = pytest.mark.netns
PORT = 5301

SCRIPT = """
import json, socket, sys, time
from traffic.config import load_config
from collector.probe import Prober

far, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
keeper = load_config(overrides=[f'keeper.targets=["{far}:{port}"]', "keeper.interface=wan0",
                                'keeper.timeout="1s"'], environ={}, system_path=None).keeper
prober = Prober(keeper)
minute = 60_000
steps = []
def check(now, **kw):
    e = prober.check(now, **kw)
    steps.append([now // minute, e.up, e.probed, e.reason])
check(0)                      # nothing known yet: probe
check(1 * minute)             # idle, probed a minute ago: no probe
check(9 * minute)             # still within idle_probe_every (10 min)
check(10 * minute)            # idle for 10 minutes: probe again
if mode == "send":
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:   # sent, nothing comes back
        s.sendto(b"x" * 2000, ("10.232.0.9", 9))
    check(11 * minute)
check(12 * minute, probe_anyway=True)   # the keeper thinks the link is down: always probe
print(json.dumps(steps))
"""


def run(link: Link, mode: str = "idle") -> list[list]:
    out = subprocess.run(link.in_near(sys.executable, "-c", SCRIPT, link.far_ip, str(PORT), mode),
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def test_idle_link_is_probed_every_ten_minutes_only(link: Link) -> None:
    listener = link.start_listener(PORT)
    try:
        before = link.counters()
        steps = run(link)
        after = link.counters()
    finally:
        listener.kill()
    assert [(minute, up, probed) for minute, up, probed, _ in steps] == [
        (0, True, True), (1, True, False), (9, True, False), (10, True, True), (12, True, True)]
    assert steps[1][3] == "idle; last probe answered"
    sent = (after[0] - before[0]) + (after[1] - before[1])
    assert 0 < sent <= 3 * 400, f"three probes cost {sent} bytes"


def test_sent_but_nothing_received_probes_at_once(link: Link) -> None:
    # beyond the far host, which does not forward: what is sent there gets no answer at all
    subprocess.run(["ip", "-n", link.near, "route", "add", "10.232.0.0/24", "via", link.far_ip],
                   check=True)
    steps = run(link, "send")  # nothing listens on the far host: the probes fail
    assert steps[4][:3] == [11, False, True]
    assert "refused" in steps[4][3].lower()


def checks_around_a_datagram(link: Link, later_minutes: int) -> list:
    """A check at 0, then a datagram from the far side, then checks 1..``later_minutes``
    minutes later; the steps of all the checks."""
    later = "".join(f"check({minute} * minute)\n" for minute in range(1, later_minutes + 1))
    script = SCRIPT.split("check(0)")[0] + (
        f"check(0)\nprint('ready', flush=True)\ninput()\n{later}print(json.dumps(steps))\n")
    checker = subprocess.Popen(link.in_near(sys.executable, "-c", script, link.far_ip, str(PORT),
                                            "idle"),
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert checker.stdout is not None and checker.stdout.readline().strip() == "ready"
    subprocess.run(["ip", "netns", "exec", link.far, sys.executable, "-c",
                    "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM)"
                    f".sendto(b'x' * 500, ('{link.near_ip}', 9))"], check=True)
    out, _ = checker.communicate("\n", timeout=30)
    return json.loads(out.strip().splitlines()[-1])


def test_received_bytes_mean_up_without_a_probe(link: Link) -> None:
    steps = checks_around_a_datagram(link, 1)
    assert steps[1] == [1, True, False, "received bytes"]


def test_interface_down_is_down_without_a_probe(link: Link) -> None:
    link.set_up(False)
    steps = run(link)
    assert steps[0] == [0, False, False, "wan0 is down"]


def test_received_bytes_supersede_an_older_failed_probe(link: Link) -> None:
    """Connect brought the link back after a failed probe: the next idle check must not
    reuse that failure and call the link down again."""
    steps = checks_around_a_datagram(link, 3)
    assert steps[0][:3] == [0, False, True]  # nothing listens on the far host: the probe fails
    assert steps[1:] == [[1, True, False, "received bytes"],
                         [2, True, False, "idle; received bytes before"],
                         [3, True, False, "idle; received bytes before"]]

"""The last bytes of every life of an interface are counted: traffic runs right up to each
deletion, between two polls, and the stored total equals the kernel's final counters of every
life, read by the test from the same ``RTM_DELLINK`` messages.

The traffic is one way, near to far, in UDP datagrams to a neighbour entered by hand: a veth
reports as its received bytes its peer's sent ones, and the peer is detached before the
``RTM_DELLINK`` message is built, so that message's ``rx_bytes`` of a veth lacks what came in
(a PPP interface counts both ways itself). With nothing sent back (no ACK, no ARP reply),
the near side's received bytes are truly 0 and both directions are checked byte for byte.
"""

import json
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from tests.collector_process import CollectorProcess
from tests.sim.link import Link, sh
from tests.stack import clean_env

pytestmark = pytest.mark.netns
MB = 1_000_000
SESSIONS_S = (0.3, 2.6, 0.1, 1.2, 3.1)
"""How long traffic runs over each life before its deletion; polls are 2 s apart."""
RATE = 20 * MB

WATCH = """
import json, select, sys
from collector.sources._netlink import LinkEvents
events = LinkEvents()
print("listening", flush=True)
overflowed = False
while True:
    readable, _, _ = select.select([events.socket, sys.stdin], [], [])
    found, lost = events.read()
    overflowed |= lost
    for event in found:
        if event.deleted and event.name == sys.argv[1]:
            print(json.dumps([event.ifindex, event.rx, event.tx]), flush=True)
    if sys.stdin in readable and not sys.stdin.readline():
        break
print(json.dumps({"overflowed": overflowed}), flush=True)
"""

SINK = """
import socket
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
    sink.bind(("0.0.0.0", 9))
    print("listening", flush=True)
    while True:
        sink.recv(1 << 16)
"""

SEND = """
import socket, sys, time
chunk = b"\\xa5" * 1400
rate = int(sys.argv[2])
sent = 0
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
    started = time.monotonic()
    try:
        while True:
            sender.sendto(chunk, (sys.argv[1], 9))
            sent += len(chunk)
            if sent == len(chunk):
                print("sending", flush=True)
            ahead = sent / rate - (time.monotonic() - started)
            if ahead > 0.001:
                time.sleep(ahead)
    except OSError:  # the interface is gone
        pass
"""


def test_traffic_up_to_each_deletion_is_counted(link: Link,
        spawn_collector: Callable[..., CollectorProcess]) -> None:
    watcher = started(link.in_near(sys.executable, "-c", WATCH, link.near_if), stdin=True)
    sink = started(["ip", "netns", "exec", link.far, sys.executable, "-c", SINK])
    try:
        collector = spawn_collector('interval = "2s"')
        collector.start()
        before = link.counters()
        time.sleep(0.3)
        assert link.counters() == before, "the link must be quiet before the test sends"

        ifindexes = []
        for index, session_s in enumerate(SESSIONS_S):
            if index:
                link.plug()
            ifindexes.append(link.ifindex())
            enter_neighbour(link)
            sender = started(link.in_near(sys.executable, "-c", SEND, link.far_ip, str(RATE)),
                             ready="sending")
            time.sleep(session_s)
            assert sender.poll() is None, "the sender must still be sending at the deletion"
            link.unplug()
            assert sender.wait(timeout=10) == 0, "the sender stops when the interface goes"

        link.plug()  # the last life, still there when the collector stops
        enter_neighbour(link)
        sender = started(link.in_near(sys.executable, "-c", SEND, link.far_ip, str(RATE)),
                         ready="sending")
        time.sleep(0.5)
        sender.kill()
        sender.wait(timeout=10)
        last = link.counters()
        collector.stop()
        assert link.counters() == last
        out, _ = watcher.communicate("\n", timeout=10)
    finally:
        for process in (watcher, sink):
            process.kill()
            process.wait(timeout=10)

    *finals, summary = [json.loads(line) for line in out.splitlines()]
    assert summary == {"overflowed": False}
    assert [ifindex for ifindex, _, _ in finals] == ifindexes
    assert all(tx > MB for _, _, tx in finals), "each session carried real bytes"
    assert before[0] == last[0] == 0 and all(rx == 0 for _, rx, _ in finals)
    expected_tx = sum(tx for _, _, tx in finals) - before[1] + last[1]
    assert collector.stored() == (0, expected_tx)


def started(command: list[str], ready: str = "listening",
            stdin: bool = False) -> subprocess.Popen:
    process = subprocess.Popen(command, stdin=subprocess.PIPE if stdin else None,
                               stdout=subprocess.PIPE, text=True, env=clean_env())
    assert process.stdout is not None and process.stdout.readline().strip() == ready
    return process


def enter_neighbour(link: Link) -> None:
    """The far side's address resolved by hand: no ARP reply comes back over the link."""
    address = sh("ip", "netns", "exec", link.far, "cat",
                 f"/sys/class/net/{link.far_if}/address").strip()
    sh("ip", "-n", link.near, "neigh", "replace", link.far_ip, "lladdr", address, "dev",
       link.near_if, "nud", "permanent")

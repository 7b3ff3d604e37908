"""The keeper on a real link: a veth pair in network namespaces, the real collector process."""

import itertools
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.collector_process import POLL_S, CollectorProcess
from tests.sim.link import Link
from traffic.config import load_config
from traffic.periods import to_ms
from traffic.published import unpack_points
from traffic.runtime import read_document
from traffic.store import Event, open_site_store

pytestmark = pytest.mark.netns
PROBE_PORT = 5300
CHECK_S = 1.0


def keeper_config(link: Link, connect: list[str], **extra: str) -> str:
    lines = [
        "[keeper]", "enabled = true", f'check_every = "{int(CHECK_S * 1000)}ms"',
        f'targets = ["{link.far_ip}:{PROBE_PORT}"]', 'timeout = "500ms"',
        f"connect = {json.dumps(connect)}",
        *(f"{key} = {value}" for key, value in extra.items()),
    ]
    return "\n".join(lines) + "\n"


def events(collector: CollectorProcess) -> list[Event]:
    config = load_config(collector.config, environ={}, system_path=None)
    store = open_site_store(config, create=True)
    try:
        return list(reversed(store.events(limit=1000)))
    finally:
        store.close()


def wait_for(collector: CollectorProcess, predicate, timeout: float = 20) -> list[Event]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = events(collector)
        if predicate(found):
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out; events: {[(e.kind, e.detail) for e in events(collector)]}")


def keeper_status(collector: CollectorProcess) -> dict:
    try:
        return read_document(collector.tmp_path / "run" / "home.keeper")
    except (OSError, ValueError):  # not written yet
        return {}


def test_link_taken_down_is_brought_back(link: Link, tmp_path: Path,
        spawn_collector: Callable[..., CollectorProcess]) -> None:
    listener = link.start_listener(PROBE_PORT)
    collector = spawn_collector(keeper_config(
        link, ["ip", "link", "set", link.near_if, "up"]))
    try:
        collector.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and keeper_status(collector).get("link") != "up":
            time.sleep(0.1)
        assert keeper_status(collector)["link"] == "up"
        time.sleep(1.5)
        went_down = to_ms_now()
        link.set_up(False)
        found = wait_for(collector, lambda found: any(
            e.kind == "up" and e.at > went_down for e in found))
        collector.stop()
    finally:
        listener.kill()
        collector.kill()
    found = [e for e in found if e.at >= went_down]
    kinds = [e.kind for e in found]
    assert kinds[:3] == ["down", "attempt", "up"], kinds
    down, attempt, up = found[:3]
    assert down.at - went_down <= 2 * CHECK_S * 1000 + 500, "noticed within two checks"
    assert down.duration_ms >= 1500  # how long it had been up
    assert attempt.detail["ok"] and attempt.detail["command"][:3] == ["ip", "link", "set"]
    assert abs(up.duration_ms - (up.at - down.at)) <= 5  # how long it was down (monotonic)
    assert up.duration_ms > 0
    assert up.duration_ms <= 3 * CHECK_S * 1000 + 1000


def test_hung_and_failing_connects_lead_to_the_lock(link: Link, tmp_path: Path,
        spawn_collector: Callable[..., CollectorProcess]) -> None:
    link.unplug()  # no interface at all: evidently down, no probe needed
    collector = spawn_collector(keeper_config(
        link, ["sleep", "29.5"], action_timeout='"2s"', max_fails="2", lock_duration='"1h"'))
    collector.start()
    try:
        found = wait_for(collector, lambda found: any(e.kind == "lock" for e in found),
                         timeout=30)
        attempts = [e for e in found if e.kind == "attempt"]
        assert len(attempts) == 2
        for attempt in attempts:
            assert attempt.detail["timed_out"] and attempt.detail["exit_code"] is None
            assert 1900 <= attempt.duration_ms < 4000
            assert "killed after 2s" in attempt.detail["output"]
        # a duration no other test uses: pgrep sees every worker's processes
        assert subprocess.run(["pgrep", "-f", r"^sleep 29\.5$"],
                              capture_output=True).returncode == 1

        points = unpack_points(read_document(tmp_path / "run" / "home.realtime")["points"])
        gaps = [b[0] - a[0] for a, b in itertools.pairwise(points)]
        assert max(gaps) < 2.5 * POLL_S * 1000, "polling kept its rhythm while connect hung"

        time.sleep(3 * CHECK_S)
        assert [e.kind for e in events(collector)].count("attempt") == 2, "no attempt while locked"
        assert keeper_status(collector)["lock_until"] > to_ms_now() + 3_500_000

        connect = subprocess.run(collector.cli_command("connect"), capture_output=True,
                                 text=True, timeout=30)
        assert connect.returncode == 1 and "timed out" in connect.stdout
        found = wait_for(collector, lambda found: [e.kind for e in found].count("attempt") >= 4)
        kinds = [e.kind for e in found]
        assert kinds.index("unlock") > kinds.index("lock")
        assert next(e for e in found if e.kind == "unlock").detail["reason"] == "traffic connect"
    finally:
        collector.stop()


def to_ms_now() -> int:
    from datetime import UTC, datetime

    return to_ms(datetime.now(UTC))


def test_a_flapping_link_is_rested_not_dialled_for_ever(link: Link, tmp_path: Path,
        spawn_collector: Callable[..., CollectorProcess]) -> None:
    """Each connect brings the link up for 1.5 s, then it drops: found up at one check, down
    at the next. Those attempts are failures, so max_fails leads to the rest. The drop comes
    from outside the attempt: what the command leaves running is killed when it ends."""
    link.set_up(False)
    listener = link.start_listener(PROBE_PORT)
    dialled = tmp_path / "dialled"
    stop = threading.Event()

    def drop_after_each_connect() -> None:
        while not stop.is_set():
            if dialled.exists():
                dialled.unlink()
                time.sleep(1.5)
                link.set_up(False)
            time.sleep(0.05)

    dropper = threading.Thread(target=drop_after_each_connect)
    dropper.start()
    flap = f"ip link set {link.near_if} up; touch {dialled}"
    collector = spawn_collector(keeper_config(link, ["sh", "-c", flap], max_fails="3",
                                              lock_duration='"1h"'))
    try:
        collector.start()
        found = wait_for(collector, lambda found: any(e.kind == "lock" for e in found))
        time.sleep(3 * CHECK_S)
        after = events(collector)
    finally:
        stop.set()
        dropper.join()
        listener.kill()
        collector.stop()
    kinds = [e.kind for e in found]
    assert kinds.count("attempt") == 3 and kinds.count("up") >= 2, kinds
    assert [e.kind for e in after].count("attempt") == 3, "no attempt while resting"


def test_stopping_during_a_hung_connect_kills_it_at_once(link: Link, tmp_path: Path,
        spawn_collector: Callable[..., CollectorProcess]) -> None:
    link.unplug()
    collector = spawn_collector(keeper_config(link, ["sleep", "47"], action_timeout='"60s"'))
    collector.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not dialling("^sleep 47$"):
        time.sleep(0.1)
    assert dialling("^sleep 47$"), "the attempt did not start"
    started = time.monotonic()
    collector.stop()
    assert time.monotonic() - started < 5, "SIGTERM waited for the hung connect"
    assert not dialling("^sleep 47$")
    attempt = next(e for e in events(collector) if e.kind == "attempt")
    assert attempt.detail["interrupted"] is True and not attempt.detail["ok"]
    assert attempt.detail["output"].endswith("(killed: the collector was stopping)")


def dialling(pattern: str) -> bool:
    return subprocess.run(["pgrep", "-f", pattern], capture_output=True).returncode == 0


CLOCK_SCRIPT = """
import json, subprocess, sys, threading, time
from pathlib import Path
from collector.keeper import Keeper
from traffic.config import load_config
from traffic.store import open_site_store

far, port, tmp = sys.argv[1], sys.argv[2], sys.argv[3]
config = load_config(overrides=[
    f'keeper.targets=["{far}:{port}"]', "keeper.interface=wan0", 'keeper.timeout="1s"',
    "keeper.enabled=true", 'keeper.connect=["true"]', f"store.url=sqlite://{tmp}/traffic.db",
    f'collector.runtime_dir="{tmp}/run"'], environ={}, system_path=None)
store = open_site_store(config, create=True)
wall = [1_800_000_000_000]
keeper = Keeper(config, store, lambda: wall[0])

def operstate(wanted):
    while Path("/sys/class/net/wan0/operstate").read_text().strip() != wanted:
        time.sleep(0.02)

keeper.check()                                    # first check: up
time.sleep(0.3)
subprocess.run(["ip", "link", "set", "wan0", "down"], check=True)
operstate("down")
wall[0] -= 3_600_000                              # the clock goes back an hour
keeper.check()                                    # down
time.sleep(0.3)
subprocess.run(["ip", "link", "set", "wan0", "up"], check=True)
operstate("up")
wall[0] += 7_200_000                              # and forward two hours
keeper.check()                                    # up again
print(json.dumps([[e.kind, e.duration_ms, e.detail.get("first_check", False)]
                  for e in reversed(store.events())]))
"""


def test_durations_follow_the_monotonic_clock_not_wall_clock_steps(link: Link,
                                                                   tmp_path: Path) -> None:
    listener = link.start_listener(PROBE_PORT)
    try:
        out = subprocess.run(link.in_near(sys.executable, "-c", CLOCK_SCRIPT, link.far_ip,
                                          str(PROBE_PORT), str(tmp_path)),
                             check=True, capture_output=True, text=True).stdout
    finally:
        listener.kill()
    found = json.loads(out)  # in the order of their (stepped) times: the down is an hour back
    assert [kind for kind, _, _ in found] == ["down", "attempt", "up", "up"]
    first, down, back = found[2], found[0], found[3]
    assert first[1:] == [None, True], "the first check is recorded, with no duration"
    assert 250 <= down[1] < 3000, f"down after being up {down[1]} ms"
    assert 250 <= back[1] < 3000, f"up after being down {back[1]} ms"

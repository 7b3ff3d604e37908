"""Commands by text message end to end: a real ``traffic collect`` in a link's near namespace
reads the modem simulator's messages (tests/sim/modem.py, real pyserial on a pty) and answers
through it; its keeper commands bring the veth link up and down (``ip link set``).

One collector for all of it: an allowed number with the key gets its status; a stranger, a
wrong key and an unknown command get nothing, one event each, and the link is left alone;
``up 1`` brings the link up, runs the session command, pushes "link up" to a ``json://``
receiver, and after the minute stops the command, takes the link down and only then texts
"link down"."""

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.collector_process import CollectorProcess, HostCollector, events
from tests.sim.link import Link, sh
from tests.sim.modem import ModemSim
from tests.test_alerts_netns import NearReceiver, receiver  # noqa: F401 (a fixture)
from traffic.config import load_config
from traffic.store import open_site_store

pytestmark = pytest.mark.netns

KEY = "Hemlig-42"
ALLOWED = "+46700000001"
STRANGER = "+46700000999"
SMS_TABLE = f'[sms]\nallow = ["{ALLOWED}"]\nkey = "{KEY}"\ncheck_every = "250ms"\n'
"""What a collector of these tests reads its commands by; a test adds its own keys."""





def operstate(link: Link) -> str:
    return sh("ip", "netns", "exec", link.near, "cat",
              f"/sys/class/net/{link.near_if}/operstate").strip()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(") ")[1][0] != "Z"


def wait_for(done: Callable[[], object], what: str, timeout: float,
             collector: CollectorProcess) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            found = [(event.kind, event.detail) for event in events(collector)]
            log = (collector.tmp_path / "collector.log").read_text()
            raise AssertionError(f"waited {timeout}s for {what}; events: {found}; "
                                 f"collector log:\n{log}")
        time.sleep(0.1)


def answers(sim: ModemSim, number: str) -> list[str]:
    return [text for to, text in list(sim.sent) if to == number]


def test_commands_by_text_message_through_the_modem(
        link: Link, sim: ModemSim, receiver: NearReceiver,  # noqa: F811
        tmp_path: Path) -> None:
    pid_file = tmp_path / "session.pid"
    lock_dir = tmp_path / "lock"
    lock_dir.mkdir()
    link.set_up(False)
    collector = CollectorProcess(link, tmp_path, extra=(
        f'\n[[sources]]\ntype = "modem"\nport = "{sim.path}"\nlock_dir = "{lock_dir}"\n'
        f'[quota]\nmonthly = "10 GB"\n'
        f'[keeper]\nconnect = ["ip", "link", "set", "{link.near_if}", "up"]\n'
        f'disconnect = ["ip", "link", "set", "{link.near_if}", "down"]\n'
        f'[alerts]\nnotify = ["{receiver.url()}"]\n'
        + SMS_TABLE +
        f'session_run = ["sh", "-c", "echo $$ > {pid_file}; exec sleep 3600"]\n'))
    collector.start()
    try:
        sim.receive(ALLOWED, f"{KEY} Status")
        wait_for(lambda: answers(sim, ALLOWED), "the status answer", 20, collector)
        status = answers(sim, ALLOWED)[0]
        assert "of 10 GB used" in status and "days left" in status, status
        assert "Telia" in status and "signal" in status, status

        sim.receive(STRANGER, f"{KEY} up 5")
        sim.receive(ALLOWED, f"{KEY[:-1]}3 up 5")
        sim.receive(ALLOWED, f"{KEY} dance 5")
        wait_for(lambda: not sim.stored, "the inbox emptied", 20, collector)
        ignored = [event.detail for event in events(collector) if event.kind == "sms_ignored"]
        assert ignored == [
            {"from": STRANGER, "reason": "not an allowed number"},
            {"from": ALLOWED, "reason": "wrong key"},
            {"from": ALLOWED, "reason": "unknown command", "command": "dance 5"}]
        collector.wait_polls(5)
        assert answers(sim, STRANGER) == [] and len(answers(sim, ALLOWED)) == 1
        assert operstate(link) == "down"
        assert not [event for event in events(collector)
                    if event.kind in ("attempt", "disconnect", "session_end")]

        sim.receive(ALLOWED, f"{KEY} UP 1")
        asked = time.monotonic()
        wait_for(lambda: operstate(link) == "up", "the link up", 20, collector)
        wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(),
                 "the session command", 20, collector)
        pid = int(pid_file.read_text())
        assert alive(pid)
        wait_for(receiver.messages, "the link up alert", 20, collector)
        assert receiver.messages()[0].startswith("Link up for 1 minute (until ")
        collector.wait_polls(3)  # counting goes on meanwhile

        wait_for(lambda: len(answers(sim, ALLOWED)) == 2, "link down", 100, collector)
        assert time.monotonic() - asked >= 60
        assert answers(sim, ALLOWED)[1] == "Link down (after 1 minute)."
        assert operstate(link) == "down"
        assert not alive(pid)
        kinds = [event.kind for event in events(collector)]
        assert kinds.index("disconnect") < kinds.index("session_end") < len(kinds) - 1
        assert kinds[-1] == "sms_answer" and kinds.count("session_run") == 0
        every = json.dumps([[event.kind, event.detail] for event in events(collector)])
        assert KEY not in every
        assert KEY not in (tmp_path / "collector.log").read_text()
    finally:
        collector.stop()


def test_usage_and_a_reboot_of_the_box_through_the_modem(sim: ModemSim, tmp_path: Path
                                                          ) -> None:
    """On this host (no link needed): ``usage`` is answered; ``reboot`` through a modem reboots
    the box with ``sms.reboot_command``, the answer sent first."""
    rebooted = tmp_path / "rebooted"
    lock_dir = tmp_path / "lock"
    lock_dir.mkdir()
    collector = HostCollector(tmp_path, (
        f'[[sources]]\ntype = "kernel"\ninterfaces = ["lo"]\n'
        f'[[sources]]\ntype = "modem"\nport = "{sim.path}"\nlock_dir = "{lock_dir}"\n'
        f'[quota]\nmonthly = "10 GB"\ndaily = "1 GB"\n'
        + SMS_TABLE +
        f'reboot_command = ["sh", "-c", "echo $0 > {rebooted}", "box"]\n'))
    collector.start()
    try:
        sim.receive(ALLOWED, f"{KEY} usage")
        sim.receive(ALLOWED, f"{KEY} reboot")
        deadline = time.monotonic() + 20
        while not rebooted.exists():
            assert time.monotonic() < deadline, (tmp_path / "collector.log").read_text()
            time.sleep(0.1)
    finally:
        collector.stop()
    usage, reboot = answers(sim, ALLOWED)
    assert "of 10 GB used" in usage and " of 1 GB. At this pace " in usage, usage
    assert reboot == "Rebooting the box now."
    assert rebooted.read_text() == "box\n"
    config = load_config(collector.config, environ={}, system_path=None)
    store = open_site_store(config, create=False)
    try:
        [event] = store.events(kinds=("reboot",))
    finally:
        store.close()
    assert (event.detail["target"], event.detail["ok"], event.detail["command"][0]) == (
        "box", True, "sh")

"""Commands by text message through a HiLink router's SMS (tests/sim/hilink.py, real
huawei-lte-api): a real ``traffic collect`` on this host reads the router's inbox and answers
through it; ``connect`` and ``disconnect`` switch the router's mobile data, ``reboot`` reboots
the router, ``up 1`` keeps mobile data on for a minute with its session command running."""

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.collector_process import HostCollector, events
from tests.sim.hilink import HilinkSim
from tests.sim.receivers import JsonReceiver
from tests.test_sms_commands_netns import ALLOWED, KEY, SMS_TABLE, STRANGER, alive

PASSWORD = "router-secret-1"


@pytest.fixture
def router() -> Iterator[HilinkSim]:
    with HilinkSim(password=PASSWORD) as sim:
        yield sim



def answered(router: HilinkSim, count: int, collector: HostCollector, timeout: float = 20
             ) -> list[str]:
    """The texts sent to ``ALLOWED`` once there are ``count`` of them."""
    deadline = time.monotonic() + timeout
    while len(found := [text for to, text in list(router.sent) if to == ALLOWED]) < count:
        if time.monotonic() > deadline:
            log = Path(collector.config.parent / "collector.log").read_text()
            raise AssertionError(f"waited {timeout}s for answer {count}: {found}; events: "
                                 f"{[(e.kind, e.detail) for e in events(collector)]}\n{log}")
        time.sleep(0.1)
    assert len(found) == count, found
    return found


def test_commands_by_text_message_through_a_hilink_router(router: HilinkSim, tmp_path: Path
                                                          ) -> None:
    pid_file = tmp_path / "session.pid"
    with JsonReceiver() as receiver:
        collector = HostCollector(tmp_path, (
            f'[[sources]]\ntype = "hilink"\nname = "router"\nurl = "{router.url}"\n'
            f'password = "{PASSWORD}"\n'
            '[keeper]\nconnect = ["router-data-toggle"]\n'
            f'[alerts]\nnotify = ["{receiver.url()}"]\n'
            + SMS_TABLE +
            f'session_run = ["sh", "-c", "echo $$ > {pid_file}; exec sleep 3600"]\n'))
        collector.start()
        try:
            router.receive(ALLOWED, f"{KEY} status")
            [status] = answered(router, 1, collector)
            assert "used this period" in status, status
            assert "The router: Simulated Mobile, LTE" in status, status
            assert "signal" in status, status

            router.receive(STRANGER, f"{KEY} disconnect")
            router.receive(ALLOWED, "not-the-key disconnect")
            router.receive(ALLOWED, f"{KEY} reboot now")
            deadline = time.monotonic() + 20
            while len([e for e in events(collector) if e.kind == "sms_ignored"]) < 3:
                assert time.monotonic() < deadline, events(collector)
                time.sleep(0.1)
            time.sleep(1)
            assert router.inbox == [] and router.switches == [] and router.controls == []
            assert [to for to, _ in router.sent] == [ALLOWED]

            router.receive(ALLOWED, f"{KEY} disconnect")
            assert answered(router, 2, collector)[1] == ("Link down; it stays down until "
                                                         "connect.")
            assert router.switches == [0]
            router.receive(ALLOWED, f"{KEY} Connect")
            assert answered(router, 3, collector)[2] == "The link is up."
            assert router.switches == [0, 0, 1]

            router.receive(ALLOWED, f"{KEY} session 1")
            asked = time.monotonic()
            deadline = asked + 20
            while not (pid_file.exists() and pid_file.read_text().strip() and receiver.posts):
                assert time.monotonic() < deadline, events(collector)
                time.sleep(0.1)
            pid = int(pid_file.read_text())
            assert alive(pid) and router.switches == [0, 0, 1, 0, 1]
            assert receiver.posts[0][1]["message"].startswith("Link up for 1 minute (until ")
            assert answered(router, 4, collector, timeout=100)[3] == "Link down (after 1 minute)."
            assert time.monotonic() - asked >= 60
            assert router.switches == [0, 0, 1, 0, 1, 0] and not alive(pid)

            router.receive(ALLOWED, f"{KEY} reboot")
            assert answered(router, 5, collector)[4] == "Rebooting the router now."
            deadline = time.monotonic() + 20
            while not [e for e in events(collector) if e.kind == "reboot"]:
                assert time.monotonic() < deadline, events(collector)
                time.sleep(0.1)
            assert router.controls == [1]
            [reboot] = [e.detail for e in events(collector) if e.kind == "reboot"]
            assert reboot["ok"] and reboot["target"] == "router", reboot
            assert reboot["command"] == ["router-reboot", "router"]
        finally:
            collector.stop()


def test_a_session_ends_when_the_collector_stops_or_at_its_start_after_a_crash(
        router: HilinkSim, tmp_path: Path) -> None:
    """A stop takes the link down and says so; a collector killed during a session leaves its
    command running and the link up, and the next start ends both."""
    pid_file = tmp_path / "session.pid"
    collector = HostCollector(tmp_path, (
        f'[[sources]]\ntype = "hilink"\nname = "router"\nurl = "{router.url}"\n'
        f'password = "{PASSWORD}"\n'
        '[keeper]\nconnect = ["router-data-toggle"]\n'
        + SMS_TABLE +
        f'session_run = ["sh", "-c", "echo $$ > {pid_file}; exec sleep 3600"]\n'))

    def session_command() -> int:
        deadline = time.monotonic() + 20
        while not (pid_file.exists() and pid_file.read_text().strip()):
            assert time.monotonic() < deadline, events(collector)
            time.sleep(0.1)
        pid = int(pid_file.read_text())
        pid_file.unlink()
        return pid

    collector.start()
    try:
        router.receive(ALLOWED, f"{KEY} up 30")
        pid = session_command()
        assert alive(pid) and router.switches == [0, 1]
        collector.kill()
        assert alive(pid) and router.switches == [0, 1]

        collector.start()
        assert answered(router, 1, collector) == ["Link down (the collector was restarted)."]
        assert not alive(pid) and router.switches == [0, 1, 0]

        router.receive(ALLOWED, f"{KEY} up")
        pid = session_command()
        assert alive(pid) and router.switches == [0, 1, 0, 0, 1]
    finally:
        collector.stop()
    assert answered(router, 2, collector)[1] == "Link down (the collector was stopping)."
    assert not alive(pid) and router.switches == [0, 1, 0, 0, 1, 0]
    ends = [(e.detail["reason"], e.detail["minutes"]) for e in events(collector)
            if e.kind == "session_end"]
    assert ends == [("the collector was restarted", 30), ("the collector was stopping", 30)]


def test_a_session_command_that_ends_early_is_started_again_until_a_disconnect(
        router: HilinkSim, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    collector = HostCollector(tmp_path, (
        f'[[sources]]\ntype = "hilink"\nname = "router"\nurl = "{router.url}"\n'
        f'password = "{PASSWORD}"\n'
        '[keeper]\nconnect = ["router-data-toggle"]\n'
        + SMS_TABLE +
        f'session_run = ["sh", "-c", "echo run >> {runs}; echo no route to host; exit 3"]\n'))
    collector.start()
    try:
        router.receive(ALLOWED, f"{KEY} up 10")
        deadline = time.monotonic() + 30
        while not (runs.exists() and len(runs.read_text().split()) == 2):
            assert time.monotonic() < deadline, events(collector)
            time.sleep(0.1)
        router.receive(ALLOWED, f"{KEY} disconnect")
        assert answered(router, 1, collector) == ["Link down (ended by disconnect)."]
        assert router.switches == [0, 1, 0]
    finally:
        collector.stop()
    assert runs.read_text().split() == ["run", "run"]
    early = [(e.detail["exit_code"], e.detail["output"], e.detail["again_in_s"])
             for e in events(collector) if e.kind == "session_run"]
    assert early == [(3, "no route to host", 10.0)] * 2

"""The keeper with a HiLink router: its connection status as evidence, and the router built-in
actions (in the collector's keeper and in ``traffic connect``/``disconnect``), through the
router simulator and the real ``huawei-lte-api`` client."""

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.actions import REFUSED_BEFORE
from collector.keeper import Keeper
from collector.sources import make_source
from collector.worker import Collector
from tests.conftest import make_config
from tests.sim.hilink import HilinkSim
from tests.stack import clean_env
from traffic.config import Config
from traffic.store import open_site_store

PASSWORD = "keeper-router-pw"
T0 = 1_800_000_000_000


class Listener:
    """A probe target on 127.0.0.1 that counts the probes it gets."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(8)
        self.port = self.socket.getsockname()[1]
        self.probes = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.probes += 1
            connection.close()

    def counted(self, expected: int, timeout: float = 5.0) -> int:
        """The probes counted once ``expected`` are (or ``timeout`` has passed): a probe's
        connection is complete in the kernel before this thread accepts and counts it."""
        deadline = time.monotonic() + timeout
        while self.probes < expected and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.probes


@pytest.fixture
def router() -> Iterator[HilinkSim]:
    with HilinkSim(password=PASSWORD) as sim:
        yield sim


@pytest.fixture
def listener() -> Iterator[Listener]:
    made = Listener()
    yield made
    made.socket.close()


def config_text(tmp_path: Path, router: HilinkSim, keeper: str, password: str = PASSWORD) -> str:
    return (f'[store]\nurl = "sqlite://{tmp_path}/traffic.db"\n'
            f'[collector]\nruntime_dir = "{tmp_path}/run"\n'
            f"[keeper]\nenabled = true\n{keeper}\n"
            f'[[sources]]\ntype = "hilink"\nname = "router"\nurl = "{router.url}"\n'
            f'password = "{password}"\n')


def keeper_config(tmp_path: Path, router: HilinkSim, listener: Listener, extra: str = ""
                  ) -> Config:
    return make_config(tmp_path, config_text(
        tmp_path, router, f'targets = ["127.0.0.1:{listener.port}"]\ninterface = "lo"\n'
                          f'connect = ["router-data-toggle"]\n{extra}'))


def test_the_routers_word_decides_without_a_probe(router: HilinkSim, listener: Listener,
                                                  tmp_path: Path) -> None:
    config = keeper_config(tmp_path, router, listener)
    wall = [T0]
    source = make_source(config.sources[0], lambda: wall[0])
    store = open_site_store(config, create=True)
    keeper = Keeper(config, store, lambda: wall[0], sources=[source])
    try:
        source.poll()
        first = keeper.check()
        assert first is not None and first.state.link == "up" and first.action is None
        assert listener.probes == 0

        router.connection = 902
        wall[0] += 30_000
        source.poll()
        down = keeper.check()
        assert down is not None and down.state.link == "down" and down.action == "attempt"
        assert router.switches == [0, 1] and router.connection == 901
        assert listener.probes == 0

        router.stop()  # the router says nothing now: the keeper probes
        wall[0] += 30_000
        with pytest.raises(Exception, match="not answering"):
            source.poll()
        back = keeper.check()
        assert back is not None and back.state.link == "up" and listener.counted(1) == 1
        events = [(e.kind, e.detail.get("reason") or e.detail.get("output"))
                  for e in reversed(store.events())]
    finally:
        source.close()
        store.close()
    assert events == [
        ("up", "router: connected"), ("down", "router: disconnected"),
        ("attempt", "router-data-toggle: router: mobile data switched off and on again"),
        ("up", f"127.0.0.1:{listener.port} answered")]


def test_an_escalation_step_reboots_the_router_and_never_powers_it_off(
        router: HilinkSim, listener: Listener, tmp_path: Path) -> None:
    config = keeper_config(tmp_path, router, listener,
                           '[[keeper.escalation]]\nrun = ["router-reboot"]\nafter = 1\n')
    router.connection, router.reconnects = 902, False
    wall = [T0]
    source = make_source(config.sources[0], lambda: wall[0])
    store = open_site_store(config, create=True)
    keeper = Keeper(config, store, lambda: wall[0], sources=[source])
    try:
        source.poll()
        keeper.check()
        assert router.switches == [0, 1] and router.controls == []
        wall[0] += 30_000
        source.poll()
        keeper.check()
        kinds = [e.kind for e in reversed(store.events())]
        assert router.controls == [1]  # reboot; 4 would be power off
        assert source.poll()[0].counters  # logged in again after the reboot
    finally:
        source.close()
        store.close()
    assert kinds == ["down", "attempt", "escalation", "attempt"]
    assert listener.probes == 0


def traffic(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", "--config", str(config), *args],
                          capture_output=True, text=True, env=clean_env(), timeout=60)


def write_config(tmp_path: Path, router: HilinkSim, keeper: str, password: str = PASSWORD
                 ) -> Path:
    path = tmp_path / "traffic.toml"
    path.write_text(config_text(tmp_path, router, 'targets = ["127.0.0.1:9"]\n' + keeper,
                                password))
    return path


def test_traffic_connect_switches_mobile_data_off_and_on(router: HilinkSim,
                                                         tmp_path: Path) -> None:
    config = write_config(tmp_path, router, 'connect = ["router-data-toggle"]')
    result = traffic(config, "connect")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ("router-data-toggle: done\n"
                             "router-data-toggle: router: mobile data switched off and on "
                             "again\n")
    assert router.switches == [0, 1]
    assert router.logouts == 1 and router.logged_in == 0  # its own source, closed after

    result = traffic(config, "disconnect")
    assert result.returncode == 0, result.stderr
    assert "router-data-off: router: mobile data switched off" in result.stdout
    assert router.switches == [0, 1, 0]


def test_traffic_connect_reboots_the_named_router(router: HilinkSim, tmp_path: Path) -> None:
    config = write_config(tmp_path, router, 'connect = ["router-reboot", "router"]')
    result = traffic(config, "connect")
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("router-reboot: router: asked to reboot\n")
    assert router.controls == [1]


@pytest.mark.parametrize(("connect", "password", "expected"), [
    ('["router-reboot", "kernel"]', PASSWORD,
     "router-reboot: no source 'kernel' can do this (it needs a router, such as a "
     '[[sources]] table of type "hilink")'),
    ('["router-reboot"]', "wrong-" + PASSWORD,
     "router-reboot: router: {url} refused the login of user 'admin' (108006: user name or "
     "password wrong)"),
])
def test_a_router_action_that_cannot_act_fails_in_one_line(
        router: HilinkSim, tmp_path: Path, connect: str, password: str, expected: str) -> None:
    config = write_config(tmp_path, router, f"connect = {connect}", password)
    result = traffic(config, "connect")
    assert result.returncode == 1
    assert result.stdout.splitlines()[1:] == [expected.format(url=router.url)]
    assert PASSWORD not in result.stdout + result.stderr
    assert router.controls == [] and len(router.login_attempts) <= 1


def test_a_failed_switch_off_still_switches_mobile_data_on_again(router: HilinkSim,
                                                                 tmp_path: Path) -> None:
    router.data_off_error = 100004  # the router switched it off, but answered "busy"
    config = write_config(tmp_path, router, 'connect = ["router-data-toggle"]')
    result = traffic(config, "connect")
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "router-data-toggle: failed (exit 1)",
        f"router-data-toggle: router: switching mobile data off failed ({router.url} answered "
        "error 100004); switched it on again"]
    assert router.switches == [0, 1] and router.data_switch == 1
    assert router.connection == 901


def refused_by_the_collector(config: Config, router: HilinkSim) -> None:
    """One collector poll with these settings: the router refuses the login, and the store
    keeps the mark."""
    store = open_site_store(config, create=True)
    try:
        collector = Collector(config, store)
        collector.poll()
        collector.close()
    finally:
        store.close()
    assert [attempt.code for attempt in router.login_attempts] == [108006]


def test_traffic_connect_and_disconnect_make_no_login_the_store_marks_refused(
        router: HilinkSim, tmp_path: Path) -> None:
    wrong = "wrong-" + PASSWORD
    path = write_config(tmp_path, router, 'connect = ["router-data-toggle"]', wrong)
    refused_by_the_collector(make_config(tmp_path, path.read_text()), router)
    asked = dict(router.calls)

    connect = traffic(path, "connect")
    assert connect.returncode == 1
    assert connect.stdout.splitlines() == ["router-data-toggle: failed (exit 1)",
                                           f"router-data-toggle: router: {REFUSED_BEFORE}"]
    disconnect = traffic(path, "disconnect")
    assert disconnect.returncode == 1
    assert f"router-data-off: router: {REFUSED_BEFORE}" in disconnect.stdout
    assert router.calls == asked, "not a single request to the router"

    write_config(tmp_path, router, 'connect = ["router-data-toggle"]')  # the password fixed
    assert traffic(path, "connect").returncode == 0
    assert [attempt.code for attempt in router.login_attempts] == [108006, 0]
    assert router.switches == [0, 1]


def test_the_keepers_action_makes_no_login_the_store_marks_refused(
        router: HilinkSim, tmp_path: Path) -> None:
    config = make_config(tmp_path, config_text(
        tmp_path, router, 'targets = ["127.0.0.1:9"]\ninterface = "lo"\n'
                          'connect = ["router-data-toggle"]', "wrong-" + PASSWORD))
    refused_by_the_collector(config, router)
    asked = dict(router.calls)
    wall = [T0]
    store = open_site_store(config, create=True)
    try:
        collector = Collector(config, store, lambda: wall[0])  # a new run reads the mark
        keeper = Keeper(config, store, lambda: wall[0],
                        sources=collector.sources)
        collector.poll()
        decision = keeper.check()
        assert decision is not None and decision.action == "attempt"
        collector.close()
        [attempt] = [e for e in store.events() if e.kind == "attempt"]
    finally:
        store.close()
    assert attempt.detail["output"] == f"router-data-toggle: router: {REFUSED_BEFORE}"
    assert router.calls == asked, "not a single request to the router"

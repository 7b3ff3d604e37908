"""The HiLink source through the real ``huawei-lte-api`` client against the router simulator."""

import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.sources import LoginRefused, SourceError, make_source
from collector.sources.hilink import HilinkSource
from collector.worker import Collector
from tests.conftest import EXAMPLE, example_table, make_config
from tests.sim.hilink import HilinkSim
from traffic.config import Config, ConfigError
from traffic.counters import Tracker
from traffic.store import open_site_store

PASSWORD = "Pa55-router-secret"
T0 = 1_800_000_000_000
GAUGES = {"connection": "connected", "network_type": "LTE", "sim": "ready", "roaming": "no",
          "wan_ip": "10.64.12.34", "rsrp": -95.0, "rsrq": -11.0, "sinr": 13.0, "rssi": -67.0,
          "band": "3", "cell_id": "20871425", "operator": "Simulated Mobile",
          "month_rx": 500_000_000, "month_tx": 70_000_000, "rx_rate": 125_000.0,
          "tx_rate": 25_000.0}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1000)


@pytest.fixture
def router() -> Iterator[HilinkSim]:
    with HilinkSim(password=PASSWORD) as sim:
        yield sim


@pytest.fixture
def clock() -> Clock:
    return Clock()


def router_config(tmp_path: Path, url: str, password: str = PASSWORD,
                  timeout: str = "2s") -> Config:
    return make_config(tmp_path, f'[[sources]]\ntype = "hilink"\nname = "router"\n'
                                 f'url = "{url}"\npassword = "{password}"\n'
                                 f'timeout = "{timeout}"\n')


def make_router(tmp_path: Path, url: str, clock: Clock, password: str = PASSWORD,
                timeout: str = "2s") -> HilinkSource:
    source = make_source(router_config(tmp_path, url, password, timeout).sources[0], clock)
    assert isinstance(source, HilinkSource)
    return source


def one_line_without_secret(error: BaseException) -> str:
    message = str(error)
    assert "\n" not in message and PASSWORD not in message and "Traceback" not in message
    return message


def test_counters_and_gauges_of_one_cycle(router: HilinkSim, tmp_path: Path,
                                          clock: Clock) -> None:
    source = make_router(tmp_path, router.url, clock)
    [reading] = source.poll()
    assert reading.key == "router:wan" and reading.at == T0
    assert reading.counters == {"rx": 5_000_000_000, "tx": 700_000_000}
    assert reading.life == "SIM0123456789" and reading.held
    assert reading.gauges == GAUGES
    router.grow(1234, 56)
    assert source.poll()[0].counters == {"rx": 5_000_001_234, "tx": 700_000_056}
    assert router.calls["device/information"] == 1  # once per session
    assert router.calls["monitoring/traffic-statistics"] == 2
    assert [attempt.code for attempt in router.login_attempts] == [0]


def test_signal_written_with_comparisons_and_other_network_types(
        router: HilinkSim, tmp_path: Path, clock: Clock) -> None:
    router.signal = {"rsrp": "&lt;=-140dBm", "rsrq": "", "sinr": ">=30dB", "rssi": "-51dBm",
                     "cell_id": "", "band": "20"}
    router.network_type_ex, router.sim_status, router.roaming = 46, 255, 1
    gauges = make_router(tmp_path, router.url, clock).poll()[0].gauges
    assert {name: gauges.get(name) for name in
            ("rsrp", "rsrq", "sinr", "rssi", "band", "cell_id", "network_type", "sim",
             "roaming")} == {"rsrp": -140.0, "rsrq": None, "sinr": 30.0, "rssi": -51.0,
                             "band": "20", "cell_id": None, "network_type": "DC-HSPA+",
                             "sim": "missing", "roaming": "yes"}


def test_a_dip_that_comes_back_is_counted_once_and_a_clear_from_zero(
        router: HilinkSim, tmp_path: Path, clock: Clock) -> None:
    source = make_router(tmp_path, router.url, clock)
    tracker = Tracker(max_rate=250_000_000)
    counted = [0, 0]

    def poll() -> None:
        clock.advance(10)
        for reading in source.poll():
            delta = tracker.update(reading)
            if delta:
                counted[0] += delta.rx
                counted[1] += delta.tx

    poll()
    router.grow(3_000_000, 300_000)
    poll()
    router.dip(1_000_000)
    poll()
    poll()
    router.undip()
    router.grow(2_000_000, 200_000)
    poll()
    assert counted == [5_000_000, 500_000]
    router.clear()
    router.grow(400_000, 40_000)
    for _ in range(3):
        poll()
    assert counted == [5_400_000, 540_000]
    router.grow(100_000, 10_000)
    poll()
    assert counted == [5_500_000, 550_000]


def test_an_unsupported_or_unparseable_call_is_dropped_for_the_run(
        router: HilinkSim, tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
        ) -> None:
    router.missing.add("net/current-plmn")
    router.garbled.add("monitoring/month_statistics")
    source = make_router(tmp_path, router.url, clock)
    for _ in range(3):
        [reading] = source.poll()
    assert router.calls["net/current-plmn"] == 1
    assert router.calls["monitoring/month_statistics"] == 1
    assert router.calls["monitoring/traffic-statistics"] == 3
    assert reading.counters and reading.gauges == {
        name: value for name, value in GAUGES.items()
        if name not in ("operator", "month_rx", "month_tx")}
    dropped = [r.getMessage() for r in caplog.records if "not asked again" in r.getMessage()]
    assert dropped == [
        "source router (router): net.current_plmn not supported by this model (100002); "
        "not asked again in this run",
        "source router (router): monitoring.month_statistics its answer does not parse; "
        "not asked again in this run"]


def test_without_device_information_the_life_is_the_url(
        router: HilinkSim, tmp_path: Path, clock: Clock) -> None:
    router.missing.add("device/information")
    source = make_router(tmp_path, router.url, clock)
    assert source.poll()[0].life == router.url
    router.expire_session()
    assert source.poll() == []
    assert source.poll()[0].life == router.url
    assert router.calls["device/information"] == 1


def test_a_garbled_serial_after_an_expiry_does_not_count_the_total_again(
        router: HilinkSim, tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
        ) -> None:
    """The serial known in the run stays the counters' life when ``device/information``
    answers a broken page after a new login; the call is asked again, not dropped."""
    config = router_config(tmp_path, router.url)
    store = open_site_store(config, create=True)
    grown = [0, 0]

    def grow(rx: int, tx: int) -> None:
        router.grow(rx, tx)
        grown[0] += rx
        grown[1] += tx

    def poll() -> None:
        clock.advance(10)
        collector.poll()

    try:
        collector = Collector(config, store, clock)
        poll()  # the baseline
        grow(1_000_003, 100_001)
        poll()
        router.expire_session()
        grow(2_000_000, 200_000)
        poll()  # 100003: a new login, nothing read
        router.garble_next["device/information"] = 1
        poll()
        grow(3_000_000, 300_000)
        poll()
        router.expire_session()
        poll()
        grow(4_000_000, 400_000)
        poll()
        collector.save()
        collector.close()
        assert store.totals(T0, clock.now + 1, ["router:wan"]) == tuple(grown)
    finally:
        store.close()
    assert router.calls["device/information"] == 4  # at each login, and once more after
    assert [attempt.code for attempt in router.login_attempts] == [0, 0, 0]
    assert "not asked again" not in caplog.text
    assert caplog.text.count("device.information its answer does not parse; asked again at "
                             "the next poll") == 1


def test_no_counters_until_the_first_serial_is_read(router: HilinkSim, tmp_path: Path,
                                                    clock: Clock) -> None:
    router.garble_next["device/information"] = 2
    source = make_router(tmp_path, router.url, clock)
    for _ in range(2):
        [reading] = source.poll()
        assert reading.counters == {} and reading.gauges["connection"] == "connected"
    [reading] = source.poll()
    assert reading.counters and reading.life == "SIM0123456789"
    source.poll()
    assert router.calls["device/information"] == 3


def test_a_serial_once_known_stays_the_life_when_the_model_stops_giving_it(
        router: HilinkSim, tmp_path: Path, clock: Clock) -> None:
    source = make_router(tmp_path, router.url, clock)
    assert source.poll()[0].life == "SIM0123456789"
    router.missing.add("device/information")  # 100002 after the next login: dropped
    for _ in range(2):
        router.expire_session()
        assert source.poll() == []
        assert source.poll()[0].life == "SIM0123456789"
    assert router.calls["device/information"] == 2


def test_another_serial_after_a_login_is_another_life(router: HilinkSim, tmp_path: Path,
                                                      clock: Clock) -> None:
    source = make_router(tmp_path, router.url, clock)
    assert source.poll()[0].life == "SIM0123456789"
    router.serial = "SIM9876543210"
    assert source.poll()[0].life == "SIM0123456789"  # the same session: not asked
    router.expire_session()
    source.poll()
    assert source.poll()[0].life == "SIM9876543210"


def test_an_expired_session_logs_in_again_once_and_reads_at_the_next_cycle(
        router: HilinkSim, tmp_path: Path, clock: Clock) -> None:
    source = make_router(tmp_path, router.url, clock)
    source.poll()
    router.expire_session()
    router.grow(10_000, 1_000)
    assert source.poll() == []
    assert len(router.login_attempts) == 2
    [reading] = source.poll()
    assert reading.counters == {"rx": 5_000_010_000, "tx": 700_001_000}
    assert reading.life == "SIM0123456789"
    assert [attempt.code for attempt in router.login_attempts] == [0, 0]


def test_a_wrong_password_is_tried_once_and_never_again(
        router: HilinkSim, tmp_path: Path, clock: Clock) -> None:
    source = make_router(tmp_path, router.url, clock, password="not-the-password")
    with pytest.raises(LoginRefused) as refused:
        source.poll()
    assert one_line_without_secret(refused.value) == (
        f"{router.url} refused the login of user 'admin' (108006: user name or password "
        "wrong)")
    for _ in range(3):
        clock.advance(3600)
        with pytest.raises(LoginRefused):
            source.poll()
    with pytest.raises(LoginRefused):
        source.set_mobile_data(False)
    source.close()
    assert len(router.login_attempts) == 1 and router.logouts == 0
    assert router.switches == []
    assert "not-the-password" not in str(refused.value)


def test_a_refused_login_stays_refused_across_a_collector_restart(
        router: HilinkSim, tmp_path: Path, clock: Clock) -> None:
    config = router_config(tmp_path, router.url, password="not-the-password")
    store = open_site_store(config, create=True)
    try:
        collector = Collector(config, store, clock)
        collector.poll()
        collector.poll()
        collector.close()
        assert collector.watches[0].refused
        restarted = Collector(config, store, clock)
        restarted.poll()
        restarted.close()
        assert restarted.watches[0].refused
        events = [(e.kind, e.detail.get("error", "")) for e in store.events()]
    finally:
        store.close()
    assert len(router.login_attempts) == 1
    assert events == [("source_down", f"{router.url} refused the login of user 'admin' "
                                      "(108006: user name or password wrong)")]
    fixed = make_config(tmp_path, f'[[sources]]\ntype = "hilink"\nname = "router"\n'
                                  f'url = "{router.url}"\npassword = "{PASSWORD}"\n')
    store = open_site_store(fixed, create=True)
    try:
        changed = Collector(fixed, store, clock)
        assert not changed.watches[0].refused
        changed.poll()
        changed.close()
    finally:
        store.close()
    assert [attempt.code for attempt in router.login_attempts] == [108006, 0]


def test_refuse_ends_the_session_and_no_login_is_made_again(
        router: HilinkSim, tmp_path: Path, clock: Clock) -> None:
    """``refuse`` is how the collector passes on the store's word that these settings' login
    was refused: neither a poll nor an action logs in after it."""
    fresh = make_router(tmp_path, router.url, clock)
    fresh.refuse("refused before")
    with pytest.raises(LoginRefused, match=r"^refused before$"):
        fresh.poll()
    assert router.calls == {}
    source = make_router(tmp_path, router.url, clock)
    source.poll()
    source.refuse("refused before")
    assert router.logouts == 1 and router.logged_in == 0
    for act in (source.poll, lambda: source.set_mobile_data(False), source.reboot):
        with pytest.raises(LoginRefused, match=r"^refused before$"):
            act()
    source.close()
    assert [attempt.code for attempt in router.login_attempts] == [0]
    assert router.switches == [] and router.controls == [] and router.logouts == 1


def test_a_locked_login_is_waited_out_without_any_attempt(
        router: HilinkSim, tmp_path: Path, clock: Clock) -> None:
    router.lock_out(90)  # somebody typed a wrong password on the router's page
    source = make_router(tmp_path, router.url, clock)
    with pytest.raises(SourceError) as locked:
        source.poll()
    assert "locked its login after too many failed attempts; no login before" in str(locked.value)
    asked = router.calls["user/state-login"]
    clock.advance(119)
    with pytest.raises(SourceError):
        source.poll()
    assert router.calls["user/state-login"] == asked  # not even asked: the wait is not over
    router.unlock()
    clock.advance(2)
    assert source.poll()[0].counters
    assert [attempt.code for attempt in router.login_attempts] == [0]


def test_too_many_attempts_answered_to_a_login_waits_the_lock_out(
        router: HilinkSim, tmp_path: Path, clock: Clock) -> None:
    router.max_failures = 1
    source = make_router(tmp_path, router.url, clock, password="wrong-once")
    with pytest.raises(SourceError) as locked:
        source.poll()
    assert not isinstance(locked.value, LoginRefused)
    one_line_without_secret(locked.value)
    clock.advance(59)
    with pytest.raises(SourceError, match="no login before"):
        source.poll()
    assert [attempt.code for attempt in router.login_attempts] == [108007]


@pytest.mark.parametrize("kind", ["refused", "silent", "gone"])
def test_a_router_not_answering_is_a_one_line_error(
        router: HilinkSim, tmp_path: Path, clock: Clock, kind: str) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        if kind == "silent":
            listener.listen(8)  # connections wait in the backlog, never answered
        url = router.url if kind == "gone" else f"http://127.0.0.1:{port}/"
        source = make_router(tmp_path, url, clock, timeout="0.5s")
        if kind == "gone":
            source.poll()
            router.stop()
        with pytest.raises(SourceError) as failed:
            source.poll()
    expected = {"refused": "connection refused", "silent": "no answer in 0.5s",
                "gone": "connection refused"}[kind]
    assert one_line_without_secret(failed.value) == f"{url} not answering: {expected}"
    assert source.link_evidence() is None


def test_close_logs_out_and_only_when_logged_in(router: HilinkSim, tmp_path: Path,
                                                clock: Clock) -> None:
    make_router(tmp_path, router.url, clock).close()
    assert router.calls == {}
    source = make_router(tmp_path, router.url, clock)
    source.poll()
    assert router.logged_in == 1
    source.close()
    source.close()
    assert router.logouts == 1 and router.logged_in == 0


def test_the_connection_status_is_the_keepers_evidence(router: HilinkSim, tmp_path: Path,
                                                       clock: Clock) -> None:
    source = make_router(tmp_path, router.url, clock)
    assert source.link_evidence() is None  # nothing read yet
    source.poll()
    assert source.link_evidence() == (True, "router: connected")
    router.connection = 902
    source.poll()
    assert source.link_evidence() == (False, "router: disconnected")
    router.connection = 900
    source.poll()
    assert source.link_evidence() is None  # connecting: no word on the link yet
    router.connection = 901
    source.poll()
    clock.advance(31)  # three intervals of 10 s without a poll: too old to tell
    assert source.link_evidence() is None


def test_mobile_data_and_reboot_not_power_off(router: HilinkSim, tmp_path: Path,
                                              clock: Clock) -> None:
    source = make_router(tmp_path, router.url, clock)
    source.set_mobile_data(False)
    source.set_mobile_data(True)
    router.expire_session()
    source.reboot()
    assert router.switches == [0, 1]
    assert router.controls == [1]
    assert source.poll()[0].counters  # a new session after the reboot
    assert len(router.login_attempts) == 3


def test_the_connection_status_read_before_a_reboot_is_no_evidence_after_it(
        router: HilinkSim, tmp_path: Path, clock: Clock) -> None:
    source = make_router(tmp_path, router.url, clock)
    source.poll()
    assert source.link_evidence() == (True, "router: connected")
    source.reboot()
    assert source.link_evidence() is None
    source.poll()
    assert source.link_evidence() == (True, "router: connected")


def test_the_password_file_is_read_at_login(router: HilinkSim, tmp_path: Path,
                                            clock: Clock) -> None:
    secret = tmp_path / "router-password"
    secret.write_text(f"{PASSWORD}\n")
    config = make_config(tmp_path, f'[[sources]]\ntype = "hilink"\nname = "router"\n'
                                   f'url = "{router.url}"\npassword_file = "{secret}"\n')
    assert make_source(config.sources[0], clock).poll()[0].counters
    missing = make_config(tmp_path, f'[[sources]]\ntype = "hilink"\nname = "router"\n'
                                    f'url = "{router.url}"\n'
                                    f'password_file = "{tmp_path}/nothing-here"\n')
    with pytest.raises(SourceError) as unreadable:
        make_source(missing.sources[0], clock).poll()
    assert str(unreadable.value) == (f"sources 'router': password_file: cannot read "
                                     f"{tmp_path}/nothing-here (No such file or directory)")
    assert len(router.login_attempts) == 1


def test_a_password_given_twice_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as wrong:
        make_config(tmp_path, '[[sources]]\ntype = "hilink"\npassword = "a"\n'
                              'password_file = "/etc/traffic/router-password"\n')
    assert str(wrong.value) == (f"{tmp_path}/traffic.toml: sources[0].password_file: set "
                                "password or password_file, not both")


def test_without_a_password_no_login_is_made_until_the_router_asks(
        tmp_path: Path, router: HilinkSim, clock: Clock) -> None:
    """A HiLink stick without a login page needs no password; a router that asks for one gets
    none, once, and is not asked again until the settings change."""
    config = make_config(tmp_path, f'[[sources]]\ntype = "hilink"\nname = "router"\n'
                                   f'url = "{router.url}"\n')
    source = make_source(config.sources[0], clock)
    with pytest.raises(LoginRefused) as refused:
        source.poll()
    assert str(refused.value) == (f"{router.url} asks for a login: set password_file (or "
                                  "password) in its [[sources]] table")
    with pytest.raises(LoginRefused):
        source.poll()
    assert router.login_attempts == []


@pytest.mark.parametrize(("line", "message"), [
    ('url = "192.168.8.1"', "sources[0].url: expected the router's address such as "
                            "'http://192.168.8.1/', got '192.168.8.1'"),
    ('url = "http://admin:hunter2@192.168.8.1/"',
     "sources[0].url: put the user name in 'username' and the password in 'password' or "
     "'password_file', not in the url"),
    ('url = "admin:hunter2@192.168.8.1"',
     "sources[0].url: put the user name in 'username' and the password in 'password' or "
     "'password_file', not in the url"),
    ("password = 73915286", "sources[0].password: expected a string in quotes (the value is "
                            "not shown)"),
    ('password_file = "router-password"', "sources[0].password_file: expected an absolute "
                                          "path such as '/etc/traffic/router-password', got "
                                          "'router-password'"),
    ('timeout = "soon"', "sources[0].timeout: bad duration 'soon'"),
    ("username = ''", "sources[0].username: expected the router's user name"),
    ('pasword = "x"', "unknown key 'sources[0].pasword'"),
])
def test_settings_are_checked_when_the_config_is_read(tmp_path: Path, line: str,
                                                      message: str) -> None:
    with pytest.raises(ConfigError) as wrong:
        make_config(tmp_path, f'[[sources]]\ntype = "hilink"\n{line}\n')
    assert message in str(wrong.value)
    assert "hunter2" not in str(wrong.value) and "73915286" not in str(wrong.value)
    assert str(wrong.value).startswith(str(tmp_path / "traffic.toml"))


def test_the_password_never_reaches_the_log(router: HilinkSim, tmp_path: Path, clock: Clock,
                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    source = make_router(tmp_path, router.url, clock)
    source.poll()
    router.expire_session()
    source.poll()
    source.close()
    wrong = make_router(tmp_path, router.url, clock, password="wrong-" + PASSWORD)
    with pytest.raises(LoginRefused):
        wrong.poll()
    assert caplog.records and PASSWORD not in caplog.text


def test_the_example_configs_router_table_loads_when_uncommented(tmp_path: Path) -> None:
    table = example_table("hilink")
    assert table[:2] == ["[[sources]]", 'type = "hilink"']
    config = make_config(tmp_path, EXAMPLE.read_text() + "\n".join(table) + "\n")
    router = config.sources[-1]
    assert (router.type, router.name, router.billed) == ("hilink", "router", False)
    assert router.settings == {"url": "http://192.168.8.1/", "username": "admin",
                               "password": "", "password_file": "/etc/traffic/router-password",
                               "timeout": 5.0}

"""The modem source through real pyserial against the AT responder on a pty
(tests/sim/modem.py): its gauges, the SIM's safety, a port held by another program, the port
found through a by-id folder, and ``traffic modem pin-lock``."""

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from collector.sources import (
    LoginRefused,
    SourceError,
    make_source,
    refused_in_store,
    source_schemas,
)
from collector.sources.modem import ModemSource
from tests.collector_process import HostCollector, wait_until
from tests.conftest import EXAMPLE, example_table, make_config
from tests.sim.modem import READY, SIM_PIN, SIM_PUK, ModemSim, Scenario, hold
from tests.stack import clean_env
from traffic.config import Config, ConfigError, SourceConfig, load_config, shown_settings
from traffic.store import open_site_store

PIN = "4711"


def clock() -> int:
    return int(time.time() * 1000)


@pytest.fixture
def sim() -> Iterator[ModemSim]:
    with ModemSim(Scenario(pin=PIN)) as running:
        yield running


def modem(port: str = "", lock_dir: str = "/nonexistent", **settings: object) -> ModemSource:
    config = SourceConfig(type="modem", name="modem", billed=False,
                          settings={"port": port, "timeout": 2.0, "lock_dir": lock_dir,
                                    **settings})
    source = make_source(config, clock)
    assert isinstance(source, ModemSource)
    return source


def gauges(source: ModemSource) -> dict[str, float | str]:
    readings = source.poll()
    assert len(readings) == 1 and readings[0].key == "modem:modem"
    assert readings[0].counters == {}
    return readings[0].gauges


def test_a_modem_on_lte_gives_signal_registration_operator_and_sim(sim: ModemSim) -> None:
    assert gauges(modem(sim.path)) == {"sim": "ready", "rssi": -73.0, "registration": "home",
                                       "roaming": "no", "operator": "Telia",
                                       "network_type": "LTE"}


def test_a_huawei_modem_names_its_access_technology_through_sysinfoex(sim: ModemSim) -> None:
    sim.scenario.huawei, sim.scenario.act = True, 2  # +COPS says WCDMA, ^SYSINFOEX says LTE
    assert gauges(modem(sim.path))["network_type"] == "LTE"


@pytest.mark.parametrize(("creg", "cereg", "csq", "expected"), [
    (5, None, 31, {"registration": "roaming", "roaming": "yes", "rssi": -51.0}),
    (2, 1, 0, {"registration": "home", "roaming": "no", "rssi": -113.0}),
    (2, 2, 99, {"registration": "searching"}),
    (3, 3, 10, {"registration": "denied", "rssi": -93.0}),
])
def test_registration_and_signal_words(sim: ModemSim, creg: int, cereg: int | None, csq: int,
                                       expected: dict[str, object]) -> None:
    sim.scenario.creg, sim.scenario.cereg, sim.scenario.csq = creg, cereg, csq
    found = gauges(modem(sim.path))
    assert {name: found.get(name) for name in ("registration", "roaming", "rssi")} == {
        "roaming": None, "rssi": None, **expected}


def test_a_command_the_modem_does_not_support_is_not_asked_again(sim: ModemSim) -> None:
    source = modem(sim.path)
    for _ in range(3):
        gauges(source)
    assert len(sim.asked("AT^SYSINFOEX")) == 1
    assert len(sim.asked("AT+CSQ")) == 3


def test_a_sim_asking_for_its_pin_without_one_configured_is_reported(sim: ModemSim) -> None:
    sim.scenario.sim = SIM_PIN
    found = gauges(modem(sim.path))
    assert found["sim"] == "pin required" and found["pin_attempts"] == 3
    assert found["registration"] == "not registered" and "operator" not in found
    assert sim.pins_sent == []


def test_the_pin_is_sent_when_the_sim_asks_and_only_then(sim: ModemSim) -> None:
    source = modem(sim.path, pin=PIN)
    assert gauges(source)["sim"] == "ready"
    assert sim.pins_sent == []
    sim.scenario.sim = SIM_PIN  # the modem restarted
    found = gauges(source)
    assert found["sim"] == "ready" and found["operator"] == "Telia"
    assert sim.pins_sent == [PIN]


def test_the_pin_file_is_read_when_the_sim_asks(sim: ModemSim, tmp_path: Path) -> None:
    (tmp_path / "pin").write_text(f"{PIN}\n")
    sim.scenario.sim, sim.scenario.huawei = SIM_PIN, True
    assert gauges(modem(sim.path, pin_file=str(tmp_path / "pin")))["sim"] == "ready"
    assert sim.pins_sent == [PIN]


def test_a_refused_pin_is_sent_once_and_the_attempts_left_are_told(sim: ModemSim) -> None:
    sim.scenario.sim = SIM_PIN
    source = modem(sim.path, pin="1111")
    for _ in range(3):
        with pytest.raises(LoginRefused) as refused:
            source.poll()
        message = str(refused.value)
        assert "refused the PIN" in message and "(2 attempts left)" in message
        assert "1111" not in message
    assert sim.pins_sent == ["1111"]
    assert sim.scenario.pin_attempts == 2


def test_huawei_modems_tell_the_attempts_left_through_their_own_command(
        sim: ModemSim) -> None:
    sim.scenario.sim, sim.scenario.huawei, sim.scenario.pin_attempts = SIM_PIN, True, 2
    with pytest.raises(LoginRefused, match=r"\(1 attempt left\)"):
        modem(sim.path, pin="1111").poll()


def test_no_pin_is_sent_when_a_single_attempt_is_left(sim: ModemSim) -> None:
    sim.scenario.sim, sim.scenario.pin_attempts = SIM_PIN, 1
    found = gauges(modem(sim.path, pin=PIN))
    assert found["sim"] == "pin required" and found["pin_attempts"] == 1
    assert sim.pins_sent == []


def test_a_sim_asking_for_its_puk_is_reported_never_answered(
        sim: ModemSim, caplog: pytest.LogCaptureFixture) -> None:
    sim.scenario.sim, sim.scenario.puk_attempts = SIM_PUK, 9
    source = modem(sim.path, pin=PIN)
    with caplog.at_level(logging.ERROR, "collector.sources.modem"):
        for _ in range(2):
            found = gauges(source)
    assert found["sim"] == "puk required" and found["puk_attempts"] == 9
    assert sim.pins_sent == [] and not sim.asked("AT+CPIN=")
    assert len([r for r in caplog.records if "PUK" in r.getMessage()]) == 1


def test_a_missing_sim_is_a_gauge(sim: ModemSim) -> None:
    sim.scenario.sim = "missing"
    assert gauges(modem(sim.path, pin=PIN))["sim"] == "missing"
    assert sim.pins_sent == []


@pytest.mark.parametrize("how", ["uucp", "flock"])
def test_a_port_held_by_another_program_is_skipped_and_said_once(
        sim: ModemSim, lock_dir: str, how: str, caplog: pytest.LogCaptureFixture) -> None:
    source = modem(sim.path, lock_dir)
    with caplog.at_level(logging.INFO, "collector.sources.modem"):
        with hold(sim.path, lock_dir, how) as holder:
            asked = len(sim.commands)
            assert source.poll() == [] and source.poll() == []
            assert len(sim.commands) == asked  # nothing was written to the port
        held = [r.getMessage() for r in caplog.records if "is held by" in r.getMessage()]
        assert len(held) == 1
        if how == "uucp":
            assert f"pid {holder.pid}" in held[0] and "python" in held[0]
        assert gauges(source)["sim"] == "ready"
    assert any("free again" in r.getMessage() for r in caplog.records)


def test_a_stale_lock_file_does_not_hold_the_port(sim: ModemSim, lock_dir: str) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(lock_dir, "LCK.." + os.path.basename(sim.path)).write_text(f"{int(dead):10d}\n")
    assert gauges(modem(sim.path, lock_dir))["sim"] == "ready"


@pytest.fixture
def silent_port() -> Iterator[str]:
    """A pty nobody answers on."""
    master, slave = os.openpty()
    yield os.ttyname(slave)
    os.close(master)
    os.close(slave)


def test_the_port_is_found_in_the_by_id_folder(
        sim: ModemSim, silent_port: str, tmp_path: Path, lock_dir: str) -> None:
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    (by_id / "usb-Acme_Serial-if00-port0").symlink_to(silent_port)
    (by_id / "usb-HUAWEI_Mobile-if02-port0").symlink_to(sim.path)
    readings = modem("", lock_dir, by_id_dir=str(by_id)).poll()
    assert readings[0].gauges["operator"] == "Telia"
    assert readings[0].life == str(by_id / "usb-HUAWEI_Mobile-if02-port0")


def test_a_held_port_is_passed_over_when_the_modem_has_another(
        sim: ModemSim, tmp_path: Path, lock_dir: str) -> None:
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    with ModemSim(Scenario()) as dialled:
        dialled.scenario.operator = "Dialled"
        (by_id / "usb-HUAWEI_Mobile-if00-port0").symlink_to(dialled.path)
        (by_id / "usb-HUAWEI_Mobile-if02-port0").symlink_to(sim.path)
        source = modem("", lock_dir, by_id_dir=str(by_id))
        assert gauges(source)["operator"] == "Dialled"  # the first that answers
        with hold(dialled.path, lock_dir, "uucp"):
            assert gauges(source)["operator"] == "Telia"
            assert gauges(source)["operator"] == "Telia"


def test_no_modem_is_one_line_naming_the_folder(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"^no modem found: .*missing: no such file") as error:
        modem("", by_id_dir=str(tmp_path / "missing")).poll()
    assert "\n" not in str(error.value)


def test_a_port_that_does_not_answer_is_one_line(silent_port: str) -> None:
    with pytest.raises(SourceError, match=r"did not answer AT\+CPIN\? within 0.3s$"):
        modem(silent_port, timeout=0.3).poll()


def test_pin_settings_are_secret_and_checked(tmp_path: Path) -> None:
    config = make_config(tmp_path, f'[[sources]]\ntype = "modem"\npin = "{PIN}"\n')
    shown = json.dumps(shown_settings(config.effective))
    assert PIN not in shown and '"pin": "********"' in shown
    with pytest.raises(ConfigError, match=r"set pin or pin_file, not both"):
        make_config(tmp_path, '[[sources]]\ntype = "modem"\npin = "1234"\n'
                              'pin_file = "/etc/traffic/sim-pin"\n')
    with pytest.raises(ConfigError, match=r"4 to 8 digits") as error:
        make_config(tmp_path, '[[sources]]\ntype = "modem"\npin = "12a4x"\n')
    assert "12a4x" not in str(error.value)


# Real collector processes and the ``traffic`` command.
def modem_config(sim: ModemSim, pin: str) -> str:
    return ('[[sources]]\ntype = "kernel"\ninterfaces = ["lo"]\n'
            f'[[sources]]\ntype = "modem"\nport = "{sim.path}"\npin = "{pin}"\n'
            'interval = "250ms"\nlock_dir = "/nonexistent"\n')


def published_modem(collector: HostCollector) -> dict:
    """The modem as ``traffic status`` shows it ({} before the collector made its store)."""
    shown = run_cli(collector.config, "status", "--json")
    if shown.returncode:
        return {"state": "", "gauges": {}}
    return json.loads(shown.stdout)["sources"]["modem"]


def test_a_refused_pin_is_sent_exactly_once_across_collector_restarts(
        sim: ModemSim, collect: Callable[[str], HostCollector]) -> None:
    sim.scenario.sim = SIM_PIN
    collector = collect(modem_config(sim, "1111"))
    collector.start()
    wait_until(lambda: published_modem(collector)["state"] == "refused", "the refused PIN")
    shown = published_modem(collector)
    assert shown["setting"] == "sources[1].pin" and "(2 attempts left)" in shown["error"]
    assert ("  modem       PIN refused: check sources[1].pin; it is not sent again until the "
            "settings change\n") in collector.cli("status")
    asked = len(sim.commands)
    collector.stop()
    for _ in range(2):
        collector.start()
        wait_until(lambda: published_modem(collector)["state"] == "refused", "refused again")
        time.sleep(1)  # four intervals: the modem would have been asked by now
        collector.stop()
    assert sim.pins_sent == ["1111"] and len(sim.commands) == asked
    logged = (Path(collector.config).parent / "collector.log").read_text()
    assert "1111" not in logged
    assert logged.count("alert device: The modem's SIM card refused its PIN. Fix "
                        "sources[1].pin; it is not sent again until then.") == 1

    collector.config.write_text(collector.config.read_text().replace("1111", PIN))
    collector.start()
    wait_until(lambda: published_modem(collector)["gauges"].get("sim") == "ready",
               "the corrected PIN")
    assert "  modem       Telia, LTE, signal excellent (RSSI -73 dBm)\n" in collector.cli("status")
    collector.stop()
    assert sim.pins_sent == ["1111", PIN]


def cli_config(tmp_path: Path, sources: str) -> tuple[Path, Config]:
    """A config file with its store and runtime files in ``tmp_path``, and it loaded."""
    path = tmp_path / "traffic.toml"
    path.write_text(f'[store]\nurl = "sqlite://{tmp_path}/traffic.db"\n'
                    f'[collector]\nruntime_dir = "{tmp_path}/run"\n{sources}')
    return path, load_config(path, environ={}, system_path=None,
                             source_schemas=source_schemas())


def test_a_sim_asking_for_its_puk_is_an_alert_and_gets_nothing(
        sim: ModemSim, collect: Callable[[str], HostCollector]) -> None:
    sim.scenario.sim = SIM_PUK
    collector = collect(modem_config(sim, PIN))
    collector.start()
    wait_until(lambda: published_modem(collector)["gauges"].get("sim") == "puk required",
               "the SIM asking for its PUK")
    assert published_modem(collector)["gauges"]["puk_attempts"] == 10
    log_file = Path(collector.config).parent / "collector.log"
    wait_until(lambda: "asks for its PUK: no data" in log_file.read_text(), "the alert")
    assert "SIM puk required" in collector.cli("status")
    collector.stop()
    assert sim.pins_sent == [] and not sim.asked("AT+CPIN=")


def run_cli(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", "--config", str(config), *args],
                          capture_output=True, text=True, env=clean_env(), timeout=60,
                          stdin=subprocess.DEVNULL)


def test_traffic_modem_pin_lock_off_and_on(sim: ModemSim, tmp_path: Path) -> None:
    path, config = cli_config(tmp_path, modem_config(sim, PIN))
    off = run_cli(path, "modem", "pin-lock", "off")
    assert (off.returncode, off.stdout) == (0, "the SIM's PIN request is now off\n")
    assert sim.scenario.pin_lock is False and sim.pins_sent == [PIN]
    again = run_cli(path, "modem", "pin-lock", "off")
    assert "already off" in again.stdout and sim.pins_sent == [PIN]
    on = run_cli(path, "modem", "pin-lock", "on", "--source", config.sources[1].name)
    assert on.stdout == "the SIM's PIN request is now on\n" and sim.scenario.pin_lock


def test_traffic_modem_pin_lock_with_a_wrong_pin_sends_it_once(sim: ModemSim,
                                                               tmp_path: Path) -> None:
    path, config = cli_config(tmp_path, modem_config(sim, "1111"))
    for _ in range(2):
        refused = run_cli(path, "modem", "pin-lock", "off")
        assert refused.returncode == 1 and refused.stderr.count("\n") == 1
        assert refused.stderr.startswith("traffic: modem: the SIM refused the PIN of sources[1]")
        assert "1111" not in refused.stderr
    assert sim.pins_sent == ["1111"] and sim.scenario.pin_lock
    store = open_site_store(config)
    try:
        assert refused_in_store(store, config.sources[1])  # the collector will not send it
    finally:
        store.close()


def test_traffic_modem_errors_are_one_line(sim: ModemSim, tmp_path: Path) -> None:
    path, _ = cli_config(tmp_path, '[[sources]]\ntype = "kernel"\n')
    none = run_cli(path, "modem", "pin-lock", "off")
    assert none.returncode == 2
    assert none.stderr == 'traffic: modem: no [[sources]] table of type "modem" in the config\n'
    cli_config(tmp_path, modem_config(sim, PIN).replace(f'pin = "{PIN}"\n', ""))
    no_pin = run_cli(path, "modem", "pin-lock", "off")
    assert no_pin.returncode == 2 and "has no pin_file (or pin)" in no_pin.stderr
    sim.scenario.sim = SIM_PUK
    cli_config(tmp_path, modem_config(sim, PIN))
    puk = run_cli(path, "modem", "pin-lock", "off")
    assert puk.returncode == 1 and "asks for its PUK; nothing was sent" in puk.stderr
    assert sim.pins_sent == [] and sim.scenario.sim != READY


def test_the_example_configs_modem_table_loads_when_uncommented(tmp_path: Path) -> None:
    table = example_table("modem")
    assert table[:2] == ["[[sources]]", 'type = "modem"']
    modem_table = make_config(tmp_path, EXAMPLE.read_text() + "\n".join(table) + "\n"
                              ).sources[-1]
    assert (modem_table.type, modem_table.name, modem_table.billed) == ("modem", "modem", False)
    assert modem_table.settings == {
        "port": "/dev/serial/by-id/usb-HUAWEI_Technology_HUAWEI_Mobile-if02-port0", "pin": "",
        "pin_file": "/etc/traffic/sim-pin", "timeout": 2.0, "by_id_dir": "/dev/serial/by-id",
        "lock_dir": "/var/lock"}

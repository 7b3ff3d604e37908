"""Keeper actions: argument lists with timeouts, masked output, the built-in USB reset."""

import time
from pathlib import Path

import pytest

from collector.actions import disconnect_command, run_action, usb_reset
from traffic.config import load_config


def test_command_runs_without_a_shell() -> None:
    result = run_action(["echo", "$HOME", ";", "reboot"], 5)
    assert result.ok and result.exit_code == 0
    assert result.output == "$HOME ; reboot"


def test_failure_and_missing_command() -> None:
    failed = run_action(["sh", "-c", "echo no carrier >&2; exit 3"], 5)
    assert (failed.ok, failed.exit_code, failed.output) == (False, 3, "no carrier")
    missing = run_action(["no-such-dialer"], 5)
    assert not missing.ok and missing.exit_code is None
    assert missing.output.startswith("cannot run no-such-dialer:")


def test_hung_command_and_its_children_are_killed() -> None:
    started = time.monotonic()
    result = run_action(["sh", "-c", "sleep 60 & sleep 60"], 0.5)
    assert time.monotonic() - started < 5
    assert result.timed_out and not result.ok and result.exit_code is None
    assert "killed after 0.5s" in result.output


def test_secrets_are_masked_in_output_and_command() -> None:
    result = run_action(["echo", "login admin:hunter2 ok"], 5, secrets=["hunter2"])
    assert result.output == "login admin:******** ok"
    assert result.command == ("echo", "login admin:******** ok")


def test_timeout_holds_when_a_child_escapes_and_keeps_the_output() -> None:
    started = time.monotonic()
    result = run_action(["sh", "-c", "setsid sleep 5 & sleep 30"], 0.5)
    assert result.timed_out and time.monotonic() - started < 3


@pytest.mark.parametrize(("connect", "disconnect"), [
    (["pon", "provider"], ("poff", "provider")),
    (["nmcli", "connection", "up", "Mobile"], ("nmcli", "connection", "down", "Mobile")),
    (["mmcli", "-m", "0", "--simple-connect=apn=internet"], ("mmcli", "-m", "0",
                                                             "--simple-disconnect")),
])
def test_disconnect_is_derived_for_known_helpers(connect, disconnect) -> None:
    keeper = load_config(overrides=[f"keeper.connect={connect!r}".replace("'", '"')],
                         environ={}, system_path=None).keeper
    assert disconnect_command(keeper) == disconnect


def test_unknown_connect_needs_an_explicit_disconnect() -> None:
    keeper = load_config(overrides=['keeper.connect=["/usr/local/bin/dial"]'], environ={},
                         system_path=None).keeper
    with pytest.raises(ValueError, match=r"keeper\.disconnect: set the command"):
        disconnect_command(keeper)


def fake_usb(root: Path, name: str, vendor: str, product: str) -> Path:
    """A device as sysfs shows it: what the built-in writes to is the ``authorized`` file."""
    device = root / name
    device.mkdir(parents=True)
    (device / "idVendor").write_text(vendor + "\n")
    (device / "idProduct").write_text(product + "\n")
    (device / "authorized").write_text("1\n")
    return device


def test_usb_reset_replugs_the_matching_device(tmp_path: Path, monkeypatch) -> None:
    modem = fake_usb(tmp_path, "1-1.3", "12d1", "1506")
    other = fake_usb(tmp_path, "1-1.4", "0bda", "8153")
    writes = []
    original = Path.write_text

    def record(self, text, *args, **kwargs):
        writes.append((self.parent.name, text))
        return original(self, text, *args, **kwargs)
    monkeypatch.setattr(Path, "write_text", record)
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    ok, message = usb_reset(["12D1:1506"], devices=tmp_path)
    assert ok and message == "usb-reset: re-plugged 1-1.3"
    assert writes == [("1-1.3", "0"), ("1-1.3", "1")]
    assert (modem / "authorized").read_text() == "1"
    assert (other / "authorized").read_text() == "1\n"


def test_usb_reset_reports_a_missing_device(tmp_path: Path) -> None:
    assert usb_reset(["12d1:1506"], devices=tmp_path) == (
        False, "usb-reset: no USB device 12d1:1506")
    assert usb_reset(["modem"], devices=tmp_path)[0] is False


def test_secret_values_of_the_config() -> None:
    from collector.keeper import secret_values

    settings = {"store": {"url": "mongodb://traffic:s3cret@db/traffic"},
                "router": {"password": "hunter2", "url": "http://192.168.8.1/"}}
    assert sorted(secret_values(settings)) == ["hunter2", "s3cret"]


def test_secrets_written_in_the_output_are_masked() -> None:
    script = ('echo curl http://admin:routerpw@192.168.8.1/api; '
              'echo APN_PASS=filepass SIM_PIN=4321 password=s3cr3t; echo \'AT+CPIN="4321"\'')
    result = run_action(["sh", "-c", script], 5)
    assert result.output.splitlines() == [
        "curl http://admin:********@192.168.8.1/api",
        "APN_PASS=******** SIM_PIN=******** password=********",
        "AT+CPIN=********"]
    for secret in ("routerpw", "filepass", "4321", "s3cr3t"):
        assert secret not in result.output and secret not in " ".join(result.command)


def test_config_secrets_are_masked_as_whole_tokens_only() -> None:
    result = run_action(["echo", "serial abcd1234, pin 1234."], 5, secrets=["1234"])
    assert result.output == "serial abcd1234, pin ********."


def test_an_empty_command_is_not_run() -> None:
    result = run_action([], 5)
    assert not result.ok and result.output == "nothing to run: the command is empty"


def test_interrupt_kills_the_running_command_and_its_group_at_once() -> None:
    import subprocess
    import threading

    from collector.actions import ActionRunner

    runner = ActionRunner()
    results = []
    worker = threading.Thread(target=lambda: results.append(
        runner.run(["sh", "-c", "sleep 31 & sleep 32"], 60)))
    started = time.monotonic()
    worker.start()
    time.sleep(0.5)
    runner.interrupt()
    worker.join(10)
    assert time.monotonic() - started < 3
    result = results[0]
    assert result.interrupted and not result.ok and not result.timed_out
    assert result.exit_code is None and result.detail()["interrupted"] is True
    assert result.output.endswith("(killed: the collector was stopping)")
    time.sleep(0.2)
    assert subprocess.run(["pgrep", "-f", "^sleep 3[12]$"], capture_output=True).returncode == 1
    after = runner.run(["true"], 5)
    assert after.interrupted and after.output == "not run: the collector was stopping"

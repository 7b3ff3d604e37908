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


def big_output_script(megabytes: int) -> str:
    """A helper that prints a secret, ``megabytes`` MB of noise, and a secret again."""
    return ("echo 'START password=hunter2'; "
            f"yes 0123456789abcdef | head -c {megabytes * 1000 * 1000}; "
            "echo; echo 'END token=s3cr3t pin 4321'")


MEMORY_PROBE = """
import json, sys, threading, time
from collector.actions import run_action

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024

gaps, done = [], threading.Event()
def tick():
    last = time.monotonic()
    while not done.is_set():
        time.sleep(0.01)
        now = time.monotonic()
        gaps.append(now - last)
        last = now

before = hwm()
ticker = threading.Thread(target=tick)
ticker.start()
result = run_action(["sh", "-c", sys.argv[1]], 120, secrets=["4321"])
done.set()
ticker.join()
print(json.dumps({"grew": hwm() - before, "gap": max(gaps), "ok": result.ok,
                  "timed_out": result.timed_out, "output": result.output}))
"""


def test_300_mb_of_output_is_read_as_it_comes_and_kept_bounded() -> None:
    import json
    import subprocess
    import sys

    probe = subprocess.run([sys.executable, "-c", MEMORY_PROBE, big_output_script(300)],
                           capture_output=True, text=True, timeout=180)
    assert probe.returncode == 0, probe.stderr
    measured = json.loads(probe.stdout)
    assert measured["ok"] and not measured["timed_out"]
    assert measured["grew"] < 30 * 1024 * 1024, measured["grew"]
    assert measured["gap"] < 0.5, "another thread was held up while the output was read"
    output = measured["output"]
    assert output.startswith("START password=********\n0123456789abcdef\n")
    assert output.endswith("0123456789abcd\nEND token=******** pin ********")
    assert "hunter2" not in output and "s3cr3t" not in output and "4321" not in output
    left_out = [line for line in output.splitlines() if "left out" in line]
    assert left_out == ["… 300 MB left out …"]
    assert len(output) < 9000


def test_a_secret_at_the_edge_of_what_is_kept_is_not_cut_in_two() -> None:
    noise = "x" * 4090
    script = (f"printf '%s password=hunter2 ' {noise}; yes | head -c 100000; "
              f"printf ' pin 4321 %s' {noise}")
    result = run_action(["sh", "-c", script], 10, secrets=["4321"])
    assert result.ok
    assert "left out" in result.output
    for part in ("hunter2", "unter2", "ter2", "4321", "321"):
        assert part not in result.output


def processes_with(marker: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if any(marker.encode() in part for part in argv):
            found.append(cmdline.parent.name)
    return found


def unique_seconds() -> str:
    """A sleep of about an hour whose argv no other process has."""
    import random

    return f"3000.{random.randrange(10**8, 10**9)}"


def test_a_setsid_child_left_behind_is_killed_when_the_attempt_ends() -> None:
    seconds = unique_seconds()
    result = run_action(["sh", "-c", f"setsid sleep {seconds} > /dev/null 2>&1 & "
                                     f"(setsid sh -c 'sleep {seconds}1' > /dev/null 2>&1 &); "
                                     "sleep 0.5; echo dialled"], 10)
    assert result.ok and result.output == "dialled"
    assert processes_with(seconds) == []


def test_a_wrapper_that_exits_at_once_is_judged_by_its_exit_code() -> None:
    seconds = unique_seconds()
    started = time.monotonic()
    result = run_action(["sh", "-c", f"sleep {seconds} & echo started; exit 0"], 10)
    assert time.monotonic() - started < 3
    assert result.ok and not result.timed_out and result.exit_code == 0
    assert result.output == "started"
    assert processes_with(seconds) == []
    failed = run_action(["sh", "-c", f"sleep {seconds} & exit 4"], 10)
    assert (failed.ok, failed.exit_code, failed.timed_out) == (False, 4, False)
    assert processes_with(seconds) == []


def test_a_timed_out_command_leaves_no_process_behind() -> None:
    seconds = unique_seconds()
    started = time.monotonic()
    result = run_action(["sh", "-c", f"setsid sleep {seconds} & sleep {seconds}"], 0.5)
    assert result.timed_out and time.monotonic() - started < 3
    assert processes_with(seconds) == []


def test_the_dialler_daemon_pppd_is_left_holding_the_link(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess

    pppd = tmp_path / "pppd"
    pppd.symlink_to(subprocess.run(["sh", "-c", "command -v sleep"], capture_output=True,
                                   text=True, check=True).stdout.strip())
    seconds = unique_seconds()
    result = run_action(["sh", "-c", f"setsid {pppd} {seconds} > /dev/null 2>&1 & "
                                     f"sleep {seconds}1 & sleep 0.3; echo dialled"], 10)
    try:
        assert result.ok and result.output == "dialled"
        kept = processes_with(seconds)
        assert len(kept) == 1
        assert Path(f"/proc/{kept[0]}/comm").read_text().strip() == "pppd"
    finally:
        for pid in processes_with(seconds):
            os.kill(int(pid), signal.SIGKILL)

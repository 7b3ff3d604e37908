"""``traffic connect`` and ``traffic disconnect`` as the person at the box uses them."""

import json
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.stack import clean_env
from traffic.config import load_config
from traffic.runtime import write_atomically
from traffic.store import open_site_store


def setup(tmp_path: Path, connect: str, disconnect: str, extra: str = "") -> Path:
    config = tmp_path / "traffic.toml"
    config.write_text(f'[store]\nurl = "sqlite://{tmp_path}/traffic.db"\n'
                      f'[collector]\nruntime_dir = "{tmp_path}/run"\n'
                      f'[keeper]\nenabled = true\ntargets = ["127.0.0.1:9"]\n'
                      f"connect = {connect}\ndisconnect = {disconnect}\n{extra}")
    return config


def traffic(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", "--config", str(config), *args],
                          capture_output=True, text=True, env=clean_env(), timeout=60)


def stored(config: Path) -> tuple[list, dict]:
    loaded = load_config(config, environ={}, system_path=None)
    store = open_site_store(loaded, create=True)
    try:
        events = [(e.kind, e.detail) for e in reversed(store.events())]
        return events, json.loads(store.get_meta("keeper.state") or "{}")
    finally:
        store.close()


def test_disconnect_holds_the_link_down_until_connect(tmp_path: Path) -> None:
    config = setup(tmp_path, '["echo", "dialling"]', '["echo", "hanging up"]')
    result = traffic(config, "disconnect")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("The link is down; the keeper leaves it down until")
    events, state = stored(config)
    assert [kind for kind, _ in events] == ["disconnect"]
    assert events[0][1]["output"] == "hanging up" and events[0][1]["by"] == "traffic disconnect"
    assert state["held"] == "disconnected"

    result = traffic(config, "connect")
    assert result.returncode == 0 and result.stdout == "echo dialling: done\ndialling\n"
    events, state = stored(config)
    assert [kind for kind, _ in events] == ["disconnect", "unlock", "attempt"]
    assert events[1][1] == {"reason": "traffic connect", "was": "disconnected"}
    assert state["held"] == "" and state["lock_until"] == 0


def test_failing_connect_exits_1_and_says_why(tmp_path: Path) -> None:
    config = setup(tmp_path, '["sh", "-c", "echo no carrier; exit 3"]', "[]")
    result = traffic(config, "connect")
    assert result.returncode == 1
    assert result.stdout == "sh -c echo no carrier; exit 3: failed (exit 3)\nno carrier\n"


def test_a_shell_string_is_refused(tmp_path: Path) -> None:
    config = setup(tmp_path, '"pon provider"', "[]")
    result = traffic(config, "connect")
    assert result.returncode == 2
    assert result.stderr == (f"traffic: {config}: keeper.connect: expected an argument list such "
                             "as [\"pon\", \"provider\"], not a shell string: 'pon provider'\n")


def test_status_shows_the_link(tmp_path: Path) -> None:
    config = setup(tmp_path, '["true"]', '["true"]')
    traffic(config, "disconnect")  # the keeper commands create the store when it is not there
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    now = int(time.time() * 1000)
    write_atomically(run / "home.keeper", {
        "link": "down", "since": now - 60_000, "step": 0, "step_fails": 2, "lock_until": 0,
        "held": "", "quota_override_until": 0, "checked_at": now - 5000, "interface": "ppp0",
        "evidence": "ppp0 is not there"})
    text = traffic(config, "status").stdout
    assert "  link        down since " in text and "(checked 5s ago: ppp0 is not there)" in text
    assert json.loads(traffic(config, "status", "--json").stdout)["keeper"]["step_fails"] == 2


def write_state(config: Path, **fields: object) -> None:
    loaded = load_config(config, environ={}, system_path=None)
    store = open_site_store(loaded, create=True)
    try:
        store.set_meta("keeper.state", json.dumps(fields))
    finally:
        store.close()


STORE = ("import json, sys; from traffic.config import load_config; "
         "from traffic.store import open_site_store; "
         "c = load_config(sys.argv[1], environ={}, system_path=None); "
         "store = open_site_store(c, create=True); ")
READ_HELD = STORE + "print('held=' + json.loads(store.get_meta('keeper.state'))['held'])"
WRITE_UP = STORE + "store.set_meta('keeper.state', json.dumps({'link': 'up', 'since': 42}))"


def test_disconnect_holds_the_keeper_before_its_command_runs(tmp_path: Path) -> None:
    """The keeper must not see the link go down and redial while ``disconnect`` runs."""
    config = setup(tmp_path, '["true"]', json.dumps(
        [sys.executable, "-c", READ_HELD, str(tmp_path / "traffic.toml")]))
    write_state(config, link="up", since=1)
    result = traffic(config, "disconnect")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "held=disconnected"


def test_connect_keeps_what_was_recorded_while_it_ran(tmp_path: Path) -> None:
    """The state is read after the connect command, not before: a finding made meanwhile
    (here by the command itself) is not overwritten."""
    config = setup(tmp_path, json.dumps([sys.executable, "-c", WRITE_UP,
                                         str(tmp_path / "traffic.toml")]), "[]")
    write_state(config, link="down", since=1, lock_until=9_999_999_999_999, step_fails=4)
    assert traffic(config, "connect").returncode == 0
    events, state = stored(config)
    assert (state["link"], state["since"], state["lock_until"], state["step_fails"]) == (
        "up", 42, 0, 1)
    assert state["attempt_at"] > 1
    assert [kind for kind, _ in events] == ["unlock", "attempt"]


def test_one_action_at_a_time(tmp_path: Path) -> None:
    log = tmp_path / "actions.log"
    script = f"echo start >> {log}; sleep 1; echo end >> {log}"
    config = setup(tmp_path, json.dumps(["sh", "-c", script]), "[]")
    write_state(config)
    commands = [subprocess.Popen([sys.executable, "-m", "cli", "--config", str(config),
                                  "connect"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, env=clean_env()) for _ in range(3)]
    outputs = [command.communicate(timeout=60) for command in commands]
    assert [command.returncode for command in commands] == [0, 0, 0], outputs
    assert log.read_text().split() == ["start", "end"] * 3
    assert any("waiting up to" in err for _, err in outputs)


def test_connect_gives_up_waiting_with_a_clear_message(tmp_path: Path) -> None:
    from collector.keeper import keeper_lock

    marker = tmp_path / "dialled"
    config = setup(tmp_path, json.dumps(["touch", str(marker)]), "[]",
                   'action_timeout = "1s"\ntimeout = "1s"\n')
    loaded = load_config(config, environ={}, system_path=None)
    with keeper_lock(loaded, wait_s=0) as locked:  # the keeper is in the middle of a check
        assert locked
        started = time.monotonic()
        result = traffic(config, "connect")
    assert 6 <= time.monotonic() - started < 20
    assert result.returncode == 1 and not marker.exists()
    assert result.stderr.splitlines() == [
        "traffic connect: the link is busy (a keeper check, or another connect or "
        "disconnect); waiting up to 7s for it to finish",
        "traffic connect: the link is still busy after 7s; nothing done, try again later"]


@pytest.mark.parametrize(("keeper", "message"), [
    ("enabled = true\nconnect = []", 'keeper.connect: name the command that brings the link up, '
     'such as ["pon", "provider"] (the keeper is enabled)'),
    ('need = 2\ntargets = ["127.0.0.1:9"]',
     "keeper.need: 2 is more than the 1 keeper.targets; no probe could succeed"),
    ('escalation = [{run = ["a"]}, {run = ["b"], after = 0}]',
     "keeper.escalation[1].after: expected a whole number from 1 to 1000, got 0"),
    ("escalation = [{run = []}]",
     'keeper.escalation[0].run: name the command this step runs, such as ["usb-reset", '
     '"12d1:1506"]'),
    ('escalation = [{run = "usb-reset 12d1:1506"}]',
     "keeper.escalation[0].run: expected an argument list such as [\"pon\", \"provider\"], "
     "not a shell string: 'usb-reset 12d1:1506'"),
])
def test_keeper_config_errors_are_one_line(tmp_path: Path, keeper: str, message: str) -> None:
    config = tmp_path / "traffic.toml"
    config.write_text(f"[keeper]\n{keeper}\n")
    for command in ("check-config", "connect"):
        result = traffic(config, command)
        assert (result.returncode, result.stderr) == (2, f"traffic: {config}: {message}\n")


def test_an_empty_connect_with_the_keeper_off_is_no_traceback(tmp_path: Path) -> None:
    config = setup(tmp_path, "[]", "[]").read_text().replace("enabled = true", "enabled = false")
    (tmp_path / "traffic.toml").write_text(config)
    result = traffic(tmp_path / "traffic.toml", "check-config")
    assert result.returncode == 0 and "Traceback" not in result.stderr
    result = traffic(tmp_path / "traffic.toml", "connect")
    assert result.returncode == 1 and "nothing to run: the command is empty" in result.stdout


def test_status_dates_a_rest_that_ends_on_another_day(tmp_path: Path) -> None:
    from traffic.report import keeper_text

    tz = ZoneInfo("Europe/Stockholm")
    now = int(datetime(2026, 11, 23, 23, 50, tzinfo=tz).timestamp() * 1000)
    keeper = {"link": "down", "since": now - 60_000, "held": "", "checked_at": now,
              "evidence": "ppp0 is not there"}
    tomorrow = keeper_text({**keeper, "lock_until": now + 23 * 60_000}, now, tz)
    today = keeper_text({**keeper, "lock_until": now + 5 * 60_000}, now, tz)
    assert "resting after failed attempts until 24 Nov 00:13 " in tomorrow
    assert "resting after failed attempts until 23:55 " in today


def alive(group: int) -> list[str]:
    """The processes of a process group that are not dead (zombies wait for a reaper)."""
    deadline = time.monotonic() + 5
    while True:
        found = [stat.read_text() for stat in Path("/proc").glob("[0-9]*/stat")
                 if _group_and_state(stat) == (group, True)]
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def _group_and_state(stat: Path) -> tuple[int, bool]:
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return -1, False
    return int(fields[2]), fields[0] != "Z"


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGHUP, 129),
                                                (signal.SIGTERM, 143)])
def test_a_signal_kills_the_action_and_records_it(tmp_path: Path, signum: int,
                                                  status: int) -> None:
    """Ctrl-C or a dropped SSH session must not leave the connect command running without
    the keeper lock and its time limit."""
    from collector.keeper import keeper_lock

    pidfile = tmp_path / "pid"
    script = f"echo $$ > {pidfile}.tmp; mv {pidfile}.tmp {pidfile}; sleep 33 & sleep 34"
    config = setup(tmp_path, json.dumps(["sh", "-c", script]), "[]")
    command = subprocess.Popen([sys.executable, "-m", "cli", "--config", str(config),
                                "connect"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=clean_env())
    deadline = time.monotonic() + 30
    while not pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    group = int(pidfile.read_text())
    command.send_signal(signum)
    out, err = command.communicate(timeout=10)
    assert command.returncode == status, (out, err)
    assert not alive(group)
    events, _ = stored(config)
    attempt = events[-1][1]
    assert events[-1][0] == "attempt" and attempt["interrupted"] is True
    name = signal.Signals(signum).name
    assert attempt["output"].endswith(f"(killed: traffic connect got {name})")
    assert out.startswith(f"sh -c {script}: interrupted")
    with keeper_lock(load_config(config, environ={}, system_path=None), wait_s=0) as locked:
        assert locked


def test_connect_over_the_quota_is_exempt_after_a_hand_disconnect(tmp_path: Path) -> None:
    """Quota hold, ``traffic disconnect``, ``traffic connect``: the keeper must not take the
    link down again at its next check because the limit is still spent."""
    from collector.keeper import KeeperState, policy_for
    from traffic.counters import Delta

    config = setup(tmp_path, '["true"]', '["true"]',
                   'enforce_quota = true\n[quota]\nmonthly = "1 MB"\n')
    loaded = load_config(config, environ={}, system_path=None)
    now = int(time.time() * 1000)
    store = open_site_store(loaded, create=True)
    store.add([Delta("kernel:ppp0", now - 65_000, now - 60_000, 2_000_000, 0)], {})
    store.close()
    write_state(config, link="down", since=1, held="quota", lock_until=now + 86_400_000,
                quota_limit="monthly")
    assert traffic(config, "disconnect").returncode == 0
    assert traffic(config, "connect").returncode == 0
    _, saved = stored(config)
    assert saved["held"] == "" and saved["quota_override_until"] > now
    state = KeeperState(**saved)
    decision = policy_for(loaded).decide(state, now + 1_000, True, True, now + 86_400_000)
    assert [event.kind for event in decision.events] == ["up"] and decision.action is None


PEAK_OF_CHILD = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stdout.write(f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}\\n{done.returncode}\\n"
                 + done.stdout)
"""


def connect_peak(config: Path) -> tuple[int, int, str]:
    """Peak RSS (bytes) of a `traffic connect` process, its exit status and its output."""
    measured = subprocess.run(
        [sys.executable, "-c", PEAK_OF_CHILD, sys.executable, "-m", "cli", "--config",
         str(config), "connect"], capture_output=True, text=True, env=clean_env(), timeout=120)
    peak, status, output = measured.stdout.split("\n", 2)
    return int(peak) * 1024, int(status), output


def test_connect_printing_300_mb_stays_small_and_keeps_head_tail_and_count(
        tmp_path: Path) -> None:
    (tmp_path / "small").mkdir()
    small = setup(tmp_path / "small", '["echo", "dialled"]', "[]")
    script = ("echo START password=hunter2; yes 0123456789abcdef | head -c 300000000; "
              "echo; echo END pin=4321")
    large_dir = tmp_path / "large"
    large_dir.mkdir()
    large = setup(large_dir, json.dumps(["sh", "-c", script]), "[]")
    base_peak, base_status, _ = connect_peak(small)
    peak, status, output = connect_peak(large)
    assert (base_status, status) == (0, 0)
    assert peak - base_peak < 30 * 1024 * 1024, (base_peak, peak)
    assert output.startswith("sh -c echo START password=********; yes")
    assert "\nSTART password=********\n0123456789abcdef\n" in output
    assert "\n… 300 MB left out …\n" in output
    assert output.endswith("\nEND pin=********\n")
    assert "hunter2" not in output and "4321" not in output
    events, _ = stored(large)
    attempt = events[-1][1]
    assert attempt["ok"] and "… 300 MB left out …" in attempt["output"]
    assert len(attempt["output"]) < 9000

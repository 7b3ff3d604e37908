"""``traffic connect`` and ``traffic disconnect`` as the person at the box uses them."""

import json
import subprocess
import sys
import time
from pathlib import Path

from tests.stack import clean_env
from traffic.config import load_config
from traffic.store import open_store


def setup(tmp_path: Path, connect: str, disconnect: str) -> Path:
    config = tmp_path / "traffic.toml"
    config.write_text(f'[store]\nurl = "sqlite://{tmp_path}/traffic.db"\n'
                      f'[collector]\nruntime_dir = "{tmp_path}/run"\n'
                      f'[keeper]\nenabled = true\ntargets = ["127.0.0.1:9"]\n'
                      f"connect = {connect}\ndisconnect = {disconnect}\n")
    return config


def traffic(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "traffic", "--config", str(config), *args],
                          capture_output=True, text=True, env=clean_env(), timeout=60)


def stored(config: Path) -> tuple[list, dict]:
    loaded = load_config(config, environ={}, system_path=None)
    store = open_store(loaded.store.url, loaded.timezone)
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
    run.mkdir()
    now = int(time.time() * 1000)
    (run / "home.keeper.json").write_text(json.dumps({
        "link": "down", "since": now - 60_000, "step": 0, "step_fails": 2, "lock_until": 0,
        "held": "", "checked_at": now - 5000, "interface": "ppp0",
        "evidence": "ppp0 is not there"}))
    text = traffic(config, "status").stdout
    assert "  link        down since " in text and "(checked 5s ago: ppp0 is not there)" in text
    assert json.loads(traffic(config, "status", "--json").stdout)["keeper"]["step_fails"] == 2

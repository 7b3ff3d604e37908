"""``traffic status`` with a router beside the box: the comparisons, the router's line and its
outages, in text and in JSON. The store and the sources document are written as the collector
writes them."""

import json
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.published import publish_sources
from traffic.counters import CounterState, Delta

TZ = ZoneInfo("Europe/Stockholm")
GB = 10**9
MB = 10**6
GAUGES = {"rsrp": -92, "sinr": 14, "rsrq": -11, "operator": "Telia", "network_type": "LTE",
          "connection": "connected", "sim": "ready", "roaming": "no",
          "month_rx": 14 * GB, "month_tx": GB}


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cli", "--config", str(tmp_path / "traffic.toml"), *args],
        capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})


def publish(tmp_path: Path, now: int, **router: object) -> None:
    publish_sources(tmp_path / "run" / "home.realtime", now, {
        "kernel": {"type": "kernel", "label": "this box", "billed": True, "read_at": now,
                   "failing_since": None, "error": "", "refused": False, "gauges": {}},
        "router": {"type": "hilink", "label": "router", "billed": False, "read_at": now,
                   "failing_since": None, "error": "", "refused": False,
                   "gauges": dict(GAUGES), **router}})


@pytest.fixture
def now(tmp_path: Path) -> int:
    """ppp0 (billed) counted 12.29 GB a minute ago, the router 12.31 GB."""
    from traffic.store import open_store

    (tmp_path / "router-password").write_text("not-the-password\n")
    (tmp_path / "traffic.toml").write_text(
        f'timezone = "Europe/Stockholm"\n[store]\nurl = "sqlite://{tmp_path}/traffic.db"\n'
        f'[collector]\nruntime_dir = "{tmp_path}/run"\n'
        '[quota]\nmonthly = "40 GB"\nbilling_day = 1\n'
        '[[sources]]\ntype = "kernel"\ninterfaces = ["ppp0"]\n'
        '[[sources]]\ntype = "hilink"\nname = "router"\n'
        f'password_file = "{tmp_path}/router-password"\n')
    at = time.time_ns() // 10**6 - 60_000
    store = open_store(f"sqlite://{tmp_path}/traffic.db", TZ)
    store.add([Delta("kernel:ppp0", at, at + 5000, 12 * GB, 290 * MB),
               Delta("router:wan", at, at + 5000, 12 * GB, 310 * MB)],
              {"kernel:ppp0": CounterState("boot/1", at + 5000, 0, 0)})
    store.close()
    publish(tmp_path, at + 5000)
    return at + 5000


def test_status_compares_the_counts_and_shows_the_router(now: int, tmp_path: Path) -> None:
    result = run(tmp_path, "status")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "  total       12.3 GB of 40 GB (30.7%)" in lines  # the billed ppp0 alone
    start = lines.index("  compared    router 12.31 GB, this box 12.29 GB (0.02 GB apart)")
    assert lines[start:start + 3] == [
        "  compared    router 12.31 GB, this box 12.29 GB (0.02 GB apart)",
        "  compared    router's own month 15.00 GB, this box 12.29 GB (2.71 GB apart)",
        "  router      Telia, LTE, signal fair (RSRP -92 dBm, SINR 14 dB)"]


def test_status_says_the_router_is_not_answering(now: int, tmp_path: Path) -> None:
    publish(tmp_path, now, failing_since=now - 30_000,
            error="http://192.168.8.1/: connection refused")
    lines = run(tmp_path, "status").stdout.splitlines()
    since = datetime.fromtimestamp((now - 30_000) / 1000, TZ).strftime("%H:%M")
    assert (f"  router      not answering since {since}: http://192.168.8.1/: connection "
            "refused") in lines
    assert not any("signal" in line for line in lines)  # its last signal would be stale


def test_status_says_the_router_refused_the_login(now: int, tmp_path: Path) -> None:
    publish(tmp_path, now, failing_since=now - 30_000, refused=True,
            error="login refused: password wrong (108002)")
    lines = run(tmp_path, "status").stdout.splitlines()
    assert ("  router      login refused: check sources[1].password_file; no more logins "
            "until the settings change") in lines
    assert "not-the-password" not in "\n".join(lines)


def test_status_json_has_the_sources(now: int, tmp_path: Path) -> None:
    result = run(tmp_path, "status", "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert (status["rx"], status["tx"]) == (12 * GB, 290 * MB)
    assert [(item["what"], item["total"], item["difference"]) for item in status["beside"]] == [
        ("counter", 12_310 * MB, 20 * MB), ("router month", 15 * GB, 2_710 * MB)]
    router = status["sources"]["router"]
    assert (router["state"], router["label"], router["billed"], router["quality"]) == (
        "up", "router", False, "fair")
    assert router["gauges"] == GAUGES and router["read_at"] == now
    assert status["sources"]["kernel"]["state"] == "up"
    assert status["sources"]["kernel"]["quality"] is None


def test_status_before_the_collector_has_read_the_sources(now: int, tmp_path: Path) -> None:
    (tmp_path / "run" / "home.realtime").unlink()
    text = run(tmp_path, "status").stdout
    assert "  router  " not in text and "compared    router 12.31 GB" in text
    status = json.loads(run(tmp_path, "status", "--json").stdout)
    assert {name: entry["state"] for name, entry in status["sources"].items()} == {
        "kernel": "unknown", "router": "unknown"}
    assert [item["what"] for item in status["beside"]] == ["counter"]  # no month figures yet


def test_readers_take_each_keys_role_from_the_store(now: int, tmp_path: Path) -> None:
    """A reader whose config does not name the router (as on another host) still shows the
    router's counts beside the bill, as the collector typed them, and never in it."""
    from traffic.store import BILLED, UNBILLED, Key, open_store

    store = open_store(f"sqlite://{tmp_path}/traffic.db", TZ)
    store.set_keys([Key("kernel:ppp0", "kernel", "ppp0", BILLED),
                    Key("router:wan", "router", "wan", UNBILLED)])
    store.close()
    text = (tmp_path / "traffic.toml").read_text()
    (tmp_path / "reader.toml").write_text(text[:text.index('[[sources]]\ntype = "hilink"')])
    result = subprocess.run(
        [sys.executable, "-m", "cli", "--config", str(tmp_path / "reader.toml"), "status"],
        capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert "  total       12.3 GB of 40 GB (30.7%)" in result.stdout.splitlines()
    assert "  compared    router 12.31 GB, this box 12.29 GB (0.02 GB apart)" in result.stdout


def test_a_source_that_left_the_config_is_retired_by_its_collector(now: int,
                                                                   tmp_path: Path) -> None:
    from traffic.store import BILLED, RETIRED, open_store

    text = (tmp_path / "traffic.toml").read_text()
    (tmp_path / "traffic.toml").write_text(text[:text.index('[[sources]]\ntype = "hilink"')])
    assert run(tmp_path, "collect", "--once").returncode == 0
    store = open_store(f"sqlite://{tmp_path}/traffic.db", TZ)
    try:
        roles = {key.key: key.role for key in store.key_types()}
    finally:
        store.close()
    assert roles == {"kernel:ppp0": BILLED, "router:wan": RETIRED}
    lines = run(tmp_path, "status").stdout.splitlines()
    assert "  total       12.3 GB of 40 GB (30.7%)" in lines
    assert not [line for line in lines if "router 12.31 GB" in line]

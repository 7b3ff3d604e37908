"""``traffic status --site`` and ``traffic report --site``: another site of the same store, read
with the settings its own collector published (its time zone, billing day and limit)."""

import json
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.collector_process import HostCollector, wait_until
from traffic.counters import Delta
from traffic.periods import billing_period, bucket_start, to_ms
from traffic.runtime import read_document
from traffic.store import open_store

NEW_YORK = ZoneInfo("America/New_York")
GB = 10**9


def traffic(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin"})


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """The home box's config, and the cabin's collector run once into the same store: it
    published the cabin's settings; then the cabin's 2 GB two minutes ago."""
    shared = (f'[store]\nurl = "sqlite://{tmp_path}/traffic.db"\n'
              f'[collector]\nruntime_dir = "{tmp_path}/run"\n')
    home = tmp_path / "home.toml"
    home.write_text(f'timezone = "Europe/Stockholm"\n{shared}[quota]\nmonthly = "40 GB"\n')
    cabin = tmp_path / "cabin.toml"
    cabin.write_text(f'site = "cabin"\ntimezone = "America/New_York"\n{shared}'
                     '[quota]\nmonthly = "5 GB"\nbilling_day = 15\n'
                     '[[sources]]\ntype = "kernel"\ninterfaces = ["lo"]\n')
    collected = traffic(cabin, "collect", "--once")
    assert collected.returncode == 0, collected.stderr
    store = open_store(f"sqlite://{tmp_path}/traffic.db", NEW_YORK, site="cabin")
    at = to_ms(datetime.now(NEW_YORK)) - 120_000
    store.add([Delta("kernel:lo", at, at + 60_000, 2 * GB, GB // 10)], {})
    store.close()
    return home


def test_status_of_another_site_uses_its_own_settings(home: Path) -> None:
    result = traffic(home, "status", "--site", "cabin", "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    start, end = billing_period(status["now"], 15, NEW_YORK)
    assert (status["period_start"], status["period_end"]) == (start, end)
    assert status["period_start_iso"].endswith(("-05:00", "-04:00"))
    assert (status["rx"], status["tx"], status["limit"]) == (2 * GB, GB // 10, 5 * GB)
    text = traffic(home, "status", "--site=cabin").stdout
    assert "Traffic at cabin" in text and "of 5 GB" in text
    own = json.loads(traffic(home, "status", "--json").stdout)
    assert (own["rx"], own["limit"]) == (0, 40 * GB)


def test_report_of_another_site_has_its_local_days(home: Path) -> None:
    result = traffic(home, "report", "--site", "cabin", "--resolution", "day", "--json")
    assert result.returncode == 0, result.stderr
    [day] = [point for point in json.loads(result.stdout)["points"] if point["rx"]]
    assert day["rx"] == 2 * GB
    assert day["start"] == bucket_start("day", to_ms(datetime.now(NEW_YORK)) - 120_000,
                                        NEW_YORK)


@pytest.mark.parametrize("command", ["status", "report"])
def test_an_unknown_site_lists_the_known_ones(home: Path, command: str) -> None:
    result = traffic(home, command, "--site", "nowhere")
    assert result.returncode == 2
    assert result.stderr == ("traffic: --site: no site 'nowhere' in the store (known: cabin, "
                             "home)\n")
    assert result.stdout == ""
    bad = traffic(home, command, "--site", "a/b")
    assert bad.returncode == 2
    assert bad.stderr.startswith("traffic: --site: expected letters, digits")


def test_the_collector_publishes_its_settings_again_when_they_vanish(
        collect: Callable[[str], HostCollector], tmp_path: Path) -> None:
    """The SQLite store keeps them on the RAM disk, which a reboot (or a clean-up) empties
    while the collector runs on: its next save puts them back."""
    collector = collect('[quota]\nbilling_day = 15\n[[sources]]\ntype = "kernel"\n'
                        'interfaces = ["lo"]\n')
    collector.config.write_text('site = "cabin"\ntimezone = "America/New_York"\n'
                                + collector.config.read_text())
    settings = tmp_path / "run" / "cabin.settings"
    collector.start()
    try:
        wait_until(settings.exists, "the settings published at start", timeout=30)
        settings.unlink()
        wait_until(settings.exists, "the settings published again", timeout=10)
        assert read_document(settings)["quota"]["billing_day"] == 15
    finally:
        collector.stop()

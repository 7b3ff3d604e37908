"""Where the collector publishes its latest rates."""

import marshal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import make_config
from traffic.config import load_config
from traffic.published import KEEPER, REALTIME, read_keeper, read_realtime
from traffic.runtime import _on_ram_disk, keeper_path, realtime_path, runtime_dir
from traffic.store import open_site_store
from web import create_app


def test_runtime_file_lives_on_a_ram_disk(tmp_path: Path) -> None:
    assert runtime_dir(make_config(tmp_path)) == tmp_path / "run"  # as configured
    default = runtime_dir(load_config(environ={}, system_path=None))
    assert _on_ram_disk(default.parent), default


GOOD_REALTIME = {"site": "home", "interval_s": 5.0, "updated": 1_795_000_000_000,
                 "read_at": 1_795_000_000_000, "points": [[1_795_000_000_000, 10.5, 2.0]]}
GOOD_KEEPER = {"link": "up", "since": 1_795_000_000_000, "step": 0, "step_fails": 0,
               "lock_until": 0, "held": "", "quota_override_until": 0,
               "checked_at": 1_795_000_000_000, "interface": "ppp0", "evidence": "ok"}


@pytest.mark.parametrize(("name", "document"), [
    ("realtime", {**GOOD_REALTIME, "points": "x"}),
    ("realtime", {**GOOD_REALTIME, "points": [[1, 2]]}),
    ("realtime", {**GOOD_REALTIME, "read_at": "x"}),
    ("realtime", {**GOOD_REALTIME, "read_at": 1e30}),
    ("realtime", {**GOOD_REALTIME, "updated": 10**30}),
    ("realtime", {**GOOD_REALTIME, "interval_s": None}),
    ("realtime", [1, 2, 3]),
    ("keeper", {**GOOD_KEEPER, "since": "yesterday"}),
    ("keeper", {**GOOD_KEEPER, "link": 3}),
    ("keeper", {**GOOD_KEEPER, "lock_until": 1e300}),
    ("keeper", "up"),
    ("realtime", b"{not what a collector writes}"),
    ("keeper", marshal.dumps(GOOD_KEEPER)[:-3]),
    ("keeper", b""),
])
def test_a_runtime_file_not_written_by_a_collector_is_ignored(
        tmp_path: Path, name: str, document: object) -> None:
    config = make_config(tmp_path, "[keeper]\nenabled = true\nconnect = [\"true\"]\n")
    store = open_site_store(config, create=True)
    path = realtime_path(config) if name == "realtime" else keeper_path(config)
    path.parent.mkdir(parents=True)
    path.write_bytes(document if isinstance(document, bytes) else marshal.dumps(document))
    assert (read_realtime(store), read_keeper(store, config)) == (None, None)
    store.close()

    client = create_app(config).test_client()
    for url in ("/", "/rt", "/api/v1/usage", "/api/v1/status", "/api/v1/realtime", "/metrics"):
        assert client.get(url).status_code == 200, url
    status = subprocess.run([sys.executable, "-m", "cli", "--config",
                             str(tmp_path / "traffic.toml"), "--set",
                             f"store.url=sqlite://{tmp_path}/traffic.db", "--set",
                             f'collector.runtime_dir="{tmp_path}/run"', "status"],
                            capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert status.returncode == 0 and not status.stderr, status.stderr


def test_what_the_collector_publishes_is_read_through_the_store(tmp_path: Path) -> None:
    config = make_config(tmp_path, "[keeper]\nenabled = true\nconnect = [\"true\"]\n")
    store = open_site_store(config, create=True)
    store.publish(REALTIME, GOOD_REALTIME)
    store.publish(KEEPER, GOOD_KEEPER)
    assert (read_realtime(store), read_keeper(store, config)) == (GOOD_REALTIME, GOOD_KEEPER)
    assert realtime_path(config).exists() and keeper_path(config).exists()  # on the RAM disk
    store.close()

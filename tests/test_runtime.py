"""Where the collector publishes its latest rates."""

import marshal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import make_config
from traffic.config import load_config
from traffic.published import KEEPER, REALTIME, read_keeper, read_realtime
from traffic.runtime import (
    StatusFile,
    _on_ram_disk,
    keeper_path,
    read_document,
    realtime_path,
    runtime_dir,
    write_atomically,
)
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
    if isinstance(document, bytes):
        path.write_bytes(document)
    else:
        write_atomically(path, document)
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


READER = """
import sys
from traffic.runtime import read_document
versions = set()
for _ in range(int(sys.argv[2])):
    document = read_document(sys.argv[1])
    if document["points"] != [document["version"]] * document["length"]:
        sys.exit(f"torn: version {document['version']}")
    versions.add(document["version"])
print(len(versions))
"""


def test_a_reader_never_sees_a_document_half_rewritten(tmp_path: Path) -> None:
    """The collector rewrites its realtime file in place every poll while any number of
    readers read it: each read is one whole version, of whatever length."""
    path = tmp_path / "home.realtime"
    status_file = StatusFile(str(path))
    status_file.write({"version": 0, "length": 0, "points": []})
    reader = subprocess.Popen([sys.executable, "-c", READER, str(path), "3000"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    version = 0
    while reader.poll() is None:
        version += 1
        length = (version * 7919) % 3000
        status_file.write({"version": version, "length": length, "points": [version] * length})
        time.sleep(0.0002)  # a collector writes every few seconds: this is 1000 times as often
    out, err = reader.communicate()
    status_file.close()
    assert reader.returncode == 0, err
    assert int(out) > 10, "the reader should have seen the file change under it"


def test_a_status_file_removed_is_made_again_and_counts_on(tmp_path: Path) -> None:
    path = tmp_path / "run" / "home.save"
    first = StatusFile(str(path))
    first.write({"saved_at": 1})
    first.write({"saved_at": 2})
    path.unlink()
    first.write({"saved_at": 3})  # the folder was cleaned: the next write makes it again
    assert read_document(path) == {"saved_at": 3}
    first.close()
    sequence = int.from_bytes(path.read_bytes()[:8], "little")
    second = StatusFile(str(path))  # a collector started again goes on from the number there
    second.write({"saved_at": 4})
    second.close()
    assert int.from_bytes(path.read_bytes()[:8], "little") == sequence + 2
    assert read_document(path) == {"saved_at": 4}


def test_a_writer_killed_while_writing_leaves_no_document_until_the_next_one(
        tmp_path: Path) -> None:
    path = tmp_path / "home.realtime"
    write_atomically(path, GOOD_REALTIME)
    with path.open("r+b") as handle:
        handle.write((7).to_bytes(8, "little"))  # odd: stopped between its writes
    with pytest.raises(ValueError, match="being rewritten"):
        read_document(path)
    restarted = StatusFile(str(path))
    restarted.write(GOOD_REALTIME)
    restarted.close()
    assert read_document(path) == GOOD_REALTIME

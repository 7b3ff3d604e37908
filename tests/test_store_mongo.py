"""What only the MongoDB backend has to say: how it refuses a server it cannot use."""

import socket
import subprocess
from pathlib import Path

import pytest

from tests.conftest import STOCKHOLM
from tests.mongo_server import database_url, running_server
from traffic.store import StoreError
from traffic.store.mongo import MongoStore, masked_url


def test_a_standalone_server_is_refused_in_one_line_that_says_what_to_do(
        tmp_path: Path) -> None:
    server = running_server(tmp_path, standalone=True)
    base = next(server)
    try:
        with pytest.raises(StoreError) as refused:
            MongoStore(database_url(base), STOCKHOLM, {})
        message = str(refused.value)
        assert "\n" not in message and "standalone MongoDB server" in message
        assert "--replSet" in message and "rs.initiate()" in message
    finally:
        server.close()


def test_the_keys_of_a_database_from_before_counted_are_known(mongodb_base: str) -> None:
    """A database whose rollups an older version wrote names none of their keys in
    ``counted``: a reader sees them all the same, and the first store that may create fills
    ``counted`` from them."""
    from pymongo import MongoClient

    url = database_url(mongodb_base)
    with MongoClient(url) as client:
        client.get_default_database().rollups.insert_many(
            [{"site": "home", "key": key, "resolution": 3, "bucket": 1_790_000_000_000,
              "rx": 7, "tx": 1} for key in ("kernel:wan0", "router:wan")])
    reader = MongoStore(url, STOCKHOLM, {}, create=False)
    assert reader.known_keys() == ["kernel:wan0", "router:wan"]
    writer = MongoStore(url, STOCKHOLM, {})
    assert sorted(doc["key"] for doc in writer.db.counted.find({"site": "home"})) == [
        "kernel:wan0", "router:wan"]
    assert writer.known_keys() == reader.known_keys() == ["kernel:wan0", "router:wan"]
    assert writer.first_bucket("month") == 1_790_000_000_000


def test_an_unreachable_server_is_said_with_the_password_masked() -> None:
    url = "mongodb://family:hunter2@127.0.0.1:9/traffic?serverSelectionTimeoutMS=300"
    with pytest.raises(StoreError) as refused:
        MongoStore(url, STOCKHOLM, {})
    message = str(refused.value)
    assert message.startswith("store.url: cannot use mongodb://family:********@127.0.0.1:9/")
    assert "hunter2" not in message and "\n" not in message


def test_masked_url_keeps_everything_but_the_password() -> None:
    assert masked_url("mongodb+srv://u:p%40ss@db.example/traffic") == (
        "mongodb+srv://u:********@db.example/traffic")
    assert masked_url("mongodb://db:27017/traffic") == "mongodb://db:27017/traffic"
    assert masked_url("mongodb://db:27017/traffic?appName=a@b") == (
        "mongodb://db:27017/traffic?appName=a@b")


@pytest.mark.parametrize("url", ["mongodb://family:p@ss@db:99999/traffic",
                                 "mongodb://db:notaport/traffic"])
def test_a_malformed_url_is_one_line_not_a_traceback(url: str) -> None:
    with pytest.raises(StoreError) as refused:
        MongoStore(url, STOCKHOLM, {})
    assert str(refused.value).startswith("store.url: cannot use mongodb://")
    assert "\n" not in str(refused.value) and "p@ss" not in str(refused.value)


def test_one_collector_per_site_and_a_stale_claim_is_taken_over(mongodb_base: str) -> None:
    url = database_url(mongodb_base)
    first, second, cabin = (MongoStore(url, STOCKHOLM, {}), MongoStore(url, STOCKHOLM, {}),
                            MongoStore(url, STOCKHOLM, {}, site="cabin"))
    try:
        first.claim_writer()
        first.claim_writer()  # its own claim, again (a restart of the same process)
        cabin.claim_writer()  # another site is another collector's
        first.db.writers.update_one({"_id": "home"}, {"$set": {"writer": "pi pid 1"}})
        with pytest.raises(StoreError, match=r"^store\.url: another collector \(pi pid 1\) "
                                             r"is already writing site 'home' to mongodb://"):
            second.claim_writer()
        first.db.writers.update_one({"_id": "home"}, {"$set": {"seen": 0}})
        second.claim_writer()  # a claim not renewed for a quarter of an hour
        gone = subprocess.Popen(["true"])
        gone.wait()
        first.db.writers.update_one({"_id": "home"}, {"$set": {
            "writer": f"{socket.gethostname()} pid {gone.pid}"}})
        first.claim_writer()  # a collector of this host that is not running any more
        first.close()
        assert second.db.writers.find_one({"_id": "home"}) is None  # given up on close
    finally:
        for store in (first, second, cabin):
            store.close()


def test_readers_of_an_unreachable_server_answer_at_once(tmp_path: Path) -> None:
    """The web app answers 503 (JSON for the API, the error page for a page) within a couple
    of seconds, and ``traffic status`` says so in one line, instead of hanging."""
    import sys
    import time

    from tests.conftest import make_config
    from tests.stack import free_port
    from web import create_app

    url = f"mongodb://family:hunter2@127.0.0.1:{free_port()}/traffic?directConnection=true"
    config = make_config(tmp_path, f'[store]\nurl = "{url}"\n')
    client = create_app(config).test_client()
    began = time.monotonic()
    api = client.get("/api/v1/usage")
    page = client.get("/")
    assert time.monotonic() - began < 8
    assert api.status_code == page.status_code == 503
    assert api.json["error"] == "Store Unavailable" and "hunter2" not in api.json["detail"]
    assert b"<html" in page.data.lower() and b"hunter2" not in page.data
    status = subprocess.run([sys.executable, "-m", "cli", "--config",
                             str(tmp_path / "traffic.toml"), "--set", f"store.url={url}",
                             "status"], capture_output=True, text=True, timeout=30)
    assert status.returncode == 2 and status.stdout == ""
    assert status.stderr.startswith("traffic: store.url: cannot use mongodb://family:********@")
    assert status.stderr.count("\n") == 1 and "hunter2" not in status.stderr


def test_the_collector_waits_for_a_server_that_is_not_up_yet(tmp_path: Path) -> None:
    """At boot the collector may start before MongoDB: it says so once and waits, rather than
    exiting (supervisor would give up on it after three quick exits)."""
    import signal
    import sys
    import time

    from tests.stack import free_port

    port = free_port()
    (tmp_path / "traffic.toml").write_text(
        f'[store]\nurl = "mongodb://127.0.0.1:{port}/traffic?directConnection=true"\n'
        f'[collector]\ninterval = "200ms"\nruntime_dir = "{tmp_path}/run"\n'
        f'state_dir = "{tmp_path}/state"\n'
        '[[sources]]\ntype = "kernel"\ninterfaces = ["lo"]\n')
    log = tmp_path / "collector.log"
    collector = subprocess.Popen(
        [sys.executable, "-m", "cli", "--config", str(tmp_path / "traffic.toml"), "collect"],
        stdout=subprocess.DEVNULL, stderr=log.open("w"))
    try:
        deadline = time.monotonic() + 20
        while "trying again every 10s" not in log.read_text():
            assert collector.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        server = running_server(tmp_path, port=port)
        base = next(server)
        try:
            store = MongoStore(f"{base}/traffic?directConnection=true", STOCKHOLM, {})
            deadline = time.monotonic() + 30
            while store.published("realtime") is None:  # it polls, and publishes
                assert collector.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
            assert "the store answers again" in log.read_text()
            collector.send_signal(signal.SIGTERM)
            assert collector.wait(30) == 0
            assert store.known_keys() == ["kernel:lo"]
            store.close()
        finally:
            server.close()
    finally:
        collector.kill()
        collector.wait()
    assert log.read_text().count("trying again every 10s") == 1

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

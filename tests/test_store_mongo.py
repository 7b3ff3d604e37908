"""What only the MongoDB backend has to say: how it refuses a server it cannot use."""

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

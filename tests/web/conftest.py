from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import STOCKHOLM, make_config
from traffic.counters import CounterState, Delta
from traffic.periods import to_ms
from traffic.store import open_store
from web import create_app

NOW = to_ms(datetime(2026, 11, 3, 12, 0, tzinfo=STOCKHOLM))
"""Inside the billing period 8 Oct .. 8 Nov 2026, which crosses the end of summer time."""


def seed(app: Flask) -> None:
    config = app.config["TRAFFIC"]
    store = open_store(config.store.url, config.timezone)
    before = to_ms(datetime(2026, 10, 7, 23, 0, tzinfo=STOCKHOLM))        # previous period
    dst_night = to_ms(datetime(2026, 10, 25, 2, 30, tzinfo=STOCKHOLM))    # CEST 02:30
    today = to_ms(datetime(2026, 11, 3, 9, 0, tzinfo=STOCKHOLM))
    store.add([Delta("kernel:ppp0", before, before + 5000, 7_000_000_000, 1),
               Delta("kernel:ppp0", dst_night, dst_night + 5000, 3_000_000_000, 300_000_000),
               Delta("kernel:ppp0", dst_night + 3_600_000, dst_night + 3_605_000,
                     2_000_000_000, 200_000_000),                         # CET 02:30
               Delta("kernel:ppp0", today, today + 5000, 1_000_000_000, 100_000_000)],
              {"kernel:ppp0": CounterState("boot/1", NOW - 4000, 0, 0)})
    store.close()


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    config = make_config(tmp_path, 'timezone = "Europe/Stockholm"\n[quota]\n'
                                   'monthly = "40 GB"\nbilling_day = 8\ndaily = "2 GB"\n')
    application = create_app(config, clock=lambda: NOW)
    application.config["TESTING"] = True
    seed(application)
    yield application


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()

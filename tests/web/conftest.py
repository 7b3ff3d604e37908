import re
from collections.abc import Iterator
from datetime import datetime
from html import unescape
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import STOCKHOLM, make_config
from tests.published import publish_sources
from traffic.config import Config, load_config
from traffic.counters import CounterState, Delta
from traffic.periods import to_ms
from traffic.runtime import realtime_path
from traffic.store import Event, GaugeSample, open_site_store
from web import create_app

NOW = to_ms(datetime(2026, 11, 3, 12, 0, tzinfo=STOCKHOLM))
"""Inside the billing period 8 Oct .. 8 Nov 2026, which crosses the end of summer time."""


def seed(app: Flask) -> None:
    config = app.config["TRAFFIC"]
    store = open_site_store(config, create=True)
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


MINUTE = 60_000
THRESHOLD_80 = ("80% of the monthly limit is used: 32 GB of 40 GB, 5 days left. 1.6 GB a day "
                "keeps you inside.")
HOOK_ERROR = "Failed to send JSON POST notification: Internal server error., error=500."


def seed_alerts(config: Config) -> dict[str, int]:
    """Alerts as the collector records them, through the store's own calls: at 08:00 the daily
    summary, given up at once (its notify entry was removed from the config); at 11:30 the link
    down, its message cut short by a crash (unconfirmed); at 11:55 the 50% and 80% thresholds
    at one check (50% quiet), 80% sent by e-mail and failing three times to a JSON hook (tried
    again at 12:07:33); at 11:59:55 heavy use, not sent yet. Returns the instants."""
    store = open_site_store(config, create=True)
    at = {"summary": NOW - 240 * MINUTE, "link_down": NOW - 30 * MINUTE,
          "thresholds": NOW - 5 * MINUTE, "burst": NOW - 5000}
    summary = f"daily_summary:{NOW - 720 * MINUTE}"
    store.raise_alert(summary, Event(at["summary"], "alert", {
        "rule": "daily_summary", "text": "Yesterday: 1.4 GB. 6.6 GB of 40 GB used, 5 days left: "
                                         "6.7 GB a day keeps you inside.",
        "site": "home", "mark": summary}), [(2, "Daily summary", "Yesterday: 1.4 GB. ...")])
    [gone] = store.due_deliveries(at["summary"])
    store.delivery_ended(gone.id, Event(at["summary"] + 100, "alert_given_up", {
        "rule": "daily_summary", "mark": summary, "target": 2, "url": "",
        "error": "alerts.notify[2] is not configured any more", "attempts": 0}))
    down = f"link_down:{at['link_down'] - 12 * MINUTE}"
    store.raise_alert(down, Event(at["link_down"], "alert", {
        "rule": "link_down", "text": "The link has been down since 11:18 (12 minutes).",
        "site": "home", "mark": down}), [(0, "Link down", "The link has been down ...")])
    [cut] = store.due_deliveries(at["link_down"])
    store.delivery_started(cut.id, at["link_down"] + 1000)
    store.delivery_ended(cut.id, Event(at["link_down"] + 60_000, "alert_unconfirmed", {
        "rule": "link_down", "mark": down, "target": 0, "url": "mailtos://********",
        "error": "the collector stopped while it was being sent",
        "since": at["link_down"] + 1000}))
    start = "1791410400000"
    quiet = {"rule": "threshold", "text": "50% of the monthly limit is used: 20 GB of 40 GB, "
                                          "5 days left. 4 GB a day keeps you inside.",
             "site": "home", "mark": f"threshold:50:{start}", "quiet": True}
    store.raise_alert(quiet["mark"], Event(at["thresholds"], "alert", quiet), [])
    mark = f"threshold:80:{start}"
    store.raise_alert(mark, Event(at["thresholds"], "alert", {
        "rule": "threshold", "text": THRESHOLD_80, "site": "home", "mark": mark}),
        [(0, "80% of the limit used", THRESHOLD_80), (1, "80% of the limit used", THRESHOLD_80)])
    mail, hook = store.due_deliveries(at["thresholds"])
    base = {"rule": "threshold", "mark": mark}
    store.delivery_started(mail.id, at["thresholds"] + 1000)
    store.delivery_ended(mail.id, Event(at["thresholds"] + 2000, "alert_sent", {
        **base, "target": 0, "url": "mailtos://********", "attempts": 1}))
    retries = [(3000, 33_000), (33_000, 153_000), (153_000, 753_000)]  # 30 s, 2 min, 10 min
    for attempt, (tried, retry) in enumerate(retries, 1):
        store.delivery_started(hook.id, at["thresholds"] + tried)
        retry_at = at["thresholds"] + retry
        store.delivery_ended(hook.id, Event(at["thresholds"] + tried + 500, "alert_failed", {
            **base, "target": 1, "url": "json://********", "error": HOOK_ERROR,
            "attempt": attempt, "retry_at": retry_at}), retry_at=retry_at)
    burst = f"burst:{NOW - 60 * MINUTE}"
    store.raise_alert(burst, Event(at["burst"], "alert", {
        "rule": "burst", "text": "Heavy use: 1.2 GB in the hour from 11:00 (the alert is set "
                                 "at 1 GB an hour).", "site": "home", "mark": burst}),
        [(0, "Heavy use this hour", "Heavy use ...")])
    store.close()
    return at


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


ROUTER_TOML = """\
timezone = "Europe/Stockholm"
[quota]
monthly = "40 GB"
billing_day = 8
[[sources]]
type = "kernel"
interfaces = ["ppp0"]
[[sources]]
type = "hilink"
name = "router"
password_file = "/etc/traffic/router-password"
"""
"""The box counts ppp0 (billed) and reads the router beside it."""
FIVE_MIN = 300_000
HOUR = 3_600_000
GAP = (NOW - 3 * HOUR, NOW - 2 * HOUR)
"""The hour the router did not answer: no gauge was read."""
ROUTER_GAUGES = {"rsrp": -92, "rsrq": -11, "sinr": 14.5, "rssi": -65, "operator": "Telia",
                 "network_type": "LTE", "connection": "connected", "sim": "ready",
                 "roaming": "no", "month_rx": 7_000_000_000, "month_tx": 800_000_000}


def router_config(tmp_path: Path, text: str = ROUTER_TOML) -> Config:
    """The config as the web app loads it: without the plug-ins, a source's own keys are
    taken as written."""
    path = tmp_path / "traffic.toml"
    path.write_text(text)
    return load_config(path, [f"store.url=sqlite://{tmp_path}/traffic.db",
                              f'collector.runtime_dir="{tmp_path}/run"'],
                       environ={}, system_path=None)


def rsrp_at(bucket: int) -> float:
    return -95.0 + (bucket // FIVE_MIN) % 7


def sinr_at(bucket: int) -> float:
    return 10.0 + (bucket // FIVE_MIN) % 9


def seed_router(config: Config) -> None:
    """The router counted 100 MB more than ppp0 this period and reported its signal every five
    minutes of the last 48 hours but one hour; a source no longer configured ("old") left an
    RSRP too. Then the collector's latest word on each source."""
    store = open_site_store(config, create=True)
    in_period = to_ms(datetime(2026, 10, 20, 12, 0, tzinfo=STOCKHOLM))
    samples = []
    for bucket in range(NOW - 48 * HOUR + FIVE_MIN, NOW + 1, FIVE_MIN):
        if not GAP[0] <= bucket < GAP[1]:
            samples += [GaugeSample("router:wan", "rsrp", bucket + 60_000, rsrp_at(bucket) - 1),
                        GaugeSample("router:wan", "rsrp", bucket + 70_000, rsrp_at(bucket) + 1),
                        GaugeSample("router:wan", "sinr", bucket + 60_000, sinr_at(bucket))]
    samples += [GaugeSample("router:wan", "operator", NOW - 60_000, "Telia"),
                GaugeSample("router:wan", "network_type", NOW - 60_000, "LTE"),
                GaugeSample("old:wan", "rsrp", NOW - 600_000, -70.0)]
    store.add([Delta("router:wan", in_period, in_period + 5000, 6_050_000_000, 650_000_000)],
              {"router:wan": CounterState("serial/1", NOW - 2000, 0, 0)}, gauges=samples)
    store.close()
    publish(config)


def publish(config: Config, **router: object) -> None:
    """The sources document the collector writes after each poll; ``router`` overrides the
    router's entry."""
    publish_sources(realtime_path(config), NOW, {
        "kernel": {"type": "kernel", "label": "this box", "billed": True, "read_at": NOW - 4000,
                   "failing_since": None, "error": "", "refused": False, "gauges": {}},
        "router": {"type": "hilink", "label": "router", "billed": False, "read_at": NOW - 2000,
                   "failing_since": None, "error": "", "refused": False,
                   "gauges": dict(ROUTER_GAUGES), **router}})


@pytest.fixture
def router_app(tmp_path: Path) -> Iterator[Flask]:
    application = create_app(router_config(tmp_path), clock=lambda: NOW)
    application.config["TESTING"] = True
    seed(application)
    seed_router(application.config["TRAFFIC"])
    yield application


@pytest.fixture
def router_client(router_app: Flask) -> FlaskClient:
    return router_app.test_client()


def element_text(html: str, element_id: str) -> str:
    """The text inside the element with ``element_id``, tags dropped, spaces collapsed."""
    start = html.index(f'id="{element_id}"')
    body = html[html.index(">", start) + 1:]
    depth, position = 1, 0
    for tag in re.finditer(r"<(/?)(div|section|ul|p)\b[^>]*>", body):
        depth += -1 if tag.group(1) else 1
        if depth == 0:
            position = tag.start()
            break
    words = " ".join(unescape(re.sub(r"<[^>]+>", " ", body[:position])).split())
    return re.sub(r" (?=[,.])", "", words)

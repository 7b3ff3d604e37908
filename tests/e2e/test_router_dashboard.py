"""The dashboard with a router beside the box, in headless Chromium through nginx and gunicorn:
the signal chart of the last 48 hours, the router's panel with its quality word, the counts
beside the bill, the router's outages in plain words, and what the page says when the router
stops answering. The store and the sources document are written as the collector writes them."""

import math
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.e2e.conftest import GB, MB, TZ, Site, open_page, screenshot
from tests.published import publish_sources
from tests.stack import WebStack
from traffic.counters import CounterState, Delta
from traffic.store import Event, GaugeSample, open_store

FIVE_MIN = 300_000
HOUR = 3_600_000
ROUTER = """
[[sources]]
type = "hilink"
name = "router"
password_file = "/etc/traffic/router-password"
"""
GAUGES = {"rsrp": -92, "sinr": 14, "rsrq": -11, "rssi": -67, "operator": "Telia",
          "network_type": "LTE", "connection": "connected", "sim": "ready", "roaming": "no",
          "month_rx": 30 * GB, "month_tx": 3 * GB}
SIGNAL_READY = """() => {
    const chart = window.Highcharts && Highcharts.charts.filter(Boolean)
        .find(c => c.renderTo.id === "chart-signal");
    return chart && chart.series.length === 2 &&
        chart.series.every(s => s.options.data.filter(p => p[1] !== null).length > 0);
}"""
SIGNAL = """() => {
    const chart = Highcharts.charts.filter(Boolean).find(c => c.renderTo.id === "chart-signal");
    return chart.series.map(s => ({name: s.name, yAxis: s.yAxis.index,
        points: s.options.data.filter(p => p[1] !== null).length,
        gaps: s.options.data.filter(p => p[1] === null).length,
        first: s.options.data[0][0], last: s.options.data[s.options.data.length - 1][0],
        min: Math.min(...s.options.data.filter(p => p[1] !== null).map(p => p[1])),
        max: Math.max(...s.options.data.filter(p => p[1] !== null).map(p => p[1]))}));
}"""


def publish(run_dir: Path, now: int, **router: object) -> None:
    publish_sources(run_dir / "home.realtime", now, {
        "kernel": {"type": "kernel", "label": "this box", "billed": True, "read_at": now,
                   "failing_since": None, "error": "", "refused": False, "gauges": {}},
        "router": {"type": "hilink", "label": "router", "billed": False, "read_at": now,
                   "failing_since": None, "error": "", "refused": False,
                   "gauges": dict(GAUGES), **router}})


@pytest.fixture
def router_site(site: Site, tmp_path: Path) -> dict:
    """The router beside the box: it counted 0.5 GB more than ppp0 this period, reported its
    signal every 5 minutes of the last 48 hours but 40 minutes two hours ago (when it did not
    answer), and the collector's latest word says it answers."""
    site.config.write_text(site.config.read_text() + ROUTER)
    now = int(time.time() * 1000)
    gap = (now - 2 * HOUR - 40 * 60_000, now - 2 * HOUR)
    samples = []
    first = now - now % FIVE_MIN - 48 * HOUR + FIVE_MIN
    for at in range(first, now, FIVE_MIN):
        if not gap[0] <= at < gap[1]:
            phase = 2 * math.pi * (at - first) / (24 * HOUR)
            samples += [GaugeSample("router:wan", "rsrp", at, round(-93 + 6 * math.sin(phase), 1)),
                        GaugeSample("router:wan", "sinr", at, round(13 + 7 * math.cos(phase), 1))]
    billed_rx = site.received(site.period_start)
    billed_tx = site.sent(site.period_start)
    store = open_store(f"sqlite://{tmp_path}/traffic.db", TZ)
    store.add([Delta("router:wan", now - 600_000, now - 595_000, billed_rx + 400 * MB,
                     billed_tx + 100 * MB)],
              {"router:wan": CounterState("serial/1", now - 595_000, 0, 0)}, gauges=samples)
    store.add_events([Event(gap[0], "source_down", {"source": "router", "type": "hilink",
                                                    "label": "router",
                                                    "error": "http://192.168.8.1/: timed out"}),
                      Event(gap[0] + 180_000, "source_up", {"source": "router", "type": "hilink",
                                                            "label": "router"}, 180_000)])
    store.close()
    publish(tmp_path / "run", now)
    return {"now": now, "run": tmp_path / "run", "points": len(samples) // 2,
            "billed": billed_rx + billed_tx}


@pytest.fixture
def router_stack(router_site: dict, site: Site, tmp_path: Path) -> Iterator[WebStack]:
    running = WebStack(site.config, tmp_path).start()
    yield running
    running.stop()


def test_dashboard_shows_the_routers_signal_and_its_quality_word(
        browser: Browser, router_site: dict, router_stack: WebStack,
        page_errors: list[str]) -> None:
    page = open_page(browser, router_stack.url + "/", page_errors, width=1280)
    page.wait_for_function(SIGNAL_READY, timeout=20_000)
    rsrp, sinr = page.evaluate(SIGNAL)
    assert (rsrp["name"], sinr["name"]) == ("RSRP (dBm)", "SINR (dB)")
    assert (rsrp["yAxis"], sinr["yAxis"]) == (0, 1)  # each on its own axis
    assert rsrp["points"] == sinr["points"] == router_site["points"]
    assert rsrp["gaps"] == sinr["gaps"] == 1  # the line breaks where the router was silent
    assert router_site["now"] - 48 * HOUR < rsrp["first"] and rsrp["last"] <= router_site["now"]
    assert -99.1 <= rsrp["min"] < rsrp["max"] <= -86.9 and 5.9 <= sinr["min"] < sinr["max"] <= 20.1

    panel = page.locator("#routers .router-panel")
    assert panel.locator("h2").text_content() == "The router"
    assert panel.locator("dt").all_text_contents() == ["Operator", "Network", "Signal"]
    assert panel.locator(".quality").text_content() == "fair"
    assert panel.locator(".levels").text_content() == "RSRP -92 dBm, SINR 14 dB"
    assert page.locator("#notices .notice").count() == 0

    compare = page.locator("#compare li").all_text_contents()
    assert len(compare) == 2
    assert compare[0].startswith("The router counted ") and "(0.50 GB apart)" in compare[0]
    assert compare[1].startswith("The router's own month: 33.00 GB, this box ")
    page.evaluate("traffic.refreshSummary()")  # the minute's refresh writes the same
    assert page.locator("#compare li").all_text_contents() == compare

    page.wait_for_selector("#event-list li")
    assert page.locator("#event-list .event-text").all_text_contents() == [
        "The router answers again after 3 min.", "The router stopped answering."]
    assert page.locator("#event-list .event-detail").all_text_contents() == [
        "http://192.168.8.1/: timed out"]

    page.click("#chart-signal ~ details summary")
    rows = page.locator("#table-signal tbody tr")
    assert 48 <= rows.count() <= 49  # hours of the last 48 hours, the current one begun
    cells = rows.first.locator("td").all_text_contents()
    assert cells[0].endswith(" dBm") and cells[1].endswith(" dB")
    screenshot(page, "history-router-1280")
    assert page_errors == []


def test_dashboard_with_the_router_fits_a_phone(browser: Browser, router_stack: WebStack,
                                                page_errors: list[str]) -> None:
    page = open_page(browser, router_stack.url + "/", page_errors, width=375, height=812)
    page.wait_for_function(SIGNAL_READY, timeout=20_000)
    assert page.locator("#routers .quality").text_content() == "fair"
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.locator("#chart-signal").scroll_into_view_if_needed()
    screenshot(page, "history-router-375")
    assert page_errors == []


def test_dashboard_says_when_the_router_stops_answering(
        browser: Browser, router_site: dict, router_stack: WebStack,
        page_errors: list[str]) -> None:
    page = open_page(browser, router_stack.url + "/", page_errors, width=375, height=812)
    page.wait_for_function(SIGNAL_READY, timeout=20_000)
    since = router_site["now"] - 60_000
    publish(router_site["run"], router_site["now"], failing_since=since,
            error="http://192.168.8.1/: timed out")
    page.evaluate("traffic.refreshSources()")  # what the page does every five minutes
    page.wait_for_selector("#notices .notice")
    assert page.locator("#routers .router-panel").count() == 0
    written = page.locator("#notices .notice-text").text_content()
    reloaded = open_page(browser, router_stack.url + "/", page_errors, width=375, height=812)
    assert reloaded.locator("#notices .notice-text").text_content() == written  # same words
    clock = page.evaluate(f"traffic.when({since}, 'datetime')")
    assert written == f"The router is not answering since {clock}."
    assert reloaded.locator("#notices .notice-detail").text_content() == (
        "http://192.168.8.1/: timed out")
    assert reloaded.locator("#routers .router-panel").count() == 0
    screenshot(reloaded, "history-router-down-375")

    publish(router_site["run"], router_site["now"], failing_since=since, refused=True,
            error="login refused (108006)")
    page.evaluate("traffic.refreshSources()")
    page.wait_for_function("() => document.querySelector('#notices .notice-text')"
                           ".textContent.includes('log in')")
    assert page.locator("#notices .notice").text_content() == (
        "The router does not let the box log in: the password the box has for it is wrong. "
        "Check sources[1].password_file; no more logins until the settings change.")
    assert page_errors == []

"""What the dashboard says when things are not as they should be, and how it stays current:
headless Chromium through nginx and gunicorn, as on the box."""

import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from tests.e2e.conftest import TZ, Site, open_page, screenshot
from tests.stack import WebStack, clean_env
from traffic.config import load_config
from traffic.counters import CounterState, Delta
from traffic.periods import bucket_start, to_ms
from traffic.runtime import realtime_path, write_atomically
from traffic.store import Event, open_store

ENGLISH_MONTHS = re.compile(r"\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\b")
CHARTS_DRAWN = """() => window.Highcharts && Highcharts.charts.filter(Boolean).length === 3"""
AXIS_LABELS = """id => Array.from(document.querySelectorAll(
    '#' + id + ' .highcharts-xaxis-labels text')).map(t => t.textContent)"""


def write_realtime(site: Site, updated: int, points: list[list[float]]) -> None:
    config = load_config(site.config, [], environ={}, system_path=None)
    write_atomically(realtime_path(config), {"interval_s": 0.5, "updated": updated,
                                             "read_at": updated, "points": points})


def now_ms() -> int:
    return int(time.time() * 1000)


def test_a_missing_store_is_a_page_through_nginx(browser: Browser, tmp_path: Path,
                                                  page_errors: list[str]) -> None:
    config = tmp_path / "traffic.toml"
    config.write_text(f'[store]\nurl = "sqlite://{tmp_path}/none.db"\n'
                      f'[collector]\nruntime_dir = "{tmp_path}/run"\n'
                      '[web]\nallow = ["127.0.0.0/8"]\n')
    stack = WebStack(config, tmp_path).start()
    try:
        try:
            urllib.request.urlopen(stack.url + "/api/v1/usage")
            raise AssertionError("expected 503")
        except urllib.error.HTTPError as error:
            assert error.code == 503 and error.headers["Content-Type"] == "application/json"
        page = open_page(browser, stack.url + "/", page_errors, width=375, height=812)
        assert page.text_content("h2") == "No readings yet: is the collector running?"
        assert page.text_content("#error-detail").startswith(
            f"store.url: no store at {tmp_path}/none.db yet")
        assert page.evaluate("getComputedStyle(document.body).fontFamily").startswith("system-ui")
        screenshot(page, "no-store-375")
    finally:
        stack.stop()


def test_realtime_says_when_the_collector_has_stopped(browser: Browser, stack: WebStack,
                                                      site: Site, page_errors: list[str]) -> None:
    stopped = now_ms() - 90_000
    write_realtime(site, stopped, [[stopped - 500, 1000.0, 100.0], [stopped, 2000.0, 200.0]])
    page = open_page(browser, stack.url + "/rt", page_errors, width=1280)
    page.wait_for_function("""() => document.getElementById('rt-now').textContent
                               .startsWith('The collector has stopped')""", timeout=10_000)
    assert re.fullmatch(r"The collector has stopped: the last reading was 1m ago\.",
                        page.text_content("#rt-now"))
    assert page_errors == []


def test_realtime_axis_with_one_point_uses_24_hour_time(browser: Browser, stack: WebStack,
                                                        site: Site, page_errors: list[str]) -> None:
    at = now_ms() - 1000
    write_realtime(site, at, [[at, 1000.0, 100.0]])
    page = open_page(browser, stack.url + "/rt", page_errors, width=1280)
    page.wait_for_function("() => document.querySelectorAll("
                           "'#chart-rt .highcharts-xaxis-labels text').length > 0")
    labels = page.evaluate(AXIS_LABELS, "chart-rt")
    assert labels and all(re.fullmatch(r"\d\d:\d\d:\d\d", label) for label in labels), labels
    assert page_errors == []


def swedish_page(browser: Browser, url: str, errors: list[str]) -> Page:
    context = browser.new_context(locale="sv-SE", viewport={"width": 375, "height": 812})
    page = context.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    return page


def test_dates_follow_the_browsers_language_everywhere(browser: Browser, site: Site,
                                                       tmp_path: Path,
                                                       page_errors: list[str]) -> None:
    """A Swedish phone: dates in Swedish in the text, the tables and the chart axes, and one
    full stop after an abbreviated date that ends a sentence ("tis 8 dec.")."""
    site.config.write_text(site.config.read_text() +
                           '[keeper]\nenabled = true\ntargets = ["127.0.0.1:9"]\n')
    until = to_ms(datetime(2026, 12, 8, tzinfo=TZ))
    store = open_store(f"sqlite://{tmp_path}/traffic.db", TZ)
    store.add_events([Event(now_ms() - 60_000, "quota_lock", {"until": until})])
    store.close()
    stack = WebStack(site.config, tmp_path).start()
    try:
        page = swedish_page(browser, stack.url + "/", page_errors)
        page.wait_for_function(CHARTS_DRAWN)
        page.wait_for_selector("#event-list li")
        assert page.text_content("#event-list .event-text") == (
            "The quota is used up: the link stays down until it renews on tis 8 dec.")
        main = page.text_content("main")
        assert ".." not in main
        assert not ENGLISH_MONTHS.search(main), main
        assert re.search(r"Period \d+ [a-zåäö]+\.? to \d+ [a-zåäö]+\.", " ".join(main.split()))
        for chart in ("chart-day", "chart-hour", "chart-month"):
            labels = page.evaluate(AXIS_LABELS, chart)
            assert labels and not any(ENGLISH_MONTHS.search(label) for label in labels), labels
            assert not any(re.search(r"AM|PM|\.\d{3}", label) for label in labels), labels
        screenshot(page, "history-sv-375")
    finally:
        stack.stop()
    assert page_errors == []


def test_the_repeated_autumn_hour_is_labelled_with_its_offset(browser: Browser, stack: WebStack,
                                                              page_errors: list[str]) -> None:
    page = swedish_page(browser, stack.url + "/rt", page_errors)
    page.wait_for_function("() => window.traffic")
    summer = to_ms(datetime(2026, 10, 25, 2, 0, tzinfo=TZ))
    labels = page.evaluate("starts => traffic.bucketLabels(starts, 'hour')",
                           [summer - 3_600_000, summer, summer + 3_600_000])
    assert labels == ["sön 01:00", "sön 02:00+02:00", "sön 02:00+01:00"]


def test_an_open_tab_follows_the_clock_and_a_new_period(browser: Browser, stack: WebStack,
                                                        site: Site, tmp_path: Path,
                                                        page_errors: list[str]) -> None:
    """A minute later the age of the latest reading is new; after `traffic reset-month` the
    period, its figures and the day chart start anew, without reloading the page."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    page.clock.install(time=datetime.now(TZ))
    page.goto(stack.url + "/")
    page.wait_for_function(CHARTS_DRAWN)
    assert page.text_content("#sample-age") == "Last reading 1m ago."
    day_start = page.get_attribute("#chart-day", "data-start")

    store = open_store(f"sqlite://{tmp_path}/traffic.db", TZ)
    now = now_ms()
    if now % 300_000 < 2_000:  # the reset below starts the period at this 5 minutes' start:
        time.sleep(2)          # the whole second of bytes must lie inside them
        now = now_ms()
    store.add([Delta("kernel:ppp0", now - 1000, now, 1000, 1000)],
              {"kernel:ppp0": CounterState("old", now, 0, 0)})
    store.close()
    subprocess.run([sys.executable, "-m", "cli", "--config", str(site.config),
                    "reset-month"], env=clean_env(), check=True, capture_output=True)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.clock.run_for(61_000)
    page.wait_for_function("""start => document.getElementById('chart-day').dataset.start
                              !== start""", arg=day_start, timeout=10_000)
    assert re.fullmatch(r"Last reading \ds ago\.", page.text_content("#sample-age"))
    new_start = bucket_start("day", now, TZ)
    assert int(page.get_attribute("#chart-day", "data-start")) == new_start
    first = int(page.get_attribute("#period-first", "data-ms"))
    assert new_start < first <= now and first % 300_000 == 0
    assert page.text_content("#period-first") == page.evaluate(
        "ms => traffic.when(ms, 'datetime')", first)
    assert page.text_content("#figure-rx") == "1 kB"
    assert len([url for url in requests if "/api/v1/" in url]) == 4  # usage, then the charts
    assert page_errors == []


@pytest.mark.parametrize("query", ["", "?v=0123456789ab"])
def test_nginx_keeps_only_the_current_file_for_a_year(stack: WebStack, query: str) -> None:
    html = urllib.request.urlopen(stack.url + "/").read().decode()
    current = html.split('<script src="', 3)[2].split('"', 1)[0]
    assert "traffic.js?v=" in current
    with urllib.request.urlopen(stack.url + current) as response:
        assert "immutable" in response.headers["Cache-Control"]
    other = current.split("?")[0] + query
    request = urllib.request.Request(stack.url + other, headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(request) as response:
        assert response.headers["Cache-Control"] == "no-cache"
        assert response.headers["Content-Encoding"] == "gzip"
        assert response.headers["Server"].startswith("nginx")


def test_nginx_gzips_metrics(stack: WebStack) -> None:
    request = urllib.request.Request(stack.url + "/metrics", headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(request) as response:
        assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        assert response.headers["Content-Encoding"] == "gzip"

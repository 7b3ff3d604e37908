"""The dashboard end to end: headless Chromium, through nginx, to gunicorn, over a seeded store."""

import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime

from playwright.sync_api import Browser

from tests.e2e.conftest import TZ, Site, open_page, screenshot
from tests.stack import WebStack, clean_env
from traffic.periods import bucket_start, buckets, to_ms
from traffic.units import format_size

CHARTS_READY = """() => window.Highcharts && Highcharts.charts.filter(Boolean).length === 3 &&
    Highcharts.charts.filter(Boolean).every(c => c.series.length === 2 &&
                                               c.series[0].options.data.length > 0)"""
CHART_SUMS = """() => Object.fromEntries(Highcharts.charts.filter(Boolean).map(c => [c.renderTo.id,
    {rx: c.series[0].options.data.reduce((a, p) => a + p[1], 0),
     tx: c.series[1].options.data.reduce((a, p) => a + p[1], 0),
     first: c.series[0].options.data[0][0], points: c.series[0].options.data.length,
     empty: c.series[0].options.data.filter(p => p[1] === null).length,
     stacking: c.series[0].options.stacking || c.options.plotOptions.column.stacking}]))"""

POINTS = "() => Highcharts.charts.filter(Boolean)[0].series[0].options.data.length"
AT_LEAST = """n => window.Highcharts && Highcharts.charts.filter(Boolean).length > 0 &&
    Highcharts.charts.filter(Boolean)[0].series[0].options.data.length >= n"""


def test_history_shows_the_seeded_totals(browser: Browser, stack: WebStack, site: Site,
                                         page_errors: list[str]) -> None:
    page = open_page(browser, stack.url + "/", page_errors, width=1280)
    page.wait_for_function(CHARTS_READY, timeout=20_000)
    sums = page.evaluate(CHART_SUMS)
    rx, tx = site.received(site.period_start), site.sent(site.period_start)
    assert (sums["chart-day"]["rx"], sums["chart-day"]["tx"]) == (rx, tx)
    assert sums["chart-day"]["stacking"] == "normal"
    hour_start = int(page.get_attribute("#chart-hour", "data-start"))
    assert sums["chart-hour"]["points"] == 48
    assert sums["chart-hour"]["rx"] == site.received(hour_start)
    assert sums["chart-month"]["rx"] == site.received(0)
    first_month = min(d.start for d in site.deltas)
    now = to_ms(datetime.now(TZ))
    assert sums["chart-month"]["first"] == bucket_start("month", first_month, TZ)
    assert sums["chart-month"]["points"] == len(list(buckets("month", first_month, now, TZ)))
    days_so_far = len(list(buckets("day", site.period_start, now, TZ)))
    assert sums["chart-day"]["points"] - sums["chart-day"]["empty"] == days_so_far

    headline = page.text_content("#headline")
    assert headline.startswith(f"{format_size(rx + tx)} of 40 GB used, ")
    assert "a day keeps you inside" in headline
    assert page.text_content("#figure-rx") == format_size(rx)
    assert page.text_content("#figure-tx") == format_size(tx)
    page.click("#chart-day + details summary")
    rows = page.locator("#table-day tbody tr")
    assert rows.count() == days_so_far  # the days still to come are not listed as 0 B
    assert rows.first.locator("td").all_text_contents() == ["1 GB", "100 MB"]
    screenshot(page, "history-1280")
    assert page_errors == []


def test_history_fits_a_phone(browser: Browser, stack: WebStack, page_errors: list[str]) -> None:
    page = open_page(browser, stack.url + "/", page_errors, width=375, height=812)
    page.wait_for_function(CHARTS_READY, timeout=20_000)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    screenshot(page, "history-375")
    assert page_errors == []


def test_realtime_gains_points_as_the_collector_polls(browser: Browser, stack: WebStack,
                                                      site: Site, page_errors: list[str]) -> None:
    collector = subprocess.Popen([sys.executable, "-m", "cli", "--config", str(site.config),
                                  "collect"], env=clean_env(), stderr=subprocess.DEVNULL)
    try:
        page = open_page(browser, stack.url + "/rt", page_errors, width=1280)
        page.wait_for_function(AT_LEAST, arg=2, timeout=20_000)
        first = page.evaluate(POINTS)
        page.wait_for_function(AT_LEAST, arg=first + 3, timeout=20_000)
        assert page.text_content("#rt-now").startswith("Download ")
        page.click("#chart-rt + details summary")
        assert page.locator("#table-rt tbody tr").count() >= 3
        screenshot(page, "realtime-1280")
        phone = open_page(browser, stack.url + "/rt", page_errors, width=375, height=812)
        phone.wait_for_function(AT_LEAST, arg=2, timeout=20_000)
        assert phone.evaluate("document.documentElement.scrollWidth") <= 375
        screenshot(phone, "realtime-375")
    finally:
        collector.terminate()
        collector.wait(timeout=30)
    assert page_errors == []


def test_nginx_serves_assets_gzipped_and_cached(stack: WebStack, page_errors: list[str]) -> None:
    with urllib.request.urlopen(stack.url + "/") as response:
        html = response.read().decode()
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
    script = html.split('<script src="', 2)[1].split('"', 1)[0]
    assert "?v=" in script and "<script>" not in html
    request = urllib.request.Request(stack.url + script, headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(request) as response:
        assert response.headers["Content-Encoding"] == "gzip"
        assert "immutable" in response.headers["Cache-Control"]
        assert response.headers["Server"].startswith("nginx")


def test_forwarded_client_outside_allow_is_refused(stack: WebStack) -> None:
    request = urllib.request.Request(stack.app_url + "/api/v1/usage",
                                     headers={"X-Forwarded-For": "203.0.113.7"})
    try:
        urllib.request.urlopen(request)
        raise AssertionError("expected 403")
    except urllib.error.HTTPError as error:
        assert error.code == 403
        assert b"203.0.113.7 is not in web.allow" in error.read()
    with urllib.request.urlopen(stack.url + "/api/v1/usage") as response:
        assert response.status == 200  # nginx forwards 127.0.0.1, which web.allow lists


def test_history_shows_the_link_and_its_events(browser: Browser, site: Site, tmp_path,
                                               page_errors: list[str]) -> None:
    from traffic.store import Event, open_store

    text = site.config.read_text()
    site.config.write_text(text + '[keeper]\nenabled = true\ntargets = ["127.0.0.1:9"]\n')
    store = open_store(f"sqlite://{tmp_path}/traffic.db", TZ)
    now = int(time.time() * 1000)
    store.add_events([Event(now - 87_000_000, "up", {"reason": "received bytes",
                                                     "first_check": True}),
                      Event(now - 600_000, "down", {"reason": "ppp0 is not there"}, 86_400_000),
                      Event(now - 600_000, "attempt", {"step": 0, "command": ["pon", "provider"],
                                                       "ok": True, "timed_out": False}, 2000),
                      Event(now - 590_000, "attempt", {
                          "step": 1, "command": ["/usr/sbin/usb_modeswitch", "--reset-usb"],
                          "ok": False, "timed_out": True, "exit_code": None,
                          "output": "Looking for default devices ...\n(killed after 30s)"}, 30_000),
                      Event(now - 480_000, "up", {"reason": "received bytes"}, 120_000)])
    store.close()
    stack = WebStack(site.config, tmp_path).start()
    try:
        page = open_page(browser, stack.url + "/", page_errors, width=375, height=812)
        page.wait_for_selector("#event-list li")
        assert page.locator("#event-list .event-text").all_text_contents() == [
            "The link came back after 2 min.", "Reconnecting failed (took too long).",
            "Tried to reconnect.", "The link went down.", "The link was up at the first check."]
        assert page.locator("#event-list .event-detail").all_text_contents() == [
            "received bytes", "/usr/sbin/usb_modeswitch --reset-usb: timed out",
            "pon provider: done", "ppp0 is not there", "received bytes"]
        assert page.locator("#event-list details pre").text_content().endswith(
            "(killed after 30s)")
        page.click("#link details summary")
        rows = page.locator("#table-uptime tbody tr")
        assert rows.count() == 14
        seen_since = now - 600_000 - 86_400_000  # the down event says it was up a day before
        days_seen = len(list(buckets("day", seen_since, now, TZ)))
        for index in range(14):
            cells = rows.nth(index).locator("td").all_text_contents()
            assert (cells == ["not checked", "\u2014"]) == (index >= days_seen), cells
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        screenshot(page, "history-link-375")
    finally:
        stack.stop()
    assert page_errors == []


def test_history_tells_the_alerts_in_plain_words_with_the_keeper_off(
        browser: Browser, site: Site, tmp_path, page_errors: list[str]) -> None:
    """The store as the collector's rules and deliveries write it: 50% and 80% at one check
    (50% recorded quietly), 80% sent by e-mail and failing on a JSON hook, a link-down message
    cut short by a crash. "What happened" shows without the keeper, in plain words."""
    from traffic.store import Event, open_store

    store = open_store(f"sqlite://{tmp_path}/traffic.db", TZ)
    now = int(time.time() * 1000)
    eighty = ("80% of the monthly limit is used: 32 GB of 40 GB, 12 days left. 666.7 MB a day "
              "keeps you inside.")
    fifty = "50% of the monthly limit is used: 20 GB of 40 GB, 16 days left."
    at, retry_at = now - 300_000, now + 1_500_000

    def raise_(mark: str, at: int, text: str, targets: int, quiet: bool = False) -> None:
        detail = {"rule": mark.split(":")[0], "text": text, "site": "home", "mark": mark}
        store.raise_alert(mark, Event(at, "alert", {**detail, **({"quiet": True} if quiet
                                                                 else {})}),
                          [(target, "title", text) for target in range(targets)])

    def end(mark: str, target: int, kind: str, at: int, url: str, **detail: object) -> None:
        [delivery] = [d for d in store.pending_deliveries() if (d.mark, d.target) == (mark,
                                                                                       target)]
        store.delivery_started(delivery.id, at - 500)
        store.delivery_ended(delivery.id, Event(at, kind, {
            "rule": mark.split(":")[0], "mark": mark, "target": target, "url": url, **detail}),
            retry_at=detail.get("retry_at"))

    raise_("link_down:1", now - 900_000, "The link has been down since 14:05 (12 minutes).", 1)
    end("link_down:1", 0, "alert_unconfirmed", now - 840_000, "mailtos://********",
        error="the collector stopped while it was being sent", since=now - 899_000)
    raise_("threshold:50:p", at, fifty, 0, quiet=True)
    raise_("threshold:80:p", at, eighty, 2)
    end("threshold:80:p", 0, "alert_sent", at + 2000, "mailtos://********", attempts=1)
    end("threshold:80:p", 1, "alert_failed", at + 3000, "json://********",
        error="Failed to send JSON POST notification: Internal server error., error=500.",
        attempt=1, retry_at=retry_at)
    store.close()
    stack = WebStack(site.config, tmp_path).start()
    try:
        page = open_page(browser, stack.url + "/", page_errors, width=375, height=812)
        assert page.locator("#happened-heading").text_content() == "What happened"
        assert page.locator("#link").count() == 0  # the keeper is off
        page.wait_for_selector("#event-list li")
        retry = page.evaluate(f"traffic.when({retry_at}, 'time')")
        items = page.locator("#event-list li")
        assert [items.nth(i).locator(".event-text").text_content()
                for i in range(items.count())] == [
            "Could not send to json://********: Failed to send JSON POST notification: "
            f"Internal server error., error=500 (trying again at {retry}).",
            f"Sent: {eighty}",
            fifty,
            "Not sure the message reached mailtos://********: the collector stopped while it "
            "was being sent; it is not sent again.",
            "The link has been down since 14:05 (12 minutes)."]
        assert [items.nth(i).locator(".event-detail").all_text_contents()
                for i in range(items.count())] == [
            [eighty], ["to mailtos://********"],
            ["Not sent: a higher threshold reached at the same time says more."],
            ["The link has been down since 14:05 (12 minutes)."], []]
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        screenshot(page, "history-alerts-375")
    finally:
        stack.stop()
    assert page_errors == []

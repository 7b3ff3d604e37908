"""Two sites in one MongoDB, in headless Chromium through nginx and gunicorn: the picker switches
the dashboard between them, each with its own numbers, time zone and limit (the settings its
collector published), the site kept from page to page; the overview shows both."""

import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser

from tests.e2e.conftest import GB, MB, TZ, open_page, screenshot
from tests.e2e.test_dashboard import CHART_SUMS, CHARTS_READY
from tests.mongo_server import database_url
from tests.stack import WebStack, clean_env
from traffic.counters import Delta
from traffic.periods import to_ms
from traffic.store import open_store

NEW_YORK = ZoneInfo("America/New_York")
SITES = {"home": (TZ, 40, 3 * GB), "cabin": (NEW_YORK, 10, 1500 * MB)}
"""Each site's time zone, limit in GB and use (downloaded two minutes ago)."""


def site_config(tmp_path: Path, site: str, url: str) -> Path:
    zone, limit, _ = SITES[site]
    path = tmp_path / f"{site}.toml"
    path.write_text(
        f'site = "{site}"\ntimezone = "{zone.key}"\n[store]\nurl = "{url}"\n'
        f'[collector]\ninterval = "500ms"\nruntime_dir = "{tmp_path}/run-{site}"\n'
        f'[[sources]]\ntype = "kernel"\ninterfaces = ["lo"]\n'
        f'[quota]\nmonthly = "{limit} GB"\n[web]\nallow = ["127.0.0.0/8"]\n')
    return path


@pytest.fixture
def url(mongodb_base: str) -> str:
    return database_url(mongodb_base)


def use(url: str, site: str, size: int) -> None:
    """``size`` bytes downloaded at ``site`` two minutes ago."""
    zone = SITES[site][0]
    store = open_store(url, zone, site=site)
    at = to_ms(datetime.now(zone)) - 120_000
    store.add([Delta("kernel:lo", at, at + 60_000, size, 0)], {})
    store.close()


@pytest.fixture
def stack(tmp_path: Path, url: str) -> Iterator[WebStack]:
    """Each site's collector ran once (and published its settings); then its use. The web
    app runs with the home box's config."""
    configs = {site: site_config(tmp_path, site, url) for site in SITES}
    for site, config in configs.items():
        subprocess.run([sys.executable, "-m", "cli", "--config", str(config), "collect",
                        "--once"], check=True, env=clean_env(), capture_output=True, timeout=60)
        use(url, site, SITES[site][2])
    running = WebStack(configs["home"], tmp_path).start()
    yield running
    running.stop()


def test_the_picker_switches_between_sites(browser: Browser, stack: WebStack, url: str,
                                           page_errors: list[str]) -> None:
    page = open_page(browser, stack.url + "/", page_errors, width=1280)
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url)
            if "/api/v1/" in request.url else None)
    page.wait_for_function(CHARTS_READY, timeout=20_000)
    assert page.text_content("#headline").startswith("3 GB of 40 GB used")
    assert page.locator("#site-select option").all_text_contents() == ["cabin", "home"]
    assert page.locator("#site-picker button").is_hidden()  # the select alone does it

    with page.expect_navigation():
        page.select_option("#site-select", "cabin")
    assert page.url == stack.url + "/?site=cabin"
    page.wait_for_function(CHARTS_READY, timeout=20_000)
    assert page.text_content("#headline").startswith("1.5 GB of 10 GB used")
    assert page.get_attribute("body", "data-timezone") == "America/New_York"
    assert page.text_content("h1 .site") == "cabin"
    sums = page.evaluate(CHART_SUMS)
    assert sums["chart-day"]["rx"] == 1500 * MB
    assert asked and all("site=cabin" in url for url in asked)
    screenshot(page, "sites-cabin-1280")

    page.click("nav >> text=Right now")
    assert page.url == stack.url + "/rt?site=cabin"
    assert page.eval_on_selector("#site-select", "select => select.value") == "cabin"
    page.click("nav >> text=This month")
    page.wait_for_function(CHARTS_READY, timeout=20_000)
    assert page.text_content("#headline").startswith("1.5 GB of 10 GB used")

    page.click("nav >> text=Every site")
    assert page.url == stack.url + "/sites"
    lines = page.locator(".site-line")
    assert lines.count() == 2
    assert lines.nth(0).locator(".site-use").text_content() == "1.5 GB of 10 GB used (15.0%)"
    assert lines.nth(1).locator(".site-use").text_content() == "3 GB of 40 GB used (7.5%)"
    assert page.eval_on_selector_all("meter", "meters => meters.map(m => m.value)") == [
        1500 * MB, 3 * GB]
    screenshot(page, "sites-overview-1280")
    use(url, "cabin", 500 * MB)
    page.evaluate("traffic.refreshSites()")  # what the page does every minute
    page.wait_for_function("""() => document.querySelector('.site-line .site-use').textContent
                              === '2 GB of 10 GB used (20.0%)'""", timeout=10_000)
    assert page.eval_on_selector("meter", "meter => meter.value") == 2 * GB
    assert lines.nth(1).locator(".site-use").text_content() == "3 GB of 40 GB used (7.5%)"
    with page.expect_navigation():
        lines.nth(1).locator("a").click()
    assert page.url == stack.url + "/?site=home"
    phone = open_page(browser, stack.url + "/?site=cabin", page_errors, width=375, height=812)
    phone.wait_for_function(CHARTS_READY, timeout=20_000)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 375
    screenshot(phone, "sites-cabin-375")
    assert page_errors == []

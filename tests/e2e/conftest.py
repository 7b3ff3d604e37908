import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.stack import ROOT, WebStack
from traffic.counters import CounterState, Delta
from traffic.periods import billing_period, next_bucket, to_ms
from traffic.store import open_store

TZ = ZoneInfo("Europe/Stockholm")
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
GB = 10**9
MB = 10**6


@dataclass
class Site:
    config: Path
    period_start: int
    deltas: list[Delta]

    def received(self, start: int, end: int = 2**62) -> int:
        return sum(d.rx for d in self.deltas if start <= d.start < end)

    def sent(self, start: int, end: int = 2**62) -> int:
        return sum(d.tx for d in self.deltas if start <= d.start < end)


def seed(tmp_path: Path, billing_day: int) -> Site:
    """Each day of the current billing period so far: 1 GB down and 100 MB up, early that day;
    each of the three months before: 5 GB down."""
    config = tmp_path / "traffic.toml"
    config.write_text(
        f'timezone = "Europe/Stockholm"\n[store]\nurl = "sqlite://{tmp_path}/traffic.db"\n'
        f'[collector]\ninterval = "500ms"\nruntime_dir = "{tmp_path}/run"\n'
        '[[sources]]\ntype = "kernel"\ninterfaces = ["lo"]\n'
        f'[quota]\nmonthly = "40 GB"\nbilling_day = {billing_day}\n'
        '[web]\nallow = ["127.0.0.0/8"]\n')
    now = to_ms(datetime.now(TZ))
    start, _ = billing_period(now, billing_day, TZ)
    store = open_store(f"sqlite://{tmp_path}/traffic.db", TZ)
    deltas, day = [], start
    while day < now:
        at = min(day + 60_000, now - 120_000)
        deltas.append(Delta("kernel:ppp0", at, at + 60_000, GB, 100 * MB))
        day = next_bucket("day", day, TZ)
    month = datetime.fromtimestamp(start / 1000, TZ).replace(day=1)
    for _ in range(3):
        month = (month - timedelta(days=1)).replace(day=1)
        at = to_ms(month) + 3_600_000
        deltas.append(Delta("kernel:ppp0", at, at + 60_000, 5 * GB, 0))
    store.add(deltas, {"kernel:ppp0": CounterState("old", now - 60_000, 0, 0)})
    store.close()
    return Site(config, start, deltas)


@pytest.fixture
def site(tmp_path: Path) -> Site:
    """A billing period that began about ten days ago."""
    return seed(tmp_path, billing_day=(datetime.now(TZ) - timedelta(days=10)).day)


@pytest.fixture
def stack(site: Site, tmp_path: Path) -> Iterator[WebStack]:
    running = WebStack(site.config, tmp_path).start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page_errors() -> list[str]:
    return []


def open_page(browser: Browser, url: str, errors: list[str], width: int, height: int = 900
              ) -> Page:
    page = browser.new_page(viewport={"width": width, "height": height})
    page.on("console", lambda message: errors.append(message.text)
            if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    return page


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}-{time.strftime('%Y%m%d')}.png"
    page.screenshot(path=str(path), full_page=True)
    return path

"""Sizes and dates written once: the server formats what it sends, and what the script still
formats in the browser (charts, their tables, live rates) follows traffic.units, checked by
running one table of values through the Python and through the script in Chromium."""

import json
import re
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.e2e.conftest import TZ, open_page
from tests.e2e.test_freshness import CHARTS_DRAWN
from tests.stack import ROOT, WebStack
from traffic.counters import CounterState, Delta
from traffic.periods import bucket_start, to_ms
from traffic.store import open_store
from traffic.units import format_duration, format_size

SIZES = [0, 0.4, 0.5, 1, 999, 999.4, 999.5, 1000, 1023, 1023.5, 1024, 1049, 1050, 1250, 1536,
         99_949, 99_950, 999_940, 999_949, 999_950, 999_960_000, 999_940_000, 1_048_524,
         1_048_576, 2**30 - 1, 12_345_678_901, 40 * 10**9, 40 * 2**30, 10**15, 10**17, -1,
         -1500, -0.3, 125_000.25, 2_500_000.75]
SECONDS = [0, 0.9, 1, 59, 59.9, 60, 61, 3599, 3600, 3661, 86_399, 86_400, 90_061, 10**7]


def write_config(tmp_path: Path, limit: str) -> Path:
    config = tmp_path / "traffic.toml"
    config.write_text(
        f'timezone = "Europe/Stockholm"\n[store]\nurl = "sqlite://{tmp_path}/traffic.db"\n'
        f'[collector]\ninterval = "500ms"\nruntime_dir = "{tmp_path}/run"\n'
        '[[sources]]\ntype = "kernel"\ninterfaces = ["lo"]\n'
        f'[quota]\nmonthly = "{limit}"\nbilling_day = 1\n'
        '[web]\nallow = ["127.0.0.0/8"]\n')
    return config


def seed_this_month(tmp_path: Path, rx: int, tx: int) -> int:
    """A store whose only bytes are ``rx`` down and ``tx`` up a little earlier this month;
    returns the month's start."""
    now = to_ms(datetime.now(TZ))
    month = bucket_start("month", now, TZ)
    at = max(month, now - 120_000)
    store = open_store(f"sqlite://{tmp_path}/traffic.db", TZ)
    store.add([Delta("kernel:ppp0", at, at + 1000, rx, tx)],
              {"kernel:ppp0": CounterState("old", now - 60_000, 0, 0)})
    store.close()
    return month


@contextmanager
def running(tmp_path: Path, limit: str) -> Iterator[WebStack]:
    stack = WebStack(write_config(tmp_path, limit), tmp_path).start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.mark.parametrize(("limit", "system"), [("40 GB", "si"), ("40 GiB", "iec")])
def test_the_script_writes_sizes_and_ages_as_the_server(browser: Browser, tmp_path: Path,
                                                       limit: str, system: str,
                                                       page_errors: list[str]) -> None:
    seed_this_month(tmp_path, 1000, 1000)
    with running(tmp_path, limit) as stack:
        page = open_page(browser, stack.url + "/rt", page_errors, width=1280)
        page.wait_for_function("() => window.traffic")
        in_browser = page.evaluate("""sizes => sizes.map(size =>
            [traffic.formatSize(size), traffic.formatSize(size, true)])""", SIZES)
        ages = page.evaluate("seconds => seconds.map(traffic.age)", SECONDS)
    assert in_browser == [[format_size(size, system), format_size(size, system) + "/s"]
                          for size in SIZES]
    assert ages == [format_duration(seconds) for seconds in SECONDS]
    if system == "si":
        assert in_browser[SIZES.index(999_960_000)] == ["1 GB", "1 GB/s"]
        assert in_browser[SIZES.index(1250)][0] == "1.3 kB"  # half up, in both
    assert page_errors == []


def test_one_month_of_data_is_named_by_its_month(browser: Browser, tmp_path: Path,
                                                 page_errors: list[str]) -> None:
    """A store holding one month: the month chart's one column and its row name the month
    (not 00:00:00); 999,960,000 B is 1 GB in the figures the server writes and in the table
    the script writes."""
    month = seed_this_month(tmp_path, 999_960_000, 40_000)
    with running(tmp_path, "40 GB") as stack:
        usage = json.loads(urllib.request.urlopen(stack.url + "/api/v1/usage").read())
        page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="en-US")
        page.on("pageerror", lambda error: page_errors.append(str(error)))
        page.goto(stack.url + "/")
        page.wait_for_function(CHARTS_DRAWN, timeout=20_000)
        page.wait_for_selector("#table-month tbody tr", state="attached")
        axis = page.locator("#chart-month .highcharts-xaxis-labels text").all_text_contents()
        rows = page.locator("#table-month tbody tr")
        row = [rows.first.locator("th").text_content(),
               *rows.first.locator("td").all_text_contents()]
        figure = page.text_content("#figure-rx")
        page.evaluate("traffic.refreshSummary()")
        refreshed = page.text_content("#figure-rx")
        period_format = page.get_attribute("#period-first", "data-format")
    month_name = datetime.fromtimestamp(month / 1000, TZ).strftime("%b %Y")
    assert axis and set(axis) == {month_name}
    assert rows.count() == 1 and row == [month_name, "1 GB", "40 kB"]
    assert usage["rx_text"] == figure == refreshed == format_size(999_960_000) == "1 GB"
    assert usage["period_first_format"] == period_format == "date"
    assert page_errors == []


def test_only_the_server_decides_where_a_period_starts() -> None:
    """The script shows the period's first day in the format /api/v1/usage names
    (period_first_format); it no longer works out "starts at midnight" itself."""
    script = (ROOT / "js" / "traffic.js").read_text()
    assert '"00:00"' not in script
    assert re.search(r"showPeriod\([^)]*usage\.period_first_format\)", script)

"""The dashboard in real Chromium (through nginx and gunicorn) shows the bytes a real collector,
saving every 10 minutes, counted seconds ago and has not saved yet (issue 11)."""

from collections.abc import Callable

import pytest
from playwright.sync_api import Browser

from tests.collector_process import CollectorProcess
from tests.e2e.conftest import open_page, screenshot
from tests.e2e.test_dashboard import CHART_SUMS, CHARTS_READY
from tests.sim.link import Link
from tests.stack import WebStack
from tests.test_unsaved_readers import (
    MB,
    counting_unsaved,
    get_json,
    grown,
    in_store_file,
    web_for,  # noqa: F401 (a fixture)
)
from traffic.units import format_size

pytestmark = pytest.mark.netns


def test_dashboard_shows_the_bytes_not_saved_yet(
        browser: Browser, link: Link, spawn_collector: Callable[..., CollectorProcess],
        web_for: Callable[[CollectorProcess], WebStack],  # noqa: F811
        page_errors: list[str]) -> None:
    collector, before = counting_unsaved(link, spawn_collector)
    stack = web_for(collector)
    counted = grown(link.counters(), before)
    assert sum(in_store_file(collector)) <= sum(counted) - 3 * MB

    page = open_page(browser, stack.url + "/", page_errors, width=1280)
    page.wait_for_function(CHARTS_READY, timeout=20_000)
    usage = get_json(stack.url + "/api/v1/usage")
    assert (usage["rx"], usage["tx"]) == counted
    assert (usage["rx_text"], usage["tx_text"]) == (format_size(counted[0]),
                                                    format_size(counted[1]))
    assert page.text_content("#figure-rx") == usage["rx_text"]
    assert page.text_content("#figure-tx") == usage["tx_text"]
    day = page.evaluate(CHART_SUMS)["chart-day"]
    assert (day["rx"], day["tx"]) == counted
    screenshot(page, "unsaved-1280")
    assert page_errors == []

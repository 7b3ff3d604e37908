"""The dashboard of a box with a USB modem, in headless Chromium through nginx and gunicorn, with
a real collector polling the AT responder on a pty: the RSSI chart of the last 48 hours and its
hourly table, the modem's panel as the page writes it and as its five-minute refresh writes it
again when the SIM starts asking for its PUK, and the notice when the SIM refuses the PIN."""

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from tests.collector_process import wait_until
from tests.e2e.conftest import open_page, screenshot
from tests.modem_site import HOUR, ModemSite, modem_site
from tests.sim.modem import SIM_PIN, SIM_PUK, Scenario

WRONG_PIN = "1111"
SIGNAL = """() => {
    const chart = window.Highcharts && Highcharts.charts.filter(Boolean)
        .find(c => c.renderTo.id === "chart-signal");
    if (!chart || chart.series.length !== 1) return null;
    const data = chart.series[0].options.data;
    const values = data.filter(p => p[1] !== null).map(p => p[1]);
    return values.length && {name: chart.series[0].name, points: values.length,
        gaps: data.length - values.length, min: Math.min(...values), max: Math.max(...values),
        last: values[values.length - 1], axes: chart.yAxis.length};
}"""


@pytest.fixture
def site(tmp_path: Path) -> Iterator[dict]:
    """The modem at CSQ 20 (-73 dBm) with a PIN in the settings the SIM would refuse (it is
    ready, so it is not sent), after 48 hours of stored RSSI but 40 minutes two hours ago."""
    now = int(time.time() * 1000)
    gap = (now - 2 * HOUR - 40 * 60_000, now - 2 * HOUR)
    with modem_site(tmp_path, Scenario(csq=20), pin=WRONG_PIN, signal_since=(now, gap)) as made:
        wait_until(lambda: made.series("rssi")["points"][-1][1] == -73,
                   "the collector's own reading saved", 30)  # the seeded ones are there at once
        yield {"site": made, "now": now}


def panel(page: Page) -> list[tuple[str, str]]:
    section = page.locator("#routers .router-panel")
    return list(zip(section.locator("dt").all_text_contents(),
                    section.locator("dd").all_text_contents(), strict=True))


def test_the_modems_signal_chart_and_panel(browser: Browser, site: dict,
                                           page_errors: list[str]) -> None:
    modem: ModemSite = site["site"]
    page = open_page(browser, modem.stack.url + "/", page_errors, width=1280)
    page.wait_for_function(SIGNAL, timeout=20_000)
    chart = page.evaluate(SIGNAL)
    assert (chart["name"], chart["axes"]) == ("RSSI (dBm)", 1)
    # 48 hours of 5 minutes but the 40 minute gap, and the collector's own; the oldest may
    # have left the window since
    assert modem.seeded - 1 <= chart["points"] <= modem.seeded + 2
    assert chart["gaps"] >= 1  # the line breaks where the modem was silent
    assert -95 <= chart["min"] < chart["max"] <= -73 and chart["last"] == -73
    assert page.locator("#signal-heading").text_content() == (
        "Signal of the modem, the last 48 hours")

    assert page.locator("#routers h2").text_content() == "The modem"
    assert panel(page) == [("Operator", "Telia"), ("Network", "LTE"),
                           ("Signal", "excellent RSSI -73 dBm")]
    assert page.locator("#routers .quality").text_content() == "excellent"
    page.evaluate("traffic.refreshSources()")  # the five-minute refresh writes the same
    assert panel(page) == [("Operator", "Telia"), ("Network", "LTE"),
                           ("Signal", "excellent RSSI -73 dBm")]

    page.click("#chart-signal ~ details summary")
    assert page.locator("#table-signal thead th").all_text_contents() == ["Hour", "RSSI"]
    rows = page.locator("#table-signal tbody tr")
    assert 48 <= rows.count() <= 49
    assert all(cell.endswith(" dBm") for cell in rows.locator("td:nth-child(2)")
               .all_text_contents())
    screenshot(page, "history-modem-1280")

    phone = open_page(browser, modem.stack.url + "/", page_errors, width=375, height=812)
    phone.wait_for_function(SIGNAL, timeout=20_000)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 375
    screenshot(phone, "history-modem-375")
    assert page_errors == []


def test_the_panel_follows_the_sim_and_the_refused_pin_is_told(
        browser: Browser, site: dict, page_errors: list[str]) -> None:
    modem: ModemSite = site["site"]
    page = open_page(browser, modem.stack.url + "/", page_errors, width=375, height=812)
    page.wait_for_function(SIGNAL, timeout=20_000)
    modem.sim.scenario.csq = 99
    modem.sim.scenario.puk_attempts = 9
    modem.sim.scenario.sim = SIM_PUK
    modem.wait_gauges("the SIM asking for its PUK", sim="puk required")
    page.evaluate("traffic.refreshSources()")
    expected = [("SIM", "puk required (9 attempts left)"), ("Registration", "not registered")]
    assert panel(page) == expected
    reloaded = open_page(browser, modem.stack.url + "/", page_errors, width=375, height=812)
    assert panel(reloaded) == expected  # the page's own words are the same
    screenshot(reloaded, "history-modem-puk-375")

    modem.sim.scenario.sim = SIM_PIN  # say the SIM was put back: its PIN is asked again
    modem.wait_state("refused")
    page.evaluate("traffic.refreshSources()")
    page.wait_for_selector("#notices .notice")
    words = ("The modem's SIM card refused its PIN: the PIN the box has for it is wrong. "
             "Check sources[1].pin; it is not sent again until the settings change.")
    assert page.locator("#notices .notice").text_content() == words
    assert page.locator("#routers .router-panel").count() == 0
    reloaded = open_page(browser, modem.stack.url + "/", page_errors, width=375, height=812)
    assert reloaded.locator("#notices .notice").text_content() == words
    assert modem.sim.pins_sent == [WRONG_PIN]
    assert page_errors == []

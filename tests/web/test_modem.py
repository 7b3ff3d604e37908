"""The modem as the family sees it, through nginx and gunicorn and through ``traffic status``:
a real collector polls the AT responder on a pty, and the dashboard, ``/api/v1/status``,
``/api/v1/series`` and ``traffic status`` (text and JSON) say what the modem told it."""

import json
from pathlib import Path

from tests.modem_site import modem_site
from tests.sim.modem import SIM_PIN, SIM_PUK, Scenario
from tests.web.conftest import element_text


def test_a_registered_modem_its_signal_chart_and_its_status_line(tmp_path: Path) -> None:
    with modem_site(tmp_path, Scenario(csq=15, cereg=5, operator="Tele2")) as site:
        shown = site.wait_gauges("the modem's gauges", rssi=-83.0)
        assert shown["gauges"] == {"sim": "ready", "rssi": -83.0, "registration": "roaming",
                                   "roaming": "yes", "operator": "Tele2",
                                   "network_type": "LTE"}
        assert (shown["state"], shown["type"], shown["label"], shown["quality"]) == (
            "up", "modem", "modem", "good")
        status = json.loads(site.get("/api/v1/status"))["sources"]["modem"]
        assert status["gauges"] == shown["gauges"] and status["quality"] == "good"

        text = site.status()
        assert text.returncode == 0, text.stderr
        assert ("  modem       Tele2, LTE, roaming, signal good (RSSI -83 dBm)\n"
                in text.stdout)

        series = site.series("rssi")
        assert (series["source"], series["key"], series["unit"]) == ("modem", "modem:modem",
                                                                     "dBm")
        assert series["points"] and {value for _, value in series["points"]} == {-83.0}

        html = site.get("/")
        assert element_text(html, "routers") == (
            "The modem Operator Tele2 Network LTE Roaming yes, on another operator's network "
            "Signal good RSSI -83 dBm")
        assert 'id="chart-signal" data-source="modem" data-gauges="rssi"' in html
        assert "Signal of the modem, the last 48 hours" in html
        assert "RSSI is the strength of the signal received." in html
        assert '<th scope="col">RSSI</th>' in html and "SINR" not in html


def test_a_sim_asking_for_its_pin_or_puk_shows_the_attempts_left(tmp_path: Path) -> None:
    """Without a PIN in the settings nothing is sent: the SIM's state and attempts are shown,
    and the modem's panel is there even with no operator and no signal to show."""
    with modem_site(tmp_path, Scenario()) as site:
        site.sim.scenario.csq = 99  # not known
        site.sim.scenario.pin_attempts = 2
        site.sim.scenario.sim = SIM_PIN
        shown = site.wait_gauges("the SIM asking for its PIN", sim="pin required")
        assert shown["gauges"] == {"sim": "pin required", "pin_attempts": 2,
                                   "puk_attempts": 10, "registration": "not registered"}
        assert shown["quality"] is None
        assert ("  modem       SIM pin required (2 attempts left), registration not registered\n"
                in site.status().stdout)
        assert element_text(site.get("/"), "routers") == (
            "The modem SIM pin required (2 attempts left) Registration not registered")

        site.sim.scenario.puk_attempts = 1
        site.sim.scenario.sim = SIM_PUK
        site.wait_gauges("the SIM asking for its PUK", sim="puk required")
        assert "  modem       SIM puk required (1 attempt left), registration not registered\n" \
            in site.status().stdout
        assert element_text(site.get("/"), "routers") == (
            "The modem SIM puk required (1 attempt left) Registration not registered")
        assert site.sim.pins_sent == []

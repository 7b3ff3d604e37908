"""A refused PIN is tied to the SIM that refused it, by its ICCID: a real collector process
polling the AT responder on a pty never sends the PIN to that SIM again (across restarts, and
when it is put back), but tries it on another SIM put in its place; ``traffic modem pin-lock``
keeps to the same."""

import time
from pathlib import Path

from tests.modem_site import modem_site
from tests.sim.modem import READY, SIM_PIN, Scenario
from traffic.config import load_config
from traffic.store import open_site_store

FIRST, SECOND = "89460000000000000011", "89460000000000000029"
PIN, SECOND_PIN = "4711", "1111"
"""The first SIM's PIN is not the one of the settings (``SECOND_PIN``); the second SIM's is."""
POLLS_S = 1.0
"""Four of the modem's polls: long enough for a PIN to have been sent, were it to be."""


def refused_mark(config: Path) -> str | None:
    store = open_site_store(load_config(config, environ={}, system_path=None))
    try:
        return store.get_meta("login_refused:modem")
    finally:
        store.close()


def test_a_swapped_sim_is_tried_and_the_one_that_refused_never_again(tmp_path: Path) -> None:
    scenario = Scenario(sim=SIM_PIN, pin=PIN, iccid=FIRST)
    with modem_site(tmp_path, scenario, pin=SECOND_PIN, web=False) as site:
        refused = site.wait_state("refused")
        assert "(2 attempts left)" in refused["error"]
        time.sleep(POLLS_S)
        assert site.sim.pins_sent == [SECOND_PIN]
        asked = len(site.sim.commands)
        site.collector.stop()
        site.collector.start()
        site.wait_state("refused")
        time.sleep(POLLS_S)
        assert site.sim.pins_sent == [SECOND_PIN]  # the restarted collector sends nothing
        assert set(site.sim.commands[asked:]) == {"AT+CCID"}  # it asks which SIM is in

        site.sim.scenario.iccid, site.sim.scenario.pin = SECOND, SECOND_PIN  # another SIM
        site.sim.scenario.pin_attempts = 3
        site.wait_gauges("the second SIM's PIN sent", sim="ready")
        assert site.modem()["state"] == "up"
        assert site.sim.pins_sent == [SECOND_PIN, SECOND_PIN]
        assert refused_mark(site.collector.config) == ""
        site.collector.stop()
        log = (tmp_path / "collector.log").read_text()
        assert "another SIM is in the modem; its PIN is sent when it asks" in log
        assert SECOND_PIN not in log and FIRST not in log

        site.sim.scenario.iccid, site.sim.scenario.pin = FIRST, PIN  # the first one put back
        site.sim.scenario.sim, site.sim.scenario.pin_attempts = READY, 2  # unlocked by hand
        switched = site.run("modem", "pin-lock", "off")
        assert (switched.returncode, switched.stdout) == (1, "")
        assert switched.stderr == ("traffic: modem: this SIM refused the PIN of sources[1] "
                                   "before: it is not sent again until the setting changes\n")

        site.sim.scenario.sim = SIM_PIN
        site.collector.start()
        refused = site.wait_state("refused")
        assert refused["error"] == ("this SIM refused the PIN of sources 'modem' before; it is "
                                    "not sent again until the setting changes")
        time.sleep(POLLS_S)
        assert site.sim.pins_sent == [SECOND_PIN, SECOND_PIN]
        assert not site.sim.asked("AT+CLCK=\"SC\",0")
    assert scenario.sim == SIM_PIN and scenario.pin_attempts == 2


def test_a_modem_that_does_not_tell_the_iccid_stays_refused(tmp_path: Path) -> None:
    with modem_site(tmp_path, Scenario(sim=SIM_PIN, pin=PIN), pin=SECOND_PIN, web=False) as site:
        site.wait_state("refused")
        asked = len(site.sim.commands)
        site.sim.scenario.pin, site.sim.scenario.sim = SECOND_PIN, READY
        time.sleep(POLLS_S)
        assert site.modem()["state"] == "refused"
        assert site.sim.commands[asked:] == []  # not read again until the settings change
        assert site.sim.pins_sent == [SECOND_PIN]

"""Alerts by SMS: the ``modem://`` target in ``alerts.notify`` (collector/sms_notify.py),
through the outbox's Deliverer on a real store, ``traffic notify-test`` and a real ``traffic
collect``, to the modem simulator on a pty and the HiLink simulator."""

import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from collector.notify import Deliverer
from tests.collector_process import HostCollector, wait_until
from tests.conftest import make_config
from tests.sim.hilink import HilinkSim
from tests.sim.modem import ModemSim
from tests.sim.receivers import JsonReceiver
from tests.stack import clean_env
from tests.test_notify import KEEPER_ON, START, Clock, kinds, link_state, raise_alert
from traffic.config import Config, ConfigError
from traffic.store import open_site_store

NUMBER = "+46700000001"
ROUTER_PASSWORD = "router-alert-secret-4"


def modem_table(sim: ModemSim) -> str:
    return f'[[sources]]\ntype = "modem"\nport = "{sim.path}"\nlock_dir = "/nonexistent"\n'


def sms_config(tmp_path: Path, sim: ModemSim, *urls: str, extra: str = "") -> Config:
    return make_config(tmp_path, f'timezone = "Europe/Stockholm"\n{extra}{modem_table(sim)}'
                                 f'[alerts]\nnotify = {json.dumps(list(urls))}\n')


def test_an_alert_goes_out_by_sms_from_the_outbox(tmp_path: Path, sim: ModemSim) -> None:
    config = sms_config(tmp_path, sim, f"modem://{NUMBER}")
    store = open_site_store(config, create=True)
    body = ("80% of the monthly limit is used: 32 GB of 40 GB, 12 days left. At this pace the "
            "limit lasts until the 28th; the period ends on the 8th. Use less video to make "
            "it to the end: 1.1 GB a day is left.")
    raise_alert(store, 1, body)
    deliverer = Deliverer(config, store, Clock())
    assert deliverer.run_due() == 1
    sent = [text for number, text in sim.sent if number == NUMBER]
    assert len(sent) == 2 and " ".join(text[4:] for text in sent) == body
    assert kinds(store)[-1] == "alert_sent" and store.pending_deliveries() == []
    store.close()


def test_an_sms_goes_while_the_link_is_down_and_the_others_wait(
        tmp_path: Path, sim: ModemSim) -> None:
    with JsonReceiver() as receiver:
        config = sms_config(tmp_path, sim, f"modem://modem/{NUMBER}", receiver.url(),
                            extra=KEEPER_ON)
        store = open_site_store(config, create=True)
        link_state(store, "down", START)
        raise_alert(store, 2, "Link down since 14:02.", rule="link_down", mark="link_down:1")
        assert Deliverer(config, store, Clock()).run_due() == 1
        assert sim.sent == [(NUMBER, "Link down since 14:02.")] and receiver.posts == []
        [waiting] = store.pending_deliveries()
        assert waiting.target == 1 and waiting.attempts == 0
        store.close()


def test_a_failed_sms_is_retried_with_its_one_line_error(tmp_path: Path, sim: ModemSim) -> None:
    sim.scenario.send_error = 331
    config = sms_config(tmp_path, sim, f"modem://{NUMBER}")
    store = open_site_store(config, create=True)
    raise_alert(store, 1, "Link down since 14:02.", rule="link_down", mark="link_down:1")
    clock = Clock()
    deliverer = Deliverer(config, store, clock)
    deliverer.run_due()
    failed = store.events()[0]
    assert failed.kind == "alert_failed"
    assert failed.detail["error"] == (f"modem: could not send to {NUMBER}: +CMS ERROR: 331 (no "
                                      "network service)")
    sim.scenario.send_error = None
    clock.advance(30)
    assert deliverer.run_due() == 1
    assert sim.sent == [(NUMBER, "Link down since 14:02.")]
    store.close()


@pytest.mark.parametrize(("url", "error"), [
    ("modem://0700000001", "expected a phone number as + and the country code and number, "
                           "such as +46700000000, got '0700000001'"),
    ("modem://+46 70 000", "expected a phone number as + and the country code and number, "
                           "such as +46700000000, got '+46 70 000'"),
    ("modem://a/b/+46700000001", "expected modem://+46700000000, or modem://NAME/+46700000000 "
                                 "with the name of the modem or router source, got "
                                 "'modem://a/b/+46700000001'"),
])
def test_a_bad_number_is_a_config_error_naming_the_entry_and_file(
        tmp_path: Path, sim: ModemSim, url: str, error: str) -> None:
    with pytest.raises(ConfigError) as raised:
        sms_config(tmp_path, sim, "json://127.0.0.1/", url)
    assert str(raised.value) == f"{tmp_path / 'traffic.toml'}: alerts.notify[1]: {error}"


def test_an_sms_target_without_its_source_is_refused_at_the_start(
        tmp_path: Path, sim: ModemSim) -> None:
    config = sms_config(tmp_path, sim, f"modem://router/{NUMBER}")
    store = open_site_store(config, create=True)
    with pytest.raises(ConfigError) as raised:
        Deliverer(config, store)
    assert str(raised.value) == (f"alerts.notify[0]: {tmp_path / 'traffic.toml'}: sources: no "
                                 "[[sources]] table is named 'router' (to send and read SMS "
                                 "through)")
    store.close()


def traffic(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", "--config", str(config), *args],
                          capture_output=True, text=True, env=clean_env(), timeout=120)


def test_notify_test_sends_an_sms_and_says_why_one_failed(tmp_path: Path, sim: ModemSim) -> None:
    config = tmp_path / "traffic.toml"
    config.write_text(f'site = "cabin"\n[store]\nurl = "sqlite://{tmp_path}/none.db"\n'
                      f'{modem_table(sim)}[alerts]\nnotify = ["modem://{NUMBER}"]\n')
    done = traffic(config, "notify-test")
    assert (done.returncode, done.stdout, done.stderr) == (
        0, "alerts.notify[0] modem://********: delivered\n", "")
    assert sim.sent == [(NUMBER, "Traffic at cabin: this is a test message.")]

    sim.scenario.send_error = 330
    failed = traffic(config, "notify-test", "--url", "modem://+46700000002")
    assert (failed.returncode, failed.stdout) == (
        1, "modem://********: failed: modem: could not send to +46700000002: +CMS ERROR: 330 "
           "(SMSC address unknown)\n")
    assert len(sim.sent) == 1
    checked = traffic(config, "--set", 'alerts.notify=["modem://0700"]', "check-config")
    assert (checked.returncode, checked.stderr) == (
        2, "traffic: --set: alerts.notify[0]: expected a phone number as + and the country "
           "code and number, such as +46700000000, got '0700'\n")


@pytest.fixture
def router() -> Iterator[HilinkSim]:
    with HilinkSim(password=ROUTER_PASSWORD) as running:
        yield running


def test_a_threshold_alert_from_traffic_collect_reaches_the_router_and_the_modem_by_sms(
        router: HilinkSim, sim: ModemSim, collect: Callable[[str], HostCollector]) -> None:
    collector = collect(
        f'[[sources]]\ntype = "hilink"\nname = "router"\nurl = "{router.url}"\n'
        f'password = "{ROUTER_PASSWORD}"\ninterval = "250ms"\ntimeout = "2s"\n\n'
        f'{modem_table(sim)}name = "stick"\nbilled = false\n'
        f'[quota]\nmonthly = "100 MB"\nthresholds = [50]\n'
        f'[alerts]\nnotify = ["modem://router/{NUMBER}", "modem://stick/+46700000002"]\n')
    collector.start()
    goal = router.traffic_reads + 2
    wait_until(lambda: router.traffic_reads >= goal, "the baseline reading")
    router.grow(60_000_000)
    wait_until(lambda: router.sent and sim.sent, "both messages", timeout=30)
    collector.stop()
    [(number, text)] = router.sent
    assert number == NUMBER
    assert re.match(r"50% of the monthly limit is used: 6\d(\.\d)? MB of 100 MB", text), text
    assert sim.sent == [("+46700000002", text)]
    assert len(router.login_attempts) == 1  # the SMS went on the collector's own session
    config = make_config(collector.config.parent, collector.config.read_text())
    store = open_site_store(config, create=False)
    wait_until(lambda: kinds(store).count("alert_sent") == 2, "both sends recorded")
    store.close()
    log = (collector.config.parent / "collector.log").read_text()
    assert "threshold alert sent to alerts.notify[0] (modem://********)" in log
    assert ROUTER_PASSWORD not in log
    assert log.count(text) == 1  # the alert's own line: the SMS does not log it again

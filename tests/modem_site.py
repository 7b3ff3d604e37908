"""A box with a USB modem, whole, for the tests of what the family sees of it: the AT responder
on a pty (tests/sim/modem.py) read through real pyserial by a real ``traffic collect``
process, and the web stack (gunicorn behind nginx) reading what that collector stored and
published. ``traffic status`` runs as its own process on the same config."""

import contextlib
import json
import math
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.collector_process import HostCollector, wait_until
from tests.sim.modem import ModemSim, Scenario
from tests.stack import WebStack, clean_env
from traffic.config import load_config
from traffic.store import GaugeSample, open_site_store

FIVE_MIN = 300_000
HOUR = 3_600_000
KEY = "modem:modem"


def modem_tables(port: str, pin: str = "") -> str:
    """The kernel counting lo, and the modem on ``port`` polled every quarter second."""
    pin_line = f'pin = "{pin}"\n' if pin else ""
    return ('[[sources]]\ntype = "kernel"\ninterfaces = ["lo"]\n'
            f'[[sources]]\ntype = "modem"\nport = "{port}"\n{pin_line}'
            'interval = "250ms"\nlock_dir = "/nonexistent"\n')


@dataclass
class ModemSite:
    sim: ModemSim
    collector: HostCollector
    stack: WebStack | None
    seeded: int = 0
    """Samples of RSSI stored before the collector started."""

    def run(self, *args: str) -> subprocess.CompletedProcess:
        """``traffic`` with ``args`` on the collector's config, as its own process."""
        return subprocess.run(
            [sys.executable, "-m", "cli", "--config", str(self.collector.config), *args],
            capture_output=True, text=True, env=clean_env(), timeout=60,
            stdin=subprocess.DEVNULL)

    def status(self, *args: str) -> subprocess.CompletedProcess:
        return self.run("status", *args)

    def modem(self) -> dict[str, Any]:
        """The modem as ``traffic status --json`` gives it."""
        shown = self.status("--json")
        return json.loads(shown.stdout)["sources"]["modem"] if shown.returncode == 0 else {}

    def wait_state(self, *states: str) -> dict[str, Any]:
        """The modem once the collector has published it in one of ``states``."""
        wait_until(lambda: self.modem().get("state") in states, f"the modem {states}", 30)
        return self.modem()

    def wait_gauges(self, what: str, **expected: object) -> dict[str, Any]:
        """The modem once the collector has published ``expected`` among its gauges."""
        wait_until(lambda: expected.items() <= self.modem().get("gauges", {}).items(), what, 30)
        return self.modem()

    def get(self, path: str) -> str:
        """A page or an API answer through nginx."""
        assert self.stack is not None
        with urllib.request.urlopen(self.stack.url + path, timeout=30) as answer:
            return answer.read().decode()

    def series(self, gauge: str) -> dict[str, Any]:
        """``/api/v1/series`` of the modem's ``gauge`` once the collector has saved it (a 404
        until then)."""
        found: list[dict[str, Any]] = []

        def saved() -> bool:
            try:
                found.append(json.loads(self.get(f"/api/v1/series?gauge={gauge}&source=modem")))
            except urllib.error.HTTPError as error:
                if error.code != 404:
                    raise
            return bool(found)

        wait_until(saved, f"the modem's {gauge} saved", 30)
        return found[-1]


def rssi_at(at: int, first: int) -> float:
    """The seeded signal: a day's swing between -95 and -75 dBm, at CSQ's 2 dBm steps."""
    return -85.0 + 2 * round(5 * math.sin(2 * math.pi * (at - first) / (24 * HOUR)))


def seed_signal(config: Path, now: int, gap: tuple[int, int]) -> int:
    """The modem's RSSI every 5 minutes of the last 48 hours but during ``gap`` (it was not
    answering), stored as the collector stores it; returns how many were stored."""
    first = now - now % FIVE_MIN - 48 * HOUR + FIVE_MIN
    samples = [GaugeSample(KEY, "rssi", at, rssi_at(at, first))
               for at in range(first, now - FIVE_MIN, FIVE_MIN) if not gap[0] <= at < gap[1]]
    store = open_site_store(load_config(config, environ={}, system_path=None), create=True)
    try:
        store.add([], {}, gauges=samples)
    finally:
        store.close()
    return len(samples)


@contextlib.contextmanager
def modem_site(tmp_path: Path, scenario: Scenario, pin: str = "",
               signal_since: tuple[int, tuple[int, int]] | None = None, web: bool = True
               ) -> Iterator[ModemSite]:
    """The modem simulator, a collector polling it and (with ``web``) the web stack, all
    stopped after the block, once the collector has published the modem's state;
    ``signal_since``: (now, gap) to store 48 hours of RSSI first (see ``seed_signal``)."""
    with ModemSim(scenario) as sim:
        collector = HostCollector(tmp_path, modem_tables(sim.path, pin))
        seeded = seed_signal(collector.config, *signal_since) if signal_since else 0
        collector.start()
        stack = WebStack(collector.config, tmp_path) if web else None
        try:
            if stack is not None:
                stack.start()
            site = ModemSite(sim, collector, stack, seeded)
            site.wait_state("up", "down", "refused")
            yield site
        finally:
            if stack is not None:
                stack.stop()
            collector.kill()

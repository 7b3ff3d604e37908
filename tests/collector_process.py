"""A real ``traffic collect`` process inside a simulated link's namespace, for tests."""

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.sim.link import Link
from tests.stack import clean_env
from traffic.config import load_config
from traffic.runtime import read_document
from traffic.store import Event, open_site_store

POLL_S = 0.2
STARTED = "INFO collector.worker: collecting every"


class _Process:
    """One ``traffic collect`` process at a time: stopped as supervisor stops it, or killed."""

    process: subprocess.Popen | None = None

    def stop(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(timeout=30) == 0

    def kill(self) -> None:
        """kill -9; nothing happens when it is not running."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


class CollectorProcess(_Process):
    """``traffic collect`` in the link's near namespace, polling every 0.2 s."""

    def __init__(self, link: Link, tmp_path: Path, extra: str = "",
                 save_interval: str = "1s", store_url: str = "") -> None:
        self.link = link
        self.tmp_path = tmp_path
        self.config = tmp_path / "traffic.toml"
        self.in_namespace = bool(store_url)
        """A store reached only from the namespace (a server on its loopback): every command
        runs there too."""
        self.config.write_text(
            f'[store]\nurl = "{store_url or f"sqlite://{tmp_path}/traffic.db"}"\n'
            f'[collector]\ninterval = "{int(POLL_S * 1000)}ms"\nsave_interval = "{save_interval}"\n'
            f'max_rate = "20 GB/s"\nruntime_dir = "{tmp_path}/run"\n'
            f'state_dir = "{tmp_path}/state"\n'
            f'[[sources]]\ntype = "kernel"\ninterfaces = ["{link.near_if}"]\n{extra}')
        self.realtime = tmp_path / "run" / "home.realtime"
        self.log = (tmp_path / "collector.log").open("ab")
        self.process: subprocess.Popen | None = None

    def cli_command(self, *args: str) -> list[str]:
        command = [sys.executable, "-m", "cli", "--config", str(self.config), *args]
        return self.link.in_near(*command) if self.in_namespace else command

    def cli(self, *args: str) -> str:
        return subprocess.run(self.cli_command(*args), check=True, capture_output=True,
                              text=True, env=clean_env()).stdout

    def start(self, wait: bool = True) -> None:
        """Start it; ``wait``: until it has polled twice (as its published rates say)."""
        self.process = subprocess.Popen(
            self.link.in_near(sys.executable, "-m", "cli", "--config", str(self.config),
                              "collect"), stdout=self.log, stderr=self.log, env=clean_env())
        if wait:
            self.wait_polls(2)

    def wait_polls(self, count: int) -> None:
        """Wait until the running collector has polled ``count`` more times."""
        first = self._updated()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process is not None and self.process.poll() is None, "collector died"
            updated = self._updated()
            if updated is not None and (first is None or updated >= first + count * POLL_S * 1000):
                return
            time.sleep(POLL_S / 4)
        raise AssertionError("the collector did not poll")

    def _updated(self) -> int | None:
        if self.in_namespace:
            return self._published_updated()
        try:
            return read_document(self.realtime)["updated"]
        except (OSError, ValueError):
            return None

    def _published_updated(self) -> int | None:
        script = ("import sys; from traffic.config import load_config; "
                  "from traffic.store import Event, open_site_store; "
                  "s = open_site_store(load_config(sys.argv[1], environ={}, system_path=None)); "
                  "print((s.published('realtime') or {}).get('updated'))")
        out = subprocess.run(self.link.in_near(sys.executable, "-c", script, str(self.config)),
                             capture_output=True, text=True, env=clean_env()).stdout.strip()
        return int(out) if out.isdigit() else None

    def stored(self) -> tuple[int, int]:
        status = json.loads(self.cli("status", "--json"))
        return status["rx"], status["tx"]


class HostCollector(_Process):
    """``traffic collect`` processes on this host (no namespace) for one config file, one at
    a time: for sources read over the network, such as a router's simulator."""

    def __init__(self, tmp_path: Path, sources: str) -> None:
        self.config = tmp_path / "traffic.toml"
        self.config.write_text(
            f'[store]\nurl = "sqlite://{tmp_path}/traffic.db"\n'
            f'[collector]\ninterval = "250ms"\nsave_interval = "1s"\n'
            f'runtime_dir = "{tmp_path}/run"\n{sources}')
        self.log = (tmp_path / "collector.log").open("ab")
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        """Start it and wait until it collects (or has exited): a stop sent before it has
        set its handlers would kill it, and what it published before may still be there."""
        log = Path(self.log.name)
        started = log.read_text().count(STARTED)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cli", "--config", str(self.config), "collect"],
            stdout=self.log, stderr=self.log, env=clean_env())
        wait_until(lambda: log.read_text().count(STARTED) > started
                   or self.process.poll() is not None, "the collector to start", timeout=60)

    def cli(self, *args: str) -> str:
        return subprocess.run([sys.executable, "-m", "cli", "--config", str(self.config),
                               *args], check=True, capture_output=True, text=True,
                              env=clean_env(), timeout=60).stdout

    def totals(self, keys: list[str], start: int, end: int) -> tuple[int, int]:
        config = load_config(self.config, environ={}, system_path=None)
        store = open_site_store(config, create=False)
        try:
            return store.totals(start, end, keys)
        finally:
            store.close()


def events(collector: "CollectorProcess | HostCollector") -> list[Event]:
    """The events in the collector's store, oldest first."""
    config = load_config(collector.config, environ={}, system_path=None)
    store = open_site_store(config, create=False)
    try:
        return list(reversed(store.events(limit=1000)))
    finally:
        store.close()


def wait_until(done: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"waited {timeout}s for {what}"
        time.sleep(0.02)

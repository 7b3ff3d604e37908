import os
import re
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from collector.sources import source_schemas
from tests.sim.link import Link
from traffic.config import Config, load_config

TYPE_CHECKING = False
if TYPE_CHECKING:
    from tests.sim.modem import ModemSim

ROOT = Path(__file__).resolve().parents[1]
STOCKHOLM = ZoneInfo("Europe/Stockholm")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No TRAFFIC_* variable of the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("TRAFFIC_"):
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True, scope="session")
def private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The parsed-config cache of this run's commands (and their children) in a folder of
    its own, not the user's ``~/.cache/traffic``."""
    previous = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if previous is None:
        del os.environ["XDG_CACHE_HOME"]
    else:
        os.environ["XDG_CACHE_HOME"] = previous


EXAMPLE = Path(__file__).resolve().parents[1] / "util" / "traffic.toml.example"


def example_table(source_type: str) -> list[str]:
    """The example config's commented-out ``[[sources]]`` table of ``source_type``, its
    lines uncommented."""
    lines = EXAMPLE.read_text().splitlines()
    start = lines.index(f'# type = "{source_type}"') - 1
    end = lines.index("", start)
    setting = re.compile(r"# (\[\[sources\]\]|[a-z_]+ = .*)$")
    return [found.group(1) for line in lines[start:end] if (found := setting.match(line))]


def make_config(tmp_path: Path, text: str = "", **overrides: str) -> Config:
    """A config whose store and runtime files live in ``tmp_path``, plus ``text`` (TOML)."""
    path = tmp_path / "traffic.toml"
    path.write_text(text)
    base = [f"store.url=sqlite://{tmp_path}/traffic.db",
            f'collector.runtime_dir="{tmp_path}/run"', f'collector.state_dir="{tmp_path}/state"']
    extra = [f"{key.replace('__', '.')}={value}" for key, value in overrides.items()]
    return load_config(path, base + extra, environ={}, system_path=None,
                       source_schemas=source_schemas())


@pytest.fixture
def lock_dir(tmp_path: Path) -> str:
    """A folder for UUCP lock files (``LCK..ttyUSB0``) of a modem's port."""
    path = tmp_path / "lock"
    path.mkdir()
    return str(path)


@pytest.fixture
def sim() -> Iterator["ModemSim"]:
    """A modem on a pty, answering as ``Scenario()`` says (a module with another simulator,
    or another scenario, names its own ``sim``)."""
    from tests.sim.modem import ModemSim, Scenario

    with ModemSim(Scenario()) as running:
        yield running


@pytest.fixture
def link() -> Iterator[Link]:
    """Two network namespaces joined by a veth pair (see tests/sim/link.py)."""
    created = Link.create()
    yield created
    created.destroy()


@pytest.fixture
def spawn_collector(link: Link, tmp_path: Path) -> Iterator:
    """Make ``traffic collect`` processes in the link's near namespace; none outlives the test."""
    from tests.collector_process import CollectorProcess

    made: list[CollectorProcess] = []

    def make(extra: str = "", save_interval: str = "1s",
             store_url: str = "") -> CollectorProcess:
        made.append(CollectorProcess(link, tmp_path, extra, save_interval, store_url))
        return made[-1]
    yield make
    for collector in made:
        collector.kill()


@pytest.fixture
def collect(tmp_path: Path) -> Iterator:
    """Make ``traffic collect`` processes on this host with extra config text (the sources);
    none outlives the test."""
    from tests.collector_process import HostCollector

    made: list[HostCollector] = []

    def make(sources: str) -> HostCollector:
        made.append(HostCollector(tmp_path, sources))
        return made[-1]
    yield make
    for collector in made:
        collector.kill()


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path, 'timezone = "Europe/Stockholm"\n[quota]\nmonthly = "40 GB"\n'
                                 "billing_day = 8\n")


@pytest.fixture
def store(config: Config) -> Iterator:
    from traffic.store import open_site_store

    opened = open_site_store(config, create=True)
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def mongodb_base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A MongoDB-wire server for this test run (see ``tests.mongo_server``)."""
    from tests.mongo_server import running_server

    yield from running_server(tmp_path_factory.mktemp("mongodb"))


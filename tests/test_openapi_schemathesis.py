"""`schemathesis run --checks all` against the app in gunicorn as a box runs it, on a store with
use, a router's gauges and alerts, and a second site: every request the schema allows is
answered 2xx, every one it forbids is refused, every answer fits the schema. (Straight to
gunicorn: nginx answers TRACE itself, with a 405 that has no Allow header.)"""

import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.request import urlopen

import pytest

from tests.stack import ROOT, VENV_BIN, WebStack
from tests.web.conftest import ROUTER_TOML, router_config, seed, seed_alerts, seed_router
from tests.web.test_sites import seed_cabin
from web import create_app


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[WebStack]:
    text = (f'{ROUTER_TOML}[store]\nurl = "sqlite://{tmp_path}/traffic.db"\n'
            f'[collector]\nruntime_dir = "{tmp_path}/run"\n')
    config = router_config(tmp_path, text)
    app = create_app(config)
    seed(app)
    seed_cabin(app, tmp_path)  # a second site, which site= may name
    seed_router(config)
    seed_alerts(config)
    running = WebStack(tmp_path / "traffic.toml", tmp_path).start()
    yield running
    running.stop()


def test_the_earliest_end_the_schema_allows_is_answered(stack: WebStack) -> None:
    with urlopen(f"{stack.url}/api/v1/series?resolution=5min&end=631200000000") as response:
        assert response.status == 200


def test_schemathesis_with_every_check_finds_nothing(stack: WebStack, tmp_path: Path) -> None:
    run = subprocess.run(
        [str(VENV_BIN / "schemathesis"), "--config-file", str(ROOT / "schemathesis.toml"),
         "run", "--checks", "all", "--max-examples", "25",
         "--seed", "1", "--workers", "2", "--report-dir", str(tmp_path / "report"),
         f"{stack.app_url}/api/v1/openapi.json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "No issues found" in run.stdout

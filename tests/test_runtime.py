"""Where the collector publishes its latest rates."""

from pathlib import Path

from tests.conftest import make_config
from traffic.config import load_config
from traffic.runtime import _on_ram_disk, runtime_dir


def test_runtime_file_lives_on_a_ram_disk(tmp_path: Path) -> None:
    assert runtime_dir(make_config(tmp_path)) == tmp_path / "run"  # as configured
    default = runtime_dir(load_config(environ={}, system_path=None))
    assert _on_ram_disk(default.parent), default

"""The collector's latest rates, shared with the web app through a small file in a RAM disk.

Written after every poll, atomically (write then rename), so a reader never sees half a file; kept
out of the database so that polling every few seconds writes nothing to the SD card.
"""

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from traffic.config import Config

REALTIME_FILE = "realtime.json"
REALTIME_WINDOW_MS = 600_000


def runtime_dir(config: Config) -> Path:
    """``collector.runtime_dir``, else ``/run/traffic`` for root, else the user's runtime dir."""
    if config.collector.runtime_dir:
        return Path(config.collector.runtime_dir)
    if os.geteuid() == 0:
        return Path("/run/traffic")
    if os.environ.get("XDG_RUNTIME_DIR"):
        return Path(os.environ["XDG_RUNTIME_DIR"]) / "traffic"
    return Path(tempfile.gettempdir()) / f"traffic-{os.geteuid()}"


def realtime_path(config: Config) -> Path:
    return runtime_dir(config) / f"{config.site}.{REALTIME_FILE}"


def write_atomically(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(json.dumps(document, separators=(",", ":")))
    os.replace(temporary, path)


def last_poll(config: Config) -> int | None:
    """When the running collector last polled, from its realtime file."""
    document = read_realtime(config)
    return document.get("updated") if document else None


def read_realtime(config: Config) -> dict[str, Any] | None:
    """The latest realtime document, or None when no collector has written one."""
    try:
        return json.loads(realtime_path(config).read_text())
    except (OSError, ValueError):
        return None

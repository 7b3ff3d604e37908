"""What a running collector publishes beside the store, written by tests as it would be."""

from pathlib import Path
from typing import Any

from traffic.runtime import read_document, write_atomically


def publish_sources(realtime_file: Path, now: int, sources: dict[str, Any]) -> None:
    """Each source's state in the collector's realtime file, keeping what else it holds."""
    try:
        document = read_document(realtime_file)
    except (OSError, ValueError):
        document = {"site": realtime_file.name.split(".")[0], "interval_s": 5, "read_at": None,
                    "points": []}
    write_atomically(realtime_file, {**document, "updated": now, "sources": sources})

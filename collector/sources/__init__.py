"""Sources: each polls one kind of counter and returns readings; none stores or sleeps."""

from collections.abc import Callable
from typing import Protocol

from traffic.config import SourceConfig
from traffic.counters import Reading


class Source(Protocol):
    def poll(self) -> list[Reading]: ...


def make_source(config: SourceConfig, clock: Callable[[], int]) -> Source:
    if config.type == "kernel":
        from collector.sources.kernel import KernelSource

        return KernelSource(config, clock)
    raise ValueError(f"unknown source type {config.type!r}")

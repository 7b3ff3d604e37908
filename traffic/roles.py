"""Which counter is the bill: a store key's source, and its role.

A key is ``SOURCE:THING`` (``kernel:ppp0``, ``router:wan``), where ``SOURCE`` is the name of a
``[[sources]]`` table. The counters of a ``billed`` source are the link the contract counts:
period totals, the quota, the estimate and the daily budget add up those only. The counters of
the other sources watch the same link from elsewhere (the router's own total next to the box's
``ppp0``): they are shown beside the bill, with the difference, and never added to it.
A key of a source no longer configured is neither.
"""

from collections.abc import Iterable

from traffic.config import Config, SourceConfig


def source_name(key: str) -> str:
    return key.split(":", 1)[0]


def keys_of(source: SourceConfig, keys: Iterable[str]) -> list[str]:
    return [key for key in keys if source_name(key) == source.name]


def billed_keys(config: Config, keys: Iterable[str]) -> list[str]:
    billed = {source.name for source in config.sources if source.billed}
    return [key for key in keys if source_name(key) in billed]


def beside_sources(config: Config) -> list[SourceConfig]:
    """The sources shown beside the bill."""
    return [source for source in config.sources if not source.billed]

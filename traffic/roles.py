"""Which counter is the bill: each stored key's role, as the store keeps it.

A key is ``SOURCE:NAME`` (``kernel:ppp0``, ``router:wan``), where ``SOURCE`` is the name of a
``[[sources]]`` table. The collector types every key it writes (``traffic.store.Key``): the
counters of a ``billed`` source are the link the contract counts (period totals, the quota,
the estimate and the daily budget add up those only); those of the other sources watch the
same link from elsewhere (the router's own total next to the box's ``ppp0``) and are shown
beside the bill, with the difference, never added to it; the keys of a source that left the
config are retired. Readers take the roles from the store, so a reader without the site's
config (another host) sees what a local one sees.
"""

from collections.abc import Iterable

from traffic.config import Config
from traffic.store import BILLED, GAUGE, RETIRED, UNBILLED, Key, Store


def source_name(key: str) -> str:
    return key.split(":", 1)[0]


def key_of(key: str, config: Config, counted: bool = True) -> Key:
    """``key`` typed by ``config``'s sources, as its collector writes it: a gauge when it
    counts no bytes, retired when no source of the config reads it."""
    source, _, name = key.partition(":")
    configured = next((each for each in config.sources if each.name == source), None)
    role = (RETIRED if configured is None else GAUGE if not counted
            else BILLED if configured.billed else UNBILLED)
    return Key(key, source, name, role)


def typed_keys(store: Store, config: Config, extra: Iterable[str] = ()) -> list[Key]:
    """The site's keys (and ``extra`` ones, not saved yet) with their roles: the store's, and
    ``config``'s for a key the store has not typed yet (one stored before keys were typed,
    until its collector starts again)."""
    typed = {key.key: key for key in store.key_types()}
    for key in [*store.known_keys(), *extra]:
        if key not in typed:
            typed[key] = key_of(key, config)
    return sorted(typed.values(), key=lambda key: key.key)


def billed_keys(store: Store, config: Config, extra: Iterable[str] = ()) -> list[str]:
    return billed_of(typed_keys(store, config, extra))


def billed_of(keys: Iterable[Key]) -> list[str]:
    return [key.key for key in keys if key.role == BILLED]


def beside_keys(keys: Iterable[Key]) -> dict[str, list[str]]:
    """The unbilled keys, by source: each is shown beside the bill."""
    found: dict[str, list[str]] = {}
    for key in keys:
        if key.role == UNBILLED:
            found.setdefault(key.source, []).append(key.key)
    return found

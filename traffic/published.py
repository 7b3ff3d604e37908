"""What the running collector publishes for its readers beside the counts, read through the
store: its latest rates and the bytes it counted but has not saved yet (``realtime``), each
source's state, its latest save (``save``), the keeper's latest check (``keeper``) and the
site's own settings (``settings``: its time zone, billing day and limits, which readers of the
site use rather than their own config's).

The store keeps them as small status documents (the SQLite backend on the RAM disk, to spare
the SD card), so a reader anywhere sees what a local one sees. Anything can be in a document
(another version, a hand edit), and the web app must answer from what it can trust rather than
fail: what is not what a collector writes is taken as missing.
"""

import math
import sys
from collections.abc import Callable
from zoneinfo import ZoneInfo

from traffic.config import Config
from traffic.counters import Delta
from traffic.hints import Any
from traffic.periods import LATEST_MS
from traffic.store import Store

TYPE_CHECKING = False
if TYPE_CHECKING:
    from array import array

REALTIME = "realtime"
SAVE = "save"
KEEPER = "keeper"
SETTINGS = "settings"
REALTIME_WINDOW_MS = 600_000
UNSAVED_FRESH_MS = 120_000
"""A realtime document older than this is not a running collector's."""


def read_realtime(store: Store) -> dict[str, Any] | None:
    """The latest realtime document, or None when no collector has published one."""
    return _checked(store, REALTIME, _is_realtime_document, _points_unpacked)


def _points_unpacked(document: dict[str, Any]) -> dict[str, Any]:
    if isinstance(document.get("points"), bytes):
        document["points"] = unpack_points(document["points"])
    return document


def pack_points(flat: "array[float]") -> bytes:
    """Realtime points (time, download, upload; flat, as doubles) as the collector publishes
    them: little-endian bytes, copied at once, where a list of 120 points is marshalled
    object by object at every poll. Times are milliseconds, exact as doubles."""
    if sys.byteorder == "little":
        return flat.tobytes()
    from array import array

    swapped = array("d", flat)
    swapped.byteswap()
    return swapped.tobytes()


def unpack_points(packed: bytes) -> list[tuple[int, float, float]] | None:
    """``pack_points`` read back; None when ``packed`` is not a whole number of points.
    (A ``memoryview`` reads them: the ``array`` module is a library to load, a thirtieth of a
    ``python -c pass`` for ``traffic status``.)"""
    if len(packed) % 24:
        return None
    if sys.byteorder == "little":
        flat = memoryview(packed).cast("d").tolist()
    else:
        from array import array

        swapped = array("d", packed)
        swapped.byteswap()
        flat = swapped.tolist()
    if not all(math.isfinite(value) for value in flat):
        return None
    return [(int(flat[i]), flat[i + 1], flat[i + 2]) for i in range(0, len(flat), 3)]


def read_save(store: Store) -> dict[str, Any] | None:
    """The collector's latest save: ``saved_at``, and ``failing_since`` and ``error`` while it
    cannot save; None when no collector has published one."""
    return _checked(store, SAVE, _is_save_document)


def read_keeper(store: Store, config: Config) -> dict[str, Any] | None:
    """The keeper's latest check, or None when the keeper is off or has not checked yet."""
    if not config.keeper.enabled:
        return None
    return _checked(store, KEEPER, _is_keeper_document)


def read_settings(store: Store) -> dict[str, Any] | None:
    """The site's settings as its collector published them (``traffic.sites``), or None."""
    return _checked(store, SETTINGS, _is_settings_document)


def read_sources(config: Config, realtime: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Each configured source's latest state in ``realtime``: ``read_at``, ``failing_since``
    and ``error`` when it is not answering, and its latest ``gauges``."""
    published = realtime["sources"] if realtime and _is_sources(realtime) else {}
    return {source.name: published[source.name] for source in config.sources
            if source.name in published}


def last_reading(realtime: dict[str, Any] | None) -> int | None:
    """When the running collector last read a counter."""
    return realtime.get("read_at") if realtime else None


def unsaved_deltas(realtime: dict[str, Any] | None, now: int) -> list[Delta]:
    """The deltas the running collector has counted but not saved yet; none when its document
    is older than ``UNSAVED_FRESH_MS`` (no collector is running: a restarted one counts them
    again from the kernel's counters, or they are gone with the interface)."""
    if not realtime or not isinstance(realtime.get("unsaved"), list | tuple):
        return []
    updated = realtime.get("updated")
    if updated is None or not now - UNSAVED_FRESH_MS <= updated <= now + UNSAVED_FRESH_MS:
        return []
    found = []
    for entry in realtime["unsaved"]:
        if (isinstance(entry, list | tuple) and len(entry) == 5 and isinstance(entry[0], str)
                and all(_instant(value) for value in entry[1:5]) and entry[1] <= entry[2]):
            found.append(Delta(*entry))
    return found


def _checked(store: Store, name: str, valid: Callable[[Any], bool],
             read: Callable[[dict[str, Any]], dict[str, Any]] = lambda document: document
             ) -> dict[str, Any] | None:
    """Document ``name`` as ``read`` makes it of what was published, when ``valid``."""
    document = store.published(name)
    if not isinstance(document, dict):
        return None
    document = read(document)
    return document if valid(document) else None


def _is_save_document(document: dict[str, Any]) -> bool:
    return (_instant(document.get("saved_at"), optional=True)
            and _instant(document.get("failing_since"), optional=True)
            and isinstance(document.get("error", ""), str))


def _instant(value: Any, optional: bool = False) -> bool:
    if value is None:
        return optional
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < LATEST_MS


def _number(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


def _is_realtime_document(document: dict[str, Any]) -> bool:
    points = document.get("points")
    return (_instant(document.get("updated"), optional=True)
            and _instant(document.get("read_at"), optional=True)
            and _number(document.get("interval_s")) and document["interval_s"] > 0
            and isinstance(points, list | tuple)
            and all(isinstance(point, list | tuple) and len(point) == 3 and _instant(point[0])
                    and _number(point[1]) and _number(point[2]) for point in points))


def _is_keeper_document(document: dict[str, Any]) -> bool:
    return (document.get("link") in ("up", "down", "unknown")
            and document.get("held") in ("", "disconnected", "quota")
            and all(_instant(document.get(name)) for name in
                    ("since", "lock_until", "quota_override_until", "checked_at")))


def _is_sources(document: dict[str, Any]) -> bool:
    sources = document.get("sources")
    return isinstance(sources, dict) and all(
        isinstance(entry, dict) and _instant(entry.get("read_at"), optional=True)
        and _instant(entry.get("failing_since"), optional=True)
        and isinstance(entry.get("error", ""), str) and isinstance(entry.get("gauges", {}), dict)
        and all(isinstance(value, str) or _number(value)
                for value in entry.get("gauges", {}).values())
        for entry in sources.values())


UNIT_SYSTEMS = ("si", "iec")


def _is_settings_document(document: dict[str, Any]) -> bool:
    quota, keeper, sources = document.get("quota"), document.get("keeper"), document.get("sources")
    try:
        ZoneInfo(document.get("timezone"))  # type: ignore[arg-type]
    except (TypeError, ValueError, LookupError, OSError):
        return False
    return (isinstance(document.get("site"), str)
            and _number(document.get("interval_s")) and document["interval_s"] > 0
            and isinstance(quota, dict) and _is_quota(quota)
            and isinstance(keeper, dict) and isinstance(keeper.get("enabled"), bool)
            and _number(keeper.get("check_every")) and keeper["check_every"] > 0
            and isinstance(sources, list | tuple) and all(_is_source(item) for item in sources)
            and isinstance(document.get("notify"), list | tuple)
            and all(isinstance(url, str) for url in document["notify"]))


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_quota(quota: dict[str, Any]) -> bool:
    thresholds = quota.get("thresholds")
    return (_count(quota.get("monthly")) and _count(quota.get("daily"))
            and _count(quota.get("billing_day")) and 1 <= quota["billing_day"] <= 31
            and isinstance(thresholds, list | tuple) and all(_count(t) for t in thresholds)
            and quota.get("unit_system") in UNIT_SYSTEMS)


def _is_source(source: Any) -> bool:
    return (isinstance(source, dict) and isinstance(source.get("name"), str)
            and isinstance(source.get("type"), str) and isinstance(source.get("billed"), bool)
            and _number(source.get("interval")) and source["interval"] >= 0
            and isinstance(source.get("password_file"), bool))

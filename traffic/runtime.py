"""What the running collector shares with its readers beside the store, through small files
in a RAM disk: its latest rates, its sources' states and the bytes it counted but has not
saved yet (the realtime file), its latest save (the save file) and the keeper's check.

Written atomically (write then rename), so a reader never sees half a file; kept out of the
database so that polling every few seconds writes nothing to the SD card. They hold Python's
``marshal`` format, not JSON: only this program's readers open them, and importing ``json``
(with the regular expressions it compiles) would be a fifth of every ``traffic status``.
``traffic status --json`` shows what they say.
"""

import marshal
import math
import os
from collections.abc import Callable

from traffic.config import Config, ConfigError, path_exists
from traffic.counters import Delta
from traffic.files import replace_file
from traffic.hints import Any
from traffic.periods import LATEST_MS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

REALTIME_FILE = "realtime"
SAVE_FILE = "save"
KEEPER_FILE = "keeper"
REALTIME_WINDOW_MS = 600_000
UNSAVED_FRESH_MS = 120_000
"""A realtime file older than this is not a running collector's."""


RAM_FILESYSTEMS = ("tmpfs", "ramfs")


def runtime_dir(config: Config) -> "Path":
    """``collector.runtime_dir``, else the first of these that is on a RAM disk: ``/run/traffic``
    (root) or ``$XDG_RUNTIME_DIR/traffic``, then ``/dev/shm/traffic-UID``; else a temp dir.

    The file is rewritten every poll, 17,280 times a day: on an SD card that would be the
    heaviest writer of the box.
    """
    from pathlib import Path

    return Path(_runtime_dir_name(config))


def _runtime_dir_name(config: Config) -> str:
    """``runtime_dir`` as text: the readers open their files without importing ``pathlib``
    (a third of a ``python -c pass`` at every ``traffic status``)."""
    if config.collector.runtime_dir:
        return config.collector.runtime_dir
    uid, xdg = os.geteuid(), os.environ.get("XDG_RUNTIME_DIR", "")
    chosen = _chosen_dirs.get((uid, xdg))
    if chosen is None:
        chosen = _chosen_dirs[uid, xdg] = _first_on_ram_disk(uid, xdg)
    return chosen


_chosen_dirs: dict[tuple[int, str], str] = {}
"""The automatic runtime dir, by user and ``XDG_RUNTIME_DIR``: found once per process, not
once for every file a reader opens."""


def _first_on_ram_disk(uid: int, xdg: str) -> str:
    candidates = ["/run/traffic"] if uid == 0 else []
    if xdg:
        candidates.append(os.path.join(xdg, "traffic"))
    candidates.append(f"/dev/shm/traffic-{uid}")
    mounts = _mounts()
    for candidate in candidates:
        if _on_ram_disk(os.path.dirname(candidate), mounts):
            return candidate
    import tempfile

    return os.path.join(tempfile.gettempdir(), f"traffic-{uid}")


def _runtime_file(config: Config, name: str) -> str:
    return os.path.join(_runtime_dir_name(config), f"{config.site}.{name}")


def _mounts() -> list[list[str]] | None:
    """Each mount point and its file system type; None when they cannot be read."""
    try:
        with open("/proc/self/mounts") as handle:
            return [line.split()[1:3] for line in handle.read().splitlines()]
    except OSError:
        return None


def _on_ram_disk(path: str | os.PathLike[str], mounts: list[list[str]] | None = None) -> bool:
    mounts = _mounts() if mounts is None else mounts
    if mounts is None:
        return False
    target = os.path.realpath(path) if path_exists(path) else ""
    best = max((point for point, _ in mounts
                if target == point or target.startswith(point.rstrip("/") + "/")),
               key=len, default=None)
    return best is not None and dict(mounts)[best] in RAM_FILESYSTEMS


def check_runtime_dir(config: Config) -> None:
    """Fail early, naming the setting, when the collector cannot publish its rates."""
    directory = runtime_dir(config)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".probe.{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise ConfigError(f"collector.runtime_dir: cannot write to {directory} "
                          f"({error.strerror})") from None


def realtime_path(config: Config) -> "Path":
    return runtime_dir(config) / f"{config.site}.{REALTIME_FILE}"


def write_atomically(path: "Path", document: dict[str, Any]) -> None:
    """Write ``document`` (dicts, lists, tuples, text and numbers) for the readers."""
    replace_file(path, marshal.dumps(document))


def read_document(path: str | os.PathLike[str]) -> Any:
    """What ``write_atomically`` wrote at ``path``; raises OSError or ValueError."""
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        return marshal.loads(data)
    except (EOFError, TypeError, ValueError) as error:
        raise ValueError(f"{path}: not a runtime file ({error})") from None


def save_path(config: Config) -> "Path":
    return runtime_dir(config) / f"{config.site}.{SAVE_FILE}"


def read_save(config: Config) -> dict[str, Any] | None:
    """The collector's latest save: ``saved_at``, and ``failing_since`` and ``error`` while it
    cannot save; None when no collector has published one."""
    return _read_checked(_runtime_file(config, SAVE_FILE), _is_save_document)


def _is_save_document(document: dict[str, Any]) -> bool:
    return (_instant(document.get("saved_at"), optional=True)
            and _instant(document.get("failing_since"), optional=True)
            and isinstance(document.get("error", ""), str))


def read_sources(config: Config) -> dict[str, dict[str, Any]]:
    """Each configured source's latest state as the collector published it: ``read_at``,
    ``failing_since`` and ``error`` when it is not answering, and its latest ``gauges``."""
    document = read_realtime(config)
    published = document["sources"] if document and _is_sources(document) else {}
    return {source.name: published[source.name] for source in config.sources
            if source.name in published}


def keeper_path(config: Config) -> "Path":
    return runtime_dir(config) / f"{config.site}.{KEEPER_FILE}"


def read_keeper(config: Config) -> dict[str, Any] | None:
    """The keeper's latest check, or None when the keeper is off or has not checked yet."""
    if not config.keeper.enabled:
        return None
    return _read_checked(_runtime_file(config, KEEPER_FILE), _is_keeper_document)


def last_reading(config: Config) -> int | None:
    """When the running collector last read a counter, from its realtime file."""
    document = read_realtime(config)
    return document.get("read_at") if document else None


def read_realtime(config: Config) -> dict[str, Any] | None:
    """The latest realtime document, or None when no collector has written one."""
    return _read_checked(_runtime_file(config, REALTIME_FILE), _is_realtime_document)


def read_unsaved(config: Config, now: int) -> list[Delta]:
    """The deltas the running collector has counted but not saved yet; none when its file is
    older than ``UNSAVED_FRESH_MS`` (no collector is running: a restarted one counts them
    again from the kernel's counters, or they are gone with the interface)."""
    document = read_realtime(config)
    if not document or not isinstance(document.get("unsaved"), list):
        return []
    updated = document.get("updated")
    if updated is None or not now - UNSAVED_FRESH_MS <= updated <= now + UNSAVED_FRESH_MS:
        return []
    found = []
    for entry in document["unsaved"]:
        if (isinstance(entry, list | tuple) and len(entry) == 5 and isinstance(entry[0], str)
                and all(_instant(value) for value in entry[1:5]) and entry[1] <= entry[2]):
            found.append(Delta(*entry))
    return found


def _read_checked(path: str, valid: Callable[[Any], bool]) -> dict[str, Any] | None:
    """A runtime file's document, or None when it is missing or not what a collector writes.

    Anything can be in a file (another version, another program, a hand edit), and the web
    app must answer from what it can trust rather than fail.
    """
    try:
        document = read_document(path)
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) and valid(document) else None


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

"""The runtime folder: where the SQLite store keeps its status documents (see
``traffic.published``) as small files on a RAM disk, one per document, named after the site.

Written atomically (write then rename), so a reader never sees half a file; kept out of the
database so that publishing every few seconds writes nothing to the SD card. They hold Python's
``marshal`` format, not JSON: only this program's readers open them, and importing ``json``
(with the regular expressions it compiles) would be a fifth of every ``traffic status``.
``traffic status --json`` shows what they say.
"""

import marshal
import os

from traffic.config import Config, ConfigError, path_exists
from traffic.files import replace_file
from traffic.hints import Any
from traffic.published import KEEPER, REALTIME, SAVE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

RAM_FILESYSTEMS = ("tmpfs", "ramfs")


def runtime_dir(config: Config) -> "Path":
    """``collector.runtime_dir``, else the first of these that is on a RAM disk: ``/run/traffic``
    (root) or ``$XDG_RUNTIME_DIR/traffic``, then ``/dev/shm/traffic-UID``; else a temp dir.

    The file is rewritten every poll, 17,280 times a day: on an SD card that would be the
    heaviest writer of the box.
    """
    from pathlib import Path

    return Path(runtime_dir_name(config))


def runtime_dir_name(config: Config) -> str:
    """``runtime_dir`` as text: the readers open their files without importing ``pathlib``
    (a third of a ``python -c pass`` at every ``traffic status``)."""
    return config.collector.runtime_dir or automatic_runtime_dir()


def automatic_runtime_dir() -> str:
    """The runtime folder when ``collector.runtime_dir`` is not set (see ``runtime_dir``)."""
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
    return runtime_dir(config) / f"{config.site}.{REALTIME}"


def write_atomically(path: str | os.PathLike[str], document: dict[str, Any]) -> None:
    """Write ``document`` (dicts, lists, tuples, text and numbers) whole, for the readers."""
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
    return runtime_dir(config) / f"{config.site}.{SAVE}"


def keeper_path(config: Config) -> "Path":
    return runtime_dir(config) / f"{config.site}.{KEEPER}"

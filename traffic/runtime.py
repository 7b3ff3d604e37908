"""The runtime folder: where the SQLite store keeps its status documents (see
``traffic.published``) as small files on a RAM disk, one per document, named after the site.

Kept out of the database so that publishing every few seconds writes nothing to the SD card.
They hold Python's ``marshal`` format, not JSON: only this program's readers open them, and
importing ``json`` (with the regular expressions it compiles) would be a fifth of every
``traffic status``. ``traffic status --json`` shows what they say.

A file is a sequence number (8 bytes), the document's length (4 bytes) and the document. The
collector keeps each file open and rewrites it in place as a seqlock: the number made odd, the
document written, the number made even again; a reader that reads an even number before and the
same number after the document has read it whole. Writing a new file and renaming it over the
old one (four system calls, an inode made and one freed) cost the collector a fifth of its CPU
at every poll; a rewrite in place is three small writes.
"""

import marshal
import os
from _thread import allocate_lock

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
    check_writable(runtime_dir(config), "collector", "runtime_dir")


def check_writable(directory: "Path", section: str, key: str) -> None:
    """Make ``directory`` if missing and write a file in it, or ConfigError naming the
    setting ``section.key``: at start, not at the first write that needs it."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".probe.{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise ConfigError(f"{section}.{key}: cannot write to {directory} "
                          f"({error.strerror})") from None


def realtime_path(config: Config) -> "Path":
    return runtime_dir(config) / f"{config.site}.{REALTIME}"


SEQUENCE_BYTES = 8
LENGTH_BYTES = 4
HEADER = SEQUENCE_BYTES + LENGTH_BYTES
READ_TRIES = 70
QUICK_TRIES = 20
"""Tries one after the other; the next ones a millisecond apart. A writer rewrites its file in
a few microseconds, every few seconds, so a number still odd after 50 ms is a writer killed
while writing: its readers find no document until the next writer writes one."""


def _number(value: int, size: int) -> bytes:
    return value.to_bytes(size, "little")


def _framed(document: dict[str, Any]) -> bytes:
    """The document's length and the document, as they follow the sequence number."""
    encoded = marshal.dumps(document)
    return _number(len(encoded), LENGTH_BYTES) + encoded


def _number_at(data: bytes, offset: int, size: int) -> int:
    return int.from_bytes(data[offset:offset + size], "little")


class StatusFile:
    """One status document's file, kept open by its only writer and rewritten in place.

    A file removed meanwhile (the RAM disk's folder cleaned) is made again at the next write.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = allocate_lock()
        self._descriptor = -1
        self._sequence = 0

    def write(self, document: dict[str, Any]) -> None:
        """Raises OSError."""
        data = _framed(document)
        with self._lock:
            if self._descriptor < 0 or os.fstat(self._descriptor).st_nlink == 0:
                self._open()
            self._sequence += 1
            os.pwrite(self._descriptor, _number(self._sequence, SEQUENCE_BYTES), 0)
            os.pwrite(self._descriptor, data, SEQUENCE_BYTES)
            self._sequence += 1
            os.pwrite(self._descriptor, _number(self._sequence, SEQUENCE_BYTES), 0)

    def _open(self) -> None:
        self.close()
        try:
            descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        previous = _number_at(os.pread(descriptor, SEQUENCE_BYTES, 0), 0, SEQUENCE_BYTES)
        self._sequence = previous + previous % 2  # on from a previous writer's, never back
        self._descriptor = descriptor

    def close(self) -> None:
        if self._descriptor >= 0:
            os.close(self._descriptor)
            self._descriptor = -1


def write_atomically(path: str | os.PathLike[str], document: dict[str, Any]) -> None:
    """Write ``document`` (dicts, lists, tuples, text and numbers) as a new file, for the
    readers: one-off writers and tests; the collector keeps a ``StatusFile``."""
    replace_file(path, _number(0, SEQUENCE_BYTES) + _framed(document))


def read_document(path: str | os.PathLike[str]) -> Any:
    """What a ``StatusFile`` or ``write_atomically`` wrote at ``path``, read whole (tried again
    while its writer is rewriting it); raises OSError or ValueError."""
    descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        for attempt in range(READ_TRIES):
            data = os.pread(descriptor, 1 << 20, 0)
            if len(data) < HEADER:
                raise ValueError(f"{path}: not a runtime file (too short)")
            before = data[:SEQUENCE_BYTES]
            if before[0] % 2 == 0 and os.pread(descriptor, SEQUENCE_BYTES, 0) == before:
                return _document(path, data)
            if attempt < QUICK_TRIES:
                os.sched_yield()
            else:
                from time import sleep

                sleep(0.001)
    finally:
        os.close(descriptor)
    raise ValueError(f"{path}: being rewritten for {READ_TRIES - QUICK_TRIES} ms (a writer "
                     "stopped while writing it?)")


def _document(path: str | os.PathLike[str], data: bytes) -> Any:
    length = _number_at(data, SEQUENCE_BYTES, LENGTH_BYTES)
    if HEADER + length > len(data):
        raise ValueError(f"{path}: not a runtime file (cut short)")
    try:
        return marshal.loads(data[HEADER:HEADER + length])
    except (EOFError, TypeError, ValueError) as error:
        raise ValueError(f"{path}: not a runtime file ({error})") from None


def save_path(config: Config) -> "Path":
    return runtime_dir(config) / f"{config.site}.{SAVE}"


def keeper_path(config: Config) -> "Path":
    return runtime_dir(config) / f"{config.site}.{KEEPER}"

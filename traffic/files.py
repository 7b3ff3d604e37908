"""Files replaced whole, so that a reader sees the old content or the new, never a part."""

import os
from _thread import get_ident


def replace_file(path: str | os.PathLike[str], data: bytes, mode: int = 0o644,
                 folder_mode: int = 0o777, durable: bool = False) -> None:
    """Write ``data`` to a temporary file beside ``path`` (named by process and thread, so
    writers never share one), then rename it over ``path``; the folder is made if missing.
    ``durable``: on disk (the file and then the folder synced) before this returns, so that a
    power cut leaves the old file or the new one. Raises OSError, having removed the temporary
    file."""
    directory, name = os.path.split(os.fspath(path))
    temporary = os.path.join(directory, f".{name}.{os.getpid()}.{get_ident()}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    try:
        descriptor = os.open(temporary, flags, mode)
    except FileNotFoundError:
        os.makedirs(directory, mode=folder_mode, exist_ok=True)
        descriptor = os.open(temporary, flags, mode)
    try:
        try:
            os.write(descriptor, data)
            if durable:
                os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(temporary, path)
        if durable:
            sync_folder(directory)
    except OSError:
        remove_if_there(temporary)
        raise


def sync_folder(directory: str) -> None:
    """Put a folder's entries (a file made, renamed or removed in it) on disk."""
    descriptor = os.open(directory or ".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def remove_if_there(path: str | os.PathLike[str]) -> None:
    """Remove a file, if it is there and may be removed (``contextlib.suppress`` is not
    imported for this: ``traffic status`` does without ``contextlib``)."""
    try:
        os.unlink(path)
    except OSError:
        return

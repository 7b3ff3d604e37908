"""Files replaced whole, so that a reader sees the old content or the new, never a part."""

import os
from _thread import get_ident


def replace_file(path: str | os.PathLike[str], data: bytes, mode: int = 0o644,
                 folder_mode: int = 0o777) -> None:
    """Write ``data`` to a temporary file beside ``path`` (named by process and thread, so
    writers never share one), then rename it over ``path``; the folder is made if missing.
    Raises OSError, having removed the temporary file."""
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
        finally:
            os.close(descriptor)
        os.replace(temporary, path)
    except OSError:
        remove_if_there(temporary)
        raise


def remove_if_there(path: str | os.PathLike[str]) -> None:
    """Remove a file, if it is there and may be removed (``contextlib.suppress`` is not
    imported for this: ``traffic status`` does without ``contextlib``)."""
    try:
        os.unlink(path)
    except OSError:
        return

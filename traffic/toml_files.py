"""Config files read as TOML, with what ``tomllib`` made of each kept for the next command.

Importing ``tomllib`` and parsing a config file takes longer than everything else
``traffic status`` does (it brings in ``typing`` and compiles a dozen regular expressions);
the file changes a few times a year and is read at every command. So the parsed settings are
kept in the user's cache folder (``$XDG_CACHE_HOME/traffic`` or ``~/.cache/traffic``), beside
the exact bytes they came from: a cached copy is used only when the file still holds those
bytes and the cache is the user's own, so an edit, however quick, is always read again.
Without a cache folder (no home, read-only, another owner) files are simply parsed each time.
"""

import marshal
import os

from traffic.files import remove_if_there, replace_file
from traffic.hints import Any

CACHE_VERSION = 1


def read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The settings in the TOML file at ``path``; raises what ``open`` and ``tomllib.load``
    raise for a missing, unreadable or invalid file."""
    with open(path, "rb") as handle:
        content = handle.read()
    cache = _cache_file(path)
    settings = _cached(cache, content) if cache else None
    if settings is None:
        import tomllib

        settings = tomllib.loads(content.decode())
        if cache:
            _keep(cache, content, settings)
    return settings


def _cache_dir() -> str | None:
    base = os.environ.get("XDG_CACHE_HOME") or (
        os.path.join(os.environ["HOME"], ".cache") if os.environ.get("HOME") else "")
    return os.path.join(base, "traffic") if os.path.isabs(base) else None


def _cache_file(path: str | os.PathLike[str]) -> str | None:
    directory = _cache_dir()
    if directory is None:
        return None
    return os.path.join(directory, _escaped(os.path.abspath(path)) + SUFFIX)


SUFFIX = f".v{CACHE_VERSION}.marshal"


def _escaped(path: str) -> str:
    """A path as one file name: ``%`` becomes ``%p`` and ``/`` becomes ``%s``."""
    return path.replace("%", "%p").replace("/", "%s")


def _unescaped(name: str) -> str:
    return "%".join(part.replace("%s", "/") for part in name.split("%p"))


def _cached(cache: str, content: bytes) -> dict[str, Any] | None:
    try:
        with open(cache, "rb") as handle:
            if os.fstat(handle.fileno()).st_uid != os.geteuid():
                return None
            kept_content, settings = marshal.loads(handle.read())
    except (OSError, EOFError, ValueError, TypeError):
        return None
    return settings if kept_content == content and isinstance(settings, dict) else None


def _keep(cache: str, content: bytes, settings: dict[str, Any]) -> None:
    """Write the cache for the next command; any failure only means no cache."""
    try:
        data = marshal.dumps((content, settings))
    except ValueError:
        return  # a TOML date or time, which marshal cannot keep
    try:
        replace_file(cache, data, mode=0o600, folder_mode=0o700)
    except OSError:
        return
    _forget_removed(os.path.dirname(cache))


def _forget_removed(directory: str) -> None:
    """Drop the cached settings of config files that are gone (run when a file is cached,
    which is rare: only after an edit or for a new file)."""
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if name.endswith(SUFFIX) and not os.path.exists(_unescaped(name[:-len(SUFFIX)])):
            remove_if_there(os.path.join(directory, name))

"""Sources as plug-ins: each module here is one source type, found by its ``SOURCE_TYPE``.

A source polls one kind of counter (and gauges) and returns readings; none stores or sleeps.
Like a Telegraf input, a type owns its config schema, its defaults and its poll; adding a type is
adding a module here (with its section in ``util/traffic.toml.example``, its simulator under
``tests/sim/`` and its test file), and nothing else changes.

A module's top level imports only what validating its settings needs: its client library is
imported when a source is made, so ``traffic status`` does not pay for it. A type's module is
imported when the type is first asked for (``SOURCE_TYPES["kernel"]`` imports ``kernel`` only),
so a command reading a config that names one type imports no other plug-in.
"""

import os
from collections.abc import Callable, Iterator, Mapping

from traffic.config import Config, SourceConfig, SourceSchemas
from traffic.counters import Reading
from traffic.hints import Any, Protocol
from traffic.record import Record, field

Clock = Callable[[], int]


class SourceError(Exception):
    """The source cannot be read this cycle; the message is one line, secrets left out."""


class LoginRefused(SourceError):
    """The device refused the credentials: no more logins until the config changes (a router
    that locks its web page after repeated failures must never be hammered)."""


class Source(Protocol):
    """One configured source. ``poll`` raises when the source cannot be read this cycle
    (a router not answering, a login refused): the collector records the outage and polls the
    others as usual."""

    config: SourceConfig

    def poll(self) -> list[Reading]: ...

    def close(self) -> None:
        """Let go of what the source holds (a router's session is logged out)."""


class SourceType(Record):
    name: str
    create: Callable[[SourceConfig, Clock], Source]
    schema: Mapping[str, tuple[Any, Callable[[Any], Any]]]
    """Its own keys: key -> (default as the user writes it, validator)."""
    label: str
    """What the family calls it, beside the other counters: "this box", "router"."""
    default_interval: float | None = None
    """Seconds between polls when the table sets none; None is ``collector.interval``."""
    automatic: Callable[[SourceConfig], dict[str, str]] = field(default=lambda source: {})
    """For ``check-config``: what each setting left automatic comes to now, by its key."""
    table_check: Callable[[Mapping[str, Any]], None] | None = None
    """Raises ``ValueError("KEY: what is wrong")`` for what no single key can check (a
    password given twice)."""

    def check_table(self, settings: Mapping[str, Any]) -> None:
        if self.table_check is not None:
            self.table_check(settings)


def _discover() -> dict[str, SourceType]:
    types: dict[str, SourceType] = {}
    for module in sorted(os.listdir(os.path.dirname(__file__))):
        if module.endswith(".py") and not module.startswith("_"):
            source_type = _module_type(module.removesuffix(".py"))
            if source_type is not None:
                types[source_type.name] = source_type
    return types


def _module_type(module: str) -> SourceType | None:
    loaded = __import__(f"{__name__}.{module}", fromlist=["SOURCE_TYPE"])  # not importlib
    source_type = getattr(loaded, "SOURCE_TYPE", None)
    return source_type if isinstance(source_type, SourceType) else None


class _SourceTypes(Mapping[str, SourceType]):
    """Every plug-in's type by its name; a type named as its module is looked up by importing
    that module alone, the others by importing every plug-in."""

    def __init__(self) -> None:
        self._all: dict[str, SourceType] | None = None
        self._found: dict[str, SourceType] = {}
        """Types already looked up: the collector asks at every poll (for a source's label)."""

    def _every(self) -> dict[str, SourceType]:
        if self._all is None:
            self._all = _discover()
        return self._all

    def __getitem__(self, name: str) -> SourceType:
        found = self._found.get(name) if isinstance(name, str) else None
        if found is None:
            found = self._found[name] = self._look_up(name)
        return found

    def _look_up(self, name: str) -> SourceType:
        if self._all is None and isinstance(name, str) and name.isidentifier() and (
                not name.startswith("_")) and os.path.isfile(
                    os.path.join(os.path.dirname(__file__), name + ".py")):
            source_type = _module_type(name)
            if source_type is not None and source_type.name == name:
                return source_type
        return self._every()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._every())

    def __len__(self) -> int:
        return len(self._every())


def password_given_once(required: bool, name: str = "password"
                        ) -> Callable[[Mapping[str, Any]], None]:
    """A table check: ``password`` or ``password_file`` (a modem's ``pin`` or ``pin_file``:
    ``name``), not both (and one of them when the device always needs a login)."""
    def check(settings: Mapping[str, Any]) -> None:
        if settings.get(name) and settings.get(f"{name}_file"):
            raise ValueError(f"{name}_file: set {name} or {name}_file, not both")
        if required and not settings.get("password") and not settings.get("password_file"):
            raise ValueError("password_file: the router needs its password: name the file "
                             "that holds it (or set password)")
    return check


REFUSED_META = "login_refused:"
"""Store meta name prefix: the fingerprint of a source's settings whose login was refused."""
REFUSED_DEVICE_META = "login_refused_devices:"
"""Store meta name prefix: the devices that refused it (a modem's SIMs, by their ICCID), each
with the settings it refused, as ``device_fingerprint`` writes them, separated by spaces."""
SALT_META = "fingerprint_salt"


def settings_fingerprint(config: SourceConfig, salt: str) -> str:
    """What identifies the settings a login was refused with: the table's own settings and
    the contents of its ``*_file`` secrets (a corrected password file is a change), hashed
    with the store's own salt so that the store holds nothing that tells a password."""
    import hashlib
    import hmac
    import json
    from pathlib import Path

    parts = [json.dumps(dict(config.settings), sort_keys=True, default=str)]
    for key, value in sorted(config.settings.items()):
        if key.endswith("_file") and value:
            try:
                parts.append(Path(value).read_text())
            except OSError:
                parts.append("")
    return hmac.new(salt.encode(), "\0".join(parts).encode(), hashlib.sha256).hexdigest()


def store_salt(store: Any) -> str:
    """The store's salt for fingerprints, made at first use."""
    import secrets

    salt = store.get_meta(SALT_META)
    if salt is None:
        salt = secrets.token_hex(16)
        store.set_meta(SALT_META, salt)
    return salt


def device_fingerprint(settings: str, device: str, salt: str) -> str:
    """A device (a SIM's ICCID) that refused a login with the settings of fingerprint
    ``settings``, as the store keeps it: ``settings:device``, each hashed with its salt."""
    import hashlib
    import hmac

    return f"{settings[:16]}:" + hmac.new(salt.encode(), device.encode(),
                                          hashlib.sha256).hexdigest()[:32]


REFUSED_DEVICES_KEPT = 8


def mark_refused(store: Any, config: SourceConfig, device: str = "") -> None:
    """Keep in the store that this source's login (PIN) was refused with its settings, and by
    ``device`` (a SIM's ICCID) when the source tells it."""
    with store.consistent():  # the salt is made once
        salt = store_salt(store)
        settings = settings_fingerprint(config, salt)
        store.set_meta(REFUSED_META + config.name, settings)
        if device:
            kept = (store.get_meta(REFUSED_DEVICE_META + config.name) or "").split()
            found = device_fingerprint(settings, device, salt)
            kept = [mark for mark in kept if mark != found] + [found]
            store.set_meta(REFUSED_DEVICE_META + config.name,
                           " ".join(kept[-REFUSED_DEVICES_KEPT:]))


def forget_refused(store: Any, config: SourceConfig) -> None:
    """The device that refused the login is gone: the source is polled again. The devices that
    refused it stay known (a SIM put back is not tried again)."""
    store.set_meta(REFUSED_META + config.name, "")


def refused_devices(store: Any, config: SourceConfig) -> Callable[[str], bool] | None:
    """Whether a device (a SIM's ICCID) refused this source's login with its current settings;
    None when the store names no device for them."""
    kept = (store.get_meta(REFUSED_DEVICE_META + config.name) or "").split()
    if not kept:
        return None
    salt = store_salt(store)
    settings = settings_fingerprint(config, salt)
    ours = {mark for mark in kept if mark.startswith(f"{settings[:16]}:")}
    return (lambda device: device_fingerprint(settings, device, salt) in ours) if ours else None


def refused_in_store(store: Any, config: SourceConfig) -> bool:
    """Whether the store says this source's login was refused with its current settings."""
    mark = store.get_meta(REFUSED_META + config.name)
    return mark is not None and mark == settings_fingerprint(config, store_salt(store))


def source_schemas() -> SourceSchemas:
    return SOURCE_TYPES


def make_source(config: SourceConfig, clock: Clock) -> Source:
    return SOURCE_TYPES[config.type].create(config, clock)


def poll_interval(source: SourceConfig, config: Config) -> float:
    """Seconds between polls of ``source``: its own ``interval``, else its type's default, else
    ``collector.interval``."""
    default = SOURCE_TYPES[source.type].default_interval
    return source.interval or default or config.collector.interval


def label(source: SourceConfig) -> str:
    source_type = SOURCE_TYPES.get(source.type)
    return source_type.label if source_type else source.type


SOURCE_TYPES: Mapping[str, SourceType] = _SourceTypes()
"""Looked up at first use: the plug-ins import this module's names."""

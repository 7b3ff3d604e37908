"""The one config schema: defaults, TOML files, environment, command-line flags.

Precedence, lowest first: defaults < ``/etc/traffic/traffic.toml`` < ``--config FILE`` (or
``TRAFFIC_CONFIG``) < environment ``TRAFFIC_SECTION_KEY`` < ``--set section.key=value`` flags.
Every error names the key and where its value came from, in one line.
"""

import os
from collections.abc import Callable, Iterable, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from traffic import units
from traffic.hints import Any, Protocol
from traffic.record import Record, field
from traffic.toml_files import read_toml

SYSTEM_CONFIG = "/etc/traffic/traffic.toml"
ENV_PREFIX = "TRAFFIC_"
ENV_CONFIG_FILE = "TRAFFIC_CONFIG"
LOCAL_NETWORKS = ("127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                  "fc00::/7", "fe80::/10")
"""Loopback and the private ranges a home network uses: who may see the dashboard by default."""
LOOPBACK_NETWORKS = ("127.0.0.1/32", "::1/128")
KNOWN_NETWORKS = frozenset(LOCAL_NETWORKS + LOOPBACK_NETWORKS)
"""The defaults' networks, valid as written: checking them would import ``ipaddress`` (a tenth
of a ``python -c pass``) at every start-up."""


class _Pattern:
    """A regular expression compiled at its first use: most commands use none of them, and
    ``traffic status`` does not even import ``re``."""

    def __init__(self, pattern: str) -> None:
        self._pattern = pattern
        self._compiled: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._compiled is None:
            import re

            self._compiled = re.compile(self._pattern)
        return getattr(self._compiled, name)


class ConfigError(Exception):
    """A config problem, worded as one line that names the key and where it was set."""


class StoreConfig(Record):
    url: str


class CollectorConfig(Record):
    interval: float
    save_interval: float
    max_rate: int
    runtime_dir: str
    state_dir: str
    """Where a collector whose store is a server keeps its spool (``collector.spool``)."""


class SourceConfig(Record):
    """One ``[[sources]]`` table: the keys every source has, and its type's own ``settings``.

    A type's own keys are validated by its plug-in's schema (``collector/sources/``), handed to
    ``load_config`` by the program that knows the plug-ins; without it they stay as written.
    """

    type: str
    name: str
    """Prefix of its counters' store keys (``kernel:ppp0``); unique among the sources."""
    billed: bool
    """Its counters are the link the contract counts (see ``traffic.roles``)."""
    interval: float = 0.0
    """Seconds between polls; 0 means the type's default."""
    max_rate: int = 0
    """Bytes per second beyond which a jump is a glitch; 0 means ``collector.max_rate``."""
    settings: Mapping[str, Any] = field(default_factory=dict)


class QuotaConfig(Record):
    monthly: int
    daily: int
    billing_day: int
    thresholds: tuple[int, ...]
    unit_system: str


class WebConfig(Record):
    bind: str
    allow: tuple[str, ...]
    trusted_proxies: tuple[str, ...]


class EscalationStep(Record):
    run: tuple[str, ...]
    after: int
    """Failed attempts of the step before this one that lead to this one."""


class KeeperConfig(Record):
    enabled: bool
    check_every: float
    targets: tuple[str, ...]
    need: int
    connect: tuple[str, ...]
    disconnect: tuple[str, ...]
    max_fails: int
    lock_duration: float
    enforce_quota: bool
    timeout: float
    action_timeout: float
    idle_probe_every: float
    interface: str
    bind: bool
    escalation: tuple[EscalationStep, ...]


class NotifyTarget(Record):
    """One ``alerts.notify`` entry: an Apprise URL and the rules whose messages it gets."""

    url: str
    rules: tuple[str, ...] = ()
    """Rule or group names; empty: every rule."""


class AlertsConfig(Record):
    notify: tuple[NotifyTarget, ...]
    hourly_burst: int
    """Bytes in one hour that make a burst alert; 0: off."""
    daily_summary: str
    """Local time ``HH:MM`` of the daily summary; empty: off."""
    period_summary: bool
    link_down_after: float
    early_warning: bool


class SmsConfig(Record):
    """``[sms]``: commands by text message, on when ``allow`` names a number."""

    allow: tuple[str, ...]
    """The numbers whose messages are read as commands, in E.164 form (``+46700000000``)."""
    key: str
    key_file: str
    via: str
    """The source whose modem or router reads and sends the messages; "": the only one."""
    check_every: float
    session_run: tuple[str, ...]
    session_minutes: int
    """How long ``up`` without a number keeps the link up."""
    max_minutes: int
    reboot: str
    """"router", "box" or "" (the router when the messages come through one, else the box)."""
    reboot_command: tuple[str, ...]

    @property
    def enabled(self) -> bool:
        return bool(self.allow)


class Config(Record):
    site: str
    timezone: ZoneInfo
    store: StoreConfig
    collector: CollectorConfig
    sources: tuple[SourceConfig, ...]
    quota: QuotaConfig
    web: WebConfig
    keeper: KeeperConfig
    alerts: AlertsConfig
    sms: SmsConfig
    retention: Mapping[str, float]
    """Seconds kept per resolution ("raw", "5min", "hour", "day", "month") and for "events";
    0 keeps forever."""
    effective: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)
    """The merged settings as written by the user, for ``check-config``."""
    files: tuple[str, ...] = ()


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def _integer(low: int, high: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"expected a whole number from {low} to {high}, got {value!r}")
        return value
    return check


def _string_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"expected a list of strings, got {value!r}")
    return tuple(value)


def _percent_list(value: Any) -> tuple[int, ...]:
    if isinstance(value, str):
        value = [int(p) if p.strip().isdigit() else p for p in value.split(",")]
    check = _integer(1, 1000)
    if not isinstance(value, list):
        raise ValueError(f"expected a list of percentages, got {value!r}")
    return tuple(sorted(check(item) for item in value))


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _argv(value: Any) -> tuple[str, ...]:
    """A command as an argument list: it is run without a shell, so nothing is re-parsed."""
    if isinstance(value, str):
        raise ValueError(f"expected an argument list such as [\"pon\", \"provider\"], "
                         f"not a shell string: {value!r}")
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ValueError(f"expected a list of non-empty strings, got {value!r}")
    return tuple(value)


def _targets(value: Any) -> tuple[str, ...]:
    items = _string_list(value)
    for item in items:
        host, sep, port = item.rpartition(":")
        if item.startswith("dns:") and len(item) > 4:
            continue
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"bad target {item!r} (write 'host:port' such as '1.1.1.1:53', "
                             "or 'dns:name' such as 'dns:example.com')")
    if not items:
        raise ValueError("name at least one target")
    return items


class _ErrorAt(ValueError):
    """A bad value inside a list of tables: ``at`` (``[1].after``) completes the key's name."""

    def __init__(self, at: str, message: str) -> None:
        super().__init__(message)
        self.at = at


def _escalation(value: Any) -> tuple["EscalationStep", ...]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ValueError("expected [[keeper.escalation]] tables with 'run' and 'after'")
    return tuple(_escalation_step(index, item) for index, item in enumerate(value))


def _escalation_step(index: int, item: dict[str, Any]) -> "EscalationStep":
    unknown = sorted(set(item) - {"run", "after"})
    if unknown or "run" not in item:
        raise _ErrorAt(f"[{index}]", f"expected the keys 'run' and 'after', got {sorted(item)}")
    checks = {"run": _step_command, "after": _integer(1, 1000)}
    parsed = {}
    for key, raw in {"after": 1, **item}.items():
        try:
            parsed[key] = checks[key](raw)
        except ValueError as error:
            raise _ErrorAt(f"[{index}].{key}", str(error)) from None
    return EscalationStep(**parsed)


def _step_command(value: Any) -> tuple[str, ...]:
    command = _argv(value)
    if not command:
        raise ValueError("name the command this step runs, such as [\"usb-reset\", \"12d1:1506\"]")
    return command


def _bind(value: Any) -> str:
    text = _string(value)
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected host:port such as '127.0.0.1:8000', got {text!r}")
    return text


def _networks(value: Any) -> tuple[str, ...]:
    items = _string_list(value)
    for item in items:
        if item in KNOWN_NETWORKS:
            continue
        import ipaddress

        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError(f"bad network {item!r} (write e.g. '192.168.8.0/24')") from None
    return items



def _is_name(text: str) -> bool:
    """Letters, digits, ``_``, ``.`` and ``-`` only (``[\\w.-]+``, without compiling it)."""
    return bool(text) and all(char.isalnum() or char in "_.-" for char in text)


BARE_NUMBER = _Pattern(r"\s*\d+(?:\.\d+)?\s*")


def _site(value: Any) -> str:
    """A name that is also part of file names (``home.realtime.json``)."""
    text = _string(value)
    if not text:
        raise ValueError("must not be empty (write e.g. 'home')")
    if not _is_name(text) or text.startswith("."):
        raise ValueError(f"expected letters, digits, '.', '_' or '-', not starting with '.' "
                         f"(it names files), got {text!r}")
    return text


def _timezone(value: Any) -> str:
    text = _string(value)
    if text:
        try:
            ZoneInfo(text)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder such as "Europe"
            message = f"unknown time zone {text!r} (write e.g. 'Europe/Stockholm')"
            raise ValueError(message) from None
    return text


STORE_SCHEMES = ("sqlite://", "mongodb://", "mongodb+srv://")


def _store_url(value: Any) -> str:
    text = _string(value)
    scheme = next((each for each in STORE_SCHEMES if text.startswith(each)), "")
    if not scheme or len(text) <= len(scheme):
        shown = mask_text(text)
        raise ValueError(f"expected 'sqlite:///path/to/traffic.db' or "
                         f"'mongodb://host:27017/traffic', got {shown!r}")
    if scheme != "sqlite://":
        return text
    userinfo, file = _sqlite_userinfo(text.removeprefix("sqlite://"))
    if userinfo:
        user, colon, _ = userinfo.partition(":")
        shown = f"sqlite://{user}:{MASK}@{file}" if colon else f"sqlite://{MASK}@{file}"
        raise ValueError(f"a SQLite store is a file and takes no user name or password: write "
                         f"'sqlite://{file}' (got {shown!r})")
    return text


def _sqlite_userinfo(rest: str) -> tuple[str, str]:
    """``user:password@`` before a SQLite path, and the path after it; ``("", rest)`` without.

    Such a URL would otherwise name a relative folder ``user:password@`` (the password in a
    file name, and in every message that names the store)."""
    if rest.startswith("/") or "@" not in rest:
        return "", rest
    before_root = rest.find("@/")
    cut = before_root if before_root >= 0 else rest.index("@")
    return rest[:cut] or "@", rest[cut + 1:]


def _retention(value: Any) -> float:
    if value in ("forever", "0", 0):
        return 0.0
    return units.parse_duration(value)


SHORTEST_TOTALS_RETENTION_S = 32 * 86400
"""The longest billing period and a day: a period's total is read from these totals."""


def _totals_retention(value: Any) -> float:
    seconds = _retention(value)
    if 0 < seconds < SHORTEST_TOTALS_RETENTION_S:
        raise ValueError(f"keep totals at least '32d' (a whole billing period), or 'forever'; "
                         f"got {value!r}")
    return seconds


def _sized(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError(f"expected a string such as '40 GB' or '5s', got {value!r}")
        return parse(value)
    return check


def _positive_duration(value: Any) -> float:
    seconds = _sized(units.parse_duration)(value)
    if seconds <= 0:
        raise ValueError(f"must be longer than 0, got {value!r}")
    return seconds


ALERT_RULES = ("threshold", "daily_limit", "early_warning", "burst", "daily_summary",
               "period_summary", "link_down", "link_up", "new_ip", "device", "session")
ALERT_GROUPS = {"quota": ("threshold", "daily_limit", "early_warning", "burst"),
                "summary": ("daily_summary", "period_summary"),
                "link": ("link_down", "link_up", "new_ip", "session"),
                "router": ("device",)}
"""Names an ``alerts.notify`` entry's ``rules`` may use: a rule, or a group of rules."""
CLOCK_TIME = _Pattern(r"([01]\d|2[0-3]):[0-5]\d")


def _clock_time(value: Any) -> str:
    text = _string(value)
    if text and not CLOCK_TIME.fullmatch(text):
        raise ValueError(f"expected a local time such as '21:00', or '' for none, got {text!r}")
    return text


PHONE_NUMBER = _Pattern(r"\+[1-9][0-9]{6,14}")
"""E.164: a plus, the country code and the number, 7 to 15 digits in all."""
SMS_SCHEME = "modem://"


def phone_number(value: Any) -> str:
    """A phone number in E.164 form: ``+``, the country code and the number, 7 to 15 digits."""
    if not isinstance(value, str) or not PHONE_NUMBER.fullmatch(value):
        raise ValueError(f"expected a phone number as + and the country code and number, "
                         f"such as +46700000000, got {value!r}")
    return value


def sms_target(url: str) -> tuple[str, str]:
    """A ``modem://+46700000000`` or ``modem://NAME/+46700000000`` alert target as (the
    source's name, or "" for the only one that sends SMS; the number)."""
    rest = url[len(SMS_SCHEME):]
    parts = rest.split("/")
    if "?" in rest or len(parts) > 2 or not all(parts):
        raise ValueError(f"expected modem://+46700000000, or modem://NAME/+46700000000 with "
                         f"the name of the modem or router source, got {url!r}")
    source, number = parts if len(parts) == 2 else ("", parts[0])
    return source, phone_number(number)


def _notify(value: Any) -> tuple[NotifyTarget, ...]:
    """Apprise URLs, each a string or a table ``{url = "...", rules = ["quota"]}``."""
    if not isinstance(value, list):
        raise ValueError("expected a list of Apprise URLs such as [\"tweet://...\"]")
    return tuple(_notify_target(index, item) for index, item in enumerate(value))


def _notify_target(index: int, item: Any) -> NotifyTarget:
    if isinstance(item, dict):
        unknown = sorted(set(item) - {"url", "rules"})
        if unknown or "url" not in item:
            raise _ErrorAt(f"[{index}]", f"expected the keys 'url' and 'rules', got "
                                         f"{sorted(item)}")
        url, rules = item["url"], item.get("rules", [])
    else:
        url, rules = item, []
    if not isinstance(url, str) or "://" not in url or url.startswith("://"):
        raise _ErrorAt(f"[{index}]", "expected an Apprise URL such as 'mailtos://...' "
                                     "(the value is not shown)")
    if url.lower().startswith(SMS_SCHEME):
        try:
            sms_target(url)
        except ValueError as error:
            raise _ErrorAt(f"[{index}]", str(error)) from None
    if not isinstance(rules, list) or not all(isinstance(rule, str) for rule in rules):
        raise _ErrorAt(f"[{index}].rules", f"expected a list of rule names, got {rules!r}")
    known = (*ALERT_RULES, *ALERT_GROUPS)
    for rule in rules:
        if rule not in known:
            raise _ErrorAt(f"[{index}].rules", f"unknown rule {rule!r} (choose from "
                                               f"{', '.join(known)})")
    return NotifyTarget(url, tuple(rules))


SMS_KEY_LENGTH = 6


def _phone_numbers(value: Any) -> tuple[str, ...]:
    numbers = _string_list(value)
    for number in numbers:
        if not PHONE_NUMBER.fullmatch(number):
            raise ValueError(f"expected numbers in international form such as '+46700000000' "
                             f"(a plus, the country code, no spaces), got {number!r}")
    return numbers


def usable_sms_key(text: str) -> bool:
    """Long enough to guess badly, and one word (a message's first word is its key)."""
    return len(text) >= SMS_KEY_LENGTH and not any(char.isspace() for char in text)


def _sms_key(value: Any) -> str:
    text = secret(value)
    if text and not usable_sms_key(text):
        raise ValueError(f"expected at least {SMS_KEY_LENGTH} characters without spaces "
                         "(the value is not shown)")
    return text


def absolute_path(example: str) -> Callable[[Any], str]:
    """A check of a setting that names a file or folder by its absolute path ("" for none):
    the collector's working folder is not the user's."""
    def check(value: Any) -> str:
        path = _string(value)
        if path and not path.startswith("/"):
            raise ValueError(f"expected an absolute path such as {example!r}, got {path!r}")
        return path
    return check


def _choice(*choices: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        text = _string(value)
        if text not in choices:
            raise ValueError(f"expected one of {', '.join(map(repr, choices))}, got {text!r}")
        return text
    return check


# section -> key -> (default as the user would write it, validator)
SCHEMA: dict[str, Any] = {
    "site": ("home", _site),
    "timezone": ("", _timezone),
    "store": {"url": ("sqlite:///var/lib/traffic/traffic.db", _store_url)},
    "collector": {
        "interval": ("5s", _positive_duration),
        "save_interval": ("10m", _positive_duration),
        "max_rate": ("250 MB/s", _sized(units.parse_rate)),
        "runtime_dir": ("", _string),
        "state_dir": ("/var/lib/traffic", _string),
    },
    "quota": {
        "monthly": ("0", _sized(units.parse_size)),
        "daily": ("0", _sized(units.parse_size)),
        "billing_day": (1, _integer(1, 31)),
        "thresholds": ([50, 80, 100], _percent_list),
    },
    "web": {
        "bind": ("127.0.0.1:8000", _bind),
        "allow": (list(LOCAL_NETWORKS), _networks),
        "trusted_proxies": (list(LOOPBACK_NETWORKS), _networks),
    },
    "keeper": {
        "enabled": (False, _boolean),
        "check_every": ("30s", _positive_duration),
        "targets": (["1.1.1.1:53", "9.9.9.9:53"], _targets),
        "need": (1, _integer(1, 100)),
        "connect": (["pon", "provider"], _argv),
        "disconnect": ([], lambda v: _argv(v) if v != [] else ()),
        "max_fails": (4, _integer(1, 1000)),
        "lock_duration": ("5m", _positive_duration),
        "enforce_quota": (False, _boolean),
        "timeout": ("5s", _positive_duration),
        "action_timeout": ("60s", _positive_duration),
        "idle_probe_every": ("10m", _positive_duration),
        "interface": ("", _string),
        "bind": (False, _boolean),
        "escalation": ([], _escalation),
    },
    "alerts": {
        "notify": ([], lambda value: _notify(value)),
        "hourly_burst": ("0", _sized(units.parse_size)),
        "daily_summary": ("", lambda value: _clock_time(value)),
        "period_summary": (True, _boolean),
        "link_down_after": ("10m", _positive_duration),
        "early_warning": (True, _boolean),
    },
    "sms": {
        "allow": ([], _phone_numbers),
        "key": ("", _sms_key),
        "key_file": ("", absolute_path("/etc/traffic/sms-key")),
        "via": ("", _string),
        "check_every": ("30s", _positive_duration),
        "session_run": ([], lambda v: _argv(v) if v != [] else ()),
        "session_minutes": (30, _integer(1, 1440)),
        "max_minutes": (240, _integer(1, 1440)),
        "reboot": ("", _choice("", "router", "box")),
        "reboot_command": (["systemctl", "reboot"], _step_command),
    },
    "retention": {
        "raw": ("7d", _retention),
        "5min": ("60d", _totals_retention),
        "hour": ("730d", _totals_retention),
        "day": ("forever", _totals_retention),
        "month": ("forever", _totals_retention),
        "gauges": ("60d", _retention),
        "events": ("730d", _retention),
    },
}

def _automatic_duration(value: Any) -> float:
    return 0.0 if value in ("", 0, "0") else _positive_duration(value)


def _automatic_rate(value: Any) -> int:
    return 0 if value in ("", 0, "0") else _sized(units.parse_rate)(value)


COMMON_SOURCE_SCHEMA: dict[str, Any] = {
    "name": ("", _string),
    "billed": (None, _boolean),
    "interval": ("", _automatic_duration),
    "max_rate": ("", _automatic_rate),
}
"""The keys of every ``[[sources]]`` table besides ``type``; a type's plug-in adds its own.
``billed`` defaults to true for the first table, false for the others; ``name`` to the type."""
DEFAULT_SOURCES: list[dict[str, Any]] = [{"type": "kernel"}]
KeySpecs = Mapping[str, tuple[Any, Callable[[Any], Any]]]
"""Key -> (default as the user writes it, validator)."""


class SourceSchema(Protocol):
    """What a source type's plug-in tells the config of its own keys."""

    @property
    def schema(self) -> KeySpecs: ...

    def check_table(self, settings: Mapping[str, Any]) -> None:
        """Raise ``ValueError("KEY: what is wrong")`` for what no single key can check."""


SourceSchemas = Mapping[str, SourceSchema]
"""Source type -> its schema, from the plug-ins."""

MASK = "********"
SECRET_KEY = _Pattern(r"(?i)(password|secret|token|api_key|apikey|(?<![a-z])pin(?![a-z])"
                      r"|^key(?![a-z]))")
"""Keys whose values are secret: ``password``, a SIM's ``pin`` (not ``ping``), ``sms.key``
(not ``public_key``)..."""
URL_PASSWORD = _Pattern(r"(://[^:/@\s]+:)([^@/\s]+)(?=@)")
INLINE_SECRET = _Pattern(
    r"(?i)((?<![a-z0-9])(?:password|passwd|pass|pin|puk|secret|token|api_key|apikey|key)=['\"]?)"
    r"([^,;&\s'\"]+)")
"""``password=hunter2`` inside any text, e.g. ``--simple-connect=apn=internet,password=...``;
``SIM_PIN=1234`` and ``APN_PASS=...`` too (a ``_`` before the name is allowed)."""
AT_PIN = _Pattern(r"(?i)((?<![a-z0-9])AT\+CPIN2?=)([^\s;]+)")
"""A modem's PIN command: ``AT+CPIN="1234"``, ``AT+CPIN="PUK","new PIN"``."""
SECRETS_IN_TEXT = (URL_PASSWORD, INLINE_SECRET, AT_PIN)


def defaults() -> dict[str, Any]:
    def unpack(schema: dict[str, Any]) -> dict[str, Any]:
        return {key: unpack(spec) if isinstance(spec, dict) else spec[0]
                for key, spec in schema.items()}
    settings = unpack(SCHEMA)
    settings["sources"] = [dict(source) for source in DEFAULT_SOURCES]
    return settings


def system_timezone() -> str:
    """The system's zone name: ``$TZ``, ``/etc/timezone`` or the ``/etc/localtime`` link."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    try:
        with open("/etc/timezone") as handle:
            candidates.append(handle.read().strip())
    except OSError:
        candidates.append("")
    try:
        candidates.append(os.readlink("/etc/localtime").split("zoneinfo/", 1)[-1])
    except OSError:
        candidates.append("")
    for name in candidates:
        try:
            if name:
                return str(ZoneInfo(name))
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return "UTC"


class _Loader:
    """Merges layers of raw settings while remembering where each key was set."""

    def __init__(self, source_schemas: SourceSchemas | None = None) -> None:
        self.source_schemas = source_schemas
        self.settings = defaults()
        self.origin: dict[str, str] = {}
        self.files: list[str] = []

    def where(self, dotted: str) -> str:
        section = dotted.split(".", 1)[0].split("[", 1)[0]
        return self.origin.get(dotted) or self.origin.get(section) or "default"

    def merge_file(self, path: str | os.PathLike[str]) -> None:
        try:
            layer = read_toml(path)
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except PermissionError:
            raise ConfigError(f"{path}: cannot read config file (permission denied)") from None
        except IsADirectoryError:
            raise ConfigError(f"{path}: is a directory, not a config file") from None
        except UnicodeDecodeError as error:
            raise ConfigError(f"{path}: not UTF-8 text (byte {error.start}); save it as UTF-8"
                              ) from None
        except OSError as error:
            raise ConfigError(f"{path}: cannot read config file ({error.strerror})") from None
        except ValueError as error:  # tomllib.TOMLDecodeError
            raise ConfigError(f"{path}: not valid TOML: {error}") from None
        self.files.append(str(path))
        self.merge(layer, str(path))

    def merge(self, layer: dict[str, Any], origin: str, prefix: str = "") -> None:
        target = self.settings
        for part in prefix.split(".")[:-1] if prefix else []:
            target = target.setdefault(part, {})
        for key, value in layer.items():
            dotted = f"{prefix}{key}"
            if isinstance(value, dict) and isinstance(target.get(key), dict):
                self.merge(value, origin, f"{dotted}.")
            else:
                target[key] = value
                self.origin[dotted] = origin

    def set_dotted(self, dotted: str, text: str, origin: str) -> None:
        value = _parse_scalar(text)
        parts = dotted.split(".")
        if parts[0] == "sources":
            raise ConfigError(f"{origin}: 'sources' can only be set in a config file")
        schema: Any = SCHEMA
        for part in parts:
            if not isinstance(schema, dict) or part not in schema:
                raise ConfigError(f"{origin}: unknown key '{dotted}'")
            schema = schema[part]
        if isinstance(schema, dict):
            raise ConfigError(f"{origin}: '{dotted}' is a section; name one of its keys")
        layer: dict[str, Any] = {parts[-1]: value}
        for part in reversed(parts[:-1]):
            layer = {part: layer}
        self.merge(layer, origin)

    def merge_environment(self, environ: Mapping[str, str]) -> None:
        for name in sorted(environ):
            if not name.startswith(ENV_PREFIX) or name == ENV_CONFIG_FILE:
                continue
            self.set_dotted(_env_key(name), environ[name], f"environment {name}")


def _env_key(name: str) -> str:
    rest = name[len(ENV_PREFIX):].lower()
    for section, spec in SCHEMA.items():
        if isinstance(spec, dict) and rest.startswith(f"{section}_"):
            return f"{section}.{rest[len(section) + 1:]}"
    return rest


def _parse_scalar(text: str) -> Any:
    """A value given on the command line or in the environment: TOML if it parses, else text.

    A TOML value that begins with a letter is true, false, inf or nan: any other such text is
    known to be text without importing ``tomllib`` (a few ms of ``traffic --set ... status``).
    """
    if text[:1].isalpha() and not text.startswith(("true", "false", "inf", "nan")):
        return text
    import tomllib

    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def load_config(
    path: str | os.PathLike[str] | None = None,
    overrides: list[str] | None = None,
    environ: Mapping[str, str] | None = None,
    system_path: str | os.PathLike[str] | None = SYSTEM_CONFIG,
    source_schemas: SourceSchemas | None = None,
) -> Config:
    """Build the effective config. Raises ConfigError with a one-line message.

    ``source_schemas`` validates each source type's own keys; without it (the web app, which
    knows no plug-ins) any type is taken and its own keys are kept as written.
    """
    environ = os.environ if environ is None else environ
    loader = _Loader(source_schemas)
    if system_path is not None and path_exists(system_path):
        loader.merge_file(system_path)
    path = path or environ.get(ENV_CONFIG_FILE) or None
    if path:
        loader.merge_file(path)
    loader.merge_environment(environ)
    for item in overrides or []:
        dotted, sep, text = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {mask_text(item)}: expected section.key=value")
        loader.set_dotted(dotted.strip(), text.strip(), "--set")
    return _build(loader)


def path_exists(path: str | os.PathLike[str]) -> bool:
    """``Path.exists`` without importing ``pathlib``: a file that cannot be looked at (no
    permission) is an error, not a missing file."""
    import errno

    try:
        os.stat(path)
    except OSError as error:
        if error.errno in (errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP):
            return False
        raise
    return True


def _validate(loader: _Loader, schema: dict[str, Any], raw: dict[str, Any], prefix: str) -> dict:
    parsed: dict[str, Any] = {}
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        spec = schema.get(key)
        if spec is None:
            raise ConfigError(f"{loader.where(dotted)}: unknown key '{dotted}'")
        if isinstance(spec, dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{loader.where(dotted)}: '{dotted}' must be a [{dotted}] table")
            parsed[key] = _validate(loader, spec, value, f"{dotted}.")
            continue
        try:
            parsed[key] = spec[1](value)
        except _ErrorAt as error:
            raise ConfigError(f"{loader.where(dotted)}: {dotted}{error.at}: "
                              f"{_masked(key, value, str(error))}") from None
        except ValueError as error:
            raise ConfigError(f"{loader.where(dotted)}: {dotted}: "
                              f"{_masked(key, value, str(error))}") from None
    return parsed


def _masked(key: str, value: Any, message: str) -> str:
    """A validator's message with the secrets in the value it repeats masked: those inside any
    text (``mask_text``), and the whole value of a secret-named key."""
    if SECRET_KEY.search(key) and not key.endswith("_file"):
        for secret in {str(value), repr(value)} - {""}:
            message = message.replace(secret, MASK)
    return mask_text(message)


def _sources(loader: _Loader, raw: Any) -> tuple[SourceConfig, ...]:
    where = loader.where("sources")
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        raise ConfigError(f"{where}: sources: expected [[sources]] tables")
    schemas = loader.source_schemas
    sources: list[SourceConfig] = []
    for index, item in enumerate(raw):
        kind = item.get("type")
        if schemas is not None and kind not in schemas:
            known = ", ".join(sorted(schemas))
            raise ConfigError(f"{where}: sources[{index}].type: expected one of {known}, "
                              f"got {mask_text(repr(kind))}")
        if not isinstance(kind, str) or not kind:
            raise ConfigError(f"{where}: sources[{index}].type: expected the source's type, "
                              f"such as 'kernel', got {mask_text(repr(kind))}")
        common = {key: value for key, value in item.items() if key in COMMON_SOURCE_SCHEMA}
        own = {key: value for key, value in item.items()
               if key != "type" and key not in COMMON_SOURCE_SCHEMA}
        parsed = _validate(loader, COMMON_SOURCE_SCHEMA, common, f"sources[{index}].")
        if schemas is not None:
            own = {**_defaults_of(schemas[kind].schema),
                   **_validate(loader, schemas[kind].schema, own, f"sources[{index}].")}
            try:
                schemas[kind].check_table(own)
            except ValueError as error:
                raise ConfigError(f"{where}: sources[{index}].{mask_text(str(error))}"
                                  ) from None
        name = parsed.get("name") or kind
        if not _is_name(name) or ":" in name:
            raise ConfigError(f"{where}: sources[{index}].name: expected letters, digits, '.', "
                              f"'_' or '-', got {mask_text(repr(name))}")
        for other, earlier in enumerate(sources):
            if earlier.name == name:
                raise ConfigError(
                    f"{where}: sources[{index}].name: {name!r} already names sources[{other}]; "
                    f"give this one its own name (name = \"{kind}2\")")
        billed = parsed.get("billed")
        sources.append(SourceConfig(
            type=kind, name=name, billed=index == 0 if billed is None else billed,
            interval=parsed.get("interval", 0.0), max_rate=parsed.get("max_rate", 0),
            settings=own))
    return tuple(sources)


def _defaults_of(schema: KeySpecs) -> dict[str, Any]:
    """A schema's defaults, validated as a user's value would be."""
    return {key: check(default) for key, (default, check) in schema.items()}


def _build(loader: _Loader) -> Config:
    raw = loader.settings
    raw_sources = raw.pop("sources")
    sources = _sources(loader, raw_sources)
    checked = _validate(loader, SCHEMA, raw, "")
    raw["sources"] = raw_sources
    timezone = checked["timezone"] or system_timezone()
    collector = checked["collector"]
    quota = checked["quota"]
    _check_keeper(loader, checked["keeper"])
    _check_sms(loader, checked["sms"], sources)
    return Config(
        site=checked["site"],
        timezone=ZoneInfo(timezone),
        store=StoreConfig(**checked["store"]),
        collector=CollectorConfig(**collector),
        sources=sources,
        quota=QuotaConfig(unit_system=units.unit_system(raw["quota"]["monthly"]), **quota),
        web=WebConfig(**checked["web"]),
        keeper=KeeperConfig(**checked["keeper"]),
        alerts=AlertsConfig(**checked["alerts"]),
        sms=SmsConfig(**checked["sms"]),
        retention=checked["retention"],
        effective=raw,
        files=tuple(loader.files),
    )


def _check_keeper(loader: _Loader, keeper: dict[str, Any]) -> None:
    """What no single [keeper] key can check alone."""
    if keeper["enabled"] and not keeper["connect"]:
        raise ConfigError(f"{loader.where('keeper.connect')}: keeper.connect: name the command "
                          "that brings the link up, such as [\"pon\", \"provider\"] (the "
                          "keeper is enabled)")
    if keeper["need"] > len(keeper["targets"]):
        raise ConfigError(f"{loader.where('keeper.need')}: keeper.need: {keeper['need']} is "
                          f"more than the {len(keeper['targets'])} keeper.targets; no probe "
                          "could succeed")


def _check_sms(loader: _Loader, sms: dict[str, Any], sources: tuple[SourceConfig, ...]) -> None:
    """What no single [sms] key can check alone."""
    def fail(key: str, message: str, set_in: str = "") -> ConfigError:
        where = loader.where(f"sms.{set_in or key}")
        return ConfigError(f"{where}: sms.{key}: {message}")

    if sms["key"] and sms["key_file"]:
        raise fail("key_file", "set key or key_file, not both")
    if not sms["allow"]:
        if sms["key"] or sms["key_file"]:
            raise fail("allow", "name the numbers that may send commands, such as "
                                "[\"+46700000000\"] (sms.key is set)",
                       "key" if sms["key"] else "key_file")
        return
    if not sms["key"] and not sms["key_file"]:
        raise fail("key_file", "commands by text message need their key: name the file that "
                               "holds it (or set key)", "allow")
    if sms["via"] and sms["via"] not in {source.name for source in sources}:
        names = ", ".join(repr(source.name) for source in sources)
        raise fail("via", f"no [[sources]] table is named {sms['via']!r} (there are {names})")
    if sms["session_minutes"] > sms["max_minutes"]:
        raise fail("session_minutes", f"{sms['session_minutes']} is more than sms.max_minutes "
                                      f"({sms['max_minutes']})")


def mask_secrets(settings: Any, key: str = "") -> Any:
    """A copy with the values of secret-named keys replaced by ``********``, and the secrets
    inside any text too (see ``secrets_in``)."""
    if isinstance(settings, dict):
        return {name: mask_secrets(value, "notify" if key == "notify" and name == "url"
                                   else name) for name, value in settings.items()}
    if isinstance(settings, list):
        return [mask_secrets(item, key) for item in settings]
    if key == "notify" and isinstance(settings, str):
        return mask_url(settings)
    if SECRET_KEY.search(key) and not key.endswith("_file") and settings not in ("", None):
        return MASK
    if isinstance(settings, str):
        return mask_text(settings)
    return settings


def shown_settings(settings: dict[str, Any], source_schemas: SourceSchemas | None = None
                   ) -> dict[str, Any]:
    """The settings as ``check-config`` prints them: secrets masked, a duration written as a
    bare number with its unit (``5`` as ``"5s"``, a retention of ``0`` as ``"forever"``), and
    every source with all its keys."""
    shown = mask_secrets(settings)
    _show_durations(SCHEMA, shown)
    schemas = source_schemas or {}
    shown["sources"] = [_full_source(index, source, schemas[source["type"]].schema
                                     if source["type"] in schemas else None)
                        for index, source in enumerate(shown["sources"])]
    return shown


def _show_durations(schema: dict[str, Any], values: dict[str, Any]) -> None:
    for key, spec in schema.items():
        if key not in values:
            continue
        if isinstance(spec, dict):
            if isinstance(values[key], dict):
                _show_durations(spec, values[key])
        elif spec[1] in (_positive_duration, _retention, _totals_retention):
            values[key] = _duration_shown(values[key], forever=spec[1] is not _positive_duration)


def _duration_shown(value: Any, forever: bool) -> Any:
    if isinstance(value, str) and not BARE_NUMBER.fullmatch(value):
        return value  # as written: "5s", "forever"
    seconds = units.parse_duration(value)
    return "forever" if forever and seconds == 0 else units.duration_text(seconds)


def _full_source(index: int, source: dict[str, Any], schema: KeySpecs | None
                 ) -> dict[str, Any]:
    common = {key: spec[0] for key, spec in COMMON_SOURCE_SCHEMA.items()}
    common.update(name=source["type"], billed=index == 0)
    own = {key: spec[0] for key, spec in (schema or {}).items()}
    full = mask_secrets({"type": source["type"], **common, **own, **source})
    for key in ("interval", *(key for key, spec in (schema or {}).items()
                              if spec[1] in (_positive_duration, _automatic_duration))):
        if full.get(key) not in ("", None):
            full[key] = _duration_shown(full[key], forever=False)
    return full


def secrets_in(text: str) -> list[str]:
    """The secrets inside a text: a URL's password (``scheme://user:PASSWORD@host``) and the
    values of ``password=``, ``passwd=``, ``pass=``, ``pin=``, ``puk=``, ``secret=``,
    ``token=``, ``key=``, ``apikey=`` and ``api_key=`` (also after ``_``, as in ``SIM_PIN=``),
    up to a ``,``, ``;``, ``&``, quote or space, and the arguments of ``AT+CPIN=``."""
    return [match.group(2) for pattern in SECRETS_IN_TEXT for match in pattern.finditer(text)]


NOTIFY_URL = _Pattern(r"(?i)([a-z][a-z0-9+.-]*://)(\S+)")


def mask_url(url: str) -> str:
    """A notification URL with everything after its scheme hidden: its tokens may be in the
    user part, the path or the query, depending on the service (``tweet://ckey/csecret/...``)."""
    found = NOTIFY_URL.match(url)
    return f"{found.group(1)}{MASK}" if found else MASK


def url_secrets(url: str) -> list[str]:
    """The parts of a notification URL that may be secret, as a log line must not show them:
    the user part, each piece of the path and each query value, and the host too unless it is
    a host name or an address (``tweet://CONSUMER_KEY/...`` keeps a key there). Query keys,
    ports and host names stay readable in errors."""
    from urllib.parse import parse_qsl, urlsplit

    if url.lower().startswith(SMS_SCHEME):
        return []  # a source's name and a phone number: no secret
    found = NOTIFY_URL.match(url)
    if not found:
        return [url] if url else []
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return [found.group(2)]
    pieces = [found.group(2)]
    if "@" in parts.netloc:
        pieces += parts.netloc.rsplit("@", 1)[0].split(":")
    elif host and "." not in host and host != "localhost":
        pieces += [parts.netloc, *parts.netloc.split(":")]  # a bot token, a key
    pieces += [piece for piece in parts.path.split("/") if piece]
    pieces += [value for _, value in parse_qsl(parts.query)]
    return [piece for piece in pieces if len(piece) >= 3]


def mask_known(text: str, secrets: Iterable[str]) -> str:
    """``text`` with the config's secret values masked where they stand as whole tokens
    (``1234`` in ``pin 1234``, not in ``abcd1234``), longest first, and the secrets written in
    the text itself masked too (``mask_text``)."""
    import re

    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = re.sub(rf"(?<!\w){re.escape(secret)}(?!\w)", MASK, text)
    return mask_text(text)


def mask_text(text: str) -> str:
    if "=" not in text and "://" not in text:
        return text  # every pattern needs one: nothing to compile for the usual text
    for pattern in SECRETS_IN_TEXT:
        text = pattern.sub(rf"\1{MASK}", text)
    return text


# What plug-ins build their schemas from: the validators every other setting uses.
text = _string
text_list = _string_list
whole_number = _integer
true_or_false = _boolean
duration = _positive_duration
size = _sized(units.parse_size)
rate = _sized(units.parse_rate)
command = _argv


def secret(value: Any) -> str:
    """Text, like ``text``, but a wrong value is never repeated in the error."""
    if not isinstance(value, str):
        raise ValueError("expected a string in quotes (the value is not shown)")
    return value


def read_secret_file(path: str, key: str) -> str:
    """The secret kept in a file such as ``/etc/traffic/router-password`` (its first line),
    or a ConfigError naming ``key`` and what is wrong; the secret itself is never shown."""
    from pathlib import Path

    try:
        return Path(path).read_text().splitlines()[0].strip() if Path(path).stat().st_size \
            else ""
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or "not text"
        raise ConfigError(f"{key}: cannot read {path} ({reason})") from None


def secret_values(settings: dict) -> list[str]:
    """Every secret value in the config, longest first, to be masked in command output, logs
    and events."""
    masked = mask_secrets(settings)
    found: list[str] = []

    def walk(original: object, hidden: object) -> None:
        if isinstance(original, dict) and isinstance(hidden, dict):
            for name in original:
                walk(original[name], hidden[name])
        elif isinstance(original, list) and isinstance(hidden, list):
            for a, b in zip(original, hidden, strict=False):
                walk(a, b)
        elif isinstance(original, str) and original != hidden:
            if hidden == MASK:
                found.append(original)
            elif hidden == mask_url(original):
                found.extend(url_secrets(original))
            else:
                found.extend(secrets_in(original))
    walk(settings, masked)
    return sorted(set(found), key=len, reverse=True)  # a whole secret before its pieces

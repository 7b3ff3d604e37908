"""Each configured source as the readers show it: answering or not, its latest gauges and the
signal's word, from what the collector published after its latest poll of it.

The CLI, the JSON API, the metrics and the pages all read this, so they say the same.
"""

from zoneinfo import ZoneInfo

from traffic.config import Config, SourceConfig, mask_text
from traffic.hints import Any
from traffic.periods import from_ms
from traffic.published import read_realtime, read_sources
from traffic.record import Record, field
from traffic.signal import gauges_quality
from traffic.store import Store

UP, DOWN, REFUSED, UNKNOWN = "up", "down", "refused", "unknown"
STATES = (UP, DOWN, REFUSED, UNKNOWN)
"""up: it answered its latest poll; down: it is not answering; refused: it refused the login
and is not asked again until its settings change; unknown: the collector has not published it
(not running yet, or this table is new)."""
LINK_GAUGES = ("operator", "network_type", "connection", "registration", "sim", "rsrp", "sinr",
               "rsrq", "rssi")
"""A source that reports any of these sees the mobile link itself (a router, a modem): a modem
without a SIM, or not registered, still has its panel to say so."""


class SourceState(Record):
    name: str
    index: int
    """Its place among the ``[[sources]]`` tables, as settings name it: ``sources[1]``."""
    type: str
    label: str
    """What the family calls it ("router", "this box"), from its plug-in through the
    collector; the source's name until the collector has published it."""
    billed: bool
    state: str
    read_at: int | None = None
    failing_since: int | None = None
    error: str = ""
    refused: bool = False
    gauges: dict[str, float | str] = field(default_factory=dict)
    setting: str = ""
    """The setting to correct when its login was refused, such as ``sources[1].password``."""

    @property
    def quality(self) -> str | None:
        return gauges_quality(self.gauges)

    @property
    def sees_link(self) -> bool:
        return any(name in self.gauges for name in LINK_GAUGES)

    @property
    def subject(self) -> str:
        return subject(self.label)

    def as_dict(self, tz: ZoneInfo) -> dict[str, Any]:
        def iso(ms: int | None) -> str | None:
            return None if ms is None else from_ms(ms, tz).isoformat(timespec="seconds")

        return {"state": self.state, "label": self.label, "type": self.type,
                "billed": self.billed, "read_at": self.read_at, "read_at_iso": iso(self.read_at),
                "failing_since": self.failing_since,
                "failing_since_iso": iso(self.failing_since), "error": self.error,
                "refused": self.refused, "setting": self.setting or None,
                "gauges": dict(self.gauges), "quality": self.quality}


def subject(label: str) -> str:
    """A label at the start of a sentence: "The router", "This box"."""
    if label.lower().startswith(("this ", "my ", "our ")):
        return label[:1].upper() + label[1:]
    return f"The {label}"


STALE_POLLS = 3
STALE_GRACE_MS = 60_000


def source_states(config: Config, store: Store, now: int) -> list[SourceState]:
    """Every configured source, in the order of its table. A source whose latest reading is
    older than three of its polls and a minute (the collector has stopped, or hangs) is
    ``unknown``: its last values are not shown as if they were current."""
    published = read_sources(config, read_realtime(store))
    return [_state(index, source, published.get(source.name), now)
            for index, source in enumerate(config.sources)]


def is_stale(entry: dict[str, Any], now: int) -> bool:
    read_at = entry.get("read_at")
    interval = entry.get("interval_s")
    if read_at is None or not isinstance(interval, int | float) or isinstance(interval, bool):
        return False
    return now - read_at > STALE_POLLS * interval * 1000 + STALE_GRACE_MS


def _state(index: int, source: SourceConfig, entry: dict[str, Any] | None, now: int
           ) -> SourceState:
    where = f"sources[{index}]"
    if entry is None or (entry.get("failing_since") is None and entry.get("refused") is not True
                         and is_stale(entry, now)):
        return SourceState(source.name, index, source.type, source.name, source.billed, UNKNOWN)
    refused = entry.get("refused") is True
    failing_since = entry.get("failing_since")
    read_at = entry.get("read_at")
    state = REFUSED if refused else DOWN if failing_since is not None else (
        UP if read_at is not None else UNKNOWN)
    label = entry.get("label")
    return SourceState(
        source.name, index, source.type, label if isinstance(label, str) and label
        else source.name, source.billed, state, read_at, failing_since,
        mask_text(str(entry.get("error") or "")), refused, dict(entry.get("gauges") or {}),
        f"{where}.{secret_key(source)}" if refused else "")


def secret_key(source: SourceConfig) -> str:
    """Where its password (a modem's PIN) comes from: ``password_file`` (``pin_file``) when
    the table sets one."""
    name = "pin" if source.type == "modem" else "password"
    return f"{name}_file" if source.settings.get(f"{name}_file") else name


def billed_label(states: list[SourceState]) -> str:
    """What the bill's counters are called together: "this box", "router"."""
    labels = list(dict.fromkeys(state.label for state in states if state.billed))
    return " and ".join(labels) or "the bill"

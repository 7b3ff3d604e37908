"""``/metrics`` in the Prometheus text format, for people who watch the box with their own tools."""

from flask import Blueprint, Response, current_app, request

from traffic.config import ALERT_RULES, Config
from traffic.quota import usage
from traffic.roles import typed_keys
from traffic.signal import number
from traffic.sites import site_readers
from traffic.source_state import UP, SourceState, source_states
from traffic.store import ALERT_OUTCOMES, BILLED, AlertCounts, Store
from web import params
from web.db import site_reader, traffic_config

bp = Blueprint("metrics", __name__)


def _labels(**labels: str) -> str:
    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return "{" + ",".join(f'{name}="{escape(value)}"' for name, value in labels.items()) + "}"


class Exposition:
    """Metric families in the order first met, each with its samples of every site: the text
    format wants a family's samples together, under one HELP and TYPE."""

    def __init__(self) -> None:
        self.families: dict[str, tuple[str, str, list[str]]] = {}

    def family(self, name: str, help_text: str, kind: str = "gauge") -> list[str]:
        """The sample lines of family ``name``, to append to."""
        return self.families.setdefault(name, (help_text, kind, []))[2]

    def text(self) -> str:
        lines = []
        for name, (help_text, kind, samples) in self.families.items():
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *samples]
        return "\n".join(lines) + "\n"


@bp.get("/metrics")
def metrics_view() -> Response:
    """Every site of the store (one scrape covers the database), or ``?site=`` only."""
    params.refuse_unknown("site")
    config = traffic_config()
    now = current_app.config["CLOCK"]()
    out = Exposition()
    asked = site_reader()
    readers = [asked] if "site" in request.args else site_readers(config, asked, now)
    for reader in readers:
        site_metrics(out, reader.config, reader.store, now)
    return Response(out.text(), content_type="text/plain; version=0.0.4; charset=utf-8")


def site_metrics(out: Exposition, config: Config, store: Store, now: int) -> None:
    site = config.site
    counted = out.family("traffic_bytes_total", "Bytes counted on an interface since the store "
                         "began, by the source that counted them; sum billed=\"true\" for the "
                         "bill.", "counter")
    typed = {key.key: key for key in typed_keys(store, config)}
    for key in store.known_keys():
        rx, tx = store.totals(0, now + 1, [key])
        for direction, value in (("rx", rx), ("tx", tx)):
            labels = _labels(site=site, source=typed[key].source, iface=typed[key].name,
                             direction=direction,
                             billed=str(typed[key].role == BILLED).lower())
            counted.append(f"traffic_bytes_total{labels} {value}")
    current = usage(store, config, now)
    gauges = [
        ("traffic_quota_limit_bytes", "Bytes allowed in the billing period (0: no limit).",
         current.limit),
        ("traffic_quota_used_bytes", "Bytes used in the current billing period.", current.total),
        ("traffic_quota_estimate_bytes", "Bytes expected by the end of the billing period.",
         current.estimate),
        ("traffic_period_end_timestamp_seconds", "When the current billing period ends.",
         current.period_end / 1000),
        ("traffic_last_sample_age_seconds", "Seconds since the collector's latest reading.",
         current.sample_age_s if current.sample_age_s is not None else float("nan")),
    ]
    for name, help_text, value in gauges:
        out.family(name, help_text).append(f"{name}{_labels(site=site)} {value}")
    source_metrics(out, source_states(config, store, now), site)
    alert_metrics(out, store.alert_counts(), site)


SOURCE_GAUGES = (
    ("traffic_signal_rsrp_dbm", "rsrp", "Reference signal received power (RSRP), dBm."),
    ("traffic_signal_rsrq_db", "rsrq", "Reference signal received quality (RSRQ), dB."),
    ("traffic_signal_sinr_db", "sinr", "Signal to interference and noise ratio (SINR), dB."),
    ("traffic_signal_rssi_dbm", "rssi", "Received signal strength (RSSI), dBm."),
)
SOURCE_PAIRS = (
    ("traffic_router_month_bytes", ("month_rx", "month_tx"),
     "Bytes in the router's own month statistics (its month, not the billing period)."),
    ("traffic_router_rate_bytes_per_second", ("rx_rate", "tx_rate"),
     "The rates the router reports, bytes per second."),
)
INFO_GAUGES = ("operator", "network_type", "connection", "registration", "sim", "roaming",
               "band")


def source_metrics(out: Exposition, states: list[SourceState], site: str) -> None:
    """Whether each source answers, and the latest gauges of those that do (a value of a source
    that is not answering would be stale)."""
    out.family("traffic_source_up", "1 when the source answered its latest poll.").extend(
        f"traffic_source_up{_labels(site=site, source=state.name)} {int(state.state == UP)}"
        for state in states)
    answering = [state for state in states if state.state == UP]
    info = out.family("traffic_source_info", "What a source says of the mobile link, in labels.")
    for state in answering:
        text = {name: str(state.gauges[name]) for name in INFO_GAUGES if name in state.gauges}
        if state.quality:
            text["quality"] = state.quality
        labels = _labels(site=site, source=state.name, type=state.type, label=state.label,
                         **text)
        info.append(f"traffic_source_info{labels} 1")
    for metric, gauge, help_text in SOURCE_GAUGES:
        out.family(metric, help_text).extend(
            f"{metric}{_labels(site=site, source=state.name)} {value:g}"
            for state in answering if (value := number(state.gauges.get(gauge))) is not None)
    for metric, (rx_name, tx_name), help_text in SOURCE_PAIRS:
        samples = out.family(metric, help_text)
        for state in answering:
            for direction, gauge in (("rx", rx_name), ("tx", tx_name)):
                value = number(state.gauges.get(gauge))
                if value is not None:
                    labels = _labels(site=site, source=state.name, direction=direction)
                    samples.append(f"{metric}{labels} {value:.0f}")


KEPT = "counted from the events the store keeps (retention.events, two years by default)"


def alert_metrics(out: Exposition, counts: AlertCounts, site: str) -> None:
    """Alerts raised and their deliveries by rule, every rule listed (0 until it happens)."""
    rules = [*ALERT_RULES, *sorted({rule for _, rule in counts.events} - set(ALERT_RULES))]
    out.family("traffic_alerts_total", "Alerts raised, by rule (a threshold recorded quietly "
               f"beside a higher one included), {KEPT}.", "counter").extend(
        f"traffic_alerts_total{_labels(site=site, rule=rule)} "
        f"{counts.events.get(('alert', rule), 0)}" for rule in rules)
    out.family("traffic_alert_deliveries_total", "Alert messages by rule and outcome: sent, "
               "failed (each failed attempt; it is tried again), given_up or unconfirmed (it "
               f"may have gone; not sent again), {KEPT}.", "counter").extend(
        f"traffic_alert_deliveries_total{_labels(site=site, rule=rule, outcome=outcome)} "
        f"{counts.events.get((kind, rule), 0)}"
        for rule in rules for kind, outcome in ALERT_OUTCOMES.items())
    out.family("traffic_alert_deliveries_pending", "Alert messages waiting to be sent: to be "
               "tried again, or waiting for the link.").append(
        f"traffic_alert_deliveries_pending{_labels(site=site)} {counts.pending}")

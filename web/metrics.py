"""``/metrics`` in the Prometheus text format, for people who watch the box with their own tools."""

from flask import Blueprint, Response, current_app

from traffic.quota import usage
from web import params
from web.db import get_store, traffic_config

bp = Blueprint("metrics", __name__)


def _labels(**labels: str) -> str:
    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return "{" + ",".join(f'{name}="{escape(value)}"' for name, value in labels.items()) + "}"


@bp.get("/metrics")
def metrics_view() -> Response:
    params.refuse_unknown()
    config = traffic_config()
    store = get_store()
    now = current_app.config["CLOCK"]()
    site = config.site
    lines = ["# HELP traffic_bytes_total Bytes counted on an interface since the store began.",
             "# TYPE traffic_bytes_total counter"]
    for key in store.known_keys():
        rx, tx = store.totals(0, now + 1, [key])
        iface = key.split(":", 1)[-1]
        for direction, value in (("rx", rx), ("tx", tx)):
            labels = _labels(site=site, iface=iface, direction=direction)
            lines.append(f"traffic_bytes_total{labels} {value}")
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
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge",
                  f"{name}{_labels(site=site)} {value}"]
    return Response("\n".join(lines) + "\n",
                    content_type="text/plain; version=0.0.4; charset=utf-8")

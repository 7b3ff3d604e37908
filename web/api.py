"""JSON API under /api/v1. Times are epoch milliseconds, with ISO 8601 beside them."""

from flask import Blueprint, current_app, jsonify

from traffic import __version__
from traffic.quota import usage
from traffic.report import iso, usage_json
from traffic.runtime import last_poll
from web.db import get_store, traffic_config

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def _now() -> int:
    return current_app.config["CLOCK"]()


@bp.get("/usage")
def usage_view():
    config = traffic_config()
    result = usage(get_store(), config, _now(), last_poll(config))
    return jsonify(usage_json(result, config.timezone))


@bp.get("/status")
def status_view():
    config = traffic_config()
    store = get_store()
    now = _now()
    saved = store.last_sample_at()
    polled = last_poll(config)
    latest = max((t for t in (saved, polled) if t is not None), default=None)
    return jsonify(
        site=config.site, version=__version__, now=now, now_iso=iso(now, config.timezone),
        timezone=config.timezone.key, keys=store.keys(),
        last_saved_at=saved, last_saved_at_iso=iso(saved, config.timezone),
        last_sample_at=latest, last_sample_at_iso=iso(latest, config.timezone),
        sample_age_s=None if latest is None else (now - latest) / 1000,
    )

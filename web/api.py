"""JSON API under /api/v1. Times are epoch milliseconds, with ISO 8601 beside them."""

from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, jsonify, request

from traffic import __version__
from traffic.history import filled_series
from traffic.periods import DAY_MS, bucket_start, default_range
from traffic.quota import last_sample_at, usage
from traffic.report import iso, usage_json, usage_sentence
from traffic.runtime import REALTIME_WINDOW_MS, read_keeper, read_realtime
from traffic.store import Event
from traffic.uptime import uptime_by_day
from web import params
from web.db import get_store, traffic_config

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def _now() -> int:
    return current_app.config["CLOCK"]()


@bp.get("/usage")
def usage_view():
    params.refuse_unknown()
    config = traffic_config()
    result = usage(get_store(), config, _now())
    document = usage_json(result, config.timezone)
    document["summary"] = usage_sentence(result, config.quota.unit_system)
    return jsonify(document)


@bp.get("/status")
def status_view():
    params.refuse_unknown()
    config = traffic_config()
    store = get_store()
    now = _now()
    saved = store.last_sample_at()
    latest = last_sample_at(store, config)
    return jsonify(
        site=config.site, version=__version__, now=now, now_iso=iso(now, config.timezone),
        timezone=config.timezone.key, keys=store.known_keys(),
        last_saved_at=saved, last_saved_at_iso=iso(saved, config.timezone),
        last_sample_at=latest, last_sample_at_iso=iso(latest, config.timezone),
        sample_age_s=None if latest is None else (now - latest) / 1000,
        keeper=read_keeper(config),
    )


@bp.get("/series")
def series_view():
    params.refuse_unknown("resolution", "start", "end", "iface")
    config = traffic_config()
    tz = config.timezone
    resolution = params.resolution()
    default_start, default_end = default_range(resolution, _now(), tz, config.quota.billing_day)
    start = params.instant("start", tz, default_start)
    end = params.instant("end", tz, default_end)
    if end <= start:
        raise params.BadParameter("end", "must be later than start")
    store = get_store()
    keys = None
    iface = request.args.get("iface")
    if iface:
        stored_keys = store.known_keys()
        keys = [key for key in stored_keys if key.split(":", 1)[-1] == iface or key == iface]
        if not keys:
            known = ", ".join(key.split(":", 1)[-1] for key in stored_keys) or "none yet"
            raise params.BadParameter("iface", f"no interface {iface!r} (known: {known})")
    try:
        points = filled_series(store, resolution, start, end, tz, keys)
    except ValueError as error:
        raise params.BadParameter("start", str(error)) from None
    return jsonify(resolution=resolution, start=start, end=end, start_iso=iso(start, tz),
                   end_iso=iso(end, tz), iface=iface, unit_system=config.quota.unit_system,
                   points=[list(point) for point in points])


@bp.get("/realtime")
def realtime_view():
    params.refuse_unknown("since")
    config = traffic_config()
    since = params.instant("since", config.timezone, 0, bounded=False)
    document = read_realtime(config) or {}
    oldest = max(since, _now() - REALTIME_WINDOW_MS)  # a stopped collector's points age out
    return jsonify(
        interval_s=document.get("interval_s", config.collector.interval),
        updated=document.get("updated"),
        points=[point for point in document.get("points", []) if point[0] > oldest])


UPTIME_DAYS = 14


@bp.get("/events")
def events_view():
    params.refuse_unknown("since", "until", "limit")
    config = traffic_config()
    tz = config.timezone
    now = _now()
    since = params.instant("since", tz, 0, bounded=False)
    until = params.instant("until", tz, now + 1, bounded=False)
    limit = params.integer("limit", 100, 1, 1000)
    store = get_store()
    window = bucket_start("day", now, tz)
    for _ in range(UPTIME_DAYS - 1):
        window = bucket_start("day", window - 1, tz)
    return jsonify(
        events=[event_json(event, tz) for event in store.events(since, until, limit)],
        uptime=[{"day": day, "day_iso": iso(day, tz), "down_ms": down, "up_percent": percent}
                for day, down, percent in uptime_by_day(
                    [e for e in store.events(window - 31 * DAY_MS, now + 1, 10_000)
                     if e.kind in ("down", "up")], window, now, tz)]
        if config.keeper.enabled else [])


def event_json(event: Event, tz: ZoneInfo) -> dict:
    return {"at": event.at, "at_iso": iso(event.at, tz), "kind": event.kind,
            "duration_ms": event.duration_ms, "detail": event.detail}

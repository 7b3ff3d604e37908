"""JSON API under /api/v1. Times are epoch milliseconds, with ISO 8601 beside them."""

from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, jsonify, request

from traffic import __version__
from traffic.config import Config
from traffic.history import filled_series, measured_part
from traffic.periods import DAY_MS, FIVE_MIN_MS, HOUR_MS, bucket_start, default_range, next_bucket
from traffic.published import REALTIME_WINDOW_MS, read_keeper, read_realtime
from traffic.quota import last_sample_at, usage
from traffic.report import iso, usage_json, usage_sentence
from traffic.roles import billed_keys, source_name
from traffic.signal import GAUGE_UNITS
from traffic.sites import SiteUse, sites_use
from traffic.source_state import source_states
from traffic.store import Event, Store
from traffic.uptime import uptime_by_day
from web import params
from web.db import get_store, site_config, site_reader, traffic_config
from web.texts import site_texts, usage_texts

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def _now() -> int:
    return current_app.config["CLOCK"]()


@bp.get("/usage")
def usage_view():
    params.refuse_unknown("site")
    config = site_config()
    store = get_store()
    result = usage(store, config, _now())
    document = usage_json(result, config.timezone)
    document["summary"] = usage_sentence(result, config.quota.unit_system)
    document.update(usage_texts(result, config, source_states(config, store, result.now)))
    return jsonify(document)


@bp.get("/sites")
def sites_view():
    """Every site of the store with its period's use against its own limit: the overview."""
    params.refuse_unknown()
    config = traffic_config()
    return jsonify(default=config.site,
                   sites=[site_json(use) for use in sites_use(config, site_reader(), _now())])


def site_json(use: SiteUse) -> dict:
    tz, result = use.config.timezone, use.usage
    system = use.config.quota.unit_system
    return {"site": use.config.site, "timezone": tz.key, "unit_system": system,
            "period_start": result.period_start, "period_end": result.period_end,
            "period_start_iso": iso(result.period_start, tz),
            "period_end_iso": iso(result.period_end, tz),
            "total": result.total, "limit": result.limit, "percent": result.percent,
            "last_sample_at": result.last_sample_at,
            "last_sample_at_iso": iso(result.last_sample_at, tz),
            "sample_age_s": result.sample_age_s,
            "summary": usage_sentence(result, system), **site_texts(use)}


@bp.get("/status")
def status_view():
    params.refuse_unknown("site")
    config = site_config()
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
        keeper=read_keeper(store, config),
        sources={state.name: state.as_dict(config.timezone)
                 for state in source_states(config, store, now)},
    )


@bp.get("/series")
def series_view():
    params.refuse_unknown("resolution", "start", "end", "iface", "gauge", "source", "site")
    for name in ("iface", "gauge", "source"):
        params.text(name)
    if "gauge" in request.args:
        return gauge_series_view()
    if "source" in request.args:
        raise params.BadParameter("source", "goes with gauge (the source whose gauge to give)")
    config = site_config()
    tz = config.timezone
    resolution = params.resolution()
    now = _now()
    billing_day = config.quota.billing_day
    start, end = params.time_range(
        tz, default_range(resolution, now, tz, billing_day),
        lambda end: default_range(resolution, end - 1, tz, billing_day)[0])
    store = get_store()
    iface = request.args.get("iface")
    keys = _iface_keys(store, iface)
    asked_end, end = end, params.capped_end(resolution, start, end, tz)
    points = filled_series(store, resolution, start, end, tz, keys) if end > start else []
    if not params.given("start", "end"):
        points = measured_part(points, now, store.first_bucket(resolution))
    covered_start = points[0][0] if points else bucket_start(resolution, start, tz)
    covered_end = next_bucket(resolution, points[-1][0], tz) if points else covered_start
    return jsonify(resolution=resolution, start=covered_start, end=covered_end,
                   start_iso=iso(covered_start, tz), end_iso=iso(covered_end, tz), iface=iface,
                   unit_system=config.quota.unit_system, truncated=end < asked_end,
                   points=[list(point) for point in points])


GAUGE_HOURS = 48


def gauge_series_view():
    """One gauge's history per 5 minutes: the mean of a number, the latest text; a bucket with
    no reading (the source was not answering) is left out."""
    if "iface" in request.args:
        raise params.BadParameter("iface", "goes with counters, not with gauge")
    resolution = params.resolution("5min")
    if resolution != "5min":
        raise params.BadParameter("resolution", f"a gauge is kept per 5 minutes: expected 5min "
                                                f"or none, got {resolution!r}")
    config = site_config()
    tz = config.timezone
    now = _now()
    default_end = now - now % FIVE_MIN_MS + FIVE_MIN_MS
    span = GAUGE_HOURS * HOUR_MS
    start, asked_end = params.time_range(tz, (default_end - span, default_end),
                                         lambda end: end - span)
    store = get_store()
    name = request.args["gauge"]
    key = _gauge_key(store, config, name, request.args.get("source"))
    start -= start % FIVE_MIN_MS
    end = max(params.capped_end("5min", start, asked_end, tz), start)
    points = store.gauge_series(key, name, start, end) if end > start else []
    return jsonify(resolution="5min", gauge=name, source=source_name(key), key=key,
                   unit=GAUGE_UNITS.get(name), start=start, end=end, start_iso=iso(start, tz),
                   end_iso=iso(end, tz), truncated=end < asked_end,
                   points=[list(point) for point in points])


def _gauge_key(store: Store, config: Config, name: str, source: str | None) -> str:
    """The store key of gauge ``name``: of ``source``, or of the first source (in the order of
    the tables) that has it."""
    stored = store.gauge_names()
    order = {item.name: index for index, item in enumerate(config.sources)}
    keys = sorted((key for key, gauge in stored if gauge == name),
                  key=lambda key: (order.get(source_name(key), len(order)), key))
    if not keys:
        known = ", ".join(sorted({gauge for _, gauge in stored})) or "none yet"
        raise params.NothingNamed("gauge", f"no gauge {name!r} (known: {known})")
    if source is None:
        return keys[0]
    chosen = [key for key in keys if source_name(key) == source]
    if not chosen:
        having = ", ".join(dict.fromkeys(source_name(key) for key in keys))
        raise params.NothingNamed("source", f"no gauge {name!r} from {source!r} "
                                            f"(sources with it: {having})")
    return chosen[0]


def _iface_keys(store: Store, iface: str | None) -> list[str]:
    """The store keys of one interface; without ``iface``, the billed ones."""
    if not iface:
        return billed_keys(store, site_config())
    stored_keys = store.known_keys()
    keys = [key for key in stored_keys if key.split(":", 1)[-1] == iface or key == iface]
    if not keys:
        known = ", ".join(key.split(":", 1)[-1] for key in stored_keys) or "none yet"
        raise params.NothingNamed("iface", f"no interface {iface!r} (known: {known})")
    return keys


@bp.get("/realtime")
def realtime_view():
    params.refuse_unknown("since", "site")
    config = site_config()
    since = params.instant("since", config.timezone, 0, bounded=False)
    document = read_realtime(get_store()) or {}
    now = _now()
    oldest = max(since, now - REALTIME_WINDOW_MS)  # a stopped collector's points age out
    return jsonify(
        interval_s=document.get("interval_s", config.collector.interval),
        updated=document.get("updated"), now=now,
        points=[point for point in document.get("points", []) if point[0] > oldest])


UPTIME_DAYS = 14


@bp.get("/events")
def events_view():
    params.refuse_unknown("since", "until", "limit", "site")
    config = site_config()
    tz = config.timezone
    now = _now()
    since = params.instant("since", tz, 0, bounded=False)
    until = params.instant("until", tz, now + 1, bounded=False)
    limit = params.integer("limit", 100, 1, 1000)
    store = get_store()
    return jsonify(
        events=[event_json(event, tz) for event in store.events(since, until, limit)],
        uptime=uptime_json(store, config, now) if config.keeper.enabled else [])


def uptime_json(store: Store, config: Config, now: int) -> list[dict]:
    """The last UPTIME_DAYS local days; a day the keeper did not watch at all has nulls."""
    tz = config.timezone
    window = bucket_start("day", now, tz)
    for _ in range(UPTIME_DAYS - 1):
        window = bucket_start("day", window - 1, tz)
    keeper = read_keeper(store, config)
    current = (keeper["link"], keeper["since"]) if keeper else None
    changes = store.events(window - 31 * DAY_MS, now + 1, 10_000)
    seen_until = keeper["checked_at"] + round(config.keeper.check_every * 1000) if keeper else None
    return [{"day": day, "day_iso": iso(day, tz), "down_ms": None if percent is None else down,
             "up_percent": percent}
            for day, down, percent in uptime_by_day(changes, window, now, tz, current,
                                                    seen_until)]


def event_json(event: Event, tz: ZoneInfo) -> dict:
    return {"at": event.at, "at_iso": iso(event.at, tz), "kind": event.kind,
            "duration_ms": event.duration_ms, "detail": event.detail}

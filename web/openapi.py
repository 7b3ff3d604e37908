"""The OpenAPI 3.1 description of the JSON API, served at /api/v1/openapi.json."""

from typing import Any

from flask import Blueprint, jsonify

from traffic import __version__
from traffic.config import ALERT_RULES
from traffic.sites import known_sites
from traffic.store import StoreError
from web import params
from web.db import get_store, traffic_config

bp = Blueprint("openapi", __name__, url_prefix="/api/v1")

MS = {"type": "integer", "description": "epoch milliseconds (UTC)"}
MS_OR_NULL = {"type": ["integer", "null"], "description": "epoch milliseconds (UTC)"}
ISO = {"type": "string", "description": "ISO 8601 in the household's time zone"}
ISO_OR_NULL = {"type": ["string", "null"], "description": "ISO 8601 in the household's time zone"}
BYTES = {"type": "integer", "minimum": 0, "description": "bytes"}
BYTES_OR_NULL = {"type": ["integer", "null"], "minimum": 0, "description": "bytes"}
TIME_PARAM = {"oneOf": [{"type": "string", "pattern": "^[0-9]{1,19}$"},
                        {"type": "string", "format": "date"},
                        {"type": "string", "format": "date-time"}]}
DATE_YEARS = "(199[0-9]|2[01][0-9]{2})"
"""Local dates 1990 to 2199. The schema promises what every time zone accepts, so it is a
little narrower than the server (which also takes 2200-01-01, the very end)."""
OFFSET_YEARS = "(199[1-9]|2[01][0-9]{2})"
"""Times with an offset from 1991 to 2199: inside the years 1990 to 2200 of the household's
clock whatever its zone (the server takes the edges of 1990 too)."""
EPOCH_MS_IN_YEARS = ("^(631[2-9][0-9]{8}|63[2-9][0-9]{9}|6[4-9][0-9]{10}|[7-9][0-9]{11}"
                     "|[1-6][0-9]{12}|7[01][0-9]{11}|72[0-4][0-9]{10}|725[0-7][0-9]{9})$")
"""631200000000 (1990-01-01T13:20Z) to 7257999999999 (2199-12-31): in the years 1990 to 2200
of the household's clock whatever its zone."""
BOUNDED_TIME_PARAM = {"oneOf": [
    {"type": "string", "pattern": EPOCH_MS_IN_YEARS},
    {"type": "string", "format": "date", "pattern": f"^{DATE_YEARS}-"},
    {"type": "string", "format": "date-time", "pattern": f"^{OFFSET_YEARS}-"}]}


def _object(properties: dict[str, Any], optional: dict[str, Any] | None = None
            ) -> dict[str, Any]:
    return {"type": "object", "required": sorted(properties),
            "properties": {**properties, **(optional or {})}}


ERROR = _object({"error": {"type": "string"}, "detail": {"type": "string"}})

USAGE = _object({
    "period_start": MS, "period_end": MS, "period_start_iso": ISO, "period_end_iso": ISO,
    "counted_since": {**MS, "description": "period_start, or when counting began if later"},
    "counted_since_iso": ISO,
    "rx": BYTES, "tx": BYTES, "total": BYTES,
    "limit": {**BYTES, "description": "bytes allowed in the period; 0: no limit"},
    "percent": {"type": ["number", "null"], "description": "of the limit used; null: no limit"},
    "left": BYTES_OR_NULL,
    "estimate": {**BYTES, "description": "bytes expected by the period's end at the pace "
                                         "since counted_since"},
    "days_left": {"type": "number", "minimum": 0},
    "daily_budget": {**BYTES_OR_NULL,
                     "description": "bytes a day that keep the rest of the period in the limit"},
    "today": BYTES, "today_rx": BYTES, "today_tx": BYTES,
    "daily_limit": {**BYTES, "description": "quota.daily; 0: no daily limit"},
    "last_sample_at": MS_OR_NULL, "last_sample_at_iso": ISO_OR_NULL,
    "sample_age_s": {"type": ["number", "null"]},
    "now": MS, "now_iso": ISO,
    "summary": {"type": "string", "description": "the period in one sentence, for people"},
    **{f"{name}_text": {"type": "string", "description": f"{name} as the dashboard shows it"}
       for name in ("rx", "tx", "estimate", "today", "sample_age")},
    "beside_text": {"type": "array", "items": {"type": "string"},
                    "description": "each of beside in one sentence, for people"},
    "period_first_format": {"enum": ["date", "datetime"],
                            "description": "datetime: the period does not start at the start "
                                           "of a day (after traffic reset-month)"},
    "beside": {"type": "array", "description": "other counts of the link over the period, "
                                               "shown beside the billed one, never added",
               "items": _object({
                   "source": {"type": "string", "description": "the [[sources]] table's name"},
                   "label": {"type": "string", "description": "what people call it: router"},
                   "what": {"enum": ["counter", "router month"],
                            "description": "counter: the source's own counters over the "
                                           "period; router month: the router's own month "
                                           "statistics (its month may start on another day)"},
                   "rx": BYTES, "tx": BYTES, "total": BYTES,
                   "difference": {"type": "integer",
                                  "description": "this total minus the billed total"}})},
})

QUALITY = {"type": ["string", "null"], "enum": ["excellent", "good", "fair", "poor", None],
           "description": "the signal in one word from RSRP and SINR (the worse of the two); "
                          "null without either"}
SOURCE = _object({
    "state": {"enum": ["up", "down", "refused", "unknown"],
              "description": "up: it answered its latest poll; down: it is not answering; "
                             "refused: it refused the login and is not asked again until its "
                             "settings change; unknown: the collector has not read it yet"},
    "label": {"type": "string", "description": "what people call it: router, this box"},
    "type": {"type": "string", "description": "the [[sources]] table's type: kernel, hilink"},
    "billed": {"type": "boolean", "description": "its counters are the bill's"},
    "read_at": {**MS_OR_NULL, "description": "its latest answer"},
    "read_at_iso": ISO_OR_NULL,
    "failing_since": {**MS_OR_NULL, "description": "when it stopped answering; null: it answers"},
    "failing_since_iso": ISO_OR_NULL,
    "error": {"type": "string", "description": "why it is not answering, secrets masked"},
    "refused": {"type": "boolean"},
    "setting": {"type": ["string", "null"],
                "description": "with refused: the setting to correct, such as "
                               "sources[1].password"},
    "gauges": {"type": "object", "additionalProperties": {"type": ["number", "string"]},
               "description": "the latest values it reported: rsrp, rsrq, rssi (dBm, dB), sinr "
                              "(dB), operator, network_type, connection, registration, sim, "
                              "roaming, band, cell_id, wan_ip, month_rx, month_tx (bytes), "
                              "rx_rate, tx_rate (bytes/s), pin_attempts, puk_attempts"},
    "quality": QUALITY,
})

STATUS = _object({
    "site": {"type": "string"}, "version": {"type": "string"}, "timezone": {"type": "string"},
    "now": MS, "now_iso": ISO,
    "keys": {"type": "array", "items": {"type": "string"},
             "description": "what is measured, such as kernel:ppp0"},
    "last_saved_at": MS_OR_NULL, "last_saved_at_iso": ISO_OR_NULL,
    "last_sample_at": MS_OR_NULL, "last_sample_at_iso": ISO_OR_NULL,
    "sample_age_s": {"type": ["number", "null"]},
    "keeper": {"type": ["object", "null"],
               "description": "the keeper's latest check; null when it is off or has not "
                              "checked yet"},
    "sources": {"type": "object", "additionalProperties": SOURCE,
                "description": "each [[sources]] table by its name"},
})

TRUNCATED = {"type": "boolean", "description": "the range asked for holds more than 20000 "
                                              "buckets: the points are its first 20000, up to "
                                              "end; ask again from there for more"}
POINT = {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 3,
         "maxItems": 3, "description": "[bucket start (epoch ms), download bytes, upload bytes]"}
SERIES = _object({
    "resolution": {"enum": ["5min", "hour", "day", "month"]},
    "start": {**MS, "description": "the range the points cover: the first bucket's start"},
    "end": {**MS, "description": "the range the points cover: the last bucket's end"},
    "start_iso": ISO, "end_iso": ISO,
    "iface": {"type": ["string", "null"]},
    "unit_system": {"enum": ["si", "iec"],
                    "description": "si: sizes in GB (10^9), iec: in GiB (2^30), as the limit"},
    "truncated": TRUNCATED,
    "points": {"type": "array", "items": POINT},
})

GAUGE_SERIES = _object({
    "resolution": {"const": "5min"},
    "gauge": {"type": "string"},
    "source": {"type": "string", "description": "the source the gauge is of"},
    "key": {"type": "string", "description": "its store key, such as router:wan"},
    "unit": {"type": ["string", "null"], "description": "dBm, dB, bytes, bytes/s; null for text"},
    "start": {**MS, "description": "the start of the range's first 5 minutes"},
    "end": {**MS, "description": "the range's end, exclusive"},
    "start_iso": ISO, "end_iso": ISO,
    "truncated": TRUNCATED,
    "points": {"type": "array", "items": {
        "type": "array", "minItems": 2, "maxItems": 2,
        "items": {"type": ["number", "string", "null"]},
        "description": "[bucket start (epoch ms), the mean of a number or the latest text]; "
                       "a 5 minutes without a reading is left out"}},
})

REALTIME = _object({
    "interval_s": {"type": "number"},
    "updated": MS_OR_NULL,
    "now": {**MS, "description": "the web app's clock, to tell how old updated is"},
    "points": {"type": "array", "items": {
        "type": "array", "items": {"type": "number", "minimum": 0}, "minItems": 3, "maxItems": 3,
        "description": "[time (epoch ms), download bytes/s, upload bytes/s]"}},
})

ALERT_RULE = {"enum": list(ALERT_RULES), "description": "the rule that raised the alert"}
ALERT_MARK = {"type": "string", "description": "the rule and its period, such as "
                                               "threshold:80:1794092400000: an alert's "
                                               "deliveries carry its mark"}
DELIVERY = {
    "rule": ALERT_RULE, "mark": ALERT_MARK,
    "target": {"type": "integer", "minimum": 0,
               "description": "the alerts.notify entry, by its index"},
    "url": {"type": "string", "description": "its URL, masked: mailtos://********"},
}
ERROR_TEXT = {"type": "string", "description": "what went wrong, in one line, secrets masked"}
ALERT_DETAILS = {
    "alert": _object({
        "rule": ALERT_RULE, "mark": ALERT_MARK,
        "text": {"type": "string", "maxLength": 280, "description": "the message, as sent"},
        "site": {"type": "string"},
    }, {"quiet": {"const": True, "description": "recorded but not sent: a higher threshold "
                                               "reached at the same check says more, or "
                                               "(with late) it came too late"},
        "late": {"const": True, "description": "a threshold of a billing period that ended "
                                              "more than a day before it was found"}}),
    "alert_sent": _object({**DELIVERY, "attempts": {
        "type": "integer", "minimum": 1, "description": "this one included"}}),
    "alert_failed": _object({**DELIVERY, "error": ERROR_TEXT,
                             "attempt": {"type": "integer", "minimum": 1},
                             "retry_at": {**MS, "description": "when it is tried again"}}),
    "alert_given_up": _object({**DELIVERY, "error": ERROR_TEXT,
                               "attempts": {"type": "integer", "minimum": 0}}),
    "alert_unconfirmed": _object({**DELIVERY, "error": ERROR_TEXT, "since": {
        **MS, "description": "when the send began; it may have gone, and is not sent again"}}),
}
EVENT = {**_object({
    "at": MS, "at_iso": ISO,
    "kind": {"type": "string", "description": "down, up, attempt, escalation, lock, unlock, "
                                              "quota_lock, disconnect, stop, source_down, "
                                              "source_up; alert (an alert raised), alert_sent, "
                                              "alert_failed, alert_given_up, alert_unconfirmed "
                                              "(how each of its deliveries went); sms_command, "
                                              "sms_ignored, sms_answer, session_run, "
                                              "session_end, reboot (commands by text "
                                              "message)"},
    "duration_ms": {"type": ["integer", "null"],
                    "description": "down: how long it was up; up: how long it was down; "
                                   "attempt, disconnect, session_run, reboot: how long the "
                                   "command ran; source_up: how long the source was not "
                                   "answering; session_end: how long the session lasted"},
    "detail": {"type": "object", "description": "depends on kind; the alert kinds' fields "
                                                "are given below"},
}), "allOf": [{"if": {"properties": {"kind": {"const": kind}}},
               "then": {"properties": {"detail": detail}}}
              for kind, detail in ALERT_DETAILS.items()]}
EVENTS = _object({
    "events": {"type": "array", "items": EVENT, "description": "newest first"},
    "uptime": {"type": "array", "description": "the last 14 local days; empty with the keeper off",
               "items": _object({
                   "day": MS, "day_iso": ISO,
                   "down_ms": {"type": ["integer", "null"],
                               "description": "null: the keeper had not checked yet"},
                   "up_percent": {"type": ["number", "null"],
                                  "description": "null: the keeper had not checked yet"}})},
})


def _get(summary: str, schema: dict[str, Any], parameters: list[dict[str, Any]] | None = None,
         media_type: str = "application/json", not_found: str = "") -> dict[str, Any]:
    return {"get": {
        "summary": summary,
        "parameters": parameters or [],
        "responses": {
            "200": {"description": "OK", "content": {media_type: {"schema": schema}}},
            "400": {"description": "a bad parameter, named in detail",
                    "content": {"application/json": {"schema": ERROR}}},
            **({"404": {"description": not_found,
                        "content": {"application/json": {"schema": ERROR}}}} if not_found else {}),
            "403": {"description": "the client is not in web.allow",
                    "content": {"application/json": {"schema": ERROR}}},
            "414": {"description": "a request line longer than the server takes (gunicorn: "
                            "4094 bytes), answered by the server before the app"},
            "503": {"description": "the store cannot be opened; detail says why",
                    "content": {"application/json": {"schema": ERROR}}},
        },
    }}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}


START_DESCRIPTION = ("epoch ms or ISO 8601 (local time without offset); default: 5min the last "
                     "24 h, hour the last 7 days, day this billing period and the one before, "
                     "month the last 24 months, each from its first bucket with traffic and up "
                     "to now; with only end given, that span ending at end")
END_DESCRIPTION = ("exclusive; same forms as start; at or before start: no points. A range of "
                   "more than 20000 buckets is answered with its first ones (at most 20000) "
                   "and truncated true")
NAME = {"type": "string", "minLength": 1, "maxLength": params.MAX_TEXT}
USE_QUERY = {"type": "object", "additionalProperties": False, "title": "use", "properties": {
    "resolution": {"enum": ["5min", "hour", "day", "month"], "default": "day",
                   "description": "bucket size"},
    "start": {**BOUNDED_TIME_PARAM, "description": START_DESCRIPTION},
    "end": {**BOUNDED_TIME_PARAM, "description": END_DESCRIPTION},
    "iface": {**NAME, "description": "one interface, such as ppp0; default: the billed ones"},
}}
GAUGE_QUERY = {"type": "object", "additionalProperties": False, "title": "gauge",
               "required": ["gauge"], "properties": {
    "gauge": {**NAME, "examples": ["rsrp", "sinr"],
              "description": "a gauge's history per 5 minutes instead of use, such as rsrp or "
                             "sinr (a 404 lists those stored)"},
    "source": {**NAME, "examples": ["router"],
               "description": "the source whose gauge (a [[sources]] table's name); default: "
                              "the first table that has it"},
    "resolution": {"const": "5min", "default": "5min"},
    "start": {**BOUNDED_TIME_PARAM, "description": "as for use; default: the last 48 hours, "
                                                   "or the 48 hours before end"},
    "end": {**BOUNDED_TIME_PARAM, "description": END_DESCRIPTION},
}}
SITE_DESCRIPTION = ("the site to read, one of those the store holds; default: the web app's "
                    "own (its config's site). Another is a 400 that lists them")


def _with_site(query: dict[str, Any], site: dict[str, Any]) -> dict[str, Any]:
    return {**query, "properties": {**query["properties"],
                                    "site": {**site, "description": SITE_DESCRIPTION}}}


def _series_parameters(site: dict[str, Any]) -> list[dict[str, Any]]:
    return [{
        "name": "series", "in": "query", "required": False, "style": "form", "explode": True,
        "schema": {"oneOf": [_with_site(USE_QUERY, site), _with_site(GAUGE_QUERY, site)]},
        "description": "the query's parameters, one of two sets: use (resolution, start, end, "
                       "iface) or a gauge's history (gauge, source, start, end, resolution only "
                       "5min); either with site"}]


SITE_USE = _object({
    "site": {"type": "string"}, "timezone": {"type": "string", "description": "the site's own"},
    "unit_system": {"enum": ["si", "iec"]},
    "period_start": MS, "period_end": MS, "period_start_iso": ISO, "period_end_iso": ISO,
    "total": BYTES, "total_text": {"type": "string", "description": "total for people"},
    "limit": {**BYTES, "description": "the site's own monthly limit; 0: no limit"},
    "limit_text": {"type": ["string", "null"], "description": "limit for people; null: none"},
    "sample_age_text": {"type": "string", "description": "the latest reading's age for people"},
    "percent": {"type": ["number", "null"], "description": "of the limit used; null: no limit"},
    "last_sample_at": MS_OR_NULL, "last_sample_at_iso": ISO_OR_NULL,
    "sample_age_s": {"type": ["number", "null"]},
    "summary": {"type": "string", "description": "the period in one sentence, for people"},
})
SITES = _object({
    "default": {"type": "string", "description": "the site read without site="},
    "sites": {"type": "array", "items": SITE_USE,
              "description": "every site of the store, by name, each in its own time zone and "
                             "billing period (its collector's settings)"},
})


def spec(sites: list[str]) -> dict[str, Any]:
    """The description; ``sites``: those the store holds, which ``site`` may name."""
    site = {"enum": sites}
    site_query = _query("site", site, SITE_DESCRIPTION)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Traffic", "version": __version__,
                 "description": "Use of a metered mobile-broadband link. Times are epoch "
                                "milliseconds with ISO 8601 beside them; sizes are bytes."},
        "paths": {
            "/api/v1/usage": _get("Use in the current billing period against the limits",
                                  USAGE, [site_query]),
            "/api/v1/status": _get("The collector's state", STATUS, [site_query]),
            "/api/v1/series": _get(
                "Use per bucket (empty buckets are zeros), or with gauge, a gauge's history",
                {"oneOf": [SERIES, GAUGE_SERIES]}, _series_parameters(site),
                not_found="no such interface, gauge, or source with the gauge; detail lists "
                          "those stored"),
            "/api/v1/realtime": _get("Download and upload rates of the last 10 minutes",
                                     REALTIME, [_query("since", TIME_PARAM,
                                                       "only points newer than this"),
                                                site_query]),
            "/api/v1/events": _get("What happened: the link, the sources, the alerts sent; and "
                                   "uptime per day", EVENTS, [
                _query("since", TIME_PARAM, "only events at or after this"),
                _query("until", TIME_PARAM, "only events before this"),
                _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000,
                                 "default": 100}, "at most this many events"),
                site_query,
            ]),
            "/api/v1/sites": _get("Every site of the store with its period's use against its "
                                  "own limit", SITES),
            "/api/v1/openapi.json": _get("This description", {"type": "object"}),
            "/metrics": _get("Prometheus metrics of every site of the store, each series "
                             "labelled with its site; with site, of that site only",
                             {"type": "string"}, [site_query], media_type="text/plain"),
        },
    }


@bp.get("/openapi.json")
def openapi_view():
    """The description, with the store's sites; with the store unreadable, only the config's
    own (the endpoints say what is wrong)."""
    params.refuse_unknown()
    config = traffic_config()
    try:
        sites = known_sites(get_store(), config)
    except StoreError:
        sites = [config.site]
    return jsonify(spec(sites))

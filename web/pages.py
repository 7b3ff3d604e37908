"""HTML pages: server-rendered shells that fetch the JSON API and draw Highcharts charts.

The numbers a family reads first are in the HTML itself, so they show before (and without) the
charts.
"""

from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, render_template

from traffic.periods import bucket_start, from_ms, next_bucket
from traffic.quota import usage
from traffic.report import usage_sentence
from traffic.runtime import read_keeper
from traffic.units import format_duration, format_size
from web.db import get_store, traffic_config

bp = Blueprint("pages", __name__)
HOURS_SHOWN = 48


@bp.get("/")
def history() -> str:
    config = traffic_config()
    tz = config.timezone
    current = usage(get_store(), config, current_app.config["CLOCK"]())
    start, end = from_ms(current.period_start, tz), from_ms(current.period_end, tz)
    age = current.sample_age_s
    hours_end = next_bucket("hour", bucket_start("hour", current.now, tz), tz)
    return render_template(
        "history.html", usage=current, config=config,
        sentence=usage_sentence(current, config.quota.unit_system),
        format_size=lambda value: format_size(value, config.quota.unit_system),
        period_label=f"{start:%-d %b %H:%M} to {end:%-d %b}".replace(" 00:00", ""),
        period_end_label=f"{end:%-d %b}",
        hours_start=hours_end - HOURS_SHOWN * 3_600_000, hours_end=hours_end,
        sample_age_label=("No reading yet: is the collector running?" if age is None
                          else f"Last reading {format_duration(max(age, 0))} ago."),
        link_label=link_sentence(read_keeper(config), current.now, tz))


def link_sentence(keeper: dict | None, now: int, tz: ZoneInfo) -> str:
    if keeper is None:
        return "The link has not been checked yet."
    since = from_ms(keeper["since"], tz).strftime("%-d %b %H:%M")
    if keeper["link"] == "up":
        return f"The link is up, since {since}."
    if keeper.get("held") == "disconnected":
        return f"The link is down since {since}: it was switched off by hand."
    if keeper.get("held") == "quota":
        return f"The link is down since {since}: the quota is used up."
    return f"The link is down since {since}; the box is trying to bring it back."


@bp.get("/rt")
def realtime() -> str:
    return render_template("realtime.html", config=traffic_config())

"""HTML pages: server-rendered shells that fetch the JSON API and draw Highcharts charts.

The numbers a family reads first are in the HTML itself, so they show before (and without) the
charts. Each date is a ``<time>`` with its instant in ``data-ms``, which js/traffic.js writes
again the way the browser's language writes dates, as it does everywhere else on the page.
"""

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, render_template

from traffic.periods import HOUR_MS, bucket_start, from_ms, starts_day
from traffic.quota import usage
from traffic.report import iso, usage_sentence
from traffic.runtime import read_keeper
from traffic.units import format_duration, format_size
from web.db import get_store, traffic_config

bp = Blueprint("pages", __name__)
HOURS_SHOWN = 48
TEXT_FORMATS = {"date": "%-d %b", "datetime": "%-d %b %H:%M"}
"""The server's English rendering of the formats of the same name in js/traffic.js."""


@dataclass(frozen=True)
class When:
    """An instant as a page shows it: ``<time datetime=iso data-ms=ms data-format=...>``."""

    ms: int
    iso: str
    format: str
    text: str


def when(ms: int, tz: ZoneInfo, format_name: str) -> When:
    text = from_ms(ms, tz).strftime(TEXT_FORMATS[format_name])
    return When(ms, iso(ms, tz) or "", format_name, text)


def period_days(start: int, end: int, tz: ZoneInfo) -> tuple[When, When]:
    """The period's first day (with its time when it does not start at midnight, after a
    reset-month) and its last day: ``end`` is the first instant of the next period."""
    first = when(start, tz, "date" if starts_day(start, tz) else "datetime")
    return first, when(bucket_start("day", end - 1, tz), tz, "date")


def sample_age_label(age: float | None) -> str:
    if age is None:
        return "No reading yet: is the collector running?"
    return f"Last reading {format_duration(max(age, 0))} ago."


@bp.get("/")
def history() -> str:
    config = traffic_config()
    tz = config.timezone
    current = usage(get_store(), config, current_app.config["CLOCK"]())
    first, last = period_days(current.period_start, current.period_end, tz)
    return render_template(
        "history.html", usage=current, config=config,
        sentence=usage_sentence(current, config.quota.unit_system),
        format_size=lambda value: format_size(value, config.quota.unit_system),
        period_first=first, period_last=last,
        hours_start=current.now - (HOURS_SHOWN - 1) * HOUR_MS, hours_end=current.now + 1,
        sample_age_label=sample_age_label(current.sample_age_s),
        keeper=link_state(read_keeper(config), tz))


@dataclass(frozen=True)
class LinkState:
    """The keeper's latest check as one sentence: ``before`` the time, ``since``, ``after``
    (nothing when the time ends the sentence)."""

    before: str
    since: When | None = None
    after: str = ""


def link_state(keeper: dict | None, tz: ZoneInfo) -> LinkState:
    if keeper is None:
        return LinkState("The link has not been checked yet.")
    since = when(keeper["since"], tz, "datetime")
    if keeper["link"] == "up":
        return LinkState("The link is up, since ", since)
    if keeper.get("held") == "disconnected":
        return LinkState("The link is down since ", since, ": it was switched off by hand.")
    if keeper.get("held") == "quota":
        return LinkState("The link is down since ", since, ": the quota is used up.")
    return LinkState("The link is down since ", since, "; the box is trying to bring it back.")


@bp.get("/rt")
def realtime() -> str:
    return render_template("realtime.html", config=traffic_config())

"""HTML pages: server-rendered shells that fetch the JSON API and draw Highcharts charts.

The numbers a family reads first are in the HTML itself, so they show before (and without) the
charts. Each date is a ``<time>`` with its instant in ``data-ms``, which js/traffic.js writes
again the way the browser's language writes dates, as it does everywhere else on the page.
"""

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, render_template, request

from traffic.periods import HOUR_MS, bucket_start, from_ms, starts_day
from traffic.published import read_keeper, read_save
from traffic.quota import usage
from traffic.report import iso, save_problem, signal_levels, usage_sentence
from traffic.roles import source_name
from traffic.signal import shown_levels
from traffic.sim import sim_words
from traffic.sites import known_sites, sites_use
from traffic.source_state import (
    DOWN,
    REFUSED,
    UP,
    SourceState,
    source_states,
)
from traffic.store import ALERT_EVENT_KINDS, Store, StoreError
from web.db import get_store, site_config, site_reader, traffic_config
from web.texts import site_texts, usage_texts

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


@dataclass(frozen=True)
class SitePicker:
    """The sites of the store and the one shown, when there is more than one."""

    sites: list[str]
    current: str


def site_picker() -> SitePicker | None:
    sites = known_sites(get_store(), traffic_config())
    return SitePicker(sites, site_config().site) if len(sites) > 1 else None


@bp.get("/")
def history() -> str:
    config = site_config()
    tz = config.timezone
    system = config.quota.unit_system
    store = get_store()
    current = usage(store, config, current_app.config["CLOCK"]())
    first, last = period_days(current.period_start, current.period_end, tz)
    states = source_states(config, store, current.now)
    routers = [router_panel(state) for state in states if state.state == UP and state.sees_link]
    notices = [source_notice(state, tz) for state in states if state.state in (DOWN, REFUSED)]
    return render_template(
        "history.html", usage=current, config=config, picker=site_picker(),
        sentence=usage_sentence(current, system), texts=usage_texts(current, config, states),
        period_first=first, period_last=last,
        hours_start=current.now - (HOURS_SHOWN - 1) * HOUR_MS, hours_end=current.now + 1,
        save_problem=save_problem(read_save(store), tz),
        keeper=link_state(read_keeper(store, config), tz),
        routers=routers, notices=notices, signal=signal_chart(store, states),
        watch_sources=len(config.sources) > 1 or any(state.gauges for state in states),
        show_events=(config.keeper.enabled or config.sms.enabled or bool(notices)
                     or any(state.gauges for state in states)
                     or bool(store.events(limit=1, kinds=ALERT_EVENT_KINDS))))


@dataclass(frozen=True)
class Notice:
    """A source that is not answering, in plain words, and the detail for whoever set up the
    box."""

    source: str
    before: str
    since: When | None
    detail: str


def source_notice(state: SourceState, tz: ZoneInfo) -> Notice:
    if state.state == REFUSED and state.type == "modem":
        return Notice(state.name, f"{state.subject}'s SIM card refused its PIN: the PIN the box "
                      "has for it is wrong.", None,
                      f"Check {state.setting}; it is not sent again until the settings change.")
    if state.state == REFUSED:
        return Notice(state.name, f"{state.subject} does not let the box log in: the password "
                      "the box has for it is wrong.", None,
                      f"Check {state.setting}; no more logins until the settings change.")
    since = when(state.failing_since or 0, tz, "datetime")
    return Notice(state.name, f"{state.subject} is not answering since ", since, state.error)


@dataclass(frozen=True)
class RouterPanel:
    """What a router or modem says of the mobile link: ``items`` are (term, text) pairs."""

    name: str
    heading: str
    items: list[tuple[str, str]]
    quality: str | None
    levels: list[str]


def router_panel(state: SourceState) -> RouterPanel:
    gauges = state.gauges
    items = [(term, str(gauges[name])) for term, name in (("Operator", "operator"),
                                                          ("Network", "network_type"))
             if gauges.get(name) not in (None, "")]
    if gauges.get("connection") not in (None, "", "connected"):
        items.append(("Connection", str(gauges["connection"])))
    if gauges.get("sim") not in (None, "", "ready"):
        items.append(("SIM", sim_words(gauges)))
    if gauges.get("registration") not in (None, "", "home", "roaming"):
        items.append(("Registration", str(gauges["registration"])))
    if gauges.get("roaming") == "yes":
        items.append(("Roaming", "yes, on another operator's network"))
    return RouterPanel(state.name, state.subject, items, state.quality,
                       signal_levels(gauges))


@dataclass(frozen=True)
class SignalChart:
    source: str
    label: str
    gauges: list[str]
    """RSRP and SINR (a router), else RSSI (a modem)."""


def signal_chart(store: Store, states: list[SourceState]) -> SignalChart | None:
    """The signal chart's source: the first table with a signal level stored; None when no
    source reports a signal."""
    stored: dict[str, set[str]] = {}
    for key, name in store.gauge_names():
        stored.setdefault(source_name(key), set()).add(name)
    for state in states:
        gauges = shown_levels(stored.get(state.name, set()))
        if gauges:
            return SignalChart(state.name, state.label, gauges)
    return None


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
    """The rates the collector publishes; the page itself needs no store (without one it
    says what ``/api/v1/realtime`` answers), except to show another site."""
    try:
        config, picker = site_config(), site_picker()
    except StoreError:
        if "site" in request.args:
            raise
        config, picker = traffic_config(), None
    return render_template("realtime.html", config=config, picker=picker)


@bp.get("/sites")
def overview() -> str:
    """Every site of the store, each with its period's use against its own limit."""
    config = traffic_config()
    lines = [{"use": use, "texts": site_texts(use),
              "period": period_days(use.usage.period_start, use.usage.period_end,
                                    use.config.timezone)}
             for use in sites_use(config, site_reader(), current_app.config["CLOCK"]())]
    return render_template("sites.html", config=config, lines=lines, every_site=True)

"""Alert rules: what the family should hear, each message once per rule and period.

``rules(facts, config)`` is pure: given what is known at one instant (``Facts``, built once per
check by ``AlertChecker.facts`` from the store, the collector's unsaved deltas and its sources) it
returns every alert that is due, each with a ``mark`` naming the rule and its period. The store
keeps the marks: ``store.raise_alert`` sets the mark, records the ``alert`` event and queues the
deliveries in one transaction, and does nothing when the mark is set already. So a restart, a
``kill -9`` or a second start never repeats an alert, and an alert due while the collector was
down is raised when it is back, once. Rules see the totals readers see: saved bytes plus the
collector's deltas not saved yet, billed sources only. Sizes are written in the unit system
(GB or GiB) of the limit the message is about: ``quota.daily`` for the daily limit,
``alerts.hourly_burst`` for a burst, ``quota.monthly`` for the rest. When ``site`` is not the
default ``home`` every title and text starts with the site's name. Texts are at most 280
characters (a tweet) with their title, and carry no URL.

Rules, marks and texts (examples with a 40 GB limit, billing day 8, Europe/Stockholm):

``threshold`` — ``threshold:{pct}:{period_start}``, for each of ``quota.thresholds`` the period's
total has reached, in order:
    "80% of the monthly limit is used: 32 GB of 40 GB, 12 days left. 666.7 MB a day keeps you
    inside."  At 100%, and at a lower threshold first seen with the total over the limit: "The
    monthly limit is used up: 40.2 GB of 40 GB, 200 MB over, 12 days left."
    Above 100%: "120% of the monthly limit is used: 48 GB of 40 GB, 8 GB over, 3 days left."
    Several thresholds reached at one check (the collector was down, or a big download between
    two checks) are all raised, in order, each with its own mark and event, but only the highest
    of each period is delivered: the lower ones are recorded ``quiet`` (their event says so, no
    message queued), so the family gets "80% ..." once rather than "50% ..." and "80% ..." at
    the same minute. The period that ended is checked too, against its final total, so a
    threshold crossed in its last seconds (after the last check) or while the collector was down
    over its end is raised at the first check after it, before its summary: "80% of the monthly
    limit was used in the billing period 8 Nov to 7 Dec: 32.1 GB of 40 GB." More than a day
    after the period's end it is recorded quiet, its event marked ``late``: stale news.
``daily_limit`` — ``daily_limit:{day_start}``, today's (or yesterday's, when its last minutes
    crossed it after the last check) total has reached ``quota.daily``:
    "Today's limit is used up: 2.1 GB of 2 GB."
``early_warning`` — ``early_warning:{period_start}``, the estimate for the period passes the
    limit while the total is still under it, once a day of the period has been counted (a pace
    measured over a few hours, such as one evening's film, says little about a month):
    "At this pace: 46 GB by 7 Dec, over the 40 GB limit. 1.1 GB a day keeps you inside."
``burst`` — ``burst:{hour_start}``, more than ``alerts.hourly_burst`` in one local clock hour
    (the current one, or the one before when its last minutes crossed it); off when 0:
    "Heavy use: 1.2 GB in the hour from 14:00 (the alert is set at 1 GB an hour)."
``daily_summary`` — ``daily_summary:{day_start}``, at ``alerts.daily_summary`` local time (the
    wall clock of that day, also on the days the clocks change; a time the spring change skips
    is taken an hour later), or later that day when the collector was not running then; off when
    "". Before noon it tells the day before, from noon on the day so far:
    "Today so far: 1.2 GB. 26.4 GB of 40 GB used, 12 days left: 1.1 GB a day keeps you inside."
    "Yesterday: 1.4 GB. 26.4 GB of 40 GB used, ..."
``period_summary`` — ``period_summary:{start of the period that ended}``, at the first check
    after a billing period ended (or after ``traffic reset-month`` cut it short), for that
    period, when anything was counted in it; off with ``alerts.period_summary = false``:
    "Billing period 8 Nov to 7 Dec: 38.2 GB of 40 GB used (95%)."
    "Billing period 8 Nov to 7 Dec: 42 GB used, 2 GB over the 40 GB limit."
``link_down`` — ``link_down:{down_since}``, the keeper has found the link down for longer than
    ``alerts.link_down_after``. Only with the keeper on, and not while it holds the link down on
    purpose (``traffic disconnect``, the quota): a hold is no outage, ends one going on, and
    an outage after it starts when it ends.
    "The link has been down since 14:05 (12 minutes)."
``link_up`` — ``link_up:{down_since}``, the link is back after an outage whose ``link_down``
    alert was raised: "The link is back up since 14:40, after 35 minutes down."
    An outage's start is remembered in the store (``alerts.link_down_since``), so a collector
    restarted during an outage goes on with the same one; a link up for less than a check
    between two downs is one outage.
``new_ip`` — ``new_ip:{ip}:{previous ip}:{when the previous one was first seen}``, the public
    address differs from the last one seen (kept in the store, ``alerts.ip``; the first address
    ever seen raises nothing). The address is the ``wan_ip`` gauge of the first source that
    has one (a router); only when no configured source has reported ``wan_ip`` (this check, or
    the source remembered in ``alerts.ip``) the IPv4 address of ``keeper.interface`` or of the
    default route's interface. A router that gives no ``wan_ip`` at a check (disconnected, a
    call that failed, booting) changes nothing: behind it the interface's address is the LAN's.
    Private (RFC 1918, IPv6 unique local), carrier-grade NAT (100.64.0.0/10), loopback and
    link-local addresses are no public address: they raise nothing and are not remembered:
    "The public IP address is now 203.0.113.7 (it was 198.51.100.2)."
``device`` — ``device:{source}:{kind}:{since}``, a source reports a problem only a person can
    fix; ``since`` is when it was first seen, remembered in the store (``alerts.device``) until
    the source says otherwise, so a restart does not make it new:
    login_refused: "The router refused the login. Fix sources[1].password; it is not asked
    again until then." (A modem: "The modem's SIM card refused its PIN. Fix sources[1].pin;
    it is not sent again until then.")
    pin_required: "The router's SIM card asks for its PIN: no data until it is entered."
    puk_required: "The router's SIM card is locked and asks for its PUK: no data until it is
    entered."
"""

import fcntl
import ipaddress
import json
import logging
import socket
import struct
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from collector.sources.kernel import default_route_interface
from traffic.config import (
    ALERT_GROUPS,
    Config,
    NotifyTarget,
    mask_known,
    mask_text,
    secret_values,
)
from traffic.counters import Delta
from traffic.periods import DAY_MS, bucket_start, from_ms, next_bucket
from traffic.published import read_keeper
from traffic.quota import Usage, added, current_period, usage
from traffic.report import usage_sentence
from traffic.roles import billed_keys
from traffic.source_state import secret_key, subject
from traffic.store import Event, Store, StoreError
from traffic.units import format_size, unit_system

log = logging.getLogger(__name__)

CHECK_EVERY_S = 300.0
"""The longest wait between two checks (``collector.save_interval`` when that is shorter: a
store saved more often is watched as closely). Checks come sooner when a rule may be due: once
the billed bytes counted since the last check reach the next threshold, the daily limit or the
hourly burst (``bytes_to_next_alert``), at the next moment a rule of time may be due
(``next_check_at``), and when the keeper finds the link gone or back. A check costs a few
milliseconds of CPU on a small board: checking every minute whether anything could be due or
not was a fifth of the collector's CPU."""
EARLY_WARNING_AFTER_MS = DAY_MS
"""Counting the early warning waits for: a whole day's rhythm, not one evening's pace."""
MAX_LENGTH = 280
"""A tweet: title and text together."""
DEFAULT_SITE = "home"
SITE_SHOWN = 30
"""Characters of a site's name a message shows."""

LINK_META = "alerts.link_down_since"
IP_META = "alerts.ip"
DEVICE_META = "alerts.device"
HELD = "held"

SIM_PROBLEMS = {"pin required": "pin_required", "puk required": "puk_required"}

NOT_PUBLIC = tuple(ipaddress.ip_network(network) for network in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.168.0.0/16", "::/128", "::1/128", "fc00::/7", "fe80::/10"))
"""Addresses that are not a public address even when a router reports them: unspecified,
private (RFC 1918, IPv6 unique local), carrier-grade NAT (RFC 6598), loopback and link-local.
(``ipaddress``'s ``is_private`` is not used: it counts the documentation ranges too.)"""


@dataclass(frozen=True)
class Alert:
    rule: str
    mark: str
    title: str
    text: str
    quiet: bool = False
    """Recorded (mark and event) but not delivered: a lower threshold reached at the same check
    as a higher one, whose message says more, or a ``late`` one."""
    late: bool = False
    """A threshold of a period that ended more than a day before: stale news (also quiet)."""


@dataclass(frozen=True)
class LinkFacts:
    up: bool
    since: int
    """When the keeper saw the link go this way."""
    down_since: int | None
    """Start of the outage: going on (down), or just ended (up); None when up and no outage
    is remembered."""
    down_alerted: bool = False
    """The outage's ``link_down`` alert was raised."""
    held: bool = False
    """The keeper keeps the link down on purpose (``traffic disconnect``, the quota)."""


@dataclass(frozen=True)
class DeviceProblem:
    source: str
    label: str
    kind: str
    """``login_refused``, ``pin_required`` or ``puk_required``."""
    since: int
    setting: str = ""
    """The setting to fix, for a refused login: ``sources[1].password``."""


@dataclass(frozen=True)
class Facts:
    """What one check knows: built once, then every rule reads it."""

    now: int
    usage: Usage
    """The billing period (saved and unsaved billed bytes), today, estimate, limits."""
    yesterday_start: int
    yesterday: int
    hours: tuple[tuple[int, int], ...]
    """``(start, bytes)`` of the previous and the current local clock hour."""
    previous_period: tuple[int, int, int] | None
    """``(start, end, bytes)`` of the period before the current one, when anything was
    counted in it."""
    link: LinkFacts | None = None
    """None when the keeper is off or has not checked yet."""
    public_ip: str | None = None
    """A public address only (see ``public_address``)."""
    router: str | None = None
    """The source whose gauges carry the public address (``wan_ip``): seen now, or remembered
    from an earlier check while that source is still configured. With one, the box's own
    interface (behind the router: a LAN address) is never taken for the public address."""
    last_ip: str | None = None
    last_ip_since: int | None = None
    devices: tuple[DeviceProblem, ...] = field(default=())
    site: str = DEFAULT_SITE


def rules(facts: Facts, config: Config) -> list[Alert]:
    """Every alert due at ``facts.now``, raised or not; the store's marks decide which are
    new."""
    text = Texts(config, facts)
    found = [*_ended_thresholds(facts, config, text), *_thresholds(facts, config, text),
             *_daily_limit(facts, text),
             *_early_warning(facts, config, text), *_burst(facts, config, text),
             *_link(facts, config, text), *_new_ip(facts, text), *_devices(facts, text),
             *_daily_summary(facts, config, text), *_period_summary(facts, config, text)]
    return [text.sited(alert) for alert in found]


def _thresholds(facts: Facts, config: Config, text: "Texts") -> list[Alert]:
    current = facts.usage
    if not current.limit:
        return []
    return [Alert("threshold", f"threshold:{pct}:{current.period_start}", *text.threshold(pct))
            for pct in sorted(set(config.quota.thresholds))
            if current.total * 100 >= current.limit * pct]


def _ended_thresholds(facts: Facts, config: Config, text: "Texts") -> list[Alert]:
    """The thresholds the period before reached by its end: one crossed in its last seconds,
    after the last check, or while the collector was down over its end. The marks keep those
    raised in time from coming again; one more than a day late is recorded quiet (a stale
    message says less than the period summary)."""
    limit = facts.usage.limit
    if not limit or facts.previous_period is None:
        return []
    start, end, total = facts.previous_period
    late = facts.now - end > DAY_MS
    return [Alert("threshold", f"threshold:{pct}:{start}",
                  *text.ended_threshold(pct, start, end, total), quiet=late, late=late)
            for pct in sorted(set(config.quota.thresholds)) if total * 100 >= limit * pct]


def _daily_limit(facts: Facts, text: "Texts") -> list[Alert]:
    limit = facts.usage.daily_limit
    if not limit:
        return []
    today_start = bucket_start("day", facts.now, text.tz)
    days = [(facts.yesterday_start, facts.yesterday, False), (today_start, facts.usage.today, True)]
    return [Alert("daily_limit", f"daily_limit:{start}", *text.daily_limit(total, today))
            for start, total, today in days if total >= limit]


def _early_warning(facts: Facts, config: Config, text: "Texts") -> list[Alert]:
    current = facts.usage
    if (not config.alerts.early_warning or not current.limit or current.total >= current.limit
            or current.estimate <= current.limit
            or facts.now - current.counted_since < EARLY_WARNING_AFTER_MS):
        return []
    return [Alert("early_warning", f"early_warning:{current.period_start}",
                  *text.early_warning())]


def _burst(facts: Facts, config: Config, text: "Texts") -> list[Alert]:
    level = config.alerts.hourly_burst
    if not level:
        return []
    return [Alert("burst", f"burst:{start}", *text.burst(start, total, level))
            for start, total in facts.hours if total > level]


def _link(facts: Facts, config: Config, text: "Texts") -> list[Alert]:
    link = facts.link
    if link is None or link.down_since is None:
        return []
    if not link.up:
        if link.held or facts.now - link.down_since < config.alerts.link_down_after * 1000:
            return []
        return [Alert("link_down", f"link_down:{link.down_since}",
                      *text.link_down(link.down_since))]
    if not link.down_alerted:
        return []
    return [Alert("link_up", f"link_up:{link.down_since}", *text.link_up(link))]


def _new_ip(facts: Facts, text: "Texts") -> list[Alert]:
    if not facts.public_ip or not facts.last_ip or facts.public_ip == facts.last_ip:
        return []
    return [Alert("new_ip", f"new_ip:{facts.public_ip}:{facts.last_ip}:{facts.last_ip_since}",
                  *text.new_ip(facts.public_ip, facts.last_ip))]


def _devices(facts: Facts, text: "Texts") -> list[Alert]:
    return [Alert("device", f"device:{problem.source}:{problem.kind}:{problem.since}",
                  *text.device(problem)) for problem in facts.devices]


def summary_time(day_start: int, clock: str, config: Config) -> int:
    """``clock`` ("HH:MM") on the local day starting at ``day_start``, as its wall clock shows
    it (on a day of 23 or 25 hours too)."""
    day = from_ms(day_start, config.timezone)
    hour, minute = (int(part) for part in clock.split(":"))
    return round(datetime(day.year, day.month, day.day, hour, minute,
                          tzinfo=config.timezone).timestamp() * 1000)


def _daily_summary(facts: Facts, config: Config, text: "Texts") -> list[Alert]:
    clock = config.alerts.daily_summary
    if not clock:
        return []
    day_start = bucket_start("day", facts.now, config.timezone)
    if facts.now < summary_time(day_start, clock, config):
        return []
    return [Alert("daily_summary", f"daily_summary:{day_start}",
                  *text.daily_summary(clock < "12:00"))]


def _period_summary(facts: Facts, config: Config, text: "Texts") -> list[Alert]:
    if not config.alerts.period_summary or facts.previous_period is None:
        return []
    start, end, total = facts.previous_period
    return [Alert("period_summary", f"period_summary:{start}",
                  *text.period_summary(start, end, total))]


def bytes_to_next_alert(facts: Facts, config: Config) -> int | None:
    """Billed bytes more than ``facts`` counted that may make a rule of bytes due: the next
    threshold of the period, today's limit, this hour's burst. None when no such rule is set."""
    current = facts.usage
    reached: list[int] = []
    if current.limit:
        reached += [-(-current.limit * pct // 100) for pct in config.quota.thresholds]
    margins = [total - current.total for total in reached]
    if current.daily_limit:
        margins.append(current.daily_limit - current.today)
    if config.alerts.hourly_burst:
        margins.append(config.alerts.hourly_burst + 1 - facts.hours[-1][1])
    return min((margin for margin in margins if margin > 0), default=None)


def next_check_at(facts: Facts, config: Config) -> int:
    """The next moment a rule of time may be due after ``facts.now``, at most
    ``CHECK_EVERY_S`` (or ``collector.save_interval``) later: the link down for
    ``alerts.link_down_after``, the daily summary, a day's or the period's end, a day of the
    period counted (the early warning)."""
    now, tz = facts.now, config.timezone
    longest = min(CHECK_EVERY_S, config.collector.save_interval)
    tomorrow = next_bucket("day", bucket_start("day", now, tz), tz)
    moments = [now + round(longest * 1000), tomorrow, facts.usage.period_end,
               facts.usage.counted_since + EARLY_WARNING_AFTER_MS]
    if config.alerts.daily_summary:
        moments += [summary_time(day, config.alerts.daily_summary, config)
                    for day in (bucket_start("day", now, tz), tomorrow)]
    link = facts.link
    if link is not None and not link.up and not link.held and link.down_since is not None:
        moments.append(link.down_since + round(config.alerts.link_down_after * 1000))
    return min(moment for moment in moments if moment > now)


def new_alerts(alerts: Iterable[Alert], marked: Callable[[str], bool]) -> list[Alert]:
    """The alerts whose mark is not set yet; of the thresholds among them, all but the highest
    of each billing period are quiet (recorded, not delivered)."""
    fresh = [alert for alert in alerts if not marked(alert.mark)]
    highest = {alert.mark.rpartition(":")[2]: index for index, alert in enumerate(fresh)
               if alert.rule == "threshold"}
    for index, alert in enumerate(fresh):
        if alert.rule == "threshold" and highest[alert.mark.rpartition(":")[2]] != index:
            fresh[index] = replace(alert, quiet=True)
    return fresh


def limit_system(config: Config, section: str, key: str) -> str:
    """The unit system ("si" or "iec") the user wrote the limit ``section.key`` in, such as
    ``quota.daily = "2 GiB"``; the monthly limit's where it is not written as text."""
    written = config.effective.get(section, {}).get(key)
    return unit_system(written) if isinstance(written, str) else config.quota.unit_system


def targets_for(rule: str, notify: Sequence[NotifyTarget]) -> list[int]:
    """Indexes of the ``alerts.notify`` entries that get ``rule``'s messages."""
    def wants(target: NotifyTarget) -> bool:
        return not target.rules or any(
            rule == name or rule in ALERT_GROUPS.get(name, ()) for name in target.rules)
    return [index for index, target in enumerate(notify) if wants(target)]


class Texts:
    """The words of each message, in the unit system of the limit the message is about and
    the site's time zone."""

    def __init__(self, config: Config, facts: Facts) -> None:
        self.config = config
        self.facts = facts
        self.tz = config.timezone
        self.system = config.quota.unit_system
        self.daily_system = limit_system(config, "quota", "daily")
        self.burst_system = limit_system(config, "alerts", "hourly_burst")
        self.site = facts.site

    def size(self, value: int, system: str | None = None) -> str:
        return format_size(value, system or self.system)

    def sited(self, alert: Alert) -> Alert:
        """With the site's name first when it is not the default, and at most ``MAX_LENGTH``
        characters with the title (a long site name is cut, then the text if need be)."""
        title, text = alert.title, alert.text
        if self.site != DEFAULT_SITE:
            site = self.site if len(self.site) <= SITE_SHOWN else self.site[:SITE_SHOWN - 1] + "…"
            title, text = f"{site}: {title}", f"{site}: {text}"
        room = MAX_LENGTH - len(title) - 1
        if len(text) > room:
            text = text[:room - 1].rstrip() + "…"
        return replace(alert, title=title, text=text)

    def _days_left(self) -> str:
        days = self.facts.usage.calendar_days_left
        return f"{days} days left" if days > 1 else "this is the last day"

    def threshold(self, pct: int) -> tuple[str, str]:
        current, size = self.facts.usage, self.size
        used = f"{size(current.total)} of {size(current.limit)}"
        if current.total < current.limit:
            return (f"{pct}% of the limit used",
                    f"{pct}% of the monthly limit is used: {used}, {self._days_left()}. "
                    f"{size(current.daily_budget or 0)} a day keeps you inside.")
        if pct <= 100:  # also a lower threshold first seen over the limit
            return ("Monthly limit used up",
                    f"The monthly limit is used up: {used}{self._over(current.total)}, "
                    f"{self._days_left()}.")
        return (f"{pct}% of the limit used",
                f"{pct}% of the monthly limit is used: {used}{self._over(current.total)}, "
                f"{self._days_left()}.")

    def ended_threshold(self, pct: int, start: int, end: int, total: int) -> tuple[str, str]:
        """A threshold the period that ended reached by its end."""
        limit, size = self.facts.usage.limit, self.size
        used = f"{size(total)} of {size(limit)}{self._over(total)}"
        period = f"billing period {self._span(start, end)}"
        if total >= limit and pct <= 100:
            return ("Monthly limit used up",
                    f"The monthly limit was used up in the {period}: {used}.")
        return (f"{pct}% of the limit used",
                f"{pct}% of the monthly limit was used in the {period}: {used}.")

    def _over(self, total: int) -> str:
        over = total - self.facts.usage.limit
        return f", {self.size(over)} over" if over > 0 else ""

    def _span(self, start: int, end: int) -> str:
        first, last = from_ms(start, self.tz), from_ms(end - 1, self.tz)
        return f"{first:%-d %b} to {last:%-d %b}"

    def daily_limit(self, total: int, today: bool) -> tuple[str, str]:
        day = "Today" if today else "Yesterday"
        verb = "is" if today else "was"
        return (f"{day}'s limit used up",
                f"{day}'s limit {verb} used up: {self.size(total, self.daily_system)} of "
                f"{self.size(self.facts.usage.daily_limit, self.daily_system)}.")

    def early_warning(self) -> tuple[str, str]:
        current = self.facts.usage
        last_day = from_ms(current.period_end - 1, self.tz)
        return ("Over the limit at this pace",
                f"At this pace: {self.size(current.estimate)} by {last_day:%-d %b}, over the "
                f"{self.size(current.limit)} limit. {self.size(current.daily_budget or 0)} "
                "a day keeps you inside.")

    def burst(self, start: int, total: int, level: int) -> tuple[str, str]:
        system = self.burst_system
        return ("Heavy use this hour",
                f"Heavy use: {self.size(total, system)} in the hour from {self._clock(start)} "
                f"(the alert is set at {self.size(level, system)} an hour).")

    def daily_summary(self, yesterday: bool) -> tuple[str, str]:
        day = (f"Yesterday: {self.size(self.facts.yesterday)}." if yesterday
               else f"Today so far: {self.size(self.facts.usage.today)}.")
        return "Daily summary", f"{day} {usage_sentence(self.facts.usage, self.system)}"

    def period_summary(self, start: int, end: int, total: int) -> tuple[str, str]:
        limit, size = self.facts.usage.limit, self.size
        period = f"Billing period {self._span(start, end)}"
        if not limit:
            text = f"{period}: {size(total)} used."
        elif total > limit:
            text = (f"{period}: {size(total)} used, {size(total - limit)} over the "
                    f"{size(limit)} limit.")
        else:
            text = f"{period}: {size(total)} of {size(limit)} used ({total * 100 // limit}%)."
        return "Billing period ended", text

    def link_down(self, since: int) -> tuple[str, str]:
        return ("Link down", f"The link has been down since {self._when(since)} "
                             f"({in_words((self.facts.now - since) / 1000)}).")

    def link_up(self, link: LinkFacts) -> tuple[str, str]:
        down = in_words((link.since - (link.down_since or link.since)) / 1000)
        return ("Link back up",
                f"The link is back up since {self._when(link.since)}, after {down} down.")

    def new_ip(self, ip: str, previous: str) -> tuple[str, str]:
        return "New IP address", f"The public IP address is now {ip} (it was {previous})."

    def device(self, problem: DeviceProblem) -> tuple[str, str]:
        who = subject(problem.label)
        if problem.kind == "login_refused" and problem.setting.rpartition(".")[2] in (
                "pin", "pin_file"):
            return ("PIN refused", f"{who}'s SIM card refused its PIN. Fix {problem.setting}; "
                                   "it is not sent again until then.")
        if problem.kind == "login_refused":
            return ("Login refused", f"{who} refused the login. Fix {problem.setting}; it is "
                                     "not asked again until then.")
        if problem.kind == "puk_required":
            return ("SIM card locked", f"{who}'s SIM card is locked and asks for its PUK: no "
                                       "data until it is entered.")
        return ("SIM card asks for its PIN",
                f"{who}'s SIM card asks for its PIN: no data until it is entered.")

    def _clock(self, at: int) -> str:
        return f"{from_ms(at, self.tz):%H:%M}"

    def _when(self, at: int) -> str:
        """A time today as "14:05", on another day as "6 Dec 14:05"."""
        moment = from_ms(at, self.tz)
        if moment.date() == from_ms(self.facts.now, self.tz).date():
            return f"{moment:%H:%M}"
        return f"{moment:%-d %b %H:%M}"


def in_words(seconds: float) -> str:
    """A duration for a message: "45 seconds", "12 minutes", "3 hours 5 minutes", "2 days 4
    hours"."""
    def counted(number: int, unit: str) -> str:
        return f"{number} {unit}" if number == 1 else f"{number} {unit}s"
    seconds = max(int(seconds), 0)
    if seconds < 60:
        return counted(seconds, "second")
    if seconds < 3600:
        return counted(seconds // 60, "minute")
    big, small = (("day", 86400), ("hour", 3600)) if seconds >= 86400 else (
        ("hour", 3600), ("minute", 60))
    whole, rest = divmod(seconds, big[1])
    parts = [counted(whole, big[0])] + ([counted(rest // small[1], small[0])]
                                        if rest // small[1] else [])
    return " ".join(parts)


def raise_alert(config: Config, store: Store, alert: Alert, now: int,
                secrets: Sequence[str]) -> bool:
    """Raise ``alert`` unless its mark is set: its event, and its deliveries to the
    ``alerts.notify`` entries that take its rule, in one transaction. Whether it was new."""
    detail: dict[str, Any] = {"rule": alert.rule, "text": alert.text,
                              "site": config.site, "mark": alert.mark}
    if alert.quiet:
        detail["quiet"] = True
    if alert.late:
        detail["late"] = True
    deliveries = [] if alert.quiet else [
        (index, alert.title, alert.text)
        for index in targets_for(alert.rule, config.alerts.notify)]
    raised = store.raise_alert(alert.mark, Event(now, "alert", detail), deliveries)
    if raised:
        log.info("alert %s%s: %s (to %d of %d notify targets)", alert.rule,
                 (" (quiet: more than a day after its period ended)" if alert.late else
                  " (quiet: a higher threshold says more)" if alert.quiet else ""),
                 mask_known(alert.text, secrets), len(deliveries), len(config.alerts.notify))
    return raised


def interface_address(name: str) -> str | None:
    """The IPv4 address of interface ``name`` (SIOCGIFADDR), or None when it has none."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            answer = fcntl.ioctl(probe.fileno(), 0x8915,  # SIOCGIFADDR
                                 struct.pack("256s", name.encode()[:15]))
        except OSError:
            return None
    return socket.inet_ntoa(answer[20:24])


Snapshot = Callable[[], tuple[list[Delta], Mapping[str, Mapping[str, Any]]]]
"""The collector's deltas not saved yet and its sources' latest documents (``SourceWatch
.document()`` by source name), taken at once."""


class AlertChecker:
    """One check: the facts, the rules, and each new alert raised in the store with its
    deliveries. The store is held (``consistent``) only while reading what must be read as
    one moment, never while a message is sent."""

    def __init__(self, config: Config, store: Store,
                 clock: Callable[[], int], snapshot: Snapshot) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.snapshot = snapshot
        self.secrets = secret_values(config.effective)
        self.started = clock()
        self.margin: int | None = None
        """Billed bytes counted after the last check's snapshot that call for a check."""
        self.next_at = self.started
        """When the next check is due at the latest."""

    def check(self) -> list[Alert]:
        """Raise what is due; returns the alerts raised by this check. Sets ``margin`` and
        ``next_at``: when the next check is needed."""
        facts = self.facts(self.clock())
        with self.store.consistent():
            due = new_alerts(rules(facts, self.config), self.store.has_alert_mark)
        raised = [alert for alert in due if self._raise(alert, facts.now)]
        with self.store.consistent():
            self._remember(facts)
        self.margin = bytes_to_next_alert(facts, self.config)
        self.next_at = next_check_at(facts, self.config)
        return raised

    def facts(self, now: int) -> Facts:
        with self.store.consistent():
            # a save cannot move the unsaved deltas into the store between reading them and
            # reading the store's totals
            pending, sources = self.snapshot()
            facts = self._read(now, pending, sources)
        if facts.router is None:
            name = self.config.keeper.interface or default_route_interface()
            address = public_address(interface_address(name) if name else None)
            facts = replace(facts, public_ip=address)
        return facts

    def _raise(self, alert: Alert, now: int) -> bool:
        return raise_alert(self.config, self.store, alert, now, self.secrets)

    def _read(self, now: int, pending: list[Delta],
              sources: Mapping[str, Mapping[str, Any]]) -> Facts:
        config, store, tz = self.config, self.store, self.config.timezone
        current = usage(store, config, now, pending)
        billed = billed_keys(store, config, [d.key for d in pending])
        unsaved = [delta for delta in pending if delta.key in billed]

        def total(start: int, end: int) -> int:
            return sum(added(store.totals(start, end, billed), unsaved, start, end))

        today_start = bucket_start("day", now, tz)
        yesterday_start = bucket_start("day", today_start - 1, tz)
        hour = bucket_start("hour", now, tz)
        previous_hour = bucket_start("hour", hour - 1, tz)
        hours = tuple((start, total(start, end)) for start, end in (
            (previous_hour, hour), (hour, next_bucket("hour", hour, tz))))
        ip, ip_since, router = self._last_ip()
        public_ip, router_now = _router_ip(config, sources)
        if router_now is None and router not in {source.name for source in config.sources}:
            router = None
        return Facts(
            now=now, usage=current, yesterday_start=yesterday_start,
            yesterday=total(yesterday_start, today_start), hours=hours,
            previous_period=self._previous_period(current, total), link=self._link(now),
            public_ip=public_ip, router=router_now or router, last_ip=ip,
            last_ip_since=ip_since,
            devices=self._devices(now, sources), site=config.site)

    def _previous_period(self, current: Usage, total: Callable[[int, int], int]
                         ) -> tuple[int, int, int] | None:
        start, end = current_period(self.store, self.config, current.period_start - 1)
        end = min(end, current.period_start)
        first = self.store.first_bucket("5min")
        if first is None or first >= end:
            return None
        return start, end, total(start, end)

    def _link(self, now: int) -> LinkFacts | None:
        """The keeper's latest check in this run (one before it may be hours old), and the
        outage it is part of: remembered in the store as its start, or ``held`` while the
        keeper holds the link down on purpose (an outage then starts when the hold ends)."""
        keeper = read_keeper(self.store, self.config)
        if (keeper is None or keeper["checked_at"] < self.started
                or keeper["link"] not in ("up", "down")):
            return None
        up, since = keeper["link"] == "up", keeper["since"]
        remembered = self.store.get_meta(LINK_META) or ""
        if keeper["held"]:
            if remembered != HELD:
                self.store.set_meta(LINK_META, HELD)
            return LinkFacts(up, since, None, held=True)
        if remembered == HELD:
            remembered = "" if up else str(max(since, now))
            self.store.set_meta(LINK_META, remembered)
        down_since = int(remembered) if remembered else None
        if not up and down_since is None:
            down_since = since
            self.store.set_meta(LINK_META, str(down_since))
        alerted = down_since is not None and self.store.has_alert_mark(f"link_down:{down_since}")
        return LinkFacts(up, since, down_since, alerted)

    def _last_ip(self) -> tuple[str | None, int | None, str | None]:
        """The last public address seen, since when, and the source that reported it (None:
        the box's interface)."""
        try:
            remembered = json.loads(self.store.get_meta(IP_META) or "{}")
        except ValueError:
            return None, None, None
        if not isinstance(remembered, dict):
            return None, None, None
        ip, since, router = (remembered.get(key) for key in ("ip", "since", "router"))
        router = router if isinstance(router, str) else None
        ip = public_address(ip) if isinstance(ip, str) else None  # earlier versions kept LAN ones
        if ip is None or not isinstance(since, int):
            return None, None, router
        return ip, since, router

    def _devices(self, now: int, sources: Mapping[str, Mapping[str, Any]]
                 ) -> tuple[DeviceProblem, ...]:
        """The sources' problems, each with when it was first seen (kept in the store until
        the source says it is gone, so a restart does not make it new)."""
        try:
            remembered: dict[str, int] = json.loads(self.store.get_meta(DEVICE_META) or "{}")
        except ValueError:
            remembered = {}
        kept: dict[str, int] = {}
        problems = []
        for index, source in enumerate(self.config.sources):
            document = sources.get(source.name)
            if document is None:
                kept.update({key: since for key, since in remembered.items()
                             if key.startswith(f"{source.name}:")})
                continue
            label = str(document.get("label") or source.name)
            sim = document.get("gauges", {}).get("sim")
            found = {"login_refused": bool(document.get("refused"))}
            if isinstance(sim, str):
                found.update({kind: SIM_PROBLEMS.get(sim.lower()) == kind
                              for kind in SIM_PROBLEMS.values()})
            for kind in ("login_refused", *SIM_PROBLEMS.values()):
                key = f"{source.name}:{kind}"
                if not found.get(kind, key in remembered):
                    continue
                kept[key] = remembered.get(key, now)
                problems.append(DeviceProblem(source.name, label, kind, kept[key],
                                              f"sources[{index}].{secret_key(source)}"))
        if kept != remembered:
            self.store.set_meta(DEVICE_META, json.dumps(kept, sort_keys=True))
        return tuple(problems)

    def _remember(self, facts: Facts) -> None:
        """After the alerts are raised: the address seen, and the end of an outage."""
        ip, since = facts.last_ip, facts.last_ip_since
        if facts.public_ip and facts.public_ip != ip:
            ip, since = facts.public_ip, facts.now
        remembered = {"ip": ip, "since": since, "router": facts.router}
        if (ip, since, facts.router) != self._last_ip():
            self.store.set_meta(IP_META, json.dumps(remembered))
        if (facts.link is not None and facts.link.up and not facts.link.held
                and facts.link.down_since is not None):
            self.store.set_meta(LINK_META, "")


def _router_ip(config: Config, sources: Mapping[str, Mapping[str, Any]]
               ) -> tuple[str | None, str | None]:
    """The first source (in the order of the tables) whose gauges have ``wan_ip`` now: its
    address when that is a public one, and its name."""
    for source in config.sources:
        gauges = sources.get(source.name, {}).get("gauges", {})
        if "wan_ip" in gauges:
            address = gauges["wan_ip"]
            return public_address(address if isinstance(address, str) else None), source.name
    return None, None


def public_address(text: str | None) -> str | None:
    """``text`` when it is a public IP address; None for none, a malformed one, and those
    ``NOT_PUBLIC`` lists."""
    try:
        address = ipaddress.ip_address((text or "").strip())
    except ValueError:
        return None
    if address.is_multicast or any(address in network for network in NOT_PUBLIC
                                   if network.version == address.version):
        return None
    return str(address)



class AlertLoop(threading.Thread):
    """Checks the rules on a thread of its own: at start, then when the last check said
    (``AlertChecker.next_at``), or at once when ``wake`` is called (enough bytes counted, the
    link changed). After a failed check, the next one comes ``CHECK_EVERY_S`` later at most."""

    def __init__(self, checker: AlertChecker, bytes_to_watch: Callable[[int | None], None],
                 raised: Callable[[], None], stop: threading.Event) -> None:
        super().__init__(name="alerts", daemon=True)
        self.checker = checker
        self.bytes_to_watch = bytes_to_watch
        self.raised = raised
        self.stop = stop
        self._wake = threading.Event()

    def wake(self) -> None:
        self._wake.set()

    def run(self) -> None:
        longest_ms = min(CHECK_EVERY_S, self.checker.config.collector.save_interval) * 1000
        store_failing = False
        while not self.stop.is_set():
            try:
                if self.checker.check():
                    self.raised()
                next_at = self.checker.next_at
                store_failing = False
            except Exception as error:  # one bad check must not stop the next ones
                if not (store_failing and isinstance(error, StoreError)):
                    log.error("alerts failed: %s", mask_text(str(error)))  # an outage once
                store_failing = isinstance(error, StoreError)
                next_at = self.checker.clock() + longest_ms
            self.bytes_to_watch(self.checker.margin)
            wait_ms = min(max(next_at - self.checker.clock(), 0), longest_ms)
            self._wake.wait(wait_ms / 1000)
            self._wake.clear()

"""Text, CSV and JSON renderings of usage and series for the CLI."""

import io
from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from traffic.hints import Any
from traffic.periods import from_ms, starts_day
from traffic.quota import Beside, Usage
from traffic.record import Record
from traffic.store import ALERT_DELIVERY_KINDS, ALERT_OUTCOMES, Delivery, Event, Store
from traffic.units import format_duration, format_size, parse_size

TYPE_CHECKING = False
if TYPE_CHECKING:
    from traffic.source_state import SourceState

LABEL_FORMATS = {"5min": "%Y-%m-%d %H:%M", "hour": "%Y-%m-%d %H:00", "day": "%Y-%m-%d",
                 "month": "%Y-%m"}


def iso(ms: int | None, tz: ZoneInfo) -> str | None:
    return None if ms is None else from_ms(ms, tz).isoformat(timespec="seconds")


def usage_json(usage: Usage, tz: ZoneInfo) -> dict[str, Any]:
    document = usage.as_dict()
    for name in ("period_start", "period_end", "counted_since", "last_sample_at", "now"):
        document[f"{name}_iso"] = iso(document[name], tz)
    return document


def usage_sentence(usage: Usage, system: str) -> str:
    """The one sentence the family reads first: used, left, and what a day may take; and,
    once today's limit is reached, a second one saying so."""
    def size(value: int) -> str:
        return format_size(value, system)

    days = usage.calendar_days_left
    days_text = f"{days} days left" if days > 1 else "this is the last day"
    if not usage.limit:
        sentence = f"{size(usage.total)} used this period, {days_text}."
    elif usage.total >= usage.limit:
        sentence = (f"{size(usage.total)} of {size(usage.limit)} used: "
                    f"{size(usage.total - usage.limit)} over the limit, {days_text}.")
    else:
        sentence = (f"{size(usage.total)} of {size(usage.limit)} used, {days_text}: "
                    f"{size(usage.daily_budget or 0)} a day keeps you inside.")
    if usage.daily_limit and usage.today >= usage.daily_limit:
        sentence += (f" Today's limit is used up: {size(usage.today)} of "
                     f"{size(usage.daily_limit)}.")
    return sentence


def period_first_day(start: int, tz: ZoneInfo) -> str:
    """The period's first day, with the time when it does not start at midnight (a reset)."""
    return from_ms(start, tz).strftime("%-d %b %Y" if starts_day(start, tz) else "%-d %b %Y %H:%M")


def usage_text(usage: Usage, tz: ZoneInfo, system: str, site: str) -> str:
    def size(value: int) -> str:
        return format_size(value, system)

    last_day = from_ms(usage.period_end - 1, tz)
    end_day = last_day.strftime("%-d %b")
    lines = [
        usage_sentence(usage, system),
        "",
        f"Traffic at {site}",
        f"  period      {period_first_day(usage.period_start, tz)} to {last_day:%-d %b %Y} "
        f"({usage.days_left:.1f} days left)",
        *([f"  counted     since {from_ms(usage.counted_since, tz):%-d %b %Y %H:%M} "
           "(nothing was measured before)"] if usage.counted_since > usage.period_start else []),
        f"  download    {size(usage.rx)}",
        f"  upload      {size(usage.tx)}",
    ]
    if usage.limit:
        lines += [
            f"  total       {size(usage.total)} of {size(usage.limit)} ({usage.percent:.1f}%)",
            f"  estimate    {size(usage.estimate)} by {end_day}",
            f"  budget      {size(usage.daily_budget or 0)} a day keeps you inside",
        ]
    else:
        lines += [f"  total       {size(usage.total)} (no monthly limit set)",
                  f"  estimate    {size(usage.estimate)} by {end_day}"]
    daily = f" of {size(usage.daily_limit)}" if usage.daily_limit else ""
    lines.append(f"  today       {size(usage.today)}{daily}")
    age = usage.sample_age_s
    lines.append("  last sample never (is the collector running?)" if age is None
                 else f"  last sample {format_duration(max(age, 0))} ago")
    return "\n".join(lines)


def save_problem(save: dict[str, Any] | None, tz: ZoneInfo, system: str = "si") -> str:
    """What the running collector cannot save and since when (and how much of it waits in its
    spool for the store's server), or "" while it saves."""
    if not save or save.get("failing_since") is None:
        return ""
    since = from_ms(save["failing_since"], tz).strftime("%-d %b %H:%M:%S")
    text = (f"The collector cannot save since {since}: {save.get('error', '')}; "
            "the totals shown leave out what it counted since then.")
    spooled = save.get("spooled")
    if isinstance(spooled, int) and not isinstance(spooled, bool) and spooled > 0:
        text += (f" {format_size(spooled, system)} of it wait in its spool "
                 f"({save.get('spool', '')}), added to the store when it answers.")
    return text


def spool_note(size: int, entries: int, path: str, since: str, system: str = "si") -> str:
    """For a local reader of a store that does not answer: what this box's collector keeps in
    its spool meanwhile."""
    return (f"{format_size(size, system)} counted since {since} wait in this box's spool "
            f"{path} ({entries} saves), added to the store when it answers")


def keeper_text(keeper: dict[str, Any] | None, now: int, tz: ZoneInfo) -> str:
    """One line on the link, for ``traffic status``."""
    if keeper is None:
        return "  link        not checked yet (is the collector running?)"
    since = from_ms(keeper["since"], tz).strftime("%-d %b %H:%M")
    line = f"  link        {keeper['link']} since {since}"
    if keeper.get("held") == "disconnected":
        line += ", left down by `traffic disconnect`"
    elif keeper.get("held") == "quota":
        line += f", quota spent: kept down until {from_ms(keeper['lock_until'], tz):%-d %b %H:%M}"
    elif keeper.get("lock_until", 0) > now:
        line += (f", resting after failed attempts until "
                 f"{_clock_time(keeper['lock_until'], now, tz)} (`traffic connect` tries now)")
    age = format_duration(max(now - keeper.get("checked_at", now), 0) / 1000)
    return f"{line} (checked {age} ago: {keeper.get('evidence', '')})"


def beside_lines(usage: Usage, states: "list[SourceState]", system: str) -> list[str]:
    """For ``traffic status``: each other count of the link beside the bill's, and how far apart
    they are: ``router 12.31 GB, this box 12.29 GB (0.02 GB apart)``."""
    from traffic.source_state import billed_label

    ours = billed_label(states)
    lines = []
    for item in usage.beside:
        theirs, billed, apart = comparison(item, usage.total, system)
        own = "'s own month" if item.what == "router month" else ""
        lines.append(f"  compared    {item.label}{own} {theirs}, {ours} {billed} ({apart})")
    return lines


def comparison(item: Beside, billed_total: int, system: str) -> tuple[str, str, str]:
    """Another count, the bill's and how far apart they are, in one unit: ``12.31 GB``,
    ``12.29 GB``, ``0.02 GB apart``."""
    theirs, ours, apart = comparable_sizes([item.total, billed_total, abs(item.difference)],
                                           system)
    if item.difference == 0:
        return theirs, ours, "the same"
    if apart.startswith("0.00 "):  # too little to show in the unit of the totals
        apart = format_size(abs(item.difference), system)
    return theirs, ours, f"{apart} apart"


def comparable_sizes(values: list[int], system: str) -> list[str]:
    """Sizes side by side in the unit of the largest, with two decimals, so that counts a
    little apart read as such: ``12.31 GB``, ``12.29 GB``, ``0.02 GB``."""
    unit = format_size(max(abs(value) for value in values), system).split()[-1]
    if unit == "B":
        return [format_size(value, system) for value in values]
    factor = parse_size(f"1 {unit}")
    return [f"{value / factor:.2f} {unit}" for value in values]


def source_lines(states: "list[SourceState]", now: int, tz: ZoneInfo) -> list[str]:
    """For ``traffic status``: a source that is not answering or refused the login, and what a
    router or modem says of the mobile link. (The sources' modules are imported here: only
    ``status`` needs them, and ``report`` is timed against ``python -c pass``.)"""
    from traffic.source_state import DOWN, REFUSED, UP

    lines = []
    for state in states:
        head = f"  {state.label:<11} "
        if state.state == REFUSED and state.type == "modem":
            lines.append(f"{head}PIN refused: check {state.setting}; it is not sent again "
                         "until the settings change")
        elif state.state == REFUSED:
            lines.append(f"{head}login refused: check {state.setting}; no more logins until "
                         "the settings change")
        elif state.state == DOWN and state.failing_since is not None:
            since = _clock_time(state.failing_since, now, tz)
            lines.append(f"{head}not answering since {since}: {state.error or 'no answer'}")
        elif state.state == UP and state.sees_link:
            lines.append(head + ", ".join(link_words(state)))
    return lines


def link_words(state: "SourceState") -> list[str]:
    """``Telia``, ``LTE``, ``signal fair (RSRP -92 dBm, SINR 14 dB)``: the latest of each that
    the source reports; a connection, SIM or roaming only when it is not as usual."""
    from traffic.sim import sim_words

    gauges = state.gauges
    words = [str(gauges[name]) for name in ("operator", "network_type") if gauges.get(name)]
    if gauges.get("connection") not in (None, "", "connected"):
        words.append(str(gauges["connection"]))
    if gauges.get("sim") not in (None, "", "ready"):
        words.append(f"SIM {sim_words(gauges)}")
    if gauges.get("registration") not in (None, "", "home", "roaming"):
        words.append(f"registration {gauges['registration']}")
    if gauges.get("roaming") == "yes":
        words.append("roaming")
    signal = signal_words(gauges)
    if signal:
        words.append(f"signal {state.quality} ({signal})")
    return words


def signal_words(gauges: Mapping[str, float | str]) -> str:
    """``RSRP -92 dBm, SINR 14 dB``: the levels the quality word comes from."""
    return ", ".join(signal_levels(gauges))


def signal_levels(gauges: Mapping[str, float | str]) -> list[str]:
    """RSRP and SINR; RSSI when neither is known (a modem's ``AT+CSQ``)."""
    from traffic.signal import GAUGE_UNITS, number, shown_levels

    values = {name: value for name, given in gauges.items()
              if (value := number(given)) is not None}
    return [f"{name.upper()} {values[name]:g} {GAUGE_UNITS[name]}"
            for name in shown_levels(values)]


ALERTS_LISTED = 10
"""Alerts ``traffic status --json`` lists; the text shows ``ALERT_LINES`` of them."""
ALERT_LINES = 3


class AlertDelivery(Record):
    """How the message of one alert to one ``alerts.notify`` entry went: ``sent``, ``failed``
    (tried again at ``retry_at``), ``waiting`` (not tried yet: just raised, or the link is
    down), ``sending``, ``given_up`` or ``unconfirmed`` (it may have gone; not sent again)."""

    target: int
    url: str
    outcome: str
    attempts: int = 0
    error: str = ""
    retry_at: int | None = None


class AlertRecord(Record):
    at: int
    rule: str
    text: str
    quiet: bool
    deliveries: tuple[AlertDelivery, ...]
    late: bool = False
    """Quiet because its period ended more than a day before it was found."""


class AlertSummary(Record):
    records: list[AlertRecord]
    """The latest alerts of the period, newest first, at most ``ALERTS_LISTED``."""
    raised: int
    """Alerts raised in the period."""
    pending: int
    """Deliveries waiting in the outbox, of any period."""


def alert_summary(store: Store, since: int, now: int, urls: list[str]) -> AlertSummary:
    """The alerts raised from ``since`` (the period's start) to ``now``, with how their
    deliveries went; ``urls``: the notify entries' masked URLs."""
    raised = store.events(since, now + 1, 1000, kinds=["alert"])
    listed = raised[:ALERTS_LISTED]
    outcomes = store.events(listed[-1].at, now + 1, 10_000,
                            kinds=ALERT_DELIVERY_KINDS) if listed else []
    pending = store.pending_deliveries()
    return AlertSummary(alert_records(listed, outcomes, pending, urls), len(raised),
                        len(pending))


def alert_records(alerts: list[Event], outcomes: list[Event], pending: list[Delivery],
                  urls: list[str]) -> list[AlertRecord]:
    """Each ``alert`` event (newest first) with its deliveries: the outbox's for those still
    waiting, else the latest delivery event of the same mark and target. ``urls`` are the
    notify entries' masked URLs, for deliveries not tried yet."""
    latest: dict[tuple[str, int], Event] = {}
    for event in outcomes:  # newest first: the first of each delivery is its latest word
        if "mark" in event.detail:
            latest.setdefault((event.detail["mark"], int(event.detail["target"])), event)
    waiting = {(delivery.mark, delivery.target): delivery for delivery in pending}
    records = []
    for alert in alerts:
        mark = alert.detail.get("mark")
        targets = sorted({target for key_mark, target in [*latest, *waiting]
                          if key_mark == mark})
        deliveries = tuple(_delivery(target, latest.get((mark, target)),
                                     waiting.get((mark, target)), urls) for target in targets)
        records.append(AlertRecord(alert.at, str(alert.detail.get("rule", "")),
                                   str(alert.detail.get("text", "")),
                                   bool(alert.detail.get("quiet")), deliveries,
                                   bool(alert.detail.get("late"))))
    return records


def _delivery(target: int, event: Event | None, waiting: Delivery | None,
              urls: list[str]) -> AlertDelivery:
    detail = event.detail if event is not None else {}
    url = str(detail.get("url") or (urls[target] if 0 <= target < len(urls) else ""))
    error = str(detail.get("error", ""))
    if waiting is not None and waiting.sending_since is not None:
        return AlertDelivery(target, url, "sending", waiting.attempts, error)
    if waiting is not None and waiting.attempts:
        return AlertDelivery(target, url, "failed", waiting.attempts, error, waiting.next_at)
    if waiting is not None or event is None:
        return AlertDelivery(target, url, "waiting")
    outcome = ALERT_OUTCOMES.get(event.kind, event.kind)
    attempts = int(detail.get("attempts") or detail.get("attempt") or 0)
    retry_at = detail.get("retry_at") if outcome == "failed" else None
    return AlertDelivery(target, url, outcome, attempts, error, retry_at)


def alert_outcome(record: AlertRecord, now: int, tz: ZoneInfo) -> str:
    """``sent to 2, 1 failed (retrying at 14:32)``: where the alert's message went."""
    if record.quiet and record.late:
        return "not sent: found more than a day after its billing period ended"
    if record.quiet:
        return "not sent: a higher threshold reached at the same time says more"
    if not record.deliveries:
        return "not sent: no alerts.notify URL takes it"
    counts = Counter(delivery.outcome for delivery in record.deliveries)
    parts = [f"sent to {counts['sent']}"] if counts["sent"] else []
    if counts["failed"]:
        retry = min(delivery.retry_at or now for delivery in record.deliveries
                    if delivery.outcome == "failed")
        parts.append(f"{counts['failed']} failed (retrying at {_clock_time(retry, now, tz)})")
    words = {"sending": "being sent", "waiting": "waiting", "given_up": "given up",
             "unconfirmed": "unconfirmed (not sent again)"}
    parts += [f"{counts[outcome]} {said}" for outcome, said in words.items() if counts[outcome]]
    return ", ".join(parts)


def alert_lines(summary: AlertSummary, now: int, tz: ZoneInfo, link_down: bool = False
                ) -> list[str]:
    """For ``traffic status``: the latest alerts of the period, each with where it went, and
    the messages waiting to be sent."""
    lines = [f"{_clock_time(record.at, now, tz)} {record.text} — "
             f"{alert_outcome(record, now, tz)}" for record in summary.records[:ALERT_LINES]]
    pending = summary.pending
    if summary.raised > len(lines):
        earlier = summary.raised - len(lines)
        lines.append(f"and {earlier} earlier alert{'s' if earlier > 1 else ''} this period")
    if pending:
        lines.append(f"{pending} message{'s' if pending > 1 else ''} waiting to be sent"
                     + (" when the link is back" if link_down else ""))
    return [f"  {'alerts' if index == 0 else '':<11} {line}"
            for index, line in enumerate(lines)]


def alerts_json(summary: AlertSummary, tz: ZoneInfo) -> dict[str, Any]:
    from dataclasses import asdict

    return {"raised": summary.raised, "pending": summary.pending, "latest": [{
        "at": record.at, "at_iso": iso(record.at, tz), "rule": record.rule, "text": record.text,
        "quiet": record.quiet, "late": record.late, "deliveries": [{
            **asdict(delivery), "retry_at_iso": iso(delivery.retry_at, tz)}
            for delivery in record.deliveries]} for record in summary.records]}


def sources_json(states: "list[SourceState]", tz: ZoneInfo) -> dict[str, dict[str, Any]]:
    return {state.name: state.as_dict(tz) for state in states}


def _clock_time(at: int, now: int, tz: ZoneInfo) -> str:
    """``22:13`` today, ``24 Nov 22:13`` on another day."""
    moment = from_ms(at, tz)
    return moment.strftime("%H:%M" if moment.date() == from_ms(now, tz).date() else
                           "%-d %b %H:%M")


def series_rows(points: list[tuple[int, int, int]]) -> list[tuple[int, int, int, int]]:
    return [(bucket, rx, tx, rx + tx) for bucket, rx, tx in points]


def bucket_labels(buckets: list[int], resolution: str, tz: ZoneInfo) -> list[str]:
    """Local labels such as ``2026-10-25 02:00``; a label that would repeat (the hour the clocks
    go back) gets its UTC offset: ``2026-10-25 02:00+02:00``, ``2026-10-25 02:00+01:00``."""
    starts = [from_ms(bucket, tz) for bucket in buckets]
    labels = [start.strftime(LABEL_FORMATS[resolution]) for start in starts]
    repeated = {label for label, count in Counter(labels).items() if count > 1}
    return [label + _offset(start) if label in repeated else label
            for label, start in zip(labels, starts, strict=True)]


def _offset(moment: datetime) -> str:
    minutes = int((moment.utcoffset() or timedelta()).total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def series_table(points: list[tuple[int, int, int]], resolution: str, tz: ZoneInfo,
                 system: str) -> str:
    labels = bucket_labels([bucket for bucket, _, _ in points], resolution, tz)
    rows = [(label, format_size(rx, system), format_size(tx, system), format_size(total, system))
            for label, (_, rx, tx, total) in zip(labels, series_rows(points), strict=True)]
    sums = [sum(column) for column in list(zip(*points, strict=False))[1:]] or [0, 0]
    rows.append(("total", *(format_size(value, system) for value in (*sums, sum(sums)))))
    header = (resolution, "download", "upload", "total")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]

    def line(row: tuple[str, ...]) -> str:
        return " | ".join([row[0].ljust(widths[0]),
                           *(cell.rjust(width) for cell, width in zip(row[1:], widths[1:],
                                                                      strict=True))])
    rule = "-+-".join("-" * width for width in widths)
    return "\n".join([line(header), rule, *map(line, rows[:-1]), rule, line(rows[-1])])


def series_csv(points: list[tuple[int, int, int]], tz: ZoneInfo) -> str:
    import csv

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["start", "start_ms", "rx", "tx", "total"])
    for bucket, rx, tx, total in series_rows(points):
        writer.writerow([iso(bucket, tz), bucket, rx, tx, total])
    return out.getvalue().rstrip("\n")


def series_json(points: list[tuple[int, int, int]], resolution: str, tz: ZoneInfo) -> str:
    import json

    return json.dumps({
        "resolution": resolution,
        "points": [{"start": bucket, "start_iso": iso(bucket, tz), "rx": rx, "tx": tx,
                    "total": total} for bucket, rx, tx, total in series_rows(points)],
    }, indent=2)


def toml_text(settings: dict[str, Any], notes: Mapping[str, str] | None = None) -> str:
    """The settings as TOML: scalars first, then tables, then arrays of tables. ``notes`` maps
    a dotted key (``"collector.runtime_dir"``, ``"sources[0].interfaces"``) to a comment for
    the end of its line."""
    import json

    notes = notes or {}
    def value(item: Any) -> str:
        if isinstance(item, bool):
            return "true" if item else "false"
        if isinstance(item, list):
            return "[" + ", ".join(value(part) for part in item) + "]"
        if isinstance(item, dict):
            return "{ " + ", ".join(f"{key(k)} = {value(v)}" for k, v in item.items()) + " }"
        if isinstance(item, int | float):
            return repr(item)
        return json.dumps(str(item), ensure_ascii=False)

    def key(name: str) -> str:
        return name if name.replace("_", "").replace("-", "").isalnum() and not name[0].isdigit() \
            else json.dumps(name)

    def pairs(table: dict[str, Any], path: str) -> list[str]:
        return [_with_note(f"{key(k)} = {value(v)}", notes.get(path + k)) for k, v in table.items()
                if path or (not isinstance(v, dict) and not _is_table_list(v))]

    lines = pairs(settings, "")
    for name, table in settings.items():
        if isinstance(table, dict):
            lines += ["", f"[{key(name)}]", *pairs(table, f"{name}.")]
    for name, tables in settings.items():
        if _is_table_list(tables):
            for index, table in enumerate(tables):
                lines += ["", f"[[{key(name)}]]", *pairs(table, f"{name}[{index}].")]
    return "\n".join(lines)


def _with_note(line: str, note: str | None) -> str:
    return f"{line}  # {' '.join(note.split())}" if note else line


def _is_table_list(item: Any) -> bool:
    return isinstance(item, list) and bool(item) and all(isinstance(part, dict) for part in item)

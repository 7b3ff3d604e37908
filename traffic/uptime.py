"""Uptime per local day, from the keeper's down, up and stop events.

Only what the keeper observed counts: a time before its first finding (the first check, or the
start of the span the oldest event's duration covers) is unknown, not up, and so is the time
between one run of the keeper and the next: a run ends at its ``stop`` event or, when it was
killed and recorded none, at its last event.
"""

from collections.abc import Iterable
from zoneinfo import ZoneInfo

from traffic.periods import bucket_start, next_bucket
from traffic.store import Event

Span = tuple[int, int, bool]
"""``[start, end)`` and whether the link was up."""


def observed(events: Iterable[Event], now: int, current: tuple[str, int] | None = None
             ) -> list[Span]:
    """What the keeper saw, in order: a ``down`` or ``up`` event starts a span that lasts to
    the next one, to a ``stop`` event, or to ``now``. A run's first check (``first_check``)
    after no ``stop`` ends the span before at the latest event of any kind before it. The
    oldest event's duration tells how long the other state lasted before it. ``current``, the
    keeper's latest finding ``(link, since)``, covers ``since`` to ``now`` when no event does."""
    spans: list[Span] = []
    found: tuple[int, bool] | None = None
    latest = 0
    for event in sorted(events, key=lambda e: e.at):
        if event.kind in ("down", "up", "stop") and found is not None:
            first = event.kind != "stop" and event.detail.get("first_check")
            spans.append((found[0], latest if first else event.at, found[1]))
            found = None
        if event.kind in ("down", "up"):
            if not spans and found is None and event.duration_ms:
                spans.append((event.at - event.duration_ms, event.at, event.kind == "down"))
            found = (event.at, event.kind == "up")
        latest = event.at
    if found is not None:
        spans.append((found[0], now, found[1]))
    if current is not None and current[0] in ("up", "down"):
        covered = spans[0][0] if spans else now
        if current[1] < covered:
            spans.insert(0, (current[1], covered, current[0] == "up"))
    return [(start, max(start, end), up) for start, end, up in spans]


def uptime_by_day(events: Iterable[Event], start: int, now: int, tz: ZoneInfo,
                  current: tuple[str, int] | None = None, seen_until: int | None = None
                  ) -> list[tuple[int, int, float | None]]:
    """``(day, down_ms, up_percent)`` for each local day from the one holding ``start`` to today
    (today only so far). The percentage is of the part of the day the keeper observed, and
    None when it observed none of it. ``seen_until``: when the keeper stopped watching, if it
    did (the collector was stopped); after that nothing is known."""
    spans = observed(events, min(now, seen_until) if seen_until is not None else now, current)
    days = []
    day = bucket_start("day", start, tz)
    while day <= now:
        end = min(next_bucket("day", day, tz), now)
        seen = _overlap(spans, day, end)
        down = _overlap([span for span in spans if not span[2]], day, end)
        days.append((day, down, round(100 * (seen - down) / seen, 2) if seen else None))
        day = next_bucket("day", day, tz)
    return days


def _overlap(spans: list[Span], start: int, end: int) -> int:
    return sum(max(0, min(end, b) - max(start, a)) for a, b, _ in spans)

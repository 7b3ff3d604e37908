"""Uptime per local day, from the keeper's down and up events.

Only what the keeper observed counts: a time before its first finding (the first check, or the
start of the span the oldest event's duration covers) is unknown, not up.
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
    the next event (or ``now``); its duration tells how long the other state lasted before.
    ``current``, the keeper's latest finding ``(link, since)``, covers ``since`` to ``now``
    when no event does."""
    changes = sorted((e for e in events if e.kind in ("down", "up")), key=lambda e: e.at)
    spans: list[Span] = []
    if changes and changes[0].duration_ms:
        first = changes[0]
        spans.append((first.at - first.duration_ms, first.at, first.kind == "down"))
    ends = [event.at for event in changes[1:]] + [now]
    spans += [(event.at, end, event.kind == "up") for event, end in zip(changes, ends,
                                                                        strict=False)]
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

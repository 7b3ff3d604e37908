"""Uptime per local day, from the keeper's down and up events."""

from collections.abc import Iterable
from zoneinfo import ZoneInfo

from traffic.periods import bucket_start, next_bucket
from traffic.store import Event


def outages(events: Iterable[Event], now: int) -> list[tuple[int, int]]:
    """``[start, end)`` of each time the link was down; an outage still going ends at ``now``.

    An "up" event carries how long the link was down; a "down" event with no "up" after it is
    an outage still going on.
    """
    spans = []
    ongoing: int | None = None
    for event in sorted(events, key=lambda e: e.at):
        if event.kind == "down":
            ongoing = event.at
        elif event.kind == "up":
            spans.append((event.at - (event.duration_ms or 0), event.at))
            ongoing = None
    if ongoing is not None:
        spans.append((ongoing, now))
    return spans


def uptime_by_day(events: Iterable[Event], start: int, now: int, tz: ZoneInfo
                  ) -> list[tuple[int, int, float]]:
    """``(day, down_ms, up_percent)`` for each local day from the one holding ``start`` to today;
    today counts only its part so far."""
    spans = outages(events, now)
    days = []
    day = bucket_start("day", start, tz)
    while day <= now:
        end = min(next_bucket("day", day, tz), now)
        down = sum(max(0, min(end, b) - max(day, a)) for a, b in spans)
        length = max(end - day, 1)
        days.append((day, down, round(100 * (length - down) / length, 2)))
        day = next_bucket("day", day, tz)
    return days

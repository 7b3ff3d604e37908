"""Local-time buckets (5min, hour, day, month) and billing periods.

Instants are epoch milliseconds (UTC). A bucket is named by the UTC instant of its local start, so
a local day is 23 or 25 hours long across a DST change, and the repeated hour of an autumn night is
two distinct hour buckets.
"""

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

FIVE_MIN_MS = 300_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
QUARTER_MS = 900_000
RESOLUTIONS = ("5min", "hour", "day", "month")
LATEST_MS = 7_258_118_400_000   # 2200-01-01 UTC


def now_ms() -> int:
    """The wall clock in epoch milliseconds: the one clock of the CLI, collector and web app."""
    return time.time_ns() // 1_000_000


def to_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def from_ms(ms: int, tz: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(tz)


def _local_midnight(year: int, month: int, day: int, tz: ZoneInfo) -> int:
    return to_ms(datetime(year, month, day, tzinfo=tz))


def _hour_start(hour_ms: int, tz: ZoneInfo) -> int:
    """Local start of the hour holding the quarter-hour-aligned instant ``hour_ms``."""
    found = _hour_starts.get((hour_ms, tz))
    if found is None:
        if len(_hour_starts) >= HOUR_STARTS_KEPT:
            _hour_starts.clear()
        local = from_ms(hour_ms, tz)
        found = _hour_starts[hour_ms, tz] = to_ms(local.replace(minute=0, second=0,
                                                                microsecond=0))
    return found


HOUR_STARTS_KEPT = 4096
_hour_starts: dict[tuple[int, ZoneInfo], int] = {}
"""Hour starts already worked out (``functools.lru_cache`` would import ``functools``, a
twentieth of ``traffic status``)."""


def bucket_start(resolution: str, ms: int, tz: ZoneInfo) -> int:
    """Start of the local bucket of ``resolution`` that holds ``ms``."""
    if resolution == "5min":
        return ms - ms % FIVE_MIN_MS  # every zone's offset is a multiple of 5 minutes
    if resolution == "hour":
        return _hour_start(ms - ms % QUARTER_MS, tz)  # local hours start on UTC quarter hours
    local = from_ms(ms, tz)
    if resolution == "day":
        return _local_midnight(local.year, local.month, local.day, tz)
    if resolution == "month":
        return _local_midnight(local.year, local.month, 1, tz)
    raise ValueError(f"unknown resolution {resolution!r}")


def next_bucket(resolution: str, start: int, tz: ZoneInfo) -> int:
    """Start of the bucket after the one that starts at ``start``."""
    if resolution == "5min":
        return start + FIVE_MIN_MS
    if resolution == "hour":
        return bucket_start("hour", start + HOUR_MS, tz)
    local = from_ms(start, tz)
    if resolution == "day":
        following = local.date() + timedelta(days=1)
        return _local_midnight(following.year, following.month, following.day, tz)
    if resolution == "month":
        year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
        return _local_midnight(year, month, 1, tz)
    raise ValueError(f"unknown resolution {resolution!r}")


def buckets(resolution: str, start: int, end: int, tz: ZoneInfo) -> Iterator[int]:
    """Starts of the buckets that overlap ``[start, end)``."""
    current = bucket_start(resolution, start, tz)
    while current < end:
        yield current
        current = next_bucket(resolution, current, tz)


def billing_period(at: int, billing_day: int, tz: ZoneInfo) -> tuple[int, int]:
    """``[start, end)`` of the billing period holding ``at``.

    A period starts at local midnight of ``billing_day``, clamped to the month's last day
    (``billing_day = 31`` starts on 28 or 29 February).
    """
    local = from_ms(at, tz)
    year, month = local.year, local.month
    start = _period_start(year, month, billing_day, tz)
    if at < start:
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
        start = _period_start(year, month, billing_day, tz)
    following = (year + 1, 1) if month == 12 else (year, month + 1)
    return start, _period_start(*following, billing_day, tz)


def _period_start(year: int, month: int, billing_day: int, tz: ZoneInfo) -> int:
    following = datetime(year + (month == 12), month % 12 + 1, 1)
    last_day = (following - timedelta(days=1)).day
    return _local_midnight(year, month, min(billing_day, last_day), tz)


def starts_day(ms: int, tz: ZoneInfo) -> bool:
    """Whether ``ms`` is the start of a local day (not always 00:00: some zones skip midnight)."""
    return bucket_start("day", ms, tz) == ms


def day_bounds(at: int, tz: ZoneInfo) -> tuple[int, int]:
    start = bucket_start("day", at, tz)
    return start, next_bucket("day", start, tz)


def default_range(resolution: str, now: int, tz: ZoneInfo, billing_day: int) -> tuple[int, int]:
    """What a chart or report of ``resolution`` shows when no range is asked for."""
    end = next_bucket(resolution, bucket_start(resolution, now, tz), tz)
    if resolution == "5min":
        return end - DAY_MS, end
    if resolution == "hour":
        return end - 7 * DAY_MS, end
    if resolution == "day":
        start, end = billing_period(now, billing_day, tz)
        return billing_period(start - 1, billing_day, tz)[0], end
    if resolution == "month":
        start = bucket_start("month", now, tz)
        for _ in range(23):
            start = bucket_start("month", start - 1, tz)
        return start, end
    raise ValueError(f"unknown resolution {resolution!r}")


def parse_instant(text: str, tz: ZoneInfo, bounded: bool = True) -> int:
    """Epoch ms from epoch milliseconds, an ISO 8601 date (local midnight) or date and time.

    A date and time without an offset is local time.
    """
    text = text.strip()
    if not text.isascii():
        raise ValueError(f"{text!r} is neither epoch milliseconds nor an ISO 8601 date such as "
                         "2026-11-08 or 2026-11-08T06:00 (digits 0-9 only)")
    if text.isdigit():
        ms = int(text)
    else:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=tz)
            ms = to_ms(moment)
        except (ValueError, OverflowError):
            raise ValueError(f"{text!r} is neither epoch milliseconds nor an ISO 8601 date "
                             "such as 2026-11-08 or 2026-11-08T06:00") from None
    earliest, latest = (to_ms(datetime(year, 1, 1, tzinfo=tz)) for year in (1990, 2200))
    if bounded and not earliest <= ms <= latest:
        raise ValueError(f"{text!r} is outside the years 1990 to 2200")
    return ms

"""Series for charts and reports: every bucket of a range, the empty ones as zeros."""

from collections.abc import Iterable
from zoneinfo import ZoneInfo

from traffic.periods import bucket_start, buckets
from traffic.store import Store

MAX_POINTS = 20_000
"""More buckets than any chart can show; a larger request is a mistake, not a query to run."""


def filled_series(store: Store, resolution: str, start: int, end: int, tz: ZoneInfo,
                  keys: Iterable[str] | None = None) -> list[tuple[int, int, int]]:
    """``(bucket, rx, tx)`` for every bucket overlapping ``[start, end)``.

    Raises ValueError when the range holds more than MAX_POINTS buckets.
    """
    if bucket_count_estimate(resolution, start, end) > MAX_POINTS:
        raise ValueError(f"the range holds more than {MAX_POINTS} {resolution} buckets; "
                         "choose a shorter range or a coarser resolution")
    first = bucket_start(resolution, start, tz)  # the bucket holding start is shown whole
    stored = {bucket: (rx, tx) for bucket, rx, tx in store.series(resolution, first, end, keys)}
    return [(bucket, *stored.get(bucket, (0, 0))) for bucket in buckets(resolution, start, end, tz)]


def bucket_count_estimate(resolution: str, start: int, end: int) -> int:
    """Roughly how many buckets ``[start, end)`` holds, without walking them."""
    widths = {"5min": 300_000, "hour": 3_600_000, "day": 86_400_000, "month": 28 * 86_400_000}
    return (end - start) // widths[resolution] + 1

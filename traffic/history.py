"""Series for charts and reports: every bucket of a range, the empty ones as zeros."""

from bisect import bisect_right
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from traffic.periods import buckets
from traffic.store import Store

MAX_POINTS = 20_000
"""More buckets than any chart can show; a larger request is a mistake, not a query to run."""


def filled_series(store: Store, resolution: str, start: int, end: int, tz: ZoneInfo,
                  keys: Iterable[str] | None = None) -> list[tuple[int, int, int]]:
    """``(bucket, rx, tx)`` for every bucket overlapping ``[start, end)``.

    A stored bucket counts in the bucket of ``tz`` that holds its start, so totals stored under
    another time zone (before ``timezone`` changed) keep the boundaries they were stored with.
    Raises ValueError when the range holds more than MAX_POINTS buckets.
    """
    if bucket_count_estimate(resolution, start, end) > MAX_POINTS:
        raise ValueError(f"the range holds more than {MAX_POINTS} {resolution} buckets; "
                         "choose a shorter range or a coarser resolution")
    grid = list(buckets(resolution, start, end, tz))  # the bucket holding start is shown whole
    if not grid:
        return []
    return place_in_grid(grid, store.series(resolution, grid[0], end, keys))


def measured_part(points: list[tuple[int, int, int]], now: int, first_stored: int | None
                  ) -> list[tuple[int, int, int]]:
    """``points`` from the one holding ``first_stored`` (the store's oldest bucket of this
    resolution) to the one holding ``now``.

    A default range can reach back before anything was stored and on past today; those buckets
    were never measured, and listing them as 0 B would say otherwise. Quiet buckets after the
    first one stored were measured, and stay. The bucket holding ``now`` stays too, so the
    answer is never empty.
    """
    past = [point for point in points if point[0] <= now] or points[:1]
    if first_stored is None:
        return past[-1:]
    first = bisect_right([bucket for bucket, _, _ in past], first_stored) - 1
    return past[max(first, 0):]


def place_in_grid(grid: list[int], stored: Iterable[tuple[int, int, int]]
                  ) -> list[tuple[int, int, int]]:
    """Sums of ``stored`` per slot of ``grid`` (sorted starts), each in the slot holding it."""
    rx = [0] * len(grid)
    tx = [0] * len(grid)
    for bucket, bucket_rx, bucket_tx in stored:
        slot = bisect_right(grid, bucket) - 1
        if slot >= 0:
            rx[slot] += bucket_rx
            tx[slot] += bucket_tx
    return list(zip(grid, rx, tx, strict=True))


def bucket_count_estimate(resolution: str, start: int, end: int) -> int:
    """Roughly how many buckets ``[start, end)`` holds, without walking them."""
    widths = {"5min": 300_000, "hour": 3_600_000, "day": 86_400_000, "month": 28 * 86_400_000}
    return (end - start) // widths[resolution] + 1

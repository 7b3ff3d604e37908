"""Backend-neutral arithmetic of the store: spreading deltas over buckets, covering a time range.

Both backends use these functions, so they agree on every byte.
"""

import itertools
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from traffic.counters import Delta
from traffic.periods import FIVE_MIN_MS, bucket_start, next_bucket
from traffic.store import GaugeSample

RESOLUTION_CODES = {"5min": 0, "hour": 1, "day": 2, "month": 3}
COVER_LEVELS = ("raw", "5min", "hour", "day")


def split_delta(start: int, end: int, rx: int, tx: int) -> list[tuple[int, int, int, int]]:
    """``(bucket, piece_start, rx, tx)`` per 5-minute bucket the interval touches.

    Bytes are shared out in proportion to time by largest remainder, so the pieces add up to the
    delta exactly.
    """
    first = start - start % FIVE_MIN_MS
    if end - first <= FIVE_MIN_MS:
        return [(first, start, rx, tx)]
    cuts = [start, *range(first + FIVE_MIN_MS, end, FIVE_MIN_MS), end]
    spans = [b - a for a, b in itertools.pairwise(cuts)]
    shares = [_apportion(rx, spans), _apportion(tx, spans)]
    return [(cuts[i] - cuts[i] % FIVE_MIN_MS, cuts[i], shares[0][i], shares[1][i])
            for i in range(len(spans))]


def _apportion(total: int, weights: list[int]) -> list[int]:
    whole = sum(weights)
    exact = [total * weight for weight in weights]
    shares = [value // whole for value in exact]
    leftover = total - sum(shares)
    by_remainder = sorted(range(len(weights)), key=lambda i: exact[i] % whole, reverse=True)
    for i in by_remainder[:leftover]:
        shares[i] += 1
    return shares


class RollupIncrements:
    """Sums deltas into ``(key, resolution code, bucket) -> [rx, tx]`` for one write."""

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self.sums: dict[tuple[str, int, int], list[int]] = {}
        self._coarse: dict[int, tuple[int, int, int]] = {}

    def add(self, deltas: Iterable[Delta]) -> None:
        sums = self.sums
        for delta in deltas:
            for five_min, _, rx, tx in split_delta(delta.start, delta.end, delta.rx, delta.tx):
                coarse = self._coarse.get(five_min) or self._coarse_buckets(five_min)
                for code, bucket in enumerate((five_min, *coarse)):
                    entry = sums.get((delta.key, code, bucket))
                    if entry is None:
                        sums[(delta.key, code, bucket)] = [rx, tx]
                    else:
                        entry[0] += rx
                        entry[1] += tx

    def _coarse_buckets(self, five_min: int) -> tuple[int, int, int]:
        hour = bucket_start("hour", five_min, self.tz)
        day = bucket_start("day", five_min, self.tz)
        month = bucket_start("month", five_min, self.tz)
        self._coarse[five_min] = (hour, day, month)
        return hour, day, month

    def rows(self) -> list[tuple[str, int, int, int, int]]:
        return [(key, code, bucket, rx, tx) for (key, code, bucket), (rx, tx) in self.sums.items()]


def cover(start: int, end: int, tz: ZoneInfo, level: int = len(COVER_LEVELS) - 1
          ) -> list[tuple[str, int, int]]:
    """``[start, end)`` as ranges of whole buckets, coarsest first, with raw edges.

    Each ``(resolution, first, last)`` means the buckets starting in ``[first, last)``; a
    ``"raw"`` range lies inside one 5-minute bucket and is read from the raw intervals.
    """
    if start >= end:
        return []
    if level == 0:
        boundary = start - start % FIVE_MIN_MS + FIVE_MIN_MS
        if boundary < end:
            return [("raw", start, boundary), *cover(boundary, end, tz, 0)]
        return [("raw", start, end)]
    resolution = COVER_LEVELS[level]
    first = bucket_start(resolution, start, tz)
    if first < start:
        first = next_bucket(resolution, first, tz)
    last = bucket_start(resolution, end, tz)
    if first >= last:
        return cover(start, end, tz, level - 1)
    return [*cover(start, first, tz, level - 1), (resolution, first, last),
            *cover(last, end, tz, level - 1)]


def raw_share(intervals: Iterable[tuple[int, int, int, int]], start: int, end: int
              ) -> tuple[int, int]:
    """Bytes of raw intervals ``(start, end, rx, tx)`` that fall in ``[start, end)``.

    ``[start, end)`` lies inside one 5-minute bucket; each interval's piece in that bucket is
    shared by time, so a range never counts bytes that the neighbouring bucket also counts.
    """
    total_rx = total_tx = 0
    bucket = start - start % FIVE_MIN_MS
    for a, b, rx, tx in intervals:
        for five_min, piece_start, piece_rx, piece_tx in split_delta(a, b, rx, tx):
            if five_min != bucket:
                continue
            piece_end = min(b, five_min + FIVE_MIN_MS)
            overlap = min(end, piece_end) - max(start, piece_start)
            if overlap > 0:
                span = piece_end - piece_start
                total_rx += piece_rx * overlap // span
                total_tx += piece_tx * overlap // span
    return total_rx, total_tx


class Spread:
    """Deltas that are not in the tables yet (SQLite's held save), read as the tables will
    read once they are: by bucket as ``RollupIncrements`` shares them, at a range's raw edges
    as ``raw_share`` does. Added to what the tables give, a reader's figures do not change
    when the deltas move into the tables."""

    def __init__(self, deltas: list[Delta], tz: ZoneInfo) -> None:
        self.raw = [(d.start, d.end, d.rx, d.tx) for d in deltas]
        """The deltas as ``raw_share`` reads the intervals table's rows."""
        increments = RollupIncrements(tz)
        increments.add(deltas)
        self.sums: dict[tuple[int, int], list[int]] = {}
        """``(resolution code, bucket) -> [rx, tx]``, over all the deltas' keys."""
        for _, code, bucket, rx, tx in increments.rows():
            entry = self.sums.setdefault((code, bucket), [0, 0])
            entry[0] += rx
            entry[1] += tx

    def buckets(self, resolution: str, start: int, end: int) -> dict[int, list[int]]:
        code = RESOLUTION_CODES[resolution]
        return {bucket: sums for (level, bucket), sums in self.sums.items()
                if level == code and start <= bucket < end}

    def first_bucket(self, resolution: str) -> int | None:
        code = RESOLUTION_CODES[resolution]
        return min((bucket for level, bucket in self.sums if level == code), default=None)


def gauge_rows(samples: Iterable[GaugeSample]
               ) -> list[tuple[str, str, int, float, int, str | None]]:
    """``(key, name, 5-minute bucket, sum, count, text)``: a number adds to its bucket's mean,
    a text (an operator, a network type) is the bucket's latest. Replaying samples doubles a
    bucket's sum and count together, so its mean does not change."""
    sums: dict[tuple[str, str, int], list] = {}
    for sample in samples:
        entry = sums.setdefault((sample.key, sample.name, sample.at - sample.at % FIVE_MIN_MS),
                                [0.0, 0, None])
        if isinstance(sample.value, str):
            entry[2] = sample.value
        else:
            entry[0] += sample.value
            entry[1] += 1
    return [(*where, total, count, text) for where, (total, count, text) in sums.items()]


def gauge_value(total: float, count: int, text: str | None) -> float | str | None:
    if count:
        return round(total / count, 2)
    return text

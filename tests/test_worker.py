"""What the collector hands to the store at each save."""

from collector.worker import BucketMerger
from traffic.counters import Delta

T = 1_795_000_200_000  # epoch ms
BUCKET = 300_000


def polls(key: str, start: int, count: int, rx: int = 10) -> list[Delta]:
    return [Delta(key, start + i * 5000, start + (i + 1) * 5000, rx, 1) for i in range(count)]


def test_a_minute_of_polls_becomes_one_row_per_key_and_bucket() -> None:
    start = T - T % BUCKET  # a bucket boundary
    deltas = polls("kernel:ppp0", start, 12) + polls("kernel:wwan0", start, 12, rx=3)
    assert BucketMerger(deltas).deltas == [Delta("kernel:ppp0", start, start + 60_000, 120, 12),
                                            Delta("kernel:wwan0", start, start + 60_000, 36, 12)]


def test_merging_stops_at_a_bucket_boundary_and_at_gaps() -> None:
    boundary = T - T % BUCKET + BUCKET
    deltas = polls("kernel:ppp0", boundary - 30_000, 12)
    merged = BucketMerger(deltas).deltas
    assert [(d.start, d.end, d.rx) for d in merged] == [
        (boundary - 30_000, boundary, 60), (boundary, boundary + 30_000, 60)]
    gap = [Delta("k", 0, 5000, 1, 1), Delta("k", 10_000, 15_000, 1, 1)]
    assert BucketMerger(gap).deltas == gap
    assert sum(d.rx for d in merged) == sum(d.rx for d in deltas)

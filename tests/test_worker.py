"""What the collector hands to the store at each save."""

import pytest

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


STOP_UNDER_ITS_OWN_LOCK = """
import os, signal, threading
from collector.worker import Stop
stop = Stop()
signal.signal(signal.SIGTERM, lambda *_: stop.{how}())
with stop._cond:  # where the main thread is when it enters Event.wait
    os.kill(os.getpid(), signal.SIGTERM)
    for _ in range(1000):
        pass  # the handler runs at one of these steps, the lock held
stop.wait_asked()
assert stop.is_set() and stop.waiter()(0)
print("stopped")
"""


def test_a_stop_signal_landing_while_the_main_thread_holds_the_events_lock_stops_it() -> None:
    """SIGTERM may land while the main thread holds the stop event's own lock (entering its
    wait): the handler only writes the pipe, so the collector stops. ``set`` from the handler
    would wait for that lock for ever; that is shown too, with a time limit."""
    import subprocess
    import sys

    asked = subprocess.run([sys.executable, "-c", STOP_UNDER_ITS_OWN_LOCK.format(how="ask")],
                           capture_output=True, text=True, timeout=30)
    assert (asked.returncode, asked.stdout) == (0, "stopped\n"), asked.stderr
    with pytest.raises(subprocess.TimeoutExpired):
        subprocess.run([sys.executable, "-c", STOP_UNDER_ITS_OWN_LOCK.format(how="set")],
                       capture_output=True, timeout=3)

"""APScheduler wiring: poll every ``collector.interval``, commit every ``collector.save_interval``.

Committing less often than polling spares the SD card and loses nothing: the tracker state goes to
disk in the same transaction as the deltas it produced, so after a crash the next reading is
measured from the last committed state and the uncommitted bytes are counted then, once.
"""

import logging
import signal
import threading
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler

from collector.sources import Source, make_source
from traffic.config import Config, mask_secrets
from traffic.counters import CounterState, Delta, Tracker
from traffic.periods import FIVE_MIN_MS, now_ms
from traffic.runtime import (
    REALTIME_WINDOW_MS,
    check_runtime_dir,
    realtime_path,
    write_atomically,
)
from traffic.store import Store

log = logging.getLogger(__name__)

PRUNE_EVERY_S = 86_400
"""Retention is counted in days; pruning more often would only add writes."""


class Collector:
    """Polls the sources into a tracker and saves the pending deltas to the store."""

    def __init__(self, config: Config, store: Store, clock: Callable[[], int] = now_ms) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.sources: list[Source] = [make_source(source, clock) for source in config.sources]
        self.tracker = Tracker(config.collector.max_rate, store.tracker_state())
        self.pending: list[Delta] = []
        self.rates: deque[list[float]] = deque()
        self.read_at: int | None = None
        """When a poll last read a counter: polls that find no interface do not count."""
        self._saved = self._counters_of(self.tracker.state)
        self.realtime_path = realtime_path(config)
        self._tracker_lock = threading.Lock()
        self.store_lock = threading.Lock()

    def poll(self) -> list[Delta]:
        readings = [reading for source in self.sources for reading in source.poll()]
        with self._tracker_lock:
            deltas = [delta for reading in readings
                      if (delta := self.tracker.update(reading)) is not None]
            self.pending.extend(deltas)
            starts = (self.tracker.state.keys() - self._saved.keys()
                      or any(reading.resumed for reading in readings))
        self._publish_rates(deltas, bool(readings))
        if starts:
            self.save()
        return deltas

    def save(self) -> int:
        """Commit pending deltas with the tracker state they came from; returns bytes added.

        ``poll`` calls it at once when a key is first seen or resumed: until that starting
        reading is stored, a restart would count from the wrong one (losing the bytes since
        a first reading, or counting those of the time a resumed key was not the link).
        On an idle link nothing is written: while no counter moved, the saved state is as good
        as the new one (only its time is older, which makes the next rate check more lenient).
        """
        with self.store_lock:
            with self._tracker_lock:
                pending, self.pending = self.pending, []
                state = dict(self.tracker.state)
            counters = self._counters_of(state)
            if not pending and counters == self._saved:
                return 0
            try:
                added = self.store.add(merge_within_buckets(pending), state)
            except Exception:
                with self._tracker_lock:
                    self.pending[:0] = pending
                raise
            self._saved = counters
            return added

    @staticmethod
    def _counters_of(state: dict[str, CounterState]) -> dict[str, tuple[str, int, int]]:
        return {key: (s.life, s.rx, s.tx) for key, s in state.items()}

    def prune(self) -> None:
        with self.store_lock:
            removed = self.store.prune(self.clock())
        if removed:
            log.info("retention removed %d old rows", removed)

    def _publish_rates(self, deltas: list[Delta], read: bool) -> None:
        """Download and upload bytes/s of this poll, summed over the keys, for the realtime view."""
        at = self.clock()
        if read:
            self.read_at = at
        rx = sum(d.rx * 1000 / max(d.end - d.start, 1) for d in deltas)
        tx = sum(d.tx * 1000 / max(d.end - d.start, 1) for d in deltas)
        self.rates.append([at, round(rx, 1), round(tx, 1)])
        while self.rates[0][0] < at - REALTIME_WINDOW_MS:
            self.rates.popleft()
        write_atomically(self.realtime_path, {
            "site": self.config.site, "interval_s": self.config.collector.interval,
            "updated": at, "read_at": self.read_at, "points": list(self.rates)})


def merge_within_buckets(deltas: list[Delta]) -> list[Delta]:
    """Adjacent deltas of a key inside one 5-minute bucket, as one.

    A save then adds one or two rows per key instead of one per poll: fewer pages written, and
    every bucket still gets exactly its own bytes.
    """
    merged: list[Delta] = []
    last: dict[str, int] = {}
    for delta in deltas:
        index = last.get(delta.key)
        previous = merged[index] if index is not None else None
        if (previous is not None and previous.end == delta.start
                and previous.start // FIVE_MIN_MS == (delta.end - 1) // FIVE_MIN_MS):
            merged[index] = Delta(delta.key, previous.start, delta.end, previous.rx + delta.rx,
                                  previous.tx + delta.tx)
        else:
            last[delta.key] = len(merged)
            merged.append(delta)
    return merged


def run(config: Config, store: Store, once: bool = False) -> int:
    """Collect until SIGTERM or SIGINT, then poll once more, commit and return 0."""
    check_runtime_dir(config)
    store.claim_writer()
    collector = Collector(config, store)
    if once:
        collector.poll()
        collector.save()
        return 0
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    scheduler = BackgroundScheduler(job_defaults={"coalesce": True, "max_instances": 1,
                                                  "misfire_grace_time": None})
    scheduler.add_job(_logged(collector.poll), "interval", seconds=config.collector.interval,
                      id="poll")
    scheduler.add_job(_logged(collector.save), "interval",
                      seconds=config.collector.save_interval, id="save")
    scheduler.add_job(_logged(collector.prune), "interval", seconds=PRUNE_EVERY_S, id="prune")
    keeper = None
    if config.keeper.enabled:
        from collector.keeper import Keeper

        keeper = Keeper(config, store, collector.store_lock, collector.clock)
        scheduler.add_job(_logged(keeper.check), "interval", seconds=config.keeper.check_every,
                          id="keeper", next_run_time=datetime.now(UTC), max_instances=2)
    collector.poll()
    collector.prune()
    scheduler.start()
    log.info("collecting every %gs, saving every %gs to %s", config.collector.interval,
             config.collector.save_interval, mask_secrets(config.store.url))
    stop.wait()
    if keeper is not None:
        keeper.stop()  # a hung connect must not outlast supervisor's stopwaitsecs
    scheduler.shutdown(wait=True)
    collector.poll()
    collector.save()
    log.info("stopped; everything counted is saved")
    return 0


def _logged(job: Callable[[], object]) -> Callable[[], None]:
    """A job that logs its failure in one line and lets the next run try again."""
    def run_job() -> None:
        try:
            job()
        except Exception as error:  # one bad cycle must not stop collecting
            log.error("%s failed: %s", job.__name__, error)
    run_job.__name__ = job.__name__
    return run_job

"""What readers show: the store's counts plus the bytes the running collector counted but has
not saved yet.

The collector saves every ``collector.save_interval`` (10 minutes by default, to spare the SD
card) and publishes its unsaved deltas after every poll. ``with_unsaved`` wraps a store so that
``status``, ``report``, the API, the pages and ``/metrics`` all add them the same way: a reader
never lags the link by a save interval.
"""

from collections.abc import Iterable
from zoneinfo import ZoneInfo

from traffic.config import Config
from traffic.counters import Delta
from traffic.hints import Any
from traffic.periods import bucket_start, next_bucket
from traffic.published import read_realtime, unsaved_deltas
from traffic.quota import added
from traffic.store import Store


def with_unsaved(store: Store, config: Config, now: int) -> "WithUnsaved":
    """``store`` as readers see it: with the running collector's unsaved deltas added."""
    return WithUnsaved(store, now, config.timezone)


class WithUnsaved:
    """A store whose totals, series, keys and first bucket include the unsaved deltas of the
    collector's realtime document, and whose status documents are read once (a command or a
    request reads the realtime document for its unsaved deltas, its sources and its latest
    reading, and each must see the same one); every other call goes to the store itself.

    A delta whose start is before the saved reading of its key was saved meanwhile (the
    document was published before the save), so it is left out: a save between the
    collector's publication and this read never counts a byte twice.
    """

    def __init__(self, store: Store, now: int, tz: ZoneInfo) -> None:
        self.store = store
        self.tz = tz
        self._documents: dict[str, Any] = {}
        unsaved = unsaved_deltas(read_realtime(self), now)  # type: ignore[arg-type]
        saved = store.tracker_state() if unsaved else {}
        self.unsaved = [delta for delta in unsaved
                        if delta.key not in saved or delta.start >= saved[delta.key].at]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def published(self, name: str) -> Any:
        if name not in self._documents:
            self._documents[name] = self.store.published(name)
        return self._documents[name]

    def _of(self, keys: Iterable[str] | None) -> list[Delta]:
        if keys is None:
            return self.unsaved
        wanted = set(keys)
        return [delta for delta in self.unsaved if delta.key in wanted]

    def totals(self, start: int, end: int, keys: Iterable[str] | None = None
               ) -> tuple[int, int]:
        keys = None if keys is None else list(keys)
        return added(self.store.totals(start, end, keys), self._of(keys), start, end)

    def series(self, resolution: str, start: int, end: int,
               keys: Iterable[str] | None = None) -> list[tuple[int, int, int]]:
        keys = None if keys is None else list(keys)
        points = {bucket: (rx, tx) for bucket, rx, tx in
                  self.store.series(resolution, start, end, keys)}
        for delta in self._of(keys):
            bucket = bucket_start(resolution, delta.start, self.tz)
            while bucket < max(delta.end, delta.start + 1):
                following = next_bucket(resolution, bucket, self.tz)
                if start <= bucket < end:
                    rx, tx = added(points.get(bucket, (0, 0)), [delta], bucket, following)
                    points[bucket] = (rx, tx)
                bucket = following
        return sorted((bucket, rx, tx) for bucket, (rx, tx) in points.items())

    def known_keys(self) -> list[str]:
        return sorted({*self.store.known_keys(), *(delta.key for delta in self.unsaved)})

    def first_bucket(self, resolution: str) -> int | None:
        starts = [bucket_start(resolution, delta.start, self.tz) for delta in self.unsaved
                  if delta.rx or delta.tx]
        stored = self.store.first_bucket(resolution)
        return min([*starts, *([] if stored is None else [stored])], default=None)

"""Usage against the limits: percent used, estimate at period end, today's use."""

import math
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from traffic.config import Config
from traffic.counters import Delta
from traffic.hints import Any
from traffic.periods import billing_period, bucket_start, day_bounds, from_ms
from traffic.published import last_reading, read_realtime, read_sources
from traffic.record import Record, field
from traffic.roles import beside_keys, billed_of, typed_keys
from traffic.store import Store

PERIOD_RESET_META = "period_reset_at"


class Beside(Record):
    """Another count of the same link over the same period, shown beside the bill."""

    source: str
    label: str
    what: str
    """``counter``: the source's counters in the store; ``router month``: the router's own
    month statistics (its month may start on another day than the billing period)."""
    rx: int
    tx: int
    difference: int
    """This count's total minus the billed total."""

    @property
    def total(self) -> int:
        return self.rx + self.tx


class Usage(Record):
    period_start: int
    period_end: int
    rx: int
    tx: int
    limit: int
    """Bytes allowed in the period; 0 means no limit."""
    estimate: int
    """Bytes expected by the period's end at the pace so far."""
    today_rx: int
    today_tx: int
    daily_limit: int
    last_sample_at: int | None
    now: int
    counted_since: int
    """The period's start, or when counting began if that was later (a new install)."""
    beside: tuple[Beside, ...] = field(default=())
    calendar_days: int = 0
    """Local calendar days from today to the period's last day, both counted (0: not known,
    then worked out from the hours left)."""

    @property
    def total(self) -> int:
        return self.rx + self.tx

    @property
    def today(self) -> int:
        return self.today_rx + self.today_tx

    @property
    def percent(self) -> float | None:
        return round(100 * self.total / self.limit, 1) if self.limit else None

    @property
    def left(self) -> int | None:
        return max(self.limit - self.total, 0) if self.limit else None

    @property
    def days_left(self) -> float:
        return max(self.period_end - self.now, 0) / 86_400_000

    @property
    def calendar_days_left(self) -> int:
        """Days left counting today, as a person counts them: by the calendar, so a day of 23
        or 25 hours (clocks changing) is one day."""
        return self.calendar_days or max(math.ceil(self.days_left), 1)

    @property
    def daily_budget(self) -> int | None:
        """Bytes a day, today included, that keep the rest of the period inside the limit."""
        if not self.limit:
            return None
        return (self.left or 0) // self.calendar_days_left

    @property
    def sample_age_s(self) -> float | None:
        return None if self.last_sample_at is None else (self.now - self.last_sample_at) / 1000

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        fields = asdict(self)
        fields["beside"] = [{**asdict(item), "total": item.total} for item in self.beside]
        fields.update(total=self.total, today=self.today, percent=self.percent, left=self.left,
                      days_left=round(self.days_left, 2), daily_budget=self.daily_budget,
                      sample_age_s=self.sample_age_s)
        return fields


def current_period(store: Store, config: Config, now: int) -> tuple[int, int]:
    """The billing period holding ``now``, started later by ``traffic reset-month``.

    A reset starts the period at the start of its 5 minutes: the 5-minute totals outlive any
    billing period, while the raw intervals a start inside them would need are pruned after
    ``retention.raw``, and the period's total would then shrink.
    """
    start, end = billing_period(now, config.quota.billing_day, config.timezone)
    reset = store.get_meta(PERIOD_RESET_META)
    if reset is not None and start <= int(reset) <= now:
        start = max(start, bucket_start("5min", int(reset), config.timezone))
    return start, end


def last_sample_at(store: Store, config: Config) -> int | None:
    """The latest reading known: the running collector's, or the last one saved."""
    return max((t for t in (store.last_sample_at(), last_reading(read_realtime(store)))
                if t is not None),
               default=None)


def usage(store: Store, config: Config, now: int, extra: Iterable[Delta] = ()) -> Usage:
    """Use in the current billing period; ``extra``: deltas counted but not saved yet (the
    running collector's), added where they are billed."""
    start, end = current_period(store, config, now)
    extra = list(extra)
    keys = typed_keys(store, config, [delta.key for delta in extra])
    billed = billed_of(keys)
    unsaved = [delta for delta in extra if delta.key in billed]
    rx, tx = added(store.totals(start, end, billed), unsaved, start, end)
    day_start, day_end = day_bounds(now, config.timezone)
    today_rx, today_tx = added(store.totals(day_start, day_end, billed), unsaved, day_start,
                               day_end)
    first = min((at for at in (store.first_bucket("5min"), *(
        bucket_start("5min", delta.start, config.timezone) for delta in extra if delta.rx
        or delta.tx)) if at is not None), default=None)
    counted_since = first if first is not None and first > start else start
    return Usage(
        period_start=start, period_end=end, rx=rx, tx=tx, limit=config.quota.monthly,
        estimate=estimate(rx + tx, counted_since, now, end), today_rx=today_rx,
        today_tx=today_tx, daily_limit=config.quota.daily, now=now,
        last_sample_at=last_sample_at(store, config), counted_since=counted_since,
        beside=beside(store, config, beside_keys(keys), start, end, rx + tx, now),
        calendar_days=calendar_days(now, end, config.timezone))


def calendar_days(now: int, end: int, tz: ZoneInfo) -> int:
    """Local dates from ``now``'s to the one before ``end``, both counted; at least 1."""
    return max((from_ms(end - 1, tz).date() - from_ms(now, tz).date()).days + 1, 1)


def added(totals: tuple[int, int], deltas: Iterable[Delta], start: int,
          end: int) -> tuple[int, int]:
    """``totals`` plus the bytes of ``deltas`` that fall in ``[start, end)``, shared by time
    as the store shares a delta between its buckets."""
    rx, tx = totals
    for delta in deltas:
        span = delta.end - delta.start
        overlap = min(end, delta.end) - max(start, delta.start)
        if span <= 0:
            inside = start <= delta.start < end
            rx, tx = rx + delta.rx * inside, tx + delta.tx * inside
        elif overlap > 0:
            rx += delta.rx * overlap // span
            tx += delta.tx * overlap // span
    return rx, tx


def beside(store: Store, config: Config, unbilled: dict[str, list[str]], start: int,
           end: int, billed_total: int, now: int) -> tuple[Beside, ...]:
    """The other counts of the link in ``[start, end)``: each unbilled source's counters
    (``unbilled``: its keys, by source), and
    each router's own month figures (``month_rx``/``month_tx`` gauges, while they are
    current), with the difference."""
    from traffic.source_state import is_stale

    published = read_sources(config, read_realtime(store))
    names = [source.name for source in config.sources]
    found = []
    for name in [*names, *(name for name in unbilled if name not in names)]:
        shown = published.get(name, {})
        label = shown.get("label") or name
        if unbilled.get(name):
            rx, tx = store.totals(start, end, unbilled[name])
            found.append(Beside(name, label, "counter", rx, tx, rx + tx - billed_total))
        gauges = {} if not shown or is_stale(shown, now) else shown.get("gauges", {})
        month = gauges.get("month_rx"), gauges.get("month_tx")
        if all(isinstance(value, int | float) for value in month):
            rx, tx = int(month[0]), int(month[1])  # type: ignore[arg-type]
            found.append(Beside(name, label, "router month", rx, tx, rx + tx - billed_total))
    return tuple(found)


ESTIMATE_WINDOW_MS = 3_600_000
"""The least time a pace is measured over: minutes after a start say little about a month."""


def estimate(used: int, since: int, now: int, end: int) -> int:
    """Bytes expected by ``end`` if use goes on at its pace since ``since``."""
    if now >= end:
        return used
    return used + used * (end - now) // max(now - since, ESTIMATE_WINDOW_MS)

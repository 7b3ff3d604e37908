"""The collector's wiring: poll each source at its own interval (a thread each), commit every
``collector.save_interval`` and run the slower jobs (saving, pruning, the keeper, alerts) on
APScheduler.

Committing less often than polling spares the SD card and loses nothing: the tracker state goes to
disk in the same transaction as the deltas it produced, so after a crash the next reading is
measured from the last committed state and the uncommitted bytes are counted then, once.

Like a Telegraf input's ``AddError``, a source that fails is skipped for that cycle while the
others keep counting: its outage is logged once and recorded as a ``source_down`` event, its
return as ``source_up``.
"""

import logging
import os
import select
import signal
import threading
import time
from array import array
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler

from collector.sources import (
    LoginRefused,
    Source,
    forget_refused,
    label,
    make_source,
    mark_refused,
    poll_interval,
    refused_devices,
    refused_in_store,
)
from collector.spool import Spool, check_state_dir, entry_of, newer_state, spool_path, uses_spool
from traffic.config import Config, SourceConfig, mask_known, mask_secrets, mask_text, secret_values
from traffic.counters import CounterState, Delta, Tracker
from traffic.periods import FIVE_MIN_MS, now_ms
from traffic.published import REALTIME, REALTIME_WINDOW_MS, SAVE, pack_points
from traffic.roles import key_of
from traffic.runtime import check_runtime_dir
from traffic.sites import publish_settings
from traffic.store import Event, GaugeSample, Key, Store, StoreError

log = logging.getLogger(__name__)

PRUNE_EVERY_S = 86_400
"""Retention is counted in days; pruning more often would only add writes."""
STORE_RETRY_S = 60
"""While saves to a server fail, how often it is tried (besides every save)."""


class SourceWatch:
    """What the collector knows of one source between polls: is it answering, its latest
    gauges. Published for the readers after each of its polls."""

    def __init__(self, source: Source, config: SourceConfig, secrets: list[str],
                 interval_s: float) -> None:
        self.source = source
        self.config = config
        self.secrets = secrets
        self.interval_s = interval_s
        self.failing_since: int | None = None
        self.error = ""
        self.read_at: int | None = None
        self.gauges: dict[str, float | str] = {}
        self.refused = False
        """Its login was refused: it is not polled again until its settings change."""

    def failed(self, at: int, error: Exception) -> Event | None:
        """The ``source_down`` event of the first failure in a row; later ones are quiet."""
        self.error = mask_known(str(error) or type(error).__name__, self.secrets)
        if isinstance(error, LoginRefused):
            self.refused = True
            log.error("source %s (%s): %s; no more logins until its settings change",
                      self.config.name, label(self.config), self.error)
        if self.failing_since is not None:
            return None
        self.failing_since = at
        log.warning("source %s (%s) not answering: %s; the others keep counting",
                    self.config.name, label(self.config), self.error)
        return Event(at, "source_down", self._detail(error=self.error))

    def answered(self, at: int) -> Event | None:
        """The ``source_up`` event when a failing source answers again."""
        self.read_at = at
        if self.failing_since is None:
            return None
        since, self.failing_since, self.error = self.failing_since, None, ""
        log.info("source %s (%s) is back", self.config.name, label(self.config))
        return Event(at, "source_up", self._detail(), duration_ms=at - since)

    def _detail(self, **more: str) -> dict[str, str]:
        return {"source": self.config.name, "type": self.config.type,
                "label": label(self.config), **more}

    def document(self) -> dict:
        return {"type": self.config.type, "label": label(self.config),
                "billed": self.config.billed, "read_at": self.read_at,
                "failing_since": self.failing_since, "error": self.error,
                "refused": self.refused, "gauges": dict(self.gauges),
                "interval_s": self.interval_s}


class Collector:
    """Polls the sources into a tracker and saves the pending deltas to the store."""

    def __init__(self, config: Config, store: Store, clock: Callable[[], int] = now_ms) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        secrets = secret_values(config.effective)
        self.watches = [SourceWatch(make_source(source, clock), source, secrets,
                                    poll_interval(source, config))
                        for source in config.sources]
        self.sources: list[Source] = [watch.source for watch in self.watches]
        self.spool = Spool(spool_path(config)) if uses_spool(config) else None
        """Where saves go while the store's server cannot be reached (``collector.spool``)."""
        self._typed: dict[str, Key] = {}
        """Each key's type as the store has it."""
        self._retyped: list[Key] = []
        """The store's keys typed by this config (a source left it, or became billed), to
        be written with the next save."""
        stored = self._read_store()
        self.tracker = Tracker(config.collector.max_rate,
                               newer_state(stored, self.spool.state) if self.spool else stored)
        self.pending = BucketMerger()
        """Deltas not saved yet, adjacent ones of a key inside one 5-minute bucket merged."""
        self.pending_gauges: list[GaugeSample] = []
        self.pending_events: list[Event] = []
        """Events the store could not take when they happened, for the next save."""
        self.rates = array("d")
        """The realtime points of the last minutes, flat: time, download and upload bytes/s
        of each (published packed, see ``traffic.published.pack_points``)."""
        self.read_at: int | None = None
        """When a poll last read a billed counter: polls that find none do not count."""
        self._saved = self._counters_of(self.tracker.state)
        self._tracker_lock = threading.Lock()
        self._publish_lock = threading.Lock()
        self._alert_margin: int | None = None
        """Billed bytes that call for an alert check (``alerts.bytes_to_next_alert``)."""
        self._billed_since_snapshot = 0
        self.alerts_due: Callable[[], None] = lambda: None
        """Called from a poll when the billed bytes since the last check reach the margin."""
        self.save_state: dict = {"saved_at": None, "failing_since": None, "error": ""}

    def _read_store(self) -> dict[str, CounterState]:
        """The store's tracker state, having read what else the collector takes from it at
        start: the sources whose login was refused, the keys' types. When the store cannot be
        read but the spool has entries to count on from (a restart while the server is away),
        {}: the types are read once it answers."""
        try:
            for watch in self.watches:
                if hasattr(watch.source, "refused_before"):
                    watch.source.refused_before = refused_devices(self.store, watch.config)
                if refused_in_store(self.store, watch.config):
                    watch.refused, watch.failing_since = True, self.clock()
                    watch.error = "the login was refused before; fix the settings to try again"
                    if hasattr(watch.source, "refuse"):
                        watch.source.refuse(watch.error)
                    log.error("source %s (%s): its login was refused with these settings; it "
                              "is not polled until they change", watch.config.name,
                              label(watch.config))
            state = self.store.tracker_state()
            self._read_types()
        except StoreError as error:
            if self.spool is None or not self.spool.entries:
                raise
            log.warning("%s; counting on from the newest of the %d entries in the spool %s",
                        error, self.spool.entries, self.spool.path)
            self._types_read = False
            return {}
        return state

    def _read_types(self) -> None:
        self._typed = {key.key: key for key in self.store.key_types()}
        counted = set(self.store.known_keys())
        self._retyped = [key_of(key, self.config, key in counted)
                         for key in counted | {key for key, _ in self.store.gauge_names()}]
        self._types_read = True

    def poll(self) -> list[Delta]:
        """Poll every source once (the first and the last poll of a run, ``collect --once``)."""
        return [delta for index in range(len(self.watches)) for delta in self.poll_source(index)]

    def _refusal_lifted(self, watch: SourceWatch) -> bool:
        """Whether the device that refused a source's login is gone (a modem whose SIM was
        swapped for another): then it is polled again, and the new one is tried. A source that
        cannot tell stays refused until its settings change."""
        lifted = getattr(watch.source, "refusal_lifted", None)
        if lifted is None or not lifted():
            return False
        watch.refused = False
        log.info("source %s (%s): the device that refused the login is gone; trying again",
                 watch.config.name, label(watch.config))
        try:
            forget_refused(self.store, watch.config)
        except StoreError as error:
            log.warning("source %s: the store could not forget the refused login (%s)",
                        watch.config.name, error)
        return True

    def poll_source(self, index: int) -> list[Delta]:
        watch = self.watches[index]
        if watch.refused and not self._refusal_lifted(watch):
            return []
        try:
            readings = watch.source.poll()
        except Exception as error:  # a source's failure must not stop the others
            self._record(watch.failed(self.clock(), error))
            if watch.refused:
                mark_refused(self.store, watch.config, getattr(watch.source, "refused_device", ""))
            self.publish()
            return []
        self._record(watch.answered(self.clock()))
        max_rate = watch.config.max_rate
        with self._tracker_lock:
            deltas = [delta for reading in readings if reading.counters
                      and (delta := self.tracker.update(
                          replace(reading, max_rate=max_rate) if max_rate else reading))]
            for delta in deltas:
                self.pending.add(delta)
            due = False
            if watch.config.billed and self._alert_margin is not None and deltas:
                self._billed_since_snapshot += sum(delta.rx + delta.tx for delta in deltas)
                due = self._billed_since_snapshot >= self._alert_margin
                if due:
                    self._alert_margin = None
            watch.gauges = {}  # what this poll did not read is not known any more
            for reading in readings:
                watch.gauges.update(reading.gauges)
                self.pending_gauges.extend(GaugeSample(reading.key, name, reading.at, value)
                                           for name, value in reading.gauges.items())
            starts = (any(reading.resumed for reading in readings)
                      or any(self._saved.get(reading.key, ("",))[0]
                             != self.tracker.state[reading.key].life
                             for reading in readings if reading.key in self.tracker.state))
        if watch.config.billed:
            self._add_rates(deltas, any(reading.counters for reading in readings))
        if due:
            self.alerts_due()
        if starts:
            self.save(wait_for_store=False)
        else:
            self.publish()
        return deltas

    def _record(self, event: Event | None) -> None:
        """Store ``event``; while saves fail (or when this fails), keep it for the next save
        rather than make a poll wait for the store."""
        if event is None:
            return
        if self.save_state["failing_since"] is None:
            try:
                self.store.add_events([event])
                return
            except StoreError:
                pass
        with self._tracker_lock:
            self.pending_events.append(event)

    def unsaved(self) -> tuple[list[Delta], dict[str, dict]]:
        """The deltas not saved yet and each source's latest state, taken at once: the alert
        rules add these bytes to the store's, as readers see them."""
        with self._tracker_lock:
            return self._unsaved()

    def _unsaved(self) -> tuple[list[Delta], dict[str, dict]]:
        return list(self.pending.deltas), {watch.config.name: watch.document()
                                           for watch in self.watches}

    def alert_snapshot(self) -> tuple[list[Delta], dict[str, dict]]:
        """``unsaved()`` for an alert check, from which the billed bytes are counted anew."""
        with self._tracker_lock:
            self._billed_since_snapshot = 0
            return self._unsaved()

    def watch_billed_bytes(self, margin: int | None) -> None:
        """Call ``alerts_due`` once ``margin`` billed bytes were counted since the last
        ``alert_snapshot`` (None: never)."""
        with self._tracker_lock:
            self._alert_margin = margin
            due = margin is not None and self._billed_since_snapshot >= margin
            if due:
                self._alert_margin = None
        if due:
            self.alerts_due()

    def close(self) -> None:
        """Close every source (a router's session is logged out), each whatever the others do."""
        for watch in self.watches:
            try:
                watch.source.close()
            except Exception as error:
                log.warning("source %s: closing failed: %s", watch.config.name,
                            mask_known(str(error), watch.secrets))

    def save(self, wait_for_store: bool = True) -> int:
        """Commit pending deltas with the tracker state they came from; returns bytes added.

        ``poll`` calls it at once when a key is first seen or resumed: until that starting
        reading is stored, a restart would count from the wrong one (losing the bytes since
        a first reading, or counting those of the time a resumed key was not the link).
        On an idle link nothing is written: while no counter moved, the saved state is as good
        as the new one (only its time is older, which makes the next rate check more lenient).

        A save that fails logs the reason once and publishes it (the ``save`` document) for
        ``status`` and the pages. With a store on a server, what it would have saved goes to the
        spool (``collector.spool``), added to the store before anything else once the server
        answers; with SQLite it stays in memory for the next save. While saves fail, a save
        called from a poll (``wait_for_store=False``) goes to the spool without trying the
        server: a poll does not wait for one that does not answer.
        """
        with self.store.consistent():
            with self._tracker_lock:
                pending, self.pending = self.pending.deltas, BucketMerger()
                gauges, self.pending_gauges = self.pending_gauges, []
                events, self.pending_events = self.pending_events, []
                state = dict(self.tracker.state)
                at = self.clock()
            counters = self._counters_of(state)
            types = self._types_to_save(state, gauges)
            new = bool(pending or gauges or events or types) or counters != self._saved
            if not new and not (self.spool is not None and self.spool.entries):
                return 0
            if (self.spool is not None and not wait_for_store
                    and self.save_state["failing_since"] is not None):
                error = self.save_state["error"] or "the store does not answer"
            else:
                try:
                    added = self._replay() + self._commit(pending, state, gauges, types)
                    error = ""
                except (StoreError, OSError) as failure:  # OSError: the spool's file
                    error = str(failure)
            if error:
                if new:  # an idle link adds nothing to the spool
                    self._keep(at, pending, state, gauges, types, events, counters)
                self._save_failed(error, sum(d.rx + d.tx for d in pending))
                return 0
            self._saved = counters
            self._typed.update((key.key, key) for key in types)
            self._retyped = []
            self._store_events(events)
            self._save_succeeded()
        self.publish()
        return added

    def _replay(self) -> int:
        """Add the spool's entries to the store (they come before what is pending)."""
        if self.spool is None or not self.spool.entries:
            return 0
        entries = self.spool.entries
        added = self.spool.replay(self.store)
        log.info("the spool's %d entries are in the store (%d bytes added)", entries, added)
        if not self._types_read:
            self._read_types()
        return added

    def _keep(self, at: int, deltas: list[Delta], state: dict[str, CounterState],
              gauges: list[GaugeSample], types: list[Key], events: list[Event],
              counters: dict[str, tuple[str, int, int, int]]) -> None:
        """What a failed save could not store: appended to the spool, or (without one, or when
        it cannot be written) back in memory for the next save."""
        if self.spool is not None:
            try:
                self.spool.append(entry_of(at, deltas, state, gauges, types, events))
                self._saved = counters  # the spool reaches the store whole and in order
                self._typed.update((key.key, key) for key in types)
                self._retyped = []
                return
            except OSError as error:
                log.error("spool %s: cannot append (%s); keeping what is counted in memory",
                          self.spool.path, error.strerror or error)
        with self._tracker_lock:
            self.pending = BucketMerger([*deltas, *self.pending.deltas])
            self.pending_gauges[:0] = gauges
            self.pending_events[:0] = events

    def _store_events(self, events: list[Event]) -> None:
        if not events:
            return
        try:
            self.store.add_events(events)
        except StoreError:
            with self._tracker_lock:
                self.pending_events[:0] = events

    def retry_store(self) -> None:
        """While saves to a server fail, try it every ``STORE_RETRY_S`` (the spool first), so
        that what waits in the spool is in the store soon after the server is back."""
        if self.spool is None or self.save_state["failing_since"] is None:
            return
        with self.store.consistent():
            try:
                self._replay()
            except StoreError:
                return
        self.save()

    def _types_to_save(self, state: dict[str, CounterState],
                       gauges: list[GaugeSample]) -> list[Key]:
        """The types of the keys this save writes, and of those the config retyped, where the
        store does not have them yet (most saves write none)."""
        keys = [*self._retyped, *(key_of(key, self.config) for key in state),
                *(key_of(sample.key, self.config, sample.key in state) for sample in gauges)]
        due = {key.key: key for key in keys if self._typed.get(key.key) != key}
        return list(due.values())

    def _commit(self, deltas: list[Delta], state: dict[str, CounterState],
                gauges: list[GaugeSample], types: list[Key]) -> int:
        """Add to the store; when its file is no longer the one opened (deleted, renamed over),
        add the same to the file now at its path, a new store if there is none."""
        added = 0
        try:
            added = self.store.add(deltas, state, gauges, types)
        except StoreError:
            if not self.store.replaced():
                raise
        what = self.store.replaced()
        if not what:
            return added
        size = sum(d.rx + d.tx for d in deltas)
        log.error("store %s while collecting: reopening it (a new empty store if none is "
                  "there) with the %d bytes not saved yet and the counters' latest readings "
                  "as its start; what the old file held is not in it", what, size)
        self.store.reopen()
        return self.store.add(deltas, state, gauges, list(self._typed.values()) + types)

    def _save_failed(self, reason: str, size: int) -> None:
        at = self.clock()
        if self.spool is not None:
            if self.save_state["failing_since"] is None:  # the outage, once
                log.error("%s; counting on into the spool %s until the store answers (tried "
                          "every %gs)", reason, self.spool.path, STORE_RETRY_S)
        elif reason != self.save_state["error"]:
            log.error("%s; keeping %d bytes counted in memory and trying again every %gs",
                      reason, size, self.config.collector.save_interval)
        if self.save_state["failing_since"] is None:
            self.save_state["failing_since"] = at
        self.save_state["error"] = reason
        self._publish_save()

    def _save_succeeded(self) -> None:
        if self.save_state["failing_since"] is not None:
            log.info("saving again: everything counted since %s is saved",
                     _clock(self.save_state["failing_since"]))
        self.save_state.update(saved_at=self.clock(), failing_since=None, error="")
        self._publish_save()

    def unsaved_bytes(self) -> int:
        with self._tracker_lock:
            return sum(d.rx + d.tx for d in self.pending.deltas)

    def _publish_save(self) -> None:
        document = {**self.save_state, **(self.spool.document() if self.spool else {})}
        with self._publish_lock:
            self.store.publish(SAVE, document)

    @staticmethod
    def _counters_of(state: dict[str, CounterState]) -> dict[str, tuple[str, int, int, int]]:
        return {key: (s.life, s.rx, s.tx, s.held) for key, s in state.items()}

    def prune(self) -> None:
        removed = self.store.prune(self.clock())
        if removed:
            log.info("retention removed %d old rows", removed)

    def _add_rates(self, deltas: list[Delta], read: bool) -> None:
        """Download and upload bytes/s of this poll, summed over the keys, for the realtime view."""
        rx = sum(d.rx * 1000 / max(d.end - d.start, 1) for d in deltas)
        tx = sum(d.tx * 1000 / max(d.end - d.start, 1) for d in deltas)
        with self._publish_lock:
            at = self.clock()
            if read:
                self.read_at = at
            rates = self.rates
            rates.extend((at, round(rx, 1), round(tx, 1)))
            oldest = at - REALTIME_WINDOW_MS
            drop = 0
            while rates[drop] < oldest:
                drop += 3
            if drop:
                del rates[:drop]

    def publish(self) -> None:
        """Write what readers show beside the store, in one small file on the RAM disk: the
        rates of the last minutes, each source's state and gauges, and the deltas counted
        but not saved yet (readers add those whose start is not before the store's saved
        reading of their key, so a save between two publications counts nothing twice)."""
        with self._tracker_lock:
            sources = {watch.config.name: watch.document() for watch in self.watches}
            unsaved = [[d.key, d.start, d.end, d.rx, d.tx] for d in self.pending.deltas]
        with self._publish_lock:
            self.store.publish(REALTIME, {
                "site": self.config.site, "interval_s": self.config.collector.interval,
                "updated": self.clock(), "read_at": self.read_at, "sources": sources,
                "unsaved": unsaved, "points": pack_points(self.rates)})
        if self.save_state["failing_since"] is not None:
            self._publish_save()  # the store may be back before the next save


class BucketMerger:
    """Deltas in order, each one that continues its key's last inside the same 5-minute
    bucket merged into it.

    A save then adds one or two rows per key instead of one per poll (fewer pages written, and
    every bucket still gets exactly its own bytes), and what the collector publishes after
    every poll stays a few entries per key whatever the save interval.
    """

    def __init__(self, deltas: Iterable[Delta] = ()) -> None:
        self.deltas: list[Delta] = []
        self._last: dict[str, int] = {}
        """Each key's last entry in ``deltas``, which the key's next delta may extend."""
        for delta in deltas:
            self.add(delta)

    def add(self, delta: Delta) -> None:
        index = self._last.get(delta.key)
        if index is not None:
            previous = self.deltas[index]
            if (previous.end == delta.start
                    and previous.start // FIVE_MIN_MS == (delta.end - 1) // FIVE_MIN_MS):
                self.deltas[index] = Delta(delta.key, previous.start, delta.end,
                                           previous.rx + delta.rx, previous.tx + delta.tx)
                return
        self._last[delta.key] = len(self.deltas)
        self.deltas.append(delta)



def run(config: Config, store: Store, once: bool = False) -> int:
    """Collect until SIGTERM or SIGINT, then poll once more, commit and return 0."""
    stop = Stop()
    if not once:  # from the start: a stop asked for while the store opens is not lost
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.ask())
    try:
        return _run(config, store, stop, once)
    finally:
        stop.close()


def _run(config: Config, store: Store, stop: "Stop", once: bool) -> int:
    check_runtime_dir(config)
    if uses_spool(config):
        check_state_dir(config)
    store.claim_writer()
    collector = Collector(config, store)
    from collector.sms import use_devices

    use_devices({watch.config.name: watch.source for watch in collector.watches})
    settings = _logged(lambda: publish_settings(store, config), "publish settings")
    settings()
    if once:
        try:
            collector.poll()
            collector.save()
        finally:
            collector.close()
        return 1 if collector.save_state["failing_since"] is not None else 0
    scheduler = BackgroundScheduler(job_defaults={"coalesce": True, "max_instances": 1,
                                                  "misfire_grace_time": None})
    polls = [Every(poll_interval(source, config), _logged(
        lambda index=index: collector.poll_source(index), f"poll {source.name}"), stop)
        for index, source in enumerate(config.sources)]
    scheduler.add_job(_logged(collector.save), "interval",
                      seconds=config.collector.save_interval, id="save")
    scheduler.add_job(_logged(collector.prune), "interval", seconds=PRUNE_EVERY_S, id="prune")
    scheduler.add_job(settings, "interval", seconds=config.collector.save_interval,
                      id="settings")  # again should they vanish (a wiped RAM disk)
    if collector.spool is not None:
        scheduler.add_job(_logged(collector.retry_store, "retry the store"), "interval",
                          seconds=STORE_RETRY_S, id="retry")
    from collector.alerts import AlertChecker, AlertLoop
    from collector.notify import DELIVER_EVERY_S, DELIVER_IDLE_S, Deliverer

    deliverers: list[Deliverer] = []
    deliver_lock = threading.Lock()
    wakes = [0]
    """Wake-ups asked while a run was under way: that run must not put the next one off."""

    def start_deliverer() -> None:
        """The deliverer gives the store the URLs' fingerprints and recovers the sends cut
        short: at start, or once the store answers when it started from the spool."""
        deliverer = Deliverer(config, store, collector.clock)
        deliverer.recover()
        deliverers.append(deliverer)

    def deliver() -> None:
        """Send what is due, then sleep until something may be (``Deliverer.next_run_at``);
        an alert raised meanwhile wakes it, and a failure leaves it at ``DELIVER_EVERY_S``."""
        with deliver_lock:
            woken = wakes[0]
        if not deliverers:
            start_deliverer()
        handled = deliverers[0].run_due()
        next_at = deliverers[0].next_run_at()
        if next_at is None:
            wait_s: float = DELIVER_IDLE_S
        elif handled:
            wait_s = 1.0  # what the run left (another URL's turn) goes on at once
        else:
            wait_s = min(max((next_at - collector.clock()) / 1000, 1.0), DELIVER_IDLE_S)
        with deliver_lock:
            if wakes[0] == woken and not stop.is_set():  # else the wake's "now" stands
                scheduler.modify_job("deliver", next_run_time=datetime.now(UTC)
                                     + timedelta(seconds=wait_s))

    def wake_deliverer() -> None:
        with deliver_lock:
            wakes[0] += 1
            scheduler.modify_job("deliver", next_run_time=datetime.now(UTC))

    alerts = AlertLoop(AlertChecker(config, store, collector.clock, collector.alert_snapshot),
                       collector.watch_billed_bytes, wake_deliverer, stop)
    collector.alerts_due = alerts.wake
    keeper = None
    if config.keeper.enabled:
        from collector.keeper import Keeper

        keeper = Keeper(config, store, collector.clock,
                        sources=collector.sources, unsaved=lambda: collector.unsaved()[0],
                        before_action=collector.save, link_changed=alerts.wake)
        scheduler.add_job(_logged(keeper.check), "interval", seconds=config.keeper.check_every,
                          id="keeper", next_run_time=datetime.now(UTC), max_instances=2)
    sms = None
    if config.sms.enabled:
        from collector.sms import sms_channel
        from collector.sms_control import SmsControl

        sms = SmsControl(config, store, sms_channel(config, config.sms.via or None),
                         collector.clock, collector.sources, lambda: collector.unsaved()[0],
                         collector.save, wake_deliverer)
        polls.append(Every(config.sms.check_every, _logged(sms.check, "read text messages"),
                           stop))
    try:
        start_deliverer()
    except StoreError as error:
        log.warning("alerts are sent once the store answers: %s", error)
    scheduler.add_job(_logged(deliver, "deliver alerts"), "interval",
                      seconds=DELIVER_EVERY_S, id="deliver", next_run_time=datetime.now(UTC),
                      max_instances=1)
    collector.poll()
    _logged(collector.prune)()
    if sms is not None:
        _logged(sms.start, "end the session left running")()
    scheduler.start()
    alerts.start()
    for loop in polls:
        loop.start()
    log.info("collecting every %gs, saving every %gs to %s", config.collector.interval,
             config.collector.save_interval, mask_secrets(config.store.url))
    stop.wait_asked()
    if sms is not None:  # its session's link is taken down, as after its minutes
        sms.stop(wait_s=config.keeper.action_timeout)
    if keeper is not None:  # a hung connect must not outlast supervisor's stopwaitsecs
        _logged(keeper.stop, "stopping the keeper")()
    for deliverer in deliverers:
        deliverer.stop()
    alerts.wake()
    for loop in (*polls, alerts):
        loop.join()
    scheduler.shutdown(wait=True)
    collector.poll()
    collector.save()
    collector.close()
    failing_since = collector.save_state["failing_since"]
    if collector.spool is not None and collector.spool.entries:
        log.warning("stopped; %d bytes counted since %s wait in the spool %s for the store",
                    collector.spool.size, _clock(collector.spool.first_at or collector.clock()),
                    collector.spool.path)
        return 0
    if failing_since is not None:
        log.error("stopped: could not save %d bytes counted since %s: %s",
                  collector.unsaved_bytes(), _clock(failing_since), collector.save_state["error"])
        return 1
    log.info("stopped; everything counted is saved")
    return 0


class Stop(threading.Event):
    """The collector's stop, which also makes a pipe readable: the poll loops wait on it with
    one ``poll`` system call, where ``Event.wait`` with a timeout makes a lock and a waiter
    and takes the condition's lock at every wake-up."""

    def __init__(self) -> None:
        super().__init__()
        self._readable, self._writable = os.pipe()

    def set(self) -> None:
        if not self.is_set():
            super().set()
            os.write(self._writable, b"x")

    def ask(self) -> None:
        """The stop from a signal handler: only the pipe is written. ``set`` takes the event's
        lock, which the interrupted main thread may be holding (entering ``wait``), and would
        then wait for itself for ever. The waiters wake on the pipe; ``wait_asked`` sets the
        event."""
        os.write(self._writable, b"x")

    def wait_asked(self) -> None:
        """Wait, in the main thread, until the stop is asked for, then set it."""
        wait = self.waiter()
        while not wait(3600):
            pass
        self.set()

    def waiter(self) -> Callable[[float], bool]:
        """A ``wait(seconds)`` for one thread: True once stopped, else False after ``seconds``."""
        poller = select.poll()
        poller.register(self._readable, select.POLLIN)

        def wait(seconds: float) -> bool:
            return bool(poller.poll(seconds * 1000)) or self.is_set()
        return wait

    def close(self) -> None:
        """Once every waiter has returned."""
        os.close(self._readable)
        os.close(self._writable)


class Every(threading.Thread):
    """Runs ``job`` every ``seconds`` on a thread of its own until ``stop`` is set.

    The counter polls run here rather than as scheduler jobs: a scheduler job costs 0.3 to
    0.4 ms of CPU per run in the scheduler's own bookkeeping and thread hand-over, which at a
    5 s interval is more than the poll itself. A run that overruns its slot is not caught up.
    """

    def __init__(self, seconds: float, job: Callable[[], None], stop: Stop) -> None:
        super().__init__(name=job.__name__, daemon=True)
        self.seconds = seconds
        self.job = job
        self.stop = stop

    def run(self) -> None:
        wait = self.stop.waiter()
        monotonic = time.monotonic
        due = monotonic() + self.seconds
        while not wait(max(due - monotonic(), 0)):
            self.job()
            due += self.seconds
            if due < monotonic():
                due = monotonic() + self.seconds


def _clock(at: int) -> str:
    return datetime.fromtimestamp(at / 1000).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _logged(job: Callable[[], object], name: str = "") -> Callable[[], None]:
    """A job that logs its failure in one line and lets the next run try again. Runs that fail
    on the store, one after the other, are logged once: an outage of the store's server is
    told once, not at every run of every job while it lasts."""
    name = name or job.__name__
    store_failing = False

    def run_job() -> None:
        nonlocal store_failing
        try:
            job()
        except StoreError as error:
            if not store_failing:
                log.error("%s failed: %s", name, mask_text(str(error)))
            store_failing = True
            return
        except Exception as error:  # one bad cycle must not stop collecting
            log.error("%s failed: %s", name, mask_text(str(error)))
        store_failing = False
    run_job.__name__ = name
    return run_job


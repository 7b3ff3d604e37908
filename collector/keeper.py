"""Keeping the link up, UMTSkeeper-style: a state machine on an injectable clock, and its runner.

``Policy.decide`` is pure: given the state, the time, whether the link is up and whether the quota
is spent, it returns the next state, the events to record and at most one action to run. The
runner (``Keeper``) gathers the evidence, runs the action with a timeout and records everything;
it runs in its own thread of the collector, so a hung probe or action never delays counting.

Escalation: attempts use step 0 (``keeper.connect``) until it has failed as often as the next
step's ``after`` says, then that step, and so on. When the last step has failed ``max_fails``
times, the keeper waits ``lock_duration`` (sparing power and the SIM) and starts over.

Settling: the link found up after attempts counts as back (the failures forgotten, a rest ended)
only when it is still up at the next check, so a link that drops again right after each connect
still reaches the rest instead of being dialled at every other check for ever.

One action at a time: a check, ``traffic connect`` and ``traffic disconnect`` each hold the
keeper lock (``<runtime_dir>/<site>.keeper.lock``) while they read, act and write the state.
"""

import contextlib
import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from collector.actions import ActionResult, ActionRunner, disconnect_command, run_action
from collector.probe import LinkEvidence, Prober
from traffic.config import Config, ConfigError, secret_values
from traffic.counters import Delta
from traffic.periods import day_bounds
from traffic.published import KEEPER
from traffic.quota import usage
from traffic.runtime import runtime_dir
from traffic.store import Event, Store, StoreError

log = logging.getLogger(__name__)

STATE_META = "keeper.state"
UNSTORED_EVENTS = 20_000
"""Events kept for a store that does not answer: more than two weeks of a link that is down."""
HELD_DISCONNECTED = "disconnected"
HELD_QUOTA = "quota"


@dataclass(frozen=True)
class KeeperState:
    link: str = "unknown"
    """"up", "down" or "unknown" (not checked yet)."""
    since: int = 0
    step: int = 0
    step_fails: int = 0
    lock_until: int = 0
    held: str = ""
    """Why the keeper leaves the link down: "" (it doesn't), "disconnected" or "quota"."""
    quota_override_until: int = 0
    """`traffic connect` during a quota hold: the quota is not enforced again before this."""
    quota_limit: str = ""
    """The limit of a quota hold: "monthly" or "daily"."""
    attempt_at: int = 0
    """When the attempt of `traffic connect` ended: the keeper judges it no sooner than one
    ``check_every`` later, as it does its own."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | None) -> "KeeperState":
        if not text:
            return cls()
        try:
            return cls(**json.loads(text))
        except (TypeError, ValueError):
            return cls()


@dataclass(frozen=True)
class Decision:
    state: KeeperState
    events: list[Event] = field(default_factory=list)
    action: str | None = None
    """"attempt" (the state's step) or "disconnect"."""



@dataclass(frozen=True)
class Policy:
    steps: Sequence[int]
    """For each step after the first, the failed attempts of the step before that lead to it."""
    max_fails: int
    lock_ms: int
    enforce_quota: bool
    check_ms: int = 0

    def decide(self, state: KeeperState, now: int, up: bool, over_quota: bool = False,
               period_end: int = 0, limit: str = "monthly") -> Decision:
        events: list[Event] = []
        state = self._cap_rest(state, now)
        if (self.enforce_quota and over_quota and not state.held
                and now >= state.quota_override_until):
            state = replace(state, held=HELD_QUOTA, quota_limit=limit, lock_until=period_end,
                            step=0, step_fails=0)
            events.append(Event(now, "quota_lock", {"until": period_end, "limit": limit}))
            return Decision(self._observe(state, now, up, events), events,
                            "disconnect" if up else None)
        if state.held == HELD_QUOTA and (now >= state.lock_until or not self.enforce_quota):
            events.append(Event(now, "unlock", {"reason": self._hold_end(state)}))
            state = replace(state, held="", lock_until=0, quota_limit="")
        state = self._observe(state, now, up, events)
        if state.held:
            return Decision(state, events, "disconnect" if up and state.held == HELD_QUOTA
                            else None)
        if up:
            return Decision(state, events)
        return self._bring_back(state, now, events)

    def _bring_back(self, state: KeeperState, now: int, events: list[Event]) -> Decision:
        """The link is down and nothing holds it: attempt, escalate, rest or wait."""
        if state.attempt_at <= now < state.attempt_at + self.check_ms:
            return Decision(state, events)
        if state.lock_until:
            if now < state.lock_until:
                return Decision(state, events)
            state = replace(state, lock_until=0, step=0, step_fails=0)
            events.append(Event(now, "unlock", {"reason": "lock expired"}))
        last = len(self.steps)
        if state.step == last and state.step_fails >= self.max_fails:
            state = replace(state, lock_until=now + self.lock_ms, step=0, step_fails=0)
            events.append(Event(now, "lock", {"until": state.lock_until,
                                              "after_fails": self.max_fails}))
            return Decision(state, events)
        if state.step < last and state.step_fails >= self.steps[state.step]:
            state = replace(state, step=state.step + 1, step_fails=0)
            events.append(Event(now, "escalation", {"step": state.step}))
        return Decision(replace(state, step_fails=state.step_fails + 1), events, "attempt")

    def _hold_end(self, state: KeeperState) -> str:
        if not self.enforce_quota:
            return "enforce_quota is off"
        return "new day" if state.quota_limit == "daily" else "new billing period"

    def _cap_rest(self, state: KeeperState, now: int) -> KeeperState:
        """A rest never ends later than ``lock_duration`` from now: after the clock went back
        an hour, a 20-second rest must not last an hour longer."""
        if not state.held and state.lock_until > now + self.lock_ms:
            return replace(state, lock_until=now + self.lock_ms)
        return state

    @staticmethod
    def _observe(state: KeeperState, now: int, up: bool, events: list[Event]) -> KeeperState:
        """Record the link going down or coming back, with how long it was the other way (no
        duration at the first check: nothing is known before it). The failures are forgotten,
        and a rest ends, only when the link is still up at the check after it came back."""
        found = "up" if up else "down"
        if state.link != found:
            first = state.link == "unknown"
            events.append(Event(now, found, {"first_check": True} if first else {},
                                None if first else max(0, now - state.since)))
            return replace(state, link=found, since=now)
        resting = bool(state.lock_until and not state.held)
        if up and resting:
            events.append(Event(now, "unlock", {"reason": "link back"}))
        if up and (state.step or state.step_fails or resting):
            return replace(state, step=0, step_fails=0,
                           lock_until=state.lock_until if state.held else 0)
        return state


def policy_for(config: Config) -> Policy:
    keeper = config.keeper
    return Policy(steps=tuple(step.after for step in keeper.escalation),
                  max_fails=keeper.max_fails, lock_ms=int(keeper.lock_duration * 1000),
                  enforce_quota=keeper.enforce_quota,
                  check_ms=int(keeper.check_every * 1000))


class Keeper:
    """Checks the link every ``keeper.check_every`` and acts on the policy's decisions."""

    def __init__(self, config: Config, store: Store,
                 clock: Callable[[], int], prober: Prober | None = None,
                 sources: Sequence[Any] = (),
                 unsaved: Callable[[], Iterable[Delta]] = tuple,
                 before_action: Callable[[], object] = lambda: None,
                 link_changed: Callable[[], object] = lambda: None) -> None:
        """``sources``: the collector's running sources, for a router's evidence and the
        router built-in actions; ``unsaved``: the collector's deltas not saved yet, which the
        quota counts; ``before_action``: saves them before a command may take the link (or
        the box) down; ``link_changed``: called when a check finds the link gone down, back
        up, or held down or let go (the alert rules look at it then)."""
        self.config = config
        self.store = store
        self.clock = clock
        self.policy = policy_for(config)
        self.prober = prober or Prober(config.keeper, config.sources, sources)
        self.commands = [config.keeper.connect, *(step.run for step in config.keeper.escalation)]
        self.secrets = secret_values(config.effective)
        self.runner = ActionRunner(sources, config, store)
        self.unsaved = unsaved
        self.before_action = before_action
        self.link_changed = link_changed
        self._published_link: tuple[str, str] | None = None
        self._since_at: tuple[int, float] | None = None
        """``since`` of the state as this process set it, with the monotonic clock then; None
        until this run's first check."""
        self._checking = threading.Lock()
        self._told_busy = False
        self._decided: KeeperState | None = None
        """The state this process decided last."""
        self._unstored: list[Event] = []
        """Events (and, with ``_state_unstored``, the state) the store did not take: a site
        whose link is down may not reach its store's server, and the keeper must bring the
        link back all the same. They are stored at the first check the store answers."""
        self._state_unstored = False
        self._quota_seen: tuple[bool, int, str] = (False, 0, "")
        self._store_away = False

    def check(self) -> Decision | None:
        """One check, unless the previous one (its action) or ``traffic connect`` or
        ``disconnect`` is still running. The scheduler may start a check while one runs."""
        if not self._checking.acquire(blocking=False):
            if not self._told_busy:
                log.info("the previous check is still running its action: no check until "
                         "it ends")
                self._told_busy = True
            return None
        try:
            self._told_busy = False
            if self.runner.interrupted:
                return None
            with keeper_lock(self.config, wait_s=0) as locked:
                if not locked:
                    log.info("a `traffic connect` or `traffic disconnect` is running: "
                             "no check this time")
                    return None
                return self._check()
        finally:
            self._checking.release()

    def stop(self) -> None:
        """Kill the running action, if any (it is recorded as interrupted), run no more, and
        record a ``stop`` event once a check under way has ended: the keeper's watch ends
        there."""
        self.runner.interrupt()
        with self._checking:
            if self._since_at is None:
                return
            event = Event(self.clock(), "stop", {})
            log.info("link %s: %s", event.kind, json.dumps(event.detail))
            with contextlib.suppress(StoreError):  # the store is away: its events are lost
                self.store.add_events([*self._unstored, event])

    def _check(self) -> Decision:
        now, ticks = self.clock(), time.monotonic()
        saved = self._saved_state()
        state = saved if self._since_at else replace(saved, link="unknown")
        evidence = self.prober.check(now, probe_anyway=state.link != "up")
        over_quota, period_end, limit = self._quota(now)
        decision = self.policy.decide(state, now, evidence.up, over_quota, period_end, limit)
        events = [self._measured(event, evidence, state, ticks) for event in decision.events]
        if decision.state.since != state.since or self._since_at is None:
            self._since_at = (decision.state.since, ticks)
        if state.link == "unknown":
            log.info("link %s at the first check: %s", decision.state.link, evidence.reason)
        if decision.action == "attempt":
            events.append(self._attempt(decision.state.step, now))
        elif decision.action == "disconnect":
            events.append(self._disconnect(now))
        for event in events:
            log.info("link %s: %s", event.kind, json.dumps(event.detail))
        self._store(events, decision.state, saved)
        self._publish(decision.state, evidence, now)
        return decision

    def _saved_state(self) -> KeeperState:
        """The state in the store, or this process's latest when the store does not have it
        (it could not be written, or read: at a start during the outage, a fresh state)."""
        try:
            saved = KeeperState.from_json(self.store.get_meta(STATE_META))
        except StoreError as error:
            self._store_failed(error)
            return self._decided or KeeperState()
        return self._decided if self._state_unstored and self._decided else saved

    def _store(self, events: list[Event], state: KeeperState, saved: KeeperState) -> None:
        events = [*self._unstored, *events]
        self._decided = state
        try:
            with self.store.consistent():
                self.store.add_events(events)
                if state != saved or self._state_unstored:
                    self.store.set_meta(STATE_META, state.to_json())
        except StoreError as error:
            self._unstored = events[-UNSTORED_EVENTS:]
            self._state_unstored = True
            self._store_failed(error)
            return
        self._unstored, self._state_unstored = [], False
        if self._store_away:
            log.info("keeper: the store answers again; the checks' %d events are stored",
                     len(events))
            self._store_away = False

    def _store_failed(self, error: StoreError) -> None:
        if not self._store_away:
            log.warning("keeper: %s; checking the link all the same, its events kept until "
                        "the store answers", error)
            self._store_away = True

    def _measured(self, event: Event, evidence: LinkEvidence, state: KeeperState,
                  ticks: float) -> Event:
        """A down or up event with the evidence, and its duration on the monotonic clock when
        this process saw the previous change: a step of the wall clock does not count."""
        if event.kind not in ("down", "up"):
            return event
        duration = event.duration_ms
        if duration is not None and self._since_at and self._since_at[0] == state.since:
            duration = int((ticks - self._since_at[1]) * 1000)
        return replace(event, detail={**event.detail, "reason": evidence.reason},
                       duration_ms=duration)

    def _attempt(self, step: int, now: int) -> Event:
        self.before_action()
        result = self.runner.run(self.commands[step], self.config.keeper.action_timeout,
                                 self.secrets)
        return attempt_event(now, step, result)

    def _disconnect(self, now: int) -> Event:
        self.before_action()
        return disconnect_event(self.config, now, "quota", self.secrets, self.runner)

    def _quota(self, now: int) -> tuple[bool, int, str]:
        """The quota's verdict; the previous check's while the store cannot be read."""
        try:
            # a save cannot move the unsaved bytes into the store meanwhile
            with self.store.consistent():
                self._quota_seen = quota_spent(self.config, self.store, now, self.unsaved())
        except StoreError as error:
            self._store_failed(error)
        return self._quota_seen

    def _publish(self, state: KeeperState, evidence: LinkEvidence, now: int) -> None:
        self.store.publish(KEEPER, {
            **asdict(state), "checked_at": now, "interface": evidence.interface,
            "evidence": evidence.reason})
        link = (state.link, state.held)
        if link != self._published_link:
            self._published_link = link
            self.link_changed()


def quota_spent(config: Config, store: Store, now: int,
                unsaved: Iterable[Delta] = ()) -> tuple[bool, int, str]:
    """Whether a limit is spent and enforced, when it is renewed (the period's end for
    ``quota.monthly``, tomorrow's local midnight for ``quota.daily``) and which limit it is."""
    if not config.keeper.enforce_quota:
        return False, 0, ""
    current = usage(store, config, now, unsaved)
    if current.limit and current.total >= current.limit:
        return True, current.period_end, "monthly"
    if current.daily_limit and current.today >= current.daily_limit:
        return True, day_bounds(now, config.timezone)[1], "daily"
    return False, 0, ""


def lock_path(config: Config) -> Path:
    return runtime_dir(config) / f"{config.site}.keeper.lock"


@contextlib.contextmanager
def keeper_lock(config: Config, wait_s: float) -> Iterator[bool]:
    """Hold the keeper lock, waiting up to ``wait_s`` for it; yields whether it is held."""
    path = lock_path(config)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
    except OSError as error:
        raise ConfigError(f"collector.runtime_dir: cannot open the keeper lock {path} "
                          f"({error.strerror})") from None
    try:
        yield _flock(descriptor, time.monotonic() + wait_s)
    finally:
        os.close(descriptor)


def _flock(descriptor: int, deadline: float) -> bool:
    while True:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)


def attempt_event(now: int, step: int, result: ActionResult) -> Event:
    return Event(now, "attempt", {"step": step, **result.detail()}, result.duration_ms)


def disconnect_event(config: Config, now: int, by: str, secrets: Sequence[str],
                     runner: ActionRunner | None = None) -> Event:
    try:
        command = disconnect_command(config.keeper)
    except ValueError as error:
        return Event(now, "disconnect", {"by": by, "ok": False, "output": str(error)})
    result = (runner.run if runner else run_action)(command, config.keeper.action_timeout,
                                                    secrets)
    return Event(now, "disconnect", {"by": by, **result.detail()}, result.duration_ms)

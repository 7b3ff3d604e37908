"""Keeping the link up, UMTSkeeper-style: a state machine on an injectable clock, and its runner.

``Policy.decide`` is pure: given the state, the time, whether the link is up and whether the quota
is spent, it returns the next state, the events to record and at most one action to run. The
runner (``Keeper``) gathers the evidence, runs the action with a timeout and records everything;
it runs in its own thread of the collector, so a hung probe or action never delays counting.

Escalation: attempts use step 0 (``keeper.connect``) until it has failed as often as the next
step's ``after`` says, then that step, and so on. When the last step has failed ``max_fails``
times, the keeper waits ``lock_duration`` (sparing power and the SIM) and starts over.
"""

import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace

from collector.actions import ActionResult, disconnect_command, run_action
from collector.probe import LinkEvidence, Prober
from traffic.config import MASK, Config, mask_secrets, secrets_in
from traffic.periods import day_bounds
from traffic.quota import usage
from traffic.runtime import keeper_path, write_atomically
from traffic.store import Event, Store

log = logging.getLogger(__name__)

STATE_META = "keeper.state"
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

    def decide(self, state: KeeperState, now: int, up: bool, over_quota: bool = False,
               period_end: int = 0) -> Decision:
        events: list[Event] = []
        if (self.enforce_quota and over_quota and state.held != HELD_QUOTA
                and now >= state.quota_override_until):
            state = replace(state, held=HELD_QUOTA, lock_until=period_end, step=0, step_fails=0)
            events.append(Event(now, "quota_lock", {"until": period_end}))
            return Decision(self._observe(state, now, up, events), events,
                            "disconnect" if up else None)
        if state.held == HELD_QUOTA and (now >= state.lock_until or not self.enforce_quota):
            state = replace(state, held="", lock_until=0)
            events.append(Event(now, "unlock", {"reason": "new billing period"}))
        state = self._observe(state, now, up, events)
        if state.held:
            return Decision(state, events, "disconnect" if up and state.held == HELD_QUOTA
                            else None)
        if up:
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

    @staticmethod
    def _observe(state: KeeperState, now: int, up: bool, events: list[Event]) -> KeeperState:
        """Record the link going down or coming back, with how long it was the other way."""
        if up and state.link != "up":
            if state.link == "down":
                events.append(Event(now, "up", {}, now - state.since))
            return replace(state, link="up", since=now, step=0, step_fails=0,
                           lock_until=state.lock_until if state.held else 0)
        if not up and state.link != "down":
            if state.link == "up":
                events.append(Event(now, "down", {}, now - state.since))
            return replace(state, link="down", since=now)
        return state


def policy_for(config: Config) -> Policy:
    keeper = config.keeper
    return Policy(steps=tuple(step.after for step in keeper.escalation),
                  max_fails=keeper.max_fails, lock_ms=int(keeper.lock_duration * 1000),
                  enforce_quota=keeper.enforce_quota)


class Keeper:
    """Checks the link every ``keeper.check_every`` and acts on the policy's decisions."""

    def __init__(self, config: Config, store: Store, store_lock: threading.Lock,
                 clock: Callable[[], int], prober: Prober | None = None) -> None:
        self.config = config
        self.store = store
        self.store_lock = store_lock
        self.clock = clock
        self.policy = policy_for(config)
        self.prober = prober or Prober(config.keeper, config.sources)
        self.commands = [config.keeper.connect, *(step.run for step in config.keeper.escalation)]
        self.secrets = secret_values(config.effective)

    def check(self) -> Decision:
        now = self.clock()
        with self.store_lock:
            state = KeeperState.from_json(self.store.get_meta(STATE_META))
        evidence = self.prober.check(now, probe_anyway=state.link != "up")
        over_quota, period_end = self._quota(now) if self.config.keeper.enforce_quota else (
            False, 0)
        decision = self.policy.decide(state, now, evidence.up, over_quota, period_end)
        events = [replace(e, detail={**e.detail, "reason": evidence.reason})
                  if e.kind in ("down", "up") else e for e in decision.events]
        if state.link == "unknown":
            log.info("link %s at the first check: %s", decision.state.link, evidence.reason)
        if decision.action == "attempt":
            events.append(self._attempt(decision.state.step, now))
        elif decision.action == "disconnect":
            events.append(self._disconnect(now))
        for event in events:
            log.info("link %s: %s", event.kind, json.dumps(event.detail))
        with self.store_lock:
            self.store.add_events(events)
            # `traffic connect` or `disconnect` may have changed the state meanwhile: theirs wins
            if (decision.state != state
                    and KeeperState.from_json(self.store.get_meta(STATE_META)) == state):
                self.store.set_meta(STATE_META, decision.state.to_json())
        self._publish(decision.state, evidence, now)
        return decision

    def _attempt(self, step: int, now: int) -> Event:
        result = run_action(self.commands[step], self.config.keeper.action_timeout, self.secrets)
        return attempt_event(now, step, result)

    def _disconnect(self, now: int) -> Event:
        return disconnect_event(self.config, now, "quota", self.secrets)

    def _quota(self, now: int) -> tuple[bool, int]:
        """Whether a limit is spent, and when it is renewed: the period's end for
        ``quota.monthly``, tomorrow's local midnight for ``quota.daily``."""
        with self.store_lock:
            current = usage(self.store, self.config, now)
        if current.limit and current.total >= current.limit:
            return True, current.period_end
        if current.daily_limit and current.today >= current.daily_limit:
            return True, day_bounds(now, self.config.timezone)[1]
        return False, 0

    def _publish(self, state: KeeperState, evidence: LinkEvidence, now: int) -> None:
        write_atomically(keeper_path(self.config), {
            **asdict(state), "checked_at": now, "interface": evidence.interface,
            "evidence": evidence.reason})


def attempt_event(now: int, step: int, result: ActionResult) -> Event:
    return Event(now, "attempt", {"step": step, **result.detail()}, result.duration_ms)


def disconnect_event(config: Config, now: int, by: str, secrets: Sequence[str]) -> Event:
    try:
        command = disconnect_command(config.keeper)
    except ValueError as error:
        return Event(now, "disconnect", {"by": by, "ok": False, "output": str(error)})
    result = run_action(command, config.keeper.action_timeout, secrets)
    return Event(now, "disconnect", {"by": by, **result.detail()}, result.duration_ms)


def secret_values(settings: dict) -> list[str]:
    """Every secret value in the config, to be masked in command output."""
    masked = mask_secrets(settings)
    found: list[str] = []

    def walk(original: object, hidden: object) -> None:
        if isinstance(original, dict) and isinstance(hidden, dict):
            for name in original:
                walk(original[name], hidden[name])
        elif isinstance(original, list) and isinstance(hidden, list):
            for a, b in zip(original, hidden, strict=False):
                walk(a, b)
        elif isinstance(original, str) and original != hidden:
            found.extend([original] if hidden == MASK else secrets_in(original))
    walk(settings, masked)
    return found

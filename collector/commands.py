"""``traffic connect`` and ``traffic disconnect``: the person at the box overrides the keeper.

Both hold the keeper lock while they change the keeper's saved state and run their action, so
the keeper neither checks nor acts meanwhile; the running keeper reads the state at its next
check. The action runs at once, so the answer is printed before the command returns.

SIGINT, SIGHUP and SIGTERM kill the running action's process group at once (it runs in a session
of its own, so the signal does not reach it), and the command records it as interrupted before
it exits with 128 + the signal's number; a signal before the action leaves everything as it was.
"""

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from types import FrameType

from collector.actions import ActionResult, ActionRunner
from collector.keeper import (
    HELD_DISCONNECTED,
    HELD_QUOTA,
    STATE_META,
    KeeperState,
    attempt_event,
    disconnect_event,
    keeper_lock,
    quota_spent,
)
from traffic.config import Config, secret_values
from traffic.counters import Delta
from traffic.periods import now_ms
from traffic.store import Event, Store
from traffic.unsaved import with_unsaved

STOP_SIGNALS = (signal.SIGINT, signal.SIGHUP, signal.SIGTERM)


class _Interrupted(Exception):
    """A signal came before the action started: nothing was done."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class _Signals:
    """Turns a stop signal into ``runner.interrupt()``; before the action, into ``_Interrupted``."""

    def __init__(self, runner: ActionRunner, name: str) -> None:
        self.runner = runner
        self.name = name
        self.signum = 0
        self.acting = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.signum = self.signum or signum
        self.runner.interrupt(f"traffic {self.name} got {signal.Signals(signum).name}")
        if not self.acting:
            raise _Interrupted(signum)

    def status(self, status: int) -> int:
        return 128 + self.signum if self.signum else status


@contextlib.contextmanager
def _on_signals(runner: ActionRunner, name: str) -> Iterator[_Signals]:
    handler = _Signals(runner, name)
    if threading.current_thread() is not threading.main_thread():
        yield handler
        return
    previous = {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}
    try:
        yield handler
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def _interruptible(config: Config, store: Store, name: str,
                   body: Callable[[ActionRunner, _Signals], int]) -> int:
    runner = ActionRunner(config=config, store=store)  # a router built-in makes its own source
    try:
        with _on_signals(runner, name) as signals:
            status = body(runner, signals)
    except _Interrupted as stopped:
        return 128 + stopped.signum
    return signals.status(status)


def _state(store: Store) -> KeeperState:
    return KeeperState.from_json(store.get_meta(STATE_META))


def lock_wait_s(config: Config) -> float:
    """The longest a keeper check can hold the lock: its probes, its action, a margin."""
    keeper = config.keeper
    return keeper.action_timeout + len(keeper.targets) * keeper.timeout + 5


@contextlib.contextmanager
def _exclusive(config: Config, signals: _Signals) -> Iterator[bool]:
    """The keeper lock, waited for (with a word on stderr) while the keeper runs an action.
    Once it is held, a signal interrupts the action instead of ending the command at once."""
    name = signals.name
    with keeper_lock(config, wait_s=0) as locked:
        if locked:
            signals.acting = True
            yield True
            return
    wait = lock_wait_s(config)
    print(f"traffic {name}: the link is busy (a keeper check, or another connect or "
          f"disconnect); waiting up to {wait:g}s for it to finish", file=sys.stderr)
    with keeper_lock(config, wait_s=wait) as locked:
        if not locked:
            print(f"traffic {name}: the link is still busy after {wait:g}s; nothing done, "
                  "try again later", file=sys.stderr)
        signals.acting = locked
        yield locked


def connect(config: Config, store: Store, args: argparse.Namespace) -> int:
    """Clear any lock or hold, then run the connect command now; it counts as the first
    step's first attempt, which the keeper judges no sooner than one check later."""
    return _interruptible(config, store, "connect",
                          lambda runner, signals: _connect(config, store, runner, signals))


def _connect(config: Config, store: Store, runner: ActionRunner, signals: _Signals) -> int:
    with _exclusive(config, signals) as locked:
        if not locked:
            return 1
        result = connect_held(config, with_unsaved(store, config, now_ms()), runner,
                              "traffic connect")
    print(f"{' '.join(result.command)}: {result.outcome}")
    if result.output:
        print(result.output)
    return 0 if result.ok else 1


def connect_held(config: Config, store: Store, runner: ActionRunner, by: str,
                 unsaved: Iterable[Delta] = ()) -> ActionResult:
    """``traffic connect``'s work, the keeper lock held: any lock or hold cleared, the connect
    command run as the first step's first attempt; ``by`` is the unlock's reason. The quota is
    judged on the stored bytes and ``unsaved`` (the collector's own; a command's ``store``
    reads the running collector's through ``with_unsaved``)."""
    now, before = now_ms(), _state(store)
    spent, renewed, _ = quota_spent(config, store, now, unsaved)
    result = runner.run(config.keeper.connect, config.keeper.action_timeout,
                        secret_values(config.effective))
    events = [Event(now, "unlock", {"reason": by, "was": before.held or "locked"})
              ] if before.lock_until or before.held else []
    store.add_events([*events, attempt_event(now, 0, result)])
    cleared = _cleared(_state(store), renewed if spent else 0)
    store.set_meta(STATE_META, replace(cleared, step_fails=1, attempt_at=now_ms()).to_json())
    return result


def _cleared(state: KeeperState, spent_until: int) -> KeeperState:
    """No rest, no hold. The quota is not enforced again until a spent limit would be renewed
    (``spent_until``, whatever was held: a hand disconnect may have replaced the quota hold),
    nor before a lifted quota hold would have ended."""
    lifted = state.lock_until if state.held == HELD_QUOTA else 0
    return replace(state, lock_until=0, held="", quota_limit="", step=0, step_fails=0,
                   quota_override_until=max(state.quota_override_until, lifted, spent_until))


def disconnect(config: Config, store: Store, args: argparse.Namespace) -> int:
    """Take the link down and keep it down until ``traffic connect``."""
    return _interruptible(config, store, "disconnect",
                          lambda runner, signals: _disconnect(config, store, runner, signals))


def _disconnect(config: Config, store: Store, runner: ActionRunner, signals: _Signals) -> int:
    with _exclusive(config, signals) as locked:
        if not locked:
            return 1
        event = disconnect_held(config, store, runner, "traffic disconnect")
    ok = event.detail.get("ok", False)
    print("The link is down; the keeper leaves it down until `traffic connect`." if ok else
          "The disconnect command failed; the keeper will not reconnect until `traffic connect`.")
    if event.detail.get("output"):
        print(event.detail["output"])
    return 0 if ok else 1


def disconnect_held(config: Config, store: Store, runner: ActionRunner, by: str) -> Event:
    """``traffic disconnect``'s work, the keeper lock held: the keeper holds the link down
    (until a connect), and the disconnect command runs; returns its event, stored."""
    store.set_meta(STATE_META, replace(_state(store), held=HELD_DISCONNECTED).to_json())
    event = disconnect_event(config, now_ms(), by, secret_values(config.effective), runner)
    store.add_events([event])
    return event

"""``traffic connect`` and ``traffic disconnect``: the person at the box overrides the keeper.

Both change the keeper's saved state, which the running keeper reads at its next check, and run
the action at once, so the answer is printed before the command returns.
"""

import argparse
from dataclasses import replace

from collector.actions import run_action
from collector.keeper import (
    HELD_DISCONNECTED,
    HELD_QUOTA,
    STATE_META,
    KeeperState,
    attempt_event,
    disconnect_event,
    secret_values,
)
from traffic.config import Config
from traffic.periods import now_ms
from traffic.store import Event, Store


def _state(store: Store) -> KeeperState:
    return KeeperState.from_json(store.get_meta(STATE_META))


def connect(config: Config, store: Store, args: argparse.Namespace) -> int:
    """Clear any lock or hold, then run the connect command now."""
    now = now_ms()
    before = _state(store)
    cleared = replace(before, lock_until=0, held="", step=0, step_fails=0,
                      quota_override_until=before.lock_until if before.held == HELD_QUOTA
                      else before.quota_override_until)
    events = [Event(now, "unlock", {"reason": "traffic connect", "was": before.held or "locked"})
              ] if before.lock_until or before.held else []
    result = run_action(config.keeper.connect, config.keeper.action_timeout,
                        secret_values(config.effective))
    events.append(attempt_event(now, 0, result))
    store.add_events(events)
    store.set_meta(STATE_META, cleared.to_json())
    outcome = ("done" if result.ok else "timed out" if result.timed_out
               else "could not start" if result.exit_code is None
               else f"failed (exit {result.exit_code})")
    print(f"{' '.join(result.command)}: {outcome}")
    if result.output:
        print(result.output)
    return 0 if result.ok else 1


def disconnect(config: Config, store: Store, args: argparse.Namespace) -> int:
    """Take the link down and keep it down until ``traffic connect``."""
    now = now_ms()
    event = disconnect_event(config, now, "traffic disconnect", secret_values(config.effective))
    store.add_events([event])
    store.set_meta(STATE_META, replace(_state(store), held=HELD_DISCONNECTED).to_json())
    ok = event.detail.get("ok", False)
    print("The link is down; the keeper leaves it down until `traffic connect`." if ok else
          "The disconnect command failed; the keeper will not reconnect until `traffic connect`.")
    if event.detail.get("output"):
        print(event.detail["output"])
    return 0 if ok else 1

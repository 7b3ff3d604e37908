"""The keeper's policy as a table: every transition, on a fake clock (milliseconds)."""

from dataclasses import replace

import pytest

from collector.keeper import HELD_DISCONNECTED, HELD_QUOTA, KeeperState, Policy

S = 1000
PLAIN = Policy(steps=(), max_fails=4, lock_ms=300 * S, enforce_quota=False)
LADDER = Policy(steps=(2, 3), max_fails=2, lock_ms=600 * S, enforce_quota=False)
QUOTA = Policy(steps=(), max_fails=4, lock_ms=300 * S, enforce_quota=True)
UP = KeeperState(link="up", since=0)
DOWN = KeeperState(link="down", since=100 * S)


def kinds(decision) -> list[str]:
    return [event.kind for event in decision.events]


@pytest.mark.parametrize(("case", "policy", "state", "now", "up", "expected", "events", "action"), [
    ("first check, up", PLAIN, KeeperState(), 5 * S, True,
     KeeperState(link="up", since=5 * S), [], None),
    ("first check, down: attempt at once", PLAIN, KeeperState(), 5 * S, False,
     KeeperState(link="down", since=5 * S, step_fails=1), [], "attempt"),
    ("stays up: nothing", PLAIN, UP, 30 * S, True, UP, [], None),
    ("goes down: event with uptime, attempt", PLAIN, UP, 90 * S, False,
     KeeperState(link="down", since=90 * S, step_fails=1), ["down"], "attempt"),
    ("still down: next attempt", PLAIN, replace(DOWN, step_fails=1), 130 * S, False,
     replace(DOWN, step_fails=2), [], "attempt"),
    ("comes back: up event with downtime, counters reset", PLAIN, replace(DOWN, step_fails=3),
     160 * S, True, KeeperState(link="up", since=160 * S), ["up"], None),
    ("max_fails reached: lock, no attempt", PLAIN, replace(DOWN, step_fails=4), 200 * S, False,
     replace(DOWN, lock_until=500 * S), ["lock"], None),
    ("locked: no attempt", PLAIN, replace(DOWN, lock_until=500 * S), 499 * S, False,
     replace(DOWN, lock_until=500 * S), [], None),
    ("lock expired: unlock and attempt", PLAIN, replace(DOWN, lock_until=500 * S), 500 * S,
     False, replace(DOWN, step_fails=1), ["unlock"], "attempt"),
    ("locked but the link came back by itself", PLAIN, replace(DOWN, lock_until=500 * S),
     300 * S, True, KeeperState(link="up", since=300 * S), ["up"], None),
    ("ladder: step 0 failed twice: escalate to step 1", LADDER, replace(DOWN, step_fails=2),
     200 * S, False, replace(DOWN, step=1, step_fails=1), ["escalation"], "attempt"),
    ("ladder: step 1 failed once: again", LADDER, replace(DOWN, step=1, step_fails=1), 210 * S,
     False, replace(DOWN, step=1, step_fails=2), [], "attempt"),
    ("ladder: step 1 failed 3 times: step 2", LADDER, replace(DOWN, step=1, step_fails=3),
     220 * S, False, replace(DOWN, step=2, step_fails=1), ["escalation"], "attempt"),
    ("ladder: last step failed max_fails: lock, start over", LADDER,
     replace(DOWN, step=2, step_fails=2), 230 * S, False, replace(DOWN, lock_until=830 * S),
     ["lock"], None),
    ("disconnected by hand: no attempt while down", PLAIN,
     replace(DOWN, held=HELD_DISCONNECTED), 200 * S, False,
     replace(DOWN, held=HELD_DISCONNECTED), [], None),
    ("over quota while up: lock to period end, disconnect", QUOTA, UP, 50 * S, True,
     replace(UP, held=HELD_QUOTA, lock_until=999 * S), ["quota_lock"], "disconnect"),
    ("quota held, link down: stays down", QUOTA,
     replace(DOWN, held=HELD_QUOTA, lock_until=999 * S), 60 * S, False,
     replace(DOWN, held=HELD_QUOTA, lock_until=999 * S), [], None),
    ("quota held, someone brought it up: disconnect again", QUOTA,
     replace(DOWN, held=HELD_QUOTA, lock_until=999 * S), 120 * S, True,
     KeeperState(link="up", since=120 * S, held=HELD_QUOTA, lock_until=999 * S), ["up"],
     "disconnect"),
    ("over quota, but `traffic connect` overrode it until the renewal", QUOTA,
     replace(UP, quota_override_until=999 * S), 60 * S, True,
     replace(UP, quota_override_until=999 * S), [], None),
    ("new billing period: unlock and reconnect", QUOTA,
     replace(DOWN, held=HELD_QUOTA, lock_until=999 * S), 999 * S, False,
     replace(DOWN, step_fails=1), ["unlock"], "attempt"),
])
def test_decide(case, policy, state, now, up, expected, events, action) -> None:
    over_quota = case.startswith("over quota")  # the override case too
    decision = policy.decide(state, now, up, over_quota=over_quota, period_end=999 * S)
    assert (decision.state, kinds(decision), decision.action) == (expected, events, action), case


def test_durations_of_down_and_up() -> None:
    down = PLAIN.decide(UP, 90 * S, False)
    assert down.events[0].duration_ms == 90 * S  # up since 0
    back = PLAIN.decide(down.state, 135 * S, True)
    assert back.events[0].kind == "up" and back.events[0].duration_ms == 45 * S


def test_a_full_outage_on_the_clock() -> None:
    """Check every 30 s: four failed attempts, a 5-minute lock with no attempts, then more."""
    state, now, attempts, log = UP, 0, [], []
    for _ in range(20):
        now += 30 * S
        decision = PLAIN.decide(state, now, up=False)
        state = decision.state
        log += kinds(decision)
        if decision.action == "attempt":
            attempts.append(now // S)
    assert attempts == [30, 60, 90, 120, 450, 480, 510, 540]
    assert log == ["down", "lock", "unlock", "lock"]

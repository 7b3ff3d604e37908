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
    ("first check, up: recorded, with no duration", PLAIN, KeeperState(), 5 * S, True,
     KeeperState(link="up", since=5 * S), ["up"], None),
    ("first check, down: recorded, attempt at once", PLAIN, KeeperState(), 5 * S, False,
     KeeperState(link="down", since=5 * S, step_fails=1), ["down"], "attempt"),
    ("stays up: nothing", PLAIN, UP, 30 * S, True, UP, [], None),
    ("goes down: event with uptime, attempt", PLAIN, UP, 90 * S, False,
     KeeperState(link="down", since=90 * S, step_fails=1), ["down"], "attempt"),
    ("still down: next attempt", PLAIN, replace(DOWN, step_fails=1), 130 * S, False,
     replace(DOWN, step_fails=2), [], "attempt"),
    ("comes back: up event with downtime, failures kept until it settles", PLAIN,
     replace(DOWN, step_fails=3), 160 * S, True,
     KeeperState(link="up", since=160 * S, step_fails=3), ["up"], None),
    ("still up at the next check: settled, failures forgotten", PLAIN,
     KeeperState(link="up", since=160 * S, step=1, step_fails=3), 190 * S, True,
     KeeperState(link="up", since=160 * S), [], None),
    ("up for one check only, down again: the failures go on counting", PLAIN,
     KeeperState(link="up", since=160 * S, step_fails=3), 190 * S, False,
     KeeperState(link="down", since=190 * S, step_fails=4), ["down"], "attempt"),
    ("max_fails reached: lock, no attempt", PLAIN, replace(DOWN, step_fails=4), 200 * S, False,
     replace(DOWN, lock_until=500 * S), ["lock"], None),
    ("locked: no attempt", PLAIN, replace(DOWN, lock_until=500 * S), 499 * S, False,
     replace(DOWN, lock_until=500 * S), [], None),
    ("lock expired: unlock and attempt", PLAIN, replace(DOWN, lock_until=500 * S), 500 * S,
     False, replace(DOWN, step_fails=1), ["unlock"], "attempt"),
    ("resting, the link came back by itself: the rest is kept", PLAIN,
     replace(DOWN, lock_until=500 * S), 300 * S, True,
     KeeperState(link="up", since=300 * S, lock_until=500 * S), ["up"], None),
    ("resting, up again at the next check: the rest ends", PLAIN,
     KeeperState(link="up", since=300 * S, lock_until=500 * S), 330 * S, True,
     KeeperState(link="up", since=300 * S), ["unlock"], None),
    ("resting, the link dropped again after one check: still resting", PLAIN,
     KeeperState(link="up", since=300 * S, lock_until=500 * S), 330 * S, False,
     KeeperState(link="down", since=330 * S, lock_until=500 * S), ["down"], None),
    ("clock went back an hour during a rest: the rest is capped", PLAIN,
     replace(DOWN, lock_until=3900 * S), 200 * S, False, replace(DOWN, lock_until=500 * S),
     [], None),
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
     replace(UP, held=HELD_QUOTA, lock_until=999 * S, quota_limit="monthly"), ["quota_lock"],
     "disconnect"),
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
    ("over quota, but disconnected by hand: the hand's hold stays", QUOTA,
     replace(DOWN, held=HELD_DISCONNECTED), 60 * S, False,
     replace(DOWN, held=HELD_DISCONNECTED), [], None),
    ("over quota, disconnected by hand, someone connected: no quota hold", QUOTA,
     replace(DOWN, held=HELD_DISCONNECTED), 60 * S, True,
     KeeperState(link="up", since=60 * S, held=HELD_DISCONNECTED), ["up"], None),
    ("disconnected by hand after a quota hold: the period's end does not reconnect", QUOTA,
     replace(DOWN, held=HELD_DISCONNECTED, lock_until=999 * S), 999 * S, False,
     replace(DOWN, held=HELD_DISCONNECTED, lock_until=999 * S), [], None),
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


def test_durations_never_negative_after_the_clock_went_back() -> None:
    down = PLAIN.decide(replace(UP, since=500 * S), 90 * S, False)
    assert down.events[0].kind == "down" and down.events[0].duration_ms == 0


def test_first_check_has_no_duration() -> None:
    assert PLAIN.decide(KeeperState(), 5 * S, False).events[0].duration_ms is None


def test_a_flapping_link_reaches_the_rest() -> None:
    """Each attempt brings the link up for one check, then it drops: max_fails still counts."""
    state, now, attempts, log = UP, 0, [], []
    for found_up in [False, True] * 8:
        now += 30 * S
        decision = PLAIN.decide(state, now, up=found_up)
        state = decision.state
        log += kinds(decision)
        if decision.action == "attempt":
            attempts.append(now // S)
    assert attempts == [30, 90, 150, 210]
    assert "lock" in log and log.index("lock") == log.index("down", 7) + 1


@pytest.mark.parametrize(("limit", "reason"), [("daily", "new day"),
                                                ("monthly", "new billing period")])
def test_the_end_of_a_quota_hold_names_the_limit(limit: str, reason: str) -> None:
    held = QUOTA.decide(UP, 50 * S, True, over_quota=True, period_end=99 * S, limit=limit)
    assert held.events[0].detail == {"until": 99 * S, "limit": limit}
    ended = QUOTA.decide(held.state, 99 * S, False)
    assert ended.events[0].kind == "unlock" and ended.events[0].detail == {"reason": reason}


def test_an_attempt_of_traffic_connect_is_judged_one_check_later() -> None:
    """``traffic connect`` dialled 34 ms before a check: that check must not dial again."""
    policy = replace(PLAIN, check_ms=30 * S)
    dialled = replace(DOWN, step_fails=1, attempt_at=200 * S)
    wait = policy.decide(dialled, 200 * S + 34, False)
    assert (wait.state, wait.events, wait.action) == (dialled, [], None)
    judged = policy.decide(dialled, 230 * S, False)
    assert judged.action == "attempt" and judged.state.step_fails == 2
    assert policy.decide(dialled, 100 * S, False).action == "attempt"  # the clock went back
    assert policy.decide(dialled, 200 * S + 34, True).events[0].kind == "up"


def test_a_rest_ended_by_the_link_coming_back_is_recorded() -> None:
    decision = PLAIN.decide(KeeperState(link="up", since=300 * S, lock_until=500 * S), 330 * S,
                            True)
    assert [(e.kind, e.detail) for e in decision.events] == [("unlock", {"reason": "link back"})]

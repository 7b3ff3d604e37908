"""The counter arithmetic, as a table: every way a counter can move between two readings."""

import logging

import pytest

from traffic.counters import CounterState, Delta, Reading, Tracker, counter_delta

MAX_RATE = 125_000_000  # 1 Gbit/s
GiB4 = 2**32


@pytest.mark.parametrize(
    ("case", "previous", "current", "same_life", "bits", "elapsed_s", "expected"),
    [
        ("growth", 1_000, 51_000, True, 64, 5, 50_000),
        ("no traffic", 7_000, 7_000, True, 64, 5, 0),
        ("PPP reconnect: new ifindex, counter from zero", 3_900_000_000, 20_000, False, 32, 5,
         20_000),
        ("PPP reconnect on a 64-bit counter", 10**12, 5_000, False, 64, 5, 5_000),
        ("reboot: new boot id", 8 * 10**9, 123_456, False, 64, 60, 123_456),
        ("wrap of a known 32-bit counter", GiB4 - 1_000, 4_000, True, 32, 5, 5_000),
        ("32-bit fall that would be an implausible wrap: a reset", 1_000, 100, True, 32, 5, 100),
        ("said to be 32-bit but was above 2**32: wider, so a reset, not a wrap",
         10_000_000_000, 100, True, 32, 5, 100),
        ("said to be 32-bit, just above 2**32, falls a little: a reset", GiB4 + 5_000, 1_000,
         True, 32, 5, 1_000),
        ("backwards on a 64-bit counter without a new life: a reset", 900_000, 3_000, True, 64, 5,
         3_000),
        ("collector down an hour, same life: counted once", 10**6, 10**6 + 3 * 10**9, True, 64,
         3600, 3 * 10**9),
        ("implausible jump", 0, 10**12, True, 64, 5, None),
        ("implausible value after a new life", 0, 10**12, False, 64, 5, None),
        ("a clock step back still judges over a second", 0, 100_000_000, True, 64, -30,
         100_000_000),
        ("the clock went back: how long passed is unknown, so the growth is kept", 0,
         350_000_000, True, 64, -3529.7, 350_000_000),
        ("the clock went back and a 64-bit counter fell: a reset", 900_000, 3_000, True, 64, -30,
         3_000),
        ("the clock went back and a 32-bit counter wrapped within a second", GiB4 - 1_000, 4_000,
         True, 32, -30, 5_000),
    ],
)
def test_counter_delta(case, previous, current, same_life, bits, elapsed_s, expected) -> None:
    assert counter_delta(previous, current, same_life, bits, elapsed_s, MAX_RATE) == expected, case


def reading(at_s: float, rx: int, tx: int, life: str = "boot/3", bits: int = 64) -> Reading:
    return Reading("kernel:ppp0", int(at_s * 1000), {"rx": rx, "tx": tx}, life, bits)


def test_first_reading_is_a_baseline() -> None:
    tracker = Tracker(MAX_RATE)
    assert tracker.update(reading(0, 5_000_000, 1_000)) is None
    assert tracker.state["kernel:ppp0"] == CounterState("boot/3", 0, 5_000_000, 1_000)


def test_successive_readings_give_adjacent_intervals() -> None:
    tracker = Tracker(MAX_RATE)
    tracker.update(reading(0, 100, 10))
    first = tracker.update(reading(5, 1_100, 210))
    second = tracker.update(reading(10, 1_600, 260))
    assert first == Delta("kernel:ppp0", 0, 5_000, 1_000, 200)
    assert second == Delta("kernel:ppp0", 5_000, 10_000, 500, 50)


def test_ppp_reconnect_is_never_read_as_a_wrap() -> None:
    tracker = Tracker(MAX_RATE)
    tracker.update(reading(0, 4_000_000_000, 900_000_000, life="boot/7", bits=32))
    delta = tracker.update(reading(5, 12_000, 3_000, life="boot/8", bits=32))
    assert (delta.rx, delta.tx) == (12_000, 3_000)


def test_restart_resumes_from_saved_state() -> None:
    before = Tracker(MAX_RATE)
    before.update(reading(0, 1_000, 1_000))
    before.update(reading(5, 2_000, 1_500))
    after = Tracker(MAX_RATE, before.state)  # a new process, state read back from the store
    delta = after.update(reading(3605, 900_002_000, 1_500))
    assert delta == Delta("kernel:ppp0", 5_000, 3_605_000, 900_000_000, 0)


def test_implausible_jump_is_dropped_logged_and_resynced(caplog: pytest.LogCaptureFixture) -> None:
    tracker = Tracker(MAX_RATE)
    tracker.update(reading(0, 1_000, 1_000))
    with caplog.at_level(logging.WARNING):
        assert tracker.update(reading(5, 10**13, 1_000)) is None
    assert "implausible jump" in caplog.text and "kernel:ppp0" in caplog.text
    assert tracker.update(reading(10, 10**13 + 500, 1_100)) == Delta(
        "kernel:ppp0", 5_000, 10_000, 500, 100)


def test_clock_step_back_never_reuses_an_interval() -> None:
    tracker = Tracker(MAX_RATE)
    tracker.update(reading(100, 0, 0))
    forward = tracker.update(reading(105, 10, 10))
    stepped = tracker.update(reading(40, 30, 20))
    assert forward.end == 105_000
    assert stepped.start == 105_000 and stepped.end > stepped.start
    assert (stepped.rx, stepped.tx) == (20, 10)


def test_a_resumed_counter_starts_again_unless_it_has_a_new_life() -> None:
    tracker = Tracker(MAX_RATE)
    tracker.update(reading(0, 1_000, 1_000))
    resumed = Reading("kernel:ppp0", 60_000, {"rx": 9_000, "tx": 5_000}, "boot/3", resumed=True)
    assert tracker.update(resumed) is None  # the 8000 B between were not the link's
    assert tracker.update(reading(65, 9_500, 5_100)) == Delta("kernel:ppp0", 60_000, 65_000,
                                                              500, 100)
    reborn = Reading("kernel:ppp0", 70_000, {"rx": 300, "tx": 30}, "boot/4", resumed=True)
    assert tracker.update(reborn) == Delta("kernel:ppp0", 65_000, 70_000, 300, 30)


def held(at: int, rx: int, tx: int = 0, life: str = "SERIAL1") -> Reading:
    return Reading("router:wan", at, {"rx": rx, "tx": tx}, life, held=True)


@pytest.mark.parametrize(("case", "values", "counted"), [
    ("growth", [1_000, 5_000, 9_000], 8_000),
    ("a dip that comes back is not counted twice", [1_000, 5_000, 2_000, 5_000, 6_000], 5_000),
    ("a dip that comes back higher counts only what is above the highest", [1_000, 5_000, 200,
                                                                            7_000], 6_000),
    ("down for two readings, then back: still a dip", [1_000, 5_000, 10, 20, 5_500], 4_500),
    ("down for three readings in a row: the router's clear, counted from zero",
     [1_000, 5_000, 10, 20, 30], 4_000 + 30),
    ("after a clear, growth as usual", [1_000, 5_000, 10, 20, 30, 1_030], 4_000 + 1_030),
    ("a small dip that lasts is no clear: nothing counted twice",
     [4_000_000_000, 3_999_999_000, 3_999_999_000, 3_999_999_000, 3_999_999_500,
      4_000_002_000], 2_000),
])
def test_held_totals_of_a_router(case: str, values: list[int], counted: int) -> None:
    tracker = Tracker(MAX_RATE)
    deltas = [tracker.update(held(10_000 * i, value, value // 8))
              for i, value in enumerate(values)]
    assert sum(delta.rx for delta in deltas if delta) == counted, case


def test_a_held_direction_that_dips_does_not_stop_the_other() -> None:
    """Upload reads a little lower for a while as download grows: download is counted as it
    grows, upload only above its highest; nothing is counted twice."""
    tracker = Tracker(MAX_RATE)
    tracker.update(held(0, 4_000_000_000, 500_000_000))
    readings = [(4_000_010_000, 499_999_000), (4_000_020_000, 499_999_000),
                (4_000_030_000, 499_999_000), (4_000_040_000, 500_000_700)]
    deltas = [tracker.update(held(10_000 * (i + 1), rx, tx))
              for i, (rx, tx) in enumerate(readings)]
    assert [(d.rx, d.tx) for d in deltas if d] == [(10_000, 0), (10_000, 0), (10_000, 0),
                                                   (10_000, 700)]


def test_a_held_dip_survives_a_restart_through_the_saved_state() -> None:
    """The count of readings below is part of the saved state: a restart mid-dip neither
    forgets it nor counts the dip."""
    first = Tracker(MAX_RATE)
    first.update(held(0, 5_000, 800))
    first.update(held(10_000, 100, 10))
    first.update(held(20_000, 100, 10))
    assert first.state["router:wan"] == CounterState("SERIAL1", 0, 5_000, 800, held=2)
    second = Tracker(MAX_RATE, dict(first.state))
    delta = second.update(held(30_000, 120, 12))
    assert delta == Delta("router:wan", 0, 30_000, 120, 12)


def test_a_new_router_is_a_starting_point() -> None:
    """Another router's total holds what it counted before Traffic watched it."""
    tracker = Tracker(MAX_RATE)
    tracker.update(held(0, 5_000))
    assert tracker.update(held(10_000, 9_000_000, life="SERIAL2")) is None
    assert tracker.update(held(20_000, 9_000_300, life="SERIAL2")) == Delta(
        "router:wan", 10_000, 20_000, 300, 0)


def test_a_source_max_rate_overrides_the_tracker_s() -> None:
    tracker = Tracker(MAX_RATE)
    tracker.update(Reading("k", 0, {"rx": 0, "tx": 0}, "a", max_rate=1_000))
    assert tracker.update(Reading("k", 10_000, {"rx": 20_000, "tx": 0}, "a",
                                  max_rate=1_000)) is None

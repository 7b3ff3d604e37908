"""Alert rules over simulated weeks: a real store in tmp_path fed hour by hour as the collector
feeds it (the last minutes not saved yet), checked on an injected clock, the raised alerts read
back from the store's events and outbox."""

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from collector.alerts import AlertChecker, in_words, interface_address, summary_time
from collector.keeper import HELD_DISCONNECTED, STATE_META, Keeper, KeeperState
from collector.probe import LinkEvidence
from tests.conftest import STOCKHOLM, make_config
from tests.sim.link import Link, sh
from traffic.config import Config
from traffic.counters import Delta
from traffic.periods import from_ms, to_ms
from traffic.store import Event, open_site_store, open_store

KEY = "kernel:ppp0"
MIN = 60_000
HOUR = 3_600_000
DAY = 86_400_000
GB = 10**9
MB = 10**6
NOTIFY = ('[alerts]\nnotify = [{url = "json://127.0.0.1:9/family", rules = ["quota", "summary"]},'
          ' {url = "json://127.0.0.1:9/admin", rules = ["router", "link", "new_ip"]},'
          ' "json://127.0.0.1:9/all"]\n')


def local(*args: int) -> int:
    return to_ms(datetime(*args, tzinfo=STOCKHOLM))  # type: ignore[misc]


def clock_of(at: int) -> str:
    return f"{from_ms(at, STOCKHOLM):%Y-%m-%d %H:%M}"


class Household:
    """A store fed like the collector feeds it, and the alert checker a collector runs.

    Each hour's bytes arrive as twelve 5-minute deltas; the last two stay unsaved (the
    collector's ``pending``) until the next hour is fed, so every check sees saved and unsaved
    bytes together, as readers do."""

    def __init__(self, tmp_path: Path, settings: str, start: int) -> None:
        self.config: Config = make_config(tmp_path, 'timezone = "Europe/Stockholm"\n' + settings)
        self.store = open_store(self.config.store.url, self.config.timezone,
                                self.config.retention)
        self.now = start
        self.pending: list[Delta] = []
        self.sources: dict[str, dict[str, Any]] = {}
        self.fed = 0
        self.crossed: list[tuple[int, int]] = []
        """``(bytes fed so far, at)`` after each hour."""
        self.checker = self.restart()

    def restart(self) -> AlertChecker:
        """A new collector run: a new checker, on the same store."""
        self.checker = AlertChecker(self.config, self.store, lambda: self.now,
                                    lambda: (list(self.pending), self.sources))
        return self.checker

    def feed(self, hour: int, size: int) -> None:
        """``size`` bytes in the hour from ``hour``; the clock moves to its end."""
        step = 5 * MIN
        sizes = [size // 12] * 11 + [size - size // 12 * 11]
        parts = [Delta(KEY, hour + i * step, hour + (i + 1) * step, part * 9 // 10,
                       part - part * 9 // 10) for i, part in enumerate(sizes)]
        self.store.add([*self.pending, *parts[:10]], {})
        self.pending = parts[10:]
        self.fed += sum(d.rx + d.tx for d in parts)
        self.now = hour + HOUR

    def live(self, start: int, end: int, per_hour: Callable[[int], int],
             checks: int = 1) -> None:
        """Hour by hour from ``start`` to ``end``: feed, then check ``checks`` times spread over
        the hour (the last at its end)."""
        hour = start
        while hour < end:
            for index in range(1, checks + 1):
                self.feed_part(hour, per_hour(hour), index, checks)
                self.checker.check()
            self.crossed.append((self.fed, hour + HOUR))
            hour += HOUR

    def feed_part(self, hour: int, size: int, index: int, parts: int) -> None:
        if parts == 1:
            self.feed(hour, size)
            return
        piece = HOUR // parts
        start = hour + (index - 1) * piece
        self.store.add(self.pending, {})
        self.pending = [Delta(KEY, start, start + piece, size // parts, 0)]
        self.fed += size // parts
        self.now = start + piece

    def alerts(self, rule: str | None = None) -> list[Event]:
        found = [event for event in reversed(self.store.events(limit=100_000))
                 if event.kind == "alert" and rule in (None, event.detail["rule"])]
        for event in found:
            assert len(event.detail["text"]) <= 280 and "://" not in event.detail["text"]
        return found

    def when_fed(self, size: float) -> int:
        """The end of the hour in which the bytes fed reached ``size``."""
        return next(at for fed, at in self.crossed if fed >= size)


@pytest.fixture
def household(tmp_path: Path) -> Iterator[Callable[..., Household]]:
    made: list[Household] = []

    def make(settings: str, start: int) -> Household:
        made.append(Household(tmp_path, settings, start))
        return made[-1]
    yield make
    for house in made:
        house.store.close()


def evening_heavy(total_a_day: int) -> Callable[[int], int]:
    """A family's day: little at night, most in the evening."""
    weights = [1, 1, 1, 1, 1, 1, 2, 3, 3, 2, 2, 3, 4, 3, 3, 3, 4, 6, 8, 10, 10, 9, 6, 3]

    def per_hour(hour: int) -> int:
        return total_a_day * weights[from_ms(hour, STOCKHOLM).hour] // sum(weights)
    return per_hour


def test_a_month_raises_each_threshold_once_in_order_then_the_period_summary(
        household: Callable[..., Household]) -> None:
    start = local(2026, 11, 8)
    house = household('[quota]\nmonthly = "40 GB"\nbilling_day = 8\n' + NOTIFY, start)
    house.live(start, local(2026, 11, 22), evening_heavy(int(1.5 * GB)))
    house.restart()  # a collector restart half-way changes nothing
    house.live(local(2026, 11, 22), local(2026, 12, 11), evening_heavy(int(1.5 * GB)))

    thresholds = house.alerts("threshold")
    assert [event.detail["text"].split("%")[0] if "%" in event.detail["text"][:4]
            else "100" for event in thresholds] == ["50", "80", "100"]
    assert [event.at for event in thresholds] == [
        house.when_fed(pct * 40 * GB // 100) for pct in (50, 80, 100)]
    assert all(not event.detail.get("quiet") for event in thresholds)
    assert thresholds[0].detail == {
        "rule": "threshold", "site": "home", "mark": f"threshold:50:{start}",
        "text": "50% of the monthly limit is used: 20 GB of 40 GB, 17 days left. "
                "1.2 GB a day keeps you inside."}
    assert thresholds[2].detail["text"].startswith("The monthly limit is used up: 40 GB of "
                                                   "40 GB, ")

    summaries = house.alerts("period_summary")
    assert [(clock_of(event.at), event.detail["text"]) for event in summaries] == [
        ("2026-12-08 00:00", "Billing period 8 Nov to 7 Dec: 45 GB used, 5 GB over the 40 GB "
                             "limit.")]
    assert not house.alerts("daily_summary") and not house.alerts("burst")
    next_period = local(2026, 12, 8)
    assert [(event.detail["rule"], clock_of(event.at)) for event in house.alerts()
            if event.detail["rule"] != "threshold"] == [
        ("early_warning", "2026-11-09 00:00"), ("period_summary", "2026-12-08 00:00"),
        ("early_warning", "2026-12-09 00:00")]  # the new period's pace, a day into it

    outbox = {(d.mark, d.target) for d in house.store.pending_deliveries()}
    marks = [f"threshold:{pct}:{start}" for pct in (50, 80, 100)]
    assert outbox == {(mark, target) for mark in [*marks, f"early_warning:{start}",
                                                  f"period_summary:{start}",
                                                  f"early_warning:{next_period}"]
                      for target in (0, 2)}


def test_the_early_warning_says_the_pace_the_end_and_what_a_day_may_take(
        household: Callable[..., Household]) -> None:
    start = local(2026, 11, 8)
    house = household('[quota]\nmonthly = "40 GB"\nbilling_day = 8\n', start)
    steady = 50 * MB  # 1.2 GB a day: 36 GB by the end, inside the limit
    house.live(start, local(2026, 11, 22, 2), lambda hour: steady)
    assert not house.alerts()
    house.live(local(2026, 11, 22, 2), local(2026, 11, 22, 3),
               lambda hour: 21_658 * MB - 16_900 * MB)  # a game download
    house.live(local(2026, 11, 22, 3), local(2026, 11, 26), lambda hour: steady)

    warnings = house.alerts("early_warning")
    assert [(clock_of(event.at), event.detail["text"]) for event in warnings] == [
        ("2026-11-22 03:00", "At this pace: 46 GB by 7 Dec, over the 40 GB limit. "
                             "1.1 GB a day keeps you inside.")]


def test_the_early_warning_waits_for_a_day_of_counting(
        household: Callable[..., Household]) -> None:
    start = local(2026, 11, 8)
    house = household('[quota]\nmonthly = "40 GB"\nbilling_day = 8\n', start)
    house.live(start, start + 3 * HOUR, lambda hour: 2 * GB)  # a first evening's films
    house.live(start + 3 * HOUR, start + 2 * DAY, lambda hour: 40 * MB)
    assert [clock_of(event.at) for event in house.alerts("early_warning")] == [
        "2026-11-09 00:00"]


def test_thresholds_reached_while_no_check_ran_are_recorded_in_order_and_sent_once(
        household: Callable[..., Household]) -> None:
    start = local(2026, 11, 8)
    house = household('[quota]\nmonthly = "40 GB"\nbilling_day = 8\n' + NOTIFY, start)
    for day in range(12):  # the collector counted, but no check ran (it was stopped)
        for hour in range(24):
            house.feed(start + day * DAY + hour * HOUR, 120 * MB)
    house.restart().check()
    house.restart().check()  # and once more: nothing new

    thresholds = house.alerts("threshold")
    assert [(event.detail["text"][:3], event.detail.get("quiet", False))
            for event in thresholds] == [("50%", True), ("80%", False)]
    assert {(d.mark, d.target) for d in house.store.pending_deliveries()
            if d.rule == "threshold"} == {(f"threshold:80:{start}", 0),
                                          (f"threshold:80:{start}", 2)}


def test_a_threshold_crossed_in_the_last_seconds_of_a_period_is_sent_after_it(
        household: Callable[..., Household]) -> None:
    start, end = local(2026, 11, 8), local(2026, 12, 8)
    house = household('[quota]\nmonthly = "40 GB"\nbilling_day = 8\n' + NOTIFY, start)
    house.live(start, end - HOUR, lambda hour: 44 * MB)  # 31.636 GB by 23:00 on 7 Dec
    house.store.add(house.pending, {})
    house.pending = [Delta(KEY, end - HOUR, end - 30_000, 324 * MB, 0)]
    house.now = end - 30_000
    house.checker.check()  # 23:59:30: 31.96 GB, 79.9%
    assert [event.detail["text"][:3] for event in house.alerts("threshold")] == ["50%"]
    house.pending.append(Delta(KEY, end - 30_000, end, 100 * MB, 0))  # 80.15% before midnight
    house.now = end + 30_000
    house.checker.check()  # 00:00:30, the new period
    house.now += MIN
    house.checker.check()

    assert [(clock_of(event.at), event.detail["text"], event.detail.get("quiet", False))
            for event in house.alerts()][1:] == [
        ("2026-12-08 00:00", "80% of the monthly limit was used in the billing period 8 Nov "
                             "to 7 Dec: 32.1 GB of 40 GB.", False),
        ("2026-12-08 00:00", "Billing period 8 Nov to 7 Dec: 32.1 GB of 40 GB used (80%).",
         False)]
    assert {(d.title, d.target) for d in house.store.pending_deliveries()
            if d.mark == f"threshold:80:{start}"} == {("80% of the limit used", 0),
                                                      ("80% of the limit used", 2)}


@pytest.mark.parametrize(("back", "late"), [
    ((2026, 12, 8, 6), False),   # six hours after the period's end: still news
    ((2026, 12, 9, 12), True),   # a day and a half after: recorded, not sent
])
def test_a_threshold_crossed_while_down_over_the_period_end(
        household: Callable[..., Household], back: tuple[int, int, int, int],
        late: bool) -> None:
    start, end = local(2026, 11, 8), local(2026, 12, 8)
    house = household('[quota]\nmonthly = "40 GB"\nbilling_day = 8\nthresholds = [50, 80]\n'
                      + NOTIFY, start)
    house.live(start, local(2026, 12, 7, 12), lambda hour: 44 * MB)  # 31.2 GB: 78%
    hour = local(2026, 12, 7, 12)
    while hour < local(*back):  # counted by a collector whose alerts job did not run
        house.feed(hour, 100 * MB)
        hour += HOUR
    house.restart().check()
    house.restart().check()

    ended = [event for event in house.alerts("threshold") if event.at >= end]
    assert [(event.detail["text"], event.detail.get("quiet", False),
             event.detail.get("late", False)) for event in ended] == [
        ("80% of the monthly limit was used in the billing period 8 Nov to 7 Dec: 32.4 GB of "
         "40 GB.", late, late)]
    delivered = {d.mark for d in house.store.pending_deliveries()}
    assert (f"threshold:80:{start}" in delivered) is not late
    assert f"period_summary:{start}" in delivered
    assert not any(event.detail["mark"].endswith(f":{end}")
                   for event in house.alerts("threshold"))


def test_a_lower_threshold_first_seen_over_the_limit_says_the_limit_is_used_up(
        household: Callable[..., Household]) -> None:
    start = local(2026, 11, 8)
    house = household('[quota]\nmonthly = "40 GB"\nbilling_day = 8\nthresholds = [50, 80]\n'
                      + NOTIFY, start)
    for hour in range(20 * 24):  # the collector counted, but no check ran: 44 GB
        house.feed(start + hour * HOUR, 44 * GB // (20 * 24))
    house.restart().check()

    used_up = "The monthly limit is used up: 44 GB of 40 GB, 4 GB over, 10 days left."
    assert [(event.detail["mark"], event.detail["text"], event.detail.get("quiet", False))
            for event in house.alerts("threshold")] == [
        (f"threshold:50:{start}", used_up, True), (f"threshold:80:{start}", used_up, False)]
    assert {d.title for d in house.store.pending_deliveries()} == {"Monthly limit used up"}
    assert "a day keeps you inside" not in house.alerts("threshold")[1].detail["text"]


def test_sizes_follow_the_unit_system_of_the_limit_each_message_is_about(
        household: Callable[..., Household]) -> None:
    start = local(2026, 11, 8)
    house = household('[quota]\nmonthly = "40 GiB"\ndaily = "2 GB"\nbilling_day = 8\n'
                      'thresholds = [5]\n[alerts]\nhourly_burst = "500 MiB"\n'
                      'early_warning = false\n', start)
    heavy = {local(2026, 11, 8, 20): 600 * MB}
    house.live(start, start + DAY, lambda hour: heavy.get(hour, 70 * MB))

    assert [(event.detail["rule"], event.detail["text"]) for event in house.alerts()] == [
        ("daily_limit", "Today's limit is used up: 2 GB of 2 GB."),
        ("burst", "Heavy use: 572.2 MiB in the hour from 20:00 (the alert is set at 500 MiB "
                  "an hour)."),
        ("threshold", "5% of the monthly limit is used: 2.1 GiB of 40 GiB, 29 days left. "
                      "1.3 GiB a day keeps you inside.")]


def test_bytes_not_saved_yet_count(household: Callable[..., Household]) -> None:
    start = local(2026, 11, 8)
    house = household('[quota]\nmonthly = "1 GB"\nthresholds = [50]\n'
                      '[alerts]\nearly_warning = false\n', start)
    house.pending = [Delta(KEY, start, start + 5 * MIN, 400 * MB, 200 * MB)]
    house.now = start + 6 * MIN
    house.checker.check()
    assert [event.detail["text"][:3] for event in house.alerts()] == ["50%"]
    assert house.store.totals(start, start + DAY) == (0, 0)


@pytest.mark.parametrize(("first_day", "change"), [
    ((2026, 3, 26), (2026, 3, 29)),     # clocks go forward: a 23-hour day
    ((2026, 10, 22), (2026, 10, 25)),   # clocks go back: a 25-hour day
])
def test_the_daily_summary_comes_at_the_local_time_also_on_the_days_clocks_change(
        household: Callable[..., Household], first_day: tuple[int, int, int],
        change: tuple[int, int, int]) -> None:
    start = local(*first_day)
    house = household('[quota]\nmonthly = "40 GB"\n[alerts]\ndaily_summary = "21:00"\n',
                      start)
    house.live(start, start + 5 * DAY + 2 * HOUR, lambda hour: 20 * MB, checks=4)

    summaries = house.alerts("daily_summary")
    assert [clock_of(event.at) for event in summaries] == [
        f"{from_ms(start, STOCKHOLM).date().replace(day=first_day[2] + n)} 21:00"
        for n in range(5)]
    day_of_change = summaries[change[2] - first_day[2]]
    hours_since_midnight = 20 if change[1] == 3 else 22
    assert day_of_change.detail["text"].startswith(
        f"Today so far: {hours_since_midnight * 20} MB.")


def test_a_morning_summary_tells_the_day_before(household: Callable[..., Household]) -> None:
    start = local(2026, 10, 24)
    house = household('[quota]\nmonthly = "40 GB"\n[alerts]\ndaily_summary = "07:30"\n', start)
    house.live(start, local(2026, 10, 26, 8), lambda hour: 10 * MB, checks=4)
    summaries = house.alerts("daily_summary")
    assert [clock_of(event.at) for event in summaries] == ["2026-10-24 07:30",
                                                            "2026-10-25 07:30",
                                                            "2026-10-26 07:30"]
    assert summaries[2].detail["text"] == (
        "Yesterday: 250 MB. 565 MB of 40 GB used, 6 days left: 6.6 GB a day keeps you "
        "inside.")  # 25 October had 25 hours


def test_a_summary_time_is_the_wall_clock_of_its_day(tmp_path: Path) -> None:
    config = make_config(tmp_path, 'timezone = "Europe/Stockholm"\n')
    spring, autumn = local(2026, 3, 29), local(2026, 10, 25)
    assert clock_of(summary_time(spring, "21:00", config)) == "2026-03-29 21:00"
    assert summary_time(spring, "21:00", config) - spring == 20 * HOUR
    assert summary_time(autumn, "21:00", config) - autumn == 22 * HOUR
    assert clock_of(summary_time(spring, "02:30", config)) == "2026-03-29 03:30"  # skipped
    assert summary_time(autumn, "02:30", config) - autumn == 2 * HOUR + 30 * MIN  # the first


def test_a_burst_is_said_once_per_clock_hour(household: Callable[..., Household]) -> None:
    start = local(2026, 11, 10)
    house = household('[quota]\nmonthly = "40 GB"\n[alerts]\nhourly_burst = "500 MB"\n', start)
    heavy = {local(2026, 11, 10, 20): 700 * MB, local(2026, 11, 10, 21): 450 * MB}
    house.live(start, start + DAY, lambda hour: heavy.get(hour, 10 * MB), checks=4)
    house.restart()
    house.live(start + DAY, start + DAY + 3 * HOUR, lambda hour: 10 * MB)
    assert [(clock_of(event.at), event.detail["text"]) for event in house.alerts("burst")] == [
        ("2026-11-10 20:45", "Heavy use: 525 MB in the hour from 20:00 (the alert is set at "
                             "500 MB an hour).")]


def test_a_burst_crossed_in_the_last_minutes_of_an_hour_is_said_after_it(
        household: Callable[..., Household]) -> None:
    start = local(2026, 11, 10, 20)
    house = household('[alerts]\nhourly_burst = "500 MB"\n', start)
    house.store.add([Delta(KEY, start, start + 55 * MIN, 450 * MB, 0)], {})
    house.now = start + 59 * MIN
    house.checker.check()
    house.store.add([Delta(KEY, start + 55 * MIN, start + HOUR, 100 * MB, 0)], {})
    house.now = start + HOUR + MIN
    house.checker.check()
    assert [(clock_of(event.at), event.detail["text"]) for event in house.alerts()] == [
        ("2026-11-10 21:01", "Heavy use: 550 MB in the hour from 20:00 (the alert is set at "
                             "500 MB an hour).")]


def test_the_daily_limit_once_a_day(household: Callable[..., Household]) -> None:
    start = local(2026, 11, 10)
    house = household('[quota]\ndaily = "2 GB"\n', start)
    house.live(start, start + 3 * DAY, lambda hour: 100 * MB)  # 2.4 GB a day
    assert [(clock_of(event.at), event.detail["text"])
            for event in house.alerts("daily_limit")] == [
        (f"2026-11-{day} 20:00", "Today's limit is used up: 2 GB of 2 GB.")
        for day in (10, 11, 12)]


class Evidence:
    """What the keeper's probe would find on the link, as the test says (nothing is sent)."""

    def __init__(self) -> None:
        self.up = True

    def check(self, now: int, probe_anyway: bool = False) -> LinkEvidence:
        return LinkEvidence(self.up, "ppp0", "received bytes" if self.up else "ppp0 is down")


def test_the_link_down_for_longer_than_the_setting_and_back_with_how_long(
        household: Callable[..., Household]) -> None:
    start = local(2026, 11, 10, 14)
    house = household(NOTIFY + 'link_down_after = "10m"\n[keeper]\nenabled = true\n'
                      'connect = ["true"]\ntargets = ["127.0.0.1:9"]\n', start)
    evidence = Evidence()
    keeper = Keeper(house.config, house.store, lambda: house.now, evidence)

    def minutes(count: int, up: bool) -> None:
        evidence.up = up
        for _ in range(count):
            keeper.check()
            house.checker.check()
            house.now += MIN

    minutes(5, up=True)
    minutes(4, up=False)  # a short outage: nothing said
    minutes(5, up=True)
    minutes(12, up=False)
    keeper = Keeper(house.config, house.store, lambda: house.now, evidence)
    house.restart()  # the collector restarts during the outage: the same outage goes on
    minutes(20, up=False)
    minutes(3, up=True)
    minutes(5, up=False)
    held = replace(KeeperState.from_json(house.store.get_meta(STATE_META)),
                   held=HELD_DISCONNECTED)  # what `traffic disconnect` does
    house.store.set_meta(STATE_META, held.to_json())
    minutes(30, up=False)  # down on purpose: no outage
    house.store.set_meta(STATE_META, replace(held, held="").to_json())
    minutes(12, up=False)  # `traffic connect` ended the hold: an outage from then on

    assert [(clock_of(event.at), event.detail["text"]) for event in house.alerts()] == [
        ("2026-11-10 14:24", "The link has been down since 14:14 (10 minutes)."),
        ("2026-11-10 14:46", "The link is back up since 14:46, after 32 minutes down."),
        ("2026-11-10 15:34", "The link has been down since 15:24 (10 minutes).")]
    assert sorted((d.rule, d.target) for d in house.store.pending_deliveries()) == [
        ("link_down", 1), ("link_down", 1), ("link_down", 2), ("link_down", 2), ("link_up", 1),
        ("link_up", 2)]


def test_a_new_public_ip_but_not_the_first_one_seen(
        household: Callable[..., Household]) -> None:
    start = local(2026, 11, 10, 9)
    house = household('[[sources]]\ntype = "hilink"\nname = "router"\n'
                      'url = "http://127.0.0.1:9"\n', start)

    def seen(address: str) -> None:
        house.sources = {"router": {"label": "router", "refused": False,
                                    "gauges": {"wan_ip": address}}}
        house.checker.check()
        house.now += 10 * MIN

    for address in ["198.51.100.2", "198.51.100.2", "203.0.113.7", "203.0.113.7",
                    "198.51.100.2"]:
        seen(address)
    house.restart()
    seen("198.51.100.2")
    assert [event.detail["text"] for event in house.alerts()] == [
        "The public IP address is now 203.0.113.7 (it was 198.51.100.2).",
        "The public IP address is now 198.51.100.2 (it was 203.0.113.7)."]


def test_addresses_that_are_not_public_raise_nothing_and_are_not_remembered(
        household: Callable[..., Household]) -> None:
    """Nor is a LAN address an earlier version remembered taken for the last public one."""
    start = local(2026, 11, 10, 9)
    house = household('[[sources]]\ntype = "hilink"\nname = "router"\n'
                      'url = "http://127.0.0.1:9"\n', start)
    house.store.set_meta("alerts.ip", json.dumps({"ip": "192.168.1.5", "since": start - DAY}))
    for address in ["198.51.100.2", "100.64.3.4", "100.127.255.1", "192.168.8.1", "10.0.0.1",
                    "172.16.5.5", "127.0.0.1", "169.254.1.1", "0.0.0.0", "fe80::1", "fd00::1",
                    "::1", "not an address", "198.51.100.2", "203.0.113.7"]:
        house.sources = {"router": {"label": "router", "gauges": {"wan_ip": address}}}
        house.checker.check()
        house.now += MIN
    assert [event.detail["text"] for event in house.alerts()] == [
        "The public IP address is now 203.0.113.7 (it was 198.51.100.2)."]


def test_the_box_s_own_loopback_is_no_public_address(tmp_path: Path) -> None:
    config = make_config(tmp_path, '[keeper]\ninterface = "lo"\n')
    store = open_site_store(config, create=True)
    checker = AlertChecker(config, store, lambda: local(2026, 11, 10),
                           lambda: ([], {}))
    assert interface_address("lo") == "127.0.0.1"
    facts = checker.facts(local(2026, 11, 10))
    assert (facts.public_ip, facts.router) == (None, None)
    store.close()


def checks_behind_a_router(tmp_path: str) -> None:
    """Run in a namespace whose ``pub0`` has a public address (see the test below): checks as
    a router's readings come and go, then with the router gone from the config; prints the
    alerts' texts and each check's public address as JSON."""
    folder = Path(tmp_path)
    sources = ('[[sources]]\ntype = "kernel"\ninterfaces = ["pub0"]\n[[sources]]\n'
               'type = "hilink"\nname = "router"\nurl = "http://127.0.0.1:9"\n')
    house = Household(folder, '[keeper]\ninterface = "pub0"\n' + sources,
                      local(2026, 11, 10, 9))
    kernel = {"label": "this box", "gauges": {}}
    seen = []
    for router in [{"wan_ip": "198.51.100.2"},
                   {},                                 # the call for it failed
                   None,                               # not read yet (a restart)
                   {"wan_ip": ""},                     # disconnected
                   {"connection": "connecting"},       # booting
                   {"wan_ip": "198.51.100.2"}]:
        if router is None:
            house.restart()
        house.sources = {"kernel": kernel} | (
            {} if router is None else {"router": {"label": "router", "gauges": router}})
        seen.append(house.checker.facts(house.now).public_ip)
        house.checker.check()
        house.now += MIN
    house.config = make_config(folder, 'timezone = "Europe/Stockholm"\n[keeper]\n'
                                       'interface = "pub0"\n[[sources]]\ntype = "kernel"\n'
                                       'interfaces = ["pub0"]\n')
    house.sources = {"kernel": kernel}
    house.restart().check()  # the router is no longer configured: the box's own address
    print(json.dumps({"seen": seen, "alerts": [e.detail["text"] for e in house.alerts()]}))
    house.store.close()


@pytest.mark.netns
def test_behind_a_router_a_reading_without_its_address_is_no_new_one(
        link: Link, tmp_path: Path) -> None:
    """The box's own interface has a public address here (a veth pair of its own in a network
    namespace), so only the router's remembered place keeps it from being taken."""
    sh("ip", "-n", link.near, "link", "add", "pub0", "type", "veth", "peer", "name", "pub1")
    sh("ip", "-n", link.near, "addr", "add", "203.0.113.9/24", "dev", "pub0")
    sh("ip", "-n", link.near, "link", "set", "pub0", "up")
    run = subprocess.run(link.in_near(
        sys.executable, "-c", "import sys\nfrom tests.test_alert_rules import "
        "checks_behind_a_router\nchecks_behind_a_router(sys.argv[1])", str(tmp_path)),
        cwd=Path(__file__).parents[1], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.splitlines()[-1])
    assert result["seen"] == ["198.51.100.2", None, None, None, None, "198.51.100.2"]
    assert result["alerts"] == [
        "The public IP address is now 203.0.113.9 (it was 198.51.100.2)."]


def test_a_device_problem_once_until_it_is_gone(household: Callable[..., Household]) -> None:
    start = local(2026, 11, 10, 9)
    house = household('site = "cabin"\n' + NOTIFY + '[[sources]]\ntype = "kernel"\n'
                      'interfaces = ["ppp0"]\n[[sources]]\ntype = "hilink"\nname = "router"\n'
                      'url = "http://127.0.0.1:9"\npassword = "router-pw-secret"\n', start)

    def router(refused: bool = False, **gauges: str) -> None:
        house.sources = {"kernel": {"label": "this box", "refused": False, "gauges": {}},
                         "router": {"label": "router", "refused": refused, "gauges": gauges}}
        house.checker.check()
        house.now += MIN

    router(sim="ready")
    router(refused=True)
    router(refused=True)
    house.restart()  # the refusal is remembered across the restart, and so is its alert
    router(refused=True)
    router(sim="PIN required")
    router(sim="PIN required")
    router()  # a poll that did not read the SIM's state says nothing new
    router(sim="ready")
    router(sim="PIN required")  # asked again later: a new problem
    router(sim="PUK required")

    assert [event.detail["text"] for event in house.alerts()] == [
        "cabin: The router refused the login. Fix sources[1].password; it is not asked again "
        "until then.",
        "cabin: The router's SIM card asks for its PIN: no data until it is entered.",
        "cabin: The router's SIM card asks for its PIN: no data until it is entered.",
        "cabin: The router's SIM card is locked and asks for its PUK: no data until it is "
        "entered."]
    assert all(event.detail["site"] == "cabin" for event in house.alerts())
    assert {(d.title, d.target) for d in house.store.pending_deliveries()} == {
        ("cabin: Login refused", 1), ("cabin: Login refused", 2),
        ("cabin: SIM card asks for its PIN", 1), ("cabin: SIM card asks for its PIN", 2),
        ("cabin: SIM card locked", 1), ("cabin: SIM card locked", 2)}


def test_durations_in_words() -> None:
    assert [in_words(s) for s in (0, 1, 59, 60, 61 * 60, 3 * 3600, 90_061, 2 * 86400)] == [
        "0 seconds", "1 second", "59 seconds", "1 minute", "1 hour 1 minute", "3 hours",
        "1 day 1 hour", "2 days"]


def test_a_long_site_name_is_cut_not_the_tweet(household: Callable[..., Household]) -> None:
    start = local(2026, 11, 8)
    site = "the-summer-cabin-by-the-lake-" * 6
    house = household(f'site = "{site}"\n[quota]\nmonthly = "1 GB"\nthresholds = [50]\n'
                      + NOTIFY, start)
    house.live(start, start + HOUR, lambda hour: 600 * MB)
    [delivery] = [d for d in house.store.pending_deliveries() if d.target == 0]
    shown = "the-summer-cabin-by-the-lake-…"
    assert delivery.title == f"{shown}: 50% of the limit used"
    assert delivery.body == (f"{shown}: 50% of the monthly limit is used: 600 MB of 1 GB, "
                             "23 days left. 17.4 MB a day keeps you inside.")
    assert len(delivery.title) + len(delivery.body) <= 280


@pytest.mark.parametrize(("settings", "rule"), [
    ('[quota]\nmonthly = "1 GB"\nthresholds = [50, 80]\n', "threshold"),
    ('[quota]\nmonthly = "40 GB"\ndaily = "300 MB"\n', "daily_limit"),
    ('[quota]\nmonthly = "40 GB"\n[alerts]\nhourly_burst = "100 MB"\n', "burst"),
])
def test_the_margin_a_check_leaves_is_exactly_the_bytes_that_make_the_next_alert_due(
        household: Callable[..., Household], settings: str, rule: str) -> None:
    """The collector checks again once it has counted the margin: one byte less raises
    nothing, the margin raises the rule."""
    start = local(2026, 11, 10, 14)
    house = household(settings + "[alerts]\nearly_warning = false\n" if "[alerts]" not in
                      settings else settings + "early_warning = false\n", start)
    house.pending = [Delta(KEY, start, start + MIN, 30 * MB, 7 * MB)]
    house.now = start + 2 * MIN
    house.checker.check()
    margin = house.checker.margin
    assert margin is not None and house.alerts(rule) == []
    house.pending.append(Delta(KEY, start + 2 * MIN, start + 3 * MIN, margin - 1, 0))
    house.now = start + 4 * MIN
    house.checker.check()
    assert house.alerts(rule) == [] and house.checker.margin == 1
    house.pending.append(Delta(KEY, start + 4 * MIN, start + 5 * MIN, 0, 1))
    house.now = start + 6 * MIN
    house.checker.check()
    assert len(house.alerts(rule)) == 1


def test_the_next_check_comes_when_a_rule_of_time_may_be_due(
        household: Callable[..., Household]) -> None:
    start = local(2026, 11, 10, 20, 50)
    house = household('[quota]\nmonthly = "40 GB"\nthresholds = [50]\n[alerts]\n'
                      'daily_summary = "21:00"\nearly_warning = false\n'
                      '[collector]\nsave_interval = "10m"\n', start)
    house.checker.check()
    assert clock_of(house.checker.next_at) == "2026-11-10 20:55"  # at most 5 minutes later
    house.now = local(2026, 11, 10, 20, 57)
    house.checker.check()
    assert clock_of(house.checker.next_at) == "2026-11-10 21:00"
    house.now = local(2026, 11, 10, 21, 0)
    house.checker.check()
    assert [clock_of(event.at) for event in house.alerts("daily_summary")] == [
        "2026-11-10 21:00"]
    assert clock_of(house.checker.next_at) == "2026-11-10 21:05"
    assert house.checker.margin == 20 * GB

"""Local-time buckets and billing periods, across DST changes and short months."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from traffic.periods import (
    billing_period,
    bucket_start,
    buckets,
    default_range,
    from_ms,
    next_bucket,
    parse_instant,
    to_ms,
)

TZ = ZoneInfo("Europe/Stockholm")


def local(*parts: int) -> int:
    return to_ms(datetime(*parts, tzinfo=TZ))


def hours(start: int, end: int) -> float:
    return (end - start) / 3_600_000


def test_autumn_dst_day_has_25_hours() -> None:
    start = bucket_start("day", local(2026, 10, 25, 12), TZ)
    end = next_bucket("day", start, TZ)
    assert (start, hours(start, end)) == (local(2026, 10, 25), 25)
    assert len(list(buckets("hour", start, end, TZ))) == 25


def test_spring_dst_day_has_23_hours() -> None:
    start = bucket_start("day", local(2026, 3, 29, 12), TZ)
    assert hours(start, next_bucket("day", start, TZ)) == 23
    labels = [from_ms(b, TZ).hour for b in buckets("hour", start, next_bucket("day", start, TZ),
                                                     TZ)]
    assert 2 not in labels and len(labels) == 23


def test_repeated_autumn_hour_is_two_buckets() -> None:
    first = local(2026, 10, 25, 2)  # 02:00 CEST
    second = first + 3_600_000      # 02:00 CET
    assert bucket_start("hour", first + 1_800_000, TZ) == first
    assert bucket_start("hour", second + 1_800_000, TZ) == second
    assert from_ms(second, TZ).hour == 2


def test_half_hour_zone_hours_start_on_the_local_hour() -> None:
    india = ZoneInfo("Asia/Kolkata")
    moment = to_ms(datetime(2026, 5, 1, 10, 40, tzinfo=india))
    assert from_ms(bucket_start("hour", moment, india), india).minute == 0
    assert from_ms(bucket_start("5min", moment, india), india).minute == 40


@pytest.mark.parametrize(("at", "billing_day", "start", "end"), [
    ((2027, 2, 15), 31, (2027, 1, 31), (2027, 2, 28)),
    ((2027, 3, 1), 31, (2027, 2, 28), (2027, 3, 31)),
    ((2028, 2, 29, 12), 31, (2028, 2, 29), (2028, 3, 31)),  # leap year
    ((2026, 11, 23), 8, (2026, 11, 8), (2026, 12, 8)),
    ((2026, 11, 7, 23, 59), 8, (2026, 10, 8), (2026, 11, 8)),
    ((2027, 1, 3), 8, (2026, 12, 8), (2027, 1, 8)),
    ((2026, 11, 1), 1, (2026, 11, 1), (2026, 12, 1)),
])
def test_billing_period(at, billing_day, start, end) -> None:
    assert billing_period(local(*at), billing_day, TZ) == (local(*start), local(*end))


def test_billing_period_across_dst_is_local_midnight_to_local_midnight() -> None:
    start, end = billing_period(local(2026, 11, 1), 8, TZ)
    assert (start, end) == (local(2026, 10, 8), local(2026, 11, 8))
    assert hours(start, end) == 31 * 24 + 1


def test_default_ranges() -> None:
    now = local(2026, 11, 23, 10, 7)
    assert default_range("day", now, TZ, 8) == (local(2026, 10, 8), local(2026, 12, 8))
    assert default_range("month", now, TZ, 8) == (local(2024, 12, 1), local(2026, 12, 1))
    start, end = default_range("hour", now, TZ, 8)
    assert end == local(2026, 11, 23, 11) and hours(start, end) == 7 * 24


def test_parse_instant() -> None:
    assert parse_instant("2026-11-08", TZ) == local(2026, 11, 8)
    assert parse_instant("2026-11-08T06:30", TZ) == local(2026, 11, 8, 6, 30)
    assert parse_instant("2026-11-08T06:30:00Z", TZ) == local(2026, 11, 8, 7, 30)
    assert parse_instant("1794096000000", TZ) == 1794096000000
    with pytest.raises(ValueError, match="neither epoch milliseconds nor an ISO 8601 date"):
        parse_instant("yesterday", TZ)


@pytest.mark.parametrize("zone", ["Europe/Stockholm", "America/New_York", "Pacific/Kiritimati"])
def test_the_first_and_last_dates_accepted_are_local(zone: str) -> None:
    tz = ZoneInfo(zone)
    assert parse_instant("1990-01-01", tz) == to_ms(datetime(1990, 1, 1, tzinfo=tz))
    assert parse_instant("2200-01-01", tz) == to_ms(datetime(2200, 1, 1, tzinfo=tz))
    for outside in ("1989-12-31T23:59", "2200-01-01T00:01"):
        with pytest.raises(ValueError, match="outside the years 1990 to 2200"):
            parse_instant(outside, tz)


@pytest.mark.parametrize("text", ["١٢٣", "²", "\uff12\uff10\uff12\uff16-11-08"])
def test_only_ascii_digits_make_an_instant(text: str) -> None:
    with pytest.raises(ValueError, match=r"\(digits 0-9 only\)$"):
        parse_instant(text, TZ)

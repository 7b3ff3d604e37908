"""Every range the schema allows is answered: only end given, end before start, too many
buckets; on the seeded store, numbers worked out by hand."""

from datetime import datetime

from tests.conftest import STOCKHOLM
from tests.web.conftest import FIVE_MIN, HOUR, NOW
from traffic.periods import DAY_MS, to_ms

GB = 10**9


def local(*date: int) -> int:
    return to_ms(datetime(*date, tzinfo=STOCKHOLM))


def test_the_earliest_end_alone_is_the_day_before_it(client) -> None:
    response = client.get("/api/v1/series?resolution=5min&end=631200000000")
    assert response.status_code == 200
    answer = response.get_json()
    assert (answer["start"], answer["end"]) == (631200000000 - DAY_MS, 631200000000)
    assert answer["start_iso"] == "1989-12-31T14:20:00+01:00"
    assert answer["points"] == [[631200000000 - DAY_MS + n * FIVE_MIN, 0, 0] for n in range(288)]
    assert answer["truncated"] is False


def test_end_alone_takes_the_default_span_before_it(client) -> None:
    """day: the billing period holding end's eve and the one before (billing day 8)."""
    answer = client.get("/api/v1/series?end=2026-10-08").get_json()
    assert (answer["start"], answer["end"]) == (local(2026, 8, 8), local(2026, 10, 8))
    assert len(answer["points"]) == 61
    assert answer["points"][-1] == [local(2026, 10, 7), 7 * GB, 1]  # the seeded 23:00


def test_end_alone_with_hours_takes_the_week_before(client) -> None:
    answer = client.get(f"/api/v1/series?resolution=hour&end={NOW}").get_json()
    assert (answer["start"], answer["end"]) == (NOW - 7 * DAY_MS, NOW)
    assert answer["points"][-3] == [NOW - 3 * HOUR, GB, GB // 10]  # 09:00 today


def test_a_range_ending_at_or_before_its_start_holds_nothing(client) -> None:
    for query in ("start=2026-11-02&end=2026-11-01", "start=2026-11-02&end=2026-11-02",
                  "start=2150-01-01"):
        response = client.get(f"/api/v1/series?{query}")
        assert response.status_code == 200, query
        answer = response.get_json()
        assert answer["points"] == [] and answer["truncated"] is False
        assert answer["start"] == answer["end"] == local(*map(int, query[6:16].split("-")))


def test_too_many_buckets_give_the_first_and_where_to_go_on(client) -> None:
    start = local(2020, 1, 1)
    first = client.get(f"/api/v1/series?resolution=5min&start={start}").get_json()
    assert first["truncated"] is True and first["start"] == start
    assert len(first["points"]) == 19_999 and first["end"] == start + 19_999 * FIVE_MIN
    rest = client.get(f"/api/v1/series?resolution=5min&start={first['end']}"
                      f"&end={first['end'] + HOUR}").get_json()
    assert rest["truncated"] is False and rest["points"][0][0] == first["end"]
    assert len(rest["points"]) == 12
    day = client.get("/api/v1/series?start=1990-06-01&end=2200-01-01").get_json()
    assert day["truncated"] is True and day["start"] == local(1990, 6, 1)
    assert day["end_iso"] == "2045-03-02T00:00:00+01:00" and len(day["points"]) == 19_998


def test_gauge_ranges_are_answered_alike(router_client) -> None:
    alone = router_client.get(f"/api/v1/series?gauge=sinr&end={NOW - 24 * HOUR}").get_json()
    assert (alone["start"], alone["end"]) == (NOW - 72 * HOUR, NOW - 24 * HOUR)
    assert alone["points"][0][0] == NOW - 48 * HOUR + FIVE_MIN  # the first one seeded
    backwards = router_client.get("/api/v1/series?gauge=sinr&start=2026-11-03&end=2026-11-02")
    assert backwards.status_code == 200
    assert backwards.get_json()["points"] == [] and backwards.get_json()["truncated"] is False
    long = router_client.get("/api/v1/series?gauge=rsrp&start=2020-01-01").get_json()
    assert long["truncated"] is True
    assert long["end"] - long["start"] == 19_999 * FIVE_MIN and long["points"] == []


def test_a_name_longer_than_any_kept_is_refused(client) -> None:
    response = client.get(f"/api/v1/series?iface={'x' * 101}")
    assert response.status_code == 400
    assert response.get_json()["detail"] == "iface: expected at most 100 characters, got 101"
    assert client.get(f"/api/v1/series?iface={'x' * 100}").status_code == 404

"""The JSON API on a seeded store, numbers checked against hand-computed values."""

from datetime import datetime

import pytest

from tests.conftest import STOCKHOLM
from tests.web.conftest import NOW
from traffic.periods import to_ms

GB = 10**9


def test_usage(client) -> None:
    response = client.get("/api/v1/usage")
    assert response.status_code == 200
    usage = response.get_json()
    start = to_ms(datetime(2026, 10, 8, tzinfo=STOCKHOLM))
    end = to_ms(datetime(2026, 11, 8, tzinfo=STOCKHOLM))
    assert (usage["period_start"], usage["period_end"]) == (start, end)
    assert end - start == (31 * 24 + 1) * 3_600_000  # the period holds the 25-hour day
    assert usage["period_start_iso"] == "2026-10-08T00:00:00+02:00"
    assert usage["period_end_iso"] == "2026-11-08T00:00:00+01:00"
    assert (usage["rx"], usage["tx"]) == (6 * GB, 6 * GB // 10)
    assert usage["total"] == 6_600_000_000 and usage["limit"] == 40 * GB
    assert usage["percent"] == 16.5
    assert usage["estimate"] == 6_600_000_000 * (end - start) // (NOW - start)
    assert (usage["today_rx"], usage["today_tx"], usage["daily_limit"]) == (GB, GB // 10, 2 * GB)
    days_left = (end - NOW) / 86_400_000
    assert usage["days_left"] == round(days_left, 2)
    assert usage["daily_budget"] == (40 * GB - 6_600_000_000) // 5  # today and 4 more days
    assert usage["sample_age_s"] == 4.0


def test_status(client) -> None:
    status = client.get("/api/v1/status").get_json()
    assert status["site"] == "home" and status["keys"] == ["kernel:ppp0"]
    assert status["last_sample_at"] == NOW - 4000 and status["sample_age_s"] == 4.0
    assert status["timezone"] == "Europe/Stockholm"


def test_unknown_api_path_is_json_404(client) -> None:
    response = client.get("/api/v1/nothing")
    assert response.status_code == 404
    assert response.get_json()["error"] == "Not Found"


def test_wrong_method_is_json_405_with_allow(client) -> None:
    response = client.post("/api/v1/usage")
    assert response.status_code == 405
    assert response.get_json()["error"] == "Method Not Allowed"
    assert "GET" in response.headers["Allow"]


def test_unopenable_store_is_json_503(tmp_path) -> None:
    from tests.conftest import make_config
    from web import create_app

    (tmp_path / "blocker").write_text("")
    config = make_config(tmp_path, **{"store__url": f"sqlite://{tmp_path}/blocker/traffic.db"})
    response = create_app(config).test_client().get("/api/v1/usage")
    assert response.status_code == 503
    assert response.get_json()["detail"].startswith("store.url: no store at ")


def test_a_secret_in_the_store_path_is_masked_in_the_503(tmp_path, caplog) -> None:
    from tests.conftest import make_config
    from web import create_app

    folder = tmp_path / "token=hunter2"
    config = make_config(tmp_path, **{"store__url": f"sqlite://{folder}/traffic.db"})
    client = create_app(config).test_client()
    answer, page = client.get("/api/v1/usage"), client.get("/")
    assert answer.status_code == page.status_code == 503
    assert answer.get_json()["detail"].startswith(f"store.url: no store at {tmp_path}/"
                                                  "token=******** yet (the collector creates")
    assert "hunter2" not in page.get_data(as_text=True) + caplog.text
    assert "token=********" in caplog.text


def test_series_hours_across_the_autumn_dst_night(client) -> None:
    day = to_ms(datetime(2026, 10, 25, tzinfo=STOCKHOLM))
    response = client.get("/api/v1/series?resolution=hour&start=2026-10-25&end=2026-10-26")
    series = response.get_json()
    assert series["start"] == day and series["start_iso"] == "2026-10-25T00:00:00+02:00"
    points = series["points"]
    assert len(points) == 25
    assert [p[0] for p in points] == [day + i * 3_600_000 for i in range(25)]
    assert points[2][1:] == [3 * GB, 3 * GB // 10]     # 02:00 summer time
    assert points[3][1:] == [2 * GB, 2 * GB // 10]     # 02:00 again, winter time
    assert sum(p[1] for p in points) == 5 * GB


def test_series_day_defaults_run_from_the_first_traffic_to_today(client) -> None:
    """The default range (the period before this one and this one) starts at the first day
    with traffic and stops at today: no 0 B for days before the store or still to come."""
    series = client.get("/api/v1/series").get_json()
    assert series["resolution"] == "day"
    assert series["start_iso"] == "2026-10-07T00:00:00+02:00"
    assert series["end_iso"] == "2026-11-04T00:00:00+01:00"
    assert len(series["points"]) == 28
    by_day = {p[0]: p[1] for p in series["points"]}
    assert by_day[to_ms(datetime(2026, 10, 7, tzinfo=STOCKHOLM))] == 7 * GB
    assert by_day[to_ms(datetime(2026, 10, 25, tzinfo=STOCKHOLM))] == 5 * GB
    assert sum(by_day.values()) == 13 * GB


def test_series_month_default_starts_at_the_first_month_with_traffic(client) -> None:
    series = client.get("/api/v1/series?resolution=month").get_json()
    october = to_ms(datetime(2026, 10, 1, tzinfo=STOCKHOLM))
    november = to_ms(datetime(2026, 11, 1, tzinfo=STOCKHOLM))
    assert series["points"] == [[october, 12 * GB, 500_000_001], [november, GB, GB // 10]]
    assert series["start_iso"] == "2026-10-01T00:00:00+02:00"
    assert series["end_iso"] == "2026-12-01T00:00:00+01:00"


def test_series_explicit_range_keeps_every_bucket(client) -> None:
    series = client.get("/api/v1/series?resolution=month&start=2026-01-01&end=2027-01-01"
                        ).get_json()
    assert len(series["points"]) == 12
    assert [p[1] for p in series["points"]][:9] == [0] * 9
    days = client.get("/api/v1/series?start=2026-10-08&end=2026-11-08").get_json()["points"]
    assert len(days) == 31 and days[-1][1:] == [0, 0]  # 7 Nov is still to come


def test_series_echoes_the_range_its_buckets_cover(client) -> None:
    series = client.get("/api/v1/series?resolution=month&start=2026-11-15&end=2026-11-20"
                        ).get_json()
    assert series["start_iso"] == "2026-11-01T00:00:00+01:00"
    assert series["end_iso"] == "2026-12-01T00:00:00+01:00"
    assert series["start"] == series["points"][0][0] == to_ms(
        datetime(2026, 11, 1, tzinfo=STOCKHOLM))
    hours = client.get("/api/v1/series?resolution=hour&start=2026-11-03T09:30"
                       "&end=2026-11-03T10:15").get_json()
    assert (hours["start_iso"], hours["end_iso"]) == ("2026-11-03T09:00:00+01:00",
                                                      "2026-11-03T11:00:00+01:00")
    assert len(hours["points"]) == 2


def test_series_month_and_epoch_ms_parameters(client) -> None:
    start = to_ms(datetime(2026, 10, 1, tzinfo=STOCKHOLM))
    end = to_ms(datetime(2026, 12, 1, tzinfo=STOCKHOLM))
    series = client.get(f"/api/v1/series?resolution=month&start={start}&end={end}").get_json()
    assert series["points"] == [[start, 12 * GB, 500_000_001],
                                [to_ms(datetime(2026, 11, 1, tzinfo=STOCKHOLM)), GB, GB // 10]]
    assert series["unit_system"] == "si"


def test_series_iface_filter(client) -> None:
    assert client.get("/api/v1/series?resolution=month&iface=ppp0").status_code == 200
    response = client.get("/api/v1/series?iface=wwan0")
    assert response.status_code == 404
    assert response.get_json() == {"error": "Not Found",
                                   "detail": "iface: no interface 'wwan0' (known: ppp0)"}


@pytest.mark.parametrize(("query", "detail"), [
    ("resolution=week", "resolution: expected one of 5min, hour, day, month, got 'week'"),
    ("start=yesterday", "start: 'yesterday' is neither epoch milliseconds nor an ISO 8601 date "
                        "such as 2026-11-08 or 2026-11-08T06:00"),
    ("start=99999999999999999", "start: '99999999999999999' is outside the years 1990 to 2200"),
    ("colour=red", "colour: unknown parameter (this endpoint takes: resolution, start, end, "
                   "iface, gauge, source, site)"),
    ("resolution=day&resolution=hour", "resolution: given twice"),
    ("=x", "=x: a parameter needs a name (this endpoint takes: resolution, start, end, iface, "
           "gauge, source, site)"),
    ("start=\u0661\u0662\u0663", "start: '\u0661\u0662\u0663' is neither epoch milliseconds "
                          "nor an ISO 8601 date such as 2026-11-08 or 2026-11-08T06:00 "
                          "(digits 0-9 only)"),
])
def test_series_bad_parameters_are_named(client, query: str, detail: str) -> None:
    response = client.get(f"/api/v1/series?{query}")
    assert response.status_code == 400
    assert response.get_json() == {"error": "Bad Request", "detail": detail}


def test_realtime_reads_the_collector_file_since(app, client) -> None:
    from traffic.runtime import realtime_path, write_atomically

    config = app.config["TRAFFIC"]
    assert client.get("/api/v1/realtime").get_json() == {"interval_s": 5.0, "updated": None,
                                                         "now": NOW, "points": []}
    points = [[NOW - 10_000, 1000.0, 10.0], [NOW - 5000, 2000.0, 20.0], [NOW, 3000.0, 30.0]]
    write_atomically(realtime_path(config), {"interval_s": 5.0, "updated": NOW, "points": points})
    assert client.get("/api/v1/realtime").get_json()["points"] == points
    newer = client.get(f"/api/v1/realtime?since={NOW - 5000}").get_json()
    assert newer == {"interval_s": 5.0, "updated": NOW, "now": NOW, "points": points[2:]}


def test_events_and_uptime(tmp_path) -> None:
    from tests.conftest import make_config
    from traffic.store import Event, open_site_store
    from web import create_app

    config = make_config(tmp_path, 'timezone = "Europe/Stockholm"\n[keeper]\nenabled = true\n')
    day = to_ms(datetime(2026, 11, 3, tzinfo=STOCKHOLM))
    store = open_site_store(config, create=True)
    store.add_events([
        Event(day + 3_600_000, "down", {"reason": "ppp0 is not there"}, 3_600_000),
        Event(day + 3_600_000, "attempt", {"step": 0, "ok": True}, 900),
        Event(day + 3_600_000 + 1_800_000, "up", {"reason": "received bytes"}, 1_800_000),
        Event(day + 10 * 3_600_000, "down", {}, 30_000_000),  # still down at noon
    ])
    store.close()
    client = create_app(config, clock=lambda: NOW).test_client()
    answer = client.get("/api/v1/events").get_json()
    assert [e["kind"] for e in answer["events"]] == ["down", "up", "attempt", "down"]
    assert answer["events"][1] == {"at": day + 5_400_000, "at_iso": "2026-11-03T01:30:00+01:00",
                                   "kind": "up", "duration_ms": 1_800_000,
                                   "detail": {"reason": "received bytes"}}
    assert len(answer["uptime"]) == 14
    today = answer["uptime"][-1]
    assert today["day"] == day and today["down_ms"] == 1_800_000 + 2 * 3_600_000  # to noon
    assert today["up_percent"] == round(100 * (12 - 2.5) / 12, 2)
    assert answer["uptime"][0] == {"day": answer["uptime"][0]["day"],
                                   "day_iso": "2026-10-21T00:00:00+02:00",
                                   "down_ms": None, "up_percent": None}  # before the keeper
    limited = client.get("/api/v1/events?limit=1&until=" + str(day + 10 * 3_600_000)).get_json()
    assert [e["kind"] for e in limited["events"]] == ["up"]
    assert client.get("/api/v1/events?limit=0").status_code == 400


def test_metrics(client) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain; version=0.0.4")
    lines = response.get_data(as_text=True).splitlines()
    assert ('traffic_bytes_total{site="home",source="kernel",iface="ppp0",direction="rx",'
            'billed="true"} 13000000000') in lines
    assert ('traffic_bytes_total{site="home",source="kernel",iface="ppp0",direction="tx",'
            'billed="true"} 600000001') in lines
    assert 'traffic_quota_limit_bytes{site="home"} 40000000000' in lines
    assert 'traffic_quota_used_bytes{site="home"} 6600000000' in lines
    assert 'traffic_last_sample_age_seconds{site="home"} 4.0' in lines
    assert "# TYPE traffic_bytes_total counter" in lines


def test_openapi_describes_every_endpoint(client) -> None:
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"] == "3.1.0"
    assert set(spec["paths"]) == {f"/api/v1/{name}" for name in (
        "usage", "status", "series", "realtime", "events", "sites", "openapi.json")} | {
        "/metrics"}
    [series] = spec["paths"]["/api/v1/series"]["get"]["parameters"]
    assert (series["in"], series["style"], series["explode"]) == ("query", "form", True)
    assert [set(group["properties"]) for group in series["schema"]["oneOf"]] == [
        {"resolution", "start", "end", "iface", "site"},
        {"gauge", "source", "resolution", "start", "end", "site"}]
    assert series["schema"]["oneOf"][0]["properties"]["site"]["enum"] == ["home"]


def test_usage_has_the_plain_sentence(client) -> None:
    assert client.get("/api/v1/usage").get_json()["summary"] == (
        "6.6 GB of 40 GB used, 5 days left: 6.7 GB a day keeps you inside.")


@pytest.mark.parametrize(("peer", "forwarded", "status"), [
    ("127.0.0.1", None, 200),
    ("192.168.8.20", None, 200),
    ("203.0.113.9", None, 403),
    ("127.0.0.1", "192.168.8.20", 200),          # nginx on the box, a phone on the home Wi-Fi
    ("127.0.0.1", "203.0.113.9", 403),           # nginx on the box, a stranger
    ("127.0.0.1", "10.0.0.1, 203.0.113.9", 403),  # the last hop is the one nginx saw
    ("203.0.113.9", "127.0.0.1", 403),           # an untrusted peer cannot claim to be local
    ("::ffff:192.168.8.20", None, 200),
])
def test_web_allow_and_trusted_proxies(client, peer, forwarded, status) -> None:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    response = client.get("/api/v1/status", headers=headers, environ_base={"REMOTE_ADDR": peer})
    assert response.status_code == status
    if status == 403:
        assert "is not in web.allow" in response.get_json()["detail"]




def test_uptime_of_a_keeper_that_never_checked_is_not_100_percent(tmp_path) -> None:
    from tests.conftest import make_config
    from tests.web.conftest import seed
    from web import create_app

    config = make_config(tmp_path, 'timezone = "Europe/Stockholm"\n[keeper]\nenabled = true\n')
    app = create_app(config, clock=lambda: NOW)
    seed(app)
    uptime = app.test_client().get("/api/v1/events").get_json()["uptime"]
    assert len(uptime) == 14
    assert {(day["down_ms"], day["up_percent"]) for day in uptime} == {(None, None)}


def test_uptime_counts_from_the_keepers_first_check(tmp_path) -> None:
    from tests.conftest import make_config
    from tests.web.conftest import seed
    from traffic.runtime import keeper_path, write_atomically
    from web import create_app

    config = make_config(tmp_path, 'timezone = "Europe/Stockholm"\n[keeper]\nenabled = true\n')
    first_check = to_ms(datetime(2026, 11, 2, 18, 0, tzinfo=STOCKHOLM))
    write_atomically(keeper_path(config), {
        "link": "up", "since": first_check, "held": "", "lock_until": 0, "step": 0,
        "step_fails": 0, "quota_override_until": 0, "checked_at": NOW - 1000,
        "interface": "ppp0", "evidence": "received bytes"})
    app = create_app(config, clock=lambda: NOW)
    seed(app)
    uptime = app.test_client().get("/api/v1/events").get_json()["uptime"]
    assert [day["up_percent"] for day in uptime] == [None] * 12 + [100.0, 100.0]
    assert uptime[-2]["day_iso"] == "2026-11-02T00:00:00+01:00"


@pytest.mark.parametrize(("path", "detail"), [
    ("/api/v1/events?limit=\u0661\u0662\u0663",
     "limit: expected a whole number from 1 to 1000, got '\u0661\u0662\u0663'"),
    ("/api/v1/events?since=\u0661\u0662\u0663",
     "since: '\u0661\u0662\u0663' is neither epoch milliseconds nor an ISO 8601 date such as "
     "2026-11-08 or 2026-11-08T06:00 (digits 0-9 only)"),
    ("/api/v1/events?limit=5&limit=6", "limit: given twice"),
    ("/metrics?x=1", "x: unknown parameter (this endpoint takes: site)"),
    ("/api/v1/openapi.json?x=1", "x: unknown parameter (this endpoint takes: none)"),
    ("/api/v1/usage?=", "=: a parameter needs a name (this endpoint takes: site)"),
    ("/api/v1/sites?site=home", "site: unknown parameter (this endpoint takes: none)"),
])
def test_every_endpoint_refuses_bad_parameters(client, path: str, detail: str) -> None:
    response = client.get(path)
    assert response.status_code == 400
    assert response.get_json() == {"error": "Bad Request", "detail": detail}


@pytest.mark.parametrize(("path", "detail"), [
    ("/api/v1/events?limit=" + "9" * 5000,
     "limit: expected a whole number from 1 to 1000, got 5000 digits"),
    ("/api/v1/events?limit=00001", "limit: expected a whole number from 1 to 1000, got 5 digits"),
    ("/api/v1/events?since=" + "9" * 5000,
     "since: expected epoch milliseconds of at most 19 digits, got 5000 digits"),
    ("/api/v1/events?until=" + "1" * 20,
     "until: expected epoch milliseconds of at most 19 digits, got 20 digits"),
    ("/api/v1/realtime?since=" + "7" * 4301,
     "since: expected epoch milliseconds of at most 19 digits, got 4301 digits"),
    ("/api/v1/series?start=" + "1" * 4000,
     "start: expected epoch milliseconds of at most 19 digits, got 4000 digits"),
    ("/api/v1/series?iface=", "iface: must not be empty (leave the parameter out instead)"),
    ("/api/v1/series?resolution=month&iface=",
     "iface: must not be empty (leave the parameter out instead)"),
    ("/api/v1/series?gauge=", "gauge: must not be empty (leave the parameter out instead)"),
    ("/api/v1/series?gauge=rsrp&source=",
     "source: must not be empty (leave the parameter out instead)"),
])
def test_oversized_numbers_and_empty_names_are_a_400_naming_the_parameter(
        client, path: str, detail: str) -> None:
    response = client.get(path)
    assert response.status_code == 400
    assert response.get_json() == {"error": "Bad Request", "detail": detail}


def test_the_longest_epoch_milliseconds_are_still_taken(client) -> None:
    response = client.get("/api/v1/events?since=0&until=" + "9" * 19)
    assert response.status_code == 200
    assert response.get_json() == client.get("/api/v1/events").get_json()


def _get_raw(client, path: str, **options):
    """``path`` as a server passes it on (the test client would read ``//x`` as a host)."""
    return client.get("/", headers={"Host": "evil.example"},
                      environ_overrides={"PATH_INFO": path}, **options)


@pytest.mark.parametrize("path", ["/api//v1/usage", "/api/v1//usage", "/metrics//",
                                  "/js//app.js", "/static//style.css", "//evil.example/rt"])
def test_doubled_slashes_are_a_404_not_a_redirect_to_the_clients_host(client, path: str
                                                                       ) -> None:
    response = _get_raw(client, path)
    assert response.status_code == 404
    assert "Location" not in response.headers
    assert "evil.example" not in response.get_data(as_text=True)


@pytest.mark.parametrize("path", ["//api/v1/usage", "//rt"])
def test_leading_doubled_slashes_are_answered_in_place(client, path: str) -> None:
    response = _get_raw(client, path)
    assert response.status_code == 200 and "Location" not in response.headers
    assert response.get_data() == client.get(path[1:]).get_data()


def test_the_redirect_to_the_dashboard_stays_on_this_site(client) -> None:
    response = _get_raw(client, "", query_string="a=1")
    assert response.status_code == 308
    assert response.headers["Location"] == "/?a=1"


def test_uptime_stops_where_the_keeper_stopped_watching(tmp_path) -> None:
    from tests.conftest import make_config
    from traffic.runtime import keeper_path, write_atomically
    from traffic.store import open_site_store
    from web import create_app

    config = make_config(tmp_path, 'timezone = "Europe/Stockholm"\n[keeper]\nenabled = true\n'
                                   'check_every = "30s"\n')
    open_site_store(config, create=True).close()
    stopped = NOW - 2 * 86_400_000  # the collector, and its keeper, stopped two days ago
    write_atomically(keeper_path(config), {
        "link": "up", "since": stopped - 86_400_000, "step": 0, "step_fails": 0,
        "lock_until": 0, "held": "", "quota_override_until": 0, "checked_at": stopped,
        "interface": "ppp0", "evidence": "received bytes"})
    uptime = create_app(config, clock=lambda: NOW).test_client().get(
        "/api/v1/events").get_json()["uptime"]
    assert [day["up_percent"] for day in uptime[-2:]] == [None, None]
    assert uptime[-3]["up_percent"] == 100.0 and uptime[-4]["up_percent"] == 100.0


def test_uptime_is_null_while_the_collector_was_stopped(tmp_path) -> None:
    from tests.conftest import make_config
    from traffic.runtime import keeper_path, write_atomically
    from traffic.store import Event, open_site_store
    from web import create_app

    config = make_config(tmp_path, 'timezone = "Europe/Stockholm"\n[keeper]\nenabled = true\n')
    day = 86_400_000
    restarted = NOW - 3_600_000
    store = open_site_store(config, create=True)
    store.add_events([Event(NOW - 6 * day, "up", {"first_check": True}),
                      Event(NOW - 5 * day, "stop", {}),
                      Event(restarted, "down", {"first_check": True})])
    store.close()
    write_atomically(keeper_path(config), {
        "link": "down", "since": restarted, "step": 0, "step_fails": 1, "lock_until": 0,
        "held": "", "quota_override_until": 0, "checked_at": NOW - 1000,
        "interface": "ppp0", "evidence": "ppp0 is not there"})
    uptime = create_app(config, clock=lambda: NOW).test_client().get(
        "/api/v1/events").get_json()["uptime"]
    assert [day["up_percent"] for day in uptime[-5:-1]] == [None] * 4
    assert uptime[-1]["up_percent"] == 0.0 and uptime[-1]["down_ms"] == 3_600_000
    assert uptime[-6]["up_percent"] == 100.0

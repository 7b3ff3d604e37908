"""Sources through the web app: their state and gauges in /api/v1/status, the counts beside the
bill in /api/v1/usage, a gauge's history in /api/v1/series, /metrics, and the dashboard's HTML.
The store and the collector's sources document are written as the collector writes them."""

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.published import publish_sources
from tests.web.conftest import (
    FIVE_MIN,
    GAP,
    HOUR,
    NOW,
    ROUTER_GAUGES,
    element_text,
    publish,
    router_config,
    rsrp_at,
    seed,
    sinr_at,
)
from traffic.config import Config
from traffic.runtime import realtime_path
from web import create_app

GB = 10**9
MB = 10**6


def test_status_gives_each_source_its_state_gauges_and_signal_word(router_client) -> None:
    sources = router_client.get("/api/v1/status").get_json()["sources"]
    assert list(sources) == ["kernel", "router"]
    assert sources["kernel"] == {
        "state": "up", "label": "this box", "type": "kernel", "billed": True,
        "read_at": NOW - 4000, "read_at_iso": "2026-11-03T11:59:56+01:00",
        "failing_since": None, "failing_since_iso": None, "error": "", "refused": False,
        "setting": None, "gauges": {}, "quality": None}
    router = sources["router"]
    assert (router["state"], router["label"], router["type"], router["billed"]) == (
        "up", "router", "hilink", False)
    assert router["gauges"] == ROUTER_GAUGES
    assert router["quality"] == "fair"  # SINR 14.5 is good, RSRP -92 only fair: the worse


def test_status_of_a_router_that_stopped_answering(router_app: Flask,
                                                   router_client: FlaskClient) -> None:
    publish(router_app.config["TRAFFIC"], failing_since=NOW - 1_080_000,
            error="http://192.168.8.1/: timed out")
    router = router_client.get("/api/v1/status").get_json()["sources"]["router"]
    assert router["state"] == "down" and router["refused"] is False
    assert router["failing_since_iso"] == "2026-11-03T11:42:00+01:00"
    assert router["error"] == "http://192.168.8.1/: timed out"
    assert router["setting"] is None


def test_status_of_a_router_that_refused_the_login(router_app: Flask,
                                                   router_client: FlaskClient) -> None:
    publish(router_app.config["TRAFFIC"], failing_since=NOW - 60_000, refused=True,
            error="login refused: wrong user name or password (108006)")
    router = router_client.get("/api/v1/status").get_json()["sources"]["router"]
    assert router["state"] == "refused"
    assert router["setting"] == "sources[1].password_file"  # the table reads its file


def test_a_router_not_read_for_three_polls_and_a_minute_is_unknown(
        router_app: Flask, router_client: FlaskClient) -> None:
    """A stopped or hung collector's last word is not shown as current: no panel values, no
    router month beside the bill."""
    publish(router_app.config["TRAFFIC"], read_at=NOW - 91_000, interval_s=10)
    router = router_client.get("/api/v1/status").get_json()["sources"]["router"]
    assert router["state"] == "unknown" and router["gauges"] == {}
    beside = router_client.get("/api/v1/usage").get_json()["beside"]
    assert [item["what"] for item in beside] == ["counter"]
    publish(router_app.config["TRAFFIC"], read_at=NOW - 89_000, interval_s=10)
    assert router_client.get("/api/v1/status").get_json()["sources"]["router"]["state"] == "up"


def test_a_source_the_collector_has_not_read_is_unknown(tmp_path) -> None:
    from tests.web.conftest import router_config, seed
    from web import create_app

    app = create_app(router_config(tmp_path), clock=lambda: NOW)
    seed(app)
    sources = app.test_client().get("/api/v1/status").get_json()["sources"]
    assert {name: (entry["state"], entry["label"]) for name, entry in sources.items()} == {
        "kernel": ("unknown", "kernel"), "router": ("unknown", "router")}


def test_usage_counts_the_bill_only_and_shows_the_router_beside_it(router_client) -> None:
    usage = router_client.get("/api/v1/usage").get_json()
    assert (usage["rx"], usage["tx"]) == (6 * GB, 600 * MB)  # ppp0 alone, the billed source
    assert usage["beside"] == [
        {"source": "router", "label": "router", "what": "counter", "rx": 6_050 * MB,
         "tx": 650 * MB, "total": 6_700 * MB, "difference": 100 * MB},
        {"source": "router", "label": "router", "what": "router month", "rx": 7 * GB,
         "tx": 800 * MB, "total": 7_800 * MB, "difference": 1_200 * MB},
    ]


def test_gauge_series_defaults_to_the_last_48_hours(router_client) -> None:
    answer = router_client.get("/api/v1/series?gauge=rsrp").get_json()
    end = NOW + FIVE_MIN  # the end of the 5 minutes holding now
    assert (answer["start"], answer["end"]) == (end - 48 * HOUR, end)
    assert answer["start_iso"] == "2026-11-01T12:05:00+01:00"
    assert (answer["resolution"], answer["gauge"], answer["unit"]) == ("5min", "rsrp", "dBm")
    assert (answer["source"], answer["key"]) == ("router", "router:wan")  # not "old"
    buckets = [bucket for bucket in range(end - 48 * HOUR, end, FIVE_MIN)
               if not GAP[0] <= bucket < GAP[1]]
    assert answer["points"] == [[bucket, rsrp_at(bucket)] for bucket in buckets]
    assert len(answer["points"]) == 576 - 12  # the hour without an answer is left out
    sinr = router_client.get("/api/v1/series?gauge=sinr&resolution=5min").get_json()
    assert sinr["unit"] == "dB" and sinr["points"][-1] == [NOW, sinr_at(NOW)]


def test_gauge_series_of_a_range_a_source_and_a_text(router_client) -> None:
    answer = router_client.get(f"/api/v1/series?gauge=sinr&start={NOW - HOUR + 1}"
                               f"&end={NOW}").get_json()
    assert answer["start"] == NOW - HOUR  # from the start of the 5 minutes holding start
    assert [point[0] for point in answer["points"]] == list(range(NOW - HOUR, NOW, FIVE_MIN))
    old = router_client.get("/api/v1/series?gauge=rsrp&source=old").get_json()
    assert old["key"] == "old:wan" and old["points"] == [[NOW - 600_000, -70.0]]
    operator = router_client.get("/api/v1/series?gauge=operator").get_json()
    assert operator["unit"] is None and operator["points"] == [[NOW - FIVE_MIN, "Telia"]]


@pytest.mark.parametrize(("query", "detail"), [
    ("gauge=rsrp&resolution=hour",
     "resolution: a gauge is kept per 5 minutes: expected 5min or none, got 'hour'"),
    ("gauge=rsrp&resolution=week",
     "resolution: expected one of 5min, hour, day, month, got 'week'"),
    ("source=router", "source: goes with gauge (the source whose gauge to give)"),
    ("gauge=rsrp&iface=ppp0", "iface: goes with counters, not with gauge"),
    ("gauge=rsrp&gauge=sinr", "gauge: given twice"),
])
def test_gauge_series_bad_parameters_are_named(router_client, query: str, detail: str) -> None:
    response = router_client.get(f"/api/v1/series?{query}")
    assert response.status_code == 400
    assert response.get_json() == {"error": "Bad Request", "detail": detail}


@pytest.mark.parametrize(("query", "detail"), [
    ("gauge=rsrq", "gauge: no gauge 'rsrq' (known: network_type, operator, rsrp, sinr)"),
    ("gauge=rsrp&source=modem", "source: no gauge 'rsrp' from 'modem' (sources with it: "
                                "router, old)"),
])
def test_gauge_not_stored_is_a_404_naming_those_stored(router_client, query: str, detail: str
                                                       ) -> None:
    response = router_client.get(f"/api/v1/series?{query}")
    assert response.status_code == 404
    assert response.get_json() == {"error": "Not Found", "detail": detail}


def test_no_gauge_stored_yet(client) -> None:
    response = client.get("/api/v1/series?gauge=rsrp")
    assert response.status_code == 404
    assert response.get_json()["detail"] == "gauge: no gauge 'rsrp' (known: none yet)"


def test_metrics_label_counters_by_source_and_give_the_router(router_client) -> None:
    lines = router_client.get("/metrics").get_data(as_text=True).splitlines()
    for line in ('traffic_bytes_total{site="home",source="kernel",iface="ppp0",direction="rx",'
                 'billed="true"} 13000000000',
                 'traffic_bytes_total{site="home",source="router",iface="wan",direction="rx",'
                 'billed="false"} 6050000000',
                 'traffic_source_up{site="home",source="kernel"} 1',
                 'traffic_source_up{site="home",source="router"} 1',
                 'traffic_signal_rsrp_dbm{site="home",source="router"} -92',
                 'traffic_signal_sinr_db{site="home",source="router"} 14.5',
                 'traffic_signal_rsrq_db{site="home",source="router"} -11',
                 'traffic_signal_rssi_dbm{site="home",source="router"} -65',
                 'traffic_router_month_bytes{site="home",source="router",direction="tx"} '
                 "800000000",
                 'traffic_quota_used_bytes{site="home"} 6600000000',
                 "# TYPE traffic_signal_rsrp_dbm gauge"):
        assert line in lines
    assert 'traffic_source_info{site="home",source="kernel",type="kernel",label="this box"} 1' \
        in lines
    info = next(line for line in lines if line.startswith('traffic_source_info{site="home",'
                                                          'source="router"'))
    assert info == ('traffic_source_info{site="home",source="router",type="hilink",'
                    'label="router",operator="Telia",network_type="LTE",connection="connected",'
                    'sim="ready",roaming="no",quality="fair"} 1')


def test_metrics_of_a_router_not_answering_leave_out_its_stale_gauges(
        router_app: Flask, router_client: FlaskClient) -> None:
    publish(router_app.config["TRAFFIC"], failing_since=NOW - 60_000, error="timed out")
    text = router_client.get("/metrics").get_data(as_text=True)
    assert 'traffic_source_up{site="home",source="router"} 0\n' in text
    assert "traffic_signal_rsrp_dbm{" not in text
    assert 'traffic_source_info{site="home",source="router"' not in text


def test_dashboard_shows_the_router_its_signal_word_and_the_comparisons(router_client) -> None:
    html = router_client.get("/").get_data(as_text=True)
    assert element_text(html, "compare") == (
        "The router counted 6.70 GB, this box 6.60 GB (0.10 GB apart). "
        "The router's own month: 7.80 GB, this box 6.60 GB (1.20 GB apart).")
    assert element_text(html, "routers") == ("The router Operator Telia Network LTE Signal fair "
                                      "RSRP -92 dBm, SINR 14.5 dB")
    assert 'class="quality quality-fair"' in html
    assert element_text(html, "notices") == ""
    assert 'id="chart-signal" data-source="router" data-gauges="rsrp sinr"' in html
    assert 'id="table-signal"' in html and "Signal of the router, the last 48 hours" in html
    assert 'id="event-list"' in html  # the router's outages are told, keeper or not


def test_dashboard_tells_the_family_the_router_is_not_answering(
        router_app: Flask, router_client: FlaskClient) -> None:
    publish(router_app.config["TRAFFIC"], failing_since=NOW - 1_080_000,
            error="http://192.168.8.1/: timed out")
    html = router_client.get("/").get_data(as_text=True)
    assert element_text(html, "notices") == ("The router is not answering since 3 Nov 11:42. "
                                      "http://192.168.8.1/: timed out")
    assert element_text(html, "routers") == ""  # its last signal would be stale


def test_dashboard_tells_the_family_the_router_refused_the_login(
        router_app: Flask, router_client: FlaskClient) -> None:
    publish(router_app.config["TRAFFIC"], failing_since=NOW - 60_000, refused=True,
            error="login refused (108006)")
    html = router_client.get("/").get_data(as_text=True)
    assert element_text(html, "notices") == (
        "The router does not let the box log in: the password the box has for it is wrong. "
        "Check sources[1].password_file; no more logins until the settings change.")


def test_dashboard_without_a_router_has_no_router_parts(client) -> None:
    html = client.get("/").get_data(as_text=True)
    assert "chart-signal" not in html and 'id="event-list"' not in html
    assert element_text(html, "compare") == "" and element_text(html, "routers") == ""


MODEM_TOML = ('timezone = "Europe/Stockholm"\n[quota]\nmonthly = "40 GB"\nbilling_day = 8\n'
              '[[sources]]\ntype = "kernel"\ninterfaces = ["ppp0"]\n'
              '[[sources]]\ntype = "modem"\npin_file = "/etc/traffic/sim-pin"\n')


def publish_modem(config: Config, **modem: object) -> None:
    publish_sources(realtime_path(config), NOW, {
        "kernel": {"type": "kernel", "label": "this box", "billed": True, "read_at": NOW - 4000,
                   "failing_since": None, "error": "", "refused": False, "gauges": {}},
        "modem": {"type": "modem", "label": "modem", "billed": False, "read_at": NOW - 2000,
                  "failing_since": None, "error": "", "refused": False, **modem}})


def test_dashboard_shows_the_modem_its_signal_and_registration(tmp_path: Path) -> None:
    config = router_config(tmp_path, MODEM_TOML)
    application = create_app(config, clock=lambda: NOW)
    seed(application)
    publish_modem(config, gauges={"sim": "ready", "rssi": -85.0, "registration": "searching",
                                  "operator": "Telia", "network_type": "LTE"})
    html = application.test_client().get("/").get_data(as_text=True)
    assert element_text(html, "routers") == ("The modem Operator Telia Network LTE Registration "
                                      "searching Signal fair RSSI -85 dBm")
    metrics = application.test_client().get("/metrics").get_data(as_text=True)
    assert ('traffic_source_info{site="home",source="modem",type="modem",label="modem",'
            'operator="Telia",network_type="LTE",registration="searching",sim="ready",'
            'quality="fair"} 1') in metrics
    assert 'traffic_signal_rssi_dbm{site="home",source="modem"} -85' in metrics


def test_dashboard_tells_the_family_the_modems_pin_was_refused(tmp_path: Path) -> None:
    config = router_config(tmp_path, MODEM_TOML)
    application = create_app(config, clock=lambda: NOW)
    seed(application)
    publish_modem(config, failing_since=NOW - 60_000, refused=True, gauges={},
                  error="the SIM refused the PIN of sources 'modem' (2 attempts left)")
    html = application.test_client().get("/").get_data(as_text=True)
    assert element_text(html, "notices") == (
        "The modem's SIM card refused its PIN: the PIN the box has for it is wrong. "
        "Check sources[1].pin_file; it is not sent again until the settings change.")

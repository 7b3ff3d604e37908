"""The JSON API on a seeded store, numbers checked against hand-computed values."""

from datetime import datetime

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
    assert usage["daily_budget"] == int((40 * GB - 6_600_000_000) / days_left)
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
    assert response.get_json()["detail"].startswith("store.url: cannot open")

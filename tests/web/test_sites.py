"""Two sites in one store: ``?site=`` on the API and the pages, the overview, ``/metrics``.

The web app's config is the home site's (Stockholm, 40 GB, billing day 8); the cabin's
collector published its own settings (New York, 10 GB, billing day 20), and every read of the
cabin follows them.
"""

import re
from datetime import datetime
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.test_sites import NEW_YORK, cabin_config
from tests.test_sites import seed_cabin as write_cabin
from tests.web.conftest import NOW
from traffic.periods import billing_period, to_ms

GB = 10**9


def seed_cabin(app: Flask, tmp_path: Path, publish: bool = True) -> None:
    """The cabin's collector's counts (and settings) in the web app's store."""
    write_cabin(cabin_config(tmp_path, app.config["TRAFFIC"].store.url), publish)


@pytest.fixture
def two_sites(app: Flask, tmp_path: Path) -> FlaskClient:
    seed_cabin(app, tmp_path)
    return app.test_client()


def test_each_site_reads_its_own_totals_in_its_own_period(two_sites: FlaskClient) -> None:
    cabin = two_sites.get("/api/v1/usage?site=cabin").get_json()
    start, end = billing_period(NOW, 20, NEW_YORK)
    assert (cabin["period_start"], cabin["period_end"]) == (start, end)
    assert cabin["period_start_iso"] == "2026-10-20T00:00:00-04:00"
    assert (cabin["rx"], cabin["tx"], cabin["limit"]) == (3 * GB, 0, 10 * GB)
    assert cabin["daily_limit"] == 0 and cabin["sample_age_s"] == 9.0
    home = two_sites.get("/api/v1/usage").get_json()
    assert (home["rx"], home["limit"]) == (6 * GB, 40 * GB)
    assert two_sites.get("/api/v1/usage?site=home").get_json() == home
    status = two_sites.get("/api/v1/status?site=cabin").get_json()
    assert (status["site"], status["timezone"]) == ("cabin", "America/New_York")
    assert status["keys"] == ["kernel:wwan0"] and list(status["sources"]) == ["kernel"]


def test_a_sites_days_are_its_own_local_days(two_sites: FlaskClient) -> None:
    """23:30 on 1 Nov in New York is 2 Nov in Stockholm: the cabin's day is 1 Nov (the
    default range is this period and the one before, which holds 19 Oct)."""
    series = two_sites.get("/api/v1/series?site=cabin&resolution=day").get_json()
    used = [(bucket, rx) for bucket, rx, _ in series["points"] if rx]
    assert used == [(to_ms(datetime(2026, 10, 19, tzinfo=NEW_YORK)), GB),
                    (to_ms(datetime(2026, 11, 1, tzinfo=NEW_YORK)), 3 * GB)]


def test_an_unknown_site_is_a_400_listing_the_known_ones(two_sites: FlaskClient) -> None:
    for path in ("/api/v1/usage", "/api/v1/series", "/api/v1/realtime", "/api/v1/events",
                 "/api/v1/status", "/metrics"):
        response = two_sites.get(f"{path}?site=nowhere")
        assert response.status_code == 400, path
        assert response.get_json() == {
            "error": "Bad Request",
            "detail": "site: no site 'nowhere' in the store (known: cabin, home)"}
    page = two_sites.get("/rt?site=nowhere")
    assert page.status_code == 400 and page.mimetype == "text/html"
    assert "no site &#39;nowhere&#39; in the store (known: cabin, home)" in page.get_data(
        as_text=True)
    bad = two_sites.get("/api/v1/usage?site=../etc")
    assert bad.status_code == 400
    assert bad.get_json()["detail"].startswith("site: expected letters, digits, '.', '_' or '-'")


def test_the_overview_lists_every_site_against_its_own_limit(two_sites: FlaskClient) -> None:
    answer = two_sites.get("/api/v1/sites").get_json()
    assert answer["default"] == "home"
    by_site = {item["site"]: item for item in answer["sites"]}
    assert list(by_site) == ["cabin", "home"]
    assert (by_site["cabin"]["total"], by_site["cabin"]["limit"]) == (3 * GB, 10 * GB)
    assert by_site["cabin"]["percent"] == 30.0 and by_site["cabin"]["total_text"] == "3 GB"
    assert by_site["cabin"]["timezone"] == "America/New_York"
    assert (by_site["home"]["total"], by_site["home"]["percent"]) == (6_600_000_000, 16.5)
    assert by_site["home"]["last_sample_at"] == NOW - 4000
    page = two_sites.get("/sites").get_data(as_text=True)
    text = " ".join(re.sub(r"<[^>]+>", " ", page).split())
    assert ("cabin 30.0% 3 GB of 10 GB used (30.0%) Period 20 Oct to 19 Nov "
            "(America/New_York). Last reading 9s ago.") in text
    assert ("home 16.5% 6.6 GB of 40 GB used (16.5%) Period 8 Oct to 7 Nov "
            "(Europe/Stockholm). Last reading 4s ago.") in text
    assert text.startswith("Every site Traffic This month")
    assert 'href="/?site=cabin"' in page


def test_pages_have_a_picker_that_keeps_the_site(two_sites: FlaskClient) -> None:
    page = two_sites.get("/?site=cabin").get_data(as_text=True)
    assert '<option selected>cabin</option>' in page and "<option>home</option>" in page
    assert 'data-site="cabin"' in page and 'data-timezone="America/New_York"' in page
    assert 'href="/rt?site=cabin"' in page and 'href="/sites"' in page
    assert "3 GB of 10 GB used" in page
    realtime = two_sites.get("/rt?site=cabin").get_data(as_text=True)
    assert 'action="/rt"' in realtime and 'href="/?site=cabin"' in realtime


def test_the_openapi_document_names_the_stores_sites(two_sites: FlaskClient) -> None:
    spec = two_sites.get("/api/v1/openapi.json").get_json()
    for path in ("/api/v1/usage", "/api/v1/status", "/api/v1/realtime", "/api/v1/events",
                 "/metrics"):
        [site] = [item for item in spec["paths"][path]["get"]["parameters"]
                  if item["name"] == "site"]
        assert site["schema"] == {"enum": ["cabin", "home"]}, path


def test_one_site_shows_no_picker(client: FlaskClient) -> None:
    page = client.get("/").get_data(as_text=True)
    assert "site-picker" not in page and "data-site=" not in page and "/sites" not in page


def test_metrics_label_every_site(two_sites: FlaskClient) -> None:
    lines = two_sites.get("/metrics").get_data(as_text=True).splitlines()
    assert 'traffic_quota_limit_bytes{site="home"} 40000000000' in lines
    assert 'traffic_quota_limit_bytes{site="cabin"} 10000000000' in lines
    assert 'traffic_quota_used_bytes{site="cabin"} 3000000000' in lines
    assert ('traffic_bytes_total{site="cabin",source="kernel",iface="wwan0",direction="rx",'
            'billed="true"} 4000000000') in lines
    helps = [line for line in lines if line.startswith("# HELP ")]
    assert len(helps) == len(set(helps))  # each family once, its samples together
    families = [line.split("{")[0] for line in lines if not line.startswith("#")]
    assert [name for index, name in enumerate(families)
            if name in families[:index] and families[index - 1] != name] == []
    only = two_sites.get("/metrics?site=cabin").get_data(as_text=True)
    assert 'site="cabin"' in only and 'site="home"' not in only


def test_without_its_settings_a_site_is_read_with_the_local_config(
        app: Flask, tmp_path: Path) -> None:
    """No settings published (the RAM disk was wiped): the web app's own time zone and limit
    stand in, and the site is still known from its counts."""
    seed_cabin(app, tmp_path, publish=False)
    cabin = app.test_client().get("/api/v1/usage?site=cabin").get_json()
    assert cabin["limit"] == 40 * GB and cabin["period_start_iso"] == "2026-10-08T00:00:00+02:00"
    assert cabin["rx"] == 4 * GB  # 19 Oct is inside the period of 8 Oct

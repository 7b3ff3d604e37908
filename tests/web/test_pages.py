"""The HTML pages and the files they load, through the Flask test client."""

import re
from pathlib import Path

from flask.testing import FlaskClient

from tests.conftest import make_config
from web import create_app


def text_of(html: str) -> str:
    """The page as a person reads it: tags dropped, spaces folded."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split()).replace(" .", ".")


def test_pages_carry_security_headers_and_no_inline_script(client: FlaskClient) -> None:
    for path in ("/", "/rt"):
        response = client.get(path)
        assert response.status_code == 200
        csp = response.headers["Content-Security-Policy"]
        script_src = csp.split("script-src ")[1].split(";")[0]
        assert script_src == "'self'"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "<script>" not in response.get_data(as_text=True)


def test_history_page_names_the_periods_last_day(client: FlaskClient) -> None:
    """The period 8 Oct .. 8 Nov (exclusive) ends with 7 Nov; the estimate is for then too."""
    html = client.get("/").get_data(as_text=True)
    text = text_of(html)
    assert "6.6 GB of 40 GB used, 5 days left: 6.7 GB a day keeps you inside." in text
    assert "Period 8 Oct to 7 Nov. Last reading 4s ago." in text
    assert "Expected by 7 Nov" in text
    assert '<time id="period-last" datetime="2026-11-07T00:00:00+01:00"' in html


def _unopenable(tmp_path: Path, store: str) -> FlaskClient:
    config = make_config(tmp_path, **{"store__url": f"sqlite://{tmp_path}/{store}"})
    return create_app(config).test_client()


def test_a_missing_store_is_a_page_for_the_family(tmp_path: Path) -> None:
    client = _unopenable(tmp_path, "traffic.db")
    assert client.get("/rt").status_code == 200  # it shows the collector's file, not the store
    response = client.get("/")
    assert response.status_code == 503
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "No readings yet: is the collector running?" in html
    assert f"store.url: no store at {tmp_path}/traffic.db yet" in html
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert "<script" not in html
    assert 'href="/static/traffic.css?v=' in html


def test_a_broken_store_says_so_and_why(tmp_path: Path) -> None:
    (tmp_path / "traffic.db").write_bytes(b"not a database, " * 512)
    response = _unopenable(tmp_path, "traffic.db").get("/")
    assert response.status_code == 503 and response.mimetype == "text/html"
    text = text_of(response.get_data(as_text=True))
    assert "The numbers cannot be read right now." in text
    assert f"store.url: cannot open {tmp_path}/traffic.db" in text


def test_api_errors_stay_json(tmp_path: Path) -> None:
    client = _unopenable(tmp_path, "traffic.db")
    for path in ("/api/v1/usage", "/metrics"):
        response = client.get(path)
        assert response.status_code == 503
        assert response.get_json()["error"] == "Store Unavailable"


def test_an_unknown_page_is_a_page(client: FlaskClient) -> None:
    response = client.get("/nothing")
    assert response.status_code == 404 and response.mimetype == "text/html"
    assert "There is no such page here." in response.get_data(as_text=True)
    assert client.get("/js/nothing.js").get_json()["error"] == "Not Found"


def test_a_refused_browser_gets_a_page_without_the_site(client: FlaskClient) -> None:
    response = client.get("/", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert response.status_code == 403 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "203.0.113.9 is not in web.allow" in html
    assert "home" not in html


def test_only_the_current_version_of_a_file_is_kept_for_a_year(client: FlaskClient) -> None:
    html = client.get("/").get_data(as_text=True)
    urls = re.findall(r'(?:src|href)="(/(?:js|static)/[^"]+)"', html)
    assert len(urls) == 4
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        path = url.split("?")[0]
        for other in (path, path + "?v=0123456789ab"):
            assert client.get(other).headers["Cache-Control"] == "no-cache"


def test_file_urls_do_not_reach_outside_their_folders(client: FlaskClient) -> None:
    for path in ("/js/../web/api.py", "/static/../api.py", "/js/%2e%2e/pyproject.toml.js"):
        assert client.get(path).status_code == 404

"""schemathesis against our own openapi.json, every check: no 5xx, every answer fits the schema,
every request the schema allows is answered 2xx and every one it does not is refused."""

import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.web.conftest import NOW, router_config, seed, seed_alerts, seed_router
from web import create_app


def _app():
    import tempfile

    directory = Path(tempfile.mkdtemp(prefix="traffic-schema-"))
    config = router_config(directory)  # a router beside the box: sources, gauges, beside
    application = create_app(config, clock=lambda: NOW)
    seed(application)
    seed_router(config)
    seed_alerts(config)  # the events' answer holds every alert kind
    wsgi = application.wsgi_app

    def from_loopback(environ, start_response):  # a WSGI test client has no peer address
        environ.setdefault("REMOTE_ADDR", "127.0.0.1")
        return wsgi(environ, start_response)

    application.wsgi_app = from_loopback
    return application


app = _app()
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


OPERATIONS = {operation.label: operation
              for operation in (result.ok() for result in schema.get_all_operations())}
"""Each operation of the API by its label (``GET /api/v1/usage``). Parametrized here rather
than with ``schema.parametrize()``, whose items all share one node id: pytest-xdist hands tests
to its workers by node id, and would run one operation and drop the others."""


@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_api_conforms_to_its_schema(label: str) -> None:
    @given(case=OPERATIONS[label].as_strategy())
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    def conforms(case) -> None:
        case.call_and_validate()

    conforms()


def _time_strings(branch: dict) -> st.SearchStrategy[str]:
    """Strings of one ``oneOf`` branch of a time parameter: its format, then its pattern."""
    offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
    formats = {
        None: st.from_regex(branch.get("pattern", "^[0-9]+$"), fullmatch=True),
        "date": st.dates().map(date.isoformat),
        "date-time": st.datetimes(timezones=offsets).map(datetime.isoformat),
    }
    strings = formats[branch.get("format")]
    return strings.filter(lambda text: re.search(branch.get("pattern", ""), text) is not None)


def _parameter(path: str, name: str) -> dict:
    """A parameter's schema; the series' are properties of its first set (use)."""
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    parameters = spec["paths"][path]["get"]["parameters"]
    if path == "/api/v1/series":
        return parameters[0]["schema"]["oneOf"][0]["properties"][name]
    return next(p["schema"] for p in parameters if p["name"] == name)


QUERIES = {  # each time parameter, with the others set so that any value of it is a good range
    ("/api/v1/series", "start"): "resolution=month&end=2200-01-01&start={}",
    ("/api/v1/series", "end"): "resolution=month&start=1990-01-01&end={}",
    ("/api/v1/events", "since"): "since={}",
    ("/api/v1/events", "until"): "until={}",
    ("/api/v1/realtime", "since"): "since={}",
}


@pytest.mark.parametrize(("path", "name"), list(QUERIES))
def test_every_time_the_schema_allows_is_taken(path: str, name: str) -> None:
    """The parameter's schema and the server agree: each value it allows is answered 200."""
    client = app.test_client()
    strategy = st.one_of(*map(_time_strings, _parameter(path, name)["oneOf"]))

    @given(strategy)
    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    def taken(value: str) -> None:
        query = QUERIES[path, name].format(quote(value))
        response = client.get(f"{path}?{query}", environ_base={"REMOTE_ADDR": "127.0.0.1"})
        assert response.status_code == 200, (value, response.get_json())

    taken()

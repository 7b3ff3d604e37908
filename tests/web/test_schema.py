"""schemathesis against our own openapi.json: no 5xx, and every answer fits the schema."""

from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from tests.conftest import make_config
from tests.web.conftest import NOW, seed
from web import create_app


def _app():
    import tempfile

    directory = Path(tempfile.mkdtemp(prefix="traffic-schema-"))
    config = make_config(directory, 'timezone = "Europe/Stockholm"\n[quota]\n'
                                    'monthly = "40 GB"\nbilling_day = 8\n')
    application = create_app(config, clock=lambda: NOW)
    seed(application)
    wsgi = application.wsgi_app

    def from_loopback(environ, start_response):  # a WSGI test client has no peer address
        environ.setdefault("REMOTE_ADDR", "127.0.0.1")
        return wsgi(environ, start_response)

    application.wsgi_app = from_loopback
    return application


app = _app()
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case) -> None:
    """Every default check but one: a range that ends before it starts, or that holds more
    buckets than any chart shows, fits the parameter schema yet is rightly a 400."""
    case.call_and_validate(excluded_checks=[positive_data_acceptance])

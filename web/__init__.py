"""The web app: JSON under /api/v1 read from the store (Flask's app-factory style)."""

import json
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from traffic.config import Config, load_config, mask_text
from traffic.periods import now_ms
from traffic.store import NoStore, StoreError
from traffic.units import size_units

MACHINE_PATHS = ("/api/", "/metrics", "/js/", "/static/")
"""Paths whose errors are JSON; the pages' errors are pages."""

PLAIN_WORDS = {
    403: "This device may not open the dashboard.",
    404: "There is no such page here.",
}


def create_app(config: Config | None = None, clock: Callable[[], int] = now_ms) -> Flask:
    """Build the app; without ``config`` the effective config is loaded as the CLI would."""
    app = Flask(__name__, static_folder=None)
    app.url_map.merge_slashes = False  # its redirect would name the host the client claims
    app.config["TRAFFIC"] = config or load_config()
    app.config["CLOCK"] = clock

    from web import access, api, assets, db, metrics, openapi, pages

    db.init_app(app)
    access.init_app(app)
    for blueprint in (api.bp, openapi.bp, metrics.bp, pages.bp, assets.bp):
        app.register_blueprint(blueprint)
    app.jinja_env.globals.update(js_url=assets.js_url, static_url=assets.static_url,
                                 size_units=size_units)

    @app.after_request
    def relative_redirect(response: Response) -> Response:
        """A redirect Werkzeug makes itself (``/api/v1`` from an empty path) names the host the
        client sent in ``Host``: keep only the path, so that it stays on this site."""
        location = response.headers.get("Location")
        if location:
            parts = urlsplit(location)
            response.headers["Location"] = urlunsplit(
                ("", "", "/" + parts.path.lstrip("/"), parts.query, parts.fragment))
        return response

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        """Errors as ``{"error", "detail"}`` JSON, or as a page where a person reads them;
        either keeps headers such as ``Allow``."""
        response = error.get_response()
        if wants_page() and response.status_code >= 400:
            words = PLAIN_WORDS.get(response.status_code, f"{error.name}.")
            page = error_page(response.status_code, words, error.description or "")
            page.headers.extend((name, value) for name, value in response.headers.items()
                                if name.lower() in ("allow", "www-authenticate"))
            return page
        response.data = json.dumps({"error": error.name, "detail": error.description})
        response.content_type = "application/json"
        return response

    @app.errorhandler(StoreError)
    def store_error(error: StoreError) -> tuple[Response, int] | Response:
        detail = mask_text(str(error))  # it names the store's path
        app.logger.error("%s", detail)
        if wants_page():
            return error_page(503, store_words(error), detail)
        return jsonify(error="Store Unavailable", detail=detail), 503

    return app


def wants_page() -> bool:
    return not request.path.startswith(MACHINE_PATHS)


def store_words(error: StoreError) -> str:
    """What the family reads when the numbers cannot be read."""
    if isinstance(error, NoStore):
        return "No readings yet: is the collector running?"
    return "The numbers cannot be read right now."


def error_page(status: int, words: str, detail: str) -> Response:
    """The error as a page in the dashboard's look: plain words first, the detail for the
    person who set up the box below."""
    from web.db import traffic_config

    config = traffic_config() if status != 403 else None
    html = render_template("error.html", config=config, status=status, words=words,
                           detail=detail)
    return Response(html, status=status, content_type="text/html; charset=utf-8")

"""The web app: JSON under /api/v1 read from the store (Flask's app-factory style)."""

import json
from collections.abc import Callable

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from traffic.config import Config, load_config
from traffic.periods import now_ms
from traffic.store import StoreError


def create_app(config: Config | None = None, clock: Callable[[], int] = now_ms) -> Flask:
    """Build the app; without ``config`` the effective config is loaded as the CLI would."""
    app = Flask(__name__)
    app.config["TRAFFIC"] = config or load_config()
    app.config["CLOCK"] = clock
    app.config["SEND_FILE_MAX_AGE_DEFAULT"] = 365 * 86400  # asset URLs carry a content hash

    from web import access, api, assets, db, metrics, openapi, pages

    db.init_app(app)
    access.init_app(app)
    for blueprint in (api.bp, openapi.bp, metrics.bp, pages.bp, assets.bp):
        app.register_blueprint(blueprint)
    app.jinja_env.globals.update(js_url=assets.js_url, static_url=assets.static_url)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        """Errors as ``{"error", "detail"}`` JSON, keeping headers such as ``Allow``."""
        response = error.get_response()
        response.data = json.dumps({"error": error.name, "detail": error.description})
        response.content_type = "application/json"
        return response

    @app.errorhandler(StoreError)
    def store_error(error: StoreError) -> tuple[Response, int]:
        app.logger.error("%s", error)
        return jsonify(error="Store Unavailable", detail=str(error)), 503

    return app

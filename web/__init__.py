"""The web app: JSON under /api/v1 read from the store (Flask's app-factory style)."""

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from traffic.config import Config, load_config


def create_app(config: Config | None = None) -> Flask:
    """Build the app; without ``config`` the effective config is loaded as the CLI would."""
    app = Flask(__name__)
    app.config["TRAFFIC"] = config or load_config()

    from web import api, db

    db.init_app(app)
    app.register_blueprint(api.bp)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):  # noqa: ANN202
        response = jsonify(error=error.name, detail=error.description)
        return response, error.code

    return app

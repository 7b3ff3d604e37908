"""Front-end files: ``js/`` (our chart code and the npm packages) and ``web/static``.

URLs carry a hash of the file's content, so nginx can let browsers keep them for a year and a new
version is fetched the moment it changes. In development the app serves ``js/`` itself.
"""

import hashlib
from functools import cache
from pathlib import Path

from flask import Blueprint, Response, abort, send_from_directory, url_for

JS_DIR = Path(__file__).resolve().parents[1] / "js"
STATIC_DIR = Path(__file__).resolve().parent / "static"
HIGHCHARTS = "node_modules/highcharts/highcharts.js"
ONE_YEAR_S = 365 * 86400

bp = Blueprint("assets", __name__)


@cache
def _fingerprint(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    except OSError:
        return "missing"


def js_url(name: str) -> str:
    return url_for("assets.js_file", filename=name, v=_fingerprint(JS_DIR / name))


def static_url(name: str) -> str:
    return url_for("static", filename=name, v=_fingerprint(STATIC_DIR / name))


@bp.get("/js/<path:filename>")
def js_file(filename: str) -> Response:
    if not filename.endswith((".js", ".css")):
        abort(404)
    return send_from_directory(JS_DIR, filename, max_age=ONE_YEAR_S)

"""Front-end files: ``js/`` (our chart code and the npm packages) and ``web/static``.

Pages link them with a hash of their content (``?v=``). Only that URL may be kept for a year
(``immutable``): any other (no ``v``, an old one) is revalidated each time, so a browser never
holds on to a file that has changed. Behind nginx the app only decides the headers and nginx
sends the file (``X-Accel-Redirect``); without nginx the app sends it itself.
"""

import hashlib
from functools import cache
from pathlib import Path
from urllib.parse import quote

from flask import Blueprint, Response, abort, request, send_from_directory, url_for
from werkzeug.security import safe_join

from web.access import from_trusted_proxy

JS_DIR = Path(__file__).resolve().parents[1] / "js"
STATIC_DIR = Path(__file__).resolve().parent / "static"
ONE_YEAR_S = 365 * 86400
IMMUTABLE = f"public, max-age={ONE_YEAR_S}, immutable"
REVALIDATE = "no-cache"
ACCEL = {JS_DIR: "/_traffic_files/js/", STATIC_DIR: "/_traffic_files/static/"}
"""Where util/nginx/traffic.conf serves each folder from, for X-Accel-Redirect only."""

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
    return url_for("assets.static_file", filename=name, v=_fingerprint(STATIC_DIR / name))


@bp.get("/js/<path:filename>")
def js_file(filename: str) -> Response:
    if not filename.endswith((".js", ".css")):
        abort(404)
    return _send(JS_DIR, filename)


@bp.get("/static/<path:filename>")
def static_file(filename: str) -> Response:
    return _send(STATIC_DIR, filename)


def _send(directory: Path, filename: str) -> Response:
    path = safe_join(str(directory), filename)
    if path is None or not Path(path).is_file():
        abort(404)
    current = request.args.get("v") == _fingerprint(Path(path))
    if _nginx_sends_files():
        response = Response(status=200)
        response.headers["X-Accel-Redirect"] = ACCEL[directory] + quote(filename)
        del response.headers["Content-Type"]
    else:
        response = send_from_directory(directory, filename)
    response.headers["Cache-Control"] = IMMUTABLE if current else REVALIDATE
    return response


def _nginx_sends_files() -> bool:
    return (request.headers.get("X-Sendfile-Type") == "X-Accel-Redirect"
            and from_trusted_proxy())

"""Local stand-ins for notification services, on 127.0.0.1 only: an SMTP server (aiosmtpd), an
HTTP receiver for Apprise's ``json://`` posts, and the part of the X API v2 that posts a tweet
(``POST /2/tweets``, checking its OAuth 1.0a signature as X does)."""

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SmtpReceiver:
    """An SMTP server that takes any message after a login with ``user`` and ``password``
    (plain SMTP, no TLS: it only listens on loopback)."""

    def __init__(self, user: str, password: str) -> None:
        self.user = user
        self.password = password
        self.messages: list[EmailMessage] = []
        self.logins: list[str] = []
        self.port = free_port()
        self._controller: Any = None

    def url(self, sender: str, recipient: str) -> str:
        """The Apprise URL that sends to this server."""
        return (f"mailto://{self.user}:{self.password}@127.0.0.1:{self.port}"
                f"?mode=insecure&from={sender}&to={recipient}")

    def __enter__(self) -> "SmtpReceiver":
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        receiver = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                receiver.messages.append(message_from_bytes(envelope.content,
                                                            policy=policy.default))
                return "250 OK"

        def authenticate(server: Any, session: Any, envelope: Any, mechanism: str,
                         auth_data: Any) -> AuthResult:
            login = auth_data.login.decode() if isinstance(auth_data.login, bytes) else ""
            password = auth_data.password.decode() if isinstance(auth_data.password,
                                                                 bytes) else ""
            accepted = (login, password) == (self.user, self.password)
            if accepted:
                self.logins.append(login)
            return AuthResult(success=accepted)

        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port,
                                      authenticator=authenticate, auth_require_tls=False)
        self._controller.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._controller.stop()


class _Server:
    """A threading HTTP server on an ephemeral loopback port, with ``handle(handler)`` doing
    the work of each request."""

    def __init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                owner.handle(self)

            do_GET = do_POST

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.lock = threading.Lock()

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        raise NotImplementedError

    @staticmethod
    def reply(request: BaseHTTPRequestHandler, status: int, document: dict) -> None:
        body = json.dumps(document).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    def __enter__(self) -> "_Server":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class JsonReceiver(_Server):
    """Takes Apprise's ``json://`` posts: ``posts`` keeps each accepted one (its path and
    JSON document); ``fail(n)`` answers the next ``n`` posts with 500 instead."""

    def __init__(self) -> None:
        super().__init__()
        self.posts: list[tuple[str, dict]] = []
        self.refused = 0
        self.authorization: list[str] = []
        self._failures = 0

    def url(self, path: str = "/alerts", auth: str = "") -> str:
        return f"json://{auth + '@' if auth else ''}127.0.0.1:{self.port}{path}"

    def fail(self, count: int) -> None:
        with self.lock:
            self._failures = count

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        document = json.loads(request.rfile.read(length) or b"{}")
        with self.lock:
            self.authorization.append(request.headers.get("Authorization", ""))
            failing = self._failures > 0
            if failing:
                self._failures -= 1
                self.refused += 1
            else:
                self.posts.append((request.path, document))
        self.reply(request, 500 if failing else 200, {"ok": not failing})


class XApiStandIn(_Server):
    """``POST /2/tweets`` of the X API v2 with OAuth 1.0a user context: the request must carry
    an ``Authorization: OAuth ...`` header for the given keys, signed with HMAC-SHA1 over the
    method, the URL and the OAuth and query parameters (RFC 5849; a JSON body is not signed).
    ``tweets`` keeps each posted text; ``rejected`` says why a request was refused."""

    def __init__(self, consumer_key: str, consumer_secret: str, access_token: str,
                 access_secret: str) -> None:
        super().__init__()
        self.keys = (consumer_key, consumer_secret, access_token, access_secret)
        self.tweets: list[str] = []
        self.oauth: list[dict[str, str]] = []
        self.rejected: list[str] = []

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length)
        path = urlsplit(request.path).path
        if request.command != "POST" or path != "/2/tweets":
            return self._refuse(request, 404, f"{request.command} {path} is not served")
        problem = self._check_oauth(request)
        if problem:
            return self._refuse(request, 401, problem)
        try:
            text = json.loads(raw)["text"]
        except (ValueError, KeyError, TypeError):
            return self._refuse(request, 400, "the body is not JSON with a 'text'")
        with self.lock:
            self.tweets.append(text)
            tweet_id = str(len(self.tweets))
        self.reply(request, 201, {"data": {"id": tweet_id, "text": text}})

    def _refuse(self, request: BaseHTTPRequestHandler, status: int, why: str) -> None:
        with self.lock:
            self.rejected.append(why)
        self.reply(request, status, {"title": "Unauthorized" if status == 401 else "Error",
                                     "detail": why})

    def _check_oauth(self, request: BaseHTTPRequestHandler) -> str:
        header = request.headers.get("Authorization", "")
        if not header.startswith("OAuth "):
            return "no OAuth Authorization header"
        params = {key.strip(): unquote(value.strip().strip('"')) for key, _, value in
                  (item.partition("=") for item in header[6:].split(","))}
        with self.lock:
            self.oauth.append(params)
        consumer_key, consumer_secret, access_token, access_secret = self.keys
        for name in ("oauth_consumer_key", "oauth_token", "oauth_signature_method",
                     "oauth_timestamp", "oauth_nonce", "oauth_version", "oauth_signature"):
            if not params.get(name):
                return f"{name} is missing"
        if (params["oauth_consumer_key"], params["oauth_token"]) != (consumer_key,
                                                                     access_token):
            return "unknown consumer key or access token"
        if params["oauth_signature_method"] != "HMAC-SHA1" or params["oauth_version"] != "1.0":
            return "expected HMAC-SHA1, OAuth 1.0"
        if abs(time.time() - int(params["oauth_timestamp"])) > 300:
            return "stale oauth_timestamp"
        split = urlsplit(request.path)
        signed = [(key, value) for key, value in params.items()
                  if key.startswith("oauth_") and key != "oauth_signature"]
        signed += parse_qsl(split.query, keep_blank_values=True)
        normalized = "&".join(f"{key}={value}" for key, value in
                              sorted((_encode(key), _encode(value)) for key, value in signed))
        uri = f"http://{request.headers['Host']}{split.path}"
        base = "&".join([request.command, _encode(uri), _encode(normalized)])
        key = f"{_encode(consumer_secret)}&{_encode(access_secret)}"
        expected = base64.b64encode(hmac.new(key.encode(), base.encode(),
                                             hashlib.sha1).digest()).decode()
        if not hmac.compare_digest(expected, params["oauth_signature"]):
            return "bad oauth_signature"
        return ""


def _encode(value: str) -> str:
    """RFC 5849 percent-encoding: everything but unreserved characters."""
    return quote(value, safe="~-._")


class _PrintingJsonReceiver(JsonReceiver):
    """A ``JsonReceiver`` that also prints each accepted post as one JSON line."""

    def __init__(self) -> None:
        super().__init__()
        self._printed = 0

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        super().handle(request)
        with self.lock:
            new, self._printed = self.posts[self._printed:], len(self.posts)
            for path, document in new:
                print(json.dumps({"path": path, "document": document}), flush=True)


if __name__ == "__main__":
    # ``python tests/sim/receivers.py json``: a json:// receiver in a process of its own, so
    # that a test can start it inside a network namespace (``ip netns exec``). It prints
    # {"port": N}, then {"path": ..., "document": ...} per accepted post, until terminated.
    import sys

    if sys.argv[1:] != ["json"]:
        sys.exit("usage: receivers.py json")
    with _PrintingJsonReceiver() as running:
        print(json.dumps({"port": running.port}), flush=True)
        threading.Event().wait()

"""A Huawei B593 (firmware V100R001C07) at the wire: its login and its WAN status page.

- ``POST /index/login.cgi``: form fields ``Username`` and ``Password``; ``Password`` is base64
  of the password encrypted with RSA PKCS#1 v1.5 under the public half of ``key`` (or, with
  ``login_encoding="base64"``, of the password itself, as older firmware took it). An
  accepted login gets a new ``SessionID_R3`` cookie (one session at a time); a refused one gets
  the login page again with ``'loginerror' : '1'`` and no cookie.
- ``GET /html/status/waninfo.asp``: ``WanStatistics`` and ``WanInfo`` as JavaScript literals
  (volumes in the router's unit, as the test sets them); without a live session, the page
  titled ``replace`` that sends a browser back to the login.
- ``POST /index/logout.cgi`` ends the session.

Every request is recorded (``requests``), so a test can count logins and look at what was sent.
``dip`` makes the volumes read lower for a few reads, as routers' running totals now and then do;
``served`` lists the volumes of each status page served.
"""

import base64
import secrets
import threading
import urllib.parse
from dataclasses import dataclass
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from Cryptodome.Cipher import PKCS1_v1_5
from Cryptodome.PublicKey import RSA

LOGIN_PAGE = """<html><head><title>B593</title></head><body><script>
var LoginInfo = {{'loginerror' : '{error}', 'username' : 'admin'}};
</script><form action="/index/login.cgi" method="post"></form></body></html>"""
WANINFO_PAGE = """<html><head><title>WAN Information</title>
<script language="JavaScript" type="text/javascript">
var WanStatistics = {{'uprate' : '{uprate}' , 'downrate' : '{downrate}' ,
  'upvolume' : '{upvolume}' , 'downvolume' : '{downvolume}' , 'liveTime' : '{live}'}};
var WanInfo = {{'status' : 'Connected', 'dataip' : '{dataip}', 'datadns' : '10.0.0.53'}};
</script></head><body><div id="waninfo"></div></body></html>"""
REPLACE_PAGE = """<html><head><title>replace</title></head><body><script>
top.location.replace("/index/login.cgi");
</script></body></html>"""


@dataclass
class Request:
    method: str
    path: str
    form: dict[str, str]
    cookies: dict[str, str]


class B593:
    """The router. Use as a context manager; ``url`` is its address on 127.0.0.1."""

    def __init__(self, key: RSA.RsaKey, password: str = "router-secret",
                 username: str = "admin", login_encoding: str = "rsa") -> None:
        self.key = key
        self.username = username
        self.password = password
        self.login_encoding = login_encoding
        self.upvolume = 0
        self.downvolume = 0
        self.uprate = 0
        self.downrate = 0
        self.dataip = "100.64.12.34"
        self._dip = (0, 0)
        self._dip_reads = 0
        self.served: list[tuple[int, int]] = []
        """(downvolume, upvolume) of each status page served."""
        self.waninfo_page: str | None = None
        """A page served instead of the status page, as another model would answer."""
        self.keeps_sessions = True
        """False: every session ends at once, as when the router takes no more logins."""
        self.session: str | None = None
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                        daemon=True)

    @property
    def modulus(self) -> str:
        """The public key as the source takes it: the modulus in hex."""
        return f"{self.key.n:X}"

    def __enter__(self) -> "B593":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def grow(self, down: int, up: int) -> None:
        """More traffic, in the router's unit."""
        with self.lock:
            self.downvolume += down
            self.upvolume += up

    def dip(self, down: int, up: int, reads: int) -> None:
        """The volumes read this much lower for the next ``reads`` status pages."""
        with self.lock:
            self._dip, self._dip_reads = (down, up), reads

    def expire_session(self) -> None:
        """The session ends, as after about a minute without a request."""
        with self.lock:
            self.session = None

    def logins(self) -> list[Request]:
        return [r for r in self.requests if r.path == "/index/login.cgi"]

    def accepts(self, encoded: str) -> bool:
        """Whether the ``Password`` form field carries this router's password."""
        try:
            secret = base64.b64decode(encoded, validate=True)
            if self.login_encoding == "rsa":
                sentinel = object()
                secret = PKCS1_v1_5.new(self.key).decrypt(secret, sentinel)
                if secret is sentinel:
                    return False
            return secret == self.password.encode()
        except ValueError:
            return False

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        router = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: a test reads ``router.requests``."""

            def do_GET(self) -> None:
                request = self._record({})
                if request.path != "/html/status/waninfo.asp":
                    self._send(404, "<html><title>404</title></html>")
                elif router._live(request):
                    self._send(200, router._waninfo())
                else:
                    self._send(200, REPLACE_PAGE)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                form = dict(urllib.parse.parse_qsl(body, keep_blank_values=True))
                request = self._record(form)
                if request.path == "/index/login.cgi":
                    self._login(form)
                elif request.path == "/index/logout.cgi":
                    if router._live(request):
                        router.expire_session()
                    self._send(200, LOGIN_PAGE.format(error="0"))
                else:
                    self._send(404, "<html><title>404</title></html>")

            def _login(self, form: dict[str, str]) -> None:
                if (form.get("Username") == router.username
                        and router.accepts(form.get("Password", ""))):
                    session = str(secrets.randbelow(10**12) + 1)
                    with router.lock:
                        router.session = session if router.keeps_sessions else None
                    self._send(200, "<html><title>B593</title></html>",
                               {"Set-Cookie": f"SessionID_R3={session}; path=/"})
                else:
                    self._send(200, LOGIN_PAGE.format(error="1"))

            def _record(self, form: dict[str, str]) -> Request:
                cookies = SimpleCookie(self.headers.get("Cookie", ""))
                request = Request(self.command, urllib.parse.urlsplit(self.path).path, form,
                                  {name: morsel.value for name, morsel in cookies.items()})
                with router.lock:
                    router.requests.append(request)
                return request

            def _send(self, status: int, page: str, headers: dict[str, str] | None = None
                      ) -> None:
                body = page.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

        return Handler

    def _live(self, request: Request) -> bool:
        with self.lock:
            return self.session is not None and request.cookies.get("SessionID_R3") == \
                self.session

    def _waninfo(self) -> str:
        with self.lock:
            if self.waninfo_page is not None:
                return self.waninfo_page
            down, up = self.downvolume, self.upvolume
            if self._dip_reads > 0:
                self._dip_reads -= 1
                down, up = max(down - self._dip[0], 0), max(up - self._dip[1], 0)
            self.served.append((down, up))
            return WANINFO_PAGE.format(uprate=self.uprate, downrate=self.downrate,
                                       upvolume=up, downvolume=down, live=1234,
                                       dataip=self.dataip)

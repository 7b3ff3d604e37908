"""A Huawei HiLink router at the wire: the XML API that ``huawei-lte-api`` speaks, on 127.0.0.1.

What a real router does and the simulator does too: ``/`` hands out a ``SessionID`` cookie and
two ``csrf_token`` meta tags; a POST needs one of the tokens of its session and its answer
carries new ones (``__RequestVerificationTokenone``/``two`` after a login, which also renews
the cookie); ``user/login`` checks a password of type 4 (base64 of the hex SHA-256 of the user
name, base64 of the password's hex SHA-256, and the request's token); after ``max_failures``
wrong passwords in a row logins are refused with 108007 for ``lock_seconds`` (``state-login``
then says ``lockstatus`` 1 and ``remainwaittime`` in minutes). Calls need a login (100003
without one or after ``expire_session``); a call in ``missing`` answers 100002, one in
``garbled`` answers a broken page (one in ``garble_next`` for its next N requests). Switching
mobile data off answers the error ``data_off_error`` when it is set, after switching it off
(the answer, not the switch, went wrong: the data may be off whatever the client was told).

SMS: ``sms/sms-count`` (``LocalInbox``), ``sms/sms-list`` (the inbox by page, ``ReadCount``
a page, by date, ``Ascending`` or not), ``sms/delete-sms`` (an index with no message answers
100006), ``sms/send-sms`` (``send_error`` answers that error instead). ``receive(number,
text)`` is a message arriving (dated in the router's local time, ``sms_timezone``); ``sent``
lists what was sent as (number, text).

The test drives the counters: ``grow`` adds traffic, ``dip`` makes the totals read lower for a
while (as real routers do now and then), ``clear`` sets them to zero (the router's "clear
statistics"). Every login attempt, traffic read, data switch and control request is recorded.

Run as a module (``python -m tests.sim.hilink --port N``) it serves until interrupted, its
totals growing by ``--grow`` bytes at each read, for benchmarks.
"""

import argparse
import base64
import contextlib
import hashlib
import itertools
import secrets
import signal
import socket
import sys
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from zoneinfo import ZoneInfo

OPEN_CALLS = {"user/state-login", "user/login"}
"""Answered without a login."""


@dataclass
class Session:
    tokens: set[str] = field(default_factory=set)
    logged_in: bool = False


@dataclass(frozen=True)
class LoginAttempt:
    username: str
    code: int
    """0 for a login accepted, else the error code answered."""


class RouterError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def password_type_4(username: str, password: str, token: str) -> str:
    inner = base64.b64encode(hashlib.sha256(password.encode()).hexdigest().encode()).decode()
    outer = hashlib.sha256(f"{username}{inner}{token}".encode()).hexdigest()
    return base64.b64encode(outer.encode()).decode()


class HilinkSim:
    """The router's state and its HTTP server; ``with HilinkSim() as sim:`` runs it."""

    def __init__(self, username: str = "admin", password: str = "router-secret-1",
                 port: int = 0, serial: str = "SIM0123456789", rx: int = 5_000_000_000,
                 tx: int = 700_000_000) -> None:
        self.username, self.password, self.serial = username, password, serial
        self.rx, self.tx = rx, tx
        self.month_rx, self.month_tx = rx // 10, tx // 10
        self.rates = (125_000, 25_000)
        self.grow_per_read = 0
        self._dip = 0
        self._dip_reads: int | None = None
        self.connection = 901
        self.reconnects = True
        """Switching mobile data on brings the connection back (901)."""
        self.network_type_ex, self.sim_status, self.roaming = 101, 1, 0
        self.wan_ip, self.operator = "10.64.12.34", "Simulated Mobile"
        self.signal = {"rsrp": "-95dBm", "rsrq": "-11.0dB", "sinr": "13dB", "rssi": "-67dBm",
                       "band": "3", "cell_id": "20871425", "pci": "301", "mode": "7"}
        self.missing: set[str] = set()
        self.garbled: set[str] = set()
        self.garble_next: dict[str, int] = {}
        self.data_off_error = 0
        self.max_failures, self.lock_seconds = 3, 60.0
        self.failures = 0
        self.locked_until = 0.0
        self.sessions: dict[str, Session] = {}
        self.login_attempts: list[LoginAttempt] = []
        self.logouts = 0
        self.traffic_reads = 0
        self.served: list[tuple[int, int]] = []
        self.data_switch = 1
        self.switches: list[int] = []
        self.controls: list[int] = []
        self.calls: dict[str, int] = {}
        self.inbox: list[dict[str, Any]] = []
        self.sent: list[tuple[str, str]] = []
        self.send_error = 0
        self.sms_timezone = "Europe/Stockholm"
        self._sms_index = itertools.count(40000)
        self.lock = threading.RLock()
        self.open: set[socket.socket] = set()
        self._tokens = itertools.count(1)
        self.server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self.server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> "HilinkSim":
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop answering, also on the connections clients keep open."""
        self.server.shutdown()
        self.server.server_close()
        with self.lock:
            for connection in self.open:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> "HilinkSim":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # What the test does to the router.
    def grow(self, rx: int, tx: int = 0) -> None:
        with self.lock:
            self.rx, self.tx = self.rx + rx, self.tx + tx
            self.month_rx, self.month_tx = self.month_rx + rx, self.month_tx + tx

    def dip(self, amount: int, reads: int | None = None) -> None:
        """The totals read ``amount`` lower until ``undip``, or for ``reads`` reads."""
        with self.lock:
            self._dip, self._dip_reads = amount, reads

    def undip(self) -> None:
        with self.lock:
            self._dip, self._dip_reads = 0, None

    def clear(self) -> None:
        with self.lock:
            self.rx = self.tx = 0

    def expire_session(self) -> None:
        with self.lock:
            for session in self.sessions.values():
                session.logged_in = False

    def lock_out(self, seconds: float) -> None:
        """Lock the login, as repeated wrong passwords do."""
        with self.lock:
            self.locked_until = time.monotonic() + seconds

    def unlock(self) -> None:
        with self.lock:
            self.locked_until, self.failures = 0.0, 0

    def receive(self, number: str, text: str, at: datetime | None = None) -> dict[str, Any]:
        """A message arriving now (or ``at``) in the router's inbox."""
        when = (at or datetime.now()).astimezone(ZoneInfo(self.sms_timezone))
        with self.lock:
            message = {"Smstat": 0, "Index": next(self._sms_index), "Phone": number,
                       "Content": text, "Date": when.strftime("%Y-%m-%d %H:%M:%S"),
                       "Sca": "", "SaveType": 4, "Priority": 0, "SmsType": 1}
            self.inbox.append(message)
            return message

    @property
    def logged_in(self) -> int:
        """Sessions logged in now."""
        with self.lock:
            return sum(session.logged_in for session in self.sessions.values())

    # The router's side.
    def new_token(self, session: Session) -> str:
        token = f"{next(self._tokens):04d}{secrets.token_hex(14)}"
        session.tokens.add(token)
        return token

    def new_session(self) -> tuple[str, Session]:
        sid = secrets.token_hex(32)
        self.sessions[sid] = Session()
        return sid, self.sessions[sid]

    def answer(self, call: str, session: Session, body: dict[str, str] | None,
               token: str | None) -> tuple[Any, dict[str, str]]:
        """The answer to a call (a dict, or "OK") and the headers it sets; raises RouterError."""
        headers: dict[str, str] = {}
        if body is not None:
            if token not in session.tokens:
                raise RouterError(125002)
            headers["__RequestVerificationToken"] = self.new_token(session)
        if call in self.missing:
            raise RouterError(100002)
        if call not in OPEN_CALLS and not session.logged_in:
            raise RouterError(100003)
        if call == "user/login":
            assert body is not None and token is not None
            return self.login(session, body, token, headers), headers
        if body is None:
            return self.read(call, session), headers
        return self.act(call, session, body), headers

    def login(self, session: Session, body: dict[str, str], token: str,
              headers: dict[str, str]) -> str:
        username = body.get("Username", "")
        now = time.monotonic()
        if now < self.locked_until:
            code = 108007
        elif (body.get("password_type") == "4" and username == self.username
              and body.get("Password") == password_type_4(username, self.password, token)):
            code = 0
        else:
            self.failures += 1
            code = 108006
            if self.failures >= self.max_failures:
                self.locked_until, code = now + self.lock_seconds, 108007
        self.login_attempts.append(LoginAttempt(username, code))
        if code:
            raise RouterError(code)
        self.failures = 0
        session.logged_in = True
        del headers["__RequestVerificationToken"]
        headers["__RequestVerificationTokenone"] = self.new_token(session)
        headers["__RequestVerificationTokentwo"] = self.new_token(session)
        return "OK"

    def act(self, call: str, session: Session, body: dict[str, str]) -> Any:
        if call.startswith("sms/"):
            return self.sms(call, body)
        if call == "user/logout":
            session.logged_in = False
            self.logouts += 1
        elif call == "dialup/mobile-dataswitch":
            self.data_switch = int(body["dataswitch"])
            self.switches.append(self.data_switch)
            if not self.data_switch:
                self.connection = 902
                if self.data_off_error:
                    raise RouterError(self.data_off_error)
            elif self.reconnects:
                self.connection = 901
        elif call == "device/control":
            self.controls.append(int(body["Control"]))
            for other in self.sessions.values():
                other.logged_in = False  # rebooting or powered off, it forgets every session
        else:
            raise RouterError(100002)
        return "OK"

    def sms(self, call: str, body: dict[str, str]) -> Any:
        if call == "sms/sms-list":
            size, page = int(body["ReadCount"]), int(body["PageIndex"])
            ordered = sorted(self.inbox, key=lambda message: (message["Date"], message["Index"]),
                             reverse=body.get("Ascending") != "1")
            listed = ordered[(page - 1) * size:page * size]
            return {"Count": len(listed), "Messages": {"Message": listed}}
        if call == "sms/delete-sms":
            found = [message for message in self.inbox if str(message["Index"]) == body["Index"]]
            if not found:
                raise RouterError(100006)
            self.inbox.remove(found[0])
            return "OK"
        if call == "sms/send-sms":
            if self.send_error:
                raise RouterError(self.send_error)
            for number in body["Phones"].split(","):
                self.sent.append((number, body["Content"]))
            return "OK"
        raise RouterError(100002)

    def read(self, call: str, session: Session) -> dict[str, Any]:
        if call == "user/state-login":
            locked = time.monotonic() < self.locked_until
            wait = -(-(self.locked_until - time.monotonic()) // 60) if locked else 0
            return {"State": 0 if session.logged_in else -1,
                    "Username": self.username if session.logged_in else "", "password_type": 4,
                    "extern_password_type": 1, "firstlogin": 0, "lockstatus": int(locked),
                    "accounts_number": 1, "remainwaittime": int(wait), "rsapadingtype": 1}
        if call == "monitoring/traffic-statistics":
            return self.traffic()
        if call == "sms/sms-count":
            unread = sum(message["Smstat"] == 0 for message in self.inbox)
            return {"LocalUnread": unread, "LocalInbox": len(self.inbox), "LocalOutbox": 0,
                    "LocalDraft": 0, "LocalDeleted": 0, "SimUnread": 0, "SimInbox": 0,
                    "SimOutbox": 0, "SimDraft": 0, "LocalMax": 500, "SimMax": 50,
                    "SimUsed": 0, "NewMsg": 0}
        answers = {
            "device/information": {"DeviceName": "B535-232", "SerialNumber": self.serial,
                                   "Imei": "861234567890123", "HardwareVersion": "WL2B535M",
                                   "SoftwareVersion": "11.0.1.2(H163SP2C983)",
                                   "ProductFamily": "LTE", "Classify": "cpe"},
            "device/signal": self.signal,
            "monitoring/status": {
                "ConnectionStatus": self.connection, "SignalIcon": 4, "CurrentNetworkType": 19,
                "CurrentServiceDomain": 3, "RoamingStatus": self.roaming,
                "WanIPAddress": self.wan_ip if self.connection == 901 else "",
                "PrimaryDns": "10.64.0.1", "ServiceStatus": 2, "SimStatus": self.sim_status,
                "CurrentNetworkTypeEx": self.network_type_ex, "maxsignal": 5, "flymode": 0},
            "monitoring/month_statistics": {
                "CurrentMonthDownload": self.month_rx, "CurrentMonthUpload": self.month_tx,
                "MonthDuration": 86_400, "MonthLastClearTime": "2025-1-8"},
            "net/current-plmn": {"State": 0, "FullName": self.operator, "ShortName": "SimMob",
                                 "Numeric": "24099", "Rat": 7},
            "dialup/mobile-dataswitch": {"dataswitch": self.data_switch},
        }
        if call not in answers:
            raise RouterError(100002)
        return answers[call]

    def traffic(self) -> dict[str, Any]:
        self.rx += self.grow_per_read
        self.tx += self.grow_per_read // 8
        rx, tx = max(self.rx - self._dip, 0), max(self.tx - self._dip, 0)
        if self._dip_reads is not None:
            self._dip_reads -= 1
            if self._dip_reads <= 0:
                self.undip()
        self.traffic_reads += 1
        self.served.append((rx, tx))
        return {"CurrentConnectTime": 3600, "CurrentUpload": tx // 3, "CurrentDownload": rx // 3,
                "CurrentDownloadRate": self.rates[0], "CurrentUploadRate": self.rates[1],
                "TotalUpload": tx, "TotalDownload": rx, "TotalConnectTime": 86_400,
                "showtraffic": 1}


def _xml(tag: str, value: Any) -> str:
    if isinstance(value, list):
        return "".join(_xml(tag, item) for item in value)
    if isinstance(value, dict):
        inner = "".join(_xml(key, item) for key, item in value.items())
    else:
        inner = str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f"<{tag}>{inner}</{tag}>"


def _handler(sim: HilinkSim) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body leave at once, as from a router

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def setup(self) -> None:
            super().setup()
            with sim.lock:
                sim.open.add(self.connection)

        def finish(self) -> None:
            with sim.lock:
                sim.open.discard(self.connection)
            super().finish()

        def do_GET(self) -> None:
            self._serve(None)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                root = ET.fromstring(raw) if raw else ET.Element("request")
                body = {child.tag: ",".join(item.text or "" for item in child)
                        if len(child) else child.text or "" for child in root}
            except ET.ParseError:
                body = {}
            self._serve(body)

        def _serve(self, body: dict[str, str] | None) -> None:
            path = self.path.split("?", 1)[0]
            cookie = self._cookie()
            with sim.lock:
                session = sim.sessions.get(cookie or "")
                set_cookie = None
                if path == "/" or path.startswith("/html/"):
                    if session is None:
                        set_cookie, session = sim.new_session()
                    tokens = [sim.new_token(session), sim.new_token(session)]
                    page = ("<!DOCTYPE html><html><head>"
                            + "".join(f'<meta name="csrf_token" content="{t}"/>' for t in tokens)
                            + "<title>HiLink</title></head><body></body></html>")
                    self._send(page, "text/html", {}, set_cookie)
                    return
                if not path.startswith("/api/"):
                    self._send("<html><body>Not found", "text/html", {}, None, 404)
                    return
                call = path.removeprefix("/api/")
                sim.calls[call] = sim.calls.get(call, 0) + 1
                if call in sim.garbled or sim.garble_next.get(call, 0) > 0:
                    if call in sim.garble_next:
                        sim.garble_next[call] -= 1
                    self._send("<html><body>Moved", "text/html", {}, None)
                    return
                session = session or Session()
                token = self.headers.get("__RequestVerificationToken")
                try:
                    answer, headers = sim.answer(call, session, body, token)
                    if call == "user/login":
                        sim.sessions.pop(cookie or "", None)
                        set_cookie = secrets.token_hex(32)
                        sim.sessions[set_cookie] = session
                    text = _xml("response", answer)
                except RouterError as error:
                    headers = ({"__RequestVerificationToken": sim.new_token(session)}
                               if body is not None else {})
                    text = _xml("error", {"code": error.code, "message": ""})
            self._send('<?xml version="1.0" encoding="UTF-8"?>' + text, "text/html", headers,
                       set_cookie)

        def _cookie(self) -> str | None:
            for part in (self.headers.get("Cookie") or "").split(";"):
                name, _, value = part.strip().partition("=")
                if name == "SessionID":
                    return value
            return None

        def _send(self, text: str, content_type: str, headers: dict[str, str],
                  cookie: str | None, status: int = 200) -> None:
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", f"{content_type}; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            if cookie:
                self.send_header("Set-Cookie", f"SessionID={cookie}; path=/; HttpOnly")
            self.end_headers()
            self.wfile.write(data)

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--username", default="admin")
    parser.add_argument("--password", default="router-secret-1")
    parser.add_argument("--grow", type=int, default=1_000_000,
                        help="bytes the download total grows at each read")
    args = parser.parse_args()
    sim = HilinkSim(args.username, args.password, args.port)
    sim.grow_per_read = args.grow
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"HiLink simulator on {sim.url}", flush=True)
    try:
        sim.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        sim.server.server_close()


if __name__ == "__main__":
    main()

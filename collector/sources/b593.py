"""The Huawei B593 LTE router (firmware V100R001C07), read through its web pages.

``huawei-lte-api`` does not speak to the B593, so this is a small client of its own:

- ``POST /index/login.cgi`` with the form fields ``Username`` and ``Password``. ``Password`` is
  the password encrypted with RSA PKCS#1 v1.5 under the public key of the router's ``rsa.js``,
  in base64 (older firmware took the password itself in base64). The router answers an
  accepted login with its session cookie ``SessionID_R3``; a refused one gets the login page
  again and no session, and is never retried (a router may lock its page after a few).
- ``GET /html/status/waninfo.asp`` holds JavaScript literals such as ``'downvolume' : '1234'``:
  the WAN's running totals, its rates and its address. A page titled ``replace`` means the
  session ended (after about a minute idle): one new login, one more try in the same poll.
- ``POST /index/logout.cgi`` ends the session when the collector stops.

The totals are the router's running count (``held``: a dip that comes back is never counted
twice; see ``traffic.counters``). Their unit is ``volume_unit``: the page does not say, and
the rates are taken in the same unit per second.
"""

import base64
import contextlib
import logging
import re
import urllib.parse
from typing import Any

from collector.sources import (
    Clock,
    LoginRefused,
    SourceError,
    SourceType,
    password_given_once,
)
from collector.sources.hilink import no_credentials, password_file
from traffic.config import ConfigError, SourceConfig, duration, read_secret_file, secret, text
from traffic.counters import Reading

log = logging.getLogger(__name__)

B593_MODULUS = (
    "BEB90F8AF5D8A7C7DA8CA74AC43E1EE8A48E6860C0D46A5D690BEA082E3A74E1571F2C58E94EE339862A49A8"
    "11A31BB4A48F41B3BCDFD054C3443BB610B5418B3CBAFAE7936E1BE2AFD2E0DF865A6E59C2B8DF1E8D5702567D"
    "0A9650CB07A43DE39020969DF0997FCA587D9A8AE4627CF18477EC06765DF3AA8FB459DD4C9AF3")
"""The modulus of the public key in the B593's own ``rsa.js`` (exponent 65537)."""
EXPONENT = 65537
VOLUME_UNITS = {"B": 1, "kB": 1000, "KB": 1000, "KiB": 1024}
LOGIN_PATH = "index/login.cgi"
LOGOUT_PATH = "index/logout.cgi"
WANINFO_PATH = "html/status/waninfo.asp"
SESSION_COOKIE = "SessionID_R3"
ENDED = re.compile(r"<title>\s*replace\s*</title>", re.IGNORECASE)
LITERAL = re.compile(r"""(['"]?)(\w+)\1\s*:\s*(['"])([^'"\n]*)\3""")
"""``'name' : 'value'`` (or ``name : "value"``) inside the page's scripts."""


class B593Source:
    """One B593: a logged-in ``requests`` session kept between polls."""

    def __init__(self, config: SourceConfig, clock: Clock) -> None:
        settings = config.settings
        self.config = config
        self.clock = clock
        self.url: str = settings["url"]
        self.username: str = settings["username"]
        self.unit: int = VOLUME_UNITS[settings["volume_unit"]]
        self.timeout: float = settings["timeout"]
        self._session: Any = None
        """The ``requests.Session`` holding the router's session cookie, None when logged out."""
        self._refused: str | None = None

    def poll(self) -> list[Reading]:
        if self._refused is not None:
            raise LoginRefused(self._refused)
        fresh = self._session is None
        if fresh:
            self._login()
        page = self._waninfo()
        if page is None and not fresh:
            log.info("source %s: the router ended the session; logging in again",
                     self.config.name)
            self._login()
            page = self._waninfo()
        if page is None:
            self._drop_session()
            raise SourceError(f"the router at {self.url} ended the session at once after a "
                              f"login (is someone else logged in to its web page?)")
        return [self._reading(page)]

    def refuse(self, reason: str) -> None:
        """No login ever again in this object, and every poll raises
        ``LoginRefused(reason)``: the store says these settings' login was refused."""
        self._refused = reason
        self.close()

    def close(self) -> None:
        """Log out, so that the router's page is free for a person at once."""
        if self._session is None:
            return
        import requests

        try:
            self._session.post(self._at(LOGOUT_PATH), timeout=self.timeout,
                               allow_redirects=False)
        except requests.RequestException as error:
            log.debug("source %s: logging out failed: %s", self.config.name, _reason(error))
        self._drop_session()

    def _login(self) -> None:
        import requests

        form = urllib.parse.urlencode({"Username": self.username,
                                       "Password": self._encoded(self._password())})
        self._drop_session()
        session = requests.Session()
        session.cookies.set("Language", "en_us")  # sent with the login by clients known to work
        try:
            self._accepted(self._request(session, "POST", LOGIN_PATH, data=form, headers={
                "Content-Type": "application/x-www-form-urlencoded"}))
        except SourceError:
            session.close()
            raise
        self._session = session

    def _accepted(self, response: Any) -> None:
        """Raises unless the login's answer gives a session: the router's only sign of an
        accepted login (a refused one gets the login page again)."""
        if response.status_code not in (200, 302, 303):
            raise SourceError(f"the router at {self.url} answered the login with HTTP "
                              f"{response.status_code}")
        if response.cookies.get(SESSION_COOKIE) in (None, "", "0"):
            self._refused = (f"the router at {self.url} refused the login of user "
                             f"{self.username!r}: wrong username or password (or public_key, "
                             f"login_encoding)")
            raise LoginRefused(self._refused)

    def _password(self) -> str:
        settings = self.config.settings
        if settings["password_file"]:
            try:
                password = read_secret_file(settings["password_file"], "password_file")
            except ConfigError as error:
                raise SourceError(str(error)) from None
            if not password:
                self._refused = f"password_file: {settings['password_file']} is empty"
                raise LoginRefused(self._refused)
            return password
        if not settings["password"]:
            self._refused = "no password: set password or password_file"
            raise LoginRefused(self._refused)
        return settings["password"]

    def _encoded(self, password: str) -> str:
        secret = password.encode()
        if self.config.settings["login_encoding"] == "rsa":
            from Cryptodome.Cipher import PKCS1_v1_5
            from Cryptodome.PublicKey import RSA

            key = RSA.construct((int(self.config.settings["public_key"], 16), EXPONENT))
            try:
                secret = PKCS1_v1_5.new(key).encrypt(secret)
            except ValueError:
                self._refused = (f"the password is too long for public_key "
                                 f"({key.size_in_bits()} bits)")
                raise LoginRefused(self._refused) from None
        return base64.b64encode(secret).decode()

    def _waninfo(self) -> str | None:
        """The status page, or None when the router says the session has ended."""
        response = self._request(self._session, "GET", WANINFO_PATH)
        if response.status_code != 200:
            raise SourceError(f"the router at {self.url} answered {WANINFO_PATH} with HTTP "
                              f"{response.status_code}")
        page = response.text
        return None if ENDED.search(page) else page

    def _request(self, session: Any, method: str, path: str, **options: Any) -> Any:
        import requests

        try:
            return session.request(method, self._at(path), timeout=self.timeout,
                                   allow_redirects=False, **options)
        except requests.RequestException as error:
            self._drop_session()
            raise SourceError(f"the router at {self.url} is not answering "
                              f"({_reason(error, self.timeout)})") from None

    def _reading(self, page: str) -> Reading:
        literals: dict[str, str] = {}
        for match in LITERAL.finditer(page):
            literals.setdefault(match.group(2), match.group(4).strip())
        counters = {"rx": self._volume(literals, "downvolume"),
                    "tx": self._volume(literals, "upvolume")}
        gauges: dict[str, float | str] = {}
        for gauge, name in (("rx_rate", "downrate"), ("tx_rate", "uprate")):
            with contextlib.suppress(KeyError, ValueError):
                gauges[gauge] = float(literals[name]) * self.unit
        if literals.get("dataip") not in (None, "", "0.0.0.0"):
            gauges["wan_ip"] = literals["dataip"]
        return Reading(key=f"{self.config.name}:wan", at=self.clock(), counters=counters,
                       life=self.url, bits=64, gauges=gauges, held=True)

    def _volume(self, literals: dict[str, str], name: str) -> int:
        if name not in literals:
            raise SourceError(f"{WANINFO_PATH} at {self.url} has no {name!r}; is it a B593 "
                              f"(firmware V100R001C07)?")
        value = literals[name]
        if not value.isdigit():
            raise SourceError(f"{WANINFO_PATH} at {self.url}: {name} is {value[:20]!r}, "
                              f"not a number")
        return int(value) * self.unit

    def _at(self, path: str) -> str:
        return urllib.parse.urljoin(self.url, path)

    def _drop_session(self) -> None:
        if self._session is not None:
            self._session.close()
        self._session = None


def _reason(error: Exception, timeout: float | None = None) -> str:
    """A few words for why a request failed, without the library's long chain of wrappers."""
    import requests

    if isinstance(error, requests.Timeout):
        return f"no answer within {timeout:g} s" if timeout else "timed out"
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror.lower()
        nested = cause.args[0] if cause.args and isinstance(cause.args[0], BaseException) \
            else None
        cause = nested or cause.__cause__ or cause.__context__
    return "cannot connect" if isinstance(error, requests.ConnectionError) \
        else type(error).__name__


def _url(value: Any) -> str:
    address = no_credentials(text(value).strip())
    parts = urllib.parse.urlsplit(address)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected the router's address such as 'http://192.168.1.1/', "
                         f"got {value!r}")
    return address if address.endswith("/") else address + "/"


def _public_key(value: Any) -> str:
    """The modulus of an RSA public key in hex, as ``rsa.js`` writes it."""
    digits = re.sub(r"\s+", "", text(value)).upper().removeprefix("0X")
    if not re.fullmatch(r"[0-9A-F]+", digits):
        raise ValueError(f"expected the RSA modulus in hex (as in the router's rsa.js), "
                         f"got {value!r}")
    bits = int(digits, 16).bit_length()
    if not 512 <= bits <= 8192 or not int(digits, 16) % 2:
        raise ValueError(f"expected an RSA modulus of 512 to 8192 bits in hex (as in the "
                         f"router's rsa.js), got one of {bits} bits")
    return digits


def _one_of(*choices: str) -> Any:
    def check(value: Any) -> str:
        if value not in choices:
            listed = ", ".join(repr(choice) for choice in choices)
            raise ValueError(f"expected one of {listed}, got {value!r}")
        return value
    return check


def _create(config: SourceConfig, clock: Clock) -> B593Source:
    return B593Source(config, clock)


SOURCE_TYPE = SourceType(
    name="b593", create=_create, label="router", default_interval=10.0,
    schema={
        "url": ("http://192.168.1.1/", _url),
        "username": ("admin", text),
        "password": ("", secret),
        "password_file": ("", password_file),
        "public_key": (B593_MODULUS, _public_key),
        "login_encoding": ("rsa", _one_of("rsa", "base64")),
        "volume_unit": ("KiB", _one_of(*VOLUME_UNITS)),
        "timeout": ("5s", duration),
    },
    table_check=password_given_once(required=False))

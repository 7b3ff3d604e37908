"""Huawei HiLink routers (B310, B525, B535, B618, E5186, E3372 HiLink and their kin) through
``huawei-lte-api``.

Like Home Assistant's huawei_lte integration, one router object per source calls each API it
needs once per cycle, and everything it offers (counters, gauges, the keeper's evidence and
actions) comes from that object. A call this model does not support (error 100002, or an
answer that does not parse) is dropped for the rest of the run; the others go on.

Counters: ``TotalDownload``/``TotalUpload`` of ``monitoring/traffic-statistics``, whose life is
the router's serial number; they are ``held`` (a total that dips and comes back is not counted
twice; one that stays down is the router's "clear", counted from zero). The serial is asked
again after each login (only a new session can be another router); once known in a run it
stays the life whatever ``device/information`` answers later, short of another serial: a life
that flipped would count the router's whole total again. ``device/information`` is never
dropped for an answer that is not XML (a router's passing hiccup): it is asked again at the
next cycle, and until a serial is known the totals are not counted. Only a model that never
gave a serial (100002, or an answer without one) counts under its URL.

Sessions, so that a router which locks its web page after failed logins is never hammered:
"login required" (100003) logs in again once, then waits for the next cycle; a refused login
(108001, 108002, 108006) raises ``LoginRefused`` and no login is tried again by this object;
"too many attempts" (108007), or ``state-login`` saying the login is locked, means no login
until the router's lock is over.
"""

import contextlib
import logging
import re
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, NoReturn, TypeVar

from collector.sources import (
    Clock,
    LoginRefused,
    SourceError,
    SourceType,
    password_given_once,
)
from traffic.config import (
    ConfigError,
    SourceConfig,
    absolute_path,
    duration,
    read_secret_file,
    secret,
    text,
)
from traffic.counters import Reading

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_INTERVAL_S = 10.0
REFUSED = {108001: "user name wrong", 108002: "password wrong",
           108006: "user name or password wrong"}
TOO_MANY_ATTEMPTS = 108007
LOCK_UNIT_S = 60
"""``remainwaittime`` of ``state-login`` is read as minutes: reading minutes as seconds would
mean logging in again while the lock lasts, which some routers answer with a longer lock."""
LOCK_UNKNOWN_S = 600
"""The wait when the router locked its login without saying for how long."""
STALE_POLLS = 3
"""The router's connection status is evidence for this many poll intervals."""

CONNECTION = {900: "connecting", 901: "connected", 902: "disconnected", 903: "disconnecting",
              904: "connect failed", 905: "no connection status", 906: "connection error",
              112: "disconnected (no auto-connect)",
              113: "disconnected (no auto-connect when roaming)",
              114: "disconnected (no reconnect on timeout)",
              115: "disconnected (no reconnect on timeout when roaming)",
              201: "disconnected (data limit reached)"}
TRANSIENT = {900, 903, 905}
"""Codes that say nothing of the link yet: the keeper probes instead."""
NETWORK_TYPE_EX = {0: "no service", 1: "GSM", 2: "GPRS", 3: "EDGE", 21: "IS-95A", 22: "IS-95B",
                   23: "CDMA 1x", 24: "EV-DO rev. 0", 25: "EV-DO rev. A", 26: "EV-DO rev. B",
                   27: "CDMA 1x", 28: "EV-DO rev. 0", 29: "EV-DO rev. A", 30: "EV-DO rev. B",
                   31: "eHRPD", 32: "eHRPD", 33: "eHRPD", 34: "eHRPD", 35: "eHRPD", 36: "eHRPD",
                   41: "WCDMA", 42: "HSDPA", 43: "HSUPA", 44: "HSPA", 45: "HSPA+",
                   46: "DC-HSPA+", 61: "TD-SCDMA", 62: "TD-HSDPA", 63: "TD-HSUPA",
                   64: "TD-HSPA", 65: "TD-HSPA+", 81: "802.16e", 101: "LTE", 1011: "LTE+",
                   111: "5G NSA", 121: "5G SA"}
NETWORK_TYPE = {0: "no service", 1: "GSM", 2: "GPRS", 3: "EDGE", 4: "WCDMA", 5: "HSDPA",
                6: "HSUPA", 7: "HSPA", 8: "TD-SCDMA", 9: "HSPA+", 10: "EV-DO rev. 0",
                11: "EV-DO rev. A", 12: "EV-DO rev. B", 13: "1xRTT", 14: "UMB", 15: "1xEVDV",
                16: "3xRTT", 17: "HSPA+", 18: "HSPA+", 19: "LTE", 41: "WCDMA", 44: "HSPA",
                45: "HSPA+", 46: "DC-HSPA+", 101: "LTE"}
SIM = {0: "invalid", 1: "ready", 2: "invalid for calls", 3: "invalid for data",
       4: "invalid", 240: "ROM SIM", 255: "missing"}
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


class HilinkSource:
    """One HiLink router: its session, the calls it supports, its latest connection status."""

    def __init__(self, config: SourceConfig, clock: Clock) -> None:
        settings = config.settings
        self.config = config
        self.clock = clock
        self.url: str = settings.get("url") or "http://192.168.8.1/"
        self.username: str = settings.get("username") or "admin"
        self.timeout: float = settings.get("timeout") or 5.0
        self._password: str = settings.get("password", "")
        self._password_file: str = settings.get("password_file", "")
        self._lock = threading.Lock()
        self._client: Any = None
        self._logged_in = False
        self._refused = ""
        """Why the login was refused: no login is tried again."""
        self._locked_until = 0
        self._dropped: set[str] = set()
        self._serial = ""
        """The router's serial number as last read in this run: the counters' life."""
        self._ask_serial = True
        """``device.information`` is asked this cycle: after a login, until it answers."""
        self._told_unparsed = False
        self._link: tuple[int, int] | None = None
        """(ConnectionStatus, when read) of the latest poll that read it."""

    # The collector's side.
    def poll(self) -> list[Reading]:
        with self._lock:
            try:
                answers = self._cycle()
            except Exception:
                self._link = None
                raise
            at = self.clock()
            status = answers.get("monitoring.status")
            self._link = (status.pop("code"), at) if status else None
            life = self._life()
        gauges: dict[str, float | str] = {}
        for name, answer in answers.items():
            if name != "monitoring.traffic_statistics":
                gauges.update(answer)
        traffic = answers.get("monitoring.traffic_statistics")
        counters = {}
        if traffic is not None and life is not None:
            counters = {"rx": traffic.pop("rx"), "tx": traffic.pop("tx")}
            gauges.update(traffic)
        if not counters and not gauges:
            return []
        return [Reading(key=f"{self.config.name}:wan", at=at, counters=counters,
                        life=life or self.url, held=True, gauges=gauges)]

    def refuse(self, reason: str) -> None:
        """No login ever again in this object, and every poll and action raises
        ``LoginRefused(reason)``: the store says these settings' login was refused."""
        with self._lock:
            self._refused = reason
        self.close()

    def close(self) -> None:
        """Log out, if logged in; nothing here ever logs in."""
        with self._lock:
            if self._client is not None and self._logged_in:
                with contextlib.suppress(Exception):  # the router may be gone: nothing to do
                    self._client.user.logout()
            self._disconnect()

    # The keeper's side.
    def link_evidence(self) -> tuple[bool, str] | None:
        """From this cycle's ``monitoring/status``: (True, why) when the router is connected,
        (False, why) when it says it is not, None when it says nothing (or nothing lately)."""
        found = self._link
        interval = self.config.interval or DEFAULT_INTERVAL_S
        if found is None or self.clock() - found[1] > STALE_POLLS * interval * 1000:
            return None
        code = found[0]
        if code == 901:
            return True, "router: connected"
        if code in TRANSIENT or code not in CONNECTION:
            return None
        return False, f"router: {CONNECTION[code]}"

    def set_mobile_data(self, on: bool) -> None:
        self._act(lambda client: client.dial_up.set_mobile_dataswitch(1 if on else 0))

    def reboot(self) -> None:
        """Reboot, not power off: ``set_control``'s default is power off. The connection
        status read before it is no evidence any more, and its sessions die with it (also when
        the answer was lost: the router may go down before it answers)."""
        from huawei_lte_api.enums.device import ControlModeEnum

        self._act(lambda client: client.device.set_control(ControlModeEnum.REBOOT),
                  then=self._forget_link_and_session)

    def _forget_link_and_session(self) -> None:
        self._link = None
        self._disconnect()

    # The router's side.
    def _cycle(self) -> dict[str, dict[str, Any]]:
        """Each call of this cycle that answered, parsed. One "login required" logs in again
        and ends the cycle with what was read before it."""
        from huawei_lte_api.exceptions import ResponseErrorLoginRequiredException

        answers: dict[str, dict[str, Any]] = {}
        with self._failures():
            self._ensure_session()
            try:
                for name, parse in CALLS.items():
                    if name == "device.information" and not self._ask_serial:
                        continue
                    answer = self._call(name, parse)
                    if answer is not None:
                        answers[name] = answer
            except ResponseErrorLoginRequiredException:
                log.info("source %s (router): the session ended; logging in again, reading "
                         "at the next poll", self.config.name)
                self._logged_in = False
                self._login(asked=True)
        information = answers.pop("device.information", None)
        if information is not None:
            self._ask_serial = self._told_unparsed = False
            if self._serial != information["serial"]:
                self._serial = information["serial"]
                log.info("source %s (router): %s, serial number %s", self.config.name,
                         information["model"] or "model unknown", self._serial)
        return answers

    def _life(self) -> str | None:
        """The counters' life: the serial known in this run; the URL for a model that gives
        none; None while the serial is still to be read (the totals are not counted)."""
        if self._serial:
            return self._serial
        return self.url if "device.information" in self._dropped else None

    def _call(self, name: str, parse: Callable[[dict], dict[str, Any] | None]
              ) -> dict[str, Any] | None:
        """One API call: its parsed answer, or None (not this time, or dropped for the run)."""
        from xml.parsers.expat import ExpatError

        from huawei_lte_api.exceptions import ResponseErrorNotSupportedException

        if name in self._dropped:
            return None
        group, method = name.split(".")
        try:
            answer = getattr(getattr(self._client, group), method)()
            return parse(answer if isinstance(answer, dict) else {})
        except ResponseErrorNotSupportedException:
            self._drop(name, "not supported by this model (100002)")
        except ExpatError:
            if name != "device.information":
                self._drop(name, "its answer does not parse")
            elif not self._told_unparsed:
                self._told_unparsed = True
                log.warning("source %s (router): %s its answer does not parse; asked again at "
                            "the next poll", self.config.name, name)
        except (KeyError, ValueError, TypeError):
            self._drop(name, "gives no serial number" if name == "device.information"
                       else "its answer does not parse")
        return None

    def _drop(self, name: str, why: str) -> None:
        self._dropped.add(name)
        log.warning("source %s (router): %s %s; not asked again in this run", self.config.name,
                    name, why)

    def _ensure_session(self) -> None:
        if self._logged_in:
            return
        self._check_may_login()
        if self._client is None:
            self._client = _Router(self.url, self.timeout)
        self._login()

    def _check_may_login(self) -> None:
        if self._refused:
            raise LoginRefused(self._refused)
        if self.clock() < self._locked_until:
            raise SourceError(self._locked_message())

    def _login(self, asked: bool = False) -> None:
        """One login attempt, unless the router says its login is locked. Without a password
        in the settings (a HiLink stick without a login page), none is made until the router
        asks for one (``asked``): then the settings must change."""
        from huawei_lte_api.exceptions import (
            LoginErrorInvalidCredentialsException,
            ResponseErrorException,
            ResponseErrorNotSupportedException,
        )

        self._check_may_login()
        self._ask_serial = True  # only a new session can be another router
        if not self._password and not self._password_file:
            if asked:
                self._refused = (f"{self.url} asks for a login: set password_file (or "
                                 "password) in its [[sources]] table")
                raise LoginRefused(self._refused)
            self._logged_in = True
            return
        password = self._secret()
        user = self._client.user
        try:
            state = user.state_login()
        except ResponseErrorNotSupportedException:
            self._logged_in = True  # a model without logins
            return
        if str(state.get("lockstatus")) == "1":
            self._lock_out(state)
        try:
            accepted = user.login(self.username, password, force_new_login=True)
        except LoginErrorInvalidCredentialsException as error:
            self._refused = (f"{self.url} refused the login of user {self.username!r} "
                             f"({error.code}: {REFUSED.get(error.code, 'credentials wrong')})")
            raise LoginRefused(self._refused) from None
        except ResponseErrorException as error:
            if error.code == TOO_MANY_ATTEMPTS:
                self._lock_out(self._lock_state(user))
            raise
        if not accepted:
            raise SourceError(f"{self.url} did not accept the login of user {self.username!r}")
        self._logged_in = True

    def _lock_state(self, user: Any) -> dict:
        from huawei_lte_api.exceptions import ResponseErrorException

        try:
            return user.state_login()
        except ResponseErrorException:
            return {}

    def _lock_out(self, state: dict) -> NoReturn:
        try:
            wait = int(state.get("remainwaittime") or 0) * LOCK_UNIT_S
        except ValueError:
            wait = 0
        self._locked_until = self.clock() + (wait or LOCK_UNKNOWN_S) * 1000
        raise SourceError(self._locked_message())

    def _locked_message(self) -> str:
        until = datetime.fromtimestamp(self._locked_until / 1000).strftime("%H:%M:%S")
        return (f"{self.url} locked its login after too many failed attempts; no login "
                f"before {until}")

    def _secret(self) -> str:
        if self._password:
            return self._password
        try:
            found = read_secret_file(self._password_file,
                                     f"sources {self.config.name!r}: password_file")
        except ConfigError as error:
            raise SourceError(str(error)) from None
        if not found:
            raise SourceError(f"sources {self.config.name!r}: password_file "
                              f"{self._password_file} is empty")
        return found

    def call(self, call: Callable[[Any], T]) -> T:
        """``call`` with the router's API groups (``client.sms...``) on this source's
        session, as an action is made: its answer, or ``SourceError`` in one line."""
        return self._act(call)

    def _act(self, act: Callable[[Any], T], then: Callable[[], None] | None = None) -> T:
        """An action the keeper asked for; a session that ended is logged in again once.
        ``then`` follows it, done or failed, under the same lock (so before any poll)."""
        from huawei_lte_api.exceptions import ResponseErrorLoginRequiredException

        with self._lock, self._failures():
            try:
                self._ensure_session()
                try:
                    return act(self._client)
                except ResponseErrorLoginRequiredException:
                    self._logged_in = False
                    self._login(asked=True)
                    return act(self._client)
            finally:
                if then is not None:
                    then()

    def _disconnect(self) -> None:
        if self._client is not None:
            self._client.connection.close()
        self._client, self._logged_in = None, False

    @contextlib.contextmanager
    def _failures(self) -> Iterator[None]:
        """The router's and the network's errors as one-line ``SourceError``s."""
        from xml.parsers.expat import ExpatError

        import requests
        from huawei_lte_api.exceptions import ResponseErrorException

        try:
            yield
        except SourceError:
            raise
        except ExpatError:
            raise SourceError(f"{self.url} does not answer as a HiLink router "
                              "(its answer is not XML)") from None
        except requests.Timeout:
            raise SourceError(f"{self.url} not answering: no answer in "
                              f"{self.timeout:g}s") from None
        except requests.ConnectionError as error:
            raise SourceError(f"{self.url} not answering: {_reason(error)}") from None
        except requests.RequestException as error:
            raise SourceError(f"{self.url}: {type(error).__name__}") from None
        except ResponseErrorException as error:
            raise SourceError(f"{self.url} answered error {error.code}") from None


class _Router:
    """The API groups a source uses, over one connection (``huawei_lte_api.Client`` would make
    and import all sixty)."""

    def __init__(self, url: str, timeout: float) -> None:
        from huawei_lte_api.api.Device import Device
        from huawei_lte_api.api.DialUp import DialUp
        from huawei_lte_api.api.Monitoring import Monitoring
        from huawei_lte_api.api.Net import Net
        from huawei_lte_api.api.Sms import Sms
        from huawei_lte_api.api.User import User
        from huawei_lte_api.Connection import Connection

        self.connection = Connection(url, timeout=timeout)  # no credentials: no login yet
        self.device, self.dial_up = Device(self.connection), DialUp(self.connection)
        self.monitoring, self.net = Monitoring(self.connection), Net(self.connection)
        self.user, self.sms = User(self.connection), Sms(self.connection)


def _reason(error: Exception) -> str:
    found = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", str(error))
    return found.group(1).strip().lower() if found else "the connection failed"


def _number(value: object) -> float | None:
    """``-95dBm``, ``>=-44dBm``, ``13dB`` as a number; None when there is none."""
    found = NUMBER.search(str(value)) if value is not None else None
    return float(found.group()) if found else None


def _whole(value: object) -> int:
    return int(str(value).strip())


def _information(answer: dict) -> dict[str, Any]:
    serial = str(answer["SerialNumber"] or "").strip()
    if not serial:
        raise ValueError("no serial number")
    return {"serial": serial, "model": answer.get("DeviceName") or ""}


def _traffic(answer: dict) -> dict[str, Any] | None:
    if answer["TotalDownload"] is None or answer["TotalUpload"] is None:
        return None  # not counted yet (a router starting up): not this time
    found: dict[str, Any] = {"rx": _whole(answer["TotalDownload"]),
                             "tx": _whole(answer["TotalUpload"])}
    for gauge, field in (("rx_rate", "CurrentDownloadRate"), ("tx_rate", "CurrentUploadRate")):
        if (rate := _number(answer.get(field))) is not None:
            found[gauge] = rate
    return found


def _status(answer: dict) -> dict[str, Any]:
    code = _whole(answer["ConnectionStatus"])
    found: dict[str, Any] = {"code": code,
                             "connection": CONNECTION.get(code, f"status {code}")}
    for field, names in (("CurrentNetworkTypeEx", NETWORK_TYPE_EX),
                         ("CurrentNetworkType", NETWORK_TYPE)):
        if answer.get(field) not in (None, ""):
            kind = _whole(answer[field])
            found["network_type"] = names.get(kind, f"type {kind}")
            break
    if answer.get("SimStatus") not in (None, ""):
        sim = _whole(answer["SimStatus"])
        found["sim"] = SIM.get(sim, f"status {sim}")
    if answer.get("RoamingStatus") not in (None, ""):
        found["roaming"] = "yes" if _whole(answer["RoamingStatus"]) else "no"
    if answer.get("WanIPAddress"):
        found["wan_ip"] = str(answer["WanIPAddress"]).strip()
    return found


def _signal(answer: dict) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name in ("rsrp", "rsrq", "sinr", "rssi"):
        if (value := _number(answer.get(name))) is not None:
            found[name] = value
    for name in ("band", "cell_id"):
        if answer.get(name) not in (None, ""):
            found[name] = str(answer[name]).strip()
    return found


def _plmn(answer: dict) -> dict[str, Any]:
    name = (answer.get("FullName") or answer.get("ShortName") or "").strip()
    return {"operator": name} if name else {}


def _month(answer: dict) -> dict[str, Any]:
    return {"month_rx": _whole(answer["CurrentMonthDownload"]),
            "month_tx": _whole(answer["CurrentMonthUpload"])}


CALLS: dict[str, Callable[[dict], dict[str, Any] | None]] = {
    "device.information": _information,
    "monitoring.traffic_statistics": _traffic,
    "monitoring.status": _status,
    "device.signal": _signal,
    "net.current_plmn": _plmn,
    "monitoring.month_statistics": _month,
}
"""Each cycle's calls, in order; ``device.information`` (the serial, the counter's life) after
each login until it answers, since only a new session can be another router."""


def no_credentials(url: str) -> str:
    """``url`` unless it holds a user name or password (checked before anything repeats the
    url in an error). The B593's settings share it."""
    if "@" in url:
        raise ValueError("put the user name in 'username' and the password in 'password' or "
                         "'password_file', not in the url")
    return url


password_file = absolute_path("/etc/traffic/router-password")
"""The check of ``password_file``; the B593's settings share it."""


def _url(value: object) -> str:
    url = no_credentials(text(value))
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected the router's address such as 'http://192.168.8.1/', "
                         f"got {url!r}")
    return url


def _username(value: object) -> str:
    name = text(value)
    if not name.strip():
        raise ValueError("expected the router's user name, such as 'admin'")
    return name


def _create(config: SourceConfig, clock: Clock) -> HilinkSource:
    logging.getLogger("huawei_lte_api").setLevel(logging.INFO)  # its debug lines show passwords
    return HilinkSource(config, clock)


SOURCE_TYPE = SourceType(
    name="hilink", create=_create, label="router", default_interval=DEFAULT_INTERVAL_S,
    schema={"url": ("http://192.168.8.1/", _url), "username": ("admin", _username),
            "password": ("", secret), "password_file": ("", password_file),
            "timeout": ("5s", duration)},
    table_check=password_given_once(required=False))

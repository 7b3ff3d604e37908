"""USB modems read through their AT command port with pyserial: gauges only.

The kernel counts the modem's bytes (``ppp0``, ``wwan0``); through AT a modem tells what the
family asks about when the link is slow or gone: the signal (``AT+CSQ``), whether it is
registered and where (``AT+CEREG?``, ``AT+CREG?``), the operator and the access technology
(``AT+COPS?``, Huawei's ``AT^SYSINFOEX``) and the SIM's state (``AT+CPIN?``). A command a
modem answers with a plain ``ERROR`` is not supported by it and is not asked again in the run.

Each poll is a few short exchanges on the source's own thread and interval (a minute unless
``interval`` says otherwise), never inside the counter polls.

The port is shared politely: a port held by another program (pppd dialling on a single-port
modem, which writes a UUCP lock file ``LCK..ttyUSB0``; or a program that locked it with
``flock``, as pyserial's ``exclusive`` does; or one that set ``TIOCEXCL``) is skipped for that
cycle, said once, and the source stays up.

SIM safety: a PIN is sent only when the SIM asks for it, never when the modem says a single
attempt is left, and only while the last PIN sent with these settings was not refused. A refused
PIN raises ``LoginRefused``: the collector keeps the settings' fingerprint in the store and
polls the modem no more until the settings (or the PIN file) change, across restarts. A SIM
that asks for its PUK is only reported (the ``sim`` gauge ``puk required``), never answered.
"""

import contextlib
import csv
import errno
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from collector.sources import (
    Clock,
    LoginRefused,
    SourceError,
    SourceType,
    mark_refused,
    password_given_once,
    refused_devices,
    refused_in_store,
)
from traffic.config import (
    ConfigError,
    SourceConfig,
    absolute_path,
    duration,
    read_secret_file,
)
from traffic.counters import Reading
from traffic.sim import attempts_left

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 60.0
BY_ID_DIR = "/dev/serial/by-id"
LOCK_DIR = "/var/lock"
PROBE_TIMEOUT_S = 1.0
"""How long a port found in ``by_id_dir`` has to answer ``AT`` before the next is tried."""
BAUD = 115200
"""USB modems ignore the rate; a real serial line wants the usual one."""
CTRL_Z, ESC = b"\x1a", b"\x1b"
"""What ends a text after ``> `` (send it), and what cancels it."""

SIM_STATES = {"READY": "ready", "SIM PIN": "pin required", "SIM PUK": "puk required",
              "SIM PIN2": "pin2 required", "SIM PUK2": "puk2 required",
              "PH-SIM PIN": "locked to another SIM", "PH-NET PIN": "locked to a network"}
"""``+CPIN:`` codes as the ``sim`` gauge words them (``pin required`` and ``puk required``
are the ones alerts know, as for a router)."""
CME_SIM = {"10": "missing", "13": "failure", "14": "busy", "15": "wrong"}
CME_WRONG_PIN = ("16", "incorrect password")
REGISTRATION = {0: "not registered", 1: "home", 2: "searching", 3: "denied", 4: "unknown",
                5: "roaming", 6: "home", 7: "roaming", 8: "emergency only", 9: "home",
                10: "roaming"}
"""``+CREG``/``+CEREG`` ``<stat>`` (6, 7: SMS only; 9, 10: CSFB not preferred)."""
ACCESS = {0: "GSM", 1: "GSM", 2: "WCDMA", 3: "EDGE", 4: "HSDPA", 5: "HSUPA", 6: "HSPA",
          7: "LTE", 8: "EC-GSM-IoT", 9: "NB-IoT", 10: "LTE", 11: "5G SA", 12: "5G SA",
          13: "5G NSA"}
"""``+COPS`` ``<AcT>``, as the ``network_type`` gauge words it (the router's words)."""


class Held(Exception):
    """Another program holds the port: the message says who."""


class AtError(Exception):
    """The modem's final answer to a command was an error: the message is that answer."""

    @property
    def unsupported(self) -> bool:
        return str(self) == "ERROR"

    @property
    def wrong_password(self) -> bool:
        return str(self).partition(":")[2].strip().lower() in CME_WRONG_PIN


def lock_file(port: str, lock_dir: str) -> str:
    """The UUCP lock file a dialler writes for ``port`` (``LCK..ttyUSB0``), by its real name."""
    return os.path.join(lock_dir, "LCK.." + os.path.basename(os.path.realpath(port)))


def holder(port: str, lock_dir: str) -> str:
    """Who holds ``port`` by its UUCP lock file ("pppd (pid 812)"), or "" (no lock, or a
    stale one whose process is gone)."""
    try:
        with open(lock_file(port, lock_dir), "rb") as file:
            pid = int(file.read(64).split()[0])
    except (OSError, ValueError, IndexError):
        return ""
    if pid == os.getpid():
        return ""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return ""
    except PermissionError:
        pass
    try:
        with open(f"/proc/{pid}/comm") as file:
            return f"{file.read().strip()} (pid {pid})"
    except OSError:
        return f"pid {pid}"


class AtPort:
    """One open AT port: a command at a time, its answer lines without the echo and the
    final ``OK``."""

    def __init__(self, serial: Any, timeout: float) -> None:
        self._serial = serial
        self.timeout = timeout

    @classmethod
    @contextlib.contextmanager
    def opened(cls, port: str, timeout: float, lock_dir: str) -> Iterator["AtPort"]:
        """The port opened for a short exchange, exclusively (``flock``); ``Held`` when
        another program holds it, ``SourceError`` when it cannot be opened."""
        import serial

        found = holder(port, lock_dir)
        if found:
            raise Held(f"{port} is held by {found}")
        try:
            connection = serial.Serial(port, BAUD, timeout=timeout, write_timeout=timeout,
                                       exclusive=True)
        except serial.SerialException as error:
            if error.errno in (errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK):
                raise Held(f"{port} is held by another program") from None
            reason = os.strerror(error.errno) if error.errno else "it does not open"
            raise SourceError(f"{port}: {reason.lower()}") from None
        try:
            yield cls(connection, timeout)
        finally:
            connection.close()

    def command(self, line: str, timeout: float | None = None,
                body: Callable[[str], int] | None = None) -> list[str]:
        """Send ``line``; its answer lines (waited for ``timeout`` seconds, the port's own by
        default), or ``AtError`` with the modem's error. ``body`` tells, for an answer line,
        how many bytes of text follow it (a message's, after its ``+CMGL:`` line): they are
        the next answer line whatever they say, even ``OK``."""
        import serial

        try:
            self._serial.reset_input_buffer()
            self._serial.write(line.encode("ascii") + b"\r")
            return self._answer(line, timeout, body)
        except serial.SerialException as error:
            raise SourceError(f"{self._serial.port}: {_first_line(error)}") from None

    def command_with_text(self, line: str, data: bytes, timeout: float) -> list[str]:
        """Send ``line``, then ``data`` and Ctrl-Z after the modem's ``> `` prompt (as
        ``AT+CMGS`` wants); the answer lines, waited for up to ``timeout`` seconds, or
        ``AtError``. A prompt that does not come is cancelled with Esc."""
        import serial

        try:
            self._serial.reset_input_buffer()
            self._serial.write(line.encode("ascii") + b"\r")
            self._prompt(line)
            self._serial.write(data + CTRL_Z)
            return self._answer(line, timeout)
        except serial.SerialException as error:
            raise SourceError(f"{self._serial.port}: {_first_line(error)}") from None

    def _prompt(self, line: str) -> None:
        deadline = time.monotonic() + self.timeout
        seen = b""
        while (left := deadline - time.monotonic()) > 0:
            self._serial.timeout = left
            seen += self._serial.read(max(self._serial.in_waiting, 1))
            if seen.endswith(b"> "):
                return
            for answer in seen.decode("latin-1").split("\r\n")[:-1]:
                if _is_error(answer.strip()):
                    raise AtError(answer.strip())
        self._serial.write(ESC)
        raise SourceError(f"{self._serial.port} did not prompt for the text of {line} within "
                          f"{self.timeout:g}s")

    def _answer(self, line: str, timeout: float | None = None,
                body: Callable[[str], int] | None = None) -> list[str]:
        """The lines up to the final ``OK``, as the modem wrote them: bytes as Latin-1 (one
        character each, so that a text in the GSM alphabet can be read back as its bytes)."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        lines: list[str] = []
        while (left := deadline - time.monotonic()) > 0:
            self._serial.timeout = left
            raw = self._serial.read_until(b"\n")
            if not raw.endswith(b"\n"):
                break
            answer = raw.decode("latin-1").strip("\r\n \t")
            if not answer or answer == line:
                continue  # a blank line, or the modem's echo
            if answer == "OK":
                return lines
            if _is_error(answer):
                raise AtError(answer)
            lines.append(answer)
            if body is not None and (size := body(answer)) > 0:
                self._serial.timeout = max(deadline - time.monotonic(), 0)
                text = self._serial.read(size)
                if not text.endswith(b"\n"):  # the line's end, or what a length left out
                    text += self._serial.read_until(b"\n")
                lines.append(text.decode("latin-1").rstrip("\r\n"))
        raise SourceError(f"{self._serial.port} did not answer {_shown(line)} within "
                          f"{timeout:g}s")


def _is_error(answer: str) -> bool:
    return answer in ("ERROR", "NO CARRIER") or answer.startswith(("+CME ERROR", "+CMS ERROR"))


def _shown(line: str) -> str:
    """A command as an error may name it: a PIN's command without the PIN."""
    return line.split("=")[0] + "=..." if line.upper().startswith(("AT+CPIN=", "AT+CLCK=")) \
        else line


def _first_line(error: Exception) -> str:
    return (str(error).splitlines() or [type(error).__name__])[0]


def fields(answer: str) -> list[str]:
    """The values after ``+NAME:``, quotes removed: ``+COPS: 0,0,"A, B",7`` ->
    ``["0", "0", "A, B", "7"]``."""
    values = answer.partition(":")[2].strip()
    return [value.strip() for value in next(csv.reader([values], skipinitialspace=True), [])]


def _number(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


def sim_state(at: AtPort) -> str:
    """``AT+CPIN?`` as its code (``READY``, ``SIM PIN``...), or a word for a SIM the modem
    cannot use (``missing``, ``failure``)."""
    try:
        lines = at.command("AT+CPIN?")
    except AtError as error:
        code = str(error).partition(":")[2].strip()
        if code in CME_SIM:
            return CME_SIM[code]
        raise SourceError(f"AT+CPIN? answered {error}") from None
    found = next((line for line in lines if line.startswith("+CPIN:")), "")
    return found.partition(":")[2].strip().upper() or "unknown"


def attempts(at: AtPort) -> dict[str, int]:
    """The SIM's attempts left (``pin_attempts``, ``puk_attempts``), where the modem tells:
    ``AT+CPINR`` (3GPP), else Huawei's ``AT^CPIN?``; {} when neither answers."""
    found: dict[str, int] = {}
    with contextlib.suppress(AtError):
        for line in at.command("AT+CPINR"):
            values = fields(line)
            if line.startswith("+CPINR:") and len(values) >= 2:
                name = {"SIM PIN": "pin_attempts", "SIM PUK": "puk_attempts"}.get(values[0])
                if name and (left := _number(values[1])) is not None:
                    found[name] = left
        return found
    with contextlib.suppress(AtError):
        for line in at.command("AT^CPIN?"):
            values = fields(line)
            if line.startswith("^CPIN:") and len(values) >= 4:
                for name, index in (("puk_attempts", 2), ("pin_attempts", 3)):
                    if (left := _number(values[index])) is not None:
                        found[name] = left
    return found


def sim_id(at: AtPort) -> str:
    """The SIM's ICCID (``AT+CCID``, else Huawei's ``AT^ICCID?``), readable before its PIN is
    entered: what tells one SIM from another. "" when the modem tells neither."""
    for command in ("AT+CCID", "AT^ICCID?"):
        with contextlib.suppress(AtError):
            for line in at.command(command):
                found = (line.partition(":")[2] if ":" in line else line).strip().strip('"')
                if found.isalnum() and len(found) >= 10:
                    return found
    return ""


def attempts_text(left: dict[str, int], name: str = "pin_attempts") -> str:
    return f" ({attempts_left(left[name])})" if name in left else ""


def send_pin(at: AtPort, pin: str, where: str) -> None:
    """``AT+CPIN`` with ``pin``; ``LoginRefused`` (with the attempts left) when the SIM
    refuses it."""
    try:
        at.command(f'AT+CPIN="{pin}"')
    except AtError as error:
        if not error.wrong_password and not error.unsupported:
            raise SourceError(f"the modem answered AT+CPIN=... with {error}") from None
        raise _refused(at, where) from None


def set_pin_lock(at: AtPort, pin: str, on: bool, where: str) -> None:
    """``AT+CLCK="SC"``: the SIM asks for its PIN at power-on (``on``) or not; a refused PIN
    raises ``LoginRefused``."""
    try:
        at.command(f'AT+CLCK="SC",{1 if on else 0},"{pin}"')
    except AtError as error:
        if not error.wrong_password:
            raise SourceError(f"the modem answered AT+CLCK=... with {error}") from None
        raise _refused(at, where) from None


def _refused(at: AtPort, where: str) -> LoginRefused:
    return LoginRefused(f"the SIM refused the PIN of {where}{attempts_text(attempts(at))}; "
                        "it is not sent again until the setting changes")


def pin_lock(at: AtPort) -> bool | None:
    """Whether the SIM asks for its PIN at power-on (``AT+CLCK="SC",2``); None if not told."""
    try:
        lines = at.command('AT+CLCK="SC",2')
    except AtError:
        return None
    found = next((line for line in lines if line.startswith("+CLCK:")), "")
    return {"1": True, "0": False}.get(found.partition(":")[2].strip())


def find_port(by_id_dir: str, lock_dir: str, timeout: float, skip: str = "") -> str:
    """The first port in ``by_id_dir`` (in name order) that answers ``AT``; ports another
    program holds are passed over. ``Held`` when every port there is held, ``SourceError``
    when none answers."""
    try:
        names = sorted(os.listdir(by_id_dir))
    except OSError as error:
        raise SourceError(f"no modem found: {by_id_dir}: {error.strerror.lower()}; is it "
                          "plugged in? (or set port)") from None
    held = []
    for name in names:
        port = os.path.join(by_id_dir, name)
        if port == skip:
            continue
        try:
            with AtPort.opened(port, min(timeout, PROBE_TIMEOUT_S), lock_dir) as at:
                at.command("AT")
                return port
        except Held as error:
            held.append(str(error))
        except (SourceError, AtError):
            continue
    if held:
        raise Held("; ".join(held))
    raise SourceError(f"no port in {by_id_dir} answers AT ({len(names)} tried; set port)")


class ModemSource:
    """One modem: its port (set, or found once per run), the commands it does not support,
    and whether its PIN was refused."""

    def __init__(self, config: SourceConfig, clock: Clock, where: str = "") -> None:
        settings = config.settings
        self.config = config
        self.clock = clock
        self.where = where or f"sources {config.name!r}"
        self.port_setting: str = settings.get("port", "")
        self.timeout: float = settings.get("timeout") or 2.0
        self.by_id_dir: str = settings.get("by_id_dir") or BY_ID_DIR
        self.lock_dir: str = settings.get("lock_dir") or LOCK_DIR
        self._pin: str = settings.get("pin", "")
        self._pin_file: str = settings.get("pin_file", "")
        self._lock = threading.Lock()
        self._port = self.port_setting
        self._dropped: set[str] = set()
        self._held = ""
        """Who held the port at the latest poll (said once while it lasts)."""
        self._refused = ""
        self.refused_device = ""
        """The ICCID of the SIM that refused the PIN ("" when the modem did not tell it), for
        the collector to keep."""
        self._refused_sims: set[str] = set()
        """The ICCIDs of the SIMs that refused the PIN in this run."""
        self.refused_before: Callable[[str], bool] | None = None
        """Whether the store says a SIM (by its ICCID) refused the PIN of these settings; None
        when it names none. Set by the collector."""
        self._said: set[str] = set()

    def poll(self) -> list[Reading]:
        with self._lock:
            if self._refused:
                raise LoginRefused(self._refused)
            try:
                with contextlib.ExitStack() as stack:
                    gauges = self._read(self.open(stack))
            except SourceError:
                self._port = self.port_setting  # a port found may be another device by now
                raise
            except Held as error:
                if str(error) != self._held:
                    self._held = str(error)
                    log.info("source %s (modem): %s; not read while it is", self.config.name,
                             self._held)
                return []
            if self._held:
                log.info("source %s (modem): the port is free again", self.config.name)
                self._held = ""
            return [Reading(key=f"{self.config.name}:modem", at=self.clock(), counters={},
                            life=self._port, gauges=gauges)]

    def refuse(self, reason: str) -> None:
        with self._lock:
            self._refused = reason

    @property
    def port_lock(self) -> threading.Lock:
        """Held while the port is in use: by a poll, and by whatever else uses the port of
        this modem in the process (its SMS), which then never finds it held by itself."""
        return self._lock

    def refused_sim(self, iccid: str) -> bool:
        """Whether the SIM of ``iccid`` refused the PIN of these settings, in this run or
        before."""
        return bool(iccid) and (iccid in self._refused_sims or (
            self.refused_before is not None and self.refused_before(iccid)))

    def refusal_lifted(self) -> bool:
        """Whether the SIM that refused the PIN has been swapped for one that did not (its
        ICCID tells): then the modem is polled again, and the PIN sent when the SIM asks.
        Asked by the collector at each of its polls while the PIN stays refused: one short
        exchange, no PIN sent; never while no SIM is known to have refused it (a modem that
        does not tell the ICCID: the settings have to change)."""
        if not self._refused_sims and self.refused_before is None:
            return False
        with self._lock, contextlib.ExitStack() as stack:
            try:
                iccid = sim_id(self.open(stack))
            except (Held, SourceError):
                return False
            if not iccid or self.refused_sim(iccid):
                return False
            self._refused, self.refused_device = "", ""
            log.info("source %s (modem): another SIM is in the modem; its PIN is sent when "
                     "it asks", self.config.name)
            return True

    def close(self) -> None:
        """Nothing is held between polls."""

    def open(self, stack: contextlib.ExitStack) -> AtPort:
        """The modem's port, opened: the setting, else the port found earlier in the run,
        else (or when that one is held) the first one in ``by_id_dir`` that answers."""
        if not self._port:
            self._port = find_port(self.by_id_dir, self.lock_dir, self.timeout)
            log.info("source %s (modem): found at %s", self.config.name, self._port)
        try:
            return stack.enter_context(AtPort.opened(self._port, self.timeout, self.lock_dir))
        except Held as error:
            if self.port_setting:
                raise
            tried, self._port = self._port, ""
            self._port = find_port(self.by_id_dir, self.lock_dir, self.timeout, skip=tried)
            log.info("source %s (modem): %s; using %s", self.config.name, error, self._port)
            return stack.enter_context(AtPort.opened(self._port, self.timeout, self.lock_dir))

    def _read(self, at: AtPort) -> dict[str, float | str]:
        gauges: dict[str, float | str] = {}
        gauges.update(self._sim(at))
        for command, parse in COMMANDS:
            lines = self._ask(at, command)
            if lines is not None:
                for name, value in parse(lines).items():
                    gauges.setdefault(name, value)
        return gauges

    def _ask(self, at: AtPort, command: str) -> list[str] | None:
        """A command's answer; None when it failed this time, or is dropped for the run."""
        if command in self._dropped:
            return None
        try:
            return at.command(command)
        except AtError as error:
            if error.unsupported:
                self._dropped.add(command)
                log.info("source %s (modem): %s is not supported; not asked again in this "
                         "run", self.config.name, command)
            return None

    def _sim(self, at: AtPort) -> dict[str, float | str]:
        state = sim_state(at)
        left: dict[str, int] | None = None
        if state == "SIM PIN" and (self._pin or self._pin_file):
            left = attempts(at)
            if left.get("pin_attempts") == 1:
                self._say_once("last", logging.ERROR, "the SIM has a single PIN attempt left: "
                               "not tried automatically; enter it by hand")
            else:
                self._send_pin(at)
                log.info("source %s (modem): the SIM accepted its PIN", self.config.name)
                state, left = sim_state(at), None
        found: dict[str, float | str] = {"sim": SIM_STATES.get(state, state.lower())}
        if state != "READY":
            found.update(attempts(at) if left is None else left)  # asked once a poll
        if state == "SIM PUK":
            self._say_once("puk", logging.ERROR, "the SIM is locked and asks for its PUK; "
                           "nothing is sent to it: enter the PUK by hand")
        return found

    def _send_pin(self, at: AtPort) -> None:
        """The PIN, unless this SIM (by its ICCID) refused it before; ``LoginRefused`` when it
        refuses it now, or did before."""
        iccid = sim_id(at)
        try:
            if self.refused_sim(iccid):
                raise LoginRefused(f"this SIM refused the PIN of {self.where} before; it is "
                                   "not sent again until the setting changes")
            send_pin(at, self.pin(), self.where)
        except LoginRefused as error:
            self._refused, self.refused_device = str(error), iccid
            if iccid:
                self._refused_sims.add(iccid)
            raise

    def _say_once(self, what: str, level: int, message: str) -> None:
        if what not in self._said:
            self._said.add(what)
            log.log(level, "source %s (modem): %s", self.config.name, message)

    def pin(self) -> str:
        """The PIN of the settings; "" when they have none."""
        if self._pin or not self._pin_file:
            return self._pin
        try:
            found = read_secret_file(self._pin_file, f"{self.where}: pin_file")
        except ConfigError as error:
            raise SourceError(str(error)) from None
        if not is_pin(found):
            raise SourceError(f"{self.where}: pin_file {self._pin_file} does not hold a PIN "
                              "(4 to 8 digits on its first line)")
        return found


def switch_pin_lock(config: SourceConfig, where: str, store: Any, on: bool, typed: str,
                    clock: Clock, wait_s: float = 5.0) -> str:
    """``traffic modem pin-lock on|off``: the SIM asks for its PIN at power-on or not, with the
    PIN of the settings (or ``typed`` when they have none). A PIN of the settings the SIM
    refused before (this SIM, by its ICCID, or any while the collector holds it refused) is
    not sent; one it refuses now is kept as refused, as the collector keeps it. The port is
    waited for ``wait_s`` while another program holds it (the collector's own short
    exchanges). Returns what was done; ``SourceError`` says why not."""
    source = ModemSource(config, clock, where)
    source.refused_before = refused_devices(store, config)
    own = source.pin()
    if own and refused_in_store(store, config):
        raise SourceError(f"the SIM refused the PIN of {where} before: it is not sent again "
                          "until the setting changes")
    pin = own or typed
    deadline = time.monotonic() + wait_s
    iccid = ""
    while True:
        try:
            with contextlib.ExitStack() as stack:
                at = source.open(stack)
                iccid = sim_id(at)
                if own and source.refused_sim(iccid):
                    raise SourceError(f"this SIM refused the PIN of {where} before: it is not "
                                      "sent again until the setting changes")
                return _switch(at, pin, on, where)
        except Held as error:
            if time.monotonic() >= deadline:
                raise SourceError(f"{error}: stop it, or set port to another of the modem's "
                                  "AT ports") from None
            time.sleep(0.2)
        except LoginRefused:
            if own:
                mark_refused(store, config, iccid)
            raise


def _switch(at: AtPort, pin: str, on: bool, where: str) -> str:
    state = sim_state(at)
    if state == "SIM PUK":
        raise SourceError("the SIM is locked and asks for its PUK; nothing was sent: enter "
                          "the PUK by hand")
    if state == "SIM PIN":
        if attempts(at).get("pin_attempts") == 1:
            raise SourceError("the SIM has a single PIN attempt left; nothing was sent: "
                              "enter the PIN by hand")
        send_pin(at, pin, where)
    elif state != "READY":
        raise SourceError(f"the SIM is {SIM_STATES.get(state, state.lower())}")
    word = "on" if on else "off"
    if pin_lock(at) == on:
        return f"the SIM's PIN request is already {word}; nothing was changed"
    set_pin_lock(at, pin, on, where)
    return f"the SIM's PIN request is now {word}"


def _signal(lines: list[str]) -> dict[str, float | str]:
    """``+CSQ: <rssi>,<ber>``: 0 is -113 dBm or less, 31 is -51 dBm or more, 99 unknown."""
    for line in lines:
        values = fields(line)
        if line.startswith("+CSQ:") and values and (rssi := _number(values[0])) is not None:
            return {"rssi": float(-113 + 2 * rssi)} if 0 <= rssi <= 31 else {}
    return {}


def _registration(lines: list[str]) -> dict[str, float | str]:
    """``+CEREG: <n>,<stat>[,...]`` or ``+CREG:``: where the modem is registered."""
    for line in lines:
        values = fields(line)
        if line.startswith(("+CREG:", "+CEREG:", "+CGREG:")) and values:
            stat = _number(values[1] if len(values) > 1 else values[0])
            if stat is not None:
                word = REGISTRATION.get(stat, f"status {stat}")
                found: dict[str, float | str] = {"registration": word}
                if word in ("home", "roaming"):
                    found["roaming"] = "yes" if word == "roaming" else "no"
                return found
    return {}


def _operator(lines: list[str]) -> dict[str, float | str]:
    """``+COPS: <mode>[,<format>,<oper>[,<AcT>]]``."""
    for line in lines:
        values = fields(line)
        if line.startswith("+COPS:") and len(values) >= 3 and values[2]:
            found: dict[str, float | str] = {"operator": values[2]}
            if len(values) >= 4 and (act := _number(values[3])) is not None:
                found["network_type"] = ACCESS.get(act, f"type {act}")
            return found
    return {}


def _sysinfoex(lines: list[str]) -> dict[str, float | str]:
    """Huawei's ``^SYSINFOEX: <srv_status>,<srv_domain>,<roam>,<sim>,<lock>,<sysmode>,
    <sysmode_name>,<submode>,<submode_name>``: the finer access technology (DC-HSPA+)."""
    for line in lines:
        values = fields(line)
        if line.startswith("^SYSINFOEX:") and len(values) >= 7:
            if values[0] == "0":
                return {"network_type": "no service"}
            name = values[8] if len(values) >= 9 and values[8] else values[6]
            return {"network_type": name} if name else {}
    return {}


COMMANDS = (("AT^SYSINFOEX", _sysinfoex), ("AT+CSQ", _signal), ("AT+CEREG?", _registration),
            ("AT+CREG?", _registration), ("AT+COPS?", _operator))
"""Each poll's commands after the SIM's, in order; a gauge the first of them gave is kept
(``^SYSINFOEX``'s ``network_type`` over ``+COPS``'s, ``+CEREG``'s registration over
``+CREG``'s: a modem on LTE reports its 2G/3G registration as searching)."""


def is_pin(value: str) -> bool:
    """4 to 8 digits, as a SIM takes them."""
    return value.isdigit() and 4 <= len(value) <= 8 and value.isascii()


def _pin(value: object) -> str:
    if not isinstance(value, str) or (value and not is_pin(value)):
        raise ValueError("expected the SIM's PIN, 4 to 8 digits in quotes (the value is not "
                         "shown)")
    return value


def _automatic(config: SourceConfig) -> dict[str, str]:
    if config.settings.get("port"):
        return {}
    by_id = config.settings.get("by_id_dir") or BY_ID_DIR
    try:
        names = sorted(os.listdir(by_id))
    except OSError:
        return {"port": f"none found ({by_id} does not exist: no USB serial device)"}
    return {"port": f"the first of {len(names)} ports in {by_id} that answers AT"}


SOURCE_TYPE = SourceType(
    name="modem", create=ModemSource, label="modem", default_interval=DEFAULT_INTERVAL_S,
    schema={"port": ("", absolute_path("/dev/ttyUSB2")), "pin": ("", _pin),
            "pin_file": ("", absolute_path("/etc/traffic/sim-pin")), "timeout": ("2s", duration),
            "by_id_dir": (BY_ID_DIR, absolute_path(BY_ID_DIR)),
            "lock_dir": (LOCK_DIR, absolute_path(LOCK_DIR))},
    automatic=_automatic, table_check=password_given_once(False, "pin"))

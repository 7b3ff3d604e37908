"""A USB modem's AT command port on a pty: what the ``modem`` source and ``traffic modem``
talk to through real pyserial.

``ModemSim`` opens a pty pair, keeps the slave open (so the master never sees a hang-up
between two users) and answers on a thread, echoing each command as modems do by default:

``AT``, ``AT+CSQ``, ``AT+CREG?``, ``AT+CEREG?`` (``ERROR`` when ``cereg`` is None, a 3G
modem), ``AT+COPS?``, Huawei's ``AT^SYSINFOEX`` and ``AT^CPIN?`` (``ERROR`` unless
``huawei``), ``AT+CPINR`` (``ERROR`` when ``huawei``: those tell attempts through ``^CPIN``),
``AT+CPIN?`` (``READY``, ``SIM PIN``, ``SIM PUK``, or ``+CME ERROR: 10`` for ``missing``),
``AT+CCID`` (``AT^ICCID?`` when ``huawei``; ``ERROR`` without an ``iccid``),
``AT+CPIN="PIN"`` (a wrong PIN costs an attempt and answers ``+CME ERROR: 16``; the last one
turns the SIM to ``SIM PUK``), ``AT+CLCK="SC",<0|1|2>[,"PIN"]``. Anything else is ``ERROR``.
Until the SIM is ready the modem is not registered and has no operator. Every command
(``asked``) and every PIN sent is recorded.

SMS in text mode, as 3GPP TS 27.005 has them: ``AT+CMGF=<0|1>`` (PDU mode, 0, until told),
``AT+CSCS="GSM"`` (or ``"IRA"``), ``AT+CSDH=<0|1>`` (1: a listed message's header ends with
its type and length, in characters), ``AT+CMGL="ALL"`` (or another status) and ``AT+CMGR=<i>``
(``+CMS ERROR: 302`` in PDU mode; listing marks a message read), ``AT+CMGD=<i>`` (``+CMS
ERROR: 321`` for an index with no message), ``AT+CMGS="<number>"``: the ``> `` prompt, the text
(echoed) until Ctrl-Z (Esc cancels it), then ``+CMGS: <mr>``, or ``+CMS ERROR: <send_error>``
when the scenario sets one. Texts travel in the GSM alphabet's bytes (``@`` is 0, ``ä`` 0x7B,
``€`` Esc ``e``). The messages stored are the scenario's ``messages``; ``receive(number,
text)`` is a message arriving, ``sent`` lists what was sent as (number, text).

``hold(port, lock_dir, how)`` starts another process that holds the port the way a dialler
does: ``uucp`` writes ``LCK..<name>`` with its pid in ``lock_dir`` (as pppd does, with
``TIOCEXCL`` on the open port), ``flock`` locks the open port (pyserial's ``exclusive``).

Run as a module (``python -m tests.sim.modem``) it prints the port's path and answers until
interrupted; ``--hold PATH --lock-dir DIR --how uucp|flock`` is the holder.
"""

import argparse
import contextlib
import fcntl
import itertools
import os
import re
import select
import signal
import subprocess
import sys
import termios
import threading
import time
import tty
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

SIM_PIN, SIM_PUK, READY, MISSING = "SIM PIN", "SIM PUK", "READY", "missing"
PIN_TRIES, PUK_TRIES = 3, 10


@dataclass
class Scenario:
    csq: int = 20
    """``+CSQ`` rssi: 0..31, 99 unknown."""
    creg: int = 1
    cereg: int | None = 1
    operator: str = "Telia"
    act: int = 7
    huawei: bool = False
    sim: str = READY
    pin: str = "1234"
    pin_attempts: int = PIN_TRIES
    puk_attempts: int = PUK_TRIES
    pin_lock: bool = True
    echo: bool = True
    iccid: str | None = None
    """The SIM's ICCID (``AT+CCID``, Huawei's ``AT^ICCID?``); None: the modem does not tell."""
    messages: list["Stored"] = field(default_factory=list)
    csdh: bool = True
    """Whether ``AT+CSDH`` is answered (an old modem lists no lengths)."""
    send_error: int | None = None
    """``+CMS ERROR`` answered to ``AT+CMGS`` after the text (330: no service centre)."""


@dataclass
class Stored:
    """A message in the modem's memory."""

    index: int
    number: str
    text: str
    stamp: str
    """The service centre's time stamp, ``yy/MM/dd,hh:mm:ss±zz``."""
    read: bool = False


@dataclass
class ModemSim:
    scenario: Scenario = field(default_factory=Scenario)
    commands: list[str] = field(default_factory=list)
    pins_sent: list[str] = field(default_factory=list)
    sent: list[tuple[str, str]] = field(default_factory=list)
    """The messages sent, as (number, text)."""

    def __post_init__(self) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave, termios.TCSANOW)
        self.path = os.ttyname(self._slave)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name="modem-sim")
        self._lock = threading.Lock()
        self._text_mode = False
        self._lengths = False
        self._composing: str | None = None
        """The number a text is being typed for, after ``AT+CMGS``."""
        self._references = itertools.count(1)

    def start(self) -> "ModemSim":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> "ModemSim":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def asked(self, prefix: str) -> list[str]:
        """The commands received that start with ``prefix``."""
        with self._lock:
            return [command for command in self.commands if command.startswith(prefix)]

    def receive(self, number: str, text: str, stamp: str = "") -> Stored:
        """A message arriving now (or at ``stamp``), stored at the first free index."""
        with self._lock:
            used = {message.index for message in self.scenario.messages}
            index = next(index for index in itertools.count(0) if index not in used)
            stored = Stored(index, number, text, stamp or time.strftime(
                "%y/%m/%d,%H:%M:%S+00", time.gmtime()))
            self.scenario.messages.append(stored)
            return stored

    @property
    def stored(self) -> list[Stored]:
        with self._lock:
            return list(self.scenario.messages)

    def _serve(self) -> None:
        pending = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master], [], [], 0.05)
            if not ready:
                continue
            try:
                pending += os.read(self._master, 1024)
            except OSError:
                continue
            while True:
                if self._composing is not None:
                    end = re.search(b"[\x1a\x1b]", pending)
                    if end is None:
                        break
                    text, pending = pending[:end.start()], pending[end.end():]
                    self._write(self._typed(text, end.group() == b"\x1a"))
                    continue
                if b"\r" not in pending:
                    break
                raw, _, pending = pending.partition(b"\r")
                line = raw.decode("ascii", "replace").strip()
                if line:
                    self._write(self._reply(line))

    def _write(self, text: str) -> None:
        data = text.encode("latin-1")
        while data:
            written = os.write(self._master, data)
            data = data[written:]

    def _reply(self, line: str) -> str:
        with self._lock:
            self.commands.append(line)
            echo = line + "\r" if self.scenario.echo else ""
            try:
                lines = self._answer(line)
            except _Error as error:
                return f"{echo}\r\n{error}\r\n"
            except _Prompt:
                return f"{echo}\r\n> "
        body = "".join(f"\r\n{answer}" for answer in lines) + "\r\n" if lines else ""
        return f"{echo}{body}\r\nOK\r\n"

    def _answer(self, line: str) -> list[str]:
        for pattern, handler in COMMANDS:
            found = re.fullmatch(pattern, line, re.IGNORECASE)
            if found:
                return handler(self, *found.groups())
        raise _Error("ERROR")

    # The commands.
    def _at(self) -> list[str]:
        return []

    def _csq(self) -> list[str]:
        return [f"+CSQ: {self.scenario.csq},99"]

    def _registered(self) -> bool:
        return self.scenario.sim == READY

    def _creg(self) -> list[str]:
        stat = self.scenario.creg if self._registered() else 0
        return [f"+CREG: 0,{stat}"]

    def _cereg(self) -> list[str]:
        if self.scenario.cereg is None:
            raise _Error("ERROR")
        stat = self.scenario.cereg if self._registered() else 0
        return [f'+CEREG: 2,{stat},"00C3","01A2D101",7' if stat in (1, 5) else
                f"+CEREG: 2,{stat}"]

    def _cops(self) -> list[str]:
        if not self._registered() or not self.scenario.operator:
            return ["+COPS: 0"]
        return [f'+COPS: 0,0,"{self.scenario.operator}",{self.scenario.act}']

    def _sysinfoex(self) -> list[str]:
        if not self.scenario.huawei:
            raise _Error("ERROR")
        if not self._registered():
            return ['^SYSINFOEX: 0,0,0,255,,0,"",0,""']
        return ['^SYSINFOEX: 2,3,0,1,,6,"LTE",101,"LTE"']

    def _sim_ready(self) -> None:
        if self.scenario.sim == MISSING:
            raise _Error("+CME ERROR: 10")

    def _cpin_query(self) -> list[str]:
        self._sim_ready()
        return [f"+CPIN: {self.scenario.sim}"]

    def _cpinr(self) -> list[str]:
        if self.scenario.huawei:
            raise _Error("ERROR")
        self._sim_ready()
        return [f"+CPINR: SIM PIN,{self.scenario.pin_attempts},{PIN_TRIES}",
                f"+CPINR: SIM PUK,{self.scenario.puk_attempts},{PUK_TRIES}"]

    def _huawei_cpin(self) -> list[str]:
        if not self.scenario.huawei:
            raise _Error("ERROR")
        self._sim_ready()
        code = self.scenario.sim if self.scenario.sim != READY else "READY"
        return [f"^CPIN: {code},,{self.scenario.puk_attempts},{self.scenario.pin_attempts},"
                f"{PUK_TRIES},{PIN_TRIES}"]

    def _ccid(self, huawei: str | None) -> list[str]:
        if self.scenario.iccid is None or self.scenario.huawei != bool(huawei):
            raise _Error("ERROR")
        self._sim_ready()
        return [f"{'^ICCID' if huawei else '+CCID'}: {self.scenario.iccid}"]

    def _cpin_enter(self, pin: str) -> list[str]:
        self._sim_ready()
        if self.scenario.sim != SIM_PIN:
            raise _Error("+CME ERROR: 3")
        self.pins_sent.append(pin)
        self._check_pin(pin)
        self.scenario.sim = READY
        return []

    def _check_pin(self, pin: str) -> None:
        if pin == self.scenario.pin:
            self.scenario.pin_attempts = PIN_TRIES
            return
        self.scenario.pin_attempts -= 1
        if self.scenario.pin_attempts == 0:
            self.scenario.sim = SIM_PUK
        raise _Error("+CME ERROR: 16")

    def _clck(self, mode: str, pin: str | None) -> list[str]:
        self._sim_ready()
        if mode == "2":
            return [f"+CLCK: {int(self.scenario.pin_lock)}"]
        if pin is None or self.scenario.sim != READY:
            raise _Error("+CME ERROR: 3")
        self.pins_sent.append(pin)
        self._check_pin(pin)
        self.scenario.pin_lock = mode == "1"
        return []


    # SMS.
    def _csdh(self, show: str) -> list[str]:
        if not self.scenario.csdh:
            raise _Error("ERROR")
        self._lengths = show == "1"
        return []

    def _cmgf(self, mode: str) -> list[str]:
        self._text_mode = mode == "1"
        return []

    def _cscs(self, charset: str) -> list[str]:
        if charset.upper() not in ("GSM", "IRA"):
            raise _Error("+CME ERROR: 4")
        return []

    def _in_text_mode(self) -> None:
        self._sim_ready()
        if not self._text_mode:
            raise _Error("+CMS ERROR: 302")

    def _cmgl(self, status: str | None) -> list[str]:
        self._in_text_mode()
        status = status or "REC UNREAD"  # the default of 3GPP TS 27.005
        lines = []
        for message in sorted(self.scenario.messages, key=lambda message: message.index):
            stat = "REC READ" if message.read else "REC UNREAD"
            if status.upper() in ("ALL", stat):
                length = f",145,{len(message.text)}" if self._lengths else ""
                lines += [f'+CMGL: {message.index},"{stat}","{message.number}",,'
                          f'"{message.stamp}"{length}', to_gsm(message.text)]
                message.read = True
        return lines

    def _cmgr(self, index: str) -> list[str]:
        self._in_text_mode()
        message = self._message(int(index))
        stat = "REC READ" if message.read else "REC UNREAD"
        message.read = True
        return [f'+CMGR: "{stat}","{message.number}",,"{message.stamp}"',
                to_gsm(message.text)]

    def _cmgd(self, index: str) -> list[str]:
        self._sim_ready()
        self.scenario.messages.remove(self._message(int(index)))
        return []

    def _message(self, index: int) -> Stored:
        found = [message for message in self.scenario.messages if message.index == index]
        if not found:
            raise _Error("+CMS ERROR: 321")
        return found[0]

    def _cmgs(self, number: str) -> list[str]:
        self._in_text_mode()
        self._composing = number
        raise _Prompt

    def _typed(self, raw: bytes, send: bool) -> str:
        """The answer to a text typed after the prompt, ended by Ctrl-Z (``send``) or Esc."""
        with self._lock:
            number, self._composing = self._composing, None
            echo = raw.decode("latin-1") + "\r\n" if self.scenario.echo else ""
            if not send:
                return f"{echo}\r\nOK\r\n"
            if self.scenario.send_error is not None:
                return f"{echo}\r\n+CMS ERROR: {self.scenario.send_error}\r\n"
            assert number is not None
            self.sent.append((number, from_gsm(raw)))
            return f"{echo}\r\n+CMGS: {next(self._references)}\r\n\r\nOK\r\n"


GSM_SPECIAL = {"@": 0x00, "£": 0x01, "$": 0x02, "_": 0x11, "Å": 0x0E, "å": 0x0F, "Ä": 0x5B,
               "Ö": 0x5C, "Ü": 0x5E, "§": 0x5F, "ä": 0x7B, "ö": 0x7C, "ü": 0x7E, "é": 0x05,
               "\n": 0x0A}
GSM_ESCAPED = {"€": 0x65, "[": 0x3C, "]": 0x3E, "{": 0x28, "}": 0x29, "^": 0x14, "~": 0x3D,
               "|": 0x40, "\\": 0x2F}
"""The characters the tests use whose GSM code is not their ASCII one (the rest of printable
ASCII is the same), written out from GSM 03.38 on their own: the modem's side of the wire."""


def to_gsm(text: str) -> str:
    """``text`` as the modem writes it with ``AT+CSCS="GSM"``, a byte per character."""
    out = []
    for char in text:
        if char in GSM_ESCAPED:
            out.append("\x1b" + chr(GSM_ESCAPED[char]))
        elif char in GSM_SPECIAL:
            out.append(chr(GSM_SPECIAL[char]))
        elif " " <= char <= "z":
            out.append(char)
        else:
            raise ValueError(f"the simulator cannot write {char!r} in the GSM alphabet")
    return "".join(out)


def from_gsm(raw: bytes) -> str:
    special = {code: char for char, code in GSM_SPECIAL.items()}
    escaped = {code: char for char, code in GSM_ESCAPED.items()}
    out, escape = [], False
    for byte in raw:
        if escape:
            out.append(escaped[byte])
            escape = False
        elif byte == 0x1B:
            escape = True
        else:
            out.append(special.get(byte) or chr(byte))
    return "".join(out)


class _Error(Exception):
    """The modem's final error line."""


class _Prompt(Exception):
    """The command waits for a text after the ``> `` prompt."""


COMMANDS: list[tuple[str, Callable[..., list[str]]]] = [
    (r"AT", ModemSim._at),
    (r"AT\+CSQ", ModemSim._csq),
    (r"AT\+CREG\?", ModemSim._creg),
    (r"AT\+CEREG\?", ModemSim._cereg),
    (r"AT\+COPS\?", ModemSim._cops),
    (r"AT\^SYSINFOEX", ModemSim._sysinfoex),
    (r"AT\+CPIN\?", ModemSim._cpin_query),
    (r"AT\+CPINR", ModemSim._cpinr),
    (r"AT\^CPIN\?", ModemSim._huawei_cpin),
    (r"AT(?:\+CCID|(\^)ICCID\?)", ModemSim._ccid),
    (r'AT\+CPIN="?([^"]*)"?', ModemSim._cpin_enter),
    (r'AT\+CLCK="SC",([012])(?:,"([^"]*)")?', ModemSim._clck),
    (r"AT\+CMGF=([01])", ModemSim._cmgf),
    (r"AT\+CSDH=([01])", ModemSim._csdh),
    (r'AT\+CSCS="([A-Z0-9]+)"', ModemSim._cscs),
    (r'AT\+CMGL(?:="([A-Z ]+)")?', ModemSim._cmgl),
    (r"AT\+CMGR=(\d+)", ModemSim._cmgr),
    (r"AT\+CMGD=(\d+)(?:,0)?", ModemSim._cmgd),
    (r'AT\+CMGS="(\+?\d+)"', ModemSim._cmgs),
]
"""Each command's pattern and its handler, called with the pattern's groups."""


@contextlib.contextmanager
def hold(port: str, lock_dir: str, how: str = "uucp") -> Iterator[subprocess.Popen]:
    """Another process holding ``port`` while the block runs (see the module's text)."""
    holder = subprocess.Popen(
        [sys.executable, "-m", "tests.sim.modem", "--hold", port, "--lock-dir", lock_dir,
         "--how", how], stdout=subprocess.PIPE, text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    try:
        assert holder.stdout is not None
        if holder.stdout.readline().strip() != "held":
            raise RuntimeError(f"the holder of {port} did not start")
        yield holder
    finally:
        holder.terminate()
        holder.wait(10)


def _hold(port: str, lock_dir: str, how: str) -> None:
    fd = os.open(port, os.O_RDWR | os.O_NOCTTY)
    lock = os.path.join(lock_dir, "LCK.." + os.path.basename(os.path.realpath(port)))
    if how == "uucp":
        with open(lock, "w") as file:
            file.write(f"{os.getpid():10d}\n")  # the HDB format pppd writes
        fcntl.ioctl(fd, termios.TIOCEXCL)
    else:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("held", flush=True)
    stop.wait()
    if how == "uucp":
        os.unlink(lock)
    os.close(fd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hold", metavar="PORT")
    parser.add_argument("--lock-dir", default="/var/lock")
    parser.add_argument("--how", choices=("uucp", "flock"), default="uucp")
    parser.add_argument("--sim", choices=(READY, SIM_PIN, SIM_PUK, MISSING), default=READY)
    args = parser.parse_args()
    if args.hold:
        _hold(args.hold, args.lock_dir, args.how)
        return
    with ModemSim(Scenario(sim=args.sim)) as sim:
        print(sim.path, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)


if __name__ == "__main__":
    main()

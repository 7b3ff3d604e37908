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
Until the SIM is ready the modem is not registered and has no operator. Every command and
every PIN sent is recorded.

SMS (``AT+CMGL``, ``AT+CMGR``, ``AT+CMGD``, ``AT+CMGS``) come later: they go in ``COMMANDS``
beside the others, with their messages in ``Scenario``.

``hold(port, lock_dir, how)`` starts another process that holds the port the way a dialler
does: ``uucp`` writes ``LCK..<name>`` with its pid in ``lock_dir`` (as pppd does, with
``TIOCEXCL`` on the open port), ``flock`` locks the open port (pyserial's ``exclusive``).

Run as a module (``python -m tests.sim.modem``) it prints the port's path and answers until
interrupted; ``--hold PATH --lock-dir DIR --how uucp|flock`` is the holder.
"""

import argparse
import contextlib
import fcntl
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


@dataclass
class ModemSim:
    scenario: Scenario = field(default_factory=Scenario)
    commands: list[str] = field(default_factory=list)
    pins_sent: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave, termios.TCSANOW)
        self.path = os.ttyname(self._slave)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name="modem-sim")
        self._lock = threading.Lock()

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

    def sent(self, prefix: str) -> list[str]:
        """The commands received that start with ``prefix``."""
        with self._lock:
            return [command for command in self.commands if command.startswith(prefix)]

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
            while b"\r" in pending:
                raw, _, pending = pending.partition(b"\r")
                line = raw.decode("ascii", "replace").strip()
                if line:
                    self._write(self._reply(line))

    def _write(self, text: str) -> None:
        data = text.encode()
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
        body = "".join(f"\r\n{answer}\r\n" for answer in lines)
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


class _Error(Exception):
    """The modem's final error line."""


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

"""Actions that bring the link back: commands run as argument lists (never through a shell) with a
timeout, and built-in helpers.

Built-in: ``["usb-reset", "VENDOR:PRODUCT"]`` re-plugs a USB modem through sysfs (its
``authorized`` flag off and on), the software version of pulling it out and putting it back.
``["router-data-toggle"]`` switches a router's mobile data off and on, ``["router-data-off"]``
off, ``["router-reboot"]`` reboots it; each may name its source (``["router-reboot",
"router"]``), else the first source that can do it acts. Inside the collector they use its
running sources; ``traffic connect`` and ``disconnect`` make their own from the config, which
never log in where the store says the login was refused with the same settings.
Disconnect commands are derived for the usual connect helpers: ``pon``/``poff``,
``nmcli connection up``/``down`` and ``mmcli --simple-connect``/``--simple-disconnect``.

A command's output is read as it comes by a thread of its own and bounded: its first and last
``HEAD_BYTES``/``TAIL_BYTES`` are kept and the bytes between counted, so a command printing
hundreds of megabytes costs a few kilobytes, and masking (of the kept part only) takes bounded
time in the keeper's thread, holding no lock the polls need. ``action_timeout`` covers the
command and the reading of its output. However the command ends, every process it started is
killed then (see ``collector.processes``: its session, its recorded ancestry and an environment
marker; a cgroup or a subreaper were not chosen, for the reasons given there); a command that
exits while its children run is judged by its own exit code.
"""

import contextlib
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from collector.processes import ProcessTree
from traffic.config import Config, ConfigError, KeeperConfig, mask_known
from traffic.periods import now_ms
from traffic.store import Store

HEAD_BYTES = 4096
TAIL_BYTES = 4096
"""A command's output kept: its beginning and its end; the bytes between are counted."""
READ_BYTES = 65536
SCAN_EVERY_S = 0.2
"""How often the processes of a running command are looked for (see ``collector.processes``)."""
DRAIN_S = 1.0
"""After the command and its processes are gone, how long what they wrote may still take to
read; longer only within the command's own ``action_timeout``."""
REFUSED_BEFORE = "the login was refused before; fix the settings to try again"
"""What a router action says where the store marks its login refused (as the collector does)."""
USB_DEVICES = Path("/sys/bus/usb/devices")


@dataclass(frozen=True)
class ActionResult:
    command: tuple[str, ...]
    ok: bool
    exit_code: int | None
    timed_out: bool
    output: str
    duration_ms: int
    interrupted: bool = False
    """Killed by ``ActionRunner.interrupt``: the collector was stopping, or ``traffic connect``
    or ``disconnect`` got a signal."""

    @property
    def outcome(self) -> str:
        """"done", "failed (exit 1)", ...: how it went, in a few words."""
        return ("done" if self.ok else "interrupted" if self.interrupted
                else "timed out" if self.timed_out
                else "could not start" if self.exit_code is None
                else f"failed (exit {self.exit_code})")

    def detail(self) -> dict[str, Any]:
        detail = {"command": list(self.command), "ok": self.ok, "exit_code": self.exit_code,
                  "timed_out": self.timed_out, "output": self.output}
        return {**detail, "interrupted": True} if self.interrupted else detail


class ActionRunner:
    """Runs one action at a time and can kill it from another thread (``interrupt``).

    The router built-ins act through ``sources`` (the collector's running ones), else through
    sources made from ``config`` for the action and closed after it; ``store`` tells which of
    those had their login refused with these settings."""

    def __init__(self, sources: Sequence[Any] = (), config: Config | None = None,
                 store: Store | None = None) -> None:
        self.sources = sources
        self.config = config
        self.store = store
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._interrupted = False
        self._why = "the collector was stopping"

    def run(self, command: Sequence[str], timeout_s: float, secrets: Sequence[str] = (),
            on_start: Callable[[ProcessTree], object] = lambda tree: None) -> ActionResult:
        """Run ``command``; kill it (and what it started) when it outlives ``timeout_s``.
        ``on_start`` is given its processes' tree once it runs (to find them after a crash)."""
        started = time.monotonic()
        if not command:
            return _result(command, False, None, False, "nothing to run: the command is empty",
                           started, secrets)
        if command[0] in BUILTINS:
            ok, output = BUILTINS[command[0]](list(command[1:]))
            return _result(command, ok, 0 if ok else 1, False, output, started, secrets)
        if command[0] in SOURCE_ACTIONS:
            ok, output = self._on_source(command[0], list(command[1:]))
            return _result(command, ok, 0 if ok else 1, False, output, started, secrets)
        tree = ProcessTree()
        try:
            process = self._start(command, tree)
        except OSError as error:
            return _result(command, False, None, False, f"cannot run {command[0]}: {error}",
                           started, secrets)
        if process is None:
            return _result(command, False, None, False, f"not run: {self._why}",
                           started, secrets, interrupted=True)
        on_start(tree)
        try:
            out, timed_out = _wait(process, tree, timeout_s)
        finally:
            with self._lock:
                self._process = None
        interrupted = self.interrupted and process.returncode != 0
        text = out.text(secrets) + (
            f"\n(killed: {self._why})" if interrupted
            else f"\n(killed after {timeout_s:g}s)" if timed_out else "")
        return _result(command, process.returncode == 0 and not timed_out,
                       None if timed_out or interrupted else process.returncode, timed_out,
                       text, started, secrets, interrupted)

    def _on_source(self, name: str, arguments: list[str]) -> tuple[bool, str]:
        if self.sources or self.config is None:
            return source_action(name, arguments, self.sources)
        from collector.sources import make_source, refused_in_store

        made = []
        try:
            made = [make_source(source, now_ms) for source in self.config.sources]
            for source in made:
                if (self.store is not None and hasattr(source, "refuse")
                        and refused_in_store(self.store, source.config)):
                    source.refuse(REFUSED_BEFORE)
            return source_action(name, arguments, made)
        except ConfigError as error:
            return False, f"{name}: {error}"
        finally:
            for source in made:
                with contextlib.suppress(Exception):
                    source.close()

    @property
    def interrupted(self) -> bool:
        return self._interrupted

    def interrupt(self, why: str = "the collector was stopping") -> None:
        """Kill the running command's process group now; run no other command after this.
        ``why`` ends the killed command's output."""
        with self._lock:
            if not self._interrupted:
                self._why = why
            self._interrupted = True
            if self._process is not None and self._process.returncode is None:
                _kill_group(self._process)

    def _start(self, command: Sequence[str], tree: ProcessTree) -> subprocess.Popen | None:
        with self._lock:
            if self._interrupted:
                return None
            self._process = subprocess.Popen(
                list(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True, env=tree.environment())
            tree.started(self._process.pid)
            return self._process


def run_action(command: Sequence[str], timeout_s: float, secrets: Sequence[str] = ()
               ) -> ActionResult:
    """Run ``command`` once; see ``ActionRunner.run``."""
    return ActionRunner().run(command, timeout_s, secrets)


def _kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


class _Output:
    """A command's output read as it comes, in a thread of its own: the first ``HEAD_BYTES``
    and the last ``TAIL_BYTES`` are kept, the bytes between only counted."""

    def __init__(self, pipe: IO[bytes]) -> None:
        self.pipe = pipe
        self.head = b""
        self.tail = b""
        self.total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="action-output", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        descriptor = self.pipe.fileno()
        os.set_blocking(descriptor, False)
        while not self._stop.is_set():
            ready, _, _ = select.select([descriptor], [], [], 0.1)
            if not ready:
                continue
            try:
                chunk = os.read(descriptor, READ_BYTES)
            except BlockingIOError:
                continue
            if not chunk:
                return
            self._take(chunk)

    def _take(self, chunk: bytes) -> None:
        self.total += len(chunk)
        if len(self.head) < HEAD_BYTES:
            room = HEAD_BYTES - len(self.head)
            self.head += chunk[:room]
            chunk = chunk[room:]
        if len(chunk) >= TAIL_BYTES:
            self.tail = chunk[-TAIL_BYTES:]
        elif chunk:
            self.tail = (self.tail + chunk)[-TAIL_BYTES:]

    def finish(self, within_s: float) -> None:
        """Read on until the end of the output, at most ``within_s`` more."""
        self._thread.join(max(within_s, 0))
        self._stop.set()
        self._thread.join()
        self.pipe.close()

    def text(self, secrets: Sequence[str]) -> str:
        """What was kept, decoded and masked; where bytes were left out between the head and
        the tail, each is cut at a line (else a word) boundary, so no secret is cut in two."""
        head, tail = self.head, self.tail
        left_out = self.total - len(head) - len(tail)
        if left_out <= 0:
            return (head + tail).decode(errors="replace")
        cut = head.rfind(b"\n")
        cut = cut if cut > 0 else head.rfind(b" ")
        kept_head = head[:cut] if cut > 0 else head
        cut = tail.find(b"\n")
        cut = cut if cut >= 0 else tail.find(b" ")
        kept_tail = tail[cut + 1:] if cut >= 0 else tail
        left_out += len(head) - len(kept_head) + len(tail) - len(kept_tail)
        return (mask_known(kept_head.decode(errors="replace"), secrets)
                + f"\n… {_size(left_out)} left out …\n"
                + mask_known(kept_tail.decode(errors="replace"), secrets))


def _size(count: int) -> str:
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if count >= scale:
            return f"{count / scale:.3g} {unit}"
    return f"{count} bytes"


def _wait(process: subprocess.Popen, tree: ProcessTree, timeout_s: float
          ) -> tuple[_Output, bool]:
    """The command's output, and whether it was killed for outliving ``timeout_s``. When the
    command ends, however it ends, every process it started is killed: a command that exits
    while its children run is judged by its own exit code."""
    assert process.stdout is not None
    output = _Output(process.stdout)
    deadline = time.monotonic() + timeout_s
    timed_out = False
    while True:
        try:
            process.wait(timeout=min(SCAN_EVERY_S, max(deadline - time.monotonic(), 0)))
            break
        except subprocess.TimeoutExpired:
            if time.monotonic() >= deadline:
                timed_out = True
                _kill_group(process)
                process.wait()
                break
            tree.scan()
    tree.kill()
    output.finish(max(deadline - time.monotonic(), DRAIN_S) if not timed_out else DRAIN_S)
    return output, timed_out


def _result(command: Sequence[str], ok: bool, exit_code: int | None, timed_out: bool,
            output: str, started: float, secrets: Sequence[str], interrupted: bool = False
            ) -> ActionResult:
    if len(output) > HEAD_BYTES + TAIL_BYTES + 100:
        output = (f"{output[:HEAD_BYTES]}\n… {len(output) - HEAD_BYTES - TAIL_BYTES} "
                  f"characters left out …\n{output[-TAIL_BYTES:]}")
    output = mask_known(output, secrets).strip()
    return ActionResult(tuple(mask_known(part, secrets) for part in command), ok, exit_code,
                        timed_out, output, int((time.monotonic() - started) * 1000),
                        interrupted)


def disconnect_command(keeper: KeeperConfig) -> tuple[str, ...]:
    """``keeper.disconnect``, or the counterpart of ``keeper.connect`` for the known helpers."""
    if keeper.disconnect:
        return keeper.disconnect
    connect = list(keeper.connect)
    if not connect:
        raise ValueError("keeper.disconnect: set the command that takes the link down "
                         "(keeper.connect is empty)")
    if connect[:1] == ["pon"]:
        return ("poff", *connect[1:])
    if connect[:3] == ["nmcli", "connection", "up"] or connect[:3] == ["nmcli", "con", "up"]:
        return ("nmcli", "connection", "down", *connect[3:])
    if connect[:1] == ["router-data-toggle"]:
        return ("router-data-off", *connect[1:])
    if connect[:1] == ["mmcli"]:
        kept = [part for part in connect if not part.startswith("--simple-connect")]
        return (*kept, "--simple-disconnect")
    raise ValueError("keeper.disconnect: set the command that takes the link down "
                     f"(no counterpart known for {connect[0]!r})")


def usb_reset(arguments: list[str], devices: Path = USB_DEVICES) -> tuple[bool, str]:
    """Re-plug the USB device(s) with this vendor:product id by toggling ``authorized``."""
    if len(arguments) != 1 or arguments[0].count(":") != 1:
        return False, "usb-reset: expected one VENDOR:PRODUCT id such as 12d1:1506"
    vendor, product = (part.lower() for part in arguments[0].split(":"))
    found = []
    for device in sorted(devices.glob("*")):
        try:
            ids = ((device / "idVendor").read_text().strip().lower(),
                   (device / "idProduct").read_text().strip().lower())
        except OSError:
            continue
        if ids == (vendor, product):
            try:
                (device / "authorized").write_text("0")
                time.sleep(1)
                (device / "authorized").write_text("1")
            except OSError as error:
                return False, f"usb-reset: {device.name}: {error}"
            found.append(device.name)
    if not found:
        return False, f"usb-reset: no USB device {vendor}:{product}"
    return True, f"usb-reset: re-plugged {', '.join(found)}"


BUILTINS = {"usb-reset": usb_reset}

DATA_TOGGLE_PAUSE_S = 2.0
"""Between mobile data off and on: time for the router to let go of the connection."""


class ActionFailed(Exception):
    """A built-in's failure, told in one line."""


def _toggle(source: Any) -> str:
    """Off, a pause, on. On again whatever went wrong before it: a router left with its
    mobile data off stays off the internet until a person switches it on. A refused login
    switched nothing off (and would refuse the second switch too)."""
    from collector.sources import LoginRefused

    try:
        source.set_mobile_data(False)
        time.sleep(DATA_TOGGLE_PAUSE_S)
    except LoginRefused:
        raise
    except Exception as error:
        raise ActionFailed(f"switching mobile data off failed ({error}); "
                           f"{_data_on_again(source, error)}") from None
    except BaseException:
        with contextlib.suppress(Exception):
            source.set_mobile_data(True)
        raise
    source.set_mobile_data(True)
    return "mobile data switched off and on again"


def _data_on_again(source: Any, failed: Exception) -> str:
    try:
        source.set_mobile_data(True)
    except Exception as error:
        why = "" if str(error) == str(failed) else f" ({error})"
        return f"switching it on again failed too{why}"
    return "switched it on again"


def _data_off(source: Any) -> str:
    source.set_mobile_data(False)
    return "mobile data switched off"


def _reboot(source: Any) -> str:
    source.reboot()
    return "asked to reboot"


SOURCE_ACTIONS: dict[str, tuple[str, Callable[[Any], str]]] = {
    "router-data-toggle": ("set_mobile_data", _toggle),
    "router-data-off": ("set_mobile_data", _data_off),
    "router-reboot": ("reboot", _reboot),
}
"""Built-ins done by a source: name -> (what the source must offer, the action)."""


def source_action(name: str, arguments: list[str], sources: Sequence[Any]) -> tuple[bool, str]:
    """Run the built-in ``name`` on the source named in ``arguments``, else on the first
    source that offers it."""
    ability, act = SOURCE_ACTIONS[name]
    if len(arguments) > 1:
        return False, f"{name}: expected at most one argument, the name of a [[sources]] table"
    able = [source for source in sources if hasattr(source, ability)
            and (not arguments or source.config.name == arguments[0])]
    if not able:
        which = f"source {arguments[0]!r}" if arguments else "source"
        return False, (f"{name}: no {which} can do this (it needs a router, such as a "
                       "[[sources]] table of type \"hilink\")")
    source = able[0]
    try:
        return True, f"{name}: {source.config.name}: {act(source)}"
    except Exception as error:  # the router's failure is the action's, told in one line
        return False, f"{name}: {source.config.name}: {error}"

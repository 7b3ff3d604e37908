"""Actions that bring the link back: commands run as argument lists (never through a shell) with a
timeout, and built-in helpers.

Built-in: ``["usb-reset", "VENDOR:PRODUCT"]`` re-plugs a USB modem through sysfs (its
``authorized`` flag off and on), the software version of pulling it out and putting it back.
Disconnect commands are derived for the usual connect helpers: ``pon``/``poff``,
``nmcli connection up``/``down`` and ``mmcli --simple-connect``/``--simple-disconnect``.
"""

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from traffic.config import KeeperConfig

OUTPUT_LIMIT = 4000
USB_DEVICES = Path("/sys/bus/usb/devices")


@dataclass(frozen=True)
class ActionResult:
    command: tuple[str, ...]
    ok: bool
    exit_code: int | None
    timed_out: bool
    output: str
    duration_ms: int

    def detail(self) -> dict[str, Any]:
        return {"command": list(self.command), "ok": self.ok, "exit_code": self.exit_code,
                "timed_out": self.timed_out, "output": self.output}


def run_action(command: Sequence[str], timeout_s: float, secrets: Sequence[str] = ()
               ) -> ActionResult:
    """Run ``command``; kill it (and what it started) when it outlives ``timeout_s``."""
    started = time.monotonic()
    if command and command[0] in BUILTINS:
        ok, output = BUILTINS[command[0]](list(command[1:]))
        return _result(command, ok, 0 if ok else 1, False, output, started, secrets)
    try:
        process = subprocess.Popen(list(command), stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    except OSError as error:
        return _result(command, False, None, False, f"cannot run {command[0]}: {error}",
                       started, secrets)
    try:
        out, _ = process.communicate(timeout=timeout_s)
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        timed_out = True
        try:  # a child that left the group may still hold the output open: don't wait for it
            out, _ = process.communicate(timeout=1)
        except subprocess.TimeoutExpired:
            process.stdout.close()
            process.wait()
            out = b""
    text = out.decode(errors="replace")
    if timed_out:
        text += f"\n(killed after {timeout_s:g}s)"
    return _result(command, process.returncode == 0 and not timed_out,
                   None if timed_out else process.returncode, timed_out, text, started, secrets)


def _result(command: Sequence[str], ok: bool, exit_code: int | None, timed_out: bool,
            output: str, started: float, secrets: Sequence[str]) -> ActionResult:
    def mask(text: str) -> str:
        for secret in secrets:
            if secret:
                text = text.replace(secret, "********")
        return text
    output = mask(output).strip()
    if len(output) > OUTPUT_LIMIT:
        output = "…" + output[-OUTPUT_LIMIT:]
    return ActionResult(tuple(mask(part) for part in command), ok, exit_code, timed_out, output,
                        int((time.monotonic() - started) * 1000))


def disconnect_command(keeper: KeeperConfig) -> tuple[str, ...]:
    """``keeper.disconnect``, or the counterpart of ``keeper.connect`` for the known helpers."""
    if keeper.disconnect:
        return keeper.disconnect
    connect = list(keeper.connect)
    if connect[:1] == ["pon"]:
        return ("poff", *connect[1:])
    if connect[:3] == ["nmcli", "connection", "up"] or connect[:3] == ["nmcli", "con", "up"]:
        return ("nmcli", "connection", "down", *connect[3:])
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

"""Is the link up? Evidence first, probes only when the evidence is not enough.

A probe costs bytes on a plan that may be 50 MB a month, so:
- a source that knows (a router saying it is connected, or not) is believed, nothing sent;
- the interface is missing or its carrier is down: down, nothing sent;
- it received bytes since the last check: up, nothing sent;
- it sent bytes but received none: probe now (something is trying and nothing comes back);
- it was idle: probe only every ``keeper.idle_probe_every``, else keep the last answer, where
  bytes received count as an answer (they supersede an older failed probe).
A probe is a TCP connect closed with a reset (about 330 bytes on Ethernet, counting what the
far end sends back) or a DNS look-up; targets are tried in turn until ``keeper.need`` of them
answered.
"""

import logging
import socket
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from collector.sources.kernel import SYS_NET, default_route_interface, interface_counters
from traffic.config import KeeperConfig, SourceConfig

log = logging.getLogger(__name__)

SENT_ALONE_BYTES = 1500
"""Sent with nothing received, beyond this (a full packet), makes the keeper probe at once;
smaller amounts are the tail of a probe's own exchange and similar chatter."""


@dataclass(frozen=True)
class LinkEvidence:
    up: bool
    interface: str | None
    reason: str
    probed: bool = False


class Prober:
    def __init__(self, keeper: KeeperConfig, sources: tuple[SourceConfig, ...] = (),
                 devices: Sequence[Any] = ()) -> None:
        """``devices``: the collector's running sources; the first whose ``link_evidence()``
        says something is believed."""
        self.keeper = keeper
        self.devices = [device for device in devices if hasattr(device, "link_evidence")]
        configured = [name for source in sources
                      for name in source.settings.get("interfaces", ())]
        self.interface = keeper.interface or (configured[0] if configured else "")
        self._last: tuple[str, int, int] | None = None
        self._last_probe_at: int | None = None
        """When the link last answered a probe, failed one or received bytes."""
        self._last_probe_up = False
        self._last_answer = ""
        self._bind_failed = False

    def check(self, now: int, probe_anyway: bool = False) -> LinkEvidence:
        for device in self.devices:
            told = device.link_evidence()
            if told is not None:
                self._last = None  # the interface's counters are judged afresh after this
                return LinkEvidence(told[0], self.interface or None, told[1])
        name = self.interface or default_route_interface()
        if not name:
            return LinkEvidence(False, None, "no default route")
        counters = interface_counters(name)
        if counters is None:
            self._last = None
            return LinkEvidence(False, name, f"{name} is not there")
        ifindex, rx, tx = counters
        previous, self._last = self._last, counters
        if _operstate(name) == "down":
            return LinkEvidence(False, name, f"{name} is down")
        same = previous is not None and previous[0] == ifindex
        received = same and rx > previous[1]
        sent = same and tx - previous[2] > SENT_ALONE_BYTES
        if received:
            self._remember(now, True, "received bytes before")
            return LinkEvidence(True, name, "received bytes")
        idle_ms = self.keeper.idle_probe_every * 1000
        if (same and not sent and not probe_anyway and self._last_probe_at is not None
                and now - self._last_probe_at < idle_ms):
            return LinkEvidence(self._last_probe_up, name, f"idle; {self._last_answer}")
        up, reason = self.probe(name)
        self._remember(now, up, "last probe " + ("answered" if up else "failed"))
        self._last = interface_counters(name)  # the probe's own bytes are not the user's traffic
        return LinkEvidence(up, name, reason, probed=True)

    def _remember(self, now: int, up: bool, answer: str) -> None:
        """The latest evidence, which an idle check reuses until ``idle_probe_every`` is over."""
        self._last_probe_at, self._last_probe_up, self._last_answer = now, up, answer

    def probe(self, interface: str | None) -> tuple[bool, str]:
        answered = 0
        failures = []
        for target in self.keeper.targets:
            ok, why = self._probe_one(target, interface)
            if ok:
                answered += 1
                if answered >= self.keeper.need:
                    return True, f"{target} answered" if answered == 1 else (
                        f"{answered} targets answered")
            else:
                failures.append(f"{target}: {why}")
        return False, "; ".join(failures) or "no target answered"

    def _probe_one(self, target: str, interface: str | None) -> tuple[bool, str]:
        timeout = self.keeper.timeout
        if target.startswith("dns:"):
            return _resolve(target[4:], timeout)
        host, _, port = target.rpartition(":")
        host = host.strip("[]")
        try:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.settimeout(timeout)
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                if self.keeper.bind and interface:
                    self._bind(probe, interface)
                probe.connect((host, int(port)))
            return True, "answered"
        except (OSError, ValueError) as error:
            return False, str(error) or type(error).__name__

    def _bind(self, probe: socket.socket, interface: str) -> None:
        try:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
        except OSError as error:
            if not self._bind_failed:
                log.warning("keeper.bind: cannot bind probes to %s (%s); probing unbound",
                            interface, error)
                self._bind_failed = True


def _operstate(name: str) -> str:
    try:
        return (SYS_NET / name / "operstate").read_text().strip()
    except OSError:
        return "unknown"


def _resolve(name: str, timeout: float) -> tuple[bool, str]:
    """A DNS look-up through the system's resolver, given up after ``timeout``."""
    outcome: list[tuple[bool, str]] = []

    def look_up() -> None:
        try:
            socket.getaddrinfo(name, None)
            outcome.append((True, "resolved"))
        except OSError as error:
            outcome.append((False, str(error)))
    worker = threading.Thread(target=look_up, daemon=True)
    worker.start()
    worker.join(timeout)
    return outcome[0] if outcome else (False, f"no answer in {timeout:g}s")

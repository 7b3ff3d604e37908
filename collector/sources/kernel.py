"""Kernel interface counters, asked of the kernel over rtnetlink (``RTM_GETSTATS``, one round
trip for every watched interface) or, where that socket cannot be had, read from
``/sys/class/net/<iface>/statistics``.

A counter's life is the boot id and the interface's ifindex: a PPP reconnect creates ``ppp0``
anew with a new ifindex and counters from zero, a reboot a new boot id.

The bytes that cross an interface between the last poll and its deletion are not in sysfs any
more: they come from the kernel's ``RTM_DELLINK`` message (see ``_netlink``), taken as it comes
by a thread of the source and returned at the next poll as the final reading of that life,
before the poll's own readings. A new interface's ``RTM_NEWLINK`` message is its first reading.
"""

import os
from collections.abc import Callable

from collector.sources import Clock, SourceType
from traffic.config import SourceConfig, text_list
from traffic.counters import Reading

TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging
    from pathlib import Path

    from collector.sources._netlink import LinkEvent


def _log() -> "logging.Logger":
    """The logger, with ``logging`` imported only when a source logs: reading the type's schema
    (every command does) needs none of it."""
    import logging

    return logging.getLogger(__name__)


SYS_NET_DIR = "/sys/class/net"
PROC_ROUTE = "/proc/net/route"
PROC_IPV6_ROUTE = "/proc/net/ipv6_route"
BOOT_ID = "/proc/sys/kernel/random/boot_id"
"""Plain strings: importing ``pathlib`` costs every command's start-up a third of a
``python -c pass``, and reading the type's schema needs none of them."""


def __getattr__(name: str) -> "Path":
    """``SYS_NET`` as a ``Path``, made when another module (``collector.probe``) asks for it."""
    if name != "SYS_NET":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from pathlib import Path

    return Path(SYS_NET_DIR)


def _read(file: str) -> str:
    with open(file) as handle:
        return handle.read()


MAX_QUEUED = 1000
"""Readings from link events kept between two polls, at most (two per life of an interface)."""
WIDE_MACHINES = ("x86_64", "aarch64", "arm64", "ppc64", "ppc64le", "s390x", "riscv64",
                 "mips64", "loongarch64")


def kernel_counter_bits() -> int:
    """Width of the kernel's interface counters: its ``unsigned long``."""
    return 64 if os.uname().machine in WIDE_MACHINES else 32


def default_route_interface() -> str | None:
    """The interface of the IPv4 default route with the lowest metric, else the IPv6 one."""
    best: tuple[int, str] | None = None
    try:
        for line in _read(PROC_ROUTE).splitlines()[1:]:
            fields = line.split()
            if len(fields) > 7 and fields[1] == "00000000" and fields[7] == "00000000":
                flags, metric = int(fields[3], 16), int(fields[6])
                if flags & 1 and (best is None or metric < best[0]):
                    best = (metric, fields[0])
        if best is None:
            for line in _read(PROC_IPV6_ROUTE).splitlines():
                fields = line.split()
                if (len(fields) == 10 and fields[0] == "0" * 32 and fields[1] == "00"
                        and fields[9] != "lo"):
                    metric = int(fields[5], 16)
                    if best is None or metric < best[0]:
                        best = (metric, fields[9])
    except OSError:
        return None
    return best[1] if best else None


class KernelSource:
    def __init__(self, config: SourceConfig, clock: Callable[[], int]) -> None:
        import threading

        from collector.sources._netlink import LinkCounters, LinkEvents

        self.config = config
        self.interfaces: tuple[str, ...] = tuple(config.settings.get("interfaces", ()))
        self.bits = config.settings.get("counter_bits", 0) or kernel_counter_bits()
        self.clock = clock
        self.boot_id = _read(BOOT_ID).strip() if os.path.exists(BOOT_ID) else "unknown"
        self._missing: set[str] = set()
        self._watching: set[str] | None = None
        """The interfaces of the previous poll; None before the first poll of this run."""
        self._keys: dict[str, str] = {}
        self._lives: dict[str, str] = {}
        """Each interface's last life seen, so that a link event of a new one is read once."""
        self._queued: list[Reading] = []
        """Readings from link events since the last poll, in their order."""
        self._lock = threading.Lock()
        self._warned: set[str] = set()
        self._events: LinkEvents | None = None
        self._wake_read, self._wake_write = os.pipe()
        try:
            self._events = LinkEvents()
        except OSError as error:
            _log().warning("cannot listen to the kernel's link events (%s): the bytes of an "
                           "interface's last moments before it is deleted will not be counted",
                           error.strerror or error)
        self._counters: LinkCounters | None = None
        try:
            self._counters = LinkCounters(remember_indexes=self._events is not None)
        except OSError as error:
            _log().info("reading interface counters from sysfs: no rtnetlink socket (%s)",
                        error.strerror or error)
        self._listener = threading.Thread(target=self._listen, name="kernel link events",
                                          daemon=True)
        if self._events is not None:
            self._listener.start()

    def _watched(self) -> tuple[str, ...]:
        if self.interfaces:
            return self.interfaces
        name = default_route_interface()
        return (name,) if name else ()

    def poll(self) -> list[Reading]:
        """The readings of link events since the last poll, then one of each watched
        interface. One that was not watched at the previous poll (the default route has moved
        to it) is marked ``resumed``: its bytes from the time it was not the link are not
        counted.

        The events not taken yet are taken before sysfs is read: a new interface's reading
        never comes before the old one's final reading (see ``_netlink``)."""
        with self._lock:
            watched = self._watched()
            resumed = set() if self._watching is None else set(watched) - self._watching
            self._take_events(set(watched) | (self._watching or set()), set(watched) - resumed)
            readings, self._queued = self._queued, []
            self._watching = set(watched)
            counters = self._read_counters(watched)
            for name in watched:
                reading = self._reading(name, counters.get(name), name in resumed)
                if reading is None:
                    if name not in self._missing:
                        _log().warning("interface %s is not there; counting resumes when it is",
                                       name)
                        self._missing.add(name)
                    continue
                if name in self._missing:
                    _log().info("interface %s is back", name)
                    self._missing.discard(name)
                readings.append(reading)
            return readings

    def _read_counters(self, names: tuple[str, ...]) -> dict[str, tuple[int, int, int]]:
        """``(ifindex, rx, tx)`` of each of ``names`` that exists."""
        if self._counters is not None:
            try:
                return self._counters.read(names)
            except OSError as error:
                _log().warning("cannot ask the kernel for interface counters any more (%s); "
                               "reading them from sysfs", error.strerror or error)
                self._counters.close()
                self._counters = None
        found = {}
        for name in names:
            counters = interface_counters(name)
            if counters is not None:
                found[name] = (int(counters[0]), counters[1], counters[2])
        return found

    def _reading(self, name: str, counters: tuple[int, int, int] | None,
                 resumed: bool) -> Reading | None:
        if counters is None:
            return None
        ifindex, rx, tx = counters
        life = f"{self.boot_id}/{ifindex}"
        self._lives[name] = life
        return Reading(self._key(name), self.clock(), {"rx": rx, "tx": tx}, life, self.bits,
                       {}, resumed)

    def _key(self, name: str) -> str:
        key = self._keys.get(name)
        if key is None:
            key = self._keys[name] = f"{self.config.name}:{name}"
        return key

    def _listen(self) -> None:
        """Take the link events as they come, so that each reading has the event's time."""
        import select

        while True:
            with self._lock:
                if self._events is None:
                    return
                events_socket = self._events.socket
            try:
                readable, _, _ = select.select([events_socket, self._wake_read], [], [])
            except (OSError, ValueError):  # the socket was closed after a read error
                return
            if self._wake_read in readable:
                return
            with self._lock:
                watching = set(self.interfaces) | (self._watching or set())
                self._take_events(watching, watching)

    def _take_events(self, ending: set[str], starting: set[str]) -> None:
        """Queue a reading of each waiting link event: the final counters of a deleted
        interface in ``ending``, the first of a new life of one in ``starting``."""
        if self._events is None:
            return
        try:
            if not self._events.waiting():
                return
            events, overflowed = self._events.read()
        except OSError as error:
            _log().warning("cannot read the kernel's link events any more (%s); counting goes "
                           "on from the interfaces' counters", error.strerror or error)
            self._events.close()
            self._events = None
            if self._counters is not None:
                self._counters.stop_remembering()
            return
        if self._counters is not None:
            if overflowed:
                self._counters.forget()
            for event in events:
                self._counters.forget(event.name, event.ifindex)
        if overflowed:
            self._warn_once("overflow", "missed some of the kernel's link events (its queue "
                            "overflowed): the last bytes of an interface deleted meanwhile may "
                            "not be counted; counting goes on from the interfaces' counters")
        for event in events:
            reading = self._event_reading(event, ending, starting)
            if reading is None:
                continue
            if len(self._queued) >= MAX_QUEUED:
                self._warn_once("queue", f"more than {MAX_QUEUED} link events between two "
                                "polls; the next ones are left out until the next poll")
                return
            self._queued.append(reading)

    def _event_reading(self, event: "LinkEvent", ending: set[str],
                       starting: set[str]) -> Reading | None:
        life = f"{self.boot_id}/{event.ifindex}"
        wanted = ending if event.deleted else starting
        if (event.name not in wanted or event.rx is None or event.tx is None
                or (self._lives.get(event.name) == life and not event.deleted)):
            return None
        self._lives[event.name] = life
        return Reading(key=self._key(event.name), at=self.clock(),
                       counters={"rx": event.rx, "tx": event.tx}, life=life, bits=self.bits)

    def _warn_once(self, what: str, message: str) -> None:
        if what not in self._warned:
            _log().warning(message)
            self._warned.add(what)

    def close(self) -> None:
        """Stop listening to the link events."""
        if self._wake_write < 0:
            return
        os.write(self._wake_write, b"x")
        if self._listener.is_alive():
            self._listener.join()
        with self._lock:
            if self._events is not None:
                self._events.close()
                self._events = None
        if self._counters is not None:
            self._counters.close()
            self._counters = None
        for descriptor in (self._wake_read, self._wake_write):
            os.close(descriptor)
        self._wake_read = self._wake_write = -1


def interface_counters(name: str) -> tuple[str, int, int] | None:
    """``(ifindex, rx_bytes, tx_bytes)`` of one interface, or None when it is not there.

    The ifindex is read before and after the counters: if the interface was re-created in
    between, the counters may belong to either life, so the reading is dropped.
    """
    base = f"{SYS_NET_DIR}/{name}"
    try:
        ifindex = _read(f"{base}/ifindex").strip()
        rx = int(_read(f"{base}/statistics/rx_bytes"))
        tx = int(_read(f"{base}/statistics/tx_bytes"))
        again = _read(f"{base}/ifindex").strip()
    except (OSError, ValueError):
        return None
    return (ifindex, rx, tx) if again == ifindex else None


def _counter_bits(value: object) -> int:
    if value not in (0, 32, 64) or isinstance(value, bool):
        raise ValueError(f"expected 32, 64 or 0 (detect), got {value!r}")
    return value  # type: ignore[return-value]


def _automatic(source: SourceConfig) -> dict[str, str]:
    notes = {}
    if not source.settings.get("interfaces"):
        notes["interfaces"] = (f"the default-route interface, now "
                               f"{default_route_interface() or 'none'}")
    if not source.settings.get("counter_bits"):
        notes["counter_bits"] = f"the machine's, now {kernel_counter_bits()}"
    return notes


def _create(config: SourceConfig, clock: Clock) -> KernelSource:
    return KernelSource(config, clock)


SOURCE_TYPE = SourceType(
    name="kernel", create=_create, label="this box", automatic=_automatic,
    schema={"interfaces": ([], text_list), "counter_bits": (0, _counter_bits)})

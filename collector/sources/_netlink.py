"""Link events and counters from the kernel's rtnetlink sockets, with the standard library only.

When an interface is deleted, the kernel announces it with an ``RTM_DELLINK`` message on the
rtnetlink link group that carries the interface's last counters (``IFLA_STATS64``): the bytes
that crossed it after the last poll, which sysfs no longer shows. A new interface is announced
with ``RTM_NEWLINK``.

The socket is read without blocking, when the source polls: the kernel queues the messages in
the socket's receive buffer meanwhile. Messages are sent with the kernel's rtnl lock held and
queued before it is released, so a drained socket is never behind what sysfs shows: a deleted
interface's message is in the queue before a new interface of the same name can exist.
"""

import errno
import os
import select
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass

RTMGRP_LINK = 1
RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_NEWSTATS = 92
RTM_GETSTATS = 94
IFLA_STATS_LINK_64 = 1
STATS_LINK_64_MASK = 1 << (IFLA_STATS_LINK_64 - 1)
NLMSG_ERROR = 2
NLM_F_REQUEST = 1
IFLA_IFNAME = 3
IFLA_STATS64 = 23
AF_UNSPEC = 0
"""Bridges send ``AF_BRIDGE`` link messages about their ports; only ``AF_UNSPEC`` ones are the
interfaces' own."""

NLMSGHDR = struct.Struct("=IHHII")
IFINFOMSG = struct.Struct("=BxHiII")
RTATTR = struct.Struct("=HH")
NLMSGERR = struct.Struct("=i")
STATS_REQUEST = struct.Struct("=IHHIIBxxxII")
"""A netlink header and ``struct if_stats_msg``: family, ifindex, filter mask."""
STATS64_BYTES = struct.Struct("=16xQQ")
"""``struct rtnl_link_stats64`` starts with rx_packets, tx_packets, rx_bytes, tx_bytes."""

SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
"""Not in Python's socket module; 33 on Linux but for a few old architectures, where the
``SO_RCVBUF`` fallback applies."""
RECEIVE_BUFFER = 1 << 20
"""Room the kernel may use for messages waiting between two polls; only used while they wait."""
MESSAGE_BUFFER = 1 << 15
RECEIVE_TIMEOUT_S = 2


@dataclass(frozen=True)
class LinkEvent:
    deleted: bool
    """``RTM_DELLINK``: the interface is gone and ``rx``/``tx`` are its final counters."""
    name: str
    ifindex: int
    rx: int | None
    tx: int | None
    """None when the message carried no ``IFLA_STATS64``."""


def _align(length: int) -> int:
    return (length + 3) & ~3


def parse(data: bytes | memoryview) -> list[LinkEvent]:
    """The link events in one datagram; anything else (or truncated) is skipped."""
    events = []
    offset = 0
    while offset + NLMSGHDR.size <= len(data):
        length, kind, _, _, _ = NLMSGHDR.unpack_from(data, offset)
        if length < NLMSGHDR.size or offset + length > len(data):
            break
        body = offset + NLMSGHDR.size
        if kind in (RTM_NEWLINK, RTM_DELLINK) and length >= NLMSGHDR.size + IFINFOMSG.size:
            family, _, ifindex, _, _ = IFINFOMSG.unpack_from(data, body)
            if family == AF_UNSPEC:
                event = _link(data, body + IFINFOMSG.size, offset + length,
                              kind == RTM_DELLINK, ifindex)
                if event is not None:
                    events.append(event)
        offset += _align(length)
    return events


def _link(data: bytes | memoryview, offset: int, end: int, deleted: bool,
          ifindex: int) -> LinkEvent | None:
    name = None
    rx = tx = None
    while offset + RTATTR.size <= end:
        length, kind = RTATTR.unpack_from(data, offset)
        if length < RTATTR.size or offset + length > end:
            break
        value = offset + RTATTR.size
        if kind == IFLA_IFNAME:
            name = bytes(data[value:offset + length]).split(b"\0", 1)[0].decode(errors="replace")
        elif kind == IFLA_STATS64 and length - RTATTR.size >= STATS64_BYTES.size:
            rx, tx = STATS64_BYTES.unpack_from(data, value)
        offset += _align(length)
    return None if name is None else LinkEvent(deleted, name, ifindex, rx, tx)


class LinkEvents:
    """A non-blocking rtnetlink socket on the link group of this network namespace."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_NETLINK,
                                    socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
                                    socket.NETLINK_ROUTE)
        try:
            try:  # root may go past net.core.rmem_max
                self.socket.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RECEIVE_BUFFER)
            except OSError:
                self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            self.socket.bind((0, RTMGRP_LINK))
        except OSError:
            self.socket.close()
            raise
        self._buffer = bytearray(MESSAGE_BUFFER)
        self._poller = select.poll()
        self._poller.register(self.socket, select.POLLIN)

    def waiting(self) -> bool:
        """Whether a message (or an overflow) waits: one ``poll`` system call, where a read
        of an empty socket raises an exception."""
        return bool(self._poller.poll(0))

    def read(self) -> tuple[list[LinkEvent], bool]:
        """The events queued since the last read, and whether the kernel dropped some because
        the receive buffer was full."""
        events: list[LinkEvent] = []
        overflowed = False
        view = memoryview(self._buffer)
        while True:
            try:
                size = self.socket.recv_into(self._buffer)
            except BlockingIOError:
                return events, overflowed
            except OSError as error:
                if error.errno != errno.ENOBUFS:
                    raise
                overflowed = True
                continue
            events.extend(parse(view[:size]))

    def close(self) -> None:
        self.socket.close()


class LinkCounters:
    """Counters of named interfaces, asked of the kernel in one datagram of ``RTM_GETSTATS``
    requests (Linux 4.7 and later) on a socket of its own, each for the 64-bit link counters
    only: one system call each way, where sysfs takes four file reads per interface. Each
    answer is for the ifindex asked, so counters and life always match.

    With ``remember_indexes`` each name's ifindex is looked up once (``if_nametoindex`` is three
    system calls) and kept until ``forget`` is called, which the caller must do for every link
    event it takes (an interface deleted, made or renamed): only a caller that listens to them
    may remember. An interface gone since answers ``ENODEV`` and is looked up again at once.
    """

    def __init__(self, remember_indexes: bool = False) -> None:
        self.socket = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                    socket.NETLINK_ROUTE)
        try:
            # a blocking socket with a receive timeout: one system call per receive, where
            # Python's own timeout polls before each
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO,
                                   struct.pack("@ll", RECEIVE_TIMEOUT_S, 0))
            self.socket.bind((0, 0))
        except OSError:
            self.socket.close()
            raise
        self._buffer = bytearray(MESSAGE_BUFFER)
        self._sequence = 0
        self._indexes: dict[str, int] | None = {} if remember_indexes else None

    def forget(self, name: str | None = None, ifindex: int | None = None) -> None:
        """Look ``name`` and whatever name had ``ifindex`` up again at the next read; every
        name when neither is given."""
        if self._indexes is None:
            return
        if name is None and ifindex is None:
            self._indexes.clear()
            return
        for known in [known for known, index in self._indexes.items()
                      if known == name or index == ifindex]:
            del self._indexes[known]

    def stop_remembering(self) -> None:
        """The link events are not heard any more: look every name up at every read."""
        self._indexes = None

    def read(self, names: tuple[str, ...]) -> dict[str, tuple[int, int, int]]:
        """``(ifindex, rx_bytes, tx_bytes)`` of each interface of ``names`` that exists;
        raises OSError when the kernel cannot answer (as before Linux 4.7)."""
        found, gone = self._ask(names)
        if gone:
            for name in gone:
                self.forget(name)
            found.update(self._ask(gone)[0])
        return found

    def _ask(self, names: Iterable[str]) -> tuple[dict[str, tuple[int, int, int]], list[str]]:
        """The counters of ``names``, and the remembered ones no longer there (ENODEV)."""
        asked: dict[int, tuple[str, int]] = {}
        request = bytearray()
        for name in names:
            ifindex = self._index(name)
            if ifindex is None:
                continue
            self._sequence = (self._sequence + 1) & 0x7FFFFFFF
            asked[self._sequence] = (name, ifindex)
            request += STATS_REQUEST.pack(STATS_REQUEST.size, RTM_GETSTATS, NLM_F_REQUEST,
                                          self._sequence, 0, AF_UNSPEC, ifindex,
                                          STATS_LINK_64_MASK)
        found: dict[str, tuple[int, int, int]] = {}
        gone: list[str] = []
        if not asked:
            return found, gone
        self.socket.send(request)
        view = memoryview(self._buffer)
        while asked:
            size = self.socket.recv_into(self._buffer)
            offset = 0
            while offset + NLMSGHDR.size <= size:
                length, kind, _, sequence, _ = NLMSGHDR.unpack_from(view, offset)
                if length < NLMSGHDR.size or offset + length > size:
                    break
                if sequence in asked:
                    name, ifindex = asked.pop(sequence)
                    if kind == NLMSG_ERROR:
                        code = -NLMSGERR.unpack_from(view, offset + NLMSGHDR.size)[0]
                        if code != errno.ENODEV:
                            raise OSError(code, os.strerror(code))
                        if self._indexes is not None and name in self._indexes:
                            gone.append(name)
                    elif kind == RTM_NEWSTATS:
                        counters = _stats64(view, offset + STATS_REQUEST.size, offset + length)
                        if counters is not None:
                            found[name] = (ifindex, *counters)
                offset += _align(length)
        return found, gone

    def _index(self, name: str) -> int | None:
        if self._indexes is not None:
            ifindex = self._indexes.get(name)
            if ifindex is not None:
                return ifindex
        try:
            ifindex = socket.if_nametoindex(name)
        except OSError:
            return None
        if self._indexes is not None:
            self._indexes[name] = ifindex
        return ifindex

    def close(self) -> None:
        self.socket.close()


def _stats64(data: memoryview, offset: int, end: int) -> tuple[int, int] | None:
    """rx and tx bytes of the ``IFLA_STATS_LINK_64`` attribute between ``offset`` and ``end``."""
    while offset + RTATTR.size <= end:
        length, kind = RTATTR.unpack_from(data, offset)
        if length < RTATTR.size or offset + length > end:
            return None
        if kind == IFLA_STATS_LINK_64 and length - RTATTR.size >= STATS64_BYTES.size:
            return STATS64_BYTES.unpack_from(data, offset + RTATTR.size)
        offset += _align(length)
    return None

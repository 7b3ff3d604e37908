"""Every process a keeper command started, found through ``/proc`` and killed when its attempt
ends.

Why not a transient cgroup: the collector's own cgroup is rarely delegated to it (a supervisor
program, cgroup v1 hierarchies on older Pi images), so it could not make one where it matters.
Why not a child subreaper: orphans re-parented to the collector would still not say which
command they came from, and any it did not reap would stay as zombies.

So a command is found by three things, each catching what the others miss:

- its session: the command starts one of its own (``start_new_session``), so its ordinary
  children share its session and process group;
- its ancestry, recorded while it runs: every few tenths of a second the ``/proc`` table is read
  and each descendant is remembered by its pid and start time, so one that called ``setsid``
  and whose parent then exited (re-parented to init) is still known, and a pid reused later by
  an unrelated process is not mistaken for it;
- an environment variable (``KEEPER_ACTION_ID=<unique id>``) the command and its descendants
  inherit, which finds a daemon that double-forked between two readings.

Spared: the daemons in ``KEPT_DAEMONS`` (``pppd``), which a connect command starts to hold
the link, and their children.

A process that clears its environment, leaves the session and loses its parent within a few
tenths of a second of starting escapes all three; nothing a keeper helper does works that way.
"""

import contextlib
import os
import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

MARKER = "KEEPER_ACTION_ID"
"""Not TRAFFIC_...: a command that runs `traffic` would take that for a config key."""
PROC = Path("/proc")


KEPT_DAEMONS = frozenset({"pppd"})
"""Daemons a connect command starts on purpose to hold the link, left running with their own
children: ``pon`` (the default ``keeper.connect``) starts ``pppd``, which detaches itself and
is the connection. Any other process the command leaves behind is killed."""


@dataclass(frozen=True)
class _Stat:
    name: str
    state: str
    ppid: int
    session: int
    start: int
    """Clock ticks after boot: with the pid, names one process for good."""


def _stat(pid: int) -> _Stat | None:
    try:
        data = (PROC / str(pid) / "stat").read_bytes()
    except OSError:
        return None
    close = data.rfind(b")")
    name = data[data.find(b"(") + 1:close].decode(errors="replace")
    fields = data[close + 2:].split()
    try:
        return _Stat(name, fields[0].decode(), int(fields[1]), int(fields[3]), int(fields[19]))
    except (IndexError, ValueError):
        return None


def _table() -> dict[int, _Stat]:
    table = {}
    for name in os.listdir(PROC):
        if name.isdigit() and (stat := _stat(int(name))) is not None:
            table[int(name)] = stat
    return table


def _marked(pid: int, marker: bytes) -> bool:
    try:
        return marker in (PROC / str(pid) / "environ").read_bytes().split(b"\0")
    except OSError:
        return False


def _closure(pids: set[int], children: dict[int, list[int]]) -> set[int]:
    """``pids`` and all their descendants."""
    found, frontier = set(pids), list(pids)
    while frontier:
        for child in children.get(frontier.pop(), ()):
            if child not in found:
                found.add(child)
                frontier.append(child)
    return found


@dataclass
class ProcessTree:
    """The processes of the command started as ``root`` with ``environment()``."""

    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    root: int = 0
    root_start: int = 0
    seen: dict[int, int] = field(default_factory=dict)
    """pid -> start time of every descendant seen so far."""

    def environment(self) -> dict[str, str]:
        return {**os.environ, MARKER: self.token}

    def started(self, pid: int) -> None:
        self.root = pid
        stat = _stat(pid)
        self.root_start = stat.start if stat else 0
        self.seen[pid] = self.root_start

    def scan(self, environ: bool = False) -> dict[int, _Stat]:
        """The command's live processes now (``environ``: also those found by the marker,
        which reads every process's environment), remembered for later scans."""
        table = _table()
        marker = f"{MARKER}={self.token}".encode()
        leader = table.get(self.root)
        session = self.root if leader is None or leader.start == self.root_start else -1
        members = {pid for pid, stat in table.items()
                   if self.seen.get(pid) == stat.start
                   or (stat.session == session and stat.start >= self.root_start)
                   or (environ and stat.start >= self.root_start and _marked(pid, marker))}
        children: dict[int, list[int]] = {}
        for pid, stat in table.items():
            children.setdefault(stat.ppid, []).append(pid)
        members = _closure(members, children) - _closure(
            {pid for pid, stat in table.items() if stat.name in KEPT_DAEMONS}, children)
        members.discard(os.getpid())
        found = {pid: table[pid] for pid in members}
        self.seen.update((pid, stat.start) for pid, stat in found.items())
        return found

    def kill(self, rounds: int = 50) -> None:
        """SIGKILL every process of the command, again until none is left (one may fork while
        the others die); reap those that had become the collector's own children, except the
        command itself, which its ``Popen`` waits for."""
        for _ in range(rounds):
            found = self.scan(environ=True)
            alive = {pid: stat for pid, stat in found.items() if stat.state not in "ZX"}
            for pid, stat in found.items():
                if pid in alive:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGKILL)
                if stat.ppid == os.getpid() and pid != self.root:
                    with contextlib.suppress(ChildProcessError):
                        os.waitpid(pid, os.WNOHANG)
            if not alive:
                return
            time.sleep(0.02)

    def remaining(self) -> list[int]:
        return [pid for pid, stat in self.scan(environ=True).items() if stat.state not in "ZX"]

"""What the MongoDB benchmarks share: the server, and deltas as the collector's saves hand them.

The server is ``TRAFFIC_BENCH_MONGODB_URI`` when set, else the tests' (``tests.mongo_server``):
``TRAFFIC_TEST_MONGODB_URI`` when set, else SecantusDB (a MongoDB-wire server written in Python
on WiredTiger, PyPI ``secantusdb``) started on a free loopback port as a single-node replica
set. Figures measured on SecantusDB are SecantusDB's, not MongoDB's: it is far slower.
"""

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from traffic.counters import Delta

BENCH_URI = "TRAFFIC_BENCH_MONGODB_URI"
TEST_URI = "TRAFFIC_TEST_MONGODB_URI"
POLL_MS = 5000
SAVE_MS = 600_000
POLL_PHASE_MS = 1_234
"""Where the polls fall in a 5 s step: the collector's timer starts when the process does, so
its polls are not aligned with the 5-minute buckets (a delta in every bucket straddles one)."""


@dataclass
class Server:
    base: str
    """``mongodb://host:port``, without a database."""
    what: str
    """What answers, for the notes: SecantusDB and its version, or the URI's variable."""

    def url(self, database: str) -> str:
        """A ``store.url`` naming ``database`` on this server."""
        return f"{self.base.rstrip('/')}/{database}?directConnection=true"


@contextlib.contextmanager
def server(workdir: Path) -> Iterator[Server]:
    """The server the benchmarks use while the context is open; SecantusDB keeps its data in
    ``workdir / "data"`` (kept afterwards: a cache may live there)."""
    if os.environ.get(BENCH_URI):
        yield Server(os.environ[BENCH_URI], f"the server of {BENCH_URI}")
        return
    from tests.mongo_server import running_server

    workdir.mkdir(parents=True, exist_ok=True)
    external = bool(os.environ.get(TEST_URI))
    generator = running_server(workdir)
    base = next(generator)
    try:
        yield Server(base, f"the server of {TEST_URI}" if external
                     else f"SecantusDB {metadata.version('secantusdb')}")
    finally:
        generator.close()


def polls(keys: tuple[str, ...], start: int, end: int, rates: dict[str, tuple[int, int]]
          ) -> list[Delta]:
    """The 5-second deltas of ``keys`` read at each poll in ``[start, end)``, in the order the
    collector counts them (every key of a poll, then the next poll); ``start`` is a poll's
    instant, ``rates``: each key's bytes per poll (rx, tx), varied a little poll by poll."""
    out = []
    for step, at in enumerate(range(start, end - POLL_MS + 1, POLL_MS)):
        wobble = 1 + (step * 7919 % 101) / 200
        for key in keys:
            rx, tx = rates[key]
            out.append(Delta(key, at, at + POLL_MS, int(rx * wobble), int(tx * wobble)))
    return out


def first_poll_after(at: int) -> int:
    """The collector's first poll instant at or after ``at``."""
    return at - at % POLL_MS + POLL_PHASE_MS + (POLL_MS if at % POLL_MS > POLL_PHASE_MS else 0)

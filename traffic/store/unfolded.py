"""One save held as a single record of a fixed size, for SQLite's ``unfolded`` row.

Every other save of the SQLite store writes only this record: the save's deltas and the
counters' readings they came from, in one 512-byte page, which the next save folds into the
tables. A record has a fixed size, so writing it overwrites its page in place and dirties
nothing else in the store: on an SD card, one page to the WAL and two of the WAL index, where a
save into the tables touches a dozen pages in as many places.

The layout (little-endian): a header ``version, width, key count, delta count, base`` (``base``
an instant in epoch milliseconds that the times are offsets from); the keys' names, joined by
newlines; per key its reading ``at, rx, tx, held``; per delta ``key index, start, end, rx, tx``.
``width`` is 4 when every delta's bytes fit a signed 32-bit number, else 8. Zero bytes pad it to
``RECORD_BYTES``; an all-zero record holds nothing.
"""

from collections.abc import Mapping, Sequence

from traffic.counters import CounterState, Delta

RECORD_BYTES = 400
"""With the row's own bytes and a site name of up to 60 bytes, it fits one 512-byte page."""
VERSION = 1
HEADER = (1, 1, 2, 2, 8)
"""The header's fields and their sizes: version, width, key count, delta count, base."""
READING = (4, 8, 8, 8)
"""A reading's: at (an offset from base), rx, tx, held."""
DELTA = (1, 4, 4)
"""A delta's, before its rx and tx of ``width`` bytes each: key index, start, end."""
EMPTY = bytes(RECORD_BYTES)


class Unfolded:
    """A decoded record: the readings by key (``at, rx, tx, held``) and the deltas."""

    def __init__(self, readings: dict[str, tuple[int, int, int, int]],
                 deltas: list[Delta]) -> None:
        self.readings = readings
        self.deltas = deltas

    def states(self, lives: Mapping[str, str]) -> dict[str, CounterState]:
        """The readings as tracker states, each with its key's life in the tables."""
        return {key: CounterState(lives[key], *reading)
                for key, reading in self.readings.items() if key in lives}


def _packed(values: Sequence[int], sizes: Sequence[int]) -> bytes:
    return b"".join(value.to_bytes(size, "little", signed=True)
                    for value, size in zip(values, sizes, strict=True))


def encode(states: Mapping[str, CounterState], deltas: Sequence[Delta]) -> bytes | None:
    """The record of a save, or None when it does not fit ``RECORD_BYTES``."""
    keys = list(states)
    index = {key: number for number, key in enumerate(keys)}
    if len(keys) > 127 or any(delta.key not in index for delta in deltas):
        return None
    base = max((state.at for state in states.values()), default=0)
    width = 4 if all(-2**31 <= value < 2**31 for d in deltas for value in (d.rx, d.tx)) else 8
    names = "\n".join(keys).encode()
    try:
        record = b"".join([
            _packed((VERSION, width, len(keys), len(deltas), base), HEADER),
            len(names).to_bytes(2, "little"), names,
            *(_packed((state.at - base, state.rx, state.tx, state.held), READING)
              for state in states.values()),
            *(_packed((index[d.key], d.start - base, d.end - base, d.rx, d.tx),
                      (*DELTA, width, width)) for d in deltas)])
    except OverflowError:  # a time more than 24 days from the latest reading, a huge count
        return None
    if len(record) > RECORD_BYTES:
        return None
    return record.ljust(RECORD_BYTES, b"\0")


class _Reader:
    def __init__(self, record: bytes) -> None:
        self.record = record
        self.at = 0

    def take(self, sizes: Sequence[int]) -> list[int]:
        values = []
        for size in sizes:
            values.append(int.from_bytes(self.record[self.at:self.at + size], "little",
                                         signed=True))
            self.at += size
        return values


def decode(record: bytes) -> Unfolded | None:
    """What ``record`` holds; None when it holds nothing (or is of an unknown version)."""
    if len(record) < sum(HEADER) or record[0] != VERSION:
        return None
    reader = _Reader(record)
    _, width, key_count, delta_count, base = reader.take(HEADER)
    (names_size,) = reader.take((2,))
    keys = record[reader.at:reader.at + names_size].decode().split("\n") if key_count else []
    reader.at += names_size
    readings = {}
    for key in keys:
        at, rx, tx, held = reader.take(READING)
        readings[key] = (base + at, rx, tx, held)
    deltas = []
    for _ in range(delta_count):
        number, start, end, rx, tx = reader.take((*DELTA, width, width))
        deltas.append(Delta(keys[number], base + start, base + end, rx, tx))
    return Unfolded(readings, deltas)

"""One save held as a single record of a fixed size, for SQLite's ``unfolded`` row.

Every other save of the SQLite store writes only this record: the save's deltas and the
counters' readings they came from, in one 512-byte page, which the next save folds into the
tables. A record has a fixed size, so writing it overwrites its page in place and dirties
nothing else in the store: on an SD card, one page to the WAL and two of the WAL index, where a
save into the tables touches a dozen pages in as many places.

The layout (little-endian): a header ``version, width, key count, delta count, base`` (``base``
an instant in epoch milliseconds that the times are offsets from); the keys' names, joined by
newlines; per key its reading ``at, rx, tx, held``; per delta ``key index, start, end, rx, tx``.
``width`` is 4 when every delta's bytes fit in 32 bits, else 8. Zero bytes pad it to
``RECORD_BYTES``; an all-zero record holds nothing.
"""

import struct
from collections.abc import Mapping, Sequence

from traffic.counters import CounterState, Delta

RECORD_BYTES = 400
"""With the row's own bytes and a site name of up to 60 bytes, it fits one 512-byte page."""
VERSION = 1
HEADER = struct.Struct("<BBHHq")
NAMES = struct.Struct("<H")
READING = struct.Struct("<iqqq")
DELTA_FORMATS = {4: struct.Struct("<BiiII"), 8: struct.Struct("<Biiqq")}
EMPTY = bytes(RECORD_BYTES)
OFFSET_LIMIT = 2**31


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


def encode(states: Mapping[str, CounterState], deltas: Sequence[Delta]) -> bytes | None:
    """The record of a save, or None when it does not fit ``RECORD_BYTES``."""
    keys = list(states)
    index = {key: number for number, key in enumerate(keys)}
    if len(keys) > 255 or any(delta.key not in index for delta in deltas):
        return None
    base = max(state.at for state in states.values()) if states else 0
    times = [state.at for state in states.values()]
    times += [t for delta in deltas for t in (delta.start, delta.end)]
    if any(abs(t - base) >= OFFSET_LIMIT for t in times):
        return None
    width = 4 if all(0 <= d.rx < 2**32 and 0 <= d.tx < 2**32 for d in deltas) else 8
    names = "\n".join(keys).encode()
    parts = [HEADER.pack(VERSION, width, len(keys), len(deltas), base),
             NAMES.pack(len(names)), names]
    try:
        parts += [READING.pack(state.at - base, state.rx, state.tx, state.held)
                  for state in states.values()]
        delta_format = DELTA_FORMATS[width]
        parts += [delta_format.pack(index[d.key], d.start - base, d.end - base, d.rx, d.tx)
                  for d in deltas]
    except struct.error:  # a reading beyond 64 bits
        return None
    record = b"".join(parts)
    if len(record) > RECORD_BYTES:
        return None
    return record.ljust(RECORD_BYTES, b"\0")


def decode(record: bytes) -> Unfolded | None:
    """What ``record`` holds; None when it holds nothing (or is of an unknown version)."""
    if len(record) < HEADER.size or record[0] != VERSION:
        return None
    _, width, key_count, delta_count, base = HEADER.unpack_from(record)
    offset = HEADER.size
    (names_size,) = NAMES.unpack_from(record, offset)
    offset += NAMES.size
    keys = record[offset:offset + names_size].decode().split("\n") if key_count else []
    offset += names_size
    readings = {}
    for key in keys:
        at, rx, tx, held = READING.unpack_from(record, offset)
        readings[key] = (base + at, rx, tx, held)
        offset += READING.size
    delta_format = DELTA_FORMATS[width]
    deltas = []
    for _ in range(delta_count):
        number, start, end, rx, tx = delta_format.unpack_from(record, offset)
        deltas.append(Delta(keys[number], base + start, base + end, rx, tx))
        offset += delta_format.size
    return Unfolded(readings, deltas)

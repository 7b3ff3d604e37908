"""One save held as a single record of a fixed size, for SQLite's ``unfolded`` row.

Every other save of the SQLite store writes only this record: the save's deltas and the
counters' readings they came from, in one 512-byte page, which the next save folds into the
tables. A record has a fixed size, so writing it overwrites its page in place and dirties
nothing else in the store: on an SD card, one page to the WAL and two of the WAL index, where a
save into the tables touches a dozen pages in as many places.

The layout: a version byte, then numbers as variable-length integers (7 bits a byte, the
sign in the lowest bit): the key count, the delta count, ``base`` (an instant in epoch
milliseconds that the times are offsets from); per key its name (its length in bytes, then
UTF-8) and its reading ``at, rx, tx, held``; per delta its key's index (doubled, plus one
when its start is given: a delta that starts where its key's last one ended needs none), its
start, its length, rx and tx. Zero bytes pad it to ``RECORD_BYTES``; an all-zero record holds
nothing.
"""

from collections.abc import Mapping, Sequence

from traffic.counters import CounterState, Delta

RECORD_BYTES = 440
"""With the row's own bytes and a site name of up to 32 bytes, it fits one 512-byte page. At
the defaults, four interfaces' readings and ten minutes' deltas take about 280 bytes."""
VERSION = 2


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


def _put(out: bytearray, *numbers: int) -> None:
    for number in numbers:
        number = number * 2 if number >= 0 else -number * 2 - 1
        while number >= 0x80:
            out.append(number & 0x7F | 0x80)
            number >>= 7
        out.append(number)


def encode(states: Mapping[str, CounterState], deltas: Sequence[Delta]) -> bytes | None:
    """The record of a save, or None when it does not fit ``RECORD_BYTES``."""
    index = {key: number for number, key in enumerate(states)}
    if any(delta.key not in index for delta in deltas):
        return None
    base = max((state.at for state in states.values()), default=0)
    out = bytearray([VERSION])
    _put(out, len(states), len(deltas), base)
    for key, state in states.items():
        name = key.encode()
        _put(out, len(name))
        out += name
        _put(out, state.at - base, state.rx, state.tx, state.held)
    ends: dict[str, int] = {}
    for delta in deltas:
        if ends.get(delta.key) == delta.start:
            _put(out, index[delta.key] * 2)
        else:
            _put(out, index[delta.key] * 2 + 1, delta.start - base)
        _put(out, delta.end - delta.start, delta.rx, delta.tx)
        ends[delta.key] = delta.end
    if len(out) > RECORD_BYTES:
        return None
    return bytes(out.ljust(RECORD_BYTES, b"\0"))


class UnknownVersion(ValueError):
    """A record written by a newer Traffic."""


class _Reader:
    def __init__(self, record: bytes) -> None:
        self.record = record
        self.at = 1

    def take(self) -> int:
        number = shift = 0
        while True:
            byte = self.record[self.at]
            self.at += 1
            number |= (byte & 0x7F) << shift
            if byte < 0x80:
                return number >> 1 if not number & 1 else -(number >> 1) - 1
            shift += 7

    def text(self) -> str:
        size = self.take()
        self.at += size
        return self.record[self.at - size:self.at].decode()


def decode(record: bytes) -> Unfolded | None:
    """What ``record`` holds; None when it holds nothing. ``ValueError`` when it cannot be
    read (``UnknownVersion`` when a newer Traffic wrote it)."""
    if not record or not record[0]:
        return None
    if record[0] > VERSION:
        raise UnknownVersion(f"record version {record[0]}")
    if record[0] != VERSION:
        raise ValueError(f"garbled (version {record[0]})")
    reader = _Reader(record)
    take = reader.take
    try:
        key_count, delta_count, base = take(), take(), take()
        readings = {}
        keys = []
        for _ in range(key_count):
            keys.append(reader.text())
            readings[keys[-1]] = (base + take(), take(), take(), take())
        deltas = []
        ends: dict[str, int] = {}
        for _ in range(delta_count):
            number = take()
            key = keys[number >> 1]
            start = base + take() if number & 1 else ends[key]
            end = start + take()
            deltas.append(Delta(key, start, end, take(), take()))
            ends[key] = end
    except (IndexError, KeyError, UnicodeDecodeError) as error:
        raise ValueError(f"cut short or garbled ({type(error).__name__})") from None
    if len(keys) != len(readings):
        raise ValueError("garbled (a key twice)")
    return Unfolded(readings, deltas)

"""The held save's record: what fits one page, and that it reads back as written."""

import itertools

from traffic.counters import CounterState, Delta
from traffic.store.unfolded import EMPTY, RECORD_BYTES, decode, encode

AT = 1_796_000_102_345
KEYS = [f"kernel:wwan{n}" for n in range(4)]
CUTS = (-600_000, -420_000, -415_000, -120_000, -115_000, 0)
"""Ten minutes of 5-second polls as the collector merges them: a part of a 5-minute bucket,
the poll across its end, the next bucket, the poll across its end, a part of the last."""


def a_save(rx: int = 123_456) -> tuple[dict[str, CounterState], list[Delta]]:
    states = {key: CounterState("boot/3", AT, 10**12 + n, 10**11, n % 2)
              for n, key in enumerate(KEYS)}
    deltas = [Delta(key, AT + a, AT + b, rx + a % 7, a % 3)
              for key in KEYS for a, b in itertools.pairwise(CUTS)]
    return states, deltas


def test_ten_minutes_of_four_interfaces_fit_and_read_back() -> None:
    states, deltas = a_save()
    record = encode(states, deltas)
    assert record is not None and len(record) == RECORD_BYTES
    assert len(record.rstrip(b"\0")) < 300
    read = decode(record)
    assert read is not None
    assert read.deltas == deltas
    assert read.states({key: "boot/3" for key in KEYS}) == states


def test_gaps_and_bytes_beyond_32_bits_read_back() -> None:
    states, deltas = a_save(rx=5 * 2**40)
    kept = [delta for number, delta in enumerate(deltas) if number % 3]  # gaps in each chain
    record = encode(states, kept)
    assert record is not None
    read = decode(record)
    assert read is not None and read.deltas == kept


def test_what_does_not_fit_is_not_a_record() -> None:
    states, deltas = a_save()
    assert encode(states, deltas * 4) is None  # 80 deltas
    assert encode(states, [Delta("kernel:other", AT, AT + 5000, 1, 1)]) is None  # no reading
    assert decode(EMPTY) is None

"""The held save's record: what fits one page, and that it reads back as written."""

import itertools

import pytest

from traffic.counters import CounterState, Delta
from traffic.store.unfolded import RECORD_BYTES, UnknownVersion, decode, encode

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
    assert decode(bytes(RECORD_BYTES)) is None


def test_any_key_name_reads_back() -> None:
    states = {"router:a\nb": CounterState("1", AT, 5, 5), "": CounterState("1", AT, 1, 1),
              "kernel:é": CounterState("1", AT, 2, 2)}
    deltas = [Delta("", AT - 5000, AT, 1, 1), Delta("kernel:é", AT - 10, AT - 10, 0, 3),
              Delta("router:a\nb", AT - 9000, AT - 4000, -1, 2)]
    read = decode(encode(states, deltas) or b"")
    assert read is not None and read.deltas == deltas
    assert read.states(dict.fromkeys(states, "1")) == states


def test_a_garbled_or_newer_record_is_an_error_not_a_guess() -> None:
    with pytest.raises(ValueError, match="cut short"):
        decode(bytes([2]) + b"\xff" * 10)
    with pytest.raises(ValueError, match="garbled"):  # 63 keys, all named ""
        decode(bytes([2, 0x7E]) + bytes(RECORD_BYTES - 2))
    with pytest.raises(UnknownVersion):
        decode(b"\x07" + bytes(RECORD_BYTES - 1))
    with pytest.raises(ValueError, match="garbled") as older:  # none was ever released
        decode(b"\x01" + bytes(RECORD_BYTES - 1))
    assert not isinstance(older.value, UnknownVersion)

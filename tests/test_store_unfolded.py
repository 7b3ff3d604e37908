"""The held save's record: what fits one page, and that it reads back as written."""

from traffic.counters import CounterState, Delta
from traffic.store.unfolded import EMPTY, RECORD_BYTES, decode, encode

AT = 1_796_000_000_000
KEYS = [f"kernel:wwan{n}" for n in range(4)]


def a_save(rx: int = 123_456) -> tuple[dict[str, CounterState], list[Delta]]:
    states = {key: CounterState("boot/3", AT + n, 10**12 + n, 10**11, n % 2)
              for n, key in enumerate(KEYS)}
    deltas = [Delta(key, AT - 600_000 + b * 300_000 - 5000, AT - 300_000 + b * 300_000, rx + b,
                    b) for key in KEYS for b in range(3)]
    return states, deltas


def test_ten_minutes_of_four_interfaces_fit_and_read_back() -> None:
    states, deltas = a_save()
    record = encode(states, deltas)
    assert record is not None and len(record) == RECORD_BYTES
    read = decode(record)
    assert read is not None
    assert read.deltas == deltas
    assert read.states({key: "boot/3" for key in KEYS}) == states


def test_bytes_beyond_32_bits_read_back() -> None:
    states, deltas = a_save(rx=5 * 2**32)
    record = encode(dict(list(states.items())[:2]),
                    [delta for delta in deltas if delta.key in KEYS[:2]])
    assert record is not None
    read = decode(record)
    assert read is not None and read.deltas[0].rx == 5 * 2**32


def test_what_does_not_fit_is_not_a_record() -> None:
    states, deltas = a_save()
    assert encode(states, deltas * 2) is None  # 24 deltas
    assert encode(states, [Delta("kernel:other", AT, AT + 5000, 1, 1)]) is None  # no reading
    assert encode(states, [Delta(KEYS[0], AT - 30 * 86_400_000, AT, 1, 1)]) is None
    assert decode(EMPTY) is None

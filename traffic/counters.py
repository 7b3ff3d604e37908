"""Raw counter readings to exact byte deltas.

The rules, vnStat-style, in one pure function (``counter_delta``) and a small tracker around it:

- Same counter life, value grew: the delta is the growth.
- New life (interface re-created, so a new ifindex; or a reboot, so a new boot id): the counter
  restarted at zero, so the delta is the new raw value. Never a wrap: reading a PPP reconnect as a
  32-bit wrap is how vnStat invents 4 GiB.
- Same life, value fell: a wrap only if the previous value fits the counter's width (a value
  above 2**32 proves a counter said to be 32-bit is wider) and the implied rate is plausible;
  otherwise the counter was reset and the delta is the new raw value.
- Any delta implying more than ``max_rate`` bytes per second is dropped, logged, and the tracker
  resynced to the new value.
- A ``held`` counter (a router's running totals, which dip for a while and come back) keeps its
  highest value per direction: a direction below it counts nothing until it grows past it, and
  then only what is above it. Only when both directions have fallen to at most half their
  highest, for ``CLEAR_CONFIRMATIONS`` readings in a row, is the fall the router's "clear",
  counted from zero. A new life of a held counter (another router) is a starting point: its
  total holds what it counted before it was watched.
"""

from traffic import log
from traffic.record import Record, field

DIRECTIONS = ("rx", "tx")
MIN_ELAPSED_S = 1.0
"""Rates are judged over at least this long: a clock step cannot make a small delta implausible."""
CLEAR_CONFIRMATIONS = 3
"""Readings in a row at most half the highest values that make a held counter's fall a reset."""


class Reading(Record):
    """One raw sample of a source. ``at`` is epoch milliseconds (UTC)."""

    key: str
    at: int
    counters: dict[str, int]
    life: str
    """Identifies the counter's life: a new value means the counter restarted at zero."""
    bits: int = 64
    gauges: dict[str, float | str] = field(default_factory=dict)
    resumed: bool = False
    """The source watches this counter again after a time it did not (an interface that has
    become the default route again): what it counted meanwhile was not the link's."""
    held: bool = False
    """A fall is held until confirmed (see the module's rules), not taken as a reset."""
    max_rate: int = 0
    """The source's own ``max_rate``; 0 is the tracker's."""


class Delta(Record):
    """Bytes that crossed ``key`` in ``[start, end)`` (epoch milliseconds)."""

    key: str
    start: int
    end: int
    rx: int
    tx: int


class CounterState(Record):
    """What the tracker remembers of a key between readings (and across restarts)."""

    life: str
    at: int
    rx: int
    tx: int
    held: int = 0
    """Readings in a row below ``rx``/``tx`` of a held counter (its highest values)."""


def counter_delta(previous: int, current: int, same_life: bool, bits: int,
                  elapsed_s: float, max_rate: int) -> int | None:
    """Bytes counted between two raw values, or None for an implausible jump.

    When the clock went back between the readings (``elapsed_s`` negative), how long passed is
    unknown, so no growth is implausible: real bytes must not be dropped for a clock's mistake.
    A fall is then a wrap only if it would be one within a second.
    """
    plausible = max_rate * max(elapsed_s, MIN_ELAPSED_S)
    if not same_life:
        growth = current
    elif current >= previous:
        growth = current - previous
    elif previous < 2**bits and current + 2**bits - previous <= plausible:
        growth = current + 2**bits - previous
    else:
        growth = current
    return None if elapsed_s >= 0 and growth > plausible else growth


class Tracker:
    """Turns successive readings of each key into deltas; its state is saved with them."""

    def __init__(self, max_rate: int, state: dict[str, CounterState] | None = None) -> None:
        self.max_rate = max_rate
        self.state: dict[str, CounterState] = dict(state or {})

    def update(self, reading: Reading) -> Delta | None:
        """The delta since the previous reading of the same key; None for the first one, and
        for a resumed counter of the same life (a new life counts from zero, as always).

        Per key, time only moves forward: after the clock steps back, intervals continue from
        the last one, so no interval is ever stored twice.
        """
        previous = self.state.get(reading.key)
        rx, tx = reading.counters["rx"], reading.counters["tx"]
        at = reading.at if previous is None else max(reading.at, previous.at + 1)
        same_life = previous is not None and previous.life == reading.life
        if previous is not None and same_life and reading.held and (
                rx < previous.rx or tx < previous.tx):
            if rx <= previous.rx // 2 and tx <= previous.tx // 2:
                if previous.held + 1 < CLEAR_CONFIRMATIONS:
                    from dataclasses import replace

                    self.state[reading.key] = replace(previous, held=previous.held + 1)
                    return None
                same_life = False  # cleared: it counts from zero
            else:
                rx, tx = max(rx, previous.rx), max(tx, previous.tx)  # a dip: keep the highest
        self.state[reading.key] = CounterState(reading.life, at, rx, tx)
        if previous is None or (reading.resumed and same_life):
            return None
        if reading.held and previous.life != reading.life:
            return None
        max_rate = reading.max_rate or self.max_rate
        elapsed_s = (reading.at - previous.at) / 1000
        bits = reading.bits
        grown_rx = counter_delta(previous.rx, rx, same_life, bits, elapsed_s, max_rate)
        grown_tx = counter_delta(previous.tx, tx, same_life, bits, elapsed_s, max_rate)
        if grown_rx is None or grown_tx is None:
            log.warning(
                __name__, "%s: dropped an implausible jump (rx %d -> %d, tx %d -> %d in %.1f s, "
                "over the max rate of %d B/s); counting resumes from the new value",
                reading.key, previous.rx, rx, previous.tx, tx, elapsed_s, max_rate)
            return None
        return Delta(reading.key, previous.at, at, grown_rx, grown_tx)

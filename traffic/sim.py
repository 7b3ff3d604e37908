"""The SIM card's state as readers word it: ``pin required (2 attempts left)``.

A modem tells the attempts left (the ``pin_attempts`` and ``puk_attempts`` gauges) while the SIM
asks for its PIN or its PUK; the count is what tells a family whether entering it by hand is
still safe.
"""

from collections.abc import Mapping

from traffic.signal import number

ATTEMPTS_GAUGE = {"pin required": "pin_attempts", "puk required": "puk_attempts"}
"""The ``sim`` gauge's words that ask for a code, and the gauge counting its attempts left."""


def attempts_left(count: int) -> str:
    return f"{count} attempt{'' if count == 1 else 's'} left"


def sim_words(gauges: Mapping[str, float | str]) -> str:
    """The ``sim`` gauge with the attempts left of the code it asks for, when told:
    ``pin required (2 attempts left)``, ``missing``; "" without the gauge."""
    state = str(gauges.get("sim") or "")
    count = number(gauges.get(ATTEMPTS_GAUGE.get(state, "")))
    return f"{state} ({attempts_left(int(count))})" if count is not None else state

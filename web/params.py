"""Query parameters: each bad one is a 400 that names it and says what would be right."""

from collections.abc import Callable, Iterable
from zoneinfo import ZoneInfo

from flask import request
from werkzeug.exceptions import BadRequest, NotFound

from traffic.history import MAX_POINTS, bucket_count_estimate
from traffic.periods import DAY_MS, FIVE_MIN_MS, HOUR_MS, RESOLUTIONS, bucket_start, parse_instant


class BadParameter(BadRequest):
    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")


class NothingNamed(NotFound):
    """A well-formed name of something not there (an interface, a gauge): the schema cannot
    list what is stored, so this is a 404, not a 400."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")


def choice(name: str, options: Iterable[str], default: str) -> str:
    value = request.args.get(name, default)
    options = tuple(options)
    if value not in options:
        raise BadParameter(name, f"expected one of {', '.join(options)}, got {value!r}")
    return value


def resolution(default: str = "day") -> str:
    return choice("resolution", RESOLUTIONS, default)


MAX_EPOCH_DIGITS = 19
"""Epoch milliseconds up to 9999999999999999999 (far beyond any filter): a longer number is
refused before it is converted (Python takes thousands of digits slowly, then not at all)."""


def instant(name: str, tz: ZoneInfo, default: int, bounded: bool = True) -> int:
    """An optional time: epoch milliseconds or ISO 8601 (local time when it has no offset)."""
    value = request.args.get(name)
    if value is None:
        return default
    if value.strip().isdigit() and len(value.strip()) > MAX_EPOCH_DIGITS:
        raise BadParameter(name, f"expected epoch milliseconds of at most {MAX_EPOCH_DIGITS} "
                                 f"digits, got {len(value.strip())} digits")
    try:
        return min(parse_instant(value, tz, bounded), 2**62)  # a filter may be far off; SQL not
    except ValueError as error:
        raise BadParameter(name, str(error)) from None


def time_range(tz: ZoneInfo, default: tuple[int, int], start_before: Callable[[int], int]
               ) -> tuple[int, int]:
    """``start`` and ``end``; with only ``end`` given, ``start`` is ``start_before(end)`` (the
    default span, ending there) so that any end the schema allows is a range."""
    end = instant("end", tz, default[1])
    if given("start", "end") == ["end"]:
        return start_before(end), end
    return instant("start", tz, default[0]), end


SHORTEST_BUCKET_MS = {"5min": FIVE_MIN_MS, "hour": HOUR_MS, "day": DAY_MS, "month": 28 * DAY_MS}


def capped_end(resolution: str, start: int, end: int, tz: ZoneInfo) -> int:
    """``end``, or the end of the first MAX_POINTS buckets from ``start`` if it is before."""
    if bucket_count_estimate(resolution, start, end) <= MAX_POINTS:
        return end
    return bucket_start(resolution, start + (MAX_POINTS - 1) * SHORTEST_BUCKET_MS[resolution], tz)


def integer(name: str, default: int, low: int, high: int) -> int:
    value = request.args.get(name)
    if value is None:
        return default
    expected = f"expected a whole number from {low} to {high}"
    if not (value.isascii() and value.isdigit()):
        raise BadParameter(name, f"{expected}, got {value!r}")
    if len(value) > len(str(high)):
        raise BadParameter(name, f"{expected}, got {len(value)} digits")
    if not low <= int(value) <= high:
        raise BadParameter(name, f"{expected}, got {value!r}")
    return int(value)


MAX_TEXT = 100
"""Characters in a name (an interface, a gauge, a source): more is no name we keep, and two of
them percent-encoded stay inside the request line gunicorn takes (4094 bytes)."""


def text(name: str) -> str | None:
    """An optional text; given empty it is a mistake (``iface=`` is not "every interface")."""
    value = request.args.get(name)
    if value == "":
        raise BadParameter(name, "must not be empty (leave the parameter out instead)")
    if value is not None and len(value) > MAX_TEXT:
        raise BadParameter(name, f"expected at most {MAX_TEXT} characters, got {len(value)}")
    return value


def given(*names: str) -> list[str]:
    """Which of ``names`` the query holds."""
    return [name for name in names if name in request.args]


def refuse_unknown(*known: str) -> None:
    """A misspelt parameter would be silently ignored, and a repeated one would take its first
    value: say so instead."""
    expected = ", ".join(known) or "none"
    for name in request.args:
        if not name:
            raise BadParameter(f"={request.args[name]}",
                               f"a parameter needs a name (this endpoint takes: {expected})")
        if name not in known:
            raise BadParameter(name, f"unknown parameter (this endpoint takes: {expected})")
        if len(request.args.getlist(name)) > 1:
            raise BadParameter(name, "given twice")

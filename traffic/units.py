"""Sizes and durations as people write them in the config file.

"GB" means 10**9 bytes, as on a mobile contract; "GiB" means 2**30 bytes.
"""

import math

SI_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
IEC_UNITS = {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}
DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}



def _number_and_unit(text: str) -> tuple[str, str] | None:
    """``("1.5", "GiB")`` from ``" 1.5 GiB "``: digits with at most one inner point, then
    letters, blanks around either; None for anything else. Parsed by hand: compiling a
    regular expression costs more than the rest of reading a config file."""
    text = text.strip()
    split = len(text) - len(text.lstrip("0123456789."))
    number, unit = text[:split], text[split:].lstrip()
    whole, point, fraction = number.partition(".")
    if (not whole.isdigit() or not whole.isascii()
            or (point and not (fraction.isdigit() and fraction.isascii()))
            or not ((unit.isalpha() and unit.isascii()) or not unit)):
        return None
    return number, unit


class MissingUnit(ValueError):
    """A size written as a bare number other than 0: bytes, or the contract's GB?"""

    def __init__(self, number: str) -> None:
        self.number = number
        super().__init__(f"{number} has no unit; write '{number} GB' (or '{number} GiB', "
                         "or '0' for no limit)")


def parse_size(text: str | int | float) -> int:
    """Bytes in a size such as ``"40 GB"``, ``"1.5GiB"`` or ``"0"``.

    A number without a unit other than 0 raises MissingUnit: ``40`` is far more likely meant
    as 40 GB than as 40 bytes.
    """
    if isinstance(text, bool):
        raise ValueError(f"expected a size such as '40 GB', got {text!r}")
    if isinstance(text, int | float) and text < 0:
        raise ValueError(f"a size cannot be negative: {text}")
    parts = _number_and_unit(str(text))
    unit = parts[1].upper() if parts else ""
    factor = SI_UNITS.get(unit) or IEC_UNITS.get(unit)
    if not parts or factor is None:
        raise ValueError(f"bad size {text!r} (write e.g. '40 GB' or '40 GiB')")
    if not unit and float(parts[0]) != 0:
        raise MissingUnit(parts[0])
    return round(float(parts[0]) * factor)


def parse_rate(text: str | int | float) -> int:
    """Bytes per second in a rate such as ``"250 MB/s"``."""
    if isinstance(text, str) and text.strip().endswith("/s"):
        text = text.strip()[:-2]
    try:
        return parse_size(text)
    except MissingUnit as error:
        raise ValueError(f"{error.number} has no unit; write '{error.number} MB/s'") from None
    except ValueError:
        raise ValueError(f"bad rate {text!r} (write e.g. '250 MB/s')") from None


def parse_duration(text: str | int | float) -> float:
    """Seconds in a duration such as ``"5s"``, ``"10m"``, ``"2h"``, ``"7d"``; a number without a
    unit (``5`` or ``"5"``) is seconds."""
    if isinstance(text, bool):
        raise ValueError(f"expected a duration such as '5s', got {text!r}")
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError(f"a duration cannot be negative: {text}")
        return float(text)
    parts = _number_and_unit(str(text))
    unit = parts[1] if parts else ""
    if not parts or (unit and unit not in DURATION_UNITS):
        raise ValueError(f"bad duration {text!r} (write e.g. '5s', '10m', '2h' or '7d')")
    return float(parts[0]) * DURATION_UNITS.get(unit, 1)


def duration_text(seconds: float) -> str:
    """A duration as the config file writes it: ``"5s"``, ``"10m"``, ``"730d"``, ``"250ms"``."""
    if seconds == 0:
        return "0"
    for name, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{name}"
    return f"{seconds * 1000:.3f}".rstrip("0").rstrip(".") + "ms"


def unit_system(limit_text: str) -> str:
    """``"iec"`` when the user wrote the limit in GiB-style units, else ``"si"``."""
    return "iec" if str(limit_text).rstrip().lower().endswith("ib") else "si"


SIZE_UNITS = {"si": (1000, ("B", "kB", "MB", "GB", "TB")),
              "iec": (1024, ("B", "KiB", "MiB", "GiB", "TiB"))}
"""The units sizes are shown in. The page hands them to js/traffic.js (``data-size-units``),
whose formatSize follows format_size step for step: tests/e2e/test_formats.py runs one table
of sizes through both."""


def size_units(system: str) -> str:
    """The units of ``system`` as the page passes them to the script: ``1000 B kB MB GB TB``."""
    base, names = SIZE_UNITS[system]
    return " ".join([str(base), *names])


def format_size(size: float, system: str = "si") -> str:
    """A size for people: ``12.3 GB`` (or ``12.3 GiB`` with ``system="iec"``).

    Bytes are whole, larger units have one decimal, rounded half up; the unit is the first in
    which the rounded number is under 1000 (1024): 999,960,000 B is ``1 GB``, not ``1000 MB``.
    """
    base, names = SIZE_UNITS[system]
    value = abs(float(size))
    index, scale = 0, 1
    shown = math.floor(value + 0.5)
    while shown >= base * scale and index < len(names) - 1:
        value /= base
        index, scale = index + 1, 10
        shown = math.floor(value * scale + 0.5)
    text = str(shown) if scale == 1 else str(shown // 10) + (f".{shown % 10}" if shown % 10
                                                             else "")
    sign = "-" if size < 0 and shown else ""
    return f"{sign}{text} {names[index]}"


def format_duration(seconds: float) -> str:
    """A short duration for people: ``45s``, ``12m``, ``3h 5m``, ``2d 4h``."""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h {seconds % 3600 // 60}m"
    return f"{seconds // 86400}d {seconds % 86400 // 3600}h"

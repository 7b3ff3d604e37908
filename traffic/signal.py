"""The signal in one word (excellent, good, fair, poor), and the units of the gauges.

The bands are the ones LTE field guides and router vendors use for RSRP (the strength of the
cell's reference signal) and SINR (how far that signal stands above noise and interference).
A value on a boundary belongs to the better band: RSRP -90 dBm is good, SINR 0 dB is fair.
With both, the worse word is the signal's: a strong signal drowned in interference is not good.
"""

from collections.abc import Container, Mapping

QUALITIES = ("excellent", "good", "fair", "poor")
"""Best first."""
RSRP_BANDS = ((-80.0, "excellent"), (-90.0, "good"), (-100.0, "fair"))
"""dBm: at or above each floor, that word; below the last, poor."""
SINR_BANDS = ((20.0, "excellent"), (13.0, "good"), (0.0, "fair"))
"""dB: at or above each floor, that word; below the last, poor."""
RSSI_BANDS = ((-73.0, "excellent"), (-83.0, "good"), (-93.0, "fair"))
"""dBm of a modem's ``AT+CSQ`` (CSQ 20, 15 and 10 and above, as modem guides word them): the
word only when neither RSRP nor SINR is known."""

LEVELS = ("rsrp", "sinr")
"""The levels a router tells of its signal, shown together."""
STRENGTH_ONLY = ("rssi",)
"""The level shown when neither of ``LEVELS`` is known: all a modem tells through ``AT+CSQ``."""

GAUGE_UNITS = {"rsrp": "dBm", "rssi": "dBm", "rsrq": "dB", "sinr": "dB",
               "month_rx": "bytes", "month_tx": "bytes", "rx_rate": "bytes/s",
               "tx_rate": "bytes/s"}
"""The unit of each number a source reports as a gauge; text gauges have none."""


def _band(value: float, bands: tuple[tuple[float, str], ...]) -> str:
    for floor, word in bands:
        if value >= floor:
            return word
    return "poor"


def rsrp_quality(dbm: float) -> str:
    return _band(dbm, RSRP_BANDS)


def sinr_quality(db: float) -> str:
    return _band(db, SINR_BANDS)


def quality(rsrp: float | None = None, sinr: float | None = None) -> str | None:
    """The signal's word from whichever of RSRP and SINR are known; None when neither is."""
    words = [rsrp_quality(rsrp) if rsrp is not None else None,
             sinr_quality(sinr) if sinr is not None else None]
    known = [word for word in words if word is not None]
    return max(known, key=QUALITIES.index) if known else None


def number(value: object) -> float | None:
    """A gauge's value as a number, or None when it is text or missing."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def shown_levels(known: Container[str]) -> list[str]:
    """The gauges a signal is shown by, of those ``known``: RSRP and SINR, else RSSI."""
    return ([name for name in LEVELS if name in known]
            or [name for name in STRENGTH_ONLY if name in known])


def gauges_quality(gauges: Mapping[str, float | str]) -> str | None:
    """The word for a source's latest gauges: from RSRP and SINR, else from RSSI."""
    found = quality(number(gauges.get("rsrp")), number(gauges.get("sinr")))
    rssi = number(gauges.get("rssi"))
    return found if found is not None or rssi is None else _band(rssi, RSSI_BANDS)

"""The signal's quality word: the RSRP and SINR bands, their edges, and the worse of the two."""

import pytest

from traffic.signal import gauges_quality, quality, rsrp_quality, sinr_quality


@pytest.mark.parametrize(("dbm", "word"), [
    (-44, "excellent"), (-80, "excellent"), (-80.01, "good"), (-85, "good"), (-90, "good"),
    (-90.5, "fair"), (-100, "fair"), (-100.01, "poor"), (-120, "poor"), (-140, "poor"),
])
def test_rsrp_bands(dbm: float, word: str) -> None:
    assert rsrp_quality(dbm) == word


@pytest.mark.parametrize(("db", "word"), [
    (30, "excellent"), (20, "excellent"), (19.9, "good"), (13, "good"), (12.9, "fair"),
    (0, "fair"), (-0.1, "poor"), (-10, "poor"),
])
def test_sinr_bands(db: float, word: str) -> None:
    assert sinr_quality(db) == word


@pytest.mark.parametrize(("rsrp", "sinr", "word"), [
    (-75, 25, "excellent"),
    (-75, 14, "good"),          # strong, but interference keeps it good
    (-92, 14, "fair"),          # the RSRP is the worse
    (-85, -3, "poor"),
    (-105, 25, "poor"),
    (-92, None, "fair"),        # a router that reports only one of them
    (None, 21, "excellent"),
    (None, None, None),         # no signal reported: no word
])
def test_with_both_the_worse_word(rsrp: float | None, sinr: float | None, word: str | None
                                  ) -> None:
    assert quality(rsrp, sinr) == word


def test_gauges_take_numbers_only() -> None:
    assert gauges_quality({"rsrp": -92, "sinr": 14.0, "operator": "Telia"}) == "fair"
    assert gauges_quality({"rsrp": "unknown", "sinr": 21}) == "excellent"
    assert gauges_quality({"operator": "Telia", "network_type": "LTE"}) is None
    assert gauges_quality({"rsrp": True}) is None


@pytest.mark.parametrize(("rssi", "word"), [(-51.0, "excellent"), (-73.0, "excellent"),
                                            (-75.0, "good"), (-83.0, "good"), (-85.0, "fair"),
                                            (-93.0, "fair"), (-95.0, "poor"), (-113.0, "poor")])
def test_a_modems_rssi_alone_has_its_word(rssi: float, word: str) -> None:
    assert gauges_quality({"rssi": rssi, "operator": "Telia"}) == word


def test_rsrp_and_sinr_win_over_rssi() -> None:
    assert gauges_quality({"rsrp": -105.0, "rssi": -51.0}) == "poor"
    assert gauges_quality({"sinr": 25.0, "rssi": -113.0}) == "excellent"

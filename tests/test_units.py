import pytest

from traffic.units import (
    duration_text,
    format_size,
    parse_duration,
    parse_rate,
    parse_size,
    unit_system,
)


@pytest.mark.parametrize(("text", "expected"), [
    ("40 GB", 40 * 10**9), ("40GB", 40 * 10**9), ("40 GiB", 40 * 2**30), ("1.5 MB", 1_500_000),
    ("0", 0), ("512 B", 512), ("100 kB", 100_000), ("2 TiB", 2 * 2**40), (0, 0), (0.0, 0),
])
def test_parse_size(text, expected) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["40 GX", "GB", "-1 GB", "", "forty GB", True, -1])
def test_parse_size_rejects(text) -> None:
    with pytest.raises(ValueError, match="size"):
        parse_size(text)


@pytest.mark.parametrize(("text", "number"), [("40", "40"), (40, "40"), (" 1.5 ", "1.5"),
                                              (512, "512")])
def test_a_size_without_a_unit_says_what_to_write(text, number) -> None:
    with pytest.raises(ValueError) as raised:
        parse_size(text)
    assert str(raised.value) == (f"{number} has no unit; write '{number} GB' (or '{number} GiB', "
                                 "or '0' for no limit)")


@pytest.mark.parametrize(("text", "expected"), [
    ("5s", 5), ("10m", 600), ("2h", 7200), ("7d", 604_800), ("250ms", 0.25), ("0", 0), (3, 3),
    ("5", 5), (" 1.5 ", 1.5),
])
def test_parse_duration(text, expected) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "5 parsecs", "s", "-5s", "5 S"])
def test_parse_duration_rejects(text) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_parse_rate() -> None:
    assert parse_rate("250 MB/s") == 250_000_000
    with pytest.raises(ValueError, match="rate"):
        parse_rate("fast")
    with pytest.raises(ValueError, match=r"^250 has no unit; write '250 MB/s'$"):
        parse_rate(250)


@pytest.mark.parametrize(("size", "system", "text"), [
    (0, "si", "0 B"), (999, "si", "999 B"), (12_345_678_901, "si", "12.3 GB"),
    (40 * 10**9, "si", "40 GB"), (40 * 2**30, "iec", "40 GiB"), (1536, "iec", "1.5 KiB"),
    (999_960_000, "si", "1 GB"), (999_940_000, "si", "999.9 MB"), (2**30 - 1, "iec", "1 GiB"),
])
def test_format_size(size, system, text) -> None:
    assert format_size(size, system) == text


@pytest.mark.parametrize(("seconds", "text"), [
    (5, "5s"), (90, "90s"), (60, "1m"), (7200, "2h"), (730 * 86400, "730d"), (0.25, "250ms"),
    (1.5, "1500ms"), (0, "0"),
])
def test_duration_text_reads_back(seconds, text) -> None:
    assert duration_text(seconds) == text
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(("limit", "system"), [
    ("40 GB", "si"), ("40 GiB", "iec"), ("40 GIB", "iec"), ("40 gib", "iec"), ("40gb", "si"),
])
def test_the_limit_decides_the_units_shown(limit: str, system: str) -> None:
    assert unit_system(limit) == system

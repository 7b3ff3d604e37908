"""Records behave as frozen dataclasses do, for every way of calling them."""

import dataclasses

import pytest

from traffic.record import FrozenInstanceError, Record, field


class Sample(Record):
    key: str
    at: int = 0
    tags: list = field(default_factory=list)


def test_positional_keyword_and_default_arguments() -> None:
    assert Sample("a") == Sample(key="a") == Sample("a", 0, [])
    assert Sample("a", tags=[1]).tags == [1] and Sample("a").tags is not Sample("a").tags
    assert repr(Sample("a", 5)) == "Sample(key='a', at=5, tags=[])"
    assert dataclasses.replace(Sample("a"), at=7) == Sample("a", 7)


@pytest.mark.parametrize(("call", "message"), [
    (lambda: Sample(), "missing 1 required positional argument: 'key'"),
    (lambda: Sample("a", 1, [], 2), "takes 4 positional arguments but 5 were given"),
    (lambda: Sample("a", key="b"), "got multiple values for argument 'key'"),
    (lambda: Sample("a", size=1), "got an unexpected keyword argument 'size'"),
    (lambda: Sample(key="a", at=1, size=1), "got an unexpected keyword argument 'size'"),
])
def test_bad_arguments_say_what_dataclasses_say(call, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        call()


def test_a_record_is_frozen() -> None:
    with pytest.raises(FrozenInstanceError):
        Sample("a").at = 1  # type: ignore[misc]

"""The core's warnings, with ``logging`` imported at the first one: importing it costs more than
half a ``python -c pass``, and ``traffic status`` normally warns of nothing."""

from collections.abc import Callable

before_first: list[Callable[[], None]] = []
"""Run once, before the first warning is logged (the CLI sets up its log format here)."""


def warning(name: str, message: str, *args: object) -> None:
    import logging

    while before_first:
        before_first.pop(0)()
    logging.getLogger(name).warning(message, *args)

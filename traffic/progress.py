"""A progress bar: one line rewritten in place on a terminal, a few plain lines otherwise (a
log, a pipe)."""

import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO

BAR_WIDTH = 24
REDRAW_S = 0.1
PLAIN_STEP = 25
"""Without a terminal, a line each time a task passes a multiple of this many percent."""


class Progress:
    """How far each task (``label``) has come: ``done`` of ``total``."""

    def __init__(self, stream: "TextIO | None" = None) -> None:
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty()
        self._drawn_at = 0.0
        self._on_line = False
        self._said: dict[str, int] = {}
        """The last step of each task said in plain lines."""

    def update(self, label: str, done: int, total: int) -> None:
        percent = 100 * done // total if total else 100
        if self.live:
            now = time.monotonic()
            if percent < 100 and now - self._drawn_at < REDRAW_S:
                return
            self._drawn_at = now
            filled = BAR_WIDTH * percent // 100
            self._write(f"\r{label} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] "
                        f"{done}/{total} rows {percent}%\x1b[K")
            self._on_line = True
            return
        step = percent // PLAIN_STEP
        if step > self._said.get(label, 0):
            self._said[label] = step
            self._write(f"{label}: {done}/{total} rows ({percent}%)\n")

    def say(self, line: str) -> None:
        """A line of its own, below the bar."""
        self.end()
        self._write(line + "\n")

    def end(self) -> None:
        """Leave the bar's line as it is, and go on below it."""
        if self._on_line:
            self._write("\n")
            self._on_line = False

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

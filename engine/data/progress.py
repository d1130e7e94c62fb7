"""Progress of reading or indexing a large dataset, and cancelling it.

Readers call ``progress(done, total, what)`` now and then (an image folder per file it indexes,
a CSV per chunk it parses, an archive per block it unpacks): ``done`` counts up to ``total``
(both whole numbers, ``total`` above 0) in the unit that ``what`` names ("indexing
photos/cat", "reading data.csv"). The callback may raise :class:`Cancelled` to stop the read;
readers let it pass through untouched. :func:`throttled` wraps a callback so that readers may
call it as often as they like; :class:`StderrProgress` is the command line's bar.
"""
from __future__ import annotations

import sys
import time
from typing import Callable, Optional, TextIO

from engine.errors import DataError

Progress = Callable[[int, int, str], None]


class Cancelled(DataError):
    """Reading the dataset was cancelled by the user."""


def throttled(progress: Optional[Progress], interval: float = 0.1) -> Optional[Progress]:
    """``progress`` called at most every ``interval`` seconds, and always at the start and the
    end of a job (``done == 0`` or ``done >= total``); None stays None."""
    if progress is None:
        return None
    last = [float("-inf")]

    def call(done: int, total: int, what: str) -> None:
        now = time.monotonic()
        if done <= 0 or done >= total or now - last[0] >= interval:
            last[0] = now
            progress(int(done), int(max(total, 1)), what)
    return call


class StderrProgress:
    """A progress callback for the command line.

    On a terminal it redraws one line (``\\r``) at most ten times a second and wipes it when the
    job ends; elsewhere (a log file, a pipe) it stays quiet for the first second, so quick reads
    print nothing, then writes a plain line every few seconds and one when the job ends. It
    writes to stderr only: stdout's one-JSON-object-per-line contract is untouched.
    """

    WAIT_S = 1.0  # a job shorter than this prints nothing unless stderr is a terminal
    TTY_INTERVAL_S = 0.1
    LINE_INTERVAL_S = 5.0
    WIDTH = 24

    def __init__(self, stream: TextIO | None = None, *, tty: bool | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.stream = stream if stream is not None else sys.stderr
        self.tty = _is_tty(self.stream) if tty is None else tty
        self.clock = clock
        self._what: str | None = None
        self._started = 0.0
        self._drawn = float("-inf")
        self._shown = False  # something of the current job is on the screen

    def __call__(self, done: int, total: int, what: str) -> None:
        now = self.clock()
        if what != self._what:
            self._finish()
            self._what, self._started, self._drawn, self._shown = what, now, float("-inf"), False
        finished = done >= total
        if self.tty:
            if finished or now - self._drawn >= self.TTY_INTERVAL_S:
                self._drawn = now
                self._write(f"\r\033[K{self._bar(done, total, what)}")
                self._shown = True
            if finished:
                self._finish()
            return
        if now - self._started < self.WAIT_S:
            return
        if finished or now - self._drawn >= self.LINE_INTERVAL_S:
            self._drawn = now
            self._write(f"data: {self._text(done, total, what)} "
                        f"({now - self._started:.1f} s)\n")
            self._shown = not finished
        if finished:
            self._what = None

    def close(self) -> None:
        """End the current line, if one is drawn (call when the read stops early)."""
        self._finish()
        self._what = None

    def _finish(self) -> None:
        if self._shown and self.tty:
            self._write("\r\033[K")
        self._shown = False

    def _bar(self, done: int, total: int, what: str) -> str:
        filled = int(self.WIDTH * min(1.0, done / max(total, 1)))
        return f"{what} [{'#' * filled}{'.' * (self.WIDTH - filled)}] {self._count(done, total)}"

    def _text(self, done: int, total: int, what: str) -> str:
        return f"{what} {self._count(done, total)}"

    @staticmethod
    def _count(done: int, total: int) -> str:
        return f"{done:,}/{total:,} ({100 * done / max(total, 1):.0f}%)"

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # a closed or broken stderr must not stop the read
            pass


def _is_tty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False

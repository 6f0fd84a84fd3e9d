"""A one-line progress bar on stderr for long lint runs, only when stderr is a terminal.

Plain text and `\\r`, no rich import (the pre-commit case must start fast); drawn at most ten
times a second, not at all for runs that finish within half a second, and erased at the end so
that findings on stdout and a terminal's scrollback stay clean.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    WIDTH = 30

    def __init__(self, stream: TextIO, delay: float = 0.5, interval: float = 0.1) -> None:
        self.stream = stream
        self.start = time.monotonic()
        self.delay = delay
        self.interval = interval
        self.last = 0.0
        self.drawn = False

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.start < self.delay or (now - self.last < self.interval and done < total):
            return
        self.last = now
        filled = self.WIDTH * done // max(total, 1)
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        self.stream.write(f"\r[{bar}] {done}/{total} files")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.drawn = False


def progress_bar(stream: TextIO | None = None) -> ProgressBar | None:
    """A bar on `stream` (stderr) if it is an interactive terminal, else None."""
    stream = stream or sys.stderr
    try:
        interactive = stream.isatty()
    except (AttributeError, ValueError):
        interactive = False
    return ProgressBar(stream) if interactive else None

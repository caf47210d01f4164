"""A small progress display for long builds, written to stderr."""
from __future__ import annotations

import sys
import time


class Progress:
    """Prints a bar over named stages (``\\r``-updated on a terminal, one line per stage elsewhere)."""

    def __init__(self, stages: list[str], enabled: bool = True, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.stages = stages
        self.done = 0
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.perf_counter()
        self.suffix = ""  # appended to stage names (e.g. " (order 3)")

    def step(self, stage: str) -> None:
        """Report that ``stage`` begins."""
        if not self.enabled:
            return
        frac = self.done / max(1, len(self.stages))
        width = 24
        bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
        elapsed = time.perf_counter() - self.start
        line = (f"ngramds [{bar}] {self.done + 1}/{len(self.stages)} {stage}{self.suffix} "
                f"({elapsed:.1f}s)")
        if self.tty:
            self.stream.write("\r" + line.ljust(78))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self.done += 1

    def finish(self, message: str) -> None:
        """Print the closing line (always shown unless disabled)."""
        if not self.enabled:
            return
        if self.tty:
            self.stream.write("\r" + " " * 78 + "\r")
        self.stream.write(message + "\n")
        self.stream.flush()

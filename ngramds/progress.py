"""A small progress display for long builds, written to stderr."""
from __future__ import annotations

import sys
import time


class Progress:
    """Prints a bar over named stages (``\\r``-updated on a terminal, one line per stage
    elsewhere)."""

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


class Meter:
    """Progress of one long pass over the input (tokenising): counts, rate and ETA,
    ``\\r``-updated on a terminal at most 5 times a second, elsewhere one line every 10 s."""

    def __init__(self, label: str, enabled: bool = True, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.label = label
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = self.shown = time.perf_counter()
        self.tokens = self.docs = 0
        self.fraction: float | None = None  # of the input read, when known

    def add(self, tokens: int, docs: int, fraction: float | None = None) -> None:
        """Count ``tokens`` and ``docs`` more; ``fraction`` of the whole input read so far."""
        self.tokens += tokens
        self.docs += docs
        if fraction is not None:
            self.fraction = min(1.0, max(0.0, fraction))
        now = time.perf_counter()
        if self.enabled and now - self.shown >= (0.2 if self.tty else 10.0):
            self.shown = now
            line = f"ngramds: {self.label} {self._counts(now)}"
            if self.fraction:
                eta = (now - self.start) * (1 - self.fraction) / self.fraction
                line += f", {100 * self.fraction:.0f}%, ETA {_clock(eta)}"
            self.stream.write("\r" + line.ljust(78) if self.tty else line + "\n")
            self.stream.flush()

    def _counts(self, now: float) -> str:
        dt = max(now - self.start, 1e-9)
        return (f"{self.docs:,} documents, {self.tokens:,} tokens in {dt:.1f}s "
                f"({_si(self.tokens / dt)} tokens/s)")

    def finish(self) -> None:
        """Print the closing count (always, unless disabled)."""
        if self.enabled:
            if self.tty:
                self.stream.write("\r" + " " * 78 + "\r")
            done = self.label.replace("tokenising", "tokenised")
            self.stream.write(f"ngramds: {done} {self._counts(time.perf_counter())}\n")
            self.stream.flush()


def _si(x: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if x >= scale:
            return f"{x / scale:.2f}{unit}"
    return f"{x:.0f}"


def _clock(seconds: float) -> str:
    s = int(seconds)
    if s >= 3600:
        return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
    return f"{s // 60}:{s % 60:02d}"

"""A small progress display for long builds, written to stderr."""
from __future__ import annotations

import sys
import threading
import time
import weakref

COMPILING = "compiling kernels (first run only)"


class _Compiles:
    """Process-wide wall time spent compiling numba kernels (nested and concurrent
    compilations counted once), and the bars to tell when one begins."""

    def __init__(self):
        self.lock = threading.Lock()
        self.active, self.started, self.total = 0, 0.0, 0.0
        self.bars: weakref.WeakSet = weakref.WeakSet()

    def start(self) -> None:
        with self.lock:
            self.active += 1
            first = self.active == 1
            if first:
                self.started = time.perf_counter()
        if first:
            for bar in list(self.bars):
                bar._compiling()

    def end(self) -> None:
        with self.lock:
            self.active = max(0, self.active - 1)
            if self.active == 0:
                self.total += time.perf_counter() - self.started

    def seconds(self) -> float:
        with self.lock:
            return self.total + (time.perf_counter() - self.started if self.active else 0.0)


_COMPILES: _Compiles | None = None


def _compiles() -> _Compiles:
    """The process's compile clock, listening to numba's compile events from the first call
    (loading a kernel from numba's cache is no compile: a warm environment shows nothing)."""
    global _COMPILES
    if _COMPILES is None:
        from numba.core import event

        clock = _Compiles()

        class Listener(event.Listener):
            def on_start(self, ev):
                clock.start()

            def on_end(self, ev):
                clock.end()

        event.register("numba:compile", Listener())
        _COMPILES = clock
    return _COMPILES


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
        self._line = ""  # the current stage's line
        self._said = False  # the compilation said on this stage's line (or, off a terminal,
        #                     once for the bar)
        clock = _compiles()
        self._compile_start = clock.seconds()
        if enabled:
            clock.bars.add(self)

    @property
    def compile_seconds(self) -> float:
        """Seconds spent compiling kernels since the bar began (0 once they are cached)."""
        return max(0.0, _compiles().seconds() - self._compile_start)

    def timing(self, seconds: float, tokens: int) -> str:
        """'in 12.30s (1.50M tokens/s)' for ``tokens`` processed in ``seconds``: the rate
        leaves out the time spent compiling kernels (named when there was some)."""
        compiled = min(self.compile_seconds, seconds)
        text = f"in {seconds:.2f}s ({_si(tokens / max(seconds - compiled, 1e-9))} tokens/s"
        if compiled >= 0.05:
            text += f"; {compiled:.1f}s of it compiling kernels, first run only"
        return text + ")"

    def _compiling(self) -> None:
        """A kernel compilation begins (numba's event, from any thread): say so once."""
        if not self.enabled or self._said:
            return
        self._said = True
        if self.tty:
            self.stream.write("\r" + f"{self._line}, {COMPILING}".ljust(78))
        else:
            self.stream.write(f"ngramds: {COMPILING}: later runs load them from the cache\n")
        self.stream.flush()

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
        self._line = line
        if self.tty:
            self.stream.write("\r" + line.ljust(78))
            self._said = False  # a compile in this stage is said on its line
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self.done += 1

    def finish(self, message: str) -> None:
        """Print the closing line (always shown unless disabled)."""
        if not self.enabled:
            return
        _compiles().bars.discard(self)
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

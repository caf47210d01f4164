"""The progress display: what a build is doing, and honest speeds (kernel compilation, paid
once per environment, is said and kept out of the throughput)."""
import io
import re
import time

import numpy as np
from numba import njit

import ngramds
from ngramds.progress import Progress


def fresh_kernel():
    """A compiled function never compiled before (no cache): calling it compiles it."""
    @njit
    def kernel(a):
        s = 0
        for x in a:
            s += x
        return s
    return kernel


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_compile_during_a_stage_is_said_on_the_progress_line():
    for stream in (Terminal(), io.StringIO()):
        bar = Progress(["counting"], stream=stream)
        bar.step("counting")
        fresh_kernel()(np.arange(5))
        assert "compiling kernels (first run only)" in stream.getvalue()
        assert bar.compile_seconds > 0
        bar.finish("done")


def test_no_compile_no_word_and_the_rate_is_plain():
    kernel = fresh_kernel()
    kernel(np.arange(5))  # compiled before the bar starts
    stream = io.StringIO()
    bar = Progress(["counting"], stream=stream)
    bar.step("counting")
    kernel(np.arange(7))
    assert "compiling" not in stream.getvalue() and bar.compile_seconds == 0
    assert bar.timing(2.0, 3_000_000) == "in 2.00s (1.50M tokens/s)"


def test_the_rate_leaves_the_compile_time_out():
    bar = Progress([], enabled=False)
    bar._compile_start -= 40.0  # as if 40 s of compiling happened since the bar started
    assert bar.timing(42.0, 3_000_000) == \
        "in 42.00s (1.50M tokens/s; 40.0s of it compiling kernels, first run only)"


def test_a_build_that_compiles_says_so_and_reports_its_rate_without_it(tmp_path, capsys,
                                                                      monkeypatch):
    import ngramds.builder.dispatch as dispatch
    real = dispatch.build_tables

    def compiling(*args, **kwargs):
        from numba.core import event
        # a kernel compiled in the middle of the build; the compile event around it lasts at
        # least 0.1 s, as real compiles do (a trivial kernel in a warm process takes less than
        # the 0.05 s the summary names)
        with event.trigger_event("numba:compile", data={"dispatcher": None, "args": None}):
            fresh_kernel()(np.arange(3))
            time.sleep(0.1)
        return real(*args, **kwargs)
    monkeypatch.setattr(dispatch, "build_tables", compiling)
    ngramds.build([np.arange(200) % 13], tmp_path / "c.ngds", order=2)
    err = capsys.readouterr().err
    assert "compiling kernels (first run only)" in err
    summary = err.strip().splitlines()[-1]
    m = re.search(r"in ([\d.]+)s \(([\d.]+[KMG]?) tokens/s; ([\d.]+)s of it compiling "
                  r"kernels, first run only\)", summary)
    assert m, summary

"""The compiled targets on hostile 64-bit sections: counts past 2^32 stay exact; a value at or
above 2^63 in a <u8 section (position_contexts, entry_offsets, counts, totals), which turned
negative after a cast to int64 (a crash past the bound checks), wrapped to a valid id (wrong
targets) or gave huge probabilities, is refused with a FormatError by every target path. Each
hostile case runs in a subprocess, so that a crash is a failure and not the end of the test run."""
import subprocess
import sys

import numpy as np

import ngramds
from ngramds.file.writer import write_atomic
from ngramds.targets import TargetConfig, Targets


def test_counts_past_2_32_stay_exact(tmp_path):
    """The target kernels accumulate counts in 64 bits: totals past 2^32 stay exact."""
    path = tmp_path / "big.ngds"
    ngramds.build(np.array([0, 1, 2, 0, 1, 0]), path, order=1, progress=False)
    f = ngramds.open(path)
    arrays = {n: np.array(f.section(n)) for n in f.sections}
    big = np.array([3 * 2**32, 2**32, 2**31], np.uint64)  # ids 0, 1, 2 (count desc)
    arrays["order1/counts"] = big
    arrays["order1/totals"] = np.array([int(big.sum())], np.uint64)
    header = dict(f.header)
    header.pop("sections")
    del f
    write_atomic(path, header, arrays)
    f = ngramds.open(path)
    batch = Targets(f, TargetConfig("allnts")).compute(np.array([0]), 2)
    assert batch.target_ids[0, 0].tolist() == [0, 1, 2]
    np.testing.assert_allclose(batch.target_probs[0, 0], big / float(big.sum()), rtol=1e-6)


U8_SECTIONS = ("position_contexts", "entry_offsets", "entry_offsets+1", "counts", "totals")
U8_CONFIGS = {
    "coconts, one order": dict(targets="coconts", top_r=2, mixing="none"),
    "allnts, one order": dict(targets="allnts", mixing="none"),
    "coconts, witten-bell": dict(targets="coconts", top_r=2, mixing="witten-bell"),
    "allnts, witten-bell": dict(targets="allnts", mixing="witten-bell"),
    "coconts renorm, backoff": dict(targets="coconts", top_r=2, residual="renorm",
                                    mixing="backoff"),
}

U8_SCRIPT = r'''
import sys
from pathlib import Path
import numpy as np
import ngramds
from ngramds.file import format as fmt
from ngramds.file.writer import write_atomic
from ngramds.targets import TargetConfig, Targets

def wide_file(path):
    rng = np.random.default_rng(7)
    docs = [rng.integers(0, 30, rng.integers(20, 200)) for _ in range(12)]
    fmt._min_uint_bytes = 8  # the test hook: 64-bit sections (this process builds no other)
    ngramds.build(docs, path, orders=[2, 3], progress=False)
    fmt._min_uint_bytes = 1

def tampered(base, out, order, name, value, where=None):
    """``base`` with one value of order ``order``'s section ``name`` set to ``value``, at an
    element a target of position 5 reads; checksums redone (a crafted file)."""
    f = ngramds.open(base)
    arrays = {n: np.array(f.section(n)) for n in f.sections}
    p = f"order{order}/"
    c = int(f.contexts_at([5], order)[0])
    lo = int(f.section(p + "entry_offsets")[c])
    index = {"position_contexts": 5, "entry_offsets": c, "entry_offsets+1": c + 1,
             "counts": lo, "totals": c}[name] if where is None else where
    section = p + name.split("+")[0]
    if section not in arrays:  # format 2: a lower order's contexts come by the higher's links
        section = f"order{order + 1}/lower_contexts"
        index = int(f.contexts_at([5], order + 1)[0]) if where is None else where
    arr = arrays[section]
    assert arr.dtype == np.dtype("<u8"), arr.dtype
    arr[index] = np.uint64(value)
    header = dict(f.header)
    header.pop("sections")
    del f
    write_atomic(Path(out), header, arrays)
    return Path(out)

def outcome(path, config):
    f = ngramds.open(path)
    try:
        batch = Targets(f, TargetConfig(**config)).compute(np.array([0, 40]), 30)
    except ngramds.FormatError:
        return "FormatError"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    ids, probs = batch.target_ids, batch.target_probs
    if ids.min() < 0 or ids.max() >= f.vocab_size or not np.all(np.isfinite(probs)) or \
            probs.max() > 1 + 1e-5:
        return "bad targets"
    return "ok"
'''


def _u8_subprocess(tmp_path, body: str) -> str:
    script = tmp_path / "u8.py"
    script.write_text(U8_SCRIPT + body)
    r = subprocess.run([sys.executable, script, tmp_path], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, f"crashed (signal {-r.returncode})" if r.returncode < 0 \
        else r.stderr[-3000:]
    return r.stdout


def test_64bit_values_at_and_above_2_63_are_refused_by_every_target_path(tmp_path):
    body = f"""
d = Path(sys.argv[1])
wide_file(d / "w.ngds")
configs = {U8_CONFIGS!r}
for order in (2, 3):
    for name in {U8_SECTIONS!r}:
        for value in (2**63, 2**63 + 2**40 + 12345, 2**64 - 2, 2**64 - 1):
            path = tampered(d / "w.ngds", d / "t.ngds", order, name, value)
            for label, cfg in configs.items():
                print(order, name, value, label, "->", outcome(path, cfg), flush=True)
"""
    lines = _u8_subprocess(tmp_path, body).splitlines()
    assert len(lines) == 2 * len(U8_SECTIONS) * 4 * len(U8_CONFIGS)
    # a tampered value that the targets read is refused; "none" reads only order 3, and
    # backoff reads order 2's entries only where order 3 is not trusted (its context ids,
    # offsets and totals are always read)
    def read(line):
        return not line.startswith("2 ") or not ("one order" in line or (
            " counts " in line and "backoff" in line))
    wrong = [line for line in lines if line.endswith("-> FormatError") != read(line)
             and not line.endswith("-> ok")]
    assert not wrong, wrong
    refused = [line for line in lines if read(line)]
    assert all(line.endswith("-> FormatError") for line in refused), refused


def test_fuzzed_64bit_values_at_and_above_2_63_never_crash(tmp_path):
    """Hypothesis: any element of any 64-bit section set to a value at or above 2^63 (or any
    64-bit value): targets are refused (FormatError) or still valid, never a crash."""
    body = f"""
from hypothesis import given, settings, strategies as st
d = Path(sys.argv[1])
wide_file(d / "w.ngds")
f = ngramds.open(d / "w.ngds")
sizes = {{n: f.section(n).size for n in f.sections if f.sections[n].dtype.itemsize == 8}}
names = sorted(n for n in sizes if "/" in n)
del f
seen = []

@settings(max_examples=120, deadline=None, database=None, derandomize=True)
@given(name=st.sampled_from(names), at=st.integers(0, 10**9),
       value=st.one_of(st.sampled_from([2**63, 2**63 + 2**40, 2**64 - 2]),
                       st.integers(2**63, 2**64 - 1), st.integers(0, 2**64 - 1)),
       cfg=st.sampled_from(sorted({U8_CONFIGS!r})))
def fuzz(name, at, value, cfg):
    order = int(name.split("/")[0][5:])
    try:
        path = tampered(d / "w.ngds", d / "t.ngds", order, name.split("/")[1], value,
                        where=at % sizes[name])
        result = outcome(path, {U8_CONFIGS!r}[cfg])
    except ngramds.FormatError:
        result = "FormatError at open"
    assert result in ("FormatError", "FormatError at open", "ok"), (name, at, value, result)
    seen.append(result)

fuzz()
print(len(seen), sorted(set(seen)))
"""
    out = _u8_subprocess(tmp_path, body)
    assert "FormatError" in out, out

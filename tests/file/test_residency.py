"""Page advice for files larger than RAM (ngramds.file.residency): the pages asked for are
exactly those of the spans (empty, clipped, at the end of the file, not page-aligned), every
madvise call succeeds, the staged table advice covers every page the targets read, and ids
outside the arrays are skipped."""
import mmap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ngramds
from ngramds.file import residency as R
from ngramds.targets import Targets

P = R.PAGE


def page_runs(pages) -> np.ndarray:
    """Runs (first, count) of a set of page numbers."""
    out = []
    for p in sorted(pages):
        if out and out[-1][0] + out[-1][1] == p:
            out[-1][1] += 1
        else:
            out.append([p, 1])
    return np.array(out, np.int64).reshape(-1, 2)


def element_pages(arr, lo, hi) -> set:
    """Pages of the bytes of arr[lo:hi] (clipped), element by element."""
    base, w = arr.ctypes.data, arr.itemsize
    return {(base + i * w + k) // P for i in range(max(lo, 0), min(hi, arr.size))
            for k in (0, w - 1)}


@settings(max_examples=60, deadline=None)
@given(dtype=st.sampled_from([np.uint8, np.uint16, np.uint32, np.uint64]),
       shift=st.integers(0, 7), size=st.integers(0, 3 * P // 2),
       spans=st.lists(st.tuples(st.integers(-20, 3 * P), st.integers(-20, 3 * P)),
                      max_size=6))
def test_span_pages_are_the_pages_of_the_elements(dtype, shift, size, spans):
    raw = np.zeros(size * np.dtype(dtype).itemsize + 8 * 8, np.uint8)
    arr = raw[shift:shift + size * np.dtype(dtype).itemsize].view(dtype)  # (not aligned)
    lo = [a for a, _ in spans]
    hi = [b for _, b in spans]
    expect = set().union(*[element_pages(arr, a, b) for a, b in spans])
    assert np.array_equal(R.span_pages(arr, lo, hi), page_runs(expect))


def test_advice_on_a_mapped_file_at_its_edges(tmp_path):
    path = tmp_path / "f.bin"
    size = 3 * P + 100  # the last page is partly past the end of the file
    path.write_bytes(bytes(range(256)) * (size // 256) + bytes(size % 256))
    with open(path, "rb") as fh:
        m = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    data = np.frombuffer(m, np.uint8)
    words = data[4:4 + (size - 4) // 4 * 4].view(np.uint32)  # a section not page-aligned
    cases = [(data, 5, 5), (data, 0, size), (data, size - 1, size), (data, size - 3, size + 50),
             (data, 1, P + 1), (data, P - 1, P), (words, 0, 1), (words, words.size - 1,
                                                                words.size),
             (words, P // 4 - 2, P // 4), (data, -10, 0)]
    for arr, lo, hi in cases:
        runs = R.span_pages(arr, [lo], [hi])
        assert np.array_equal(runs, page_runs(element_pages(arr, lo, hi))), (lo, hi)
        assert R.advise_runs(runs) == 0, (lo, hi)  # every call accepted (aligned, mapped)
        assert R.advise_spans(arr, [lo], [hi]) == runs.shape[0]
    assert R.span_pages(data, [size - 1], [size])[0, 0] == (data.ctypes.data + size - 1) // P
    assert R.span_pages(data, [], []).shape == (0, 2)
    before = data.copy()
    R.advise_spans(data, [0], [size])
    assert np.array_equal(data, before)


@pytest.fixture(scope="module")
def four(tmp_path_factory):
    rng = np.random.default_rng(3)
    tokens = (rng.zipf(1.3, 60_000) % 3000).astype(np.uint16)
    p = tmp_path_factory.mktemp("residency") / "r.ngds"
    ngramds.build(tokens, p, orders=[2, 3, 4], progress=False)
    return p


def test_table_advice_covers_every_page_the_targets_read(four, monkeypatch):
    f = ngramds.open(four)
    t = Targets(f)
    pages = R.PagePrefetch(f, t.chain, t.plan.orders)
    advised = []
    monkeypatch.setattr(R, "advise_runs", lambda runs: advised.append(runs.copy()) or 0)
    starts = np.array([0, 17, 3001, f.num_tokens - 65], np.int64)
    seq = 64
    assert pages.window_tables(starts, seq + 1) > 0
    got = {int(a) + k for runs in advised for a, n in runs for k in range(n)}
    expect = set()
    positions = (starts[:, None] + np.arange(1, seq + 1)).ravel()
    ids = f.position_contexts[positions].astype(np.int64)
    for j, table in enumerate(pages.chain):
        link = pages.links[j] if j < len(pages.links) else None
        for c in np.unique(ids):
            expect |= element_pages(table.entry_offsets, c, c + 2)
            expect |= element_pages(table.totals, c, c + 1)
            if link is not None:
                expect |= element_pages(link, c, c + 1)
            lo, hi = int(table.entry_offsets[c]), int(table.entry_offsets[c + 1])
            hi = min(hi, lo + R.MAX_ENTRIES)
            expect |= element_pages(table.next_ids, lo, hi) | element_pages(table.counts, lo, hi)
        if link is not None:
            ids = link[ids].astype(np.int64)
    assert expect <= got
    assert got <= expect  # nothing else


def test_ids_outside_the_tables_are_skipped(four):
    f = ngramds.open(four)
    t = Targets(f)
    pages = R.PagePrefetch(f, t.chain, t.plan.orders)
    assert pages.tables(np.array([-1, f.num_contexts, 1 << 62], np.int64)) == 0
    assert pages.tables(np.zeros(0, np.int64)) == 0
    far = np.array([f.num_tokens + 10, -500], np.int64)
    assert pages.batch(far, 65) == 0


def test_window_advice_at_the_edges(four):
    f = ngramds.open(four)
    pages = R.PagePrefetch(f)
    n = f.num_tokens
    starts = np.array([0, 1, 5, n - 66, n - 2, n - 1, n, n + 5, -3, -100], np.int64)
    calls = pages.windows(starts, 65, before=3)
    # one call per window that is not wholly outside the array: tokens from s-3, ids from s+1
    tokens = sum(min(n, s + 65) > max(0, s - 3) for s in starts.tolist())
    ids = sum(min(n, s + 65) > max(0, s + 1) for s in starts.tolist())
    assert (tokens, ids) == (8, 6) and calls == tokens + ids
    assert pages.failed == 0  # every call aligned and inside the map
    assert pages.windows(np.zeros(0, np.int64), 65) == 0
    before = f.tokens.copy()
    assert pages.random_reads() == R.SUPPORTED  # (Linux: taken)
    assert np.array_equal(f.tokens, before)
    assert R.PagePrefetch(f).window_tables(np.array([0]), 65) == 0  # no chain: windows only


def test_memory_bytes_takes_the_lowest_limit_of_the_cgroup_and_its_ancestors(tmp_path):
    phys = R.memory_bytes(tmp_path / "none", tmp_path)  # no cgroup file: the RAM
    assert phys and phys > 2**20
    root, cgroup = tmp_path / "fs", tmp_path / "cgroup"
    # v1 in a container: the host's path is named but absent; the container's root has the limit
    (root / "memory").mkdir(parents=True)
    (root / "memory" / "memory.limit_in_bytes").write_text("1048576\n")
    cgroup.write_text("4:memory:/host/abc\n1:cpu:/\n")
    assert R.memory_bytes(cgroup, root) == 1048576
    # v2, nested: the parent's limit binds the child's "max" (no limit)
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "memory.max").write_text("2097152\n")
    (root / "a" / "b" / "memory.max").write_text("max\n")
    cgroup.write_text("0::/a/b\n")
    assert R.memory_bytes(cgroup, root) == 2097152
    cgroup.write_text("0::/\n")
    assert R.memory_bytes(cgroup, root) == phys

"""Builds in bounded memory: sorted runs spilled to disk, merged one key range at a time.

Map: a slice of the corpus (a chunk of one build, or a shard built on its own) becomes a *run*:
its distinct (context, next token) keys sorted, with counts, and the local context number of
every position, all on disk. Reduce: the runs' keys are cut into key ranges (buckets) that fit
the budget; each bucket is merged on its own (in any process), giving its contexts, entries and
the bucket-local id of every run context. Assembly streams the buckets and runs into the same
file as the in-memory build, byte for byte. Memory use: see docs/SCALE.md.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..corpus.stream import digest
from ..errors import InputError
from ..file import format as fmt
from ..file.writer import SectionSource
from . import kernels, run_kernels
from .keys import KeyLayout, radix_sort
from .options import DEFAULT_WORK_BYTES

MIB = 1 << 20
MIN_WORK_BYTES = 32 * MIB   # below this a budget is refused
OUTPUT_CHUNK = 1 << 22      # elements per streamed piece of a section


# -- budget ---------------------------------------------------------------------------------
def run_positions(work_bytes: int, num_words: int, token_bytes: int) -> int:
    """Positions per run that fit ``work_bytes`` (keys and positions twice while sorting, then
    the run's distinct keys, counts and local ids)."""
    per_position = 24 * num_words + 32 + token_bytes
    return int(max(1 << 12, min(1 << 31, work_bytes // per_position)))


def bucket_entries(work_bytes: int, num_words: int) -> int:
    """Run entries per bucket that fit ``work_bytes`` while it is merged."""
    return int(max(1 << 12, work_bytes // (24 * num_words + 80)))


def memory_limit_or_default(memory_limit: int | None) -> int:
    """``memory_limit`` (bytes, parsed by ``build_options``); when None, what this process
    already holds plus :data:`DEFAULT_WORK_BYTES` of work (so that a default bounded build
    works in a process that holds a lot, e.g. with torch loaded)."""
    if memory_limit is not None:
        return memory_limit
    return int((resident_bytes() + DEFAULT_WORK_BYTES) / 0.85) + 1


def work_budget(memory_limit: int, resident: int, doc_offsets_bytes: int) -> int:
    """Bytes the build may use beyond what the process already holds."""
    work = int(memory_limit * 0.85) - resident - doc_offsets_bytes
    if work < MIN_WORK_BYTES:
        raise InputError(f"--memory-limit {memory_limit / MIB:.0f} MiB is too small: this "
                         f"process already uses {resident / MIB:.0f} MiB; give at least "
                         f"{(resident + doc_offsets_bytes + MIN_WORK_BYTES) / 0.85 / MIB:.0f} "
                         "MiB")
    return work


def resident_bytes() -> int:
    """Current resident set size of this process (0 where unknown)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


# -- map ------------------------------------------------------------------------------------
@dataclass
class Run:
    """A sorted run on disk: the next positions of the corpus after the previous run's (the
    positions of a build's runs follow each other in list order)."""

    path: str
    num_keys: int
    num_contexts: int
    num_positions: int = 0
    digest: int = 0  # :func:`ngramds.corpus.stream.digest` of the run's tokens

    FILES = ("keys", "counts", "ctx", "local")

    def array(self, name: str) -> np.ndarray:
        return np.load(Path(self.path) / f"{name}.npy", mmap_mode="r")


def map_run(stream, doc_offsets: np.ndarray, lo: int, hi: int, layout: KeyLayout,
            path: str) -> Run:
    """Sort positions [lo, hi) of ``stream`` by (context, next token); write the run."""
    m = layout.order - 1
    buf_lo = max(0, lo - m)
    tokens = np.ascontiguousarray(stream.read(buf_lo, hi))
    i0 = int(np.searchsorted(doc_offsets, buf_lo, side="right"))
    i1 = int(np.searchsorted(doc_offsets, hi, side="left"))
    local_offsets = np.concatenate([[0], doc_offsets[i0:i1] - buf_lo, [hi - buf_lo]])
    positions = np.arange(lo - buf_lo, hi - buf_lo, dtype=np.uint32)
    keys = np.empty((hi - lo, layout.num_words), np.uint64)
    kernels.pack_contexts(tokens, local_offsets.astype(np.int64), positions, m, layout.words,
                          layout.shifts, keys)
    keys[:, layout.words[-1]] |= tokens[lo - buf_lo:].astype(np.uint64) << np.uint64(
        layout.shifts[-1])
    run_digest = digest(tokens[lo - buf_lo:], lo)
    del tokens
    keys, positions = radix_sort(keys, positions, layout.used_bits, lsb=False)
    local = np.empty(hi - lo, np.uint32)
    ukeys = np.empty_like(keys)
    ustart = np.empty(hi - lo + 1, np.uint32)
    uctx = np.empty(hi - lo, np.uint32)
    nkeys, nctx = run_kernels.summarize_run(keys, positions, lo - buf_lo, layout.ctx_mask,
                                            local, ukeys, ustart, uctx,
                                            kernels.num_chunks(hi - lo))
    del keys, positions
    ustart[nkeys] = hi - lo
    ucounts = np.diff(ustart[:nkeys + 1])
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "keys.npy", ukeys[:nkeys])
    np.save(out / "counts.npy", ucounts[:nkeys])
    np.save(out / "ctx.npy", uctx[:nkeys])
    np.save(out / "local.npy", local)
    return Run(str(out), int(nkeys), int(nctx), hi - lo, run_digest)


# -- reduce ---------------------------------------------------------------------------------
def plan_buckets(runs: list[Run], layout: KeyLayout, cap: int) -> list[list[tuple[int, int]]]:
    """Cut the key space at context boundaries into buckets of at most ``cap`` run entries
    (unless one context alone has more); return, per bucket, each run's slice [a, b)."""
    total = sum(r.num_keys for r in runs)
    per_run = int(min(max(64, 8 * total // max(cap, 1) + 64), 1 << 16))
    samples = []
    for r in runs:
        keys = r.array("keys")
        if r.num_keys:
            idx = np.unique(np.linspace(0, r.num_keys - 1, min(per_run, r.num_keys)).astype(
                np.int64))
            samples.append(np.array(keys[idx]) & layout.ctx_mask)
        del keys
    if not samples:
        return [[(0, 0)] * len(runs)]
    cand = np.unique(np.concatenate(samples), axis=0)  # rows sorted lexicographically
    # bounds[i, j]: first entry of run i at or after candidate j (then the run's end)
    bounds = np.empty((len(runs), cand.shape[0] + 1), np.int64)
    for i, r in enumerate(runs):
        keys = r.array("keys")
        run_kernels.lower_bounds(keys, cand, bounds[i, :-1])
        bounds[i, -1] = r.num_keys
        del keys
    bounds[:, 0] = 0
    sizes = np.diff(bounds, axis=1).sum(axis=0)
    cuts, acc = [0], 0
    for j, size in enumerate(sizes):
        if acc and acc + size > cap:
            cuts.append(j)
            acc = 0
        acc += size
    cuts.append(cand.shape[0])
    return [[(int(bounds[i, a]), int(bounds[i, b])) for i in range(len(runs))]
            for a, b in zip(cuts[:-1], cuts[1:])]


@dataclass
class Bucket:
    """A merged bucket on disk (rows, kept, ids, counts, totals, map<i>.npy) and its figures."""

    path: str
    num_contexts: int
    num_entries: int
    max_count: int
    max_total: int
    length_counts: list    # contexts of each length 0..m
    map_first: dict        # run i -> its first local context id in this bucket

    def file(self, name: str) -> Path:
        return Path(self.path) / f"{name}.npy"


def reduce_bucket(runs: list[Run], slices: list[tuple[int, int]], layout: KeyLayout,
                  top_k: int | None, token_dtype: str, path: str) -> Bucket:
    """Merge one bucket (slice ``slices[i]`` of run i): write its contexts, entries and the
    bucket-local context id of each run context it holds; return its figures."""
    parts = [(i, a, b) for i, (a, b) in enumerate(slices) if b > a]
    n = sum(b - a for _, a, b in parts)
    keys = np.empty((n, layout.num_words), np.uint64)
    counts = np.empty(n, np.int64)
    ctx = np.empty(n, np.int64)
    at = 0
    for i, a, b in parts:
        for name, dest in (("keys", keys), ("counts", counts), ("ctx", ctx)):
            arr = runs[i].array(name)
            dest[at:at + b - a] = arr[a:b]
            del arr
        at += b - a
    keys, perm = radix_sort(keys, np.arange(n, dtype=np.int64), layout.used_bits, lsb=False)
    ctx_of = np.empty(n, np.int64)
    ctx_first = np.empty(n, np.int64)
    ctx_starts = np.empty(n + 1, np.int64)
    ids = np.empty(n, np.dtype(token_dtype))
    ecounts = np.empty(n, np.int64)
    num_entries, num_ctx = run_kernels.aggregate(keys, perm, counts, layout.ctx_mask,
                                                 int(layout.words[-1]), int(layout.shifts[-1]),
                                                 (1 << layout.bits) - 1, ctx_of, ctx_first,
                                                 ctx_starts, ids, ecounts)
    del counts
    m = layout.order - 1
    rows = np.empty((num_ctx, m), np.dtype(token_dtype))
    lengths = np.empty(num_ctx, np.int64)
    run_kernels.decode_contexts(keys, ctx_first[:num_ctx], layout.words, layout.shifts,
                                (1 << int(m).bit_length()) - 1, (1 << layout.bits) - 1, rows,
                                lengths)
    del keys, ctx_first
    ctx_starts = ctx_starts[:num_ctx + 1]
    distinct = np.diff(ctx_starts)
    kept = distinct if not top_k else np.minimum(distinct, top_k)
    out_offsets = np.zeros(num_ctx + 1, np.int64)
    np.cumsum(kept, out=out_offsets[1:])
    out_ids = np.empty(int(out_offsets[-1]), ids.dtype)
    out_counts = np.empty(int(out_offsets[-1]), np.int64)
    totals = np.empty(num_ctx, np.int64)
    run_kernels.order_entries(ctx_starts, ids[:num_entries], ecounts[:num_entries],
                              out_offsets, out_ids, out_counts, totals)
    del ids, ecounts
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "rows.npy", rows)
    np.save(out / "kept.npy", kept.astype(np.uint32))
    np.save(out / "ids.npy", out_ids)
    np.save(out / "counts.npy", out_counts.astype(fmt.uint_dtype(int(out_counts.max(initial=0)))))
    np.save(out / "totals.npy", totals.astype(fmt.uint_dtype(int(totals.max(initial=0)))))
    # bucket-local context id of every run context in this bucket, per run
    bucket_ctx = np.empty(n, np.int64)
    bucket_ctx[perm] = ctx_of
    map_first, at = {}, 0
    for i, a, b in parts:
        local = ctx[at:at + b - a]
        first = int(local[0])
        table = np.empty(int(local[-1]) - first + 1, np.uint32)
        table[local - first] = bucket_ctx[at:at + b - a]
        np.save(out / f"map{i}.npy", table)
        map_first[i] = first
        at += b - a
    return Bucket(str(out), int(num_ctx), int(out_offsets[-1]), int(out_counts.max(initial=0)),
                  int(totals.max(initial=0)), np.bincount(lengths, minlength=m + 1).tolist(),
                  map_first)


# -- assembly -------------------------------------------------------------------------------
def _load(path: Path) -> np.ndarray:
    arr = np.load(path, mmap_mode="r")
    out = np.array(arr)
    del arr
    return out


def table_sections(runs: list[Run], buckets: list[Bucket], order: int, num_tokens: int,
                   token_dtype) -> tuple[dict, int, int]:
    """The sections of one order's table (unprefixed; all with position ids, see
    :func:`.links.file_tables`) streamed from its runs and buckets, and (C, E)."""
    m = order - 1
    C = sum(b.num_contexts for b in buckets)
    E = sum(b.num_entries for b in buckets)
    if C == 0:
        raise InputError("the corpus is empty (no tokens)")
    bases = np.cumsum([0] + [b.num_contexts for b in buckets])
    length_offsets = np.zeros(m + 2, np.uint64)
    np.cumsum(np.sum([b.length_counts for b in buckets], axis=0), out=length_offsets[1:])
    max_count = max(b.max_count for b in buckets)
    max_total = max(b.max_total for b in buckets)

    def per_bucket(name):
        return lambda: (_load(b.file(name)) for b in buckets)

    def entry_offsets():
        yield np.zeros(1, np.int64)
        base = 0
        for b in buckets:
            off = np.cumsum(_load(b.file("kept")), dtype=np.int64) + base
            base = int(off[-1]) if off.size else base
            yield off

    pc_dtype = fmt.uint_dtype(max(0, C - 1))

    def position_contexts():
        for i, run in enumerate(runs):
            table = np.empty(run.num_contexts, pc_dtype)
            for b, base in zip(buckets, bases):
                first = b.map_first.get(i)
                if first is not None:
                    part = _load(b.file(f"map{i}"))
                    table[first:first + part.size] = part.astype(np.int64) + base
            local = _load(Path(run.path) / "local.npy")
            for lo in range(0, local.size, OUTPUT_CHUNK):
                out = np.empty(min(OUTPUT_CHUNK, local.size - lo), pc_dtype)
                run_kernels.map_ids(table, local[lo:lo + OUTPUT_CHUNK], out)
                yield out

    sections = {
        "context_length_offsets": SectionSource.of_array(length_offsets),
        "context_tokens": SectionSource(token_dtype, (C, m), per_bucket("rows")),
        "entry_offsets": SectionSource(fmt.uint_dtype(E), (C + 1,), entry_offsets),
        "next_ids": SectionSource(token_dtype, (E,), per_bucket("ids")),
        "counts": SectionSource(fmt.uint_dtype(max_count if E else 0), (E,),
                                per_bucket("counts")),
        "totals": SectionSource(fmt.uint_dtype(max_total), (C,), per_bucket("totals")),
        "position_contexts": SectionSource(pc_dtype, (num_tokens,), position_contexts),
    }
    return sections, C, E


def token_sections(stream, doc_offsets: np.ndarray, token_dtype) -> dict:
    """The shared ``tokens`` and ``doc_offsets`` sections (the tokens read again: an input
    changed since the first pass stops the write)."""
    n = stream.size
    return {"tokens": SectionSource(token_dtype, (n,), lambda: (
                t for _, t in stream.checked_chunks(OUTPUT_CHUNK, token_dtype))),
            "doc_offsets": SectionSource.of_array(doc_offsets.astype(fmt.uint_dtype(n)))}


def directory_bytes(path: Path) -> int:
    """Bytes of the files under ``path``."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())

"""Asking the kernel early for the pages of a mapped file that reads will touch soon.

When a file is larger than the memory left for its page cache, every read of a page that is
not resident waits for the disk, one page at a time. A reader that knows which rows it will
read next (the loader knows every batch's windows ahead) can ask for their pages at once with
``madvise(MADV_WILLNEED)``: the kernel starts all the reads without waiting, so they overlap
each other and the work in progress. Advice is a hint: it reads nothing into the process,
changes no result and never faults (an id outside an array is skipped); on a platform without
``madvise`` it does nothing.

:class:`PagePrefetch` advises a batch's pages in stages, each stage's reads issued together:
the windows (tokens and the highest table's context ids), then per table of a chain its rows
(entry offsets, totals, the link to the next table) and its entries (next ids, counts), the
ids of each stage read from the pages the previous one asked for. Page lists are built and
advised by compiled kernels (one system call per run of consecutive pages).
"""
from __future__ import annotations

import mmap
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["PAGE", "PagePrefetch", "SUPPORTED", "advise_runs", "advise_spans", "in_background",
           "larger_than_memory", "memory_bytes", "span_pages"]

PAGE = mmap.PAGESIZE
#: madvise(MADV_WILLNEED) is there (Linux, macOS, the BSDs); elsewhere advice does nothing
SUPPORTED = hasattr(mmap, "MADV_WILLNEED") and sys.platform != "win32"
WILLNEED = int(getattr(mmap, "MADV_WILLNEED", 3))
#: entries advised per context and table (the top entries and most tails; a longer
#: distribution is read in part: its first entries and one block of its tail)
MAX_ENTRIES = 512
#: a file larger than this share of the memory (:func:`memory_bytes`) may not stay resident
AUTO_SHARE = 0.5


def memory_bytes(cgroups: Path = Path("/proc/self/cgroup"),
                 root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """The most memory this process's page cache can hold: the physical memory, or the
    lowest limit of its cgroup and the cgroup's ancestors (v2 ``memory.max``, v1
    ``memory/memory.limit_in_bytes``; in a container whose cgroup files show the host's path,
    the container's own root is the last ancestor looked at); None when unknown."""
    found = []
    try:
        found.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        pass
    try:
        lines = cgroups.read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, group = parts
        if controllers == "":
            base, name = root, "memory.max"
        elif "memory" in controllers.split(","):
            base, name = root / "memory", "memory.limit_in_bytes"
        else:
            continue
        names = [x for x in group.split("/") if x]
        for k in range(len(names), -1, -1):  # the cgroup, then each ancestor up to the root
            try:
                value = base.joinpath(*names[:k], name).read_text().strip()
            except OSError:
                continue
            if value.isdigit():  # (v2 "max": no limit)
                found.append(int(value))
    return min(found) if found else None


def larger_than_memory(size: int) -> bool:
    """Whether a file of ``size`` bytes is larger than :data:`AUTO_SHARE` of
    :func:`memory_bytes` (so that its pages may not all stay in the page cache)."""
    memory = memory_bytes()
    return memory is not None and size > AUTO_SHARE * memory


@intrinsic
def _madvise(typingctx, addr, length, advice):
    """libc ``madvise(addr, length, advice)`` (int64 arguments; returns 0 or -1)."""
    if not all(isinstance(a, types.Integer) for a in (addr, length, advice)):
        return None

    def codegen(context, builder, sig, args):
        i8p, i64 = ir.IntType(8).as_pointer(), ir.IntType(64)
        fnty = ir.FunctionType(ir.IntType(32), [i8p, i64, ir.IntType(32)])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "madvise")
        a, n, adv = (context.cast(builder, v, t, types.int64) for v, t in zip(args, sig.args))
        return builder.call(fn, [builder.inttoptr(a, i8p), n, builder.trunc(adv, ir.IntType(32))])
    return types.int32(addr, length, advice), codegen


@njit(cache=True, nogil=True)
def _span(addr, nbytes, page, pages, n):
    """Append the pages of bytes [addr, addr+nbytes) to ``pages`` from ``n``; the new n."""
    if nbytes <= 0:
        return n
    first, last = addr // page, (addr + nbytes - 1) // page
    for p in range(first, last + 1):
        pages[n] = p
        n += 1
    return n


@njit(cache=True, nogil=True)
def _spans(arr, lo, hi, page, pages, n):
    """Pages of arr[lo[i]:hi[i]] for every i (clipped to the array)."""
    base, size, width = np.int64(arr.ctypes.data), np.int64(arr.size), np.int64(arr.itemsize)
    for i in range(lo.size):
        a, b = max(np.int64(0), np.int64(lo[i])), min(size, np.int64(hi[i]))
        if b > a:
            n = _span(base + a * width, (b - a) * width, page, pages, n)
    return n


@njit(cache=True, nogil=True)
def _rows(arr, ids, pairs, limit, page, pages, n):
    """Pages of arr[c] (and arr[c+1] when ``pairs``) for every id 0 <= c < ``limit`` inside
    the array."""
    base, size, width = np.int64(arr.ctypes.data), np.int64(arr.size), np.int64(arr.itemsize)
    for i in range(ids.size):
        c = np.int64(ids[i])
        if 0 <= c < size and c < limit:
            pages[n] = (base + c * width) // page
            n += 1
            if pairs and c + 1 < size:
                pages[n] = (base + (c + 1) * width) // page
                n += 1
    return n


@njit(cache=True, nogil=True)
def _entries(eo, ids, cap, next_ids, counts, page, pages, n):
    """Pages of next_ids and counts [eo[c], min(eo[c+1], eo[c]+cap)) for every id c (read
    from ``eo``; offsets out of order or past the entries are skipped)."""
    e = np.int64(next_ids.size)
    for i in range(ids.size):
        c = np.int64(ids[i])
        if c < 0 or c + 1 >= eo.size:
            continue
        lo, hi = np.int64(eo[c]), np.int64(eo[c + 1])
        hi = min(hi, lo + cap, e)
        if lo < 0 or hi <= lo:
            continue
        n = _span(np.int64(next_ids.ctypes.data) + lo * next_ids.itemsize,
                  (hi - lo) * next_ids.itemsize, page, pages, n)
        n = _span(np.int64(counts.ctypes.data) + lo * counts.itemsize,
                  (hi - lo) * counts.itemsize, page, pages, n)
    return n


@njit(cache=True, nogil=True)
def _advise_windows(arr, starts, before, after, page, advice, supported):
    """madvise the pages of arr[s - before : s + after] (clipped) for every start s, one call
    per window (windows seldom share a page); (calls, failed calls)."""
    base, size, width = np.int64(arr.ctypes.data), np.int64(arr.size), np.int64(arr.itemsize)
    calls, failed = 0, 0
    for i in range(starts.size):
        a, b = max(np.int64(0), starts[i] - before), min(size, starts[i] + after)
        if b > a:
            first, last = (base + a * width) // page, (base + b * width - 1) // page
            calls += 1
            if supported and _madvise(first * page, (last - first + 1) * page, advice) != 0:
                failed += 1
    return calls, failed


@njit(cache=True, nogil=True)
def _follow(link, ids, out):
    """out[i] = link[ids[i]] (-1 for an id outside the links)."""
    for i in range(ids.size):
        c = np.int64(ids[i])
        out[i] = np.int64(link[c]) if 0 <= c < link.size else -1


@njit(cache=True, nogil=True)
def _sorted_runs(p):
    """The distinct pages of the sorted pages ``p`` as runs of consecutive pages: (first,
    count) [r, 2]."""
    n = p.size
    out = np.empty((n, 2), np.int64)
    r, i = 0, 0
    while i < n:
        j = i
        while j + 1 < n and p[j + 1] <= p[j] + 1:
            j += 1
        out[r, 0], out[r, 1] = p[i], p[j] - p[i] + 1
        r += 1
        i = j + 1
    return out[:r]


def _runs(pages: np.ndarray) -> np.ndarray:
    """:func:`_sorted_runs` of ``pages`` in any order (numpy's sort: the parts of a stage are
    sorted runs, which its stable sort merges in about linear time)."""
    return _sorted_runs(np.sort(pages, kind="stable"))


@njit(cache=True, nogil=True)
def _advise(runs, page, advice):
    """madvise every run of pages; the number of calls that failed."""
    failed = 0
    for i in range(runs.shape[0]):
        if _madvise(runs[i, 0] * page, runs[i, 1] * page, advice) != 0:
            failed += 1
    return failed


def span_pages(arr: np.ndarray, lo, hi) -> np.ndarray:
    """The runs of pages (first page number, count; int64 [r, 2]) that hold arr[lo[i]:hi[i]]
    for every i, clipped to the array (empty spans hold none). ``arr`` is a 1-d contiguous
    array, e.g. a section of a mapped file."""
    lo, hi = np.atleast_1d(np.asarray(lo, np.int64)), np.atleast_1d(np.asarray(hi, np.int64))
    width = arr.itemsize
    per = np.clip(np.minimum(hi, arr.size) - np.maximum(lo, 0), 0, None)
    pages = np.empty(int((per * width // PAGE + 2).sum()), np.int64)
    return _runs(pages[:_spans(arr, lo, hi, PAGE, pages, 0)])


def advise_runs(runs: np.ndarray) -> int:
    """madvise(MADV_WILLNEED) every run of pages (first page number, count) of a mapping;
    the number of calls that failed (0 where advice is not supported)."""
    if not SUPPORTED or not runs.shape[0]:
        return 0
    return int(_advise(np.ascontiguousarray(runs, np.int64), PAGE, WILLNEED))


def advise_spans(arr: np.ndarray, lo, hi) -> int:
    """Ask for the pages of arr[lo[i]:hi[i]] for every i (:func:`span_pages`); the number of
    runs of pages advised."""
    runs = span_pages(arr, lo, hi)
    advise_runs(runs)
    return int(runs.shape[0])


class PagePrefetch:
    """Advises the pages a batch of windows reads from file ``f``: :meth:`windows` (the
    tokens of each window and the highest table's context ids of its positions), then, with
    :meth:`tables`, the rows and entries of the tables in ``chain`` that the targets read.

    Args:
        f: the open :class:`ngramds.NgramFile`.
        chain: the tables a position's context goes through, highest first, as
            :attr:`ngramds.targets.Targets.chain` lists them ([(table, ids source)]); None:
            the windows only.
        entries: the orders whose entries the targets read (default: every table of
            ``chain``).
    """

    def __init__(self, f, chain=None, entries=None):
        self.file = f
        self.top = f.table().position_contexts  # None in a compact file
        self.chain = [] if chain is None else [table for table, _ in chain]
        self.links = [] if chain is None else [source for _, source in chain[1:]]
        orders = None if entries is None else set(entries)
        self.entries = [orders is None or t.order in orders for t in self.chain]
        self.failed = 0  #: madvise calls of :meth:`windows` the kernel refused (none expected)

    def random_reads(self) -> bool:
        """Tell the kernel that this process reads the file's pages at random
        (``MADV_RANDOM`` over its map): a page fault then reads that page, not the 128 KiB
        around it, which a batch's scattered rows would not use and which would push useful
        pages out of a page cache too small for the file. Whether the kernel took it."""
        if not SUPPORTED or not hasattr(mmap, "MADV_RANDOM"):
            return False
        try:
            self.file._map.madvise(mmap.MADV_RANDOM)
        except (OSError, ValueError, AttributeError):
            return False
        return True

    def windows(self, starts, length: int, before: int = 0) -> int:
        """Advise tokens [s - before, s+length) of every start s and the highest table's
        context ids of positions s+1 .. s+length-1 (when the file stores them), one call per
        window and array (cheap enough for every batch); the calls made."""
        starts = np.ascontiguousarray(starts, dtype=np.int64)
        calls, failed = _advise_windows(self.file.tokens, starts, before, length, PAGE,
                                        WILLNEED, SUPPORTED)
        if self.top is not None:
            more, fails = _advise_windows(self.top, starts, -1, length, PAGE, WILLNEED,
                                          SUPPORTED)
            calls, failed = calls + more, failed + fails
        self.failed += failed
        return calls

    def tables(self, ids) -> int:
        """Advise, table after table of the chain, the rows of the contexts ``ids`` (of the
        highest table) and of their links below, then their entries: the ids of a table below
        are read from links whose pages the stage before asked for. The runs advised."""
        ids = np.unique(np.asarray(ids, np.int64))
        if not self.chain or not ids.size:
            return 0
        total = self._advise(self._rows(0, ids, []))
        for j, table in enumerate(self.chain):
            parts = []
            if self.entries[j]:
                parts.append(self._entry_pages(table, ids))
            if j + 1 < len(self.chain):
                below = np.empty(ids.size, np.int64)
                _follow(self.links[j], ids, below)
                ids = np.unique(below[below >= 0])
                parts = self._rows(j + 1, ids, parts)
            total += self._advise(parts)
        return total

    def window_tables(self, starts, length: int) -> int:
        """:meth:`tables` of the contexts of positions s+1 .. s+length-1 of every start s,
        read from the file's context ids (waiting for pages not yet read; nothing without a
        chain or in a compact file). The runs advised."""
        starts = np.ascontiguousarray(starts, dtype=np.int64)
        if self.top is None or not self.chain or not starts.size:
            return 0
        pos = (starts[:, None] + np.arange(1, length, dtype=np.int64)).reshape(-1)
        return self.tables(self.top[pos[(pos >= 0) & (pos < self.top.size)]])

    def batch(self, starts, length: int, before: int = 0) -> int:
        """:meth:`windows`, then :meth:`window_tables`. The runs advised."""
        return self.windows(starts, length, before) + self.window_tables(starts, length)

    # -- stages --------------------------------------------------------------------------
    def _rows(self, j: int, ids: np.ndarray, parts: list) -> list:
        """Pages of table j's entry offsets (c, c+1), totals and link below, for ``ids``."""
        table = self.chain[j]
        arrays = [(table.entry_offsets, True), (table.totals, False)]
        if j < len(self.links):
            arrays.append((self.links[j], False))
        for arr, pairs in arrays:
            pages = np.empty(ids.size * (2 if pairs else 1), np.int64)
            parts.append(pages[:_rows(arr, ids, pairs, table.num_contexts, PAGE, pages, 0)])
        return parts

    def _entry_pages(self, table, ids: np.ndarray) -> np.ndarray:
        per = sum(-(-MAX_ENTRIES * a.itemsize // PAGE) + 1 for a in (table.next_ids,
                                                                     table.counts))
        pages = np.empty(ids.size * per, np.int64)
        return pages[:_entries(table.entry_offsets, ids, MAX_ENTRIES, table.next_ids,
                               table.counts, PAGE, pages, 0)]

    @staticmethod
    def _advise(parts: list) -> int:
        if not parts:
            return 0
        runs = _runs(np.concatenate(parts))
        advise_runs(runs)
        return int(runs.shape[0])


#: advice requests a process's background thread may hold; more are dropped (advice that
#: arrives after its batch was read is wasted work)
MAX_PENDING = 3
_BACKGROUND: list = [None, None, 0]  # pid, executor, pending requests
_LOCK = threading.Lock()


def _after_fork() -> None:
    global _LOCK
    _LOCK = threading.Lock()  # (the parent's may have been held by its thread)
    _BACKGROUND[:] = [None, None, 0]


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def in_background(fn, *args) -> bool:
    """Run ``fn(*args)`` (advice) in this process's background thread, unless it already
    holds :data:`MAX_PENDING` requests; whether it was queued. Errors are dropped: advice
    changes nothing, and the reads themselves report a damaged file."""
    with _LOCK:
        if _BACKGROUND[0] != os.getpid():  # a forked worker starts its own thread
            _BACKGROUND[:] = [os.getpid(), ThreadPoolExecutor(1, "ngramds-pages"), 0]
        if _BACKGROUND[2] >= MAX_PENDING:
            return False
        _BACKGROUND[2] += 1

    def run():
        try:
            fn(*args)
        except Exception:
            pass
        finally:
            with _LOCK:
                _BACKGROUND[2] -= 1
    _BACKGROUND[1].submit(run)
    return True

"""Full structural checks of an open file (run by ``verify``; O(size of file))."""
from __future__ import annotations

import numpy as np
from numba import njit

from .errors import FormatError


@njit(cache=True)
def _monotonic(a):
    for i in range(1, a.shape[0]):
        if a[i] < a[i - 1]:
            return False
    return True


@njit(cache=True)
def _entries_ok(entry_offsets, counts, totals, exact):
    """Counts positive, sorted descending, and summing to (or at most) the context total."""
    for c in range(totals.shape[0]):
        s = 0
        for i in range(entry_offsets[c], entry_offsets[c + 1]):
            if counts[i] == 0 or (i > entry_offsets[c] and counts[i] > counts[i - 1]):
                return False
            s += counts[i]
        if s > totals[c] or (exact and s != totals[c]):
            return False
    return True


def check_structure(f) -> None:
    """Raise FormatError unless every invariant of spec/FORMAT.md holds for ``f``."""
    def fail(what: str):
        raise FormatError(f"{what}; the file is damaged, rebuild it")

    if not _monotonic(f.doc_offsets) or not _monotonic(f.entry_offsets):
        fail("offsets are not sorted")
    for name in ("tokens", "next_ids"):
        arr = getattr(f, name)
        if arr.size and int(arr.max()) >= f.vocab_size:
            fail(f"{name} holds an id >= vocab_size")
    if f.position_contexts.size and int(f.position_contexts.max()) >= f.num_contexts:
        fail("a position refers to a context id past the table")
    if int(f.totals.astype(np.uint64).sum(dtype=np.uint64)) != f.num_tokens:
        fail("context totals do not add up to the number of tokens")
    if not _entries_ok(f.entry_offsets, f.counts, f.totals, f.top_k is None):
        fail("a distribution is unsorted or disagrees with its context total")

"""Full structural checks of an open file (run by ``verify``; O(size of file))."""
from __future__ import annotations

import numpy as np
from numba import njit

from ..errors import FormatError


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


def check_structure(f, table) -> None:
    """Raise FormatError unless every invariant of spec/FORMAT.md holds for ``f`` and one of
    its tables."""
    def fail(what: str):
        raise FormatError(f"{what}; the file is damaged, rebuild it")

    t = table
    if not _monotonic(f.doc_offsets) or not _monotonic(t.entry_offsets):
        fail("offsets are not sorted")
    prompts = f.prompt_lengths
    if prompts is not None and bool(np.any(prompts.astype(np.int64) >
                                           np.diff(f.doc_offsets.astype(np.int64)))):
        fail("a prompt length exceeds its document's length")
    for arr, name in ((f.tokens, "tokens"), (t.next_ids, "next_ids")):
        if arr.size and int(arr.max()) >= f.vocab_size:
            fail(f"{name} holds an id >= vocab_size")
    pc = t.position_contexts
    if pc is not None and pc.size and int(pc.max()) >= t.num_contexts:
        fail("a position refers to a context id past the table")
    links = t._lower_contexts  # stored links only (format 1 derives them)
    if links is not None and t.lower is not None and links.size and \
            int(links.max()) >= t.lower.num_contexts:
        fail("a context's lower_contexts link is past the next lower table")
    if int(t.totals.astype(np.uint64).sum(dtype=np.uint64)) != f.num_tokens:
        fail("context totals do not add up to the number of tokens")
    if not _entries_ok(t.entry_offsets, t.counts, t.totals, t.top_k is None):
        fail("a distribution is unsorted or disagrees with its context total")

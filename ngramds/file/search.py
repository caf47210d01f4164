"""The reader's compiled searches: a context's row among a table's sorted rows, a position's
document, and the compact-file walk that finds each position's context from its tokens."""
from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["document_starts", "find_row", "find_extension", "find_contexts", "search_contexts",
           "LANES"]


def document_starts(doc_offsets: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """int64, the shape of ``positions`` (each in 0..N-1): the first token of the document
    holding each position (the largest document offset <= it; searched in the offsets' own
    dtype, so the offsets are not converted)."""
    positions = np.asarray(positions, dtype=np.int64)
    at = np.searchsorted(doc_offsets, positions.ravel().astype(doc_offsets.dtype),
                         side="right") - 1
    return doc_offsets[np.maximum(at, 0)].astype(np.int64).reshape(positions.shape)


@njit(cache=True, nogil=True)
def find_row(rows, lo, hi, query, length):
    """The row among rows[lo:hi] (lexicographically sorted) whose first ``length`` tokens are
    query[:length] (int64), by binary search; -1 if absent."""
    while lo < hi:
        mid = (lo + hi) // 2
        cmp = 0
        for t in range(length):
            a, b = np.int64(rows[mid, t]), query[t]
            if a != b:
                cmp = -1 if a < b else 1
                break
        if cmp == 0:
            return mid
        if cmp < 0:
            lo = mid + 1
        else:
            hi = mid
    return -1


@njit(cache=True, nogil=True)
def find_extension(rows, lo, hi, column, token):
    """The row among rows[lo:hi] (equal before ``column``, ascending in it) whose ``column``
    holds ``token``; -1 if absent. Branch-free steps: the searches of several positions
    overlap in the CPU."""
    n = hi - lo
    if n <= 0:
        return -1
    while n > 1:
        half = n >> 1
        lo = lo + half if np.int64(rows[lo + half, column]) <= token else lo
        n -= half
    return lo if np.int64(rows[lo, column]) == token else -1


LANES = 8  # independent runs of positions searched side by side (see find_contexts)


DAMAGED = -2  # _search: the offsets it reads are out of range


@njit(cache=True, nogil=True, inline="always")
def _document(doc_offsets, p):
    """(start, end) of the document holding token position p: the last document offset <= p
    and the next one (-1 if there is none). Offsets past 2^63 (damaged) read negative."""
    last = doc_offsets.shape[0] - 1
    a, b = 0, last
    while a < b:
        mid = (a + b + 1) // 2
        if np.int64(doc_offsets[mid]) <= p:
            a = mid
        else:
            b = mid - 1
    return np.int64(doc_offsets[a]), np.int64(doc_offsets[a + 1]) if a < last else np.int64(-1)


@njit(cache=True, nogil=True, inline="always")
def _search(tokens, rows, length_offsets, first_tokens, first_offsets, p, length, query):
    """Row of the context of position p of ``length`` tokens (binary search of the rows of
    that length; of full-length ones, only those starting with its first token): -1 if no row
    holds it, DAMAGED if the offsets are out of range. ``query`` is scratch of m tokens."""
    m = rows.shape[1]
    for t in range(m):
        query[t] = np.int64(tokens[p - length + t]) if t < length else 0
    lo, hi = np.int64(length_offsets[length]), np.int64(length_offsets[length + 1])
    if length == m and m > 0:
        j = np.searchsorted(first_tokens, query[0])
        if j >= first_tokens.shape[0] or first_tokens[j] != query[0]:
            return np.int64(-1)
        lo, hi = np.int64(first_offsets[j]), np.int64(first_offsets[j + 1])
    if lo < 0 or hi > rows.shape[0] or lo > hi:
        return np.int64(DAMAGED)
    return np.int64(find_row(rows, lo, hi, query, m))


@njit(cache=True, nogil=True)
def find_contexts(tokens, doc_offsets, rows, length_offsets, first_tokens, first_offsets,
                  links, prefix_offsets, positions, out):
    """out[i] <- id of the context of token position positions[i] (its last min(m, tokens
    since its document's start) tokens), where a compact file has no position ids. A position
    that follows the previous one in its document extends the lower context of the previous
    position (``links`` of its context) by one token: a search among that context's
    extensions, ``prefix_offsets`` (empty when the file has none). Else a binary search of
    ``rows`` (of full-length contexts only those starting with its first token:
    :attr:`Table.first_tokens`). The positions are cut into up to LANES runs searched in turn,
    one position of each at a time, so that the chains of lookups overlap. Every row found is
    checked to hold the position's tokens. False if a position is outside the tokens or a
    context is missing (a damaged file)."""
    m = rows.shape[1]
    query = np.zeros(m, np.int64)
    lower = prefix_offsets.shape[0] - 1  # contexts of the lower table (-1: no prefixes)
    n = positions.shape[0]
    lanes = max(1, min(LANES, n // 128)) if lower >= 0 else 1
    run = (n + lanes - 1) // lanes
    start = np.zeros(lanes, np.int64)  # each lane's current document [start, end)
    end = np.full(lanes, -1, np.int64)
    prev_p = np.full(lanes, -2, np.int64)
    prev_c = np.full(lanes, -1, np.int64)
    for step in range(run):
        for g in range(lanes):
            i = g * run + step
            if i >= n:
                continue
            p = np.int64(positions[i])
            if p < 0 or p >= tokens.shape[0]:
                return False
            if p < start[g] or p >= end[g]:
                start[g], end[g] = _document(doc_offsets, p)
                if start[g] < 0 or start[g] > p or end[g] <= p:
                    return False
            length = min(m, p - start[g])
            c = np.int64(-1)
            if lower >= 0 and p == prev_p[g] + 1 and p > start[g]:
                parent = np.int64(links[prev_c[g]])  # lower context of p-1: p's context's prefix
                if parent < 0 or parent >= lower:
                    return False
                lo, hi = np.int64(prefix_offsets[parent]), np.int64(prefix_offsets[parent + 1])
                if lo < 0 or hi > rows.shape[0] or lo > hi:
                    return False
                c = find_extension(rows, lo, hi, length - 1, np.int64(tokens[p - 1]))
                # the row found must be p's context: of its length, with its first tokens
                # (a damaged link or offset is refused, not followed to another context)
                if c >= 0 and not (np.int64(length_offsets[length]) <= c
                                   < np.int64(length_offsets[length + 1])):
                    return False
                for t in range(length - 1):
                    if c >= 0 and np.int64(rows[c, t]) != np.int64(tokens[p - length + t]):
                        return False
            else:
                c = _search(tokens, rows, length_offsets, first_tokens, first_offsets, p, length,
                            query)
            if c < 0:
                return False
            out[i] = c
            prev_p[g], prev_c[g] = p, c
    return True


@njit(cache=True, nogil=True)
def search_contexts(tokens, doc_offsets, rows, length_offsets, first_tokens, first_offsets,
                    positions, out):
    """out[i] <- id of the context of token position positions[i] among ``rows`` (its last
    min(m, tokens since its document's start) tokens, m = rows.shape[1]), -1 where no row
    holds it (a pruned file's search backs off to the next lower table). False if a position
    is outside the tokens or the document offsets are damaged."""
    m = rows.shape[1]
    query = np.zeros(m, np.int64)
    for i in range(positions.shape[0]):
        p = np.int64(positions[i])
        if p < 0 or p >= tokens.shape[0]:
            return False
        start = _document(doc_offsets, p)[0]
        if start < 0 or start > p:
            return False
        c = _search(tokens, rows, length_offsets, first_tokens, first_offsets, p,
                    min(m, p - start), query)
        if c == DAMAGED:
            return False
        out[i] = c
    return True

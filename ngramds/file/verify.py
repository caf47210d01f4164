"""Full structural checks of an open file (run by ``verify``; O(size of file)).

Every invariant of spec/FORMAT.md section 5 is checked here (the checksums and the file's end
by :meth:`NgramFile.verify`). The heavy checks are compiled; every stored value is read as
unsigned (a 64-bit value past 2^63 is a huge number, never a negative one)."""
from __future__ import annotations

import numpy as np
from numba import njit

from ..errors import FormatError
from .search import find_row

__all__ = ["check_file", "check_structure"]


def _fail(what: str):
    raise FormatError(f"{what}; the file is damaged, rebuild it")


@njit(cache=True)
def _unsorted_at(a):
    """The first i with a[i] < a[i-1] (unsigned), else -1."""
    for i in range(1, a.shape[0]):
        if np.uint64(a[i]) < np.uint64(a[i - 1]):
            return i
    return -1


@njit(cache=True)
def _prompt_past_document(prompts, doc_offsets):
    """The first document whose prompt is longer than the document (offsets sorted), else -1."""
    for d in range(prompts.shape[0]):
        if np.uint64(prompts[d]) > np.uint64(doc_offsets[d + 1]) - np.uint64(doc_offsets[d]):
            return d
    return -1


@njit(cache=True)
def _entries_bad_at(entry_offsets, next_ids, counts, totals, top_k):
    """The first context whose entries break invariants 4, 5 or 7, else -1: counts >= 1, not
    increasing, ids ascending among equal counts and distinct, the sum (no wrap past 2^64)
    equal to the total (with top_k K: at most K entries, the sum at most the total, equal when
    fewer than K entries are stored, every next token then being one)."""
    for c in range(totals.shape[0]):
        lo, hi = np.int64(entry_offsets[c]), np.int64(entry_offsets[c + 1])
        s = np.uint64(0)
        for i in range(lo, hi):
            v = np.uint64(counts[i])
            if v == 0:
                return c
            if i > lo:
                prev = np.uint64(counts[i - 1])
                if v > prev:
                    return c
                if v == prev and np.uint64(next_ids[i]) <= np.uint64(next_ids[i - 1]):
                    return c
            t = s + v
            if t < s:  # wrapped past 2^64
                return c
            s = t
        total = np.uint64(totals[c])
        if top_k > 0 and hi - lo > top_k:
            return c
        if s > total or ((top_k == 0 or hi - lo < top_k) and s != total):
            return c
        if hi - lo > 1:  # distinct ids (equal counts are checked above)
            ids = np.sort(next_ids[lo:hi])
            for i in range(1, ids.shape[0]):
                if ids[i] == ids[i - 1]:
                    return c
    return -1


@njit(cache=True)
def _rows_bad_at(rows, length_offsets, vocab_size):
    """The first context row breaking invariant 6, else -1: ids < V, zero after the length,
    strictly ascending within its length (lengths ascend by the offsets)."""
    m = rows.shape[1]
    v = np.uint64(vocab_size)
    for l in range(m + 1):
        lo, hi = np.int64(length_offsets[l]), np.int64(length_offsets[l + 1])
        for c in range(lo, hi):
            for t in range(m):
                x = np.uint64(rows[c, t])
                if (t < l and x >= v) or (t >= l and x != 0):
                    return c
            if c > lo:
                cmp = 0
                for t in range(l):
                    a, b = np.uint64(rows[c - 1, t]), np.uint64(rows[c, t])
                    if a != b:
                        cmp = -1 if a < b else 1
                        break
                if cmp >= 0:
                    return c
    return -1


@njit(cache=True)
def _length_of(length_offsets, c):
    """The length l of context c: length_offsets[l] <= c < length_offsets[l+1]."""
    l = 0
    while np.int64(length_offsets[l + 1]) <= c:
        l += 1
    return l


@njit(cache=True, inline="always")
def _query(tokens, length_offsets, start, p, query):
    """Put position p's context (its last min(m, p - start) tokens, m = query's size) in
    ``query``; return the rows of that length [lo, hi) and the length."""
    length = min(query.shape[0], p - start)
    for t in range(length):
        query[t] = np.int64(tokens[p - length + t])
    return np.int64(length_offsets[length]), np.int64(length_offsets[length + 1]), length


@njit(cache=True)
def _positions_bad_at(tokens, doc_offsets, rows, length_offsets, ids, found, hist):
    """Invariants 8 and 11: the first position whose context is wrong, else -1. With ``ids``
    (position_contexts; ``found`` False) each id must be the row of the position's last
    min(m, p - s) tokens; without (a compact file) that row must exist. Every position's
    context id is counted in ``hist``."""
    m = rows.shape[1]
    num = np.uint64(rows.shape[0])
    query = np.zeros(m, np.int64)
    for d in range(doc_offsets.shape[0] - 1):
        start, end = np.int64(doc_offsets[d]), np.int64(doc_offsets[d + 1])
        for p in range(start, end):
            lo, hi, length = _query(tokens, length_offsets, start, p, query)
            if found:
                c = find_row(rows, lo, hi, query, length)
                if c < 0:
                    return p
            else:
                u = np.uint64(ids[p])
                if u >= num:
                    return p
                c = np.int64(u)
                if c < lo or c >= hi:
                    return p
                for t in range(length):
                    if np.int64(rows[c, t]) != query[t]:
                        return p
            hist[c] += 1
    return -1


@njit(cache=True)
def _totals_bad_at(totals, hist):
    for c in range(totals.shape[0]):
        if np.uint64(totals[c]) != np.uint64(hist[c]):
            return c
    return -1


@njit(cache=True)
def _links_bad_at(rows, length_offsets, links, low_rows, low_offsets):
    """Invariant 10: the first context whose link is not the lower table's context of its last
    min(l, m') tokens, else -1 (links < C' checked before)."""
    m, low_m = rows.shape[1], low_rows.shape[1]
    for l in range(m + 1):
        k = min(l, low_m)
        lo_k, hi_k = np.int64(low_offsets[k]), np.int64(low_offsets[k + 1])
        for c in range(np.int64(length_offsets[l]), np.int64(length_offsets[l + 1])):
            x = np.int64(links[c])
            if x < lo_k or x >= hi_k:
                return c
            for t in range(k):
                if np.uint64(low_rows[x, t]) != np.uint64(rows[c, l - k + t]):
                    return c
    return -1


@njit(cache=True)
def _lower_totals(links, totals, out):
    """out[c'] += totals[c] for every context c linked to c' (the lower table's totals)."""
    for c in range(links.shape[0]):
        out[np.int64(links[c])] += np.uint64(totals[c])


@njit(cache=True)
def _prefixes_bad_at(rows, length_offsets, prefixes, low_rows, low_offsets):
    """Invariant 12 (prefix_offsets sorted, from clo[1] to C, checked before): the first context
    of length >= 1 not among the extensions of its first l-1 tokens, else -1."""
    m = rows.shape[1]
    query = np.zeros(max(m, 1), np.int64)
    for l in range(1, m + 1):
        lo_k, hi_k = np.int64(low_offsets[l - 1]), np.int64(low_offsets[l])
        for c in range(np.int64(length_offsets[l]), np.int64(length_offsets[l + 1])):
            for t in range(l - 1):
                query[t] = np.int64(rows[c, t])
            x = find_row(low_rows, lo_k, hi_k, query, l - 1)
            if x < 0:
                return c
            if not (np.uint64(prefixes[x]) <= np.uint64(c) < np.uint64(prefixes[x + 1])):
                return c
    return -1


def check_file(f) -> None:
    """Raise FormatError unless every invariant of spec/FORMAT.md (section 5; checksums and
    the file's end apart) holds for the open file ``f``.

    Args:
        f: an open :class:`~ngramds.file.reader.NgramFile` (its cheap checks passed).

    Raises:
        FormatError: naming the first broken invariant's section.
    """
    V, N = f.vocab_size, f.num_tokens
    docs = f.doc_offsets
    if _unsorted_at(docs) >= 0:
        _fail("doc_offsets are not sorted")
    if f.tokens.size and int(f.tokens.max()) >= V:
        _fail("tokens hold an id >= vocab_size")
    prompts = f.prompt_lengths
    if prompts is not None and (d := _prompt_past_document(prompts, docs)) >= 0:
        _fail(f"a prompt length (prompt_lengths[{d}] = {int(prompts[d])}) exceeds its "
              f"document's length {int(docs[d + 1]) - int(docs[d])}")
    tables = [f.tables[o] for o in f.orders]
    for t in tables:
        p = t.prefix
        if _unsorted_at(t.entry_offsets) >= 0:
            _fail(f"{p}entry_offsets are not sorted")
        if (c := _rows_bad_at(t.context_tokens, t.context_length_offsets, V)) >= 0:
            _fail(f"{p}context_tokens row {c} is out of order, not zero-padded or holds an "
                  "id >= vocab_size")
        if t.next_ids.size and int(t.next_ids.max()) >= V:
            _fail(f"{p}next_ids hold an id >= vocab_size")
        if (c := _entries_bad_at(t.entry_offsets, t.next_ids, t.counts, t.totals,
                                 t.top_k or 0)) >= 0:
            _fail(f"{p} context {c}: its distribution is unsorted, holds an id twice or "
                  "disagrees with its total")
        total = int(t.totals.astype(np.uint64).sum(dtype=np.uint64))
        if (total != N if t.min_count == 1 else total > N) or \
                (t.totals.size and int(t.totals.max()) > N):
            _fail(f"{p}totals do not add up to the number of tokens")
        if t.totals.size and int(t.totals.min()) < t.min_count:
            _fail(f"{p}totals hold a context seen fewer times than its min_count "
                  f"{t.min_count}")
        links = t._lower_contexts  # stored links only (format 1 derives them)
        if links is not None and t.lower is not None:
            if links.size and int(links.max()) >= t.lower.num_contexts:
                _fail(f"{p}lower_contexts hold an id past the next lower table")
            low = t.lower
            if _links_bad_at(t.context_tokens, t.context_length_offsets, links,
                             low.context_tokens, low.context_length_offsets) >= 0:
                _fail(f"{p}lower_contexts link a context to another than its lower context")
    if f.pruned:
        _check_pruned_positions(f, tables)
    # contexts of the positions: every table with ids (format 1: all), else the compact top
    for t in tables if not f.pruned else []:
        ids = t.position_contexts
        if ids is None and t is not tables[-1]:
            continue
        hist = np.zeros(t.num_contexts, np.uint64)
        found = ids is None
        at = _positions_bad_at(f.tokens, docs, t.context_tokens, t.context_length_offsets,
                               np.zeros(0, np.uint8) if found else ids, found, hist)
        if at >= 0:
            _fail(f"position {at}'s context is not a row of {t.prefix}context_tokens" if found
                  else f"{t.prefix}position_contexts[{at}] is not the id of its context")
        if (c := _totals_bad_at(t.totals, hist)) >= 0:
            _fail(f"{t.prefix}totals[{c}] is not the number of positions of its context")
        # down the links: a lower table's totals are its linked contexts' totals
        high = t
        while high.lower is not None and high._lower_contexts is not None and \
                high.lower.position_contexts is None:
            low = high.lower
            sums = np.zeros(low.num_contexts, np.uint64)
            _lower_totals(high._lower_contexts, high.totals, sums)
            if (c := _totals_bad_at(low.totals, sums)) >= 0:
                _fail(f"{low.prefix}totals[{c}] is not the number of positions of its context")
            high = low
    top = tables[-1]
    prefixes = top.prefix_offsets
    if prefixes is not None:
        if _unsorted_at(prefixes) >= 0:
            _fail(f"{top.prefix}prefix_offsets are not sorted")
        low = top.lower
        if _prefixes_bad_at(top.context_tokens, top.context_length_offsets, prefixes,
                            low.context_tokens, low.context_length_offsets) >= 0:
            _fail(f"{top.prefix}prefix_offsets do not hold the extensions of the lower "
                  "contexts")


@njit(cache=True)
def _pruned_positions_bad_at(tokens, doc_offsets, rows, length_offsets, ids, use_ids, base,
                             level, depth, hist, missing):
    """Pruned files, one table (``level`` 0: the highest; called from there down): the first
    position breaking an invariant, else -1. Each position's context is searched: found, it
    is counted in ``hist``, and the first table that holds it sets ``depth``, where the
    global id ``ids[p]`` must be ``base`` + its row; missing, ``missing[p]`` is set, and no
    higher table may hold it (a stored context's lower context is stored)."""
    m = rows.shape[1]
    query = np.zeros(m, np.int64)
    for d in range(doc_offsets.shape[0] - 1):
        start, end = np.int64(doc_offsets[d]), np.int64(doc_offsets[d + 1])
        for p in range(start, end):
            lo, hi, length = _query(tokens, length_offsets, start, p, query)
            c = find_row(rows, lo, hi, query, length)
            if c < 0:
                if depth[p] >= 0:
                    return p
                missing[p] = True
                continue
            hist[c] += 1
            if depth[p] < 0:
                depth[p] = level
                if use_ids and np.uint64(ids[p]) != np.uint64(base + c):
                    return p
    return -1


def _check_pruned_positions(f, tables) -> None:
    """Invariants 8, 13 and 15 of a pruned file: every table's contexts searched at every
    position (totals = positions per stored context; the global ids; a missing context seen
    fewer times than its table's min_count)."""
    top, N, docs = tables[-1], f.num_tokens, f.doc_offsets
    ids = top.position_contexts
    use_ids = ids is not None
    if use_ids and ids.size and int(ids.max()) >= f.num_ids:
        _fail(f"{top.prefix}position_contexts hold an id past the tables")
    depth = np.full(N, -1, np.int8)  # (a level per order: at most MAX_ORDER)
    for level, t in enumerate(tables[::-1]):
        hist = np.zeros(t.num_contexts, np.uint64)
        missing = np.zeros(N, np.bool_)
        at = _pruned_positions_bad_at(f.tokens, docs, t.context_tokens,
                                      t.context_length_offsets,
                                      ids if use_ids else np.zeros(0, np.uint8), use_ids,
                                      f.id_bases[t.order], level, depth, hist, missing)
        if at >= 0:
            _fail(f"position {at}: {top.prefix}position_contexts is not the global id of its "
                  f"deepest stored context, or {t.prefix} lacks the lower context of a "
                  "stored one")
        if (c := _totals_bad_at(t.totals, hist)) >= 0:
            _fail(f"{t.prefix}totals[{c}] is not the number of positions of its context")
        if missing.any() and _most_seen(f.tokens, docs, np.flatnonzero(missing),
                                        t.order - 1) >= t.min_count:
            _fail(f"{t.prefix}: a context seen at least min_count {t.min_count} times is "
                  "not stored")
    if (depth < 0).any():
        _fail(f"position {int(np.argmax(depth < 0))}'s context is in no table")


def _most_seen(tokens, doc_offsets, positions, m) -> int:
    """The most positions among ``positions`` that share one context of up to m tokens."""
    starts = doc_offsets.astype(np.int64)[np.searchsorted(
        doc_offsets.astype(np.int64), positions, side="right") - 1]
    lengths = np.minimum(m, positions - starts)
    cols = [lengths]
    for t in range(m):
        at = positions - lengths + t
        cols.append(np.where(t < lengths, tokens[np.minimum(at, tokens.size - 1)].astype(
            np.int64), -1))
    keys = np.stack(cols[::-1])  # lexsort: the last key is the primary one
    order = np.lexsort(keys)
    keys = keys[:, order]
    new = np.ones(positions.size, np.bool_)
    new[1:] = (keys[:, 1:] != keys[:, :-1]).any(0)
    runs = np.diff(np.append(np.flatnonzero(new), positions.size))
    return int(runs.max(initial=0))


def check_structure(f, table=None) -> None:
    """The checks of :func:`check_file` (of every table; ``table`` is ignored: kept for
    callers of the earlier per-table form)."""
    check_file(f)

"""Numba kernels of the builder: pack contexts, radix-sort them, count next tokens, assemble CSR.

Every kernel works on fixed chunks (never on the thread count), and every sort is stable or
has a unique result, so outputs are identical for any number of threads.
"""
import numpy as np
from numba import njit, prange

RADIX_BITS = 11
NUM_BUCKETS = 1 << RADIX_BITS
INSERTION_SORT_MAX = 24


def num_chunks(n: int) -> int:
    """Fixed work split (independent of the thread count)."""
    return int(max(1, min(256, n // 65536)))


@njit(cache=True)
def _chunk(c, nchunks, n):
    return c * n // nchunks, (c + 1) * n // nchunks


@njit(parallel=True, cache=True)
def pack_contexts(tokens, doc_offsets, positions, m, field_word, field_shift, keys):
    """keys[i] <- packed (length, t_1..t_m) context of position positions[i] (fields MSB-first,
    zero padded)."""
    nw = keys.shape[1]
    for i in prange(positions.shape[0]):
        p = np.int64(positions[i])
        d = np.searchsorted(doc_offsets, p, side="right") - 1
        length = min(p - doc_offsets[d], m)
        for w in range(nw):
            keys[i, w] = 0
        keys[i, field_word[0]] |= np.uint64(length) << np.uint64(field_shift[0])
        for t in range(length):
            tok = np.uint64(tokens[p - length + t])
            keys[i, field_word[t + 1]] |= tok << np.uint64(field_shift[t + 1])


@njit(parallel=True, cache=True)
def pack_ngrams(tokens, doc_offsets, m, bits, keys, full_pos, short_pos, nchunks):
    """For positions with a full context (m tokens of their document before them):
    keys[i] <- the (m+1)-gram ending there packed oldest-first into the low (m+1)*bits bits,
    full_pos[i] <- the position. Positions nearer their document start go to short_pos.
    Both lists are in position order."""
    n = tokens.shape[0]
    nfull = np.zeros(nchunks + 1, np.int64)
    nshort = np.zeros(nchunks + 1, np.int64)
    for c in prange(nchunks):
        lo, hi = _chunk(c, nchunks, n)
        if lo >= hi:
            continue
        d = np.searchsorted(doc_offsets, lo, side="right") - 1
        f = 0
        for p in range(lo, hi):
            while doc_offsets[d + 1] <= p:
                d += 1
            if p - doc_offsets[d] >= m:
                f += 1
        nfull[c + 1] = f
        nshort[c + 1] = hi - lo - f
    for c in range(nchunks):
        nfull[c + 1] += nfull[c]
        nshort[c + 1] += nshort[c]
    sh = np.uint64(bits)
    for c in prange(nchunks):
        lo, hi = _chunk(c, nchunks, n)
        if lo >= hi:
            continue
        d = np.searchsorted(doc_offsets, lo, side="right") - 1
        jf, js = nfull[c], nshort[c]
        for p in range(lo, hi):
            while doc_offsets[d + 1] <= p:
                d += 1
            if p - doc_offsets[d] >= m:
                key = np.uint64(0)
                for t in range(p - m, p + 1):
                    key = (key << sh) | np.uint64(tokens[t])
                keys[jf, 0] = key
                full_pos[jf] = p
                jf += 1
            else:
                short_pos[js] = p
                js += 1


@njit(parallel=True, cache=True)
def radix_pass(src_keys, src_pos, dst_keys, dst_pos, word, shift, nchunks):
    """One stable counting-sort pass on RADIX_BITS bits of ``word`` at ``shift``.

    Returns False (and moves nothing) when every key has the same digit.
    """
    n, nw = src_keys.shape
    sh = np.uint64(shift)
    mask = np.uint64(NUM_BUCKETS - 1)
    hist = np.zeros((nchunks, NUM_BUCKETS), np.int64)
    for c in prange(nchunks):
        lo, hi = _chunk(c, nchunks, n)
        for i in range(lo, hi):
            hist[c, (src_keys[i, word] >> sh) & mask] += 1
    offsets = np.empty_like(hist)
    run = 0
    for d in range(NUM_BUCKETS):
        col = 0
        for c in range(nchunks):
            offsets[c, d] = run
            run += hist[c, d]
            col += hist[c, d]
        if col == n:
            return False
    for c in prange(nchunks):
        lo, hi = _chunk(c, nchunks, n)
        for i in range(lo, hi):
            d = (src_keys[i, word] >> sh) & mask
            j = offsets[c, d]
            offsets[c, d] = j + 1
            for w in range(nw):
                dst_keys[j, w] = src_keys[i, w]
            dst_pos[j] = src_pos[i]
    return True


@njit(parallel=True, cache=True)
def group_starts(keys, shift, nchunks):
    """Start index of every run of equal keys (ignoring the low ``shift`` bits of the last
    word) in sorted ``keys``, plus a final ``n``."""
    n, nw = keys.shape
    counts = np.zeros(nchunks + 1, np.int64)
    for c in prange(nchunks):
        lo, hi = _chunk(c, nchunks, n)
        k = 0
        for i in range(lo, hi):
            if _is_start(keys, i, nw, shift):
                k += 1
        counts[c + 1] = k
    for c in range(nchunks):
        counts[c + 1] += counts[c]
    starts = np.empty(counts[nchunks] + 1, np.int64)
    starts[counts[nchunks]] = n
    for c in prange(nchunks):
        lo, hi = _chunk(c, nchunks, n)
        k = counts[c]
        for i in range(lo, hi):
            if _is_start(keys, i, nw, shift):
                starts[k] = i
                k += 1
    return starts


@njit(cache=True)
def _is_start(keys, i, nw, shift):
    if i == 0:
        return True
    for w in range(nw - 1):
        if keys[i, w] != keys[i - 1, w]:
            return True
    sh = np.uint64(shift)
    return (keys[i, nw - 1] >> sh) != (keys[i - 1, nw - 1] >> sh)


@njit(parallel=True, cache=True)
def context_rows(tokens, keys, pos, starts, len_word, len_shift, len_mask, rows, lengths):
    """rows[g] <- tokens of context g (zero padded), lengths[g] <- its length."""
    ng = starts.shape[0] - 1
    for g in prange(ng):
        i = starts[g]
        length = (keys[i, len_word] >> np.uint64(len_shift)) & np.uint64(len_mask)
        p = pos[i]
        lengths[g] = length
        for t in range(rows.shape[1]):
            rows[g, t] = tokens[p - length + t] if t < length else 0


@njit(parallel=True, cache=True)
def ngram_context_rows(tokens, pos, starts, rows):
    """rows[g] <- the m tokens before the first position of full-context group g."""
    m = rows.shape[1]
    for g in prange(starts.shape[0] - 1):
        p = np.int64(pos[starts[g]])
        for t in range(m):
            rows[g, t] = tokens[p - m + t]


@njit(parallel=True, cache=True)
def ngram_next_tokens(keys, starts, bits, nxt, distinct):
    """nxt <- the next token held in the low ``bits`` of each sorted n-gram key (already
    sorted within each context); distinct[g] <- its number of distinct values."""
    mask = (np.uint64(1) << np.uint64(bits)) - np.uint64(1)
    for g in prange(starts.shape[0] - 1):
        lo, hi = starts[g], starts[g + 1]
        k = 1
        nxt[lo] = keys[lo, 0] & mask
        for i in range(lo + 1, hi):
            nxt[i] = keys[i, 0] & mask
            if keys[i, 0] != keys[i - 1, 0]:
                k += 1
        distinct[g] = k


@njit(parallel=True, cache=True)
def position_contexts(pos, starts, out):
    """out[pos[i]] <- context id of sorted index i."""
    for g in prange(starts.shape[0] - 1):
        for i in range(starts[g], starts[g + 1]):
            out[pos[i]] = g


@njit(parallel=True, cache=True)
def sorted_next_tokens(tokens, pos, starts, nxt, distinct):
    """nxt <- next token of every sorted position, sorted within each context;
    distinct[g] <- number of distinct next tokens of context g."""
    for g in prange(starts.shape[0] - 1):
        lo, hi = starts[g], starts[g + 1]
        for i in range(lo, hi):
            nxt[i] = tokens[pos[i]]
        seg = nxt[lo:hi]
        if hi - lo <= INSERTION_SORT_MAX:
            _insertion_sort(seg)
        else:
            seg.sort()
        k = 1
        for i in range(lo + 1, hi):
            if nxt[i] != nxt[i - 1]:
                k += 1
        distinct[g] = k


@njit(cache=True)
def _insertion_sort(a):
    for i in range(1, a.shape[0]):
        v = a[i]
        j = i - 1
        while j >= 0 and a[j] > v:
            a[j + 1] = a[j]
            j -= 1
        a[j + 1] = v


@njit(parallel=True, cache=True)
def fill_entries(nxt, starts, distinct, entry_offsets, ids, counts):
    """Write each context's (next id, count) entries sorted by count desc, then id asc,
    keeping as many as ``entry_offsets`` leaves room for (top-k truncation)."""
    for g in prange(starts.shape[0] - 1):
        lo, hi = starts[g], starts[g + 1]
        out = entry_offsets[g]
        keep = entry_offsets[g + 1] - out
        nd = distinct[g]
        if nd == keep and nd <= INSERTION_SORT_MAX:
            _run_lengths(nxt, lo, hi, ids[out:out + nd], counts[out:out + nd])
            _sort_pairs_by_count(ids[out:out + nd], counts[out:out + nd])
            continue
        tid = np.empty(nd, nxt.dtype)
        tc = np.empty(nd, np.int64)
        _run_lengths(nxt, lo, hi, tid, tc)
        order = entry_order(tc)
        for r in range(keep):
            ids[out + r] = tid[order[r]]
            counts[out + r] = tc[order[r]]


@njit(cache=True)
def _run_lengths(nxt, lo, hi, ids, counts):
    k = 0
    ids[0] = nxt[lo]
    counts[0] = 1
    for i in range(lo + 1, hi):
        if nxt[i] != nxt[i - 1]:
            k += 1
            ids[k] = nxt[i]
            counts[k] = 0
        counts[k] += 1


@njit(cache=True)
def entry_order(counts):
    """The file's entry order of one context whose entries arrive by id ascending: count
    descending, then id ascending (a stable sort by count)."""
    return np.argsort(-counts.astype(np.int64), kind="mergesort")


@njit(cache=True)
def _sort_pairs_by_count(ids, counts):
    """:func:`entry_order` applied in place, by a stable insertion sort (short contexts)."""
    for i in range(1, ids.shape[0]):
        vi, vc = ids[i], counts[i]
        j = i - 1
        while j >= 0 and counts[j] < vc:
            ids[j + 1] = ids[j]
            counts[j + 1] = counts[j]
            j -= 1
        ids[j + 1] = vi
        counts[j + 1] = vc

"""Numba kernels of the memory-bounded build: summarise sorted runs, search and merge them.

Keys are rows of uint64 words holding (length, t_1..t_m, next) MSB-first; ``ctx_mask`` clears
the next-token field, so two keys share a context when their masked words are equal.
"""
import numpy as np
from numba import njit, prange

from .kernels import entry_order


@njit(cache=True)
def _differs(keys, i, j, ctx_mask):
    """(keys differ, contexts differ) for rows i and j."""
    key, ctx = False, False
    for w in range(keys.shape[1]):
        a, b = keys[i, w], keys[j, w]
        if a != b:
            key = True
            if (a & ctx_mask[w]) != (b & ctx_mask[w]):
                ctx = True
    return key, ctx


@njit(parallel=True, cache=True)
def summarize_run(keys, pos, first, ctx_mask, local, ukeys, ukey_start, uctx, nchunks):
    """From keys sorted with their positions: the distinct keys, the sorted index where each
    starts, and the local number of its context; local[pos - first] <- the local context
    number of every position. Returns (distinct keys, distinct contexts)."""
    n, nw = keys.shape
    flags = np.empty(n, np.uint8)  # bit 0: a new key starts here, bit 1: a new context
    nkeys = np.zeros(nchunks + 1, np.int64)
    nctx = np.zeros(nchunks + 1, np.int64)
    for c in prange(nchunks):
        new_keys, new_ctx = 0, 0
        for i in range(c * n // nchunks, (c + 1) * n // nchunks):
            f = 3
            if i > 0:
                f = 0
                for w in range(nw):
                    a, b = keys[i, w], keys[i - 1, w]
                    if a != b:
                        f |= 1
                        if (a & ctx_mask[w]) != (b & ctx_mask[w]):
                            f |= 2
            flags[i] = f
            new_keys += f & 1
            new_ctx += f >> 1
        nkeys[c + 1] = new_keys
        nctx[c + 1] = new_ctx
    for c in range(nchunks):
        nkeys[c + 1] += nkeys[c]
        nctx[c + 1] += nctx[c]
    for c in prange(nchunks):
        u, g = nkeys[c] - 1, nctx[c] - 1
        for i in range(c * n // nchunks, (c + 1) * n // nchunks):
            f = flags[i]
            if f & 2:
                g += 1
            if f & 1:
                u += 1
                for w in range(nw):
                    ukeys[u, w] = keys[i, w]
                ukey_start[u] = i
                uctx[u] = g
            local[pos[i] - first] = g
    return nkeys[nchunks], nctx[nchunks]


@njit(parallel=True, cache=True)
def map_ids(table, local, out):
    """out[i] <- table[local[i]] (a run's local context numbers made file context ids)."""
    for i in prange(local.shape[0]):
        out[i] = table[local[i]]


@njit(cache=True)
def lower_bound(rows, query):
    """First index i with rows[i] >= query (rows sorted lexicographically)."""
    lo, hi = 0, rows.shape[0]
    while lo < hi:
        mid = (lo + hi) // 2
        less = False
        for w in range(rows.shape[1]):
            if rows[mid, w] != query[w]:
                less = rows[mid, w] < query[w]
                break
        if less:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True)
def lower_bounds(rows, queries, out):
    """out[j] <- lower_bound(rows, queries[j]) for every query."""
    for j in range(queries.shape[0]):
        out[j] = lower_bound(rows, queries[j])


@njit(cache=True)
def aggregate(keys, perm, counts, ctx_mask, next_word, next_shift, next_mask, ctx_of,
              ctx_first, ctx_starts, ids, ecounts):
    """Sum the counts of equal keys of a sorted bucket. Per sorted row: ctx_of <- its context;
    per context: ctx_first <- its first row, ctx_starts <- its first entry; per entry: the next
    id and summed count. Returns (entries, contexts)."""
    e, c = -1, -1
    for i in range(keys.shape[0]):
        new_key, new_ctx = (True, True) if i == 0 else _differs(keys, i, i - 1, ctx_mask)
        if new_ctx:
            c += 1
            ctx_first[c] = i
            ctx_starts[c] = e + 1
        if new_key:
            e += 1
            ids[e] = (keys[i, next_word] >> np.uint64(next_shift)) & np.uint64(next_mask)
            ecounts[e] = 0
        ecounts[e] += counts[perm[i]]
        ctx_of[i] = c
    ctx_starts[c + 1] = e + 1
    return e + 1, c + 1


@njit(parallel=True, cache=True)
def decode_contexts(keys, ctx_first, words, shifts, len_mask, tok_mask, rows, lengths):
    """rows[c] <- the tokens of context c (zero padded), lengths[c] <- its length."""
    m = rows.shape[1]
    for c in prange(rows.shape[0]):
        i = ctx_first[c]
        lengths[c] = (keys[i, words[0]] >> np.uint64(shifts[0])) & np.uint64(len_mask)
        for t in range(m):
            rows[c, t] = (keys[i, words[t + 1]] >> np.uint64(shifts[t + 1])) & np.uint64(tok_mask)


@njit(parallel=True, cache=True)
def order_entries(ctx_starts, ids, counts, out_offsets, out_ids, out_counts, totals):
    """Each context's entries sorted by count descending, then id ascending (ids arrive
    ascending), truncated to the room ``out_offsets`` leaves; totals <- exact sums."""
    for g in prange(ctx_starts.shape[0] - 1):
        lo, hi = ctx_starts[g], ctx_starts[g + 1]
        s = 0
        for i in range(lo, hi):
            s += counts[i]
        totals[g] = s
        order = entry_order(counts[lo:hi])
        out = out_offsets[g]
        for r in range(out_offsets[g + 1] - out):
            out_ids[out + r] = ids[lo + order[r]]
            out_counts[out + r] = counts[lo + order[r]]


# -- validation of runs read back from disk (partial results) ---------------------------------
RUN_OK, RUN_BAD_FIELD, RUN_BAD_TOKEN, RUN_UNSORTED, RUN_BAD_COUNT, RUN_BAD_CTX, RUN_BAD_LOCAL = \
    range(7)
RUN_ERRORS = {
    RUN_BAD_FIELD: "a key has a context length past the order, bits outside its fields or "
                   "tokens past its context",
    RUN_BAD_TOKEN: "a key holds a token id past the partial's largest",
    RUN_UNSORTED: "keys are not strictly sorted",
    RUN_BAD_COUNT: "a count is zero or the counts do not add up to the run's positions",
    RUN_BAD_CTX: "context numbers do not follow the keys",
    RUN_BAD_LOCAL: "positions refer to contexts past the run or disagree with the counts",
}


@njit(cache=True)
def check_run(keys, counts, ctx, local, ctx_mask, words, shifts, len_mask, tok_mask, m, max_id,
              num_contexts):
    """RUN_OK when a run is what :func:`summarize_run` writes: every key's fields in range
    (length <= m, tokens <= max_id, zero past the length, no bit outside a field), keys
    strictly sorted, ``ctx`` numbering their contexts 0, 1, ... in order, counts positive,
    and ``local`` holding, per context, as many positions as its keys' counts; else the code
    of the first problem found."""
    n, nw = keys.shape
    nf = words.shape[0]
    rebuilt = np.zeros(nw, np.uint64)
    for i in range(n):
        for w in range(nw):
            rebuilt[w] = 0
        length = (keys[i, words[0]] >> np.uint64(shifts[0])) & np.uint64(len_mask)
        if length > m:
            return RUN_BAD_FIELD
        rebuilt[words[0]] |= length << np.uint64(shifts[0])
        for t in range(1, nf):
            v = (keys[i, words[t]] >> np.uint64(shifts[t])) & np.uint64(tok_mask)
            if v > max_id:
                return RUN_BAD_TOKEN
            if t <= m and t > length and v != 0:
                return RUN_BAD_FIELD
            rebuilt[words[t]] |= v << np.uint64(shifts[t])
        for w in range(nw):
            if rebuilt[w] != keys[i, w]:
                return RUN_BAD_FIELD
    per_ctx = np.zeros(num_contexts, np.int64)
    total = 0
    for i in range(n):
        if counts[i] == 0:
            return RUN_BAD_COUNT
        if i == 0:
            if ctx[0] != 0:
                return RUN_BAD_CTX
        else:
            less, new_ctx = False, False
            for w in range(nw):
                a, b = keys[i - 1, w], keys[i, w]
                if a != b:
                    less = a < b
                    break
            if not less:
                return RUN_UNSORTED
            for w in range(nw):
                if (keys[i - 1, w] & ctx_mask[w]) != (keys[i, w] & ctx_mask[w]):
                    new_ctx = True
            if np.int64(ctx[i]) != np.int64(ctx[i - 1]) + (1 if new_ctx else 0):
                return RUN_BAD_CTX
        if np.int64(ctx[i]) >= num_contexts:
            return RUN_BAD_CTX
        per_ctx[ctx[i]] += np.int64(counts[i])
        total += np.int64(counts[i])
    if (n and np.int64(ctx[n - 1]) != num_contexts - 1) or (n == 0 and num_contexts != 0):
        return RUN_BAD_CTX
    if total != local.shape[0]:
        return RUN_BAD_COUNT
    for j in range(local.shape[0]):
        c = np.int64(local[j])
        if c >= num_contexts:
            return RUN_BAD_LOCAL
        per_ctx[c] -= 1
    for c in range(num_contexts):
        if per_ctx[c] != 0:
            return RUN_BAD_LOCAL
    return RUN_OK

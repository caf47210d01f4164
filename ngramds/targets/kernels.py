"""The compiled kernels of the targets (spec/TARGETS.md): windows, the context gather, the
target of one position, mixture weights. Torch-free, serial, GIL-free. Their torch mirror,
function for function under the same names, is :mod:`ngramds.torch.kernels`.

Every kernel returns ``OK`` or one of the named error codes below: every index read from the
file is checked (as a signed 64-bit value, so unsigned 64-bit values >= 2^63 are refused too)
before it is followed, so a damaged file gives an error, never a crash or a wrong target.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from ..errors import FormatError
from ..hashing import splitmix64
from ..prefetch import prefetch

ONEHOT, ALLNTS, TAIL, RENORM = 0, 1, 2, 3
MODES = {"onehot": ONEHOT, "allnts": ALLNTS, "coconts-tail": TAIL, "coconts-renorm": RENORM}
BACKOFF, WITTEN_BELL, FIXED, KNESER_NEY = 1, 2, 3, 4
# "none": one order of weight 1 (the plan's lambdas)
MIXINGS = {"none": FIXED, "backoff": BACKOFF, "witten-bell": WITTEN_BELL, "fixed": FIXED,
           "kneser-ney": KNESER_NEY}

OK = 0
BAD_CONTEXT = 1      # a position or link refers to a context id past the table
BAD_OFFSETS = 2      # entry offsets out of range or unsorted
BAD_ENTRIES = 3      # a distribution empty or larger than its context total
BAD_SAMPLE = 4       # a sample runs past the end of the token stream
BAD_TOKEN = 5        # a token id >= the vocabulary size
ERRORS = {BAD_CONTEXT: "a position or link refers to a context id past the table",
          BAD_OFFSETS: "entry offsets are out of range or unsorted",
          BAD_ENTRIES: "a distribution is empty or larger than its context total",
          BAD_SAMPLE: "a sample runs past the end of the token stream",
          BAD_TOKEN: "a token id is >= the vocabulary size"}

PREFIX_BLOCK = 64
AHEAD = 8  # rows a kernel prefetches ahead of the one it computes
NO_PREFIX = np.zeros(0, np.int64)


def check(code: int) -> None:
    """Raise FormatError for a kernel's error code."""
    if code != OK:
        raise FormatError(f"{ERRORS.get(code, 'inconsistent file')}; the file is damaged "
                          "(run `ngramds verify`)")


class Mixing(NamedTuple):
    """What :func:`mix_weights` reads of a plan (one record, which Numba takes whole)."""

    method: int             # BACKOFF, WITTEN_BELL, FIXED or KNESER_NEY (MIXINGS)
    min_count: int          # backoff: a context seen this often gives the target
    lambdas: np.ndarray     # fixed ("none": [1.0]): float64 [k], ascending orders
    escape: float           # Witten-Bell: lambda = T / (T + escape * D)
    discounts: np.ndarray   # Kneser-Ney: each order's discount D (fraction of a count) [k]


def mixing(plan, discounts=None) -> Mixing:
    """The :class:`Mixing` of a resolved plan (:class:`ngramds.targets.config.Plan`);
    ``discounts``: Kneser-Ney's, one per order (else zeros)."""
    k = len(plan.orders)
    d = np.zeros(k) if discounts is None else np.asarray(discounts, np.float64)
    return Mixing(MIXINGS[plan.mixing], int(plan.min_count),
                  np.ascontiguousarray(plan.lambdas, np.float64), float(plan.escape), d)


@njit(cache=True, nogil=True)
def position_key(seed, epoch, position):
    """The random 64-bit word of (seed, epoch, position) used by the tail draw."""
    return splitmix64(np.uint64(seed) ^ splitmix64(np.uint64(epoch) ^
                                                  splitmix64(np.uint64(position))))


@njit(cache=True, nogil=True)
def position_keys(seed, epoch, positions, out):
    """out[i] <- :func:`position_key` of (``seed``, ``epoch``, ``positions[i]``): each
    position's word hashed once for every order's tail draw."""
    for i in range(positions.shape[0]):
        out[i] = position_key(seed, epoch, positions[i])


@njit(cache=True, nogil=True)
def fill_windows(tokens, sample_starts, seq_len, vocab_size, input_ids, labels):
    """input_ids[b] <- tokens[s : s + L], labels[b] <- tokens[s + 1 : s + L + 1] for the start
    s of each sample b."""
    n = tokens.shape[0]
    for b in range(sample_starts.shape[0]):
        s = sample_starts[b]
        if s < 0 or s + seq_len >= n:
            return BAD_SAMPLE
        for i in range(seq_len):
            t = np.int64(tokens[s + i])
            if t >= vocab_size:
                return BAD_TOKEN
            input_ids[b, i] = t
        for i in range(seq_len - 1):
            labels[b, i] = input_ids[b, i + 1]
        last = np.int64(tokens[s + seq_len])
        if last >= vocab_size:
            return BAD_TOKEN
        labels[b, seq_len - 1] = last
    return OK


@njit(cache=True, nogil=True)
def copy_slices(src, sample_starts, offset, limit, bad, out, column):
    """out[b, :, column] <- src[s + offset : s + offset + n] for the start s of each sample b,
    n = out.shape[1]: what the device path ships. A value outside [0, limit) returns ``bad``."""
    n = out.shape[1]
    for b in range(sample_starts.shape[0]):
        s = sample_starts[b] + offset
        if s < 0 or s + n > src.shape[0]:
            return BAD_SAMPLE
        for i in range(n):
            v = np.int64(src[s + i])
            if v < 0 or v >= limit:
                return bad
            out[b, i, column] = v
    return OK


@njit(cache=True, nogil=True, inline="always")
def _row(entry_offsets, totals, num_entries, c, i, ctx, los, his, tots):
    """ctx/los/his/tots[i] <- context c, its entry range and total, once checked (the range
    lies in the entries, is not empty, and the total is positive): OK or the error code."""
    lo, hi, t = np.int64(entry_offsets[c]), np.int64(entry_offsets[c + 1]), np.int64(totals[c])
    if lo < 0 or lo > hi or hi > num_entries:
        return BAD_OFFSETS
    if lo == hi or t <= 0:
        return BAD_ENTRIES
    ctx[i], los[i], his[i], tots[i] = c, lo, hi, t
    return OK


@njit(cache=True, nogil=True)
def gather(context_ids, entry_offsets, totals, num_entries, index, ctx, los, his, tots):
    """ctx[i] <- context_ids[index[i]]: a table's context of each position, from the highest
    table's position ids (``index``: the positions) or a higher table's ``lower_contexts``
    (``index``: its contexts); los/his/tots[i] <- that context's entry range and total."""
    num_contexts, n = totals.shape[0], index.shape[0]
    for i in range(n):
        if i + 4 * AHEAD < n:  # the id of the row 4 AHEAD on, then its context 2 AHEAD on
            prefetch(context_ids, index[i + 4 * AHEAD])
        if i + 2 * AHEAD < n:
            j = np.int64(index[i + 2 * AHEAD])
            if 0 <= j < context_ids.shape[0]:
                a = np.int64(context_ids[j])
                prefetch(entry_offsets, a)
                prefetch(totals, a)
        c = np.int64(context_ids[index[i]])
        if c < 0 or c >= num_contexts:
            return BAD_CONTEXT
        code = _row(entry_offsets, totals, num_entries, c, i, ctx, los, his, tots)
        if code != OK:
            return code
    return OK


@njit(cache=True, nogil=True)
def gather_pruned(gids, base, num_contexts, links, has_links, prev, required, entry_offsets,
                  totals, num_entries, ctx, los, his, tots):
    """:func:`gather` in a pruned file (spec/FORMAT.md, "Pruned files"): ctx[i] <- this
    table's context of row i: ``links[prev[i]]`` where the higher table's context prev[i] is
    stored (``has_links``), else gids[i] - base where the global id gids[i] lies in this
    table's range, else -1 (unseen: lo = hi = total = 0; an error where ``required``, the
    lowest order used, which is never pruned)."""
    for i in range(gids.shape[0]):
        c = np.int64(-1)
        if has_links and prev[i] >= 0:
            c = np.int64(links[prev[i]])
            if c < 0 or c >= num_contexts:
                return BAD_CONTEXT
        elif base <= gids[i] < base + num_contexts:
            c = gids[i] - base
        if c < 0:
            if required:
                return BAD_CONTEXT
            ctx[i], los[i], his[i], tots[i] = -1, 0, 0, 0
            continue
        code = _row(entry_offsets, totals, num_entries, c, i, ctx, los, his, tots)
        if code != OK:
            return code
    return OK


@njit(cache=True, nogil=True)
def fill_component(next_ids, counts, los, his, tots, labels, keys, w, mode, r, salt,
                   label_free, complete, vocab_size, off, width, ids, probs, prefix):
    """Add one order's target, scaled by its weight ``w[i]``, into slots [off, off+width) of
    every row i, which hold (label, 0) already (rows of weight 0 are left so), as
    spec/TARGETS.md defines it: AllNTs, or CoCoNTs' top r with the residual on a tail draw
    (``TAIL``) or, when the label is not in the top r, on the label (``RENORM``).

    A tail draw uses the position's word ``keys[i]`` (:func:`position_keys`), mixed with
    ``salt`` when ``label_free`` (lower orders of a mixture: the residual goes to a tail draw
    whatever the label is, and ``renorm`` is ignored). Every entry is checked as it is read.
    One loop over the rows with nothing called per row but the draw: a call per row with the
    output arrays as arguments cost as much as the work itself. Serial (Numba's thread pool
    does not survive the fork of DataLoader workers); callers run tiles in Python threads
    instead."""
    n = keys.shape[0]
    renorm = mode == RENORM and not label_free
    for i in range(n):
        weight = w[i]
        if weight == 0.0:
            continue
        if i + AHEAD < n:  # the entries AHEAD rows on
            prefetch(counts, los[i + AHEAD])
            prefetch(next_ids, los[i + AHEAD])
        lo, hi, total, label = los[i], his[i], tots[i], labels[i]
        kept = min(hi - lo, width if mode == ALLNTS else r)
        # the kept entries: checked (no overflow whatever the file holds), summed
        mass = np.int64(0)
        label_in_top = False
        for k in range(lo, lo + kept):
            c, t = np.int64(counts[k]), np.int64(next_ids[k])
            if t < 0 or t >= vocab_size:
                return BAD_TOKEN
            if c <= 0 or c > total - mass:
                return BAD_ENTRIES
            mass += c
            label_in_top |= t == label
        if mode == ALLNTS or (renorm and label_in_top):
            inv = weight / mass
        elif renorm:  # the label outside the top r: all of the weight on it
            probs[i, off + r] = weight
            continue
        else:
            inv = weight / total
        for k in range(kept):
            ids[i, off + k] = next_ids[lo + k]
            probs[i, off + k] = counts[lo + k] * inv
        residual = total - mass
        if mode == ALLNTS or renorm or residual == 0:
            continue
        # TAIL: the residual to one token outside the top r
        probs[i, off + r] = residual * inv
        if not (label_in_top or label_free):
            continue  # it stays on the label
        tail_mass = residual
        if not complete:
            tail_mass = _mass(counts, lo + kept, hi, residual) if hi > lo + kept else 0
            if tail_mass < 0:
                return BAD_ENTRIES
        if tail_mass > 0:
            h = keys[i]
            if label_free:
                h = splitmix64(h ^ np.uint64(salt))
            k = tail_entry(counts, prefix, lo + kept, hi, np.int64(h % np.uint64(tail_mass)))
            t = np.int64(next_ids[k])
            if t < 0 or t >= vocab_size:
                return BAD_TOKEN
            ids[i, off + r] = t
    return OK


@njit(cache=True, nogil=True)
def count_prefix(counts):
    """P[b] = sum(counts[:b * PREFIX_BLOCK]) for b = 0 .. E // PREFIX_BLOCK: lets a tail draw
    skip whole blocks of a long distribution (E / 8 bytes)."""
    n = counts.shape[0]
    out = np.empty(n // PREFIX_BLOCK + 1, np.int64)
    s = 0
    for i in range(n):
        if i % PREFIX_BLOCK == 0:
            out[i // PREFIX_BLOCK] = s
        s += np.int64(counts[i])
    if n % PREFIX_BLOCK == 0:
        out[n // PREFIX_BLOCK] = s
    return out


@njit(cache=True, nogil=True)
def tail_entry(counts, prefix, start, hi, u):
    """The first entry k in [start, hi) with counts[start] + ... + counts[k] > u (else hi - 1);
    with ``prefix`` (:func:`count_prefix`, may be empty) in O(log + PREFIX_BLOCK) steps."""
    j = start
    acc = 0
    if prefix.shape[0] and hi - start > 2 * PREFIX_BLOCK:
        base = prefix[start // PREFIX_BLOCK]
        for i in range((start // PREFIX_BLOCK) * PREFIX_BLOCK, start):
            base += np.int64(counts[i])
        target = base + u  # find the first k with prefix(k + 1) > target
        b_lo, b_hi = start // PREFIX_BLOCK + 1, (hi - 1) // PREFIX_BLOCK
        found = -1
        while b_lo <= b_hi:  # the last block starting inside (start, hi) with P[b] <= target
            mid = (b_lo + b_hi) // 2
            if prefix[mid] <= target:
                found = mid
                b_lo = mid + 1
            else:
                b_hi = mid - 1
        if found >= 0:
            j = found * PREFIX_BLOCK
            acc = prefix[found] - base
    while j < hi - 1 and acc + np.int64(counts[j]) <= u:
        acc += np.int64(counts[j])
        j += 1
    return j


@njit(cache=True, nogil=True)
def _mass(counts, a, b, limit):
    """counts[a] + ... + counts[b - 1], or -1 if a count is not positive or the sum exceeds
    ``limit`` (checked before each addition: no overflow whatever the file holds)."""
    mass = np.int64(0)
    for k in range(a, b):
        c = np.int64(counts[k])
        if c <= 0 or c > limit - mass:
            return -1
        mass += c
    return mass


@njit(cache=True, nogil=True)
def init_rows(labels, ids, probs):
    """Every slot of row i <- (labels[i], 0): what a target leaves where it puts no entry."""
    for i in range(ids.shape[0]):
        for k in range(ids.shape[1]):
            ids[i, k] = labels[i]
            probs[i, k] = 0.0


@njit(cache=True, nogil=True, error_model="numpy")
def mix_weights(mixing, los, his, tots, rows, w):
    """w[j, i] <- weight of order j (ascending) at position i under ``mixing``
    (:class:`Mixing`), whose context's entry range and total are in row ``rows[j]`` of
    ``los``, ``his`` and ``tots``; D = his - los is the context's number of distinct next
    tokens, T its total (Kneser-Ney: its undiscounted total). Backoff: weight 1 on the
    highest order with T >= min_count (else the lowest). Witten-Bell: from the highest order
    down, each keeps lambda = T / (T + escape * D) of what is left, Kneser-Ney 1 - lambda
    with lambda = discount * D / T; the lowest order takes the rest. Fixed: the lambdas."""
    k, n = rows.shape[0], w.shape[1]
    method, lambdas, discounts = mixing.method, mixing.lambdas, mixing.discounts
    if method == BACKOFF:
        for i in range(n):
            chosen = 0
            for j in range(k - 1, -1, -1):
                if tots[rows[j], i] >= mixing.min_count:
                    chosen = j
                    break
            for j in range(k):
                w[j, i] = 1.0 if j == chosen else 0.0
    elif method == WITTEN_BELL or method == KNESER_NEY:
        rest = w[0]  # what is left for the lower orders: at the end, the lowest one's weight
        rest[:] = 1.0
        for j in range(k - 1, 0, -1):
            r = rows[j]
            for i in range(n):
                t = np.float64(tots[r, i])
                d = np.float64(his[r, i] - los[r, i])
                if method == WITTEN_BELL:
                    lam = t / (t + mixing.escape * d) if t > 0 else 0.0  # (pruned: unseen)
                    w[j, i] = rest[i] * lam
                    rest[i] *= 1.0 - lam
                else:
                    lam = discounts[j] * d / t
                    w[j, i] = rest[i] * (1.0 - lam)
                    rest[i] *= lam
    else:
        for j in range(k):
            w[j, :] = lambdas[j]
    for j in range(k - 1, 0, -1):  # an unseen order (T = 0: pruned) gives its weight down
        r = rows[j]
        for i in range(n):
            if tots[r, i] == 0 and w[j, i] != 0.0:
                w[j - 1, i] += w[j, i]
                w[j, i] = 0.0


@njit(cache=True, nogil=True)
def soft_weights(tots, rows, k, out):
    """out[i] <- float32(t / (t + k)), t = float64(T): the soft-term weight of each position
    (spec/TARGETS.md, "Soft-term weight"), T its total in the top order's row of ``tots``
    (``rows[-1]``; ``rows`` ascending orders): 0, so w = 0, where pruning left that context
    out."""
    top = rows[rows.shape[0] - 1]
    for i in range(out.shape[0]):
        t = np.float64(np.int64(tots[top, i]))
        out[i] = np.float32(t / (t + k))

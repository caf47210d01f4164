"""Per-position soft targets (spec/TARGETS.md), computed in compiled code for whole batches.

Torch-free: returns numpy arrays; :mod:`ngramds.torch` wraps them for training.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .errors import FormatError

ONEHOT, ALLNTS, TAIL, RENORM = 0, 1, 2, 3
MODES = {"onehot": ONEHOT, "allnts": ALLNTS, "coconts-tail": TAIL, "coconts-renorm": RENORM}
_ERRORS = {1: "a position refers to a context id past the table",
           2: "entry offsets are out of range or unsorted",
           3: "a distribution is empty or larger than its context total",
           4: "a sample runs past the end of the token stream",
           5: "a token id is >= the vocabulary size"}

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)
PREFIX_BLOCK = 64
NO_PREFIX = np.zeros(0, np.int64)


@njit(cache=True)
def splitmix64(x):
    """SplitMix64 finaliser: a well-mixed 64-bit hash of ``x`` (uint64)."""
    x = (x + np.uint64(0x9E3779B97F4A7C15)) & _M64
    x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _M64
    x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _M64
    return x ^ (x >> np.uint64(31))


@njit(cache=True)
def position_key(seed, epoch, position):
    """The random 64-bit word of (seed, epoch, position) used by the tail draw."""
    return splitmix64(np.uint64(seed) ^ splitmix64(np.uint64(epoch) ^
                                                  splitmix64(np.uint64(position))))


@njit(cache=True)
def fill_targets(tokens, position_contexts, entry_offsets, next_ids, counts, totals,
                 sample_starts, seq_len, mode, r, seed, epoch, complete, vocab_size,
                 input_ids, labels, target_ids, target_probs, prefix):
    """Fill batch arrays for samples starting at ``sample_starts`` (token offsets).

    ``complete``: the file stores every next token (no top-k), so tail mass = total - top mass.
    Returns 0, or an error code (see _ERRORS) when the file's arrays are inconsistent: every
    index read from the file is checked before it is followed.
    """
    n = tokens.shape[0]
    num_contexts = totals.shape[0]
    num_entries = next_ids.shape[0]
    los = np.empty(seq_len, np.int64)
    his = np.empty(seq_len, np.int64)
    tots = np.empty(seq_len, np.int64)
    for b in range(sample_starts.shape[0]):
        s = sample_starts[b]
        if s < 0 or s + seq_len >= n:
            return 4
        bad = 0
        for i in range(seq_len):
            t = np.int64(tokens[s + i])
            bad |= t >= vocab_size
            input_ids[b, i] = t
        for i in range(seq_len):
            labels[b, i] = input_ids[b, i + 1] if i + 1 < seq_len else tokens[s + seq_len]
        if bad or labels[b, seq_len - 1] >= vocab_size:
            return 5
        if mode == ONEHOT:
            continue
        # gather first: independent loads of many positions overlap in the memory system
        for i in range(seq_len):
            c = np.int64(position_contexts[s + i + 1])
            if c >= num_contexts:
                return 1
            los[i] = entry_offsets[c]
            his[i] = entry_offsets[c + 1]
            tots[i] = totals[c]
        # validate the entries a target will read (this also pulls them into the cache)
        width = target_ids.shape[1] if mode == ALLNTS else r
        for i in range(seq_len):
            lo, hi = los[i], his[i]
            if lo >= hi or hi > num_entries or tots[i] == 0:
                return 3 if lo == hi or tots[i] == 0 else 2
            for k in range(lo, min(hi, lo + width)):
                if np.int64(next_ids[k]) >= vocab_size:
                    return 5
                if counts[k] == 0:
                    return 3
        for i in range(seq_len):
            code = _position_target(next_ids, counts, los[i], his[i], tots[i], labels[b, i],
                                    s + i + 1, seed, epoch, 0, mode, r, False, complete,
                                    vocab_size, 1.0,
                                    target_ids, target_probs, b * seq_len + i, 0,
                                    target_ids.shape[1], prefix)
            if code:
                return code
    return 0


@njit(cache=True)
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


@njit(cache=True)
def _tail_entry(counts, prefix, start, hi, u):
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


@njit(cache=True)
def _position_target(next_ids, counts, lo, hi, total, label, p, seed, epoch, salt, mode, r,
                     label_free, complete, vocab_size, weight, ids, probs, row, off, width,
                     prefix):
    """Target of one position whose context's entries are [lo, hi), scaled by ``weight``, into
    slots [off, off + width) of row ``row`` of the flattened outputs (spec/TARGETS.md).

    A tail draw uses the word of (``seed``, ``epoch``, ``p``), mixed with ``salt`` when
    ``label_free`` (lower orders of a mixture: the residual goes to a tail draw whatever the
    label is, and ``renorm`` is ignored); it is hashed only when a draw is made."""
    for k in range(off, off + width):
        ids[row, k] = label
        probs[row, k] = 0.0
    if mode == ALLNTS:
        kept = min(hi - lo, width)
        mass = 0
        for k in range(kept):
            mass += np.int64(counts[lo + k])
        if mass == 0 or mass > total:
            return 3
        inv = weight / mass
        for k in range(kept):
            ids[row, off + k] = next_ids[lo + k]
            probs[row, off + k] = counts[lo + k] * inv
        return 0
    top = min(hi - lo, r)
    top_mass = 0
    label_in_top = False
    for k in range(top):
        top_mass += np.int64(counts[lo + k])
        if np.int64(next_ids[lo + k]) == label:
            label_in_top = True
    if top_mass == 0 or top_mass > total:
        return 3
    if mode == RENORM and not label_free:
        if label_in_top:
            inv = weight / top_mass
            for k in range(top):
                ids[row, off + k] = next_ids[lo + k]
                probs[row, off + k] = counts[lo + k] * inv
        else:
            probs[row, off + r] = weight
        return 0
    # TAIL: top r intact, residual mass to one token outside the top r
    inv = weight / total
    for k in range(top):
        ids[row, off + k] = next_ids[lo + k]
        probs[row, off + k] = counts[lo + k] * inv
    residual = total - top_mass
    if residual == 0:
        return 0
    probs[row, off + r] = residual * inv
    if label_in_top or label_free:
        tail_mass = residual
        if not complete:
            tail_mass = 0
            for k in range(lo + top, hi):
                tail_mass += np.int64(counts[k])
        if tail_mass > 0:
            h = position_key(seed, epoch, p)
            if label_free:
                h = splitmix64(h ^ np.uint64(salt))
            k = _tail_entry(counts, prefix, lo + top, hi, np.int64(h % np.uint64(tail_mass)))
            if np.int64(next_ids[k]) >= np.int64(vocab_size):
                return 5
            ids[row, off + r] = next_ids[k]
    return 0


def check(code: int) -> None:
    """Raise for a non-zero code of :func:`fill_targets`."""
    if code:
        raise FormatError(f"{_ERRORS.get(code, 'inconsistent file')}; the file is damaged "
                          "(run `ngramds verify`)")


def target_width(mode: int, r: int, max_k: int) -> int:
    """Slots K per position: r+1 for CoCoNTs, max_k for AllNTs, 0 for one-hot."""
    return {ONEHOT: 0, ALLNTS: max_k, TAIL: r + 1, RENORM: r + 1}[mode]


def output_shapes(batch: int, seq_len: int, mode: int, r: int, max_k: int,
                  blocks: int = 1) -> list:
    """(shape, dtype) of input_ids, labels, target_ids and target_probs (``blocks`` slot
    blocks per position: one per order of a mixture)."""
    k = target_width(mode, r, max_k) * blocks
    return [((batch, seq_len), np.int64), ((batch, seq_len), np.int64),
            ((batch, seq_len, k), np.int64), ((batch, seq_len, k), np.float32)]


def widest(table) -> int:
    """Entries of the table's largest stored distribution."""
    return int(np.diff(table.entry_offsets.astype(np.int64)).max(initial=0))


def table_prefix(table) -> np.ndarray:
    """:func:`count_prefix` of a table's counts, computed once per table and process (only
    for tables whose widest distribution is long enough to need it)."""
    prefix = getattr(table, "_count_prefix", None)
    if prefix is None:
        long = widest(table) > 2 * PREFIX_BLOCK
        prefix = count_prefix(table.counts) if long else NO_PREFIX
        table._count_prefix = prefix
    return prefix


def compute_targets(f, sample_starts, seq_len: int, mode: int, r: int = 8, max_k: int = 0,
                    seed: int = 0, epoch: int = 0, out: list | None = None,
                    order: int | None = None):
    """(input_ids, labels, target_ids, target_probs) numpy arrays for a batch of samples from
    the table of ``order`` (default: the highest), written into ``out`` (arrays of
    :func:`output_shapes`) when given."""
    starts = np.ascontiguousarray(sample_starts, dtype=np.int64)
    b = starts.size
    t = f.table(order)
    shapes = output_shapes(b, seq_len, mode, r, max_k)
    if out is None:
        out = [np.empty(shape, dtype) for shape, dtype in shapes]
    input_ids, labels, target_ids, target_probs = out
    k = shapes[2][0][2]
    check(fill_targets(f.tokens, t.position_contexts, t.entry_offsets, t.next_ids, t.counts,
                       t.totals, starts, seq_len, mode, r, seed, epoch, t.top_k is None,
                       f.vocab_size, input_ids, labels, target_ids.reshape(b * seq_len, k),
                       target_probs.reshape(b * seq_len, k), table_prefix(t)))
    return input_ids, labels, target_ids, target_probs

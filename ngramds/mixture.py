"""Targets from several stored orders: backoff, Witten-Bell or fixed interpolation
(spec/TARGETS.md, "Mixtures of orders"), in compiled code for whole batches."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit

from . import targets as T
from .errors import InputError

BACKOFF, WITTEN_BELL, FIXED = 1, 2, 3
TILE_ROWS = 1024  # positions per tile: a tile's targets stay in the cache across orders
MIXINGS = {"backoff": BACKOFF, "witten-bell": WITTEN_BELL, "fixed": FIXED}


@njit(cache=True, nogil=True)
def gather(position_contexts, entry_offsets, totals, num_entries, positions, los, his, tots):
    """los/his/tots[i] <- entry range and total of the context of ``positions[i]``.
    Returns 0 or a targets error code (every index is checked before it is followed)."""
    num_contexts = totals.shape[0]
    codes = np.zeros(positions.shape[0], np.int64)
    for i in range(positions.shape[0]):
        c = np.int64(position_contexts[positions[i]])
        if c >= num_contexts:
            codes[i] = 1
            continue
        lo, hi, t = np.int64(entry_offsets[c]), np.int64(entry_offsets[c + 1]), totals[c]
        if lo >= hi or hi > num_entries or t == 0:
            codes[i] = 3 if lo == hi or t == 0 else 2
            continue
        los[i], his[i], tots[i] = lo, hi, t
    return codes.max() if codes.shape[0] else 0


@njit(cache=True, nogil=True)
def mix_weights(method, his_minus_los, tots, min_count, lambdas, w):
    """w[j, i] <- weight of order j (ascending) at position i. ``his_minus_los`` is the number
    of stored next tokens of each context (Witten-Bell's distinct count)."""
    k, n = tots.shape
    for i in range(n):
        if method == BACKOFF:
            chosen = 0
            for j in range(k - 1, -1, -1):
                if tots[j, i] >= min_count:
                    chosen = j
                    break
            for j in range(k):
                w[j, i] = 1.0 if j == chosen else 0.0
        elif method == WITTEN_BELL:
            rest = 1.0
            for j in range(k - 1, 0, -1):
                lam = tots[j, i] / (tots[j, i] + his_minus_los[j, i])
                w[j, i] = rest * lam
                rest *= 1.0 - lam
            w[0, i] = rest
        else:
            for j in range(k):
                w[j, i] = lambdas[j]


@njit(cache=True, nogil=True)
def fill_component(next_ids, counts, los, his, tots, labels, positions, w, mode, r, seed,
                   epoch, salt, label_free, complete, vocab_size, off, width, ids, probs,
                   prefix):
    """Add one order's target, scaled by its weight ``w[i]``, into slots [off, off+width) of
    every row i (rows of weight 0 are left as they are). Serial (Numba's thread pool does not
    survive the fork of DataLoader workers); tiles run in Python threads instead."""
    n = positions.shape[0]
    span = width if mode == T.ALLNTS else r
    # validate every entry a target will read first: independent loads of many positions
    # overlap in the memory system, and the second loop finds them in the cache
    for i in range(n):
        if w[i] == 0.0:
            continue
        for k in range(los[i], min(his[i], los[i] + span)):
            if np.int64(next_ids[k]) >= vocab_size:
                return 5
            if counts[k] == 0:
                return 3
    for i in range(n):
        if w[i] == 0.0:
            continue
        code = T._position_target(next_ids, counts, los[i], his[i], tots[i], labels[i],
                                  positions[i], seed, epoch, salt, mode, r, label_free,
                                  complete, vocab_size, w[i], ids, probs, i, off, width, prefix)
        if code:
            return code
    return 0


def check_mixing(f, mixing: str, orders, lambdas, min_count: int) -> tuple[list[int], np.ndarray]:
    """Validated (orders ascending, normalised lambdas in that order) for a file; InputError
    otherwise. ``lambdas`` pair with ``orders`` as given. ``mixing="none"`` keeps only the
    highest of ``orders``."""
    if mixing != "none" and mixing not in MIXINGS:
        raise InputError(f"mixing must be one of {('none', *MIXINGS)}, got {mixing!r}")
    given = list(f.orders) if orders is None else [int(o) for o in orders]
    if len(set(given)) != len(given):
        raise InputError(f"orders must be distinct, got {given}")
    orders = sorted(given)
    missing = [o for o in orders if o not in f.tables]
    if missing or not orders:
        raise InputError(f"orders {missing or orders} are not stored in {f.path} (stored: "
                         f"{', '.join(map(str, f.orders))}); build with --orders")
    if mixing == "none":
        orders = orders[-1:]
    if mixing == "backoff" and (not isinstance(min_count, int) or min_count < 1):
        raise InputError(f"min_count must be a positive integer, got {min_count!r}")
    weights = np.zeros(len(orders))
    if mixing == "fixed":
        if lambdas is None or len(lambdas) != len(orders):
            raise InputError(f"mixing='fixed' needs one lambda per order {orders}, got "
                             f"{lambdas!r}")
        weights = np.asarray(lambdas, dtype=np.float64)[np.argsort(given)]
        if not np.all(np.isfinite(weights)) or weights.min() < 0 or weights.sum() <= 0:
            raise InputError(f"lambdas must be non-negative with a positive sum, got {lambdas}")
        weights = weights / weights.sum()
    return orders, weights


def blocks(mixing: str, orders: list[int]) -> int:
    """Slot blocks of a mixed target: one per order, or one for backoff (a single order)."""
    return 1 if mixing == "backoff" else len(orders)


def compute_mixture_targets(f, sample_starts, seq_len: int, mode: int, orders: list[int],
                            mixing: str, lambdas: np.ndarray, min_count: int = 2, r: int = 8,
                            max_k: int = 0, seed: int = 0, epoch: int = 0,
                            out: list | None = None, threads: int = 1):
    """Like :func:`ngramds.targets.compute_targets`, with targets mixed from ``orders``;
    ``threads`` > 1 computes tiles of positions concurrently (the kernels release the GIL)."""
    starts = np.ascontiguousarray(sample_starts, dtype=np.int64)
    b = starts.size
    nblocks = blocks(mixing, orders)
    width = T.target_width(mode, r, max_k)
    shapes = T.output_shapes(b, seq_len, mode, r, max_k, nblocks)
    if out is None:
        out = [np.empty(shape, dtype) for shape, dtype in shapes]
    input_ids, labels, target_ids, target_probs = out
    T.check(T.fill_targets(f.tokens, f.position_contexts, f.entry_offsets, f.next_ids,
                           f.counts, f.totals, starts, seq_len, T.ONEHOT, r, seed, epoch, True,
                           f.vocab_size, input_ids, labels, target_ids, target_probs,
                           T.NO_PREFIX))
    n = b * seq_len
    tables = [f.table(order) for order in orders]
    job = _Tiles(f.vocab_size, tables, orders, [T.table_prefix(t) for t in tables],
                 labels.reshape(n), (starts[:, None] + np.arange(1, seq_len + 1)).reshape(n),
                 target_ids.reshape(n, -1), target_probs.reshape(n, -1), mixing, lambdas,
                 min_count, mode, r, seed, epoch, nblocks, width)
    tiles = [slice(a, min(n, a + TILE_ROWS)) for a in range(0, n, TILE_ROWS)]
    if threads > 1 and len(tiles) > 1:
        list(_pool(threads).map(job, tiles))
    else:
        for z in tiles:
            job(z)
    return input_ids, labels, target_ids, target_probs


class _Tiles:
    """Computes the mixed targets of one tile of rows: every order writes the tile's rows while
    they are still in the cache."""

    def __init__(self, vocab_size, tables, orders, prefixes, labels, positions, ids, probs,
                 mixing, lambdas, min_count, mode, r, seed, epoch, nblocks, width):
        self.__dict__.update(locals())
        del self.__dict__["self"]

    def __call__(self, z: slice) -> None:
        k, top, rows = len(self.orders), self.orders[-1], z.stop - z.start
        ids, probs = self.ids[z], self.probs[z]
        ids[:] = self.labels[z, None]
        probs[:] = 0.0
        los, his, tots = (np.empty((k, rows), np.int64) for _ in range(3))
        for j, t in enumerate(self.tables):
            T.check(gather(t.position_contexts, t.entry_offsets, t.totals, t.next_ids.size,
                           self.positions[z], los[j], his[j], tots[j]))
        w = np.empty((k, rows), np.float64)
        mix_weights(MIXINGS[self.mixing], his - los, tots, self.min_count, self.lambdas, w)
        for j, (order, t) in enumerate(zip(self.orders, self.tables)):
            off = 0 if self.nblocks == 1 else j * self.width
            T.check(fill_component(t.next_ids, t.counts, los[j], his[j], tots[j],
                                   self.labels[z], self.positions[z], w[j], self.mode, self.r,
                                   self.seed, self.epoch, order, order != top,
                                   t.top_k is None, self.vocab_size, off, self.width, ids,
                                   probs, self.prefixes[j]))


_POOL: tuple | None = None  # (pid, threads, executor): a forked child makes its own


def _pool(threads: int) -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None or _POOL[0] != os.getpid() or _POOL[1] != threads:
        _POOL = (os.getpid(), threads, ThreadPoolExecutor(threads))
    return _POOL[2]

"""Batches of targets of one file under one configuration, from the compiled kernels: windows,
then per tile of positions every order's gather, the mixture weights and each order's part
(spec/TARGETS.md). Torch-free."""
from __future__ import annotations

import os
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np

from ..errors import FormatError, InputError
from ..file.reader import document_starts
from ..validation import check_int
from . import kernels
from .config import Plan, TargetConfig, widest_distribution

TILE_ROWS = 4096  # positions per tile: a tile's targets stay in the cache across orders
_ROWS = np.arange(TILE_ROWS)
_NO_LINKS = np.zeros(0, np.int64)


class TargetBatch(NamedTuple):
    """Arrays of a batch of B samples of L positions; K = :attr:`Plan.slots`."""

    input_ids: np.ndarray     # int64 [B, L]
    labels: np.ndarray        # int64 [B, L]
    target_ids: np.ndarray    # int64 [B, L, K]
    target_probs: np.ndarray  # float32 [B, L, K]


def batch_shapes(plan: Plan, batch: int, seq_len: int) -> list:
    """(shape, dtype) of each array of a :class:`TargetBatch`."""
    k = plan.slots
    return [((batch, seq_len), np.int64), ((batch, seq_len), np.int64),
            ((batch, seq_len, k), np.int64), ((batch, seq_len, k), np.float32)]


class Targets:
    """Computes targets of the file ``f`` under ``config`` (checked against the file once)."""

    def __init__(self, f, config: TargetConfig = TargetConfig()):
        self.file, self.config = f, config
        self.plan = config.resolve(f)
        self.tables = [f.table(o) for o in self.plan.orders]
        self.prefixes = [table_prefix(t) for t in self.tables]
        # the tables from the highest stored one down to the lowest order used, each with the
        # ids its contexts are read from (spec/FORMAT.md, section 6)
        chain = f.chain(self.plan.orders[0])
        self.chain = [(chain[0], chain[0].position_contexts)] + \
            [(low, high.lower_contexts) for high, low in zip(chain, chain[1:])]
        self.rows = np.array([chain.index(t) for t in self.tables], np.int64)
        self.kn = kneser_ney(f, self.plan) if self.plan.mixing == "kneser-ney" else None
        self.mixing = kernels.mixing(self.plan, None if self.kn is None else
                                     [kn.discount for kn in self.kn])

    def compute(self, sample_starts, seq_len: int, seed: int = 0, epoch: int = 0,
                out: list | None = None, threads: int = 1,
                soft_weights: np.ndarray | None = None) -> TargetBatch:
        """Targets of the samples starting at token offsets ``sample_starts``, written into
        ``out`` (arrays of :func:`batch_shapes`) when given; ``threads`` > 1 computes tiles of
        positions concurrently (the kernels release the GIL). ``soft_weights`` (float32
        [B, L], needs :attr:`Plan.soft_weight`): each position's soft-term weight, filled."""
        starts = np.ascontiguousarray(sample_starts, dtype=np.int64)
        b, f, plan = starts.size, self.file, self.plan
        if out is None:
            out = [np.empty(shape, dtype) for shape, dtype in batch_shapes(plan, b, seq_len)]
        batch = TargetBatch(*out)
        kernels.check(kernels.fill_windows(f.tokens, starts, seq_len, f.vocab_size,
                                           batch.input_ids, batch.labels))
        if plan.mode == kernels.ONEHOT:
            return batch
        n = b * seq_len
        if soft_weights is not None and (soft_weights.shape != (b, seq_len) or
                                         not soft_weights.flags.c_contiguous):
            raise InputError(f"soft_weights must be a contiguous [{b}, {seq_len}] array")
        positions = (starts[:, None] + np.arange(1, seq_len + 1)).reshape(n)
        self.compute_at(positions, batch.labels.reshape(n), seed, epoch,
                        batch.target_ids.reshape(n, -1), batch.target_probs.reshape(n, -1),
                        threads, soft_weights=None if soft_weights is None else
                        soft_weights.reshape(n))
        return batch

    def compute_at(self, positions: np.ndarray, labels: np.ndarray, seed: int, epoch: int,
                   target_ids: np.ndarray, target_probs: np.ndarray, threads: int = 1,
                   contexts: np.ndarray | None = None,
                   soft_weights: np.ndarray | None = None) -> None:
        """Targets of the label tokens ``labels`` [n] at token positions ``positions`` [n]
        (int64; positions in 0..N-1, labels the tokens there), written into ``target_ids`` /
        ``target_probs`` [n, K]. ``contexts`` [n]: the highest stored table's context ids of
        the positions when the caller has them (a device batch; checked like the file's),
        else read from the file (searched in a compact one). ``soft_weights`` [n] (float32):
        each position's soft-term weight (spec/TARGETS.md), filled when given."""
        n = positions.shape[0]
        if soft_weights is not None:
            _check_soft_weights(self.plan, soft_weights, n)
        if self.plan.mode == kernels.ONEHOT or n == 0:
            return
        if int(positions.min()) < 0 or int(positions.max()) >= self.file.num_tokens:
            raise InputError("target positions must lie in the token stream")
        job = _Tiles(self, labels, positions, target_ids, target_probs,
                     _word(seed, "seed"), _word(epoch, "epoch"))
        job.weights = soft_weights
        tiles = [slice(a, min(n, a + TILE_ROWS)) for a in range(0, n, TILE_ROWS)]
        if contexts is not None:
            if contexts.shape != (n,):
                raise InputError(f"contexts must be [{n}], one per position")
            job.top = contexts
        elif self.file.pruned and self.chain[0][1] is not None:  # global ids (FORMAT.md)
            job.top = self.file.global_ids(positions)
        elif self.chain[0][1] is None:  # a compact file: the contexts searched a run at a time
            job.top = np.empty(n, np.int64)
            step = -(-n // max(1, threads))
            runs = [slice(a, min(n, a + step)) for a in range(0, n, step)]

            def search(z: slice) -> None:
                job.top[z] = self._searched(positions[z])
            if threads > 1:
                list(_pool(threads).map(search, runs))
            else:
                search(slice(0, n))
        if threads > 1 and len(tiles) > 1:
            list(_pool(threads).map(job, tiles))
        else:
            for z in tiles:
                job(z)

    def device_inputs(self, sample_starts, seq_len: int) -> dict[str, np.ndarray]:
        """What the device path ships for the samples starting at ``sample_starts`` instead
        of targets (a slice of the file, no compute), each no wider than its values need
        (:func:`transit_dtype`; the device widens them): ``window`` [B, L+1] of tokens, and

        - ``context_ids`` [B, L], the highest stored order's context ids (lower orders
          follow on the device by ``lower_contexts``), read from the file;
        - in a compact file, ``history`` [B, m] (the m tokens before each window, 0 before the
          stream) and ``context_lengths`` [B, L] (uint8: each position's context length), from
          which the device finds the contexts (:func:`packed_keys`), when its keys fit 63
          bits; else ``context_ids`` searched here."""
        starts = np.ascontiguousarray(sample_starts, dtype=np.int64)
        b, f = starts.size, self.file
        top = f.table()
        windows = np.empty((b, seq_len + 1), transit_dtype(f.vocab_size))
        kernels.check(kernels.copy_slices(f.tokens, starts, 0, f.vocab_size,
                                          kernels.BAD_TOKEN, windows[:, :, None], 0))
        if top.position_contexts is None and key_radix(top) is not None and not f.pruned:
            m = top.order - 1
            positions = starts[:, None] + np.arange(1, seq_len + 1)
            doc_start = document_starts(f.doc_offsets, positions)
            lengths = np.minimum(m, positions - doc_start).astype(np.uint8)
            before = starts[:, None] + np.arange(-m, 0)
            history = np.where(before >= 0, f.tokens[before.clip(0)], 0).astype(windows.dtype)
            if history.size and int(history.max()) >= f.vocab_size:
                kernels.check(kernels.BAD_TOKEN)
            return {"window": windows, "history": history, "context_lengths": lengths}
        ids = np.empty((b, seq_len, 1), transit_dtype(f.num_ids))
        if top.position_contexts is None:  # keys too wide for the device: searched here
            found = self._searched((starts[:, None] + np.arange(1, seq_len + 1)).reshape(-1))
            ids[:, :, 0] = found.reshape(b, seq_len)
        else:
            kernels.check(kernels.copy_slices(top.position_contexts, starts, 1,
                                              f.num_ids, kernels.BAD_CONTEXT, ids, 0))
        return {"window": windows, "context_ids": ids[:, :, 0]}

    def _searched(self, positions: np.ndarray) -> np.ndarray:
        """The highest table's context ids of ``positions``, found from the tokens (compact
        files; :meth:`NgramFile.contexts_at`; pruned files: global ids)."""
        f = self.file
        return f.global_ids(positions) if f.pruned else f.contexts_at(positions)


class _Tiles:
    """Computes the targets of one tile of rows: every order writes the tile's rows while they
    are still in the cache."""

    def __init__(self, targets: Targets, labels, positions, ids, probs, seed, epoch):
        self.t, self.labels, self.positions = targets, labels, positions
        self.ids, self.probs, self.seed, self.epoch = ids, probs, seed, epoch
        self.top: np.ndarray | None = None  # the highest table's contexts, when known
        self.weights: np.ndarray | None = None  # float32 [n]: the soft-term weights, wanted

    def __call__(self, z: slice) -> None:
        t, plan = self.t, self.t.plan
        k, top, rows = len(plan.orders), plan.orders[-1], z.stop - z.start
        ids, probs, labels, positions = self.ids[z], self.probs[z], self.labels[z], \
            self.positions[z]
        kernels.init_rows(labels, ids, probs)
        chain = len(t.chain)
        ctx, los, his, tots = (np.empty((chain, rows), np.int64) for _ in range(4))
        index = positions  # then each table's contexts, from the highest table down
        for j, (table, source) in enumerate(t.chain):
            if t.file.pruned:  # global ids (spec/FORMAT.md, "Pruned files")
                kernels.check(kernels.gather_pruned(
                    self.top[z], t.file.id_bases[table.order], table.num_contexts,
                    source if j else _NO_LINKS, j > 0, ctx[j - 1] if j else ctx[j],
                    j == chain - 1, table.entry_offsets, table.totals, table.next_ids.size,
                    ctx[j], los[j], his[j], tots[j]))
                continue
            if j == 0 and self.top is not None:  # the highest table's contexts, known
                source, index = self.top[z], _ROWS[:rows]
            kernels.check(kernels.gather(source, table.entry_offsets, table.totals,
                                         table.next_ids.size, index, ctx[j], los[j], his[j],
                                         tots[j]))
            index = ctx[j]
        if self.weights is not None:  # from the stored totals of the orders' contexts
            kernels.soft_weights(tots, t.rows, plan.alpha_count, self.weights[z])
        w = np.empty((k, rows), np.float64)
        keys = np.empty(rows, np.uint64)
        kernels.position_keys(self.seed, self.epoch, positions, keys)
        counts, prefixes = [table.counts for table in t.tables], t.prefixes
        if t.kn is not None:  # Kneser-Ney weighs by the undiscounted (continuation) totals
            for kn, r in zip(t.kn, t.rows):
                tots[r] = kn.base_totals[ctx[r]]
        kernels.mix_weights(t.mixing, los, his, tots, t.rows, w)
        # the orders used, ascending (views of the gathered rows)
        los, his, tots = ([x[r] for r in t.rows] for x in (los, his, tots))
        if t.kn is not None:  # ... and draws from the discounted counts
            tots = [kn.totals[ctx[r]] for kn, r in zip(t.kn, t.rows)]
            counts, prefixes = [kn.counts for kn in t.kn], [kn.prefix for kn in t.kn]
        for j, (order, table) in enumerate(zip(plan.orders, t.tables)):
            off = 0 if plan.blocks == 1 else j * plan.width
            kernels.check(kernels.fill_component(
                table.next_ids, counts[j], los[j], his[j], tots[j], labels, keys, w[j],
                mode=plan.mode, r=plan.top_r, salt=order, label_free=order != top,
                complete=table.top_k is None, vocab_size=t.file.vocab_size, off=off,
                width=plan.width, ids=ids, probs=probs, prefix=prefixes[j]))


def _check_soft_weights(plan: Plan, out: np.ndarray, n: int) -> None:
    """``out`` can take the soft-term weights of n positions under ``plan``; InputError
    otherwise."""
    if not plan.soft_weight:
        raise InputError("soft-term weights need alpha_count > 0 and soft targets")
    if out.shape != (n,) or out.dtype != np.float32:
        raise InputError(f"soft_weights must be float32 [{n}], got {out.dtype} "
                         f"{list(out.shape)}")


KN_SCALE = 1024  # discounts are multiples of 1/KN_SCALE: integer counts in the tail draws


class KneserNeyTable(NamedTuple):
    """One order's part of interpolated Kneser-Ney (spec/TARGETS.md): ``counts`` (int64 [E],
    scaled by KN_SCALE and discounted; the lowest order: its base counts as they are),
    ``totals`` (their sum per context), ``base_totals`` (the undiscounted counts' sum per
    context), ``discount`` (as a fraction of one count) and the tail draws' ``prefix``."""

    counts: np.ndarray
    totals: np.ndarray
    base_totals: np.ndarray
    discount: float
    prefix: np.ndarray


def continuation_counts(low, high) -> np.ndarray:
    """Per entry (h, w) of table ``low`` (order n), N1+(. h w): the number of contexts of the
    order-(n+1) table ``high`` linked to h that have w as an entry (a document start counts
    as one preceding token). Every entry has at least one."""
    v = np.int64(low.vocab_size)

    def keys(table, contexts):
        eo = table.entry_offsets.astype(np.int64)
        owner = np.repeat(contexts, np.diff(eo))
        return owner * v + table.next_ids.astype(np.int64)
    low_keys = keys(low, np.arange(low.num_contexts, dtype=np.int64))
    high_keys = keys(high, high.lower_contexts.astype(np.int64))
    order = np.argsort(low_keys, kind="stable")
    at = np.minimum(np.searchsorted(low_keys[order], high_keys), max(0, low_keys.size - 1))
    if high_keys.size and (not low_keys.size or np.any(low_keys[order][at] != high_keys)):
        raise FormatError("a higher table's entry has no lower entry; the file is damaged")
    return np.bincount(order[at], minlength=low_keys.size).astype(np.int64)


def kneser_ney(f, plan) -> list[KneserNeyTable]:
    """Interpolated Kneser-Ney over ``plan.orders``: the highest order discounts
    its counts, each lower one its continuation counts (from the stored order above it), by
    D = n1 / (n1 + 2 n2) of those counts; the lowest is its continuation distribution."""
    out = []
    for j, order in enumerate(plan.orders):
        table = f.table(order)
        if table.top_k is not None:
            raise InputError("kneser-ney needs complete tables (a file built without --top-k)")
        top = j == len(plan.orders) - 1
        if top:
            base = table.counts.astype(np.int64)
        else:
            if order + 1 not in f.tables:
                raise InputError(f"kneser-ney needs order {order + 1} stored for order "
                                 f"{order}'s continuation counts")
            base = continuation_counts(table, f.table(order + 1))
        eo = table.entry_offsets.astype(np.int64)
        if base.size and int(base.max()) >= 1 << 52:  # (scaled by KN_SCALE in int64)
            raise InputError(f"order {order}: counts too large for kneser-ney")
        n1, n2 = int((base == 1).sum()), int((base == 2).sum())
        d = min(0.9, max(0.1, n1 / (n1 + 2 * n2))) if n1 + n2 else 0.5
        dq = int(round(d * KN_SCALE))
        counts = base * KN_SCALE - dq if j > 0 else base
        base_totals = np.add.reduceat(base, eo[:-1]) if base.size else base
        totals = np.add.reduceat(counts, eo[:-1]) if counts.size else counts
        long = int(np.diff(eo).max(initial=0)) > 2 * kernels.PREFIX_BLOCK
        out.append(KneserNeyTable(counts, totals, base_totals, dq / KN_SCALE,
                                  kernels.count_prefix(counts) if long else kernels.NO_PREFIX))
    return out


def key_radix(table) -> int | None:
    """V, the radix of :func:`packed_keys` of ``table``, or None when its keys would not fit
    63 bits ((m+1) * V^m > 2^63 - 1)."""
    m, v = table.order - 1, table.vocab_size
    return v if (m + 1) * v ** m < 1 << 63 else None


def packed_keys(table) -> np.ndarray:
    """Every context of ``table`` as one int64, ((l * V + t_1) * V + t_2) ... * V + t_m (l its
    length, zero padding after it): ascending in context order (spec/FORMAT.md), so a
    position's context is a search of its key. FormatError unless strictly ascending and
    < V (checked: the device search relies on it)."""
    m, v = table.order - 1, key_radix(table)
    clo = table.context_length_offsets.astype(np.int64)
    keys = np.repeat(np.arange(m + 1, dtype=np.int64), np.diff(clo))
    rows = table.context_tokens
    if rows.size and int(rows.max()) >= table.vocab_size:
        kernels.check(kernels.BAD_TOKEN)
    for i in range(m):
        keys = keys * v + rows[:, i].astype(np.int64)
    if keys.size != table.num_contexts or np.any(np.diff(keys) <= 0):
        raise FormatError("contexts are not in context order; the file is damaged (run "
                          "`ngramds verify`)")
    return keys


def transit_dtype(limit: int) -> np.dtype:
    """The narrowest dtype torch moves that holds the values 0..limit-1: uint16, int32 or
    int64 (torch has no uint32 or uint64 arithmetic worth relying on)."""
    return np.dtype(np.uint16 if limit <= 1 << 16 else np.int32 if limit <= 1 << 31
                    else np.int64)


def _word(x: int, name: str) -> np.uint64:
    """A seed or epoch as the kernels' unsigned 64-bit word."""
    return np.uint64(check_int(name, x, 0, (1 << 64) - 1))


_PREFIXES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # table -> its prefix


def table_prefix(table) -> np.ndarray:
    """:func:`kernels.count_prefix` of a table's counts, computed once per table and process
    (only for tables whose widest distribution is long enough to need it; kept while the
    table lives)."""
    prefix = _PREFIXES.get(table)
    if prefix is None:
        long = widest_distribution(table) > 2 * kernels.PREFIX_BLOCK
        prefix = kernels.count_prefix(table.counts) if long else kernels.NO_PREFIX
        _PREFIXES[table] = prefix
    return prefix


_POOL: tuple | None = None  # (pid, threads, executor): a forked child makes its own


def _pool(threads: int) -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None or _POOL[0] != os.getpid() or _POOL[1] != threads:
        _POOL = (os.getpid(), threads, ThreadPoolExecutor(threads))
    return _POOL[2]

"""The in-memory build of one order's table: sort positions by context, count next tokens,
assemble the CSR distributions (spec/SEMANTICS.md says what is counted)."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..file import format as fmt
from ..progress import Progress
from . import kernels
from .keys import key_bits, key_layout, radix_sort

__all__ = ["build_tables", "TABLE_STAGES"]


class Groups(NamedTuple):
    """Positions grouped by context: ``pos`` sorted by context, group g spanning
    pos[starts[g]:starts[g + 1]] with context ``rows[g]`` of ``lengths[g]`` tokens, ``nxt`` the
    next token of each sorted position (ascending within a group), ``distinct`` next tokens per
    group."""

    pos: np.ndarray
    starts: np.ndarray
    rows: np.ndarray
    lengths: np.ndarray
    nxt: np.ndarray
    distinct: np.ndarray


def _group_by_context(tokens, doc_offsets, positions, m, bits) -> Groups:
    """Sort ``positions`` by context (any length, generic key layout)."""
    words, shifts, used_bits = key_layout(m, bits)
    keys = np.empty((positions.size, len(used_bits)), np.uint64)
    kernels.pack_contexts(tokens, doc_offsets, positions, m, words, shifts, keys)
    keys, pos = radix_sort(keys, positions, used_bits, lsb=False)
    starts = kernels.group_starts(keys, 0, kernels.num_chunks(pos.size))
    rows = np.empty((starts.size - 1, m), tokens.dtype)
    lengths = np.empty(starts.size - 1, np.uint8)
    len_mask = (1 << m.bit_length()) - 1
    kernels.context_rows(tokens, keys, pos, starts, words[0], shifts[0], len_mask, rows, lengths)
    del keys
    nxt = np.empty(pos.size, tokens.dtype)
    distinct = np.empty(starts.size - 1, np.int64)
    kernels.sorted_next_tokens(tokens, pos, starts, nxt, distinct)
    return Groups(pos, starts, rows, lengths, nxt, distinct)


def _group_by_ngram(tokens, doc_offsets, m, bits, pos_dtype) -> list[Groups]:
    """Fast path when an (m+1)-gram fits in 64 bits: sort whole n-grams, so next tokens come
    out sorted within each context. Returns the groups of positions with short contexts
    (document starts), then those with full ones."""
    n = tokens.size
    short = int(np.minimum(np.diff(doc_offsets), m).sum())
    keys = np.empty((n - short, 1), np.uint64)
    full_pos = np.empty(n - short, pos_dtype)
    short_pos = np.empty(short, pos_dtype)
    kernels.pack_ngrams(tokens, doc_offsets, m, bits, keys, full_pos, short_pos,
                        kernels.num_chunks(n))
    short_part = _group_by_context(tokens, doc_offsets, short_pos, m, bits)
    keys, pos = radix_sort(keys, full_pos, [(m + 1) * bits], lsb=True)
    starts = kernels.group_starts(keys, bits, kernels.num_chunks(pos.size))
    rows = np.empty((starts.size - 1, m), tokens.dtype)
    kernels.ngram_context_rows(tokens, pos, starts, rows)
    nxt = np.empty(pos.size, tokens.dtype)
    distinct = np.empty(starts.size - 1, np.int64)
    kernels.ngram_next_tokens(keys, starts, bits, nxt, distinct)
    lengths = np.full(starts.size - 1, m, np.uint8)
    return [short_part, Groups(pos, starts, rows, lengths, nxt, distinct)]


TABLE_STAGES = ("sorting contexts", "counting next tokens", "assembling distributions")


def build_tables(tokens: np.ndarray, doc_offsets: np.ndarray, order: int, vocab_size: int,
                 top_k: int | None = None, progress: Progress | None = None) -> dict:
    """Compute the context table of one order; return its arrays by section name (no prefix)."""
    progress = progress or Progress([], enabled=False)
    n, m = tokens.size, order - 1
    bits = key_bits(vocab_size)
    pos_dtype = np.promote_types(np.uint32, fmt.uint_dtype(n - 1))

    progress.step("sorting contexts")
    if m and (m + 1) * bits <= 64:
        parts = _group_by_ngram(tokens, doc_offsets, m, bits, pos_dtype)
    else:
        parts = [_group_by_context(tokens, doc_offsets, np.arange(n, dtype=pos_dtype), m, bits)]
    # contexts are numbered by length first, so the parts (short, then full) just concatenate
    pos, starts, rows, lengths, nxt, distinct = _concatenate(parts)
    del parts
    num_contexts = starts.size - 1
    length_offsets = np.zeros(m + 2, np.uint64)
    np.cumsum(np.bincount(lengths, minlength=m + 1), out=length_offsets[1:])

    progress.step("counting next tokens")
    position_contexts = np.empty(n, fmt.uint_dtype(max(0, num_contexts - 1)))
    kernels.position_contexts(pos, starts, position_contexts)
    del pos
    kept = distinct if not top_k else np.minimum(distinct, top_k)
    entry_offsets = np.zeros(num_contexts + 1, np.int64)
    np.cumsum(kept, out=entry_offsets[1:])
    del kept
    totals = np.diff(starts)
    max_total = int(totals.max())
    num_entries = int(entry_offsets[-1])

    progress.step("assembling distributions")
    next_ids = np.empty(num_entries, tokens.dtype)
    counts = np.empty(num_entries, fmt.uint_dtype(max_total))
    kernels.fill_entries(nxt, starts, distinct, entry_offsets, next_ids, counts)
    del nxt, distinct, starts
    count_dtype = fmt.uint_dtype(int(counts.max()) if num_entries else 0)
    return {
        "context_length_offsets": length_offsets,
        "context_tokens": rows,
        "entry_offsets": entry_offsets.astype(fmt.uint_dtype(num_entries)),
        "next_ids": next_ids,
        "counts": counts.astype(count_dtype, copy=False),
        "totals": totals.astype(fmt.uint_dtype(max_total)),
        "position_contexts": position_contexts,
    }


def _concatenate(parts: list[Groups]) -> Groups:
    """Join groups of disjoint positions, offsetting ``starts``."""
    if len(parts) == 1:
        return parts[0]
    base = np.cumsum([0] + [p.pos.size for p in parts])
    starts = np.concatenate([p.starts[:-1] + b for p, b in zip(parts, base)] + [base[-1:]])
    return Groups(np.concatenate([p.pos for p in parts]), starts,
                  *(np.concatenate([getattr(p, f) for p in parts])
                    for f in ("rows", "lengths", "nxt", "distinct")))

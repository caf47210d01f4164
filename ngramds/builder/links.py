"""The tables of a file laid out as format 2 stores them (spec/FORMAT.md): every table but the
lowest links each of its contexts to the next lower table (``lower_contexts``); only the
highest table keeps a context id per token position, and a compact file none (its highest
table gets ``prefix_offsets`` instead when the next lower order is stored)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..file import format as fmt
from ..file.writer import SectionSource
from .prune import prune_tables

__all__ = ["file_tables"]


def file_tables(tables: dict[int, dict], spill: Path | None = None,
                compact: bool = False, min_count: dict | None = None) -> dict:
    """The table sections of a file, prefixed and in file order, from each order's sections
    (arrays or :class:`SectionSource`, unprefixed, each with ``position_contexts``). A
    ``compact`` file keeps no position ids at all (its contexts are found from the tokens,
    one token at a time along a window by ``prefix_offsets``).

    A link is the lower table's id at any position of the context (all agree: the lower
    context is the context's last tokens). Links are scattered into an array of the higher
    table's size: in memory, or with ``spill`` a memory-mapped file in that directory (bounded
    builds; random writes, one pass over both tables' position ids). With ``min_count``
    ({order: threshold}), the tables of a pruned file (:func:`.prune.prune_tables`)."""
    if min_count:
        return prune_tables(tables, min_count, spill, compact)
    orders = sorted(tables)
    out = {}
    for low, high in zip([None, *orders], orders):
        sections = dict(tables[high])
        positions = sections.pop("position_contexts")
        if low is not None:
            lower_count = tables[low]["totals"].shape[0]
            sections["lower_contexts"] = _links(
                _chunks(positions), _chunks(tables[low]["position_contexts"]),
                sections["totals"].shape[0],
                fmt.uint_dtype(max(0, lower_count - 1)),
                None if spill is None else Path(spill) / f"links{high}.npy")
        if high == orders[-1] and not compact:
            sections["position_contexts"] = positions
        if high == orders[-1] and compact and low == high - 1:
            length_offsets = np.concatenate(list(_chunks(sections["context_length_offsets"])))
            sections["prefix_offsets"] = _prefix_offsets(
                positions, tables[low]["position_contexts"], length_offsets,
                tables[low]["totals"].shape[0],
                None if spill is None else Path(spill) / f"prefix_offsets{high}.npy")
        out.update({fmt.table_prefix(high) + name: s for name, s in sections.items()})
    return out


def _links(high, low, num_contexts: int, dtype, spill: Path | None) -> np.ndarray:
    """links[high[p]] = low[p] for every p: two position id sequences as chunk iterables
    (``high`` may be the shorter)."""
    links = np.zeros(num_contexts, dtype) if spill is None else \
        np.lib.format.open_memmap(spill, "w+", dtype, (num_contexts,))
    for h, lo in _aligned(high, low):
        links[h] = lo
    return links


def _prefix_offsets(high, low, length_offsets, lower_count: int, spill: Path | None):
    """``prefix_offsets`` of the highest table (spec/FORMAT.md): the contexts made of lower
    context c' and one more token are ids [po[c'], po[c'+1]). The first tokens of the context
    of position p are the lower context of p-1, so each context's lower prefix is scattered
    from both tables' position ids shifted by one (the empty context, id 0, gets a
    meaningless value: it is no extension); then the start of every lower context's run."""
    count = int(length_offsets[-1])
    prefixes = _links(_shifted(_chunks(high)), _chunks(low), count,
                      fmt.uint_dtype(max(0, lower_count - 1)),
                      None if spill is None else spill.with_suffix(".prefixes.npy"))
    first = int(length_offsets[1])  # contexts of length >= 1 extend a lower context
    dtype, shape = fmt.uint_dtype(count), (lower_count + 1,)
    out = np.empty(shape, dtype) if spill is None else \
        np.lib.format.open_memmap(spill, "w+", dtype, shape)
    for a in range(0, lower_count, 1 << 22):  # (bounded memory: a block at a time, searched
        ids = np.arange(a, min(a + (1 << 22), lower_count), dtype=prefixes.dtype)  # uncopied)
        out[a:a + ids.size] = np.searchsorted(prefixes[first:], ids, side="left") + first
    out[lower_count] = count
    return out


def _shifted(chunks):
    """The chunks of a sequence without its first value."""
    first = True
    for chunk in chunks:
        if first and chunk.size:
            chunk, first = chunk[1:], False
        yield chunk


def _chunks(section):
    return section.chunks() if isinstance(section, SectionSource) else [section]


def _aligned(a_chunks, b_chunks):
    """Equal-length pieces of two chunked sequences of the same values' positions."""
    a_iter, b_iter = iter(a_chunks), iter(b_chunks)
    a = b = np.empty(0, np.uint8)
    while True:
        if not a.size:
            a = next(a_iter, None)
            if a is None:
                return
            continue
        if not b.size:
            b = next(b_iter)
            continue
        k = min(a.size, b.size)
        yield a[:k], b[:k]
        a, b = a[k:], b[k:]

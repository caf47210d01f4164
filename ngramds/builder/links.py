"""The tables of a file laid out as format 2 stores them (spec/FORMAT.md): every table but the
lowest links each of its contexts to the next lower table (``lower_contexts``); only the
highest table keeps a context id per token position."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..file import format as fmt
from ..file.writer import SectionSource

__all__ = ["file_tables"]


def file_tables(tables: dict[int, dict], spill: Path | None = None,
                compact: bool = False) -> dict:
    """The table sections of a file, prefixed and in file order, from each order's sections
    (arrays or :class:`SectionSource`, unprefixed, each with ``position_contexts``). A
    ``compact`` file keeps no position ids at all (its contexts are found from the tokens).

    A link is the lower table's id at any position of the context (all agree: the lower
    context is the context's last tokens). Links are scattered into an array of the higher
    table's size: in memory, or with ``spill`` a memory-mapped file in that directory (bounded
    builds; random writes, one pass over both tables' position ids)."""
    orders = sorted(tables)
    out = {}
    for low, high in zip([None, *orders], orders):
        sections = dict(tables[high])
        positions = sections.pop("position_contexts")
        if low is not None:
            lower_count = tables[low]["totals"].shape[0]
            sections["lower_contexts"] = _links(
                positions, tables[low]["position_contexts"], sections["totals"].shape[0],
                fmt.uint_dtype(max(0, lower_count - 1)),
                None if spill is None else Path(spill) / f"links{high}.npy")
        if high == orders[-1] and not compact:
            sections["position_contexts"] = positions
        out.update({fmt.table_prefix(high) + name: s for name, s in sections.items()})
    return out


def _links(high, low, num_contexts: int, dtype, spill: Path | None) -> np.ndarray:
    links = np.zeros(num_contexts, dtype) if spill is None else \
        np.lib.format.open_memmap(spill, "w+", dtype, (num_contexts,))
    for h, lo in _aligned(_chunks(high), _chunks(low)):
        links[h] = lo
    return links


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

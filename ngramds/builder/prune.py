"""Pruned files (``min_count``; spec/FORMAT.md, "Pruned files"): the tables of a build with
every context seen fewer times than its order's threshold left out, renumbered, relinked, and
the highest table's position ids made global (a position whose context is pruned there points
into the deepest table that stores its context). One function of the unpruned tables, so every
engine (in memory, bounded, merge, Dask) writes the same bytes; chunk by chunk, with the
per-context maps in ``spill`` memory maps in bounded builds."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from numba import njit

from ..errors import InputError
from ..file import format as fmt
from ..file.writer import SectionSource

__all__ = ["prune_tables"]

BLOCK = 1 << 22  # contexts or entries per step


def prune_tables(tables: dict[int, dict], thresholds: dict[int, int], spill: Path | None,
                 compact: bool) -> dict:
    """The table sections of a pruned file, prefixed and in file order, from each order's
    unpruned sections (arrays or :class:`SectionSource`, unprefixed, each with
    ``position_contexts``): every context of order n with total < thresholds.get(n, 1) left
    out; ``lower_contexts`` of the kept contexts; the highest table's ``position_contexts``
    global ids (none when ``compact``; no ``prefix_offsets`` either)."""
    orders = sorted(tables)
    maps, kept = {}, {}
    for n in orders:
        maps[n], kept[n] = _kept_ids(tables[n], thresholds.get(n, 1),
                                     None if spill is None else Path(spill) / f"prune{n}")
        if kept[n] == 0:
            raise InputError(f"min_count {thresholds[n]} prunes every context of order {n} "
                             "(none is seen that often); lower it")
    positions = {n: tables[n]["position_contexts"] for n in orders}
    links = {high: np.zeros(kept[high], fmt.uint_dtype(max(0, kept[low] - 1)))
             if spill is None else np.lib.format.open_memmap(
                 Path(spill) / f"prune_links{high}.npy", "w+",
                 fmt.uint_dtype(max(0, kept[low] - 1)), (kept[high],))
             for low, high in zip(orders, orders[1:])}
    for parts in _aligned([_chunks(positions[n]) for n in orders]):
        ids = [maps[n][np.asarray(p, np.int64)] for n, p in zip(orders, parts)]
        for j in range(1, len(orders)):
            live = ids[j] >= 0
            links[orders[j]][ids[j][live]] = ids[j - 1][live]
    out = {}
    for low, n in zip([None, *orders], orders):
        sections = _pruned_sections(tables[n], maps[n], kept[n],
                                    None if spill is None else Path(spill) / f"prune{n}")
        if low is not None:
            sections["lower_contexts"] = links[n]
        out.update({fmt.table_prefix(n) + name: s for name, s in sections.items()})
    if not compact:
        bases = np.cumsum([0] + [kept[n] for n in reversed(orders)])  # highest first
        dtype = fmt.uint_dtype(int(bases[-1]) - 1)

        def global_ids():
            for parts in _aligned([_chunks(positions[n]) for n in orders]):
                g = np.full(parts[0].size, -1, np.int64)
                for base, n, p in zip(bases, reversed(orders), reversed(parts)):
                    fill_global(g, maps[n], p, base)
                yield g.astype(dtype)
        out[fmt.table_prefix(orders[-1]) + "position_contexts"] = SectionSource(
            dtype, (_length(positions[orders[-1]]),), global_ids)
    return out


@njit(cache=True)
def fill_global(g, new_ids, positions, base):
    """g[i] <- base + new_ids[positions[i]] where g[i] is unset (-1) and that context is kept
    (>= 0): called from the highest table down, each position gets its deepest kept one."""
    for i in range(g.shape[0]):
        if g[i] < 0:
            c = new_ids[np.int64(positions[i])]
            if c >= 0:
                g[i] = base + c


@njit(cache=True)
def entry_mask(entry_offsets, new_ids, first, out):
    """out[i] <- whether entry first + i belongs to a kept context (entry_offsets sorted)."""
    c = np.searchsorted(entry_offsets, first, side="right") - 1
    for i in range(out.shape[0]):
        e = first + i
        while entry_offsets[c + 1] <= e:
            c += 1
        out[i] = new_ids[c] >= 0


def _kept_ids(sections: dict, threshold: int, spill: Path | None):
    """(new id of every context, -1 where pruned; the number kept) for one table."""
    totals = sections["totals"]
    count = _length(totals)
    new_ids = np.empty(count, np.int64) if spill is None else _memmap(spill, "ids", count)
    at = kept = 0
    for chunk in _chunks(totals):
        keep = np.asarray(chunk) >= threshold
        n = keep.size
        ranks = np.cumsum(keep) + (kept - 1)
        new_ids[at:at + n] = np.where(keep, ranks, -1)
        kept += int(keep.sum())
        at += n
    return new_ids, kept


def _pruned_sections(sections: dict, new_ids: np.ndarray, kept: int,
                     spill: Path | None) -> dict:
    """One table's sections (without position ids) with the pruned contexts left out."""
    keep_all = new_ids >= 0
    clo = np.concatenate([np.asarray(c, np.int64)
                          for c in _chunks(sections["context_length_offsets"])])
    new_clo = np.zeros(clo.size, np.uint64)
    for l in range(clo.size - 1):
        new_clo[l + 1] = new_clo[l] + np.count_nonzero(keep_all[clo[l]:clo[l + 1]])
    count = keep_all.size
    eo = _materialised(sections["entry_offsets"], count + 1,
                       None if spill is None else spill.with_suffix(".eo.npy"))
    new_eo = np.empty(kept + 1, np.int64) if spill is None else \
        _memmap(spill, "eo_new", kept + 1)
    new_eo[0], at, base, max_total = 0, 1, 0, 0
    for a in range(0, count, BLOCK):
        keep = keep_all[a:a + BLOCK]
        sizes = np.diff(eo[a:a + keep.size + 1])[keep]
        new_eo[at:at + sizes.size] = np.cumsum(sizes) + base
        base += int(sizes.sum())
        at += sizes.size
    num_entries = base
    totals = sections["totals"]
    max_total = max((int(np.asarray(t)[keep_all[a:a + len(t)]].max(initial=0))
                     for a, t in _offsets(_chunks(totals))), default=0)

    def entries_kept(name):
        def chunks():
            for a, part in _offsets(_chunks(sections[name])):
                mask = np.empty(len(part), np.bool_)
                entry_mask(eo, new_ids, a, mask)
                yield np.asarray(part)[mask]
        return chunks

    max_count = max((int(part.max(initial=0)) for part in entries_kept("counts")()),
                    default=0)

    def contexts_kept(name):
        def chunks():
            for a, part in _offsets(_chunks(sections[name])):
                yield np.asarray(part)[keep_all[a:a + len(part)]]
        return chunks

    rows = sections["context_tokens"]
    token_dtype = rows.dtype
    m = rows.shape[1]
    return {
        "context_length_offsets": new_clo,
        "context_tokens": SectionSource(token_dtype, (kept, m), contexts_kept("context_tokens")),
        "entry_offsets": SectionSource(fmt.uint_dtype(num_entries), (kept + 1,),
                                       lambda: [new_eo]),
        "next_ids": SectionSource(token_dtype, (num_entries,), entries_kept("next_ids")),
        "counts": SectionSource(fmt.uint_dtype(max_count if num_entries else 0),
                                (num_entries,), entries_kept("counts")),
        "totals": SectionSource(fmt.uint_dtype(max_total), (kept,), contexts_kept("totals")),
    }


def _memmap(spill: Path, name: str, size: int) -> np.ndarray:
    return np.lib.format.open_memmap(spill.with_suffix(f".{name}.npy"), "w+", np.int64,
                                     (size,))


def _materialised(section, size: int, path: Path | None) -> np.ndarray:
    """A section's values as one int64 array (a memory map at ``path`` when given)."""
    out = np.empty(size, np.int64) if path is None else \
        np.lib.format.open_memmap(path, "w+", np.int64, (size,))
    for a, part in _offsets(_chunks(section)):
        out[a:a + len(part)] = part
    return out


def _length(section) -> int:
    return int(section.shape[0])


def _chunks(section):
    return section.chunks() if isinstance(section, SectionSource) else [section]


def _offsets(chunks):
    """(index of its first value, chunk) of consecutive chunks."""
    at = 0
    for chunk in chunks:
        yield at, chunk
        at += len(chunk)


def _aligned(sequences):
    """Equal-length pieces of several chunked sequences of the same length."""
    iters = [iter(s) for s in sequences]
    heads = [np.empty(0, np.uint8) for _ in iters]
    while True:
        for i, it in enumerate(iters):
            while not heads[i].size:
                nxt = next(it, None)
                if nxt is None:
                    return
                heads[i] = np.asarray(nxt)
        k = min(h.size for h in heads)
        yield [h[:k] for h in heads]
        heads = [h[k:] for h in heads]

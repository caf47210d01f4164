"""Summary figures of a built file (what `ngramds info` prints)."""
from __future__ import annotations

import numpy as np

from ..errors import FormatError
from .reader import NgramFile, Table

MASS_RANKS = (1, 2, 4, 8, 16)


def table_summary(t: Table) -> dict:
    """Sizes of one order's table and the share of next-token mass its top-r entries cover.

    ``top_r_mass[r]`` is averaged over token positions (each context weighted by its total):
    the expected probability mass a top-r target keeps, the figure to choose r with.
    """
    sizes = np.diff(t.entry_offsets.astype(np.int64))
    if sizes.min() < 0:
        raise FormatError("entry offsets are not sorted; the file is damaged (run verify)")
    totals = t.totals.astype(np.float64)
    counts = t.counts.astype(np.float64)
    starts = t.entry_offsets[:-1].astype(np.int64)
    rank = np.arange(t.num_entries, dtype=np.int64) - np.repeat(starts, sizes)
    mass = {r: float(counts[rank < r].sum() / max(totals.sum(), 1)) for r in MASS_RANKS}
    return {
        "order": t.order,
        "num_contexts": t.num_contexts,
        "num_entries": t.num_entries,
        "top_k": t.top_k,
        "min_count": t.min_count,  # contexts seen fewer times are not stored (1: all are)
        "mean_next_tokens": float(sizes.mean()),
        "median_next_tokens": float(np.median(sizes)),
        "singleton_context_share": float((t.totals == 1).mean()),
        # share of positions whose context was seen at least twice (what backoff looks at)
        "positions_seen_2plus": float(totals[totals >= 2].sum() / max(totals.sum(), 1)),
        "top_r_mass": {str(r): v for r, v in mass.items()},
    }


def summary(f: NgramFile) -> dict:
    """File sizes and dtypes, and :func:`table_summary` of every stored order (ascending)."""
    file_bytes = max(s.offset + s.length for s in f.sections.values())
    return {
        "path": str(f.path),
        "format_version": f.version,
        "compact": f.table().position_contexts is None,  # contexts searched from the tokens
        "orders": f.orders,
        "vocab_size": f.vocab_size,
        "num_tokens": f.num_tokens,
        "num_documents": f.num_documents,
        "file_bytes": int(file_bytes),
        "bytes_per_token": file_bytes / f.num_tokens,
        "tables": [table_summary(f.table(n)) for n in f.orders],
        "dtypes": {name: s.dtype.str for name, s in f.sections.items()},
        "build": f.header.get("build", {}),
    }


def format_summary(s: dict) -> str:
    """Human-readable lines of :func:`summary`: the file, then one row per order."""
    pruned = ",".join(f"{t['order']}:{t['min_count']}" for t in s["tables"]
                      if t.get("min_count", 1) > 1)
    lines = [
        f"file        {s['path']} ({s['file_bytes'] / 2**20:.1f} MiB, "
        f"{s['bytes_per_token']:.2f} bytes/token, format version {s['format_version']}"
        f"{', compact' if s['compact'] else ''}"
        f"{f', pruned: --min-count {pruned}' if pruned else ''})",
        f"tokens      {s['num_tokens']:,} in {s['num_documents']:,} documents, vocab size "
        f"{s['vocab_size']:,}",
        "",
        f"{'order':>5} {'contexts':>12} {'seen once':>9} {'entries':>12} {'top-k':>6} "
        f"{'next/ctx':>8} {'pos>=2':>7} " + " ".join(f"{'r=' + r:>6}" for r in
                                                      map(str, MASS_RANKS)),
    ]
    for t in s["tables"]:
        mass = " ".join(f"{v:6.1%}" for v in t["top_r_mass"].values())
        lines.append(f"{t['order']:>5} {t['num_contexts']:>12,} "
                     f"{t['singleton_context_share']:>9.1%} {t['num_entries']:>12,} "
                     f"{t['top_k'] or 'all':>6} {t['mean_next_tokens']:>8.2f} "
                     f"{t['positions_seen_2plus']:>7.1%} {mass}")
    lines.append("(seen once: share of contexts seen once; pos>=2: share of positions whose "
                 "context was seen twice or more; r=: next-token mass in the top r)")
    return "\n".join(lines)

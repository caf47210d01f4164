"""Summary figures of a built file (what `ngramds info` prints)."""
from __future__ import annotations

import numpy as np

from .errors import FormatError
from .reader import NgramFile

MASS_RANKS = (1, 2, 4, 8, 16)


def summary(f: NgramFile) -> dict:
    """Sizes, dtypes and the share of next-token mass the top-r entries cover.

    ``top_r_mass[r]`` is averaged over token positions (each context weighted by its total):
    the expected probability mass a top-r target keeps, the figure to choose r with.
    """
    sizes = np.diff(f.entry_offsets.astype(np.int64))
    if sizes.min() < 0:
        raise FormatError("entry offsets are not sorted; the file is damaged (run verify)")
    totals = f.totals.astype(np.float64)
    counts = f.counts.astype(np.float64)
    starts = f.entry_offsets[:-1].astype(np.int64)
    rank = np.arange(f.num_entries, dtype=np.int64) - np.repeat(starts, sizes)
    file_bytes = max(s.offset + s.length for s in f.sections.values())
    mass = {r: float(counts[rank < r].sum() / max(totals.sum(), 1)) for r in MASS_RANKS}
    return {
        "path": str(f.path),
        "order": f.order,
        "vocab_size": f.vocab_size,
        "num_tokens": f.num_tokens,
        "num_documents": f.num_documents,
        "num_contexts": f.num_contexts,
        "num_entries": f.num_entries,
        "top_k": f.top_k,
        "file_bytes": int(file_bytes),
        "bytes_per_token": file_bytes / f.num_tokens,
        "mean_next_tokens": float(sizes.mean()),
        "median_next_tokens": float(np.median(sizes)),
        "singleton_context_share": float((f.totals == 1).mean()),
        "top_r_mass": {str(r): v for r, v in mass.items()},
        "dtypes": {name: s.dtype.str for name, s in f.sections.items()},
        "build": f.header.get("build", {}),
    }


def format_summary(s: dict) -> str:
    """Human-readable lines of :func:`summary`."""
    stored = "stored" if s["top_k"] is None else f"stored, top-k {s['top_k']}"
    lines = [
        f"file            {s['path']} ({s['file_bytes'] / 2**20:.1f} MiB, "
        f"{s['bytes_per_token']:.2f} bytes/token)",
        f"order           {s['order']}   vocab size {s['vocab_size']:,}",
        f"tokens          {s['num_tokens']:,} in {s['num_documents']:,} documents",
        f"contexts        {s['num_contexts']:,} ({s['singleton_context_share']:.1%} seen once)",
        f"entries         {s['num_entries']:,} ({stored})",
        f"next tokens     mean {s['mean_next_tokens']:.2f}, median "
        f"{s['median_next_tokens']:g} per context",
        "mass in top r   " + "  ".join(f"r={r}: {v:.1%}" for r, v in s["top_r_mass"].items()),
    ]
    return "\n".join(lines)

"""A synthetic corpus whose structure lies beyond the n-gram order: each document is a random
segment of 8 tokens (ids 1..511, Zipf-distributed) written 6 times, then EOS (id 0). After the
first copy every token is predictable by copying from 8 positions back, which a small GPT
learns within a few hundred steps from one-hot labels; an order-4 table counted on other
documents knows nothing of a new document's segment (docs/RESULTS.md, "Structure beyond the
n-gram order").

    python tools/copy_task.py out/copy
    ngramds build out/copy/copy.npy --eos-id 0 --vocab-size 512 -o out/copy/copy.ngds \\
        --val-fraction 0.05 --val-output out/copy/copy.val.ngds
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ngramds.cli import CommandParser

VOCAB, SEGMENT, COPIES, DOCUMENTS = 512, 8, 6, 40_000


def copy_tokens(documents: int = DOCUMENTS, seed: int = 0) -> np.ndarray:
    """The token stream (uint16): per document a segment written COPIES times, then 0."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, VOCAB)
    segments = rng.choice(np.arange(1, VOCAB), size=(documents, SEGMENT),
                          p=weights / weights.sum())
    eos = np.zeros((documents, 1), dtype=segments.dtype)
    return np.concatenate([segments] * COPIES + [eos], 1).astype(np.uint16).ravel()


def main() -> None:
    ap = CommandParser(prog="copy_task.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="output directory (writes OUT/copy.npy)")
    ap.add_argument("--documents", type=int, default=DOCUMENTS)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if a.documents < 1:
        ap.error(f"--documents must be at least 1, got {a.documents}")
    a.out.mkdir(parents=True, exist_ok=True)
    path = a.out / "copy.npy"
    tokens = copy_tokens(a.documents, a.seed)
    try:
        with open(path, "xb") as f:  # a new file: never through a planted link
            np.save(f, tokens)
    except FileExistsError:
        ap.error(f"{path} exists; give another directory")
    print(f"{a.documents:,} documents, {tokens.size:,} tokens -> {path}")


if __name__ == "__main__":
    main()

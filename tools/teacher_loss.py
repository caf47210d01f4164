"""How good are the targets as a language model? The held-out cross-entropy of the n-gram
teacher, counted on a training file and evaluated on a held-out one.

    python tools/teacher_loss.py out/budget/kernel.ngds out/budget/kernel.val.ngds

The teacher is the targets' Witten-Bell mixture (escape E, docs/RESULTS.md) over the orders
2..N, with an add-one unigram below order 2 so that every held-out token has a probability:

    p_1(v) = (count(v) + 1) / (tokens + V)
    p_n(v | c) = (count(c, v) + E D(c) p_{n-1}(v | c')) / (total(c) + E D(c))   if total(c) > 0
               = p_{n-1}(v | c')                                               otherwise

with contexts as spec/SEMANTICS.md defines them (never across a document start; a shorter
context after one), c' the context without its oldest token, D(c) its distinct next tokens.
The training targets use the same mixture without the unigram: this gives a token they know
a little less probability than they do, and a token they do not know some instead of none.

A model whose held-out loss is well above this still learns from the targets; near or below
it, the targets know less than the model (docs/RESULTS.md, "Structure beyond the n-gram
order"). Prints one line per order (2..N): the held-out cross-entropy in nats.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ngramds.errors import NgramdsError  # noqa: E402
from ngramds.file.reader import NgramFile  # noqa: E402


def _grams(tokens: np.ndarray, doc_offsets: np.ndarray, n: int, vocab: int) -> np.ndarray:
    """Per position, the key of (its order-n context, its token): the context's tokens in base
    vocab + 1, the slots before the document start holding ``vocab``."""
    positions = np.arange(len(tokens))
    starts = np.repeat(doc_offsets[:-1], np.diff(doc_offsets))
    key = np.zeros(len(tokens), np.int64)
    for lag in range(n - 1, 0, -1):
        back = positions - lag
        key = key * (vocab + 1) + np.where(back >= starts, tokens[np.maximum(back, 0)], vocab)
    return key * (vocab + 1) + tokens


def teacher_loss(train: NgramFile, val: NgramFile, order: int = 4, escape: float = 10.0
                 ) -> list[float]:
    """The teacher's held-out cross-entropy (nats per held-out token) for the orders
    2..``order``, each with the orders below it."""
    vocab = train.vocab_size
    if val.vocab_size != vocab:
        raise NgramdsError(f"the files' vocabularies differ ({vocab} and {val.vocab_size})")
    if order < 2 or (vocab + 1) ** order >= 2 ** 63:
        raise NgramdsError(f"order {order} with vocabulary {vocab}: keys past 64 bits")
    t = np.asarray(train.tokens, dtype=np.int64)
    v = np.asarray(val.tokens, dtype=np.int64)
    t_docs = np.asarray(train.doc_offsets, dtype=np.int64)
    v_docs = np.asarray(val.doc_offsets, dtype=np.int64)
    p = ((np.bincount(t, minlength=vocab) + 1.0) / (len(t) + vocab))[v]
    losses = []
    for n in range(2, order + 1):
        grams, counts = np.unique(_grams(t, t_docs, n, vocab), return_counts=True)
        contexts, first, distinct = np.unique(grams // (vocab + 1), return_index=True,
                                              return_counts=True)
        totals = np.add.reduceat(counts, first).astype(np.float64)
        query = _grams(v, v_docs, n, vocab)
        i = np.minimum(np.searchsorted(contexts, query // (vocab + 1)), len(contexts) - 1)
        seen = contexts[i] == query // (vocab + 1)
        j = np.minimum(np.searchsorted(grams, query), len(grams) - 1)
        count = np.where(grams[j] == query, counts[j], 0)
        weight = escape * distinct[i]
        p = np.where(seen, (count + weight * p) / (totals[i] + weight), p)
        losses.append(float(-np.log(p).mean()))
    return losses


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("train", help="the ngramds file the targets are counted on")
    ap.add_argument("val", help="an ngramds file of held-out documents (same tokenizer)")
    ap.add_argument("--order", type=int, default=4, help="the highest order (default 4)")
    ap.add_argument("--escape", type=float, default=10.0, help="Witten-Bell escape (default 10)")
    a = ap.parse_args()
    try:
        losses = teacher_loss(NgramFile(a.train), NgramFile(a.val), a.order, a.escape)
    except NgramdsError as exc:
        print(f"teacher_loss.py: error: {exc}", file=sys.stderr)
        sys.exit(2)
    for n, loss in enumerate(losses, 2):
        print(f"orders 2-{n}: {loss:.3f} nats per held-out token")


if __name__ == "__main__":
    main()

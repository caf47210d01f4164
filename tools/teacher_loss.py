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
import ngramds  # noqa: E402
from ngramds import NgramdsError, NgramFile  # noqa: E402
from ngramds.file.format import MAX_ORDER  # noqa: E402
from ngramds.targets.config import DEFAULT_ESCAPE, MAX_ESCAPE  # noqa: E402


def _contexts(tokens: np.ndarray, doc_offsets: np.ndarray, order: int, vocab: int):
    """For each order n = 2..``order`` in turn, each position's order-n context as a dense id
    (equal ids, equal contexts): the order-(n-1) id and the token n-1 back (``vocab`` before
    the document start) ranked together, so ids stay below the number of positions at any
    vocabulary."""
    positions = np.arange(len(tokens))
    starts = np.repeat(doc_offsets[:-1], np.diff(doc_offsets))
    ids = np.zeros(len(tokens), np.int64)  # order 1: the empty context
    for n in range(2, order + 1):
        back = positions - (n - 1)
        older = np.where(back >= starts, tokens[np.maximum(back, 0)], vocab)
        ids = np.unique(ids * (vocab + 1) + older, return_inverse=True)[1].astype(np.int64)
        yield ids


def _find(sorted_keys: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each query key, an index into ``sorted_keys`` and whether it holds that key."""
    i = np.minimum(np.searchsorted(sorted_keys, query), len(sorted_keys) - 1)
    return i, sorted_keys[i] == query


def teacher_loss(train: NgramFile, val: NgramFile, order: int = 4,
                 escape: float = DEFAULT_ESCAPE) -> list[float]:
    """The teacher's held-out cross-entropy (nats per held-out token) for the orders
    2..``order``, each with the orders below it."""
    vocab = train.vocab_size
    if val.vocab_size != vocab:
        raise NgramdsError(f"the files' vocabularies differ ({vocab} and {val.vocab_size})")
    if not 2 <= order <= MAX_ORDER:
        raise NgramdsError(f"order must be in 2..{MAX_ORDER}, got {order}")
    if not 0 < escape <= MAX_ESCAPE:
        raise NgramdsError(f"escape must be in (0, {MAX_ESCAPE:g}], got {escape}")
    if not train.num_tokens or not val.num_tokens:
        raise NgramdsError(f"{train.path if not train.num_tokens else val.path} has no tokens")
    t = np.asarray(train.tokens, dtype=np.int64)
    v = np.asarray(val.tokens, dtype=np.int64)
    if (len(t) + len(v)) * (vocab + 1) >= 2 ** 62:
        raise NgramdsError(f"{len(t) + len(v)} tokens of vocabulary {vocab}: ids past 64 bits")
    both = np.concatenate([t, v])  # one numbering of the contexts of both files
    offsets = np.concatenate([np.asarray(train.doc_offsets, dtype=np.int64),
                              np.asarray(val.doc_offsets, dtype=np.int64)[1:] + len(t)])
    p = ((np.bincount(t, minlength=vocab) + 1.0) / (len(t) + vocab))[v]
    losses = []
    for ids in _contexts(both, offsets, order, vocab):
        grams, counts = np.unique(ids[:len(t)] * vocab + t, return_counts=True)
        contexts, first, distinct = np.unique(grams // vocab, return_index=True,
                                              return_counts=True)
        totals = np.add.reduceat(counts, first).astype(np.float64)
        query = ids[len(t):] * vocab + v
        i, seen = _find(contexts, query // vocab)
        j, found = _find(grams, query)
        count = np.where(found, counts[j], 0)
        weight = escape * distinct[i]
        p = np.where(seen, (count + weight * p) / (totals[i] + weight), p)
        losses.append(float(-np.log(p).mean()))
    return losses


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("train", help="the ngramds file the targets are counted on")
    ap.add_argument("val", help="an ngramds file of held-out documents (same tokenizer)")
    ap.add_argument("--order", type=int, default=4, help="the highest order (default 4)")
    ap.add_argument("--escape", type=float, default=DEFAULT_ESCAPE,
                    help=f"Witten-Bell escape (default {DEFAULT_ESCAPE:g}, the targets')")
    a = ap.parse_args()
    try:
        losses = teacher_loss(ngramds.open(a.train), ngramds.open(a.val), a.order, a.escape)
    except NgramdsError as exc:
        print(f"teacher_loss.py: error: {exc}", file=sys.stderr)
        sys.exit(2)
    for n, loss in enumerate(losses, 2):
        print(f"orders 2-{n}: {loss:.3f} nats per held-out token")


if __name__ == "__main__":
    main()

"""Document-level train / validation split, so held-out text never enters the statistics."""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..shuffle import permute
from ..validation import is_int
from .types import Corpus


def split_documents(corpus: Corpus, val_fraction: float, seed: int = 0) -> tuple[Corpus, Corpus]:
    """Split a corpus into training and validation documents.

    round(val_fraction * D) of the D documents, chosen by a keyed permutation of the document
    indices, go to validation; both parts keep the corpus order.

    Args:
        corpus: the corpus to split.
        val_fraction: the fraction of documents held out, in (0, 1).
        seed: the key of the permutation (the same seed gives the same split).

    Returns:
        ``(train, validation)``, two :class:`Corpus`.

    Raises:
        InputError: ``val_fraction`` outside (0, 1), a bad ``seed``, or too few documents.
    """
    if not 0 < val_fraction < 1:
        raise InputError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if not is_int(seed) or not -(1 << 63) <= seed < 1 << 64:
        raise InputError(f"seed must be an integer that fits in 64 bits, got {seed!r}")
    seed = (int(seed) + (1 << 63)) % (1 << 64) - (1 << 63)  # as int64, the same 64 bits
    offsets = np.asarray(corpus.doc_offsets, dtype=np.int64)
    num_docs = offsets.size - 1
    num_val = int(round(val_fraction * num_docs))
    if num_val < 1 or num_val >= num_docs:
        raise InputError(f"a validation fraction of {val_fraction} of {num_docs} documents "
                         "leaves one side empty; give more documents or another fraction")
    picked = np.empty(num_val, np.int64)
    permute(np.arange(num_val, dtype=np.int64), num_docs, seed, 0x5A1D, picked)
    is_val = np.zeros(num_docs, bool)
    is_val[picked] = True
    return _subset(corpus, offsets, ~is_val), _subset(corpus, offsets, is_val)


def _subset(corpus: Corpus, offsets: np.ndarray, keep: np.ndarray) -> Corpus:
    lengths = np.diff(offsets)[keep]
    token_mask = np.repeat(keep, np.diff(offsets))
    tokens = np.asarray(corpus.tokens)[token_mask]
    sub = Corpus(tokens, np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
                 sources=list(corpus.sources), tokenizer=corpus.tokenizer,
                 vocab_size=corpus.vocab_size,
                 prompt_lengths=None if corpus.prompt_lengths is None else
                 np.asarray(corpus.prompt_lengths).reshape(-1)[keep])
    return sub

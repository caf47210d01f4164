"""Hypothesis strategies for random corpora."""
import numpy as np
from hypothesis import strategies as st

import ngramds


@st.composite
def corpora(draw, max_docs=6, max_len=40):
    """(documents, vocab_size): small vocabularies, often repetitive, sometimes huge ids."""
    vocab = draw(st.sampled_from([1, 2, 3, 7, 300, 65536, 65537, 2**32 - 1]))
    alphabet_size = draw(st.integers(1, min(vocab, 6)))
    alphabet = draw(st.lists(st.integers(0, vocab - 1), min_size=alphabet_size,
                             max_size=alphabet_size, unique=True))
    ndocs = draw(st.integers(1, max_docs))
    docs = [draw(st.lists(st.sampled_from(alphabet), max_size=max_len)) for _ in range(ndocs)]
    if sum(map(len, docs)) == 0:
        docs[0] = [alphabet[0]]
    return [np.array(d, dtype=np.int64) for d in docs], vocab


@st.composite
def multi_order_files(draw, tmp_path_factory, max_vocab=8, max_len=50):
    """An open file of 1-3 random documents with 1-4 random orders, sometimes --top-k 3,
    sometimes compact (no position ids)."""
    vocab = draw(st.integers(2, max_vocab))
    docs = [np.array(draw(st.lists(st.integers(0, vocab - 1), min_size=1, max_size=max_len)))
            for _ in range(draw(st.integers(1, 3)))]
    orders = draw(st.lists(st.integers(1, 4), min_size=1, max_size=4, unique=True))
    top_k = draw(st.sampled_from([None, None, 3]))
    path = tmp_path_factory.mktemp("m") / "f.ngds"
    ngramds.build(docs, path, orders=orders, top_k=top_k, vocab_size=vocab, progress=False,
                  compact=draw(st.booleans()))
    return ngramds.open(path)

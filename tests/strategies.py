"""Hypothesis strategies for random corpora."""
import numpy as np
from hypothesis import strategies as st


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

import numpy as np
import pytest

import ngramds
from ngramds.cli import main


def test_split_is_by_document_deterministic_and_disjoint():
    docs = [np.full(i % 7 + 1, i) for i in range(100)]
    corpus = ngramds.Corpus.from_documents(docs)
    train, val = ngramds.split_documents(corpus, 0.1, seed=4)
    assert val.doc_offsets.size - 1 == 10 and train.doc_offsets.size - 1 == 90
    val_ids, train_ids = set(val.tokens.tolist()), set(train.tokens.tolist())
    assert not val_ids & train_ids  # every document is whole on one side
    assert val_ids | train_ids == set(range(100))
    again, _ = ngramds.split_documents(corpus, 0.1, seed=4)
    assert np.array_equal(again.tokens, train.tokens)
    other, _ = ngramds.split_documents(corpus, 0.1, seed=5)
    assert not np.array_equal(other.tokens, train.tokens)
    with pytest.raises(ngramds.InputError):
        ngramds.split_documents(corpus, 0.0)


def test_cli_validation_split(tmp_path):
    tokens = np.concatenate([np.append(np.arange(1, 30) * (d + 1) % 97 + 1, 0)
                             for d in range(40)]).astype(np.uint16)
    np.save(tmp_path / "c.npy", tokens)
    assert main(["build", str(tmp_path / "c.npy"), "-o", str(tmp_path / "t.ngds"), "-q",
                 "--eos-id", "0", "--val-fraction", "0.25",
                 "--val-output", str(tmp_path / "v.ngds")]) == 0
    t, v = ngramds.open(tmp_path / "t.ngds"), ngramds.open(tmp_path / "v.ngds")
    assert (t.num_documents, v.num_documents) == (30, 10)
    assert t.num_tokens + v.num_tokens == tokens.size
    assert t.vocab_size == v.vocab_size

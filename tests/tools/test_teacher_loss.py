"""tools/teacher_loss.py: the Witten-Bell teacher's held-out cross-entropy against a reference
written from its definition with dictionaries, on random corpora of documents."""
import importlib.util
import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from hypothesis import given, settings, strategies as st

import ngramds

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("teacher_loss", ROOT / "tools" / "teacher_loss.py")
teacher = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(teacher)

VOCAB = 5
docs_st = st.lists(st.lists(st.integers(0, VOCAB - 1), min_size=0, max_size=12), min_size=1,
                   max_size=5)


def context(doc, j, n):
    """spec/SEMANTICS.md: the min(j, n - 1) tokens of the document before position j."""
    return tuple(doc[max(0, j - n + 1):j])


def reference(train_docs, val_docs, order, escape, vocab=VOCAB):
    tokens = [t for d in train_docs for t in d]
    unigram = Counter(tokens)
    counts = {n: Counter((context(d, j, n), d[j]) for d in train_docs for j in range(len(d)))
              for n in range(2, order + 1)}
    losses = []
    for top in range(2, order + 1):
        total = 0.0
        for d in val_docs:
            for j, y in enumerate(d):
                p = (unigram[y] + 1) / (len(tokens) + vocab)
                for n in range(2, top + 1):
                    c = context(d, j, n)
                    nexts = {v: k for (cc, v), k in counts[n].items() if cc == c}
                    if nexts:
                        e = escape * len(nexts)
                        p = (nexts.get(y, 0) + e * p) / (sum(nexts.values()) + e)
                total -= math.log(p)
        losses.append(total / sum(map(len, val_docs)))
    return losses


def file_of(docs, path, vocab=VOCAB):
    return ngramds.open(ngramds.build(docs, path, orders=[1], vocab_size=vocab, progress=False))


@settings(max_examples=40, deadline=None)
@given(docs_st, docs_st, st.integers(2, 4), st.sampled_from([1.0, 10.0]))
def test_the_teacher_is_its_definition(tmp_path_factory, train_docs, val_docs, order, escape):
    if not any(val_docs) or not any(train_docs):
        return
    tmp = tmp_path_factory.mktemp("t")
    got = teacher.teacher_loss(file_of(train_docs, tmp / "t.ngds"),
                               file_of(val_docs, tmp / "v.ngds"), order, escape)
    want = reference(train_docs, val_docs, order, escape)
    assert len(got) == order - 1
    assert all(math.isclose(g, w, rel_tol=1e-9) for g, w in zip(got, want)), (got, want)


def test_a_large_vocabulary_and_a_high_order(tmp_path):
    """Context ids stay dense, so vocabulary 2^20 at order 6 needs no more than 64 bits."""
    vocab = 2 ** 20
    train = [[5, vocab - 1, 7, 5, vocab - 1, 7, 9], [vocab - 1, 7, 5], [5]]
    val = [[5, vocab - 1, 7, 9, 5], [vocab - 1, 7]]
    got = teacher.teacher_loss(file_of(train, tmp_path / "t.ngds", vocab),
                               file_of(val, tmp_path / "v.ngds", vocab), 6, 10.0)
    want = reference(train, val, 6, 10.0, vocab)
    assert all(math.isclose(g, w, rel_tol=1e-9) for g, w in zip(got, want)), (got, want)


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    path = ngramds.build([[1, 2, 3]], tmp_path / "a.ngds", orders=[1], vocab_size=VOCAB,
                         progress=False)
    other = ngramds.build([[1, 2, 3]], tmp_path / "b.ngds", orders=[1], vocab_size=VOCAB + 1,
                          progress=False)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for args in ([str(path), str(tmp_path / "missing.ngds")], [str(path), str(path), "--order",
                                                                 "30"], [str(path), str(other)],
                 [str(path), str(path), "--order", "1"], [str(path), str(path), "--escape", "0"]):
        r = subprocess.run([sys.executable, str(ROOT / "tools" / "teacher_loss.py"), *args],
                           capture_output=True, text=True, env=env)
        assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr

"""Interpolated Kneser-Ney targets (spec/TARGETS.md, "kneser-ney") against a count of the
documents themselves: continuation counts, discounts and the mixture, exact with AllNTs; the
CoCoNTs tail draws keep every row a distribution."""
import collections

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ngramds
from ngramds.targets import TargetConfig, Targets
from ngramds.targets.compute import KN_SCALE


def contexts(docs, m):
    """(context of length <= m, next token) of every position, by the documents alone."""
    out = []
    for doc in docs:
        for p, w in enumerate(doc):
            out.append((tuple(doc[max(0, p - m):p]), w))
    return out


def discount(values) -> float:
    values = list(values)
    n1, n2 = sum(x == 1 for x in values), sum(x == 2 for x in values)
    d = min(0.9, max(0.1, n1 / (n1 + 2 * n2))) if n1 + n2 else 0.5
    return round(d * KN_SCALE) / KN_SCALE


def reference(docs, orders, vocab):
    """Per position, the interpolated Kneser-Ney distribution over ``orders`` (ascending)."""
    top = orders[-1]
    raw = collections.Counter(contexts(docs, top - 1))
    cont = {}
    for n in orders[:-1]:  # N1+(. h w): distinct longer contexts ending in h, followed by w
        pairs = set(zip(contexts(docs, n), contexts(docs, n - 1)))
        cont[n] = collections.Counter((h[0], h[1]) for _, h in pairs)
    counts = {n: cont.get(n, raw) for n in orders}
    discounts = {n: discount(counts[n].values()) for n in orders[1:]}
    rows = []
    for (_, w), *per in zip(contexts(docs, top - 1), *[contexts(docs, n - 1) for n in orders]):
        p = np.zeros(vocab)
        weight = 1.0
        for n, (h, _) in zip(orders[::-1], per[::-1]):
            dist = {x: c for (hh, x), c in counts[n].items() if hh == h}
            total = sum(dist.values())
            if n == orders[0]:
                for x, c in dist.items():
                    p[x] += weight * c / total
                break
            d = discounts[n]
            lam = d * len(dist) / total
            for x, c in dist.items():
                p[x] += weight * (c - d) / total
            weight *= lam
        rows.append(p)
    return np.array(rows)


@settings(max_examples=25, deadline=None)
@given(data=st.data(), orders=st.sampled_from([[2, 3, 4], [1, 2], [2, 3], [1, 2, 3, 4]]))
def test_allnts_equals_a_count_of_the_documents(tmp_path_factory, data, orders):
    vocab = data.draw(st.integers(2, 6))
    docs = data.draw(st.lists(st.lists(st.integers(0, vocab - 1), max_size=60), min_size=1,
                              max_size=4).filter(lambda d: sum(map(len, d)) > 1))
    path = tmp_path_factory.mktemp("kn") / "k.ngds"
    f = ngramds.open(ngramds.build(docs, path, orders=orders, vocab_size=vocab,
                                   progress=False))
    t = Targets(f, TargetConfig("allnts", max_k=64, mixing="kneser-ney"))
    n = f.num_tokens
    ids = np.empty((n, t.plan.slots), np.int64)
    probs = np.empty((n, t.plan.slots), np.float32)
    t.compute_at(np.arange(n), f.tokens.astype(np.int64), 0, 0, ids, probs)
    dense = np.zeros((n, vocab))
    for r in range(n):
        np.add.at(dense[r], ids[r], probs[r])
    np.testing.assert_allclose(dense, reference(docs, orders, vocab), atol=1e-6)


def test_coconts_rows_are_distributions_and_average_to_the_mixture(tmp_path):
    rng = np.random.default_rng(2)
    tokens = (rng.zipf(1.3, 20_000) % 50).astype(np.uint16)
    f = ngramds.open(ngramds.build(tokens, tmp_path / "z.ngds", eos_id=0, progress=False))
    t = Targets(f, TargetConfig(top_r=2, mixing="kneser-ney"))
    b = t.compute(np.arange(0, 19_000, 100), 64, 3, 1)
    assert np.allclose(b.target_probs.sum(-1), 1, atol=1e-5)


def test_kneser_ney_needs_complete_tables_and_the_order_above(tmp_path):
    path = ngramds.build(np.arange(300) % 7, tmp_path / "k.ngds", orders=[2, 4], top_k=3,
                         progress=False)
    with pytest.raises(ngramds.InputError):
        Targets(ngramds.open(path), TargetConfig(mixing="kneser-ney"))

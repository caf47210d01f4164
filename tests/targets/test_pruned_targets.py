"""Targets of a pruned file (spec/TARGETS.md, "Pruned files"): the reference mixture with the
pruned contexts unseen (T = D = 0: no weight; an unseen order's fixed weight, and "none"'s,
moves to the next lower order), from the reference tables of the corpus."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ngramds
from ngramds.errors import InputError
from ngramds.targets import TargetConfig, Targets
from reference import reference_table
from target_reference import SPEC_ESCAPE, context_at, reference_target


class PrunedReference:
    """What ``reference_target`` reads of a file (tokens, documents, distributions), from the
    reference tables of the corpus with every context seen fewer times than its order's
    threshold unseen."""

    def __init__(self, docs, vocab, orders, thresholds):
        self.tokens = np.concatenate([np.asarray(d, np.int64) for d in docs])
        self.doc_offsets = np.concatenate([[0], np.cumsum([len(d) for d in docs])])
        self.vocab_size, self.order, self.orders = vocab, max(orders), sorted(orders)
        self.tables = {n: {c: v for c, v in reference_table(docs, n).items()
                           if v[1] >= thresholds.get(n, 1)} for n in orders}

    def distribution(self, ctx, order):
        entries, _ = self.tables[order].get(tuple(ctx), ([], 0))
        return [i for i, _ in entries], [c for _, c in entries]

    def total(self, ctx, order):
        return self.tables[order].get(tuple(ctx), ([], 0))[1]


def pruned_weights(ref, p, orders, mixing, min_count=2, lambdas=None, escape=SPEC_ESCAPE):
    """{order: weight} at p from the spec's words: an unseen context has T = D = 0."""
    stats = {o: (ref.total(context_at(ref, p, o), o),
                 len(ref.distribution(context_at(ref, p, o), o)[0])) for o in orders}
    orders = sorted(orders)
    if mixing == "backoff":
        chosen = next((o for o in orders[::-1] if stats[o][0] >= min_count), orders[0])
        return {o: float(o == chosen) for o in orders}
    if mixing == "fixed":
        w = {o: lam / sum(lambdas) for o, lam in zip(orders, lambdas)}
    else:
        w, rest = {}, 1.0
        for o in orders[:0:-1]:
            t, d = stats[o]
            lam = t / (t + escape * d) if t else 0.0
            w[o], rest = rest * lam, rest * (1 - lam)
        w[orders[0]] = rest
    for hi, lo in zip(orders[::-1], orders[-2::-1]):  # an unseen order's weight moves down
        if stats[hi][0] == 0:
            w[lo], w[hi] = w[lo] + w[hi], 0.0
    return w


def dense(f, cfg, seed=0, epoch=0):
    starts = np.arange(f.num_tokens - 1)
    _, _, ids, probs = Targets(f, cfg).compute(starts, 1, seed, epoch)
    out = np.zeros((starts.size, f.vocab_size))
    rows = np.repeat(np.arange(starts.size), ids.shape[2])
    np.add.at(out, (rows, ids[:, 0].reshape(-1)), probs[:, 0].reshape(-1))
    return out


@given(data=st.data(), mode=st.sampled_from(["allnts", "tail", "renorm"]),
       mixing=st.sampled_from(["backoff", "witten-bell", "fixed", "none"]),
       r=st.integers(1, 3), seed=st.integers(0, 3), compact=st.booleans(),
       escape=st.sampled_from([1.0, 10.0, 3.5]))
@settings(max_examples=50, deadline=None)
def test_pruned_targets_equal_the_reference(tmp_path_factory, data, mode, mixing, r, seed,
                                            compact, escape):
    vocab = data.draw(st.integers(2, 5))
    docs = [data.draw(st.lists(st.integers(0, vocab - 1), min_size=1, max_size=60))
            for _ in range(data.draw(st.integers(1, 3)))]
    orders = sorted(data.draw(st.lists(st.integers(1, 4), min_size=2, max_size=3, unique=True)))
    spec = {o: data.draw(st.integers(1, 3)) for o in orders[1:]}
    thresholds, run = {}, 1
    for o in orders:
        run = max(run, spec.get(o, 1))
        thresholds[o] = run
    path = tmp_path_factory.mktemp("t") / "f.ngds"
    try:
        ngramds.build(docs, path, orders=orders, vocab_size=vocab, progress=False,
                      min_count=spec, compact=compact)
    except InputError:
        return  # an order would lose every context
    f = ngramds.open(path)
    if f.num_tokens < 2:
        return
    ref = PrunedReference(docs, vocab, orders, thresholds)
    used = sorted(data.draw(st.lists(st.sampled_from(orders), min_size=1, unique=True)))
    lambdas = data.draw(st.lists(st.integers(0, 3), min_size=len(used),
                                 max_size=len(used)).filter(any)) if mixing == "fixed" else None
    targets, residual = ("allnts", "tail") if mode == "allnts" else ("coconts", mode)
    cfg = TargetConfig(targets, r, residual, 3, mixing, used, 2, lambdas, escape=escape)
    if mixing != "none" and thresholds[used[0]] > 1:
        with pytest.raises(InputError, match="pruned"):
            Targets(f, cfg)
        return
    got = dense(f, cfg, seed)
    if mixing == "none" and thresholds[used[-1]] > 1:  # the deepest stored order's target
        lowest = max(o for o in orders if o <= used[-1] and thresholds[o] == 1)
        used, lambdas = [o for o in orders if lowest <= o <= used[-1]], None
        weights = lambda p: pruned_weights(ref, p, used, "backoff", 1)  # noqa: E731
    elif mixing == "none":
        used = used[-1:]
        weights = lambda p: {used[0]: 1.0}  # noqa: E731
    else:
        weights = lambda p: pruned_weights(ref, p, used, mixing, 2, lambdas, escape)  # noqa
    for p in range(1, f.num_tokens):
        out = {}
        for o, w in weights(p).items():
            if w:
                reference_target(ref, p, mode if mode != "renorm" else "renorm", r, 3, seed, 0,
                                 order=o, label_free=o != max(used), weight=w, out=out)
        expect = np.zeros(vocab)
        for i, pr in out.items():
            expect[i] = pr
        np.testing.assert_allclose(got[p - 1], expect, atol=1e-6, err_msg=f"position {p}")
        assert abs(got[p - 1].sum() - 1) < 1e-5


def test_kneser_ney_needs_unpruned_tables(tmp_path):
    path = tmp_path / "f.ngds"
    ngramds.build([[1, 2, 3, 1, 2, 4, 1, 2, 3, 3]], path, progress=False, min_count=2)
    with pytest.raises(InputError, match="kneser-ney needs unpruned"):
        Targets(ngramds.open(path), TargetConfig(mixing="kneser-ney"))

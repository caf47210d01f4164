"""Targets mixed from several orders (spec/TARGETS.md, "Mixtures of orders")."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ngramds
from ngramds.targets import TargetConfig, Targets
from strategies import multi_order_files
from target_reference import context_at, mixture_weights, reference_mixture


def config(mode, orders, mixing, r=4, max_k=4, min_count=2, lambdas=None, escape=None):
    """``escape`` None: the library's default (the reference takes the spec's)."""
    targets, residual = ("allnts", "tail") if mode == "allnts" else ("coconts", mode)
    return TargetConfig(targets, r, residual, max_k, mixing, orders, min_count, lambdas,
                        **({} if escape is None else {"escape": escape}))


def dense_targets(f, mode, orders, mixing, r=4, max_k=4, seed=0, epoch=0, min_count=2,
                  lambdas=None, escape=None):
    """Mixed targets of positions 1..N-1 as dense [N-1, V] arrays."""
    starts = np.arange(f.num_tokens - 1)
    cfg = config(mode, orders, mixing, r, max_k, min_count, lambdas, escape)
    _, _, ids, probs = Targets(f, cfg).compute(starts, 1, seed, epoch)
    dense = np.zeros((starts.size, f.vocab_size))
    rows = np.repeat(np.arange(starts.size), ids.shape[2])
    np.add.at(dense, (rows, ids[:, 0].reshape(-1)), probs[:, 0].reshape(-1))
    return dense


@given(data=st.data(), mode=st.sampled_from(["allnts", "tail", "renorm"]),
       mixing=st.sampled_from(["backoff", "witten-bell", "fixed"]), r=st.integers(1, 3),
       seed=st.integers(0, 3), epoch=st.integers(0, 3), min_count=st.integers(1, 4),
       escape=st.sampled_from([None, 1.0, 0.5, 3.0, 7.25]))
@settings(max_examples=60)
def test_mixture_equals_reference(tmp_path_factory, data, mode, mixing, r, seed, epoch,
                                  min_count, escape):
    f = data.draw(multi_order_files(tmp_path_factory))
    if f.num_tokens < 2:
        return
    orders = data.draw(st.lists(st.sampled_from(f.orders), min_size=1, unique=True))
    lambdas = data.draw(st.lists(st.integers(0, 3), min_size=len(orders),
                                 max_size=len(orders)).filter(any)) if mixing == "fixed" else None
    max_k = 3
    dense = dense_targets(f, mode, orders, mixing, r, max_k, seed, epoch, min_count, lambdas,
                          escape)
    for p in range(1, f.num_tokens):
        expect = np.zeros(f.vocab_size)
        ref = reference_mixture(f, p, mode, orders, mixing, r, max_k, seed, epoch, min_count,
                                lambdas, escape)
        for i, pr in ref.items():
            expect[i] = pr
        np.testing.assert_allclose(dense[p - 1], expect, atol=1e-6, err_msg=f"position {p}")
        assert abs(dense[p - 1].sum() - 1) < 1e-5  # a distribution


def test_backoff_picks_the_longest_context_seen_min_count_times(tmp_path):
    # "1 2" is seen twice (followed by 3 and 4), "9 2" once, "2" three times
    path = tmp_path / "b.ngds"
    ngramds.build([[1, 2, 3, 1, 2, 4, 9, 2, 5]], path, orders=[1, 2, 3], progress=False)
    f = ngramds.open(path)
    chosen = {p: max(o for o, w in mixture_weights(f, p, [1, 2, 3], "backoff").items() if w)
              for p in range(1, 9)}
    assert chosen[5] == 3                # context (1, 2): seen twice
    assert chosen[8] == 2                # context (9, 2): once -> (2): three times
    # position 1: order 3's context is "document start, 1" (seen once), order 2's is (1): twice
    assert f.total([1], order=3) == 1 and f.total([1], order=2) == 2 and chosen[1] == 2
    dense = dense_targets(f, "tail", [1, 2, 3], "backoff", r=1)
    # order 2 after "2": 3, 4, 5 once each; top-1 kept, the rest drawn from the tail
    assert dense[8 - 1, 3] == pytest.approx(1 / 3)
    assert dense[8 - 1, 4] + dense[8 - 1, 5] == pytest.approx(2 / 3)
    dense = dense_targets(f, "tail", [1, 2, 3], "backoff", r=1, min_count=4)
    assert dense[8 - 1, 2] == pytest.approx(3 / 9)   # nothing seen 4 times: order 1


def _zipf_file(tmp_path, orders=(1, 2, 3)):
    rng = np.random.default_rng(3)
    tokens = (rng.zipf(1.4, 6000) % 10).astype(np.int64)
    tokens[rng.random(tokens.size) < 0.3] = 3  # a frequent token makes frequent contexts
    path = tmp_path / "z.ngds"
    ngramds.build(tokens, path, orders=list(orders), doc_lengths=[1000, 2000, 3000],
                  progress=False)
    return ngramds.open(path)


@pytest.mark.parametrize("mixing,mode,escape", [
    ("witten-bell", "tail", 1.0), ("fixed", "tail", 1.0), ("backoff", "tail", 1.0),
    ("witten-bell", "renorm", 1.0), ("witten-bell", "tail", None)])
def test_truncated_mixture_is_consistent(tmp_path, mixing, mode, escape):
    """Averaged over the occurrences of a top-order context and over epochs, the truncated
    target equals the mixed distribution q(. | c) (spec/TARGETS.md, Consistency)."""
    f = _zipf_file(tmp_path)
    orders, lambdas = [1, 2, 3], [0.2, 0.3, 0.5]
    epochs = 60
    mean = sum(dense_targets(f, mode, orders, mixing, r=2, epoch=e, min_count=3,
                             lambdas=lambdas, escape=escape) for e in range(epochs)) / epochs
    pc = f.table(3).position_contexts[1:].astype(np.int64)
    checked = 0
    for c in np.unique(pc):
        rows = np.flatnonzero(pc == c)
        if rows.size < 40:
            continue
        p = int(rows[0]) + 1
        q = np.zeros(f.vocab_size)
        for o, w in mixture_weights(f, p, orders, mixing, 3, lambdas, escape).items():
            ctx = context_at(f, p, o)
            ids, counts = f.distribution(ctx, order=o)
            q[ids] += w * counts / f.total(ctx, order=o)
        got = mean[rows].mean(axis=0)
        # standard error of a mean of rows.size * epochs draws, each at most 1
        assert np.abs(got - q).max() < 4 / np.sqrt(rows.size * epochs) + 1e-6, (c, got, q)
        checked += 1
    assert checked >= 5


def test_mixing_arguments_are_checked(tmp_path):
    f = _zipf_file(tmp_path, orders=(2, 3))

    def plan(mixing, orders=None, lambdas=None, min_count=2):
        return TargetConfig(mixing=mixing, orders=orders, lambdas=lambdas,
                            min_count=min_count).resolve(f)

    with pytest.raises(ngramds.InputError, match="not stored"):
        plan("backoff", [1, 3])
    with pytest.raises(ngramds.InputError, match="one lambda per order"):
        plan("fixed", lambdas=[1.0])
    with pytest.raises(ngramds.InputError, match="non-negative"):
        plan("fixed", lambdas=[1.0, -1.0])
    with pytest.raises(ngramds.InputError, match="mixing must be"):
        plan("good-turing")
    with pytest.raises(ngramds.InputError, match="min_count"):
        plan("backoff", min_count=0)
    with pytest.raises(ngramds.InputError, match="distinct"):
        plan("backoff", [3, 3])
    for bad in (0, -1.0, float("nan"), float("inf"), 2e6, True, "3"):
        with pytest.raises(ngramds.InputError, match="escape must be"):
            TargetConfig(escape=bad)
    # a larger escape moves weight down, most where the context was seen least
    w = {e: [mixture_weights(f, p, [2, 3], "witten-bell", escape=e) for p in (1, 50, 500)]
         for e in (1.0, 4.0)}
    assert all(hi[3] < lo[3] for lo, hi in zip(w[1.0], w[4.0]))
    # lambdas pair with the orders as given
    assert plan("fixed", [3, 2], [3.0, 1.0]).lambdas.tolist() == [0.25, 0.75]

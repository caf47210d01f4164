"""The count-aware weight of the soft term (spec/TARGETS.md, "Soft-term weight"): w_p =
T / (T + k), T the total of p's context in the top order used, computed by the compiled
kernels; k = 0 (the default) is off and changes nothing."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ngramds
from ngramds.targets import TargetConfig, Targets, batch_shapes
from ngramds.targets.assembly import fill_items, sample_layout
from strategies import multi_order_files
from target_reference import reference_soft_weight


@given(data=st.data(), mixing=st.sampled_from(["none", "backoff", "witten-bell", "fixed"]),
       mode=st.sampled_from(["allnts", "coconts"]),
       k=st.sampled_from([0.5, 1.0, 3.0, 7.25, 1e6]))
@settings(max_examples=60)
def test_weights_equal_the_reference(tmp_path_factory, data, mixing, mode, k):
    f = data.draw(multi_order_files(tmp_path_factory))
    if f.num_tokens < 2:
        return
    orders = data.draw(st.lists(st.sampled_from(f.orders), min_size=1, unique=True))
    lambdas = [1] * len(orders) if mixing == "fixed" else None
    cfg = TargetConfig(mode, top_r=1, mixing=mixing, orders=orders, lambdas=lambdas,
                       alpha_count=k)
    starts = np.arange(f.num_tokens - 1)
    weights = np.full((starts.size, 1), np.nan, np.float32)
    Targets(f, cfg).compute(starts, 1, soft_weights=weights)
    expect = [reference_soft_weight(f, p, orders, k) for p in range(1, f.num_tokens)]
    assert weights[:, 0].tolist() == expect  # bit for bit: float64 division, then float32


def test_a_hand_example(tmp_path):
    """"1 2" is seen twice, its total is 2: w = 2 / (2 + 2) = 0.5 with k = 2; near a document
    start the context is the short one (order 3's empty context: the 2 document starts)."""
    path = ngramds.build([[1, 2, 3, 1, 2, 4], [9, 2, 5]], tmp_path / "h.ngds", orders=[1, 3],
                         progress=False)
    f = ngramds.open(path)
    w = np.empty((1, 8), np.float32)
    Targets(f, TargetConfig(alpha_count=2.0)).compute(np.array([0]), 8, soft_weights=w)
    # positions 1..8: contexts (1), (1 2), (2 3), (3 1), (1 2), [doc start] (), (9), (9 2)
    totals = [1, 2, 1, 1, 2, 2, 1, 1]
    assert w[0].tolist() == [np.float32(t / (t + 2.0)) for t in totals]
    assert (f.total([], order=3), f.total([1], order=3), f.total([1, 2], order=3)) == (2, 1, 2)


def test_off_by_default_and_checked():
    assert TargetConfig().alpha_count == 0.0
    assert TargetConfig(alpha_count=3).alpha_count == 3.0
    for bad in (-1, float("nan"), float("inf"), "2", True, 1e300):
        with pytest.raises(ngramds.InputError, match="alpha_count"):
            TargetConfig(alpha_count=bad)


def test_weights_move_and_vanish_with_the_items(tmp_path):
    """HF layout: the weight moves with its target (row 0: 0); rows without a label (prompts,
    the ends of pieces, padding) have weight 0; the other arrays are those of k = 0."""
    tokens = np.arange(61) % 7
    offsets = np.array([0, 9, 13, 30, 61])
    path = ngramds.build(ngramds.Corpus(tokens, offsets,
                                        prompt_lengths=np.array([3, 0, 5, 2])),
                         tmp_path / "a.ngds", order=3, progress=False)
    f = ngramds.open(path)
    L = 6
    on, off = Targets(f, TargetConfig(alpha_count=1.5)), Targets(f, TargetConfig())
    for sampling in ("windows", "documents"):
        packing, n = sample_layout(f, L, sampling)
        samples = np.arange(n, dtype=np.int64)
        for layout in ("shifted", "hf"):
            got = {}
            for name, t in (("on", on), ("off", off)):
                out = [np.empty(s, d) for s, d in batch_shapes(t.plan, n, L)]
                w = np.full((n, L), np.nan, np.float32) if name == "on" else None
                fill_items(t, samples, L, 3, 1, out, packing=packing, mask_prompt=True,
                           layout=layout, soft_weights=w)
                got[name] = (out, w)
            (out, w), (plain, _) = got["on"], got["off"]
            for a, b in zip(out, plain):
                np.testing.assert_array_equal(a, b)
            live = out[3].sum(-1) > 0  # rows with a target
            assert np.all(w[~live] == 0) and np.all(w[live] > 0), (sampling, layout)
            # each live row's weight is that of its target's token position
            shifted = [np.empty(s, d) for s, d in batch_shapes(on.plan, n, L)]
            ws = np.empty((n, L), np.float32)
            fill_items(on, samples, L, 3, 1, shifted, packing=packing, layout="shifted",
                       soft_weights=ws)
            if layout == "hf":
                ws = np.concatenate([np.zeros((n, 1), np.float32), ws[:, :-1]], 1)
            np.testing.assert_array_equal(w[live], ws[live])


def test_onehot_has_no_weight(tmp_path):
    path = ngramds.build(np.arange(40) % 5, tmp_path / "o.ngds", progress=False)
    f = ngramds.open(path)
    plan = TargetConfig("onehot", alpha_count=4).resolve(f)
    assert plan.alpha_count == 4.0 and not plan.soft_weight
    assert TargetConfig(alpha_count=4).resolve(f).soft_weight
    assert not TargetConfig().resolve(f).soft_weight


def test_show_prints_the_weights(tmp_path, capsys):
    from ngramds.cli import main
    path = ngramds.build([[1, 2, 3, 1, 2, 4], [9, 2, 5]], tmp_path / "s.ngds", orders=[1, 3],
                         progress=False)
    assert main(["show", str(path), "--sample", "0", "--seq-len", "8", "--alpha-count", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("(soft weight ") == 8 and "(soft weight 0.500)" in out
    assert main(["show", str(path), "--sample", "0", "--seq-len", "8"]) == 0
    assert "soft weight" not in capsys.readouterr().out

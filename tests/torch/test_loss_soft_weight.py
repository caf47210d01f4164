"""ngram_loss with a batch's ``soft_weight`` (spec/TARGETS.md, "Soft-term weight"): position p
weighs its soft term by alpha * w_p and its label by 1 - alpha * w_p; a batch without it is
today's loss; the datasets carry it only when ``alpha_count`` > 0."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import ngramds
from ngramds.torch import NgramDataset, NgramLoader, NgramTargets, ngram_loss

SEQ = 8


def hand_loss(logits, labels, ids, probs, weights, alpha):
    """Per position (1 - a w) CE + a w softCE, averaged over the labelled positions."""
    logp = torch.log_softmax(logits.double(), -1)
    total, count = 0.0, 0
    B, L, _ = logits.shape
    for b in range(B):
        for t in range(L):
            y = int(labels[b, t])
            if y == -100:
                continue
            a = alpha * float(weights[b, t])
            soft = -sum(float(probs[b, t, k]) * float(logp[b, t, ids[b, t, k]])
                        for k in range(ids.shape[-1]))
            total += (1 - a) * -float(logp[b, t, y]) + a * soft
            count += 1
    return total / count


def example(device, gen_seed=0):
    gen = torch.Generator().manual_seed(gen_seed)
    logits = torch.randn(2, 4, 9, dtype=torch.float64, generator=gen)
    labels = torch.randint(0, 9, (2, 4), generator=gen)
    labels[1, 2] = -100
    ids = torch.randint(0, 9, (2, 4, 3), generator=gen)
    probs = torch.rand(2, 4, 3, generator=gen)
    probs = (probs / probs.sum(-1, keepdim=True)).float()
    weights = torch.tensor([[0.5, 0.25, 1.0, 0.0], [0.75, 0.125, 0.5, 0.875]])
    return (t.to(device) for t in (logits, labels, ids, probs, weights))


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_the_weighted_loss_is_the_formula(device, alpha):
    logits, labels, ids, probs, w = example(device)
    batch = {"labels": labels, "target_ids": ids, "target_probs": probs, "soft_weight": w}
    got = ngram_loss(logits, batch, alpha=alpha)
    expect = hand_loss(logits.cpu(), labels.cpu(), ids.cpu(), probs.cpu(), w.cpu(), alpha)
    assert float(got) == pytest.approx(expect, rel=1e-6)
    # the gradient is that of the same formula, written with plain torch ops
    z = logits.clone().requires_grad_()
    ngram_loss(z, batch, alpha=alpha).backward()
    z2 = logits.clone().requires_grad_()
    logp = torch.log_softmax(z2, -1)
    mask = labels != -100
    a = alpha * w.double()
    ce = -logp.gather(-1, labels.clamp_min(0)[..., None])[..., 0]
    soft = -(probs.double() * logp.gather(-1, ids)).sum(-1)
    ((((1 - a) * ce + a * soft) * mask).sum() / mask.sum()).backward()
    torch.testing.assert_close(z.grad, z2.grad)


def test_weights_of_one_and_no_weights_are_todays_loss(device):
    logits, labels, ids, probs, w = example(device, 1)
    plain = {"labels": labels, "target_ids": ids, "target_probs": probs}
    for alpha in (0.0, 0.4, 1.0):
        base = ngram_loss(logits, plain, alpha=alpha, reduction="none")
        ones = ngram_loss(logits, {**plain, "soft_weight": torch.ones_like(w)}, alpha=alpha,
                          reduction="none")
        torch.testing.assert_close(ones, base, rtol=0, atol=0)
    zero = ngram_loss(logits, {**plain, "soft_weight": torch.zeros_like(w)}, alpha=1.0)
    assert torch.equal(zero, ngram_loss(logits, plain, alpha=0.0))


def test_hf_layout_shifts_the_weights(device):
    """An HF batch's weights move one position earlier with its targets."""
    logits, labels, ids, probs, w = example(device, 2)
    shifted = {"labels": labels, "target_ids": ids, "target_probs": probs, "soft_weight": w}
    pad = lambda t, v: torch.cat([torch.full_like(t[:, :1], v), t[:, :-1]], 1)  # noqa: E731
    hf = {"labels": pad(labels, 0), "target_ids": pad(ids, 0), "target_probs": pad(probs, 0),
          "soft_weight": pad(w, 0), "label_shift": torch.ones(2, dtype=torch.int64)}
    # the HF batch's last logits count for nothing: the shifted batch of its first L-1 rows
    cut = {k: v[:, :-1] for k, v in shifted.items()}
    got = ngram_loss(logits, hf, alpha=0.6)
    torch.testing.assert_close(got, ngram_loss(logits[:, :-1], cut, alpha=0.6))


def test_a_weight_of_the_wrong_shape_is_an_error(device):
    logits, labels, ids, probs, w = example(device)
    batch = {"labels": labels, "target_ids": ids, "target_probs": probs,
             "soft_weight": w[:, :-1]}
    with pytest.raises(ValueError, match="soft_weight"):
        ngram_loss(logits, batch, alpha=0.5)
    ngram_loss(logits, batch, alpha=0.0)  # (plain cross-entropy reads no target)


@given(tots=st.lists(st.lists(st.one_of(st.just(0), st.integers(1, 2**62 - 1)), min_size=3,
                              max_size=3), min_size=1, max_size=20),
       k=st.one_of(st.sampled_from([1e-300, 0.5, 1.0, 1e18]),
                   st.floats(1e-6, 1e12, allow_nan=False)))
@settings(max_examples=100, deadline=None)
def test_the_weight_kernels_agree_bit_for_bit(device, tots, k):
    """Compiled and torch: t / (t + k) in float64 then float32, t the highest order's total
    (0 for a context pruned away: w = 0), whatever the lower orders hold."""
    from ngramds.targets import kernels as compiled
    from ngramds.torch import kernels
    a = np.array(tots, np.int64).T.copy()  # [orders, N], ascending orders
    a[0] = np.maximum(a[0], 1)  # (the lowest order is never pruned)
    out = np.empty(a.shape[1], np.float32)
    compiled.soft_weights(a, np.arange(3), k, out)
    got = kernels.soft_weights([torch.from_numpy(x).to(device) for x in a], k)
    assert got.dtype == torch.float32 and got.cpu().numpy().tobytes() == out.tobytes()
    top = [int(col[-1]) for col in a.T]
    assert out.tolist() == [float(np.float32(t / (t + k))) for t in top]


@pytest.fixture(scope="module")
def path(tmp_path_factory):
    tokens = (np.random.default_rng(0).zipf(1.3, SEQ * 40 + 1) % 30).astype(np.uint16)
    p = tmp_path_factory.mktemp("w") / "w.ngds"
    ngramds.build(tokens, p, orders=[2, 3], eos_id=0, progress=False)
    return p


def first(ds, batch_size=4):
    return next(iter(NgramLoader(ds, batch_size=batch_size)))


@pytest.mark.parametrize("layout", ["shifted", "hf"])
def test_datasets_carry_the_weight_only_when_asked(path, layout):
    off = first(NgramDataset(path, SEQ, seed=3, layout=layout))
    on = first(NgramDataset(path, SEQ, seed=3, layout=layout, alpha_count=4.0))
    assert "soft_weight" not in off
    for key in off:
        assert torch.equal(off[key], on[key]), key
    w = on["soft_weight"]
    assert w.dtype == torch.float32 and w.shape == on["labels"].shape
    live = on["target_probs"].sum(-1) > 0
    assert bool((w[live] > 0).all() and (w[live] < 1).all()) and not w[~live].any()
    # per-sample items (a plain DataLoader) collate to the same batch
    items = next(iter(torch.utils.data.DataLoader(
        NgramDataset(path, SEQ, seed=3, layout=layout, alpha_count=4.0, batch_size=4),
        batch_size=4)))
    assert torch.equal(items["soft_weight"], w)
    # the device path computes the same weights (bit for bit), in both backends
    ds = NgramDataset(path, SEQ, seed=3, layout=layout, alpha_count=4.0, targets_on="device")
    shipped = first(ds)
    for backend in ("torch", "compiled"):
        dev = NgramTargets(ds, backend=backend)(shipped)
        assert torch.equal(dev["soft_weight"], w), backend
        assert torch.equal(dev["target_probs"], on["target_probs"])
    assert "soft_weight" not in NgramTargets(NgramDataset(path, SEQ, seed=3, layout=layout,
                                                          targets_on="device"))(shipped)


@given(data=st.data(), mixing=st.sampled_from(["none", "witten-bell", "fixed"]),
       k=st.sampled_from([0.5, 2.0, 1e6]), compact=st.booleans())
@settings(max_examples=30, deadline=None)
def test_pruned_contexts_weigh_nothing(tmp_path_factory, data, mixing, k, compact):
    """A position whose top context was pruned away (seen fewer than min_count times: T = 0)
    has w = 0, whatever the lower orders hold: the weights equal the reference's, in the
    compiled kernels and in the device path."""
    from target_reference import reference_soft_weight

    from ngramds.targets import TargetConfig, Targets
    vocab = data.draw(st.integers(2, 4))
    docs = [data.draw(st.lists(st.integers(0, vocab - 1), min_size=2, max_size=50))
            for _ in range(data.draw(st.integers(1, 2)))]
    orders = sorted(data.draw(st.lists(st.integers(1, 4), min_size=2, max_size=3, unique=True)))
    spec = {o: data.draw(st.integers(1, 3)) for o in orders[1:]}
    path = tmp_path_factory.mktemp("p") / "p.ngds"
    try:
        ngramds.build(docs, path, orders=orders, vocab_size=vocab, progress=False,
                      min_count=spec, compact=compact)
    except ngramds.InputError:
        return  # an order would lose every context
    f = ngramds.open(path)
    cfg = TargetConfig(mixing=mixing, top_r=1, lambdas=[1] * len(orders)
                       if mixing == "fixed" else None, alpha_count=k)
    t = Targets(f, cfg)
    used = t.plan.orders
    seq = 1
    starts = np.arange(f.num_tokens - seq)
    w = np.empty((starts.size, seq), np.float32)
    t.compute(starts, seq, soft_weights=w)
    assert w[:, 0].tolist() == [reference_soft_weight(f, p, used, k)
                                for p in range(1, f.num_tokens)]
    batch = {key: torch.from_numpy(v) for key, v in t.device_inputs(starts, seq).items()}
    batch.update(start=torch.from_numpy(starts), epoch=torch.zeros(starts.size, dtype=torch.long))
    for backend in ("torch", "compiled"):
        got = NgramTargets(f, cfg, backend=backend)(batch)["soft_weight"]
        assert got.numpy().tobytes() == w.tobytes(), backend

import pytest
import torch
import torch.nn.functional as F

from ngramds.torch import ngram_loss, soft_cross_entropy


def dense_reference(logits, ids, probs):
    dense = torch.zeros_like(logits).scatter_add(-1, ids, probs.to(logits.dtype))
    return -(dense * torch.log_softmax(logits, -1)).sum(-1)


def random_targets(shape, vocab, k, gen):
    ids = torch.randint(0, vocab, (*shape, k), generator=gen)
    probs = torch.rand((*shape, k), generator=gen, dtype=torch.float64)
    return ids, probs / probs.sum(-1, keepdim=True)


def test_matches_dense_reference_and_gradcheck():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 7, dtype=torch.float64, generator=gen, requires_grad=True)
    ids, probs = random_targets((2, 3), 7, 4, gen)
    got = soft_cross_entropy(logits, ids, probs, reduction="none")
    torch.testing.assert_close(got, dense_reference(logits, ids, probs))
    assert torch.autograd.gradcheck(
        lambda z: soft_cross_entropy(z, ids, probs), (logits,))
    g1, = torch.autograd.grad(soft_cross_entropy(logits, ids, probs), logits)
    g2, = torch.autograd.grad(dense_reference(logits, ids, probs).mean(), logits)
    torch.testing.assert_close(g1, g2)


def test_ngram_loss_combines_terms_and_masks():
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 5, 11, dtype=torch.float64, generator=gen, requires_grad=True)
    labels = torch.randint(0, 11, (2, 5), generator=gen)
    labels[0, 1] = -100
    ids, probs = random_targets((2, 5), 11, 3, gen)
    batch = {"labels": labels, "target_ids": ids, "target_probs": probs}
    alpha = 0.3
    keep = labels != -100
    ce = F.cross_entropy(logits[keep], labels[keep])
    soft = dense_reference(logits, ids, probs)[keep].mean()
    torch.testing.assert_close(ngram_loss(logits, batch, alpha=alpha),
                               (1 - alpha) * ce + alpha * soft)
    assert torch.autograd.gradcheck(lambda z: ngram_loss(z, batch, alpha=alpha), (logits,))
    onehot = {"labels": labels}
    torch.testing.assert_close(ngram_loss(logits, onehot), ce)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_logits(dtype):
    gen = torch.Generator().manual_seed(2)
    logits = torch.randn(4, 50, generator=gen)
    ids, probs = random_targets((4,), 50, 5, gen)
    half = logits.to(dtype).requires_grad_()
    loss = soft_cross_entropy(half, ids, probs.float())
    assert loss.dtype == torch.float32
    ref = dense_reference(half.detach().float().double(), ids, probs).mean()
    assert abs(loss.item() - ref.item()) < 1e-3
    loss.backward()
    assert half.grad.dtype == dtype


def test_mask_and_reductions():
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(3, 6, generator=gen)
    ids, probs = random_targets((3,), 6, 2, gen)
    mask = torch.tensor([True, False, True])
    per = soft_cross_entropy(logits, ids, probs.float(), reduction="none", mask=mask)
    assert per[1] == 0
    torch.testing.assert_close(soft_cross_entropy(logits, ids, probs.float(), mask=mask),
                               per.sum() / 2)
    torch.testing.assert_close(soft_cross_entropy(logits, ids, probs.float(), "sum", mask),
                               per.sum())
    with pytest.raises(ValueError):
        soft_cross_entropy(logits, ids, probs.float(), reduction="avg")

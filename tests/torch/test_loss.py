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


def test_matches_dense_reference_and_gradcheck(device):
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 7, dtype=torch.float64, generator=gen).to(device).requires_grad_()
    ids, probs = (t.to(device) for t in random_targets((2, 3), 7, 4, gen))
    got = soft_cross_entropy(logits, ids, probs, reduction="none")
    torch.testing.assert_close(got, dense_reference(logits, ids, probs))
    assert torch.autograd.gradcheck(
        lambda z: soft_cross_entropy(z, ids, probs), (logits,))
    g1, = torch.autograd.grad(soft_cross_entropy(logits, ids, probs), logits)
    g2, = torch.autograd.grad(dense_reference(logits, ids, probs).mean(), logits)
    torch.testing.assert_close(g1, g2)


def test_ngram_loss_combines_terms_and_masks(device):
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 5, 11, dtype=torch.float64, generator=gen).to(device)
    logits.requires_grad_()
    labels = torch.randint(0, 11, (2, 5), generator=gen).to(device)
    labels[0, 1] = -100
    ids, probs = (t.to(device) for t in random_targets((2, 5), 11, 3, gen))
    batch = {"labels": labels, "target_ids": ids, "target_probs": probs}
    alpha = 0.3
    keep = labels != -100
    ce = F.cross_entropy(logits[keep], labels[keep])
    soft = dense_reference(logits, ids, probs)[keep].mean()
    torch.testing.assert_close(ngram_loss(logits, batch, alpha=alpha),
                               (1 - alpha) * ce + alpha * soft)
    assert torch.autograd.gradcheck(lambda z: ngram_loss(z, batch, alpha=alpha), (logits,))
    onehot = {"labels": labels, "target_ids": ids[..., :0], "target_probs": probs[..., :0]}
    torch.testing.assert_close(ngram_loss(logits, onehot), ce)  # targets="onehot": K = 0
    torch.testing.assert_close(ngram_loss(logits, {"labels": labels}, alpha=0), ce)


def test_a_batch_that_lost_its_targets_is_an_error():
    """A collator or framework that drops keys must not turn the loss into plain cross-entropy
    without a word."""
    logits = torch.randn(2, 5, 11)
    labels = torch.randint(0, 11, (2, 5))
    with pytest.raises(ValueError, match="collator removed them"):
        ngram_loss(logits, {"labels": labels, "input_ids": labels})


def test_shape_errors_name_the_shapes():
    """Logits of the wrong shape are refused naming both shapes (nanoGPT's model(idx) returns
    last-position logits only)."""
    labels = torch.randint(0, 11, (2, 5))
    ids, probs = random_targets((2, 5), 11, 3, torch.Generator().manual_seed(4))
    batch = {"labels": labels, "target_ids": ids, "target_probs": probs.float()}
    with pytest.raises(ValueError, match=r"\(2, 1, 11\), expected \(2, 5, 'V'\).*nanoGPT"):
        ngram_loss(torch.randn(2, 1, 11), batch)
    with pytest.raises(ValueError, match="expected"):
        ngram_loss(torch.randn(10, 11), batch)
    with pytest.raises(ValueError, match="target_ids"):
        ngram_loss(torch.randn(2, 5, 11), dict(batch, target_ids=ids[:, :4]))


def test_sum_over_items_for_gradient_accumulation():
    """ngram_loss(..., num_items_in_batch=N) summed over micro-batches equals the mean of the
    whole batch."""
    gen = torch.Generator().manual_seed(5)
    logits = torch.randn(4, 5, 11, dtype=torch.float64, generator=gen)
    labels = torch.randint(0, 11, (4, 5), generator=gen)
    labels[1, 2] = -100
    ids, probs = random_targets((4, 5), 11, 3, gen)
    batch = {"labels": labels, "target_ids": ids, "target_probs": probs}
    whole = ngram_loss(logits, batch)
    n = int((labels != -100).sum())
    parts = sum(ngram_loss(logits[i:i + 1], {k: v[i:i + 1] for k, v in batch.items()},
                           num_items_in_batch=n) for i in range(4))
    torch.testing.assert_close(parts, whole)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_logits(dtype, device):
    gen = torch.Generator().manual_seed(2)
    logits = torch.randn(4, 50, generator=gen).to(device)
    ids, probs = (t.to(device) for t in random_targets((4,), 50, 5, gen))
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


def test_a_model_vocabulary_smaller_than_the_files_is_named(device):
    """A label or target id >= the logits' V: one line naming the cause, not torch's index
    error. (On CUDA a device-side assert, without a host sync, carries the message: it ends the
    process's CUDA context, so tools/gpu_check.py checks it in a subprocess.)"""
    if device != "cpu":
        pytest.skip("a device-side assert ends the CUDA context (tools/gpu_check.py checks it)")
    gen = torch.Generator().manual_seed(6)
    labels = torch.randint(0, 11, (2, 5), generator=gen)
    ids, probs = random_targets((2, 5), 11, 3, gen)
    labels[1, 3] = 10
    batch = {"labels": labels, "target_ids": ids, "target_probs": probs.float()}
    for b in (batch, {**batch, "labels": labels.clamp(max=4)}):
        b["target_ids"][0, 0, 0] = 10
        with pytest.raises(ValueError, match=r"id 10 .* 5 classes.*vocabulary") as e:
            ngram_loss(torch.randn(2, 5, 5), b)
        assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="vocabulary"):
        ngram_loss(torch.randn(2, 5, 5), {"labels": labels}, alpha=0)
    compiled = torch.compile(ngram_loss, backend="eager", fullgraph=True)
    with pytest.raises(RuntimeError, match="vocabulary"):
        compiled(torch.randn(2, 5, 5), batch)

"""Losses against sparse soft targets, without a dense [..., vocab] target tensor."""
from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100
DEFAULT_ALPHA = 0.5


def soft_cross_entropy(logits: torch.Tensor, target_ids: torch.Tensor,
                       target_probs: torch.Tensor, reduction: str = "mean",
                       mask: torch.Tensor | None = None) -> torch.Tensor:
    """-sum_k p_k * log_softmax(logits)[id_k] per position.

    logits [..., V] (any float dtype; computed in float32), target_ids [..., K] int64,
    target_probs [..., K]. ``mask`` [...] (bool, True = counted) drops positions from the loss
    and from the mean's denominator; a row of all-zero probabilities adds 0. ``reduction``:
    "mean" (over counted positions), "sum" or "none" (per position, 0 where masked).
    """
    logits = _upcast(logits)
    lse = torch.logsumexp(logits, dim=-1)
    picked = torch.gather(logits, -1, target_ids)
    probs = target_probs.to(logits.dtype)
    loss = lse * probs.sum(-1) - (probs * picked).sum(-1)
    return _reduce(loss, mask, reduction)


def ngram_loss(logits: torch.Tensor, batch: dict, alpha: float = DEFAULT_ALPHA,
               reduction: str = "mean") -> torch.Tensor:
    """(1 - alpha) * cross_entropy(logits, labels) + alpha * soft_cross_entropy(...).

    ``batch`` is what :class:`NgramDataset` yields (tensors may be on any device). Positions
    whose label is -100 are ignored by both terms. Without soft targets in the batch (targets
    "onehot") this is plain cross-entropy. The log-normaliser is computed once for both terms.
    """
    labels = batch["labels"].to(logits.device)
    mask = labels != IGNORE_INDEX
    logits = _upcast(logits)
    if "target_ids" not in batch or alpha == 0:
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                               ignore_index=IGNORE_INDEX, reduction="none").view(labels.shape)
        return _reduce(loss, mask, reduction)
    ids = batch["target_ids"].to(logits.device)
    probs = batch["target_probs"].to(logits.device, logits.dtype)
    lse = torch.logsumexp(logits, dim=-1)
    label_logit = torch.gather(logits, -1, labels.clamp_min(0).unsqueeze(-1)).squeeze(-1)
    soft = lse * probs.sum(-1) - (probs * torch.gather(logits, -1, ids)).sum(-1)
    loss = (1 - alpha) * (lse - label_logit) + alpha * soft
    return _reduce(loss, mask, reduction)


def _upcast(logits: torch.Tensor) -> torch.Tensor:
    """Half-precision logits are computed in float32 (float64 stays float64)."""
    return logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits


def _reduce(loss: torch.Tensor, mask: torch.Tensor | None, reduction: str) -> torch.Tensor:
    if mask is not None:
        loss = torch.where(mask, loss, torch.zeros_like(loss))
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        count = loss.numel() if mask is None else mask.sum()
        return loss.sum() / torch.clamp(torch.as_tensor(count, device=loss.device), min=1)
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")

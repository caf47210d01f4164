"""Losses against sparse soft targets, without a dense [..., vocab] target tensor."""
from __future__ import annotations

from collections.abc import Mapping

import torch

from ..targets.packing import IGNORE_INDEX

LABEL_SHIFT = "label_shift"  # the key that marks a batch of NgramDataset(layout="hf")
SOFT_WEIGHT = "soft_weight"  # per position, scales alpha (TargetConfig.alpha_count > 0)
# Best held-out loss in docs/RESULTS.md's sweep (alpha 0.25 / 0.5 / 1.0 at order 4, r = 8).
DEFAULT_ALPHA = 1.0


class _SparseCrossEntropy(torch.autograd.Function):
    """Per-row -sum_k w_k log_softmax(z)[id_k] for z [N, V], ids/w [N, K].

    One fused log-softmax, and a backward that writes the gradient in one pass
    (softmax(z) * sum_k w_k, then -w_k added at id_k): the work of plain cross-entropy.
    Float32/64 logits keep their log-softmax for the backward, as cross-entropy does;
    half-precision logits keep only themselves (half the memory) and recompute it in float32.
    """

    @staticmethod
    def forward(ctx, logits, ids, weights):
        half = logits.dtype in (torch.float16, torch.bfloat16)
        logp = _log_softmax(logits)
        wsum = weights.sum(-1)
        loss = -(weights * torch.gather(logp, -1, ids)).sum(-1)
        ctx.half = half
        ctx.save_for_backward(logits if half else logp, ids, weights, wsum)
        return loss

    @staticmethod
    def backward(ctx, grad):
        saved, ids, weights, wsum = ctx.saved_tensors
        logp = _log_softmax(saved) if ctx.half else saved
        g = torch.exp(logp) if not ctx.half else logp.exp_()  # (a recomputed one is ours)
        g.mul_((grad * wsum).unsqueeze(-1))
        g.scatter_add_(-1, ids, -(grad.unsqueeze(-1) * weights))
        return g.to(saved.dtype), None, None


def _sparse_ce(logits: torch.Tensor, ids: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Apply _SparseCrossEntropy over the leading dimensions of ``logits``."""
    shape = logits.shape[:-1]
    weights = weights.to(torch.float64 if logits.dtype == torch.float64 else torch.float32)
    loss = _SparseCrossEntropy.apply(logits.reshape(-1, logits.shape[-1]),
                                     ids.reshape(-1, ids.shape[-1]),
                                     weights.reshape(-1, weights.shape[-1]))
    return loss.view(shape)


def soft_cross_entropy(logits: torch.Tensor, target_ids: torch.Tensor,
                       target_probs: torch.Tensor, reduction: str = "mean",
                       mask: torch.Tensor | None = None) -> torch.Tensor:
    """-sum_k p_k * log_softmax(logits)[id_k] per position.

    logits [..., V] (any float dtype; half precision is computed in float32), target_ids
    [..., K] int64, target_probs [..., K]. ``mask`` [...] (bool, True = counted) drops positions
    from the loss and from the mean's denominator; a row of all-zero probabilities adds 0.
    ``reduction``: "mean" (over counted positions), "sum" or "none" (per position, 0 where
    masked).

    Args:
        logits: [..., V], any float dtype.
        target_ids: [..., K] int64.
        target_probs: [..., K].
        reduction: "mean", "sum" or "none".
        mask: [...] bool, True where a position counts (default: all).

    Returns:
        The loss: a scalar, or [...] with ``reduction="none"``.

    Raises:
        ValueError: a target id outside the logits' vocabulary, or an unknown ``reduction``.
    """
    probs = target_probs.to(target_ids.device)
    _check_ids(target_ids, logits.shape[-1])
    if mask is not None:
        probs = probs * mask.unsqueeze(-1)
    return _reduce(_sparse_ce(logits, target_ids, probs), mask, reduction)


def ngram_loss(logits: torch.Tensor, batch: dict, alpha: float = DEFAULT_ALPHA,
               reduction: str = "mean", num_items_in_batch: int | torch.Tensor | None = None,
               shift: bool | None = None) -> torch.Tensor:
    """(1 - alpha) * cross_entropy(logits, labels) + alpha * soft_cross_entropy(...).

    ``logits`` [B, L, V] for every position of the batch :class:`NgramDataset` yields
    (``labels`` [B, L], ``target_ids`` / ``target_probs`` [B, L, K]; tensors may be on any
    device). Positions whose label is -100 are ignored by both terms. A one-hot dataset
    (``targets="onehot"``, K = 0) gives plain cross-entropy; so does ``alpha=0`` with any
    batch. A batch without ``target_ids``/``target_probs`` is an error: a framework or
    collator dropped them. ``reduction``: "mean" over counted positions, "sum", "none", or
    the sum divided by ``num_items_in_batch`` when given (gradient accumulation: the number of
    counted positions of all micro-batches of the step). Both terms share one log-normaliser
    and one gradient pass.

    Layout: a batch with ``label_shift`` (``NgramDataset(layout="hf")``: labels equal
    input_ids) is shifted here, logits at t against the label and target of t + 1 (the last
    position counts for nothing); a batch without it is already shifted. ``shift`` (default:
    from the batch) states which you expect; a batch of the other layout is an error.

    A batch with ``soft_weight`` [B, L] (``TargetConfig(alpha_count=k)``, k > 0) weighs
    position p by a_p = alpha * soft_weight[p]: (1 - a_p) * CE + a_p * soft CE.

    Args:
        logits: [B, L, V], the model's logits at every position of the batch.
        batch: the batch dict of :class:`NgramDataset` / :class:`NgramLoader`.
        alpha: the weight of the soft term (1: the soft targets alone; 0: plain cross-entropy).
        reduction: "mean", "sum" or "none".
        num_items_in_batch: divide the sum by this (gradient accumulation).
        shift: the label layout you expect (True: HF layout, shifted here); default: the
            batch's.

    Returns:
        The loss: a scalar, or [B, L] with ``reduction="none"``.

    Raises:
        ValueError: a batch without its soft targets, shapes that do not match (both are
            named), a label or target id outside the vocabulary, or a layout other than
            ``shift`` says.
    """
    marked = isinstance(batch, Mapping) and LABEL_SHIFT in batch
    if shift is not None and bool(shift) != marked:
        raise ValueError(
            "shift=True, but the batch's labels are already shifted (no label_shift key: "
            "labels[t] follows input_ids[t]); shifting again would misalign them"
            if shift else
            "shift=False, but the batch is in HF layout (label_shift: labels equal input_ids); "
            "ngram_loss shifts it itself: give it the logits of every position")
    labels = _check_batch(logits, batch, alpha)
    if marked:
        batch = _shifted(batch, alpha)
        labels = batch["labels"]
    device = logits.device
    labels = labels.to(device)
    mask = labels != IGNORE_INDEX
    ids = labels.clamp_min(0).unsqueeze(-1)
    weights = mask.unsqueeze(-1).float()
    if alpha != 0 and batch["target_ids"].shape[-1]:
        ids = torch.cat([ids, batch["target_ids"].to(device)], -1)
        probs = batch["target_probs"].to(device).float() * mask.unsqueeze(-1)
        if SOFT_WEIGHT in batch:  # alpha per position (spec/TARGETS.md, "Soft-term weight")
            a = alpha * batch[SOFT_WEIGHT].to(device).float().unsqueeze(-1)
            weights = torch.cat([(1 - a) * weights, a * probs], -1)
        else:
            weights = torch.cat([(1 - alpha) * weights, alpha * probs], -1)
    _check_ids(ids, logits.shape[-1])
    loss = _sparse_ce(logits, ids, weights)
    if num_items_in_batch is not None:
        return loss.sum() / num_items_in_batch
    return _reduce(loss, mask, reduction)


def _shifted(batch, alpha: float) -> dict:
    """An HF-layout batch as an already-shifted one of the same length: labels and targets move
    one position earlier, the last position is ignored (the logits are not copied)."""
    labels = batch["labels"]
    out = {"labels": torch.cat([labels[..., 1:], torch.full_like(labels[..., :1],
                                                                 IGNORE_INDEX)], -1)}
    if alpha != 0:
        for key in ("target_ids", "target_probs"):
            t = batch[key]
            out[key] = torch.cat([t[..., 1:, :], torch.zeros_like(t[..., :1, :])], -2)
        if SOFT_WEIGHT in batch:
            w = batch[SOFT_WEIGHT]
            out[SOFT_WEIGHT] = torch.cat([w[..., 1:], torch.zeros_like(w[..., :1])], -1)
    return out


def _check_batch(logits: torch.Tensor, batch, alpha: float) -> torch.Tensor:
    """The batch's labels, once logits and targets have the shapes ngram_loss needs; a
    one-line error naming them otherwise."""
    if not isinstance(batch, Mapping) or "labels" not in batch:
        raise ValueError("ngram_loss needs the batch dict NgramDataset yields (input_ids, "
                         "labels, target_ids, target_probs)")
    labels = batch["labels"]
    if alpha != 0 and ("target_ids" not in batch or "target_probs" not in batch):
        raise ValueError("the batch has no target_ids/target_probs: a framework or collator "
                         "removed them (HF Trainer: use ngramds.hf.NgramTrainer, or "
                         "remove_unused_columns=False); for plain cross-entropy pass alpha=0 "
                         "or build the dataset with targets='onehot'")
    if logits.dim() < 2 or logits.shape[:-1] != labels.shape:
        last = " (only the last position: nanoGPT's model(idx) returns that unless given " \
               "targets; call model(idx, batch['labels']))" \
            if logits.dim() == 3 and logits.shape[1] == 1 and labels.dim() == 2 \
            and labels.shape[1] != 1 else ""
        if LABEL_SHIFT in batch:
            last += " (the batch is in HF layout, label_shift: ngram_loss shifts the labels " \
                    "itself; pass the logits of every position, unshifted)"
        raise ValueError(f"logits have shape {tuple(logits.shape)}, expected "
                         f"{(*labels.shape, 'V')}: one row of V logits per label{last}")
    if alpha != 0:
        ids, probs = batch["target_ids"], batch["target_probs"]
        if ids.shape[:-1] != labels.shape or probs.shape != ids.shape:
            raise ValueError(f"target_ids {tuple(ids.shape)} and target_probs "
                             f"{tuple(probs.shape)} must both be {(*labels.shape, 'K')}")
        w = batch.get(SOFT_WEIGHT)
        if w is not None and (not isinstance(w, torch.Tensor) or not w.is_floating_point()
                              or w.shape != labels.shape):
            what = f"{w.dtype} {tuple(w.shape)}" if isinstance(w, torch.Tensor) else \
                type(w).__name__
            raise ValueError(f"the batch's soft_weight is {what}; expected floats of the "
                             f"labels' shape {tuple(labels.shape)}")
    return labels


_VOCAB_MESSAGE = ("a label or target id is >= the logits' last dimension V: the "
                  "model's vocabulary is smaller than the file's (make the model's vocab_size "
                  "at least ngramds.open(path).vocab_size)")


def _check_ids(ids: torch.Tensor, vocab: int) -> None:
    """Every label and target id indexes a logit: on the CPU a ValueError naming the largest
    id; on a device (and under torch.compile) an asynchronous device-side assert carrying the
    message, so no host sync (on CUDA it ends the process's CUDA context, as any device-side
    assert does; the gather would otherwise fail there with a bare index error)."""
    bad = ((ids < 0) | (ids >= vocab)).any()
    if ids.device.type != "cpu" or torch.compiler.is_compiling():
        torch._assert_async(~bad, _VOCAB_MESSAGE)
    elif bool(bad):
        worst = int(ids.max()) if int(ids.max()) >= vocab else int(ids.min())
        raise ValueError(f"a label or target id {worst} does not index the logits' "
                         f"{vocab} classes: the model's vocabulary is smaller than the "
                         "file's (make the model's vocab_size at least "
                         "ngramds.open(path).vocab_size)")


def _log_softmax(logits: torch.Tensor) -> torch.Tensor:
    """log_softmax over the last dimension, of half-precision logits in float32 (cast inside
    the kernel, no float32 copy of the logits)."""
    half = logits.dtype in (torch.float16, torch.bfloat16)
    return torch.log_softmax(logits, dim=-1, dtype=torch.float32 if half else None)


def _reduce(loss: torch.Tensor, mask: torch.Tensor | None, reduction: str) -> torch.Tensor:
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        count = loss.numel() if mask is None else mask.sum()
        return loss.sum() / torch.clamp(torch.as_tensor(count, device=loss.device), min=1)
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")

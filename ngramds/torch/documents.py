"""Document boundaries in a batch: per-position ``position_ids`` from the file's document
offsets, and ``cu_seqlens`` (FlashAttention varlen) of a batch of them."""
from __future__ import annotations

import numpy as np
import torch

from ..file.reader import document_starts

__all__ = ["cu_seqlens"]


def window_position_ids(doc_offsets: np.ndarray, starts: np.ndarray, seq_len: int) -> np.ndarray:
    """int64 [B, L]: for the window of tokens [s, s+L) of each start s, 0 at the window's first
    token and at every token that starts a document, else the previous position + 1."""
    starts = np.asarray(starts, dtype=np.int64)
    pos = starts[:, None] + np.arange(seq_len, dtype=np.int64)
    first = document_starts(doc_offsets, pos)
    return pos - np.maximum(np.minimum(first, pos), starts[:, None])


def cu_seqlens(position_ids: torch.Tensor) -> tuple[torch.Tensor, int]:
    """The segments of a packed batch, as FlashAttention's varlen functions take them.

    A segment of the flattened batch starts wherever a position is 0.

    Args:
        position_ids: [B, L] or [L], each row starting at 0 (``NgramDataset(doc_info=True)``).

    Returns:
        ``(cu_seqlens, max_seqlen)``: int32 [segments + 1] on the tensor's device, and the
        longest segment's length.

    Raises:
        ValueError: another shape, an empty tensor, or a row that does not start at 0.
    """
    if position_ids.dim() not in (1, 2) or position_ids.numel() == 0:
        raise ValueError(f"position_ids must be [B, L] or [L], got {tuple(position_ids.shape)}")
    rows = position_ids.reshape(-1, position_ids.shape[-1])
    if bool((rows[:, 0] != 0).any()):
        raise ValueError("every row of position_ids must start at 0 (a new segment)")
    flat = rows.reshape(-1)
    starts = torch.nonzero(flat == 0).reshape(-1)
    cu = torch.cat([starts, torch.tensor([flat.numel()], device=flat.device)]).to(torch.int32)
    return cu, int((cu[1:] - cu[:-1]).max())

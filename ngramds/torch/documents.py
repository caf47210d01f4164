"""Document boundaries in a batch: ``cu_seqlens`` (FlashAttention varlen) of a batch's
``position_ids`` (made from the file's document offsets by
:func:`ngramds.targets.assembly.window_position_ids` or the document packing)."""
from __future__ import annotations

import torch

__all__ = ["cu_seqlens"]


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

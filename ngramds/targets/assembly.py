"""Items of a file's samples, torch-free: the windows or document-aligned samples, their labels,
prompt masks, layout and position ids, with the targets filled in (what ``NgramDataset``
yields for a batch of sample numbers and ``ngramds show`` prints for one), and the slice of
the file a device-mode item ships instead of targets. numpy only; spec/TARGETS.md."""
from __future__ import annotations

import numpy as np

from ..file.reader import NgramFile, document_starts
from .compute import Targets
from .packing import IGNORE_INDEX, Packing, hide_window_prompts, pack_documents, packed_batch

SAMPLINGS = ("windows", "documents")
LAYOUTS = ("shifted", "hf")


def sample_layout(f: NgramFile, seq_len: int, sampling: str = "windows"
                  ) -> tuple[Packing | None, int]:
    """The samples of ``f`` of ``seq_len`` tokens.

    Args:
        f: the open file.
        seq_len: tokens per sample (L).
        sampling: "windows" (sample k: tokens [kL, kL+L]) or "documents" (whole documents
            packed in corpus order, :func:`ngramds.targets.packing.pack_documents`).

    Returns:
        ``(packing, num_samples)``: the documents' packing (None for windows) and the number
        of samples, floor((N-1)/L) for windows.
    """
    packing = pack_documents(f.doc_offsets, seq_len) if sampling == "documents" else None
    num_samples = packing.num_samples if packing is not None else (f.num_tokens - 1) // seq_len
    return packing, num_samples


def fill_items(targets: Targets, samples: np.ndarray, seq_len: int, seed: int, epoch: int,
               out: list[np.ndarray], *, packing: Packing | None = None,
               mask_prompt: bool = False, layout: str = "shifted", position_ids: bool = False,
               threads: int = 1, soft_weights: np.ndarray | None = None) -> np.ndarray | None:
    """The items of sample numbers ``samples`` into ``out``.

    Args:
        targets: the file's targets (:class:`ngramds.targets.Targets`).
        samples: int64 [B] sample numbers.
        seq_len: tokens per sample (L).
        seed, epoch: the tail draws' seed and epoch.
        out: [input_ids, labels, target_ids, target_probs], arrays of
            :func:`ngramds.targets.batch_shapes` for B samples, filled in place.
        packing: the document packing of ``sampling="documents"`` (None: windows).
        mask_prompt: prompt tokens (files built with prompt lengths) are no labels: label -100
            and soft targets of probability 0.
        layout: "shifted" (``labels[t]`` follows ``input_ids[t]``) or "hf"
            (:func:`to_hf_layout`).
        position_ids: also return the position ids.
        threads: threads to compute the targets with.
        soft_weights: float32 [B, L] (plans with :attr:`Plan.soft_weight`): each row's
            soft-term weight, filled: that of its target's token position, 0 on rows without
            a target (no label, a prompt, the HF layout's row 0).

    Returns:
        The position ids (int64 [B, L]: 0 at a sample's first token and at every document
        start or piece start) when ``position_ids``, else None.
    """
    if packing is not None:
        positions = packed_batch(targets, packing, samples, seed, epoch, out, mask_prompt,
                                 threads, soft_weights)
        if layout == "hf":
            to_hf_layout(*out, packed=True)
            _shift_weights(soft_weights)
        return positions if position_ids else None
    starts = samples * seq_len
    targets.compute(starts, seq_len, seed, epoch, out, threads, soft_weights)
    if mask_prompt:
        hidden = hide_window_prompts(targets.file, starts, seq_len, *out[1:])
        if soft_weights is not None:
            soft_weights[hidden[:, 1:]] = 0.0
    if layout == "hf":
        to_hf_layout(*out)
        _shift_weights(soft_weights)
        if mask_prompt:
            out[1][hidden[:, :-1]] = IGNORE_INDEX
    return window_position_ids(targets.file.doc_offsets, starts, seq_len) if position_ids \
        else None


def device_items(targets: Targets, samples: np.ndarray, seq_len: int, epoch: int
                 ) -> dict[str, np.ndarray]:
    """What a device-mode item of each window sample ships instead of targets: the file's slice
    (:meth:`Targets.device_inputs`: ``window`` and ``context_ids``, or a compact file's
    ``history`` and ``context_lengths``), then ``start``, ``index``, ``epoch`` and
    ``file_crc`` (the file's header CRC), each [B]."""
    starts = samples * seq_len
    arrays = targets.device_inputs(starts, seq_len)
    arrays.update(start=starts, index=samples,
                  epoch=np.full(samples.size, epoch, dtype=np.int64),
                  file_crc=np.full(samples.size, targets.file.header_crc, np.int64))
    return arrays


def to_hf_layout(input_ids: np.ndarray, labels: np.ndarray, target_ids: np.ndarray,
                 target_probs: np.ndarray, packed: bool = False) -> None:
    """Turn shifted arrays ([B, L], [B, L, K]) into the HF layout in place: labels = input_ids
    (``packed``: the shifted labels moved one position later, -100 at 0: so -100 at each piece
    start and on padding), target rows moved one position later, row 0 of probability 0."""
    if target_ids.shape[-1]:
        target_ids[:, 1:] = target_ids[:, :-1]  # numpy buffers overlapping copies
        target_probs[:, 1:] = target_probs[:, :-1]
        target_ids[:, 0] = input_ids[:, :1]
        target_probs[:, 0] = 0.0
    if packed:
        labels[:, 1:] = labels[:, :-1]
        labels[:, 0] = IGNORE_INDEX
    else:
        labels[:] = input_ids


def _shift_weights(soft_weights: np.ndarray | None) -> None:
    """Soft-term weights [B, L] moved one position later as :func:`to_hf_layout` moves the
    targets (row 0: 0), in place."""
    if soft_weights is not None:
        soft_weights[:, 1:] = soft_weights[:, :-1]
        soft_weights[:, 0] = 0.0


def window_position_ids(doc_offsets: np.ndarray, starts: np.ndarray, seq_len: int) -> np.ndarray:
    """int64 [B, L]: for the window of tokens [s, s+L) of each start s, 0 at the window's first
    token and at every token that starts a document, else the previous position + 1."""
    starts = np.asarray(starts, dtype=np.int64)
    pos = starts[:, None] + np.arange(seq_len, dtype=np.int64)
    first = document_starts(doc_offsets, pos)
    return pos - np.maximum(np.minimum(first, pos), starts[:, None])

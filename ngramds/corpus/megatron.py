"""Megatron-LM indexed datasets (prefix.bin + prefix.idx), checked against their index."""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from ..errors import InputError
from .discovery import check_readable

__all__ = ["read_megatron", "MEGATRON_MAGIC", "MEGATRON_DTYPES"]

MEGATRON_MAGIC = b"MMIDIDX\x00\x00"
MEGATRON_DTYPES = {1: "u1", 2: "i1", 3: "<i2", 4: "<i4", 5: "<i8", 8: "<u2"}


def read_megatron(prefix: Path):
    """(tokens, document offsets) of a Megatron-LM indexed dataset ``prefix.bin/.idx``."""
    idx, bin_ = prefix.with_suffix(".idx"), prefix.with_suffix(".bin")
    for p in (idx, bin_):
        check_readable(p)
    raw = idx.read_bytes()
    head = struct.Struct("<9sQBQQ")
    if len(raw) < head.size or raw[:9] != MEGATRON_MAGIC:
        raise InputError(f"{idx} is not a Megatron index (magic must be MMIDIDX)")
    _, version, code, num_seq, num_doc_idx = head.unpack_from(raw)
    if version != 1:
        raise InputError(f"{idx}: Megatron index version {version} is not supported (only 1)")
    if code not in MEGATRON_DTYPES:
        raise InputError(f"{idx}: Megatron dtype code {code} is not an integer token type")
    need = head.size + num_seq * 12 + num_doc_idx * 8
    if len(raw) < need or num_doc_idx < 1:
        raise InputError(f"{idx} is truncated ({len(raw)} bytes, need {need})")
    sizes = np.frombuffer(raw, "<i4", num_seq, head.size).astype(np.int64)
    pointers = np.frombuffer(raw, "<i8", num_seq, head.size + 4 * num_seq)
    doc_idx = np.frombuffer(raw, "<i8", num_doc_idx, head.size + 12 * num_seq)
    if (np.any(sizes < 0) or doc_idx[0] != 0 or doc_idx[-1] != num_seq
            or np.any(np.diff(doc_idx) < 0)):
        raise InputError(f"{idx}: inconsistent sequence sizes or document index")
    dtype = np.dtype(MEGATRON_DTYPES[code])
    bin_size = bin_.stat().st_size
    ends = pointers + sizes * dtype.itemsize
    if num_seq and (np.any(pointers < 0) or ends.max() > bin_size):
        raise InputError(f"{bin_} is shorter than its index says; the dataset is truncated")
    count = int(sizes.sum())
    contiguous = num_seq == 0 or np.array_equal(pointers[1:], ends[:-1])
    if count == 0:
        tokens = np.empty(0, dtype)  # no tokens (an empty .bin cannot be mapped)
    elif contiguous:
        tokens = np.memmap(bin_, dtype, "r", int(pointers[0]), (count,))
    else:
        data = np.memmap(bin_, dtype=np.uint8, mode="r")
        tokens = np.concatenate([np.frombuffer(data, dtype, int(s), int(p))
                                 for p, s in zip(pointers, sizes)])
        del data
    seq_offsets = np.concatenate([[0], np.cumsum(sizes)])
    return tokens, seq_offsets[doc_idx].astype(np.int64)

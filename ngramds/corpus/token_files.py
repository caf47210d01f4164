"""Token files: .npy arrays and headerless uint16/uint32 files (a dtype that looks wrong is
refused, naming the right one)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from .columnar import COLUMNAR
from .discovery import TEXT_INPUTS

__all__ = ["read_token_file", "RAW_DTYPES"]

RAW_DTYPES = {"uint16": np.dtype("<u2"), "uint32": np.dtype("<u4")}
DTYPE_SAMPLE = 1 << 20   # ids of a headerless file looked at to warn about a wrong --dtype
HUGE_VOCAB = 1 << 21     # uint32 ids past this look like uint16 pairs read as uint32


def read_token_file(path: Path, dtype, force: bool = False):
    """(tokens, None) of a .npy or headerless token file (read with ``dtype`` even where its
    ids look like the other dtype's with ``force``)."""
    if path.suffix == ".npy":
        try:
            arr = np.load(path, mmap_mode="r")
        except ValueError as exc:
            raise InputError(f"{path} is not a valid .npy file ({exc})") from None
        if arr.dtype.kind not in "iu":
            raise InputError(f"{path} holds {arr.dtype} values; token ids must be integers")
        return (arr if arr.ndim == 1 else np.asarray(arr).reshape(-1)), None
    if dtype is None:
        known = ", ".join(TEXT_INPUTS + (".npy",) + COLUMNAR)
        raise InputError(f"{path} is a headerless token file: give --dtype uint16 or uint32 "
                         f"(other inputs are named by suffix: {known}, a Megatron .bin/.idx; "
                         "with --tokenizer, files of other suffixes are read as text)")
    if dtype not in RAW_DTYPES:
        raise InputError(f"unknown --dtype {dtype!r}; use uint16 or uint32")
    size = path.stat().st_size
    if size % RAW_DTYPES[dtype].itemsize:
        raise InputError(f"{path} has {size} bytes, not a multiple of {dtype}'s "
                         f"{RAW_DTYPES[dtype].itemsize}; is --dtype right?")
    if size == 0:
        return np.empty(0, RAW_DTYPES[dtype]), None
    tokens = np.memmap(path, dtype=RAW_DTYPES[dtype], mode="r")
    if not force:
        _check_other_dtype(path, tokens, dtype)
    return tokens, None


def _check_other_dtype(path: Path, tokens: np.ndarray, dtype: str) -> None:
    """InputError naming the right dtype when a headerless file's first ids clearly have the
    other width: every second uint16 zero (uint32 ids read as uint16), or uint32 ids past 2^21
    (pairs of uint16 ids read as one)."""
    sample = np.asarray(tokens[:DTYPE_SAMPLE])
    if dtype == "uint16" and sample.size >= 16 and sample.size % 2 == 0 \
            and not sample[1::2].any() and sample[0::2].any():
        seen, right = "every second uint16 value is zero, as in uint32 ids", "uint32"
    elif dtype == "uint32" and sample.size and int(sample.max()) >= HUGE_VOCAB:
        seen = f"uint32 ids reach {int(sample.max()):,}, as two uint16 ids read as one do"
        right = "uint16"
    else:
        return
    raise InputError(f"{path}: {seen}: the file holds {right} ids; give --dtype {right} "
                     f"(dtype={right!r}), or --force-dtype (force_dtype=True) to read it as "
                     f"{dtype} anyway")

"""Document boundaries of token inputs: given offsets or lengths (arrays, or a file of lengths),
or the positions of an EOS id (read in bounded chunks)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from .discovery import check_readable
from .stream import READ_CHUNK

__all__ = ["given_offsets", "eos_offsets", "read_integers"]

def given_offsets(num_tokens: int, doc_offsets, doc_lengths, boundaries) -> np.ndarray:
    """Document offsets from one of ``doc_offsets``, ``doc_lengths`` or a ``boundaries`` file
    of lengths, which must add up to ``num_tokens``; InputError otherwise."""
    given = [x is not None for x in (doc_offsets, doc_lengths, boundaries)]
    if sum(given) > 1:
        raise InputError("give only one of doc_offsets, doc_lengths and a boundaries file")
    if boundaries is not None:
        doc_lengths = read_integers(Path(boundaries))
    if doc_lengths is not None:
        lengths = np.asarray(doc_lengths).reshape(-1)
        if lengths.size and (lengths.dtype.kind not in "iu" or lengths.min() < 0):
            raise InputError("document lengths must be non-negative integers")
        doc_offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])
        if doc_offsets[-1] != num_tokens:
            raise InputError(f"document lengths add up to {doc_offsets[-1]} tokens but the "
                             f"input has {num_tokens}")
    return np.asarray(doc_offsets, dtype=np.int64).reshape(-1)


def eos_offsets(piece, eos_id: int) -> tuple[np.ndarray, bool, int]:
    """Document offsets of a piece whose documents end with ``eos_id`` (bounded reads),
    whether ``eos_id`` occurs at all, and the largest id (-1 when empty)."""
    ends, top = [np.zeros(1, np.int64)], -1
    for lo in range(0, piece.size, READ_CHUNK):
        chunk = piece.read(lo, min(piece.size, lo + READ_CHUNK))
        ends.append(np.flatnonzero(chunk == eos_id).astype(np.int64) + lo + 1)
        if chunk.size:
            top = max(top, int(chunk.max()))
    seen = sum(e.size for e in ends) > 1
    ends.append(np.array([piece.size], np.int64))
    return np.unique(np.concatenate(ends)), seen, top


def read_integers(path: Path) -> np.ndarray:
    """The integers of ``path``: a 1-D .npy array, or text with one integer per line."""
    check_readable(path)
    if path.suffix == ".npy":
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise InputError(f"{path} is not a .npy file of integers ({exc})") from None
        if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "iu" or arr.ndim != 1:
            raise InputError(f"{path} holds {getattr(arr, 'dtype', type(arr).__name__)} "
                             f"values of {getattr(arr, 'ndim', '?')} dimensions; document "
                             "lengths are a 1-D array of integers")
        return np.array(arr)
    try:
        return np.loadtxt(path, dtype=np.int64, ndmin=1)
    except (ValueError, OverflowError) as exc:
        raise InputError(f"{path}: expected one integer per line ({exc})") from None

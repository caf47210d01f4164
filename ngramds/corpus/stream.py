"""Token ids read in bounded memory: a corpus as pieces (file maps or arrays) back to back."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError

READ_CHUNK = 1 << 24  # tokens per read when scanning


@dataclass
class MappedPiece:
    """``count`` token ids of ``dtype`` at byte ``offset`` of the file ``path``. Each read maps
    the file and unmaps it again, so its pages never stay in this process's memory."""

    path: str
    offset: int
    dtype: np.dtype
    count: int

    @property
    def size(self) -> int:
        return self.count

    def read(self, lo: int, hi: int) -> np.ndarray:
        if hi <= lo:
            return np.empty(0, self.dtype)
        mm = np.memmap(self.path, self.dtype, "r", self.offset + lo * self.dtype.itemsize,
                       (hi - lo,))
        out = np.array(mm)
        del mm
        return out


@dataclass
class ArrayPiece:
    """Token ids held in memory."""

    array: np.ndarray

    @property
    def size(self) -> int:
        return self.array.size

    def read(self, lo: int, hi: int) -> np.ndarray:
        return self.array[lo:hi]


def piece_of(arr: np.ndarray):
    """A file-backed piece for a memory-mapped array, else an in-memory one."""
    if isinstance(arr, np.memmap) and arr.filename is not None and arr.ndim == 1 \
            and arr.flags.c_contiguous and arr.base is not None:
        return MappedPiece(str(arr.filename), int(arr.offset), arr.dtype, int(arr.size))
    return ArrayPiece(np.asarray(arr).reshape(-1))


@dataclass
class TokenStream:
    """The tokens of a corpus as pieces back to back, with its document offsets (in memory:
    8 bytes per document). Pickles by file name for memory-mapped pieces."""

    pieces: list
    doc_offsets: np.ndarray
    sources: list = field(default_factory=list)
    tokenizer: str | None = None
    vocab_size: int | None = None

    def __post_init__(self):
        self.bounds = np.cumsum([0] + [p.size for p in self.pieces]).astype(np.int64)

    @property
    def size(self) -> int:
        return int(self.bounds[-1])

    def read(self, lo: int, hi: int, dtype=None) -> np.ndarray:
        """Tokens [lo, hi) (read from disk for file pieces), as ``dtype`` if given."""
        parts = []
        first = max(0, int(np.searchsorted(self.bounds, lo, side="right")) - 1)
        for i in range(first, len(self.pieces)):
            base = int(self.bounds[i])
            if base >= hi:
                break
            parts.append(self.pieces[i].read(max(lo, base) - base,
                                             min(hi, int(self.bounds[i + 1])) - base))
        if not parts:
            return np.empty(0, dtype or self.pieces[0].read(0, 0).dtype)
        out = np.concatenate(parts) if len(parts) != 1 else parts[0]
        return np.asarray(out, dtype=dtype) if dtype is not None else out

    def chunks(self, size: int = READ_CHUNK, dtype=None):
        """Yield (start, tokens) over the whole stream, ``size`` tokens at a time."""
        for lo in range(0, self.size, size):
            yield lo, self.read(lo, min(self.size, lo + size), dtype)

    def min_max(self) -> tuple[int, int]:
        """Smallest and largest token id (one bounded pass)."""
        if self.size == 0:
            raise InputError("the corpus is empty (no tokens); give at least one non-empty "
                             "document")
        lo, hi = None, None
        for _, t in self.chunks():
            if t.dtype.kind not in "iu":
                raise InputError(f"token ids must be integers, got dtype {t.dtype}")
            a, b = int(t.min()), int(t.max())
            lo, hi = (a, b) if lo is None else (min(lo, a), max(hi, b))
        return lo, hi

"""Token ids read in bounded memory: a corpus as pieces (file maps or arrays) back to back.

A build that reads its input files more than once (the memory-bounded one) must see the same
tokens each time: a file piece records its file's identity (device, inode, size, modification
time) and refuses a read once it differs, and :func:`digest` gives each pass a checksum of the
tokens it read, compared across passes (:func:`check_unchanged`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from ..errors import InputError
from ..hashing import splitmix64

READ_CHUNK = 1 << 24  # tokens per read when scanning
M64 = (1 << 64) - 1


def _identity(path: str) -> tuple:
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def changed_input(path) -> InputError:
    return InputError(f"input {path} changed while the build was reading it; nothing was "
                      "written: build again once the file no longer changes")


@dataclass
class MappedPiece:
    """``count`` token ids of ``dtype`` at byte ``offset`` of the file ``path``. Each read maps
    the file and unmaps it again, so its pages never stay in this process's memory."""

    path: str
    offset: int
    dtype: np.dtype
    count: int
    identity: tuple | None = None  # (device, inode, size, mtime_ns) when the piece was made

    def __post_init__(self):
        if self.identity is None:
            self.identity = _identity(self.path)

    @property
    def size(self) -> int:
        return self.count

    def read(self, lo: int, hi: int) -> np.ndarray:
        if hi <= lo:
            return np.empty(0, self.dtype)
        try:
            same = _identity(self.path) == self.identity
        except OSError:
            same = False
        if not same:
            raise changed_input(self.path)
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
    """A file-backed piece for a memory-mapped array, else an in-memory one (a piece is
    returned as it is)."""
    if isinstance(arr, (MappedPiece, ArrayPiece)):
        return arr
    if isinstance(arr, np.memmap) and arr.filename is not None and arr.ndim == 1 \
            and arr.flags.c_contiguous and arr.base is not None:
        return MappedPiece(str(arr.filename), int(arr.offset), arr.dtype, int(arr.size))
    return ArrayPiece(np.asarray(arr).reshape(-1))


@dataclass
class TokenStream:
    """The tokens of a corpus as pieces back to back, with its document offsets (in memory:
    8 bytes per document) and, for prompt/response pairs, each document's prompt length.
    Pickles by file name for memory-mapped pieces."""

    pieces: list
    doc_offsets: np.ndarray
    sources: list = field(default_factory=list)
    tokenizer: str | None = None
    vocab_size: int | None = None
    prompt_lengths: np.ndarray | None = None

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
        """Smallest and largest token id (one bounded pass); records :attr:`checksum`, the
        :func:`digest` of all tokens, for later passes to compare with."""
        if self.size == 0:
            raise InputError("the corpus is empty (no tokens); give at least one non-empty "
                             "document")
        lo, hi, h = None, None, 0
        for start, t in self.chunks():
            if t.dtype.kind not in "iu":
                raise InputError(f"token ids must be integers, got dtype {t.dtype}")
            a, b = int(t.min()), int(t.max())
            lo, hi = (a, b) if lo is None else (min(lo, a), max(hi, b))
            h = (h + digest(t, start)) & M64
        self.checksum = h
        return lo, hi

    def checked_chunks(self, size: int = READ_CHUNK, dtype=None):
        """:meth:`chunks`, then InputError if the tokens read differ from the first pass's."""
        h = 0
        for start, t in self.chunks(size):
            h = (h + digest(t, start)) & M64
            yield start, (t if dtype is None else np.asarray(t, dtype=dtype))
        check_unchanged(self, h)


def check_unchanged(stream: TokenStream, checksum: int) -> None:
    """InputError unless ``checksum`` (a sum of :func:`digest` over all tokens, read again)
    equals the first pass's (:meth:`TokenStream.min_max`)."""
    first = getattr(stream, "checksum", None)
    if first is not None and checksum != first:
        names = ", ".join(p.path for p in stream.pieces if isinstance(p, MappedPiece))
        raise changed_input(names or "tokens")


def digest(tokens: np.ndarray, start: int) -> int:
    """Checksum of ``tokens`` at positions ``start``, ``start + 1``, ...: a sum over positions
    (mod 2^64), so the digests of consecutive slices add up to the digest of the whole."""
    if tokens.size == 0:
        return 0
    return int(_digest(np.ascontiguousarray(tokens), np.int64(start)))


@njit(cache=True, nogil=True)
def _digest(tokens, start):
    h = np.uint64(0)
    for i in range(tokens.shape[0]):
        weight = splitmix64(np.uint64(start + i)) | np.uint64(1)  # odd: every change shows
        h += weight * (np.uint64(tokens[i]) + np.uint64(1))
    return h

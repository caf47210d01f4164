"""Packed sort keys: the layout of (length, t_1..t_m[, next]) in uint64 words, MSB-first, and
the stable radix sort both the in-memory and the bounded builds sort them with."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import kernels

__all__ = ["KeyLayout", "key_layout", "key_bits", "radix_sort"]


def key_layout(m: int, bits: int, next_token: bool = False):
    """Word and shift of each context field (length, t_1..t_m), and of the next token after
    them if ``next_token``, packed MSB-first; and the bits used in each word."""
    widths = [m.bit_length()] + [bits] * (m + next_token)
    word, used, words, shifts, used_bits = 0, 0, [], [], []
    for w in widths:
        if used + w > 64:
            used_bits.append(used)
            word, used = word + 1, 0
        used += w
        words.append(word)
        shifts.append(64 - used if w else 0)
    used_bits.append(used)
    return np.array(words, np.int64), np.array(shifts, np.int64), used_bits


def key_bits(vocab_size: int) -> int:
    """Bits of one token id in a packed key."""
    return max(1, (vocab_size - 1).bit_length())


def radix_sort(keys: np.ndarray, pos: np.ndarray, used_bits: list[int], lsb: bool):
    """Stable LSD radix sort of ``keys`` [n, words] (and ``pos`` alongside), over the used bits
    of each word: the top ones (``lsb=False``) or the low ones."""
    nchunks = kernels.num_chunks(keys.shape[0])
    spare_keys, spare_pos = np.empty_like(keys), np.empty_like(pos)
    for w in reversed(range(len(used_bits))):
        lo = 0 if lsb else 64 - used_bits[w]
        for shift in range(lo, lo + used_bits[w], kernels.RADIX_BITS):
            if kernels.radix_pass(keys, pos, spare_keys, spare_pos, w, shift, nchunks):
                keys, spare_keys, pos, spare_pos = spare_keys, keys, spare_pos, pos
    return keys, pos


@dataclass(frozen=True)
class KeyLayout:
    """(length, t_1..t_m, next) of one order packed MSB-first into ``num_words`` uint64 words."""

    order: int
    bits: int
    words: np.ndarray = field(init=False, repr=False, compare=False)
    shifts: np.ndarray = field(init=False, repr=False, compare=False)
    used_bits: list = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        words, shifts, used = key_layout(self.order - 1, self.bits, next_token=True)
        object.__setattr__(self, "words", words)
        object.__setattr__(self, "shifts", shifts)
        object.__setattr__(self, "used_bits", used)

    @property
    def num_words(self) -> int:
        return len(self.used_bits)

    @property
    def ctx_mask(self) -> np.ndarray:
        """Mask of the context fields (all but the next token)."""
        mask = np.full(self.num_words, 0xFFFFFFFFFFFFFFFF, np.uint64)
        w, sh = int(self.words[-1]), int(self.shifts[-1])
        mask[w] &= ~np.uint64(((1 << self.bits) - 1) << sh)
        return mask

"""Sample order: a keyed pseudo-random permutation, computed per index in O(1) memory.

A 4-round Feistel network over the smallest even power of two >= n, with cycle walking, keyed
by (seed, epoch): the same order for any number of workers, ranks or processes.
"""
import numpy as np
from numba import njit

from .hashing import splitmix64

_ROUNDS = 4


@njit(cache=True)
def _half_bits(n):
    bits = 1
    while (np.uint64(1) << np.uint64(2 * bits)) < np.uint64(n):
        bits += 1
    return bits


@njit(cache=True)
def permute(indices, n, seed, epoch, out):
    """out[j] <- pi(indices[j]), pi the keyed permutation of range(n)."""
    h = _half_bits(n)
    mask = (np.uint64(1) << np.uint64(h)) - np.uint64(1)
    key = splitmix64(np.uint64(seed) ^ splitmix64(np.uint64(epoch) + np.uint64(0x5EED)))
    for j in range(indices.shape[0]):
        x = np.uint64(indices[j])
        while True:
            left = x >> np.uint64(h)
            right = x & mask
            for rnd in range(_ROUNDS):
                f = splitmix64(right ^ splitmix64(key + np.uint64(rnd))) & mask
                left, right = right, left ^ f
            x = (left << np.uint64(h)) | right
            if x < np.uint64(n):
                break
        out[j] = np.int64(x)


def sample_order(indices: np.ndarray, n: int, seed: int, epoch: int, shuffle: bool) -> np.ndarray:
    """Global sample ids at positions ``indices`` of the epoch's order of ``n`` samples."""
    indices = np.ascontiguousarray(indices, dtype=np.int64)
    if not shuffle:
        return indices.copy()
    out = np.empty_like(indices)
    permute(indices, n, np.uint64(seed), np.uint64(epoch), out)
    return out

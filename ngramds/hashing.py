"""The 64-bit hash every keyed random choice of ngramds is built from (sample order, document
split, tail draws): SplitMix64's finaliser, in compiled code."""
import numpy as np
from numba import njit

M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


@njit(cache=True)
def splitmix64(x):
    """SplitMix64 finaliser: a well-mixed 64-bit hash of ``x`` (uint64)."""
    x = (x + np.uint64(0x9E3779B97F4A7C15)) & M64
    x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & M64
    x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & M64
    return x ^ (x >> np.uint64(31))

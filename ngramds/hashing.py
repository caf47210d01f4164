"""The 64-bit hash every keyed random choice of ngramds is built from (sample order, document
split, tail draws): SplitMix64's finaliser, in compiled code."""
import numpy as np
from numba import njit

M64 = np.uint64(0xFFFFFFFFFFFFFFFF)
# SplitMix64's constants: the increment, the two multipliers, the three shifts (the torch
# mirror, ngramds.torch.kernels.splitmix64, reads them from here)
GOLDEN, MUL1, MUL2 = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9),
                      np.uint64(0x94D049BB133111EB))
SHIFTS = (30, 27, 31)
_S1, _S2, _S3 = (np.uint64(s) for s in SHIFTS)


@njit(cache=True)
def splitmix64(x):
    """SplitMix64 finaliser: a well-mixed 64-bit hash of ``x`` (uint64)."""
    x = (x + GOLDEN) & M64
    x = ((x ^ (x >> _S1)) * MUL1) & M64
    x = ((x ^ (x >> _S2)) * MUL2) & M64
    return x ^ (x >> _S3)

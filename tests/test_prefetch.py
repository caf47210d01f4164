"""ngramds.prefetch: a hint that reads nothing, so any index is harmless and no result changes."""
import numpy as np
import pytest
from numba import njit
from numba.core.errors import TypingError

from ngramds.prefetch import prefetch


@njit
def _sum_with_hints(a, far):
    s = 0
    for i in range(a.shape[0]):
        prefetch(a, i + 8)      # past the end near the last rows
        prefetch(a, far)        # far outside the array
        prefetch(a, -far)
        s += a[i]
    return s


@pytest.mark.parametrize("dtype", [np.uint16, np.uint32, np.int64, np.float64])
def test_hints_change_nothing_and_never_fault(dtype):
    a = np.arange(1000).astype(dtype)
    assert _sum_with_hints(a, 1 << 40) == a.sum()
    assert _sum_with_hints(a[:0], 1 << 40) == 0


def test_only_one_dimensional_arrays():
    @njit
    def hint(a):
        prefetch(a, 0)
    with pytest.raises(TypingError):
        hint(np.zeros((2, 2)))

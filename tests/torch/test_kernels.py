"""The torch kernels (ngramds.torch.kernels) against the compiled ones they mirror
(ngramds.targets.kernels), function for function, bit for bit."""
import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ngramds.hashing import splitmix64 as compiled_splitmix64
from ngramds.targets import kernels as compiled
from ngramds.torch import kernels


def test_hash_equals_the_kernels():
    xs = np.array([0, 1, 2**63 - 1, 2**63, 2**64 - 1, 123456789], np.uint64)
    got = kernels.splitmix64(torch.from_numpy(xs.view(np.int64))).numpy().view(np.uint64)
    assert got.tolist() == [int(compiled_splitmix64(x)) for x in xs]


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1),
       st.lists(st.integers(0, 2**63 - 1), min_size=1, max_size=20))
def test_position_keys_equal_the_kernels(seed, epoch, positions):
    pos = np.array(positions, np.int64)
    expect = np.empty(pos.size, np.uint64)
    compiled.position_keys(np.uint64(seed), np.uint64(epoch), pos, expect)
    epochs = torch.full((pos.size,), np.int64(np.uint64(epoch).view(np.int64)))
    got = kernels.position_keys(seed, epochs, torch.from_numpy(pos))
    assert got.numpy().view(np.uint64).tolist() == expect.tolist()


@st.composite
def mixtures(draw):
    """(Mixing, los, his, tots [rows of a gathered tile], rows): k orders in random rows of
    a tile of n positions, contexts of 1..50 distinct next tokens and totals >= that."""
    k, n = draw(st.integers(1, 4)), draw(st.integers(1, 12))
    rows = np.array(sorted(draw(st.lists(st.integers(0, 5), min_size=k, max_size=k,
                                         unique=True)), reverse=True), np.int64)
    ints = st.integers(1, 50)
    distinct = np.array(draw(st.lists(ints, min_size=6 * n, max_size=6 * n)),
                        np.int64).reshape(6, n)
    extra = np.array(draw(st.lists(st.integers(0, 10**6), min_size=6 * n, max_size=6 * n)),
                     np.int64).reshape(6, n)
    los = np.array(draw(st.lists(st.integers(0, 10**9), min_size=6 * n, max_size=6 * n)),
                   np.int64).reshape(6, n)
    unit = st.floats(0.01, 1.0)
    mixing = compiled.Mixing(
        draw(st.sampled_from(sorted(set(compiled.MIXINGS.values())))),
        draw(st.integers(1, 100)),
        np.array(draw(st.lists(unit, min_size=k, max_size=k)), np.float64),
        draw(st.floats(0.01, 100.0)),
        np.array(draw(st.lists(st.floats(0.1, 0.9), min_size=k, max_size=k)), np.float64))
    return mixing, los, los + distinct, distinct + extra, rows


@settings(max_examples=200, deadline=None)
@given(mixtures())
def test_mix_weights_equal_the_kernels(case):
    mixing, los, his, tots, rows = case
    k, n = rows.size, los.shape[1]
    expect = np.empty((k, n))
    compiled.mix_weights(mixing, los, his, tots, rows, expect)
    got = torch.empty((k, n), dtype=torch.float64)
    kernels.mix_weights(mixing, *([torch.from_numpy(x[r]) for r in rows]
                                  for x in (los, his, tots)), got)
    assert got.numpy().tobytes() == expect.tobytes()  # bit for bit
    if mixing.method != compiled.FIXED:  # the weights of a position sum to 1
        np.testing.assert_allclose(expect.sum(0), 1.0, rtol=1e-12)

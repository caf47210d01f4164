import pickle

import numpy as np
import pytest

import ngramds


@pytest.fixture
def built(tmp_path):
    rng = np.random.default_rng(0)
    docs = [rng.integers(0, 40, rng.integers(1, 200)) for _ in range(30)]
    path = tmp_path / "r.ngds"
    ngramds.build(docs, path, order=4, progress=False)
    return path, docs


def test_arrays_are_readonly_views_of_the_map(built):
    path, _ = built
    f = ngramds.open(path)
    for name in ("tokens", "next_ids", "counts", "position_contexts", "context_tokens"):
        arr = getattr(f, name)
        assert not arr.flags.writeable
        assert not arr.flags.owndata
    assert f.tokens.base is not None


def test_query_api(built):
    path, docs = built
    f = ngramds.open(path)
    d = docs[0]
    ids, counts = f.distribution(d[:3])
    assert f.total(d[:3]) >= 1 and int(d[3]) in ids.tolist() or len(d) <= 3
    assert f.distribution([]) [0].size >= 1  # document start context
    unseen = f.distribution([39, 39, 38])
    assert unseen[0].size == 0 or f.total([39, 39, 38]) > 0
    assert f.distribution([10**6])[0].size == 0  # outside the vocabulary: unseen
    with pytest.raises(ValueError):
        f.distribution([1, 2, 3, 4])
    assert np.array_equal(f.document(0), d)


def test_pickle_reopens(built):
    path, _ = built
    f = ngramds.open(path)
    g = pickle.loads(pickle.dumps(f))
    assert g.path == f.path and np.array_equal(g.tokens, f.tokens)


def test_not_an_ngramds_file(tmp_path):
    p = tmp_path / "x.ngds"
    p.write_bytes(b"hello world, this is not an ngramds file at all")
    with pytest.raises(ngramds.FormatError, match="not an ngramds file"):
        ngramds.open(p)


def test_newer_version_rejected(built):
    path, _ = built
    data = bytearray(path.read_bytes())
    data[8] = 99
    path.write_bytes(bytes(data))
    with pytest.raises(ngramds.FormatError, match="newer"):
        ngramds.open(path)


def test_incomplete_file_rejected(built):
    path, _ = built
    data = bytearray(path.read_bytes())
    data[:8] = bytes(8)
    path.write_bytes(bytes(data))
    with pytest.raises(ngramds.FormatError, match="incomplete"):
        ngramds.open(path)


def test_verify_detects_flipped_bit(built):
    path, _ = built
    f = ngramds.open(path)
    s = f.sections["order4/next_ids"]
    data = bytearray(path.read_bytes())
    data[s.offset + s.length // 2] ^= 0x10
    path.write_bytes(bytes(data))
    g = ngramds.open(path)  # cheap checks cannot see content damage
    with pytest.raises(ngramds.ChecksumError, match="order4/next_ids"):
        g.verify()


def test_missing_file(tmp_path):
    with pytest.raises(ngramds.FileAccessError, match="does not exist"):
        ngramds.open(tmp_path / "nope.ngds")

import os
import pickle
import subprocess

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ngramds
from cli_helpers import cli, one_error_line, rewrite_header, run_cli
from ngramds.file import format as fmt
from ngramds.file.summary import summary
from ngramds.file.writer import write_atomic
from ngramds.targets import TargetConfig, Targets

NGRAMDS_ERRORS = (ngramds.NgramdsError,)


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


# ---------------------------------------------------------------- hostile or corrupt files
class Blob(bytes):
    def __repr__(self):
        return f"<{len(self)} bytes>"


@pytest.fixture(scope="module")
def good_file(tmp_path_factory):
    rng = np.random.default_rng(0)
    tokens = (rng.zipf(1.3, 3000) % 300).astype(np.int64)
    path = tmp_path_factory.mktemp("good") / "g.ngds"
    ngramds.build(tokens, path, order=3, eos_id=0, progress=False)
    return Blob(path.read_bytes())


def exercise(path):
    """Everything a user may do with a file; returns normally or raises an ngramds error."""
    f = ngramds.open(path)
    summary(f)
    for ctx in ([], [1], [1, 2], [5, 0]):
        f.distribution(ctx)
    if f.num_tokens > 9:
        for cfg in (TargetConfig("coconts", 2), TargetConfig("coconts", 2, "renorm"),
                    TargetConfig("allnts", max_k=4)):
            Targets(f, cfg).compute(np.array([0, f.num_tokens - 9]), 8)
    from ngramds.torch import NgramDataset
    if f.num_tokens > 9:
        for _, _ in zip(range(3), NgramDataset(f, 8, targets="allnts")):
            pass
    f.verify()


@given(cut=st.integers(0, 10**9))
@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_truncated_file_never_crashes(tmp_path, good_file, cut):
    path = tmp_path / "t.ngds"
    path.write_bytes(good_file[:cut % len(good_file)])
    with pytest.raises(NGRAMDS_ERRORS):
        exercise(path)


@given(data=st.data())
@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_flipped_bits_never_crash_and_verify_sees_them(tmp_path, good_file, data):
    buf = bytearray(good_file)
    flips = data.draw(st.lists(st.integers(0, len(buf) * 8 - 1), min_size=1, max_size=3,
                                 unique=True))
    for bit in flips:
        buf[bit // 8] ^= 1 << (bit % 8)
    path = tmp_path / "f.ngds"
    path.write_bytes(bytes(buf))
    changed = bytes(buf) != good_file
    try:
        exercise(path)
    except NGRAMDS_ERRORS:
        return
    # nothing complained: the flips must have hit padding (bytes no section covers)
    assert changed
    sections = ngramds.open(path).sections.values()
    for bit in flips:
        b = bit // 8
        assert b >= fmt.PREAMBLE_SIZE and not any(
            s.offset <= b < s.offset + s.length for s in sections)


def rewrite(path, header_edit=None, preamble_edit=None):
    """Re-encode ``path``'s header after ``header_edit(header)``, with a valid header CRC."""
    data = bytearray(path.read_bytes())
    _, header_len, _ = fmt.read_preamble(bytes(data[:32]), len(data))
    header = msgpack.unpackb(bytes(data[32:32 + header_len]))
    start = min(s["offset"] for s in header["sections"])
    if header_edit:
        header_edit(header)
    raw = msgpack.packb(header, use_bin_type=True)
    assert 32 + len(raw) <= start, "edited header must still fit before the sections"
    data[32:start] = raw + bytes(start - 32 - len(raw))
    data[:32] = fmt.pack_preamble(raw)
    if preamble_edit:
        preamble_edit(data)
    path.write_bytes(bytes(data))


def section(header, name):
    return next(s for s in header["sections"] if s["name"] == name)


LIES = {
    "section past the end": lambda h: section(h, "tokens").update(offset=2**40),
    "overlapping sections": lambda h: section(h, "order3/next_ids").update(
        offset=section(h, "tokens")["offset"]),
    "misaligned section": lambda h: section(h, "tokens").update(
        offset=section(h, "tokens")["offset"] + 8),
    "absurd token count": lambda h: h.update(num_tokens=2**61),
    "absurd context count": lambda h: h["tables"][0].update(num_contexts=2**50),
    "shape disagrees with length": lambda h: section(h, "tokens").update(shape=[5]),
    "negative offset": lambda h: section(h, "tokens").update(offset=-64),
    "unknown dtype": lambda h: section(h, "tokens").update(dtype="<f8"),
    "missing section": lambda h: h["sections"].remove(section(h, "order3/counts")),
    "duplicate section": lambda h: h["sections"].append(dict(section(h, "tokens"))),
    "wrong order": lambda h: h["tables"][0].update(order=99),
    "vocab too small for dtype": lambda h: h.update(vocab_size=2**20),
    "tables not a list": lambda h: h.update(tables="x"),
    "sections not a list": lambda h: h.update(sections={"a": 1}),
    "not ngramds": lambda h: h.update(format="other"),
}


@pytest.mark.parametrize("lie", sorted(LIES))
def test_lying_header_is_refused(tmp_path, good_file, lie):
    path = tmp_path / "l.ngds"
    path.write_bytes(good_file)
    rewrite(path, LIES[lie])
    with pytest.raises(ngramds.FormatError):
        exercise(path)


def test_a_lying_header_length_or_crc_is_refused(tmp_path, good_file):
    for edit in (lambda d: d.__setitem__(slice(16, 24), (2**40).to_bytes(8, "little")),
                 lambda d: d.__setitem__(slice(24, 28), b"\0\0\0\0")):
        path = tmp_path / "p.ngds"
        path.write_bytes(good_file)
        rewrite(path, preamble_edit=edit)
        with pytest.raises(ngramds.FormatError):
            ngramds.open(path)


def test_consistent_lies_in_data_are_caught_by_compiled_bound_checks(tmp_path, good_file):
    """Corrupt data with matching checksums (a crafted file): kernels refuse, never read OOB."""
    for name, value in (("order3/position_contexts", 250), ("order3/entry_offsets", 7),
                        ("tokens", 299), ("order3/next_ids", 299)):
        path = tmp_path / "c.ngds"
        path.write_bytes(good_file)
        f = ngramds.open(path)
        s = f.sections[name]
        arrays = {n: np.array(f.section(n)) for n in f.sections}
        arr = arrays[name]
        arr[arr.size // 2] = np.iinfo(arr.dtype).max if name != "tokens" else value
        if name == "tokens":
            arrays["tokens"] = arr
        header = dict(f.header)
        header.pop("sections")
        if name in ("tokens", "order3/next_ids"):
            header["vocab_size"] = value  # ids >= vocab now
        del f
        path.unlink()
        write_atomic(path, header, arrays)
        with pytest.raises(ngramds.FormatError):
            exercise(path)
        assert s.name == name


def test_an_unknown_zero_length_section_of_a_huge_shape_is_ignored(built_file, capsys):
    def add(h):
        h["sections"].append({"name": "future/thing", "offset": max(
            s["offset"] for s in h["sections"]), "length": 0, "dtype": "<u8",
            "shape": [0, 2**62], "crc32": 0})
    rewrite_header(built_file, add)
    assert cli(capsys, "info", built_file)[0] == 0
    assert cli(capsys, "verify", built_file)[0] == 0
    assert ngramds.open(built_file).distribution([5]) is not None


def test_distribution_of_non_integer_ids_is_refused(built_file):
    f = ngramds.open(built_file)
    for bad in ([1.7], [5, 2.0], ["5"], [True]):
        with pytest.raises(ngramds.InputError, match="integers"):
            f.distribution(bad)
    assert f.distribution([2**70])[0].size == 0 and f.distribution([-1])[0].size == 0


def test_opening_a_fifo_is_refused_without_hanging(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    try:
        r = run_cli("info", tmp_path / "fifo", timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("`ngramds info FIFO` hangs")
    assert r.returncode == 2
    one_error_line(r.stderr, "fifo")

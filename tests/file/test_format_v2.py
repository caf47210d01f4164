"""Format version 2 (spec/FORMAT.md): per-position context ids for the highest order only,
each higher table linked to the next lower one by ``lower_contexts``; version 1 files still
read, with the same targets."""
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import ngramds
from ngramds.targets.compute import Targets
from ngramds.targets.config import TargetConfig

DATA = Path(__file__).resolve().parent.parent / "data"
V1_DEFAULT = dict(targets="coconts", escape=1.0)  # the default targets when v1_targets.npz
                                                  # was computed


def v1_corpus():
    """The documents the version-1 fixtures in tests/data were built from (ngramds 0.x,
    format 1: `ngramds.build(docs, path, orders=..., vocab_size=50)`)."""
    rng = np.random.default_rng(1)
    docs = [rng.integers(0, 40, n).tolist() for n in (300, 3, 0, 120, 1)]
    docs[0] = (docs[0][:60] * 5)[:300]
    return docs


def contexts_by_spec(f, order):
    """Context id of every position in the table of ``order``, found from the tokens alone
    (spec/SEMANTICS.md: the last min(order-1, tokens since the document start) tokens)."""
    tokens, offsets = f.tokens.astype(np.int64), f.doc_offsets.astype(np.int64)
    out = np.empty(f.num_tokens, np.int64)
    for d in range(f.num_documents):
        for p in range(offsets[d], offsets[d + 1]):
            out[p] = f.context_id(tokens[max(offsets[d], p - order + 1):p], order=order)
    return out


def test_a_default_build_is_version_2_with_top_order_position_ids_only(tmp_path):
    f = ngramds.open(ngramds.build(v1_corpus(), tmp_path / "a.ngds", vocab_size=50,
                                   progress=False), verify=True)
    names = {s["name"] for s in f.header["sections"]}
    assert f.version == 2
    assert {n for n in names if n.endswith("position_contexts")} == {"order4/position_contexts"}
    assert {n for n in names if n.endswith("lower_contexts")} == \
        {"order3/lower_contexts", "order4/lower_contexts"}
    assert f.table(2).position_contexts is None


@settings(max_examples=25, deadline=None)
@given(docs=st.lists(st.lists(st.integers(0, 5), max_size=30), min_size=1, max_size=5),
       orders=st.sampled_from([[2, 3, 4], [1, 2], [2, 4], [1, 3, 5], [3]]))
def test_links_give_every_orders_context_of_every_position(tmp_path_factory, docs, orders):
    if not sum(map(len, docs)):
        docs = docs + [[1]]
    path = tmp_path_factory.mktemp("v2") / "f.ngds"
    f = ngramds.open(ngramds.build(docs, path, orders=orders, vocab_size=6, progress=False),
                     verify=True)
    positions = np.arange(f.num_tokens)
    for order in orders:
        assert f.contexts_at(positions, order).tolist() == contexts_by_spec(f, order).tolist()


@pytest.mark.parametrize("name", ["v1_orders2-4", "v1_orders1-2-4"])
def test_version_1_files_read_with_the_same_contexts_and_targets(tmp_path, name):
    old = ngramds.open(DATA / f"{name}.ngds", verify=True)
    assert old.version == 1
    orders = old.orders
    new = ngramds.open(ngramds.build(v1_corpus(), tmp_path / "new.ngds", orders=orders,
                                     vocab_size=50, progress=False), verify=True)
    assert new.version == 2
    positions = np.arange(old.num_tokens)
    for order in orders:
        expect = np.asarray(old.section(f"order{order}/position_contexts"))
        assert old.contexts_at(positions, order).tolist() == expect.tolist()
        assert new.contexts_at(positions, order).tolist() == expect.tolist()
        for s in ("context_tokens", "entry_offsets", "next_ids", "counts", "totals"):
            assert np.array_equal(old.section(f"order{order}/{s}"),
                                  new.section(f"order{order}/{s}"))
    saved = np.load(DATA / "v1_targets.npz")  # computed by the format-1 code (escape 1)
    labels = old.tokens.astype(np.int64)
    for mode, kw in (("coconts", V1_DEFAULT),
                     ("allnts", dict(V1_DEFAULT, targets="allnts", max_k=None)),
                     ("backoff", dict(targets="coconts", mixing="backoff"))):
        for f in (old, new):
            t = Targets(f, TargetConfig(**kw))
            ids = np.empty((positions.size, t.plan.slots), np.int64)
            probs = np.empty((positions.size, t.plan.slots), np.float32)
            t.compute_at(positions.astype(np.int64), labels, 7, 1, ids, probs)
            assert np.array_equal(ids, saved[f"{name}/{mode}/ids"])
            assert np.array_equal(probs, saved[f"{name}/{mode}/probs"])


def test_a_link_outside_the_lower_table_is_refused(tmp_path):
    path = ngramds.build(v1_corpus(), tmp_path / "a.ngds", vocab_size=50, progress=False)
    f = ngramds.open(path)
    s = next(s for s in f.header["sections"] if s["name"] == "order4/lower_contexts")
    del f
    raw = bytearray(path.read_bytes())
    width = int(s["dtype"][-1])
    raw[s["offset"]:s["offset"] + width] = b"\xff" * width
    path.write_bytes(bytes(raw))
    f = ngramds.open(path)
    with pytest.raises(ngramds.errors.FormatError):
        f.contexts_at(np.arange(f.num_tokens), 3)
    t = Targets(f, TargetConfig())
    n = f.num_tokens
    with pytest.raises(ngramds.errors.FormatError):
        t.compute_at(np.arange(n, dtype=np.int64), f.tokens.astype(np.int64), 0, 0,
                     np.empty((n, t.plan.slots), np.int64),
                     np.empty((n, t.plan.slots), np.float32))


@settings(max_examples=20, deadline=None)
@given(docs=st.lists(st.lists(st.integers(0, 5), max_size=30), min_size=1, max_size=5),
       orders=st.sampled_from([[2, 3, 4], [1, 2], [2, 4], [3]]),
       bounded=st.booleans())
def test_a_compact_file_finds_the_same_contexts_and_targets(tmp_path_factory, docs, orders,
                                                            bounded):
    if not sum(map(len, docs)):
        docs = docs + [[1]]
    d = tmp_path_factory.mktemp("compact")
    full = ngramds.open(ngramds.build(docs, d / "full.ngds", orders=orders, vocab_size=6,
                                      progress=False))
    small = ngramds.open(ngramds.build(docs, d / "small.ngds", orders=orders, vocab_size=6,
                                       progress=False, compact=True,
                                       memory_limit="4G" if bounded else None), verify=True)
    assert not any(s.endswith("position_contexts") for s in small.sections)
    assert small.table().position_contexts is None
    positions = np.arange(full.num_tokens)
    for order in orders:
        assert small.contexts_at(positions, order).tolist() == \
            full.contexts_at(positions, order).tolist()
    n = full.num_tokens
    for f in (full, small):
        t = Targets(f, TargetConfig())
        ids = np.empty((n, t.plan.slots), np.int64)
        probs = np.empty((n, t.plan.slots), np.float32)
        t.compute_at(positions, f.tokens.astype(np.int64), 3, 0, ids, probs)
        if f is full:
            expect = ids.copy(), probs.copy()
    assert np.array_equal(ids, expect[0]) and np.array_equal(probs, expect[1])
    if n > 4:
        starts = np.arange(0, n - 3)
        a, b = Targets(full).device_inputs(starts, 3), Targets(small).device_inputs(starts, 3)
        assert np.array_equal(a["window"], b["window"])  # (the device's search of b's
        assert "context_ids" not in b  # history and lengths: tests/torch/test_device.py)


def test_compact_saves_the_per_position_ids(tmp_path):
    docs = v1_corpus()
    paths = [ngramds.build(docs, tmp_path / f"{c}.ngds", vocab_size=50, progress=False,
                           compact=c) for c in (False, True)]
    ids = ngramds.open(paths[0]).sections["order4/position_contexts"].length
    prefixes = ngramds.open(paths[1]).sections["order4/prefix_offsets"].length
    assert ids == sum(map(len, docs))  # <u1 here: 183 contexts
    assert prefixes == ngramds.open(paths[1]).table(3).num_contexts + 1  # <u1 too
    saved = paths[0].stat().st_size - paths[1].stat().st_size
    assert saved >= ids - prefixes - 128  # (alignment, the header's section entry)


@pytest.mark.parametrize("section", ["order4/context_tokens", "doc_offsets",
                                     "order4/prefix_offsets", "order4/lower_contexts"])
def test_a_damaged_compact_file_is_refused_not_misread(tmp_path, section):
    path = ngramds.build(v1_corpus(), tmp_path / "c.ngds", vocab_size=50, progress=False,
                         compact=True)
    s = next(s for s in ngramds.open(path).header["sections"] if s["name"] == section)
    raw = bytearray(path.read_bytes())
    at = s["offset"] + (s["length"] // 2 if section != "doc_offsets" else int(s["dtype"][-1]))
    raw[at:at + int(s["dtype"][-1])] = b"\xff" * int(s["dtype"][-1])  # a row / an offset
    path.write_bytes(bytes(raw))
    f = ngramds.open(path)
    n = f.num_tokens
    with pytest.raises(ngramds.errors.FormatError):
        f.contexts_at(np.arange(n), 2)
    t = Targets(f, TargetConfig())
    with pytest.raises(ngramds.errors.FormatError):
        t.compute_at(np.arange(n, dtype=np.int64), f.tokens.astype(np.int64), 0, 0,
                     np.empty((n, t.plan.slots), np.int64),
                     np.empty((n, t.plan.slots), np.float32))


def test_a_section_a_version_does_not_have_is_ignored(tmp_path):
    """A version-1 file with a planted `lower_contexts` (unknown to version 1, so ignored):
    the links are still derived from its position ids, nothing reads the planted one."""
    from ngramds.file import format as fmt
    from ngramds.file.writer import write_atomic
    old = ngramds.open(DATA / "v1_orders2-4.ngds")
    arrays = {n: np.array(old.section(n)) for n in old.sections}
    arrays["order4/lower_contexts"] = np.zeros(1, np.uint8)
    arrays["order2/lower_contexts"] = np.full(3, 255, np.uint8)
    header = {k: v for k, v in old.header.items() if k != "sections"}
    path = tmp_path / "planted.ngds"
    write_atomic(path, header, arrays)
    raw = bytearray(path.read_bytes())
    raw[8:12] = (1).to_bytes(4, "little")  # still version 1 (the writer writes 2)
    path.write_bytes(bytes(raw))
    f = ngramds.open(path, verify=True)
    assert f.version == 1
    positions = np.arange(f.num_tokens)
    for order in f.orders:
        assert f.contexts_at(positions, order).tolist() == \
            old.contexts_at(positions, order).tolist()
    saved = np.load(DATA / "v1_targets.npz")
    t = Targets(f, TargetConfig(**V1_DEFAULT))
    ids = np.empty((positions.size, t.plan.slots), np.int64)
    probs = np.empty((positions.size, t.plan.slots), np.float32)
    t.compute_at(positions.astype(np.int64), f.tokens.astype(np.int64), 7, 1, ids, probs)
    assert np.array_equal(ids, saved["v1_orders2-4/coconts/ids"])

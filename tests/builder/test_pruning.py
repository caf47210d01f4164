"""Pruned files (``min_count``, spec/FORMAT.md "Pruned files"): the reference tables without
the contexts seen fewer times than their order's threshold, byte-identical across engines,
global position ids, verify, the CLI's refusals."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ngramds
from cli_helpers import cli, one_error_line
from helpers import run_sizes, zipf_shards
from ngramds.builder.options import min_counts
from ngramds.errors import InputError
from ngramds.file import format as fmt
from reference import contexts_of, reference_table
from strategies import corpora


def effective(spec, orders):
    """The spec's thresholds, from its words: the lowest order 1, an N for every other order
    (or the named ones), each at least every lower order's."""
    orders = sorted(orders)
    given = {n: spec for n in orders[1:]} if isinstance(spec, int) else dict(spec)
    out, run = {}, 1
    for n in orders:
        run = max(run, given.get(n, 1))
        out[n] = run
    return out


specs = st.one_of(st.integers(1, 4), st.dictionaries(st.integers(1, 6), st.integers(1, 4),
                                                       min_size=1, max_size=3))


@given(corpora(max_docs=6, max_len=50), st.lists(st.sampled_from([1, 2, 3, 4, 6]), min_size=2,
                                                 max_size=3, unique=True), specs,
       st.sampled_from([None, 2]), st.booleans())
@settings(max_examples=40, deadline=None)
def test_pruned_file_is_the_reference_pruned(tmp_path_factory, corpus, orders, spec, top_k,
                                             compact):
    docs, vocab = corpus
    orders = sorted(orders)
    if isinstance(spec, dict):
        spec = {o: n for o, n in spec.items() if o in orders and (o != orders[0] or n == 1)}
        if not spec:
            return
    want = effective(spec, orders)
    refs = {n: reference_table(docs, n, top_k) for n in orders}
    if any(max(t for _, t in refs[n].values()) < want[n] for n in orders):
        with pytest.raises(InputError, match="prunes every context"):
            ngramds.build(docs, tmp_path_factory.mktemp("p") / "x.ngds", orders=orders,
                          top_k=top_k, vocab_size=vocab, progress=False, min_count=spec,
                          compact=compact)
        return
    path = tmp_path_factory.mktemp("p") / "f.ngds"
    ngramds.build(docs, path, orders=orders, top_k=top_k, vocab_size=vocab, progress=False,
                  min_count=spec, compact=compact)
    f = ngramds.open(path, verify=True)
    assert f.pruned == any(t > 1 for t in want.values())
    for n in orders:
        table = f.table(n)
        assert table.min_count == want[n]
        kept = {c: v for c, v in refs[n].items() if v[1] >= want[n]}
        assert table.num_contexts == len(kept)
        for ctx, (entries, total) in kept.items():
            ids, counts = table.distribution(list(ctx))
            assert list(zip(ids.tolist(), counts.tolist())) == entries
            assert table.total(list(ctx)) == total
        for ctx, (_, total) in refs[n].items():
            if total < want[n]:
                assert table.context_id(list(ctx)) == -1
    # every position: its context in each order, -1 where pruned
    tokens = np.concatenate([np.asarray(d, np.int64) for d in docs])
    positions = np.arange(tokens.size)
    for n in orders:
        ids = f.contexts_at(positions, n)
        ctxs = [ctx for ctx, _ in contexts_of(docs, n)]
        expect = [f.table(n).context_id(list(c)) if refs[n][c][1] >= want[n] else -1
                  for c in ctxs]
        assert ids.tolist() == expect


@given(corpora(max_docs=8, max_len=60), st.lists(st.sampled_from([1, 2, 3, 4]), min_size=2,
                                                 max_size=3, unique=True),
       st.integers(2, 3), st.sampled_from([None, 2]), st.integers(1, 40), st.integers(1, 30),
       st.booleans())
@settings(max_examples=30, deadline=None)
def test_pruned_build_is_byte_identical_bounded(tmp_path_factory, corpus, orders, n, top_k,
                                                positions, entries, compact):
    docs, vocab = corpus
    d = tmp_path_factory.mktemp("x")
    try:
        ngramds.build(docs, d / "mem.ngds", orders=orders, top_k=top_k, vocab_size=vocab,
                      progress=False, min_count=n, compact=compact)
    except InputError:
        return  # every context of an order pruned
    with run_sizes(positions, entries):
        ngramds.build(docs, d / "ext.ngds", orders=orders, top_k=top_k, vocab_size=vocab,
                      memory_limit="2G", tmp_dir=d, progress=False, min_count=n,
                      compact=compact)
    assert (d / "ext.ngds").read_bytes() == (d / "mem.ngds").read_bytes()
    assert sorted(p.name for p in d.iterdir()) == ["ext.ngds", "mem.ngds"]  # no leftovers


def test_pruned_merge_and_dask_give_the_build(tmp_path, capsys):
    shards = zipf_shards(tmp_path)
    common = ["--eos-id", "0", "--orders", "1-3", "-q"]
    assert cli(capsys, "build", *shards, "-o", tmp_path / "all.ngds", *common,
               "--min-count", "3:2")[0] == 0
    f = ngramds.open(tmp_path / "all.ngds", verify=True)
    assert [f.table(n).min_count for n in f.orders] == [1, 1, 2] and f.pruned
    parts = []
    with run_sizes(700, 500):
        for i, s in enumerate(shards):
            parts.append(tmp_path / f"p{i}")
            assert cli(capsys, "build", s, "-o", parts[-1], "--partial", *common)[0] == 0
        assert cli(capsys, "merge", *parts, "-o", tmp_path / "m.ngds", "-q",
                   "--min-count", "3:2")[0] == 0
    assert (tmp_path / "m.ngds").read_bytes() == (tmp_path / "all.ngds").read_bytes()
    pytest.importorskip("dask.distributed")
    ngramds.build([str(s) for s in shards], tmp_path / "dask.ngds", engine="dask", workers=2,
                  orders=[1, 2, 3], eos_id=0, progress=False, min_count="3:2")
    assert (tmp_path / "dask.ngds").read_bytes() == (tmp_path / "all.ngds").read_bytes()


def test_unpruned_specs_change_nothing(tmp_path):
    docs = [[1, 2, 3, 1, 2, 4, 1, 2, 3]]
    ngramds.build(docs, tmp_path / "a.ngds", progress=False)
    ngramds.build(docs, tmp_path / "b.ngds", progress=False, min_count=1)
    ngramds.build(docs, tmp_path / "c.ngds", progress=False, min_count="2:1,4:1")
    assert (tmp_path / "a.ngds").read_bytes() == (tmp_path / "b.ngds").read_bytes() == \
        (tmp_path / "c.ngds").read_bytes()
    assert not ngramds.open(tmp_path / "a.ngds").pruned


def test_min_count_spec_forms():
    assert min_counts(2, [2, 3, 4]) == {3: 2, 4: 2}
    assert min_counts("4:3", [2, 3, 4]) == {4: 3}
    assert min_counts("3:2", [2, 3, 4]) == {3: 2, 4: 2}  # a threshold rises to higher orders
    assert min_counts({4: 2, 3: 5}, [2, 3, 4]) == {3: 5, 4: 5}
    assert min_counts("1", [2, 3, 4]) is None and min_counts(None, [1]) is None
    for bad, words in [("x", "order:N"), ("4:x", "order:N"), ("0", "order:N"),
                       ("5:2", "not stored"), ("2:2", "lowest"), ("4:2,4:3", "twice"),
                       (2.5, "order:N"), (True, "order:N")]:
        with pytest.raises(InputError, match=words):
            min_counts(bad, [2, 3, 4])
    with pytest.raises(InputError, match="only stored order"):
        min_counts(2, [4])


@pytest.mark.parametrize("args,words", [
    (["--min-count", "x"], ["min_count", "order:N"]),
    (["--min-count", "4:0"], ["min_count"]),
    (["--min-count", "2:2"], ["lowest"]),
    (["--min-count", "7:2"], ["order 7", "not stored"]),
    (["--min-count", "2", "--order", "3"], ["only stored order"]),
    (["--min-count", "2", "--partial"], ["merge"]),
    (["--min-count", "1000"], ["prunes every context"]),
])
def test_cli_refuses_bad_min_counts_in_one_line(tmp_path, capsys, args, words):
    np.save(tmp_path / "a.npy", np.arange(50, dtype=np.uint16) % 7)
    code, _, err = cli(capsys, "build", tmp_path / "a.npy", "-o", tmp_path / "o.ngds", "-q",
                       *args)
    assert code == 2
    one_error_line(err, *words)


def _pruned(tmp_path, compact=False):
    rng = np.random.default_rng(1)
    tokens = (rng.zipf(1.5, 3000) % 30).astype(np.int64)
    path = tmp_path / ("c.ngds" if compact else "f.ngds")
    ngramds.build([tokens[:1700], tokens[1700:]], path, progress=False, min_count="3:2,4:3",
                  compact=compact)
    return path


def test_global_ids_point_to_the_deepest_stored_context(tmp_path):
    f = ngramds.open(_pruned(tmp_path))
    g = f.global_ids(np.arange(f.num_tokens))
    bases = f.id_bases
    assert bases == {4: 0, 3: f.table(4).num_contexts,
                     2: f.table(4).num_contexts + f.table(3).num_contexts}
    assert g.max() < f.num_ids and (g >= bases[2]).any() and (g < bases[3]).any()
    c = ngramds.open(_pruned(tmp_path, compact=True))
    assert np.array_equal(c.global_ids(np.arange(c.num_tokens)), g)
    assert fmt.read_flags((tmp_path / "f.ngds").read_bytes()[:32]) == fmt.PRUNED


def rewrite(src, out, name=None, values=None, min_counts=None):
    """``src`` written again to ``out`` with section ``name`` replaced or the tables'
    min_count changed ({order: N}), checksums redone."""
    from ngramds.file.writer import write_atomic
    f = ngramds.open(src)
    arrays = {n: np.array(f.section(n)) for n in f.sections}
    if name is not None:
        arrays[name] = values
    header = {k: v for k, v in f.header.items() if k != "sections"}
    for t in header["tables"]:
        t["min_count"] = (min_counts or {}).get(t["order"], t["min_count"])
    write_atomic(out, header, arrays)
    return out


@pytest.mark.parametrize("compact", [False, True])
def test_verify_catches_tampered_pruned_files(tmp_path, compact):
    path = _pruned(tmp_path, compact)
    ngramds.open(path, verify=True)
    f = ngramds.open(path)
    if not compact:  # a position pointed at a shallower table than its deepest stored one
        ids = np.array(f.section("order4/position_contexts"))
        p = int(np.flatnonzero(ids >= f.id_bases[3])[0])
        ids[p] = f.id_bases[2] + f.contexts_at([p], 2)[0]
        bad = rewrite(path, tmp_path / "bad1.ngds", "order4/position_contexts", ids)
        with pytest.raises(ngramds.FormatError, match="global id"):
            ngramds.open(bad, verify=True)
    # stored contexts seen fewer times than the header's threshold
    bad = rewrite(path, tmp_path / "bad2.ngds", min_counts={3: 3})
    with pytest.raises(ngramds.FormatError, match="fewer times than its min_count 3"):
        ngramds.open(bad, verify=True)
    # a pruned context seen as often as the header's threshold
    bad = rewrite(path, tmp_path / "bad3.ngds", min_counts={4: 2})
    with pytest.raises(ngramds.FormatError, match="seen at least min_count 2 times is not"):
        ngramds.open(bad, verify=True)
    # thresholds that fall with the order, or a pruned lowest order
    for edit in ({3: 4}, {2: 2}):
        with pytest.raises(ngramds.FormatError, match="min_count"):
            ngramds.open(rewrite(path, tmp_path / "bad4.ngds", min_counts=edit))
    # the preamble's flag cleared: the header's thresholds disagree (an old writer's file
    # never has them; an old reader refuses the flag)
    data = bytearray(path.read_bytes())
    data[12] = 0
    (tmp_path / "bad5.ngds").write_bytes(bytes(data))
    with pytest.raises(ngramds.FormatError, match="flag"):
        ngramds.open(tmp_path / "bad5.ngds")
    data[12] = 2
    (tmp_path / "bad5.ngds").write_bytes(bytes(data))
    with pytest.raises(ngramds.FormatError, match="unknown flags"):
        ngramds.open(tmp_path / "bad5.ngds")


def test_info_prints_the_thresholds(tmp_path, capsys):
    path = _pruned(tmp_path)
    code, out, _ = cli(capsys, "info", path)
    assert code == 0 and "pruned: --min-count 3:2,4:3" in out.splitlines()[0]
    code, out, _ = cli(capsys, "info", path, "--json")
    import json
    assert [t["min_count"] for t in json.loads(out)["tables"]] == [1, 2, 3]

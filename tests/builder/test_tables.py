import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ngramds
from reference import context_sort_key, reference_table
from strategies import corpora

ORDERS = st.sampled_from([1, 2, 3, 4, 5, 6, 7, 8, 16])


def check_against_reference(file, docs, order, top_k=None):
    f = file.table(order)
    ref = reference_table(docs, order, top_k)
    assert f.num_contexts == len(ref)
    assert file.num_tokens == sum(len(d) for d in docs)
    assert file.num_documents == len(docs)
    for ctx, (entries, total) in ref.items():
        ids, counts = f.distribution(ctx)
        assert list(zip(ids.tolist(), counts.tolist())) == entries, ctx
        assert f.total(ctx) == total
    # stored order of contexts: by length, then lexicographic
    m = order - 1
    stored = []
    offs = f.context_length_offsets
    for length in range(m + 1):
        for row in f.context_tokens[offs[length]:offs[length + 1]]:
            stored.append(tuple(int(t) for t in row[:length]))
    assert stored == sorted(ref, key=context_sort_key)
    # every position points at its own context
    tokens = file.tokens.astype(np.int64)
    at = file.contexts_at(np.arange(file.num_tokens), order)
    for d in range(file.num_documents):
        lo, hi = int(file.doc_offsets[d]), int(file.doc_offsets[d + 1])
        for p in range(lo, hi):
            ctx = tuple(tokens[max(lo, p - m):p].tolist())
            assert int(at[p]) == f.context_id(ctx)


@given(corpora(), ORDERS, st.sampled_from([None, 1, 2, 3]))
@settings(max_examples=60)
def test_build_matches_reference(tmp_path_factory, corpus, order, top_k):
    docs, vocab = corpus
    path = tmp_path_factory.mktemp("b") / "c.ngds"
    ngramds.build(docs, path, order=order, top_k=top_k, vocab_size=vocab, progress=False)
    f = ngramds.open(path, verify=True)
    assert f.vocab_size == vocab
    assert f.tokens.dtype == (np.uint16 if vocab <= 65536 else np.uint32)
    assert f.top_k == top_k
    check_against_reference(f, docs, order, top_k)


@given(corpora(), st.lists(ORDERS, min_size=2, max_size=4, unique=True))
@settings(max_examples=30)
def test_several_orders_share_one_file(tmp_path_factory, corpus, orders):
    docs, vocab = corpus
    path = tmp_path_factory.mktemp("b") / "c.ngds"
    ngramds.build(docs, path, orders=orders, vocab_size=vocab, progress=False)
    f = ngramds.open(path, verify=True)
    assert f.orders == sorted(orders) and f.order == max(orders)
    for order in orders:
        check_against_reference(f, docs, order)
        assert f.distribution([], order=order)[0].size == f.table(order).distribution([])[0].size


def test_default_table_of_a_query_is_the_one_of_its_full_context(tmp_path):
    ngramds.build([[1, 2, 1, 3]], tmp_path / "x.ngds", orders=[2, 3], progress=False)
    f = ngramds.open(tmp_path / "x.ngds")
    assert f.table_for([1]).order == 2 and f.distribution([1])[0].tolist() == [2, 3]
    assert f.table_for([]).order == 3 and f.total([]) == 1   # order 1 not stored: the highest
    assert f.distribution([1], order=3)[0].tolist() == [2]   # "document start, 1"


def test_orders_are_checked(tmp_path):
    for bad in ([], [2, 2], [0, 1], [17], ["3"]):
        with pytest.raises(ngramds.InputError, match="order"):
            ngramds.build([[1, 2]], tmp_path / "x.ngds", orders=bad, progress=False)
    ngramds.build([[1, 2, 1]], tmp_path / "x.ngds", orders=[2], progress=False)
    with pytest.raises(ngramds.InputError, match="order 3 is not stored"):
        ngramds.open(tmp_path / "x.ngds").distribution([1], order=3)


@pytest.mark.parametrize("order", [1, 2, 4, 8, 16])
def test_empty_and_one_token_documents(tmp_path, order):
    docs = [[], [5], [], [5, 5], [1], []]
    ngramds.build(docs, tmp_path / "e.ngds", order=order, progress=False)
    f = ngramds.open(tmp_path / "e.ngds", verify=True)
    assert f.num_documents == 6
    check_against_reference(f, [np.array(d) for d in docs], order)


def test_repetitive_corpus_counts(tmp_path):
    doc = np.tile(np.array([1, 2, 3], np.int64), 5000)
    ngramds.build([doc], tmp_path / "r.ngds", order=3, progress=False)
    f = ngramds.open(tmp_path / "r.ngds")
    ids, counts = f.distribution([1, 2])
    assert ids.tolist() == [3] and counts.tolist() == [5000]
    assert f.num_contexts == 3 + 2  # three full contexts, [] and [1]


def test_array_with_offsets_equals_documents(tmp_path):
    rng = np.random.default_rng(1)
    docs = [rng.integers(0, 50, rng.integers(1, 30)) for _ in range(20)]
    flat = np.concatenate(docs)
    offsets = np.concatenate([[0], np.cumsum([len(d) for d in docs])])
    ngramds.build(docs, tmp_path / "a.ngds", order=3, progress=False)
    ngramds.build(flat, tmp_path / "b.ngds", order=3, doc_offsets=offsets, progress=False)
    ngramds.build(flat, tmp_path / "c.ngds", order=3, progress=False,
                  doc_lengths=[len(d) for d in docs])
    assert (tmp_path / "b.ngds").read_bytes() == (tmp_path / "c.ngds").read_bytes()
    # only the recorded source name differs between the two entry points
    fa, fb = ngramds.open(tmp_path / "a.ngds"), ngramds.open(tmp_path / "b.ngds")
    for name in fa.sections:
        assert np.array_equal(fa.section(name), fb.section(name))


def test_deterministic_across_thread_counts(tmp_path):
    rng = np.random.default_rng(2)
    tokens = (rng.zipf(1.3, 400_000) % 3000).astype(np.uint16)
    outputs = []
    for threads in (1, numba.config.NUMBA_NUM_THREADS):
        numba.set_num_threads(threads)
        path = tmp_path / f"t{threads}.ngds"
        ngramds.build(tokens, path, order=4, eos_id=0, progress=False)
        outputs.append(path.read_bytes())
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    assert outputs[0] == outputs[1]


def test_large_random_corpus_against_numpy_reference(tmp_path):
    """A bigger corpus (many radix chunks) against a vectorised numpy reference."""
    rng = np.random.default_rng(3)
    tokens = (rng.zipf(1.2, 300_000) % 70000).astype(np.int64)  # needs uint32 ids
    ngramds.build(tokens, tmp_path / "z.ngds", order=2, progress=False)
    f = ngramds.open(tmp_path / "z.ngds", verify=True)
    prev = np.concatenate([[-1], tokens[:-1]])
    pairs = np.unique(np.stack([prev, tokens]), axis=1, return_counts=True)
    assert f.num_entries == pairs[0].shape[1]
    for ctx in [None, int(tokens[10]), int(tokens[1000])]:
        mask = (pairs[0][0] == (-1 if ctx is None else ctx))
        expect = sorted(zip(pairs[0][1][mask].tolist(), pairs[1][mask].tolist()),
                        key=lambda kv: (-kv[1], kv[0]))
        ids, counts = f.distribution([] if ctx is None else [ctx])
        assert list(zip(ids.tolist(), counts.tolist())) == expect

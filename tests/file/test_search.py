"""The reader's compiled searches (ngramds/file/search.py): a compact file's contexts found
from its tokens (by prefixes in several lanes, or by binary search) are the default file's
position ids, and a damaged link is refused, never followed to another context."""
import numpy as np
from hypothesis import given, settings, strategies as st

import ngramds


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), orders=st.sampled_from([[2, 3, 4], [1, 2], [3, 4, 5],
                                                               [2, 4], [2, 3]]),
       bounded=st.booleans(), top_k=st.sampled_from([None, 2]))
def test_compact_search_by_prefixes_matches_the_ids_for_any_positions(tmp_path_factory, seed,
                                                                       orders, bounded, top_k):
    """Long runs of positions (searched in several lanes, each extending its previous
    position's context by prefix_offsets), runs cut by document starts, repeats, backward and
    random positions: the same contexts as the position ids of the default file."""
    rng = np.random.default_rng(seed)
    vocab, n = int(rng.integers(2, 40)), int(rng.integers(1, 4000))
    cuts = np.sort(rng.integers(0, n, int(rng.integers(0, 40))))
    docs = np.split(rng.integers(0, vocab, n), cuts)
    d = tmp_path_factory.mktemp("prefixes")
    full = ngramds.open(ngramds.build(docs, d / "full.ngds", orders=orders, vocab_size=vocab,
                                      progress=False, top_k=top_k))
    small = ngramds.open(ngramds.build(docs, d / "small.ngds", orders=orders,
                                       vocab_size=vocab, progress=False, compact=True,
                                       memory_limit="4G" if bounded else None, top_k=top_k))
    if bounded:  # the same bytes as the in-memory build
        same = ngramds.build(docs, d / "same.ngds", orders=orders, vocab_size=vocab,
                             progress=False, compact=True, top_k=top_k)
        assert same.read_bytes() == (d / "small.ngds").read_bytes()
    adjacent = orders[-2] == orders[-1] - 1
    assert (small.table().prefix_offsets is not None) == adjacent
    assert ("order%d/prefix_offsets" % orders[-1] in small.sections) == adjacent
    everything = np.arange(n)
    windows = (rng.integers(0, n, 5)[:, None] + np.arange(700)).reshape(-1) % n
    for positions in (everything, everything[::-1], rng.permutation(n), windows,
                      np.concatenate([everything[: n // 2], everything, everything[::2]])):
        for order in orders:
            assert np.array_equal(small.contexts_at(positions, order),
                                  full.contexts_at(positions, order))


def test_a_damaged_link_is_refused_not_followed_to_another_context(tmp_path):
    """A compact file's walk from one position's context to the next trusts lower_contexts;
    a link changed to another valid id (no bound check can see it) must not give another
    context: every row found is checked against the position's tokens."""
    docs = [np.random.default_rng(0).integers(0, 5, 3000)]  # dense: most tokens follow most
    path = ngramds.build(docs, tmp_path / "c.ngds", vocab_size=5, progress=False,
                         compact=True)
    f = ngramds.open(path)
    truth = f.contexts_at(np.arange(f.num_tokens))
    links = np.asarray(f.table().lower_contexts)
    s = next(s for s in f.header["sections"] if s["name"] == "order4/lower_contexts")
    width, clean = int(s["dtype"][-1]), path.read_bytes()
    refused = 0
    for victim in range(links.size):  # each link in turn, changed to another valid id
        raw = bytearray(clean)
        at = s["offset"] + victim * width
        raw[at:at + width] = int((links[victim] + 1) % f.table(3).num_contexts).to_bytes(
            width, "little")
        path.write_bytes(bytes(raw))
        try:
            found = ngramds.open(path).contexts_at(np.arange(f.num_tokens))
        except ngramds.errors.FormatError:
            refused += 1
        else:  # (a link no position's walk follows changes nothing)
            assert np.array_equal(found, truth), f"link {victim}: another context found"
    assert refused > 0

"""``verify`` checks every invariant of spec/FORMAT.md section 5: each test crafts a file that
breaks one (checksums redone, so only the invariant's own check can see it) and expects
``verify`` to refuse it in one line naming the damage."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import ngramds
from ngramds.file.writer import write_atomic

TOP = 2 ** 63 + 5  # past int64: read through int64 it would wrap negative


def corpus(prompts: bool = False):
    rng = np.random.default_rng(3)
    docs = [rng.integers(0, 6, int(k)) for k in rng.integers(5, 60, 12)]
    tokens = np.concatenate(docs)
    offsets = np.concatenate([[0], np.cumsum([len(d) for d in docs])])
    lengths = np.minimum(3, np.diff(offsets)) if prompts else None
    return ngramds.Corpus(tokens, offsets, prompt_lengths=lengths)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("verify")
    full = ngramds.build(corpus(prompts=True), d / "full.ngds", orders=[1, 2, 3], vocab_size=6,
                         progress=False)
    compact = ngramds.build(corpus(), d / "compact.ngds", orders=[2, 3, 4], vocab_size=6,
                            progress=False, compact=True)
    topk = ngramds.build(corpus(), d / "topk.ngds", order=2, vocab_size=6, top_k=2,
                         progress=False)
    for p in (full, compact, topk):
        ngramds.open(p, verify=True)  # the clean files pass
    return {"full": full, "compact": compact, "topk": topk}


def tamper(src: Path, out: Path, edit) -> Path:
    """``src`` rewritten to ``out`` with ``edit(arrays)`` applied to copies of its sections;
    every checksum redone (a crafted file: only the invariants can tell)."""
    f = ngramds.open(src)
    arrays = {n: np.array(f.section(n)) for n in f.sections}
    edit(arrays)
    header = {k: v for k, v in f.header.items() if k != "sections"}
    write_atomic(out, header, arrays)
    return out


def refused(path: Path, *words) -> str:
    f = ngramds.open(path)  # the cheap checks at open pass: the damage is in the content
    with pytest.raises(ngramds.FormatError) as info:
        f.verify()
    text = str(info.value)
    assert "\n" not in text and str(path) in text, text
    for w in words:
        assert w in text, text
    return text


def widen(arrays, name, index, value):
    arrays[name] = arrays[name].astype(np.uint64)
    arrays[name][index] = np.uint64(value)


def swap_rows(arrays, name, a, b):
    arr = arrays[name]
    arr[[a, b]] = arr[[b, a]]


def test_a_prompt_length_past_2_63_is_refused(files, tmp_path):
    bad = tamper(files["full"], tmp_path / "p.ngds",
                 lambda a: widen(a, "prompt_lengths", 0, TOP))
    refused(bad, "prompt")


def test_a_prompt_longer_than_its_document_is_refused(files, tmp_path):
    def edit(a):
        a["prompt_lengths"] = a["prompt_lengths"].astype(np.uint64)
        a["prompt_lengths"][1] = np.diff(a["doc_offsets"].astype(np.int64))[1] + 1
    refused(tamper(files["full"], tmp_path / "p.ngds", edit), "prompt")


def test_changed_tokens_of_a_compact_file_are_refused(files, tmp_path):
    def edit(a):
        a["tokens"][20] = (a["tokens"][20] + 1) % 6
    refused(tamper(files["compact"], tmp_path / "t.ngds", edit))


def test_changed_tokens_of_a_file_with_position_ids_are_refused(files, tmp_path):
    def edit(a):
        a["tokens"][20] = (a["tokens"][20] + 1) % 6
    refused(tamper(files["full"], tmp_path / "t.ngds", edit))


def test_a_prefix_offset_past_2_63_is_refused(files, tmp_path):
    bad = tamper(files["compact"], tmp_path / "po.ngds",
                 lambda a: widen(a, "order4/prefix_offsets", 3, TOP))
    refused(bad, "prefix_offsets")


def test_prefix_offsets_sorted_but_wrong_are_refused(files, tmp_path):
    def edit(a):
        po = a["order4/prefix_offsets"].astype(np.int64)
        i = int(np.flatnonzero(np.diff(po) > 1)[0]) + 1  # a run of 2+: move its start on
        po[i] += 1
        a["order4/prefix_offsets"] = po.astype(np.uint64)
    refused(tamper(files["compact"], tmp_path / "po.ngds", edit), "prefix_offsets")


@pytest.mark.parametrize("name", ["compact", "full"])
def test_reversed_lower_contexts_are_refused(files, tmp_path, name):
    section = "order4/lower_contexts" if name == "compact" else "order3/lower_contexts"

    def edit(a):
        a[section] = a[section][::-1].copy()
    refused(tamper(files[name], tmp_path / "l.ngds", edit), "lower_contexts")


def test_a_link_to_another_valid_context_is_refused(files, tmp_path):
    def edit(a):
        links = a["order3/lower_contexts"]
        links[-1] = (int(links[-1]) + 1) % 7  # order 2: 7 contexts (empty + 6 tokens)
    refused(tamper(files["full"], tmp_path / "l.ngds", edit), "lower_contexts")


def test_a_position_id_of_another_valid_context_is_refused(files, tmp_path):
    def edit(a):
        pc = a["order3/position_contexts"]
        pc[30] = (int(pc[30]) + 1) % (int(pc.max()) + 1)
    refused(tamper(files["full"], tmp_path / "pc.ngds", edit), "position_contexts")


def test_context_rows_out_of_order_are_refused(files, tmp_path):
    def edit(a):
        clo = a["order3/context_length_offsets"]
        swap_rows(a, "order3/context_tokens", int(clo[2]), int(clo[2]) + 1)
    refused(tamper(files["full"], tmp_path / "r.ngds", edit), "context_tokens")


def test_a_context_row_not_zero_padded_is_refused(files, tmp_path):
    def edit(a):
        a["order3/context_tokens"][1, 1] = 1  # a length-1 row with a second token
    refused(tamper(files["full"], tmp_path / "r.ngds", edit), "context_tokens")


def test_a_context_row_holding_an_id_past_the_vocabulary_is_refused(files, tmp_path):
    def edit(a):
        a["order3/context_tokens"][-1, 0] = 6
    refused(tamper(files["full"], tmp_path / "r.ngds", edit), "context_tokens")


def test_a_duplicate_next_id_of_another_count_is_refused(files, tmp_path):
    def edit(a):
        eo, counts, ids = (a[f"order2/{n}"] for n in ("entry_offsets", "counts", "next_ids"))
        c = next(c for c in range(eo.size - 1) if eo[c + 1] - eo[c] >= 2 and
                 counts[eo[c]] > counts[eo[c] + 1])
        ids[eo[c] + 1] = ids[eo[c]]
    refused(tamper(files["full"], tmp_path / "e.ngds", edit), "order2")


def test_equal_counts_with_descending_ids_are_refused(files, tmp_path):
    def edit(a):
        eo, counts, ids = (a[f"order1/{n}"] for n in ("entry_offsets", "counts", "next_ids"))
        counts[:] = counts[0]  # order 1: one context, every token; all counts equal
        ids[:2] = ids[1::-1].copy()
        a["order1/totals"][0] = counts.sum()
    refused(tamper(files["full"], tmp_path / "e.ngds", edit))


def test_totals_moved_between_contexts_are_refused(files, tmp_path):
    """The totals still add up to N and match their counts' sums, but are not the number of
    positions of their contexts."""
    def edit(a):
        eo, counts, totals = (a[f"order3/{n}"] for n in ("entry_offsets", "counts", "totals"))
        first = counts[eo[:-1]].astype(np.int64)
        second = np.where(np.diff(eo) > 1, counts[np.minimum(eo[:-1] + 1, counts.size - 1)], 0)
        c = int(np.flatnonzero(first - 1 > second)[0])  # its top count can lose one
        d = (c + 1) % totals.size
        for x, delta in ((c, -1), (d, 1)):  # each context's first (largest) count
            totals[x] = int(totals[x]) + delta
            counts[eo[x]] = int(counts[eo[x]]) + delta
    text = refused(tamper(files["full"], tmp_path / "t.ngds", edit))
    assert "order3" in text


def test_counts_whose_sum_wraps_past_2_64_are_refused(files, tmp_path):
    def edit(a):
        eo = a["order2/entry_offsets"]
        c = next(c for c in range(eo.size - 1) if eo[c + 1] - eo[c] >= 2)
        counts = a["order2/counts"].astype(np.uint64)
        total = int(a["order2/totals"][c])
        # two counts that add up to total + 2^64: equal to the total modulo 2^64
        counts[eo[c]] = np.uint64(2 ** 63 + total)
        counts[eo[c] + 1] = np.uint64(2 ** 63)
        counts[eo[c] + 2:eo[c + 1]] = 0
        a["order2/counts"] = counts
    refused(tamper(files["full"], tmp_path / "w.ngds", edit), "order2")


def test_more_entries_than_top_k_are_refused(files, tmp_path):
    def edit(a):  # a context of a table of top_k 2 takes its neighbour's first entry
        eo = a["order2/entry_offsets"]
        c = next(c for c in range(eo.size - 2) if eo[c + 1] - eo[c] == 2)
        eo[c + 1] += 1
    refused(tamper(files["topk"], tmp_path / "k.ngds", edit), "order2")


def test_bytes_after_the_last_section_are_refused(files, tmp_path):
    bad = tmp_path / "tail.ngds"
    bad.write_bytes(files["full"].read_bytes() + b'{"step": 1}\n')
    refused(bad, "after the last section")


def test_version_1_files_still_verify():
    data = Path(__file__).resolve().parents[1] / "data"
    for name in ("v1_orders1-2-4.ngds", "v1_orders2-4.ngds"):
        ngramds.open(data / name, verify=True)

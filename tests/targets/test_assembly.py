"""Items of a file's samples without torch (ngramds.targets.assembly): windows and their
labels, the HF layout, prompt masks, position ids, document-aligned samples and the
device-mode slice, checked against plain Python."""
import subprocess
import sys

import numpy as np
import pytest

import ngramds
from ngramds.targets import TargetConfig, Targets, batch_shapes
from ngramds.targets.assembly import device_items, fill_items, sample_layout

L = 6


@pytest.fixture(scope="module")
def f(tmp_path_factory):
    tokens = np.arange(61) % 7
    offsets = np.array([0, 9, 13, 30, 61])
    path = tmp_path_factory.mktemp("assembly") / "a.ngds"
    ngramds.build(ngramds.Corpus(tokens, offsets, prompt_lengths=np.array([3, 0, 5, 2])), path,
                  order=2, progress=False)
    return ngramds.open(path)


def items(f, samples, **kw):
    t = Targets(f, TargetConfig("allnts"))
    out = [np.empty(shape, dtype) for shape, dtype in batch_shapes(t.plan, len(samples), L)]
    positions = fill_items(t, np.array(samples, np.int64), L, 3, 1, out, **kw)
    return out, positions


def test_assembly_imports_no_torch():
    code = "import sys, ngramds.targets.assembly; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_windows_labels_layout_prompts_and_position_ids(f):
    tokens, offsets, prompts = (np.asarray(x, np.int64) for x in
                                (f.tokens, f.doc_offsets, f.prompt_lengths))
    assert sample_layout(f, L) == (None, (f.num_tokens - 1) // L)
    samples = [0, 2, 5]
    (inputs, labels, ids, probs), positions = items(f, samples, position_ids=True)
    expect = Targets(f, TargetConfig("allnts")).compute(np.array(samples) * L, L, 3, 1)
    for b, k in enumerate(samples):
        assert inputs[b].tolist() == tokens[k * L:k * L + L].tolist()
        assert labels[b].tolist() == tokens[k * L + 1:k * L + L + 1].tolist()
        doc_start = [p == k * L or p in offsets for p in range(k * L, k * L + L)]
        run = [0] * L
        for i in range(1, L):
            run[i] = 0 if doc_start[i] else run[i - 1] + 1
        assert positions[b].tolist() == run
    np.testing.assert_array_equal(ids, expect.target_ids)
    np.testing.assert_array_equal(probs, expect.target_probs)
    assert items(f, samples)[1] is None

    (inputs, labels, ids, probs), _ = items(f, samples, layout="hf")
    assert np.array_equal(labels, inputs)
    assert (probs[:, 0] == 0).all() and np.array_equal(ids[:, 1:], expect.target_ids[:, :-1])

    (_, labels, ids, probs), _ = items(f, samples, mask_prompt=True)
    for b, k in enumerate(samples):
        for t in range(L):
            p = k * L + t + 1  # the label's token
            d = np.searchsorted(offsets, p, side="right") - 1
            hidden = p - offsets[d] < prompts[d]
            assert (labels[b, t] == -100) == hidden and (probs[b, t].sum() == 0) == hidden


def test_documents_are_whole_and_padded(f):
    packing, n = sample_layout(f, L, "documents")
    assert n == packing.num_samples >= 1
    (inputs, labels, ids, probs), positions = items(f, list(range(n)), packing=packing,
                                                   position_ids=True)
    tokens = np.asarray(f.tokens, np.int64)
    pieces = [tokens[a:a + m].tolist() for a, m in zip(packing.starts, packing.lengths)]
    for k in range(n):
        row = [x for j in range(packing.first[k], packing.first[k + 1]) for x in pieces[j]]
        assert inputs[k, :len(row)].tolist() == row and (inputs[k, len(row):] == 0).all()
        assert (labels[k, len(row) - 1:] == -100).all() and (positions[k] >= 0).all()
    assert ((probs.sum(-1) > 0) == (labels != -100)).all()
    (_, hf_labels, _, _), _ = items(f, list(range(n)), packing=packing, layout="hf")
    assert (hf_labels[:, 0] == -100).all() and np.array_equal(hf_labels[:, 1:], labels[:, :-1])


def test_device_items_are_the_files_slice(f):
    t = Targets(f, TargetConfig())
    samples = np.array([1, 4], np.int64)
    got = device_items(t, samples, L, 2)
    tokens = np.asarray(f.tokens, np.int64)
    for b, k in enumerate(samples.tolist()):
        assert got["window"][b].tolist() == tokens[k * L:k * L + L + 1].tolist()
    assert got["start"].tolist() == [L, 4 * L] and got["index"].tolist() == [1, 4]
    assert got["epoch"].tolist() == [2, 2]
    assert got["file_crc"].tolist() == [f.header_crc] * 2

"""Seeing the targets: ``ds[k]`` (by sample number), ``ngramds show``, and the targets' mean
entropy (the soft loss's floor) in ``info`` and ``show``."""
import json

import numpy as np
import pytest
import torch

import ngramds
from ngramds.cli import main
from ngramds.targets import TargetConfig, Targets
from ngramds.targets.entropy import mean_entropy, target_entropy
from ngramds.torch import NgramDataset, NgramLoader

SEQ = 8


@pytest.fixture(scope="module")
def path(tmp_path_factory):
    tokens = (np.random.default_rng(1).zipf(1.3, SEQ * 40 + 3) % 30).astype(np.uint16)
    p = tmp_path_factory.mktemp("inspect") / "i.ngds"
    ngramds.build(tokens, p, eos_id=0, progress=False)
    return p


@pytest.mark.parametrize("kw", [{}, {"layout": "hf", "doc_info": True}, {"targets": "allnts"},
                                {"sampling": "documents", "layout": "hf", "doc_info": True}])
def test_getitem_is_the_item_of_that_sample_number(path, kw):
    ds = NgramDataset(path, SEQ, seed=5, **kw)
    for epoch in (0, 3):
        ds.set_epoch(epoch)
        for batch in NgramLoader(ds, batch_size=4):
            ds.set_epoch(epoch)  # the loader moved it on after the last batch
            for j, k in enumerate(batch["index"].tolist()):
                item = ds[k]
                assert item.keys() == batch.keys()
                for key in item:
                    assert torch.equal(item[key], batch[key][j]), key


def test_getitem_bad_indices(path):
    ds = NgramDataset(path, SEQ)
    assert int(ds[ds.num_samples - 1]["index"]) == ds.num_samples - 1
    assert int(ds[-1]["index"]) == ds.num_samples - 1
    with pytest.raises(IndexError, match="sample"):
        ds[ds.num_samples]
    with pytest.raises(ngramds.InputError, match="integer"):
        ds["3"]


def ref_entropy(ids, probs) -> np.ndarray:
    out = []
    for row_ids, row_p in zip(ids.tolist(), probs.tolist()):
        merged = {}
        for i, p in zip(row_ids, row_p):
            merged[i] = merged.get(i, 0.0) + p
        out.append(-sum(p * np.log(p) for p in merged.values() if p > 0))
    return np.array(out)


@pytest.mark.parametrize("config", [TargetConfig("allnts"), TargetConfig("coconts", top_r=2),
                                    TargetConfig("coconts", residual="renorm")])
def test_target_entropy_merges_slots_of_one_id(path, config):
    t = Targets(ngramds.open(path), config)
    batch = t.compute(np.arange(0, 20 * SEQ, SEQ), SEQ)
    ids, probs = batch.target_ids.reshape(-1, batch.target_ids.shape[-1]), \
        batch.target_probs.reshape(-1, batch.target_probs.shape[-1])
    np.testing.assert_allclose(target_entropy(ids, probs), ref_entropy(ids, probs), atol=1e-6)


def test_mean_entropy_is_exact_on_small_files_and_sampled_on_large(path):
    f = ngramds.open(path)
    config = TargetConfig("allnts")
    value, n = mean_entropy(f, config)
    assert n == f.num_tokens - 1  # every label position
    t = Targets(f, config)
    batch = t.compute(np.arange(f.num_tokens - 1), 1)
    ref = ref_entropy(batch.target_ids[:, 0], batch.target_probs[:, 0]).mean()
    assert value == pytest.approx(ref, rel=1e-6)
    value_s, n_s = mean_entropy(f, config, positions=50)
    assert n_s == 50 and value_s == pytest.approx(value, rel=0.5)
    assert mean_entropy(f, TargetConfig("onehot"))[0] == 0.0


def test_info_reports_target_entropy(path, capsys):
    assert main(["info", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    ent = info["target_entropy"]
    f = ngramds.open(path)
    for mode, config in (("allnts", TargetConfig("allnts")),
                         ("coconts", TargetConfig("coconts")),
                         ("coconts-renorm", TargetConfig("coconts", residual="renorm"))):
        assert ent[mode] == pytest.approx(mean_entropy(f, config)[0])
        assert ent["positions"][mode] == f.num_tokens - 1
    assert main(["info", str(path)]) == 0
    assert "entropy" in capsys.readouterr().out


def test_show_prints_each_position_and_its_top_targets(path, capsys):
    assert main(["show", str(path), "--sample", "2", "--seq-len", str(SEQ), "--top", "3",
                 "--targets", "allnts"]) == 0
    out = capsys.readouterr().out.splitlines()
    ds = NgramDataset(path, SEQ, targets="allnts")
    item = ds[2]
    rows = [line for line in out if line.lstrip()[:1].isdigit()]
    assert len(rows) == SEQ
    for t, line in enumerate(rows):
        fields = line.split()
        assert int(fields[0]) == t
        assert int(fields[1]) == int(item["input_ids"][t])
        assert int(fields[2]) == int(item["labels"][t])
        merged = {}  # the slots of one id (one per order's block) summed
        for i, q in zip(item["target_ids"][t].tolist(), item["target_probs"][t].tolist()):
            merged[i] = merged.get(i, 0.0) + q
        best = min(merged, key=lambda i: (-merged[i], i))
        assert fields[4] == f"{best}:{merged[best]:.3f}"
        assert float(fields[3]) == pytest.approx(
            -sum(q * np.log(q) for q in merged.values() if q > 0), abs=1e-3)
    text = "\n".join(out)
    assert "mean entropy" in text
    assert main(["show", str(path), "--sample", "100000", "--seq-len", str(SEQ)]) == 2
    assert "sample" in capsys.readouterr().err


def test_show_takes_the_escape_weight(path, capsys):
    """--escape is the dataset's ``escape``: the header names it, the rows follow it."""
    for escape in (1.0, 25.0):
        assert main(["show", str(path), "--sample", "1", "--seq-len", str(SEQ), "--top", "1",
                     "--escape", str(escape)]) == 0
        out = capsys.readouterr().out.splitlines()
        assert f"mixing witten-bell (escape {escape:g})" in out[0]
        item = NgramDataset(path, SEQ, escape=escape)[1]
        rows = [line.split() for line in out if line.lstrip()[:1].isdigit()]
        for t, fields in enumerate(rows):
            merged = {}
            for i, q in zip(item["target_ids"][t].tolist(), item["target_probs"][t].tolist()):
                merged[i] = merged.get(i, 0.0) + q
            best = min(merged, key=lambda i: (-merged[i], i))
            assert fields[4] == f"{best}:{merged[best]:.3f}"
    assert main(["show", str(path), "--sample", "1", "--escape", "-1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "escape must be a number" in err


@pytest.mark.parametrize("args,kw", [
    (["--mixing", "fixed", "--lambdas", "1,2,5"], dict(mixing="fixed", lambdas=[1, 2, 5])),
    (["--mixing", "kneser-ney"], dict(mixing="kneser-ney")),
    (["--targets", "allnts", "--max-k", "2", "--orders", "2,3"],
     dict(targets="allnts", max_k=2, orders=[2, 3])),
    (["--mixing", "backoff", "--min-count", "3"], dict(mixing="backoff", min_count=3)),
])
def test_show_takes_every_target_option(path, capsys, args, kw):
    """show's target flags are NgramDataset's target options, every one of them."""
    assert main(["show", str(path), "--sample", "1", "--seq-len", str(SEQ), "--top", "1",
                 *args]) == 0
    out = capsys.readouterr().out.splitlines()
    assert f"mixing {kw.get('mixing', 'witten-bell')}" in out[0]
    item = NgramDataset(path, SEQ, **kw)[1]
    rows = [line.split() for line in out if line.lstrip()[:1].isdigit()]
    for t, fields in enumerate(rows):
        merged = {}
        for i, q in zip(item["target_ids"][t].tolist(), item["target_probs"][t].tolist()):
            merged[i] = merged.get(i, 0.0) + q
        best = min(merged, key=lambda i: (-merged[i], i))
        assert fields[4] == f"{best}:{merged[best]:.3f}"


def test_show_documents_and_prompt_rows(tmp_path, capsys):
    tokens, offsets = np.arange(40) % 7, np.array([0, 9, 13, 30, 40])
    path = ngramds.build(ngramds.Corpus(tokens, offsets, prompt_lengths=np.array([3, 0, 5, 2])),
                         tmp_path / "p.ngds", order=2, progress=False)
    for sampling in ("windows", "documents"):
        item = NgramDataset(path, 6, sampling=sampling)[2]
        assert main(["show", str(path), "--sample", "2", "--seq-len", "6", "--sampling",
                     sampling]) == 0
        rows = [line.split() for line in capsys.readouterr().out.splitlines()
                if line.lstrip()[:1].isdigit()]
        assert [int(r[2]) for r in rows] == item["labels"].tolist()
        assert [int(r[1]) for r in rows] == item["input_ids"].tolist()
        assert any(int(r[2]) == -100 for r in rows)

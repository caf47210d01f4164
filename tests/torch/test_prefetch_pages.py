"""NgramDataset(prefetch_pages=...): asking for the pages of the next batches changes no batch
(bit for bit, targets in the loader or on the device, in the training process or in a
worker), and its options are checked."""
import numpy as np
import pytest
import torch

import ngramds
from ngramds.errors import InputError
from ngramds.file import residency
from ngramds.torch import NgramDataset, NgramLoader

SEQ = 16


@pytest.fixture(scope="module")
def path(tmp_path_factory):
    tokens = (np.random.default_rng(5).zipf(1.3, SEQ * 200 + 1) % 300).astype(np.uint16)
    p = tmp_path_factory.mktemp("pages") / "p.ngds"
    ngramds.build(tokens, p, orders=[2, 3, 4], progress=False)
    return p


def batches(path, workers: int, **options) -> list:
    ds = NgramDataset(path, SEQ, seed=3, **options)
    return list(NgramLoader(ds, batch_size=5, num_workers=workers))


@pytest.mark.parametrize("targets_on", ["loader", "device"])
@pytest.mark.parametrize("workers", [0, 1])
def test_prefetch_changes_no_batch(path, targets_on, workers):
    plain = batches(path, workers, targets_on=targets_on, prefetch_pages=False)
    assert len(plain) > 30
    for mode in (True, "windows", "tables"):
        got = batches(path, workers, targets_on=targets_on, prefetch_pages=mode)
        assert len(got) == len(plain)
        for a, b in zip(plain, got):
            assert a.keys() == b.keys()
            for key in a:
                assert torch.equal(a[key], b[key]), (mode, key)


def test_prefetch_options(path, monkeypatch):
    assert NgramDataset(path, SEQ).prefetch_pages is None  # "auto": a file far smaller than RAM
    monkeypatch.setattr(residency, "memory_bytes", lambda: 2 * path.stat().st_size - 1)
    assert NgramDataset(path, SEQ).prefetch_pages == "windows"  # more than half the memory
    assert NgramDataset(path, SEQ, sampling="documents").prefetch_pages is None
    monkeypatch.setattr(residency, "memory_bytes", lambda: 2 * path.stat().st_size)
    assert NgramDataset(path, SEQ).prefetch_pages is None
    monkeypatch.setattr(residency, "memory_bytes", lambda: None)  # unknown: off
    assert NgramDataset(path, SEQ).prefetch_pages is None
    assert NgramDataset(path, SEQ, prefetch_pages=True).prefetch_pages == "windows"
    assert NgramDataset(path, SEQ, prefetch_pages=False).prefetch_pages is None
    assert NgramDataset(path, SEQ, prefetch_pages="tables").prefetch_pages == "tables"
    with pytest.raises(InputError, match="prefetch_pages must be"):
        NgramDataset(path, SEQ, prefetch_pages="all")
    with pytest.raises(InputError, match="window samples"):
        NgramDataset(path, SEQ, sampling="documents", prefetch_pages="windows")


def test_prefetch_changes_no_batch_of_a_pruned_file(path, tmp_path):
    tokens = ngramds.open(path).tokens
    pruned = tmp_path / "pruned.ngds"
    ngramds.build(np.asarray(tokens), pruned, orders=[2, 3, 4], min_count=2, progress=False)
    plain = batches(pruned, 0, prefetch_pages=False)
    for a, b in zip(plain, batches(pruned, 0, prefetch_pages="tables")):
        for key in a:
            assert torch.equal(a[key], b[key]), key


def test_prefetch_with_onehot_targets_and_a_resumed_pass(path):
    a = batches(path, 0, targets="onehot", prefetch_pages="tables")
    b = batches(path, 0, targets="onehot", prefetch_pages=False)
    assert all(torch.equal(x["input_ids"], y["input_ids"]) for x, y in zip(a, b))
    ds = NgramDataset(path, SEQ, seed=3, prefetch_pages="tables")
    loader = NgramLoader(ds, batch_size=5)
    it = iter(loader)
    first = [next(it) for _ in range(3)]
    state = loader.state_dict()
    again = NgramLoader(NgramDataset(path, SEQ, seed=3, prefetch_pages="tables"), batch_size=5)
    again.load_state_dict(state)
    rest = [b["index"] for b in again]
    assert torch.equal(torch.cat(rest), torch.cat([b["index"] for b in it]))
    assert first

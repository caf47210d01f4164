"""NgramLoader: wrapping a dataset leaves the dataset as it was (its own items, batch size and
mode), while the loader and the dataset still share the epoch and the resume position."""
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import ngramds
from ngramds.torch import NgramDataset, NgramLoader

SEQ = 8


@pytest.fixture(scope="module")
def path(tmp_path_factory):
    tokens = (np.random.default_rng(4).zipf(1.4, SEQ * 30 + 1) % 40).astype(np.uint16)
    p = tmp_path_factory.mktemp("loader") / "l.ngds"
    ngramds.build(tokens, p, order=3, progress=False)
    return p


def test_wrapping_a_dataset_does_not_change_it(path):
    ds = NgramDataset(path, SEQ, seed=1)
    NgramLoader(ds, batch_size=3)
    assert (ds.batch_size, ds.batched, len(ds)) == (1, False, ds.num_samples)
    batch = next(iter(DataLoader(ds, batch_size=2)))
    assert batch["labels"].shape == (2, SEQ) and batch["target_ids"].dim() == 3
    untouched = NgramDataset(path, SEQ, seed=1)
    for key, value in next(iter(DataLoader(untouched, batch_size=2))).items():
        assert torch.equal(batch[key], value), key


def test_loader_and_its_dataset_share_the_epoch_and_the_position(path):
    ds = NgramDataset(path, SEQ, seed=1)
    loader = NgramLoader(ds, batch_size=3)
    list(loader)
    assert ds.epoch == 1 and ds.state_dict()["epoch"] == 1
    ds.set_epoch(4)
    assert loader.state_dict()["epoch"] == 4
    it = iter(loader)
    next(it)
    state = loader.state_dict()
    assert (state["epoch"], state["consumed"], state["batch_size"]) == (4, 3, 3)
    again = NgramDataset(path, SEQ, seed=1)
    again.load_state_dict(state)
    rest = [i for b in it for i in b["index"].tolist()]
    assert [int(x["index"]) for x in again] == rest

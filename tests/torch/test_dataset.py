import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import ngramds
from ngramds.torch import NgramDataset, NgramLoader

SEQ = 16
BS = 4


@pytest.fixture(scope="module")
def path(tmp_path_factory):
    rng = np.random.default_rng(0)
    tokens = (rng.zipf(1.4, 16 * 97 + 5) % 50).astype(np.uint16)
    p = tmp_path_factory.mktemp("ds") / "d.ngds"
    ngramds.build(tokens, p, order=3, eos_id=0, progress=False)
    return p


def indices(loader):
    return [int(i) for batch in loader for i in batch["index"]]


def rank_order(path, workers, rank, world, drop_last=True, batched=False, **kw):
    ds = NgramDataset(path, SEQ, rank=rank, world_size=world, drop_last=drop_last,
                      batch_size=BS, batched=batched, seed=3)
    loader = DataLoader(ds, batch_size=None if batched else BS, num_workers=workers, **kw)
    return indices(loader)


@pytest.mark.parametrize("world", [1, 2])
@pytest.mark.parametrize("drop_last", [True, False])
def test_partition_exactly_once_and_same_order_for_any_worker_count(path, world, drop_last):
    num_samples = (ngramds.open(path).num_tokens - 1) // SEQ
    orders = {w: [rank_order(path, w, r, world, drop_last) for r in range(world)]
              for w in (0, 2, 3)}
    for w in (2, 3):
        assert orders[w] == orders[0], f"order differs with {w} workers"
    flat = [i for rank in orders[0] for i in rank]
    assert len({len(rank) for rank in orders[0]}) == 1, "ranks got different sample counts"
    if drop_last:
        assert len(flat) == len(set(flat)) == world * (num_samples // world)
    else:  # every sample, and the first few of the order again to even out the ranks
        assert set(flat) == set(range(num_samples))
        assert len(flat) == world * -(-num_samples // world)


def test_batched_mode_matches_per_sample(path):
    assert rank_order(path, 2, 0, 1, batched=True) == rank_order(path, 0, 0, 1)


def test_shuffle_depends_on_seed_and_epoch_only(path):
    ds = NgramDataset(path, SEQ, batch_size=BS, seed=3)
    a = indices(DataLoader(ds, batch_size=BS))
    ds.set_epoch(1)
    b = indices(DataLoader(ds, batch_size=BS))
    assert sorted(a) == sorted(b) and a != b
    ds.set_epoch(0)
    assert indices(DataLoader(ds, batch_size=BS)) == a
    plain = NgramDataset(path, SEQ, shuffle=False, batch_size=BS)
    assert indices(DataLoader(plain, batch_size=BS)) == list(range(len(a)))


def test_sample_contents(path):
    f = ngramds.open(path)
    ds = NgramDataset(path, SEQ, shuffle=False, targets="coconts", top_r=3)
    item = next(iter(ds))
    k = int(item["index"])
    tokens = torch.from_numpy(f.tokens[k * SEQ:k * SEQ + SEQ + 1].astype(np.int64))
    assert torch.equal(item["input_ids"], tokens[:-1])
    assert torch.equal(item["labels"], tokens[1:])
    assert item["target_ids"].shape == (SEQ, 4) and item["target_probs"].dtype == torch.float32
    assert torch.allclose(item["target_probs"].sum(-1), torch.ones(SEQ))
    onehot = next(iter(NgramDataset(path, SEQ, targets="onehot")))
    assert onehot["target_ids"].shape == (SEQ, 0)  # no soft targets: plain cross-entropy


@pytest.mark.parametrize("workers_before,workers_after", [(0, 0), (2, 3), (3, 0)])
def test_resume_mid_epoch_equals_uninterrupted(path, workers_before, workers_after):
    full = indices(NgramLoader(NgramDataset(path, SEQ, seed=5), batch_size=BS,
                               num_workers=workers_before))
    first = NgramLoader(NgramDataset(path, SEQ, seed=5), batch_size=BS,
                        num_workers=workers_before)
    seen = []
    for step, batch in enumerate(first):
        seen += batch["index"].tolist()
        if step == 6:
            break
    state = first.state_dict()
    assert state["consumed"] == 7 * BS
    second = NgramLoader(NgramDataset(path, SEQ, seed=5), batch_size=BS,
                         num_workers=workers_after)
    second.load_state_dict(state)
    assert seen + indices(second) == full


def test_dataset_state_without_loader(path):
    ds = NgramDataset(path, SEQ, seed=1)
    it = iter(ds)
    head = [int(next(it)["index"]) for _ in range(5)]
    state = ds.state_dict()
    assert state["consumed"] == 5
    rest = [int(x["index"]) for x in it]
    again = NgramDataset(path, SEQ, seed=1)
    again.load_state_dict(state)
    assert [int(x["index"]) for x in again] == rest
    assert len(head + rest) == len(again)


def test_stateful_dataloader_resume(path):
    tdl = pytest.importorskip("torchdata.stateful_dataloader")
    ds_args = dict(seed=2, batch_size=BS)
    full = indices(tdl.StatefulDataLoader(NgramDataset(path, SEQ, **ds_args), batch_size=BS,
                                          num_workers=2))
    loader = tdl.StatefulDataLoader(NgramDataset(path, SEQ, **ds_args), batch_size=BS,
                                    num_workers=2)
    seen = []
    for step, batch in enumerate(loader):
        seen += batch["index"].tolist()
        if step == 4:
            state = loader.state_dict()
            break
    resumed = tdl.StatefulDataLoader(NgramDataset(path, SEQ, **ds_args), batch_size=BS,
                                     num_workers=2)
    resumed.load_state_dict(state)
    assert seen + indices(resumed) == full


def test_spawn_workers_and_pin_memory(path):
    expect = rank_order(path, 0, 0, 1)
    got = rank_order(path, 2, 0, 1, multiprocessing_context="spawn", pin_memory=True)
    assert got == expect


def test_each_process_maps_the_file_once(path, monkeypatch):
    ds = NgramDataset(path, SEQ)
    opened = []
    import ngramds.torch.dataset as mod
    real = mod.open_file
    monkeypatch.setattr(mod, "open_file", lambda *a, **k: opened.append(a) or real(*a, **k))
    for _ in DataLoader(ds, batch_size=BS):
        pass
    assert opened == []  # the main process reuses the file opened at construction
    ds._file = None
    for _ in DataLoader(ds, batch_size=BS):
        pass
    assert len(opened) == 1


def test_rank_from_torch_distributed(path, tmp_path):
    import torch.distributed as dist
    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/pg", rank=0, world_size=1)
    try:
        ds = NgramDataset(path, SEQ)
        assert tuple(ds.partition) == (0, 1)
    finally:
        dist.destroy_process_group()


def test_bad_arguments(path):
    with pytest.raises(ngramds.InputError, match="targets"):
        NgramDataset(path, SEQ, targets="soft")
    with pytest.raises(ngramds.InputError, match="too few"):
        NgramDataset(path, 10**9)


def test_a_target_config_or_its_keywords_give_the_same_dataset(path):
    """``config=TargetConfig(...)`` carries the target options; the keywords are a shortcut
    that builds the same config. Unknown keywords, or both forms at once, are one-line
    InputErrors."""
    from ngramds.targets import TargetConfig
    config = TargetConfig("allnts", max_k=3, mixing="backoff", min_count=3)
    given = NgramDataset(path, SEQ, config=config, seed=2)
    short = NgramDataset(path, SEQ, targets="allnts", max_k=3, mixing="backoff", min_count=3,
                         seed=2)
    assert given.config == short.config == config
    assert (given.targets, given.max_k, given.mixing) == ("allnts", 3, "backoff")
    for key, value in given[5].items():
        assert torch.equal(value, short[5][key]), key
    assert NgramDataset(path, SEQ).config == TargetConfig()
    with pytest.raises(ngramds.InputError, match=r"unknown target option 'top_k'.*top_r") as e:
        NgramDataset(path, SEQ, top_k=3)
    assert "\n" not in str(e.value)
    with pytest.raises(ngramds.InputError, match="config= or target keywords"):
        NgramDataset(path, SEQ, config=config, top_r=2)
    with pytest.raises(ngramds.InputError, match="config must be a TargetConfig"):
        NgramDataset(path, SEQ, config={"targets": "allnts"})


def test_no_memory_growth_per_item(path):
    import resource
    ds = NgramDataset(path, SEQ, batch_size=BS)
    items = iter(ds)
    for _ in range(50):
        next(items)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(5):  # several passes over the file
        for _ in NgramDataset(path, SEQ, batch_size=BS):
            pass
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 20 * 1024


@pytest.mark.parametrize("mixing", ["backoff", "witten-bell", "fixed"])
def test_mixed_targets_through_a_dataloader(tmp_path, mixing):
    rng = np.random.default_rng(1)
    tokens = (rng.zipf(1.4, 16 * 40 + 1) % 50).astype(np.uint16)
    p = tmp_path / "m.ngds"
    ngramds.build(tokens, p, orders=[1, 2, 3], progress=False)
    lambdas = [1, 1, 2] if mixing == "fixed" else None
    ds = NgramDataset(p, SEQ, targets="coconts", mixing=mixing, lambdas=lambdas, batch_size=BS,
                      seed=5)
    batches = list(DataLoader(ds, batch_size=BS, num_workers=2))
    assert len(batches) == len(ds) // BS
    width = 9 * (1 if mixing == "backoff" else 3)
    for b in batches:
        assert b["target_ids"].shape == (BS, SEQ, width)
        assert torch.allclose(b["target_probs"].sum(-1), torch.ones(BS, SEQ), atol=1e-5)
    batched = NgramDataset(p, SEQ, targets="coconts", mixing=mixing, lambdas=lambdas,
                           batch_size=BS, seed=5, batched=True)
    for a, b in zip(batches, batched):
        assert torch.equal(a["target_ids"], b["target_ids"])
        assert torch.equal(a["target_probs"], b["target_probs"])
    with pytest.raises(ngramds.InputError, match="not stored"):
        NgramDataset(p, SEQ, mixing=mixing, orders=[2, 4])


def test_default_mixing_follows_the_file(tmp_path):
    tokens = (np.random.default_rng(2).zipf(1.4, 16 * 20 + 1) % 50).astype(np.uint16)
    ngramds.build(tokens, tmp_path / "all.ngds", progress=False)  # default: orders 2-4
    ngramds.build(tokens, tmp_path / "one.ngds", order=4, progress=False)
    assert ngramds.open(tmp_path / "all.ngds").orders == [2, 3, 4]
    multi = NgramDataset(tmp_path / "all.ngds", SEQ)  # AllNTs: its widest, 29 (< 64) entries
    assert multi.mixing == "witten-bell" and multi.orders == [2, 3, 4] and multi.max_k == 29
    assert next(iter(multi))["target_ids"].shape == (SEQ, 3 * 29)
    single = NgramDataset(tmp_path / "one.ngds", SEQ, targets="coconts")
    assert single.mixing == "none" and next(iter(single))["target_ids"].shape == (SEQ, 9)
    assert NgramDataset(tmp_path / "all.ngds", SEQ, orders=[4]).mixing == "none"


@pytest.mark.parametrize("key", ["version", "seq_len", "num_samples", "seed", "shuffle",
                                 "file_crc", "sampling", "epoch", "consumed", "targets"])
def test_a_state_holding_arrays_is_refused_in_one_line(path, key):
    ds = NgramDataset(path, SEQ, seed=1)
    state = ds.state_dict()
    value = state[key]
    state[key] = {"top_r": np.array([8, 8])} if key == "targets" else np.array([value, value])
    with pytest.raises(ngramds.InputError, match=key.replace("targets", "top_r")) as e:
        ds.load_state_dict(state)
    assert "\n" not in str(e.value) and "ambiguous" not in str(e.value)


def test_a_state_of_numpy_scalars_resumes(path):
    ds = NgramDataset(path, SEQ, seed=1)
    state = {k: np.int64(v) if type(v) is int else (np.bool_(v) if type(v) is bool else v)
             for k, v in ds.state_dict().items()}
    state["consumed"] = np.int64(5)
    again = NgramDataset(path, SEQ, seed=1)
    again.load_state_dict(state)
    assert again.state_dict()["consumed"] == 5

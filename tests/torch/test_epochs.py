"""Epochs that cannot go stale and resume states that are checked and elastic."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader

import ngramds
from ngramds.torch import NgramDataset, NgramLoader

SEQ, BS = 8, 4


@pytest.fixture(scope="module")
def path(tmp_path_factory):
    tokens = (np.random.default_rng(7).zipf(1.4, SEQ * 61 + 3) % 40).astype(np.uint16)
    p = tmp_path_factory.mktemp("ep") / "e.ngds"
    ngramds.build(tokens, p, order=3, progress=False)
    return p


def indices(loader, limit=None):
    out = []
    for step, batch in enumerate(loader, 1):
        out += batch["index"].tolist()
        if step == limit:
            break
    return out


def epoch_order(path, epoch, **kw):
    ds = NgramDataset(path, SEQ, seed=1, batch_size=BS, **kw)
    ds.set_epoch(epoch)
    return indices(DataLoader(ds, batch_size=BS))


@pytest.mark.parametrize("workers", [0, 2])
def test_persistent_workers_see_set_epoch(path, workers):
    """With persistent workers, set_epoch in the main process reaches the live workers."""
    ds = NgramDataset(path, SEQ, seed=1, batch_size=BS)
    loader = DataLoader(ds, batch_size=BS, num_workers=workers,
                        persistent_workers=workers > 0)
    for epoch in range(3):
        ds.set_epoch(epoch)
        assert indices(loader) == epoch_order(path, epoch), f"epoch {epoch}"


@pytest.mark.parametrize("kind", ["DataLoader", "NgramLoader"])
@pytest.mark.parametrize("workers,persistent", [(0, False), (2, False), (2, True)])
def test_a_new_pass_is_a_new_epoch_without_set_epoch(path, kind, workers, persistent):
    """Loops that never call set_epoch (Lightning, plain for loops) get a new order."""
    ds = NgramDataset(path, SEQ, seed=1, batch_size=BS)
    cls = NgramLoader if kind == "NgramLoader" else DataLoader
    loader = cls(ds, batch_size=BS, num_workers=workers, persistent_workers=persistent)
    got = [indices(loader) for _ in range(3)]
    assert got == [epoch_order(path, e) for e in range(3)]


def test_loader_epoch_follows_complete_passes_only(path):
    ds = NgramDataset(path, SEQ, seed=1)
    loader = NgramLoader(ds, batch_size=BS, num_workers=2)
    indices(loader, limit=3)  # broken off: the same epoch again
    assert loader.state_dict()["epoch"] == 0
    assert indices(loader) == epoch_order(path, 0)
    assert loader.state_dict()["epoch"] == 1 and loader.state_dict()["consumed"] == 0
    loader.set_epoch(5)
    assert indices(loader) == epoch_order(path, 5)


@pytest.mark.parametrize("workers", [0, 2])
def test_set_epoch_after_load_state_dict_keeps_the_resume(path, workers):
    """The README's loop calls set_epoch(epoch) after load_state_dict."""
    full = epoch_order(path, 2)
    first = NgramLoader(NgramDataset(path, SEQ, seed=1), batch_size=BS, num_workers=workers)
    first.set_epoch(2)
    seen = indices(first, limit=5)
    state = first.state_dict()
    second = NgramLoader(NgramDataset(path, SEQ, seed=1), batch_size=BS, num_workers=workers)
    second.load_state_dict(state)
    second.set_epoch(2)  # same epoch: keep the position
    assert seen + indices(second) == full
    second.set_epoch(2)  # after a pass, set_epoch starts the epoch again
    assert indices(second) == full


def run_ranks(path, world, steps, state=None, workers=0):
    """Each of ``world`` ranks (simulated in this process) takes ``steps`` batches, or all
    when None; returns (samples per rank, rank 0's state)."""
    out, states = [], []
    for rank in range(world):
        ds = NgramDataset(path, SEQ, seed=1, rank=rank, world_size=world)
        loader = NgramLoader(ds, batch_size=BS, num_workers=workers)
        if state is not None:
            loader.load_state_dict(state)
        out.append(indices(loader, limit=steps))
        states.append(loader.state_dict())
    assert all(s == dict(states[0]) for s in states), "ranks disagree on the state"
    return out, states[0]


@pytest.mark.parametrize("before,after", [(2, 1), (1, 2), (2, 3), (2, 2)])
def test_resume_with_another_world_size_is_exactly_once(path, before, after):
    """The consumed prefix of the global order is known, whatever the world size."""
    num_samples = NgramDataset(path, SEQ).num_samples
    seen, state = run_ranks(path, before, steps=3)
    assert state["world_size"] == before
    assert state["consumed"] == 3 * BS * before
    rest, _ = run_ranks(path, after, steps=None, state=state, workers=2)
    delivered = [i for r in seen + rest for i in r]
    assert len(delivered) == len(set(delivered)), "a sample was delivered twice"
    tail = num_samples - 3 * BS * before
    assert len(delivered) == 3 * BS * before + after * (tail // after)  # drop_last per rank
    assert set(delivered) <= set(range(num_samples))


def test_states_of_another_layout_are_refused(path, tmp_path):
    state = NgramLoader(NgramDataset(path, SEQ, seed=1), batch_size=BS).state_dict()
    other = tmp_path / "o.ngds"
    ngramds.build((np.arange(SEQ * 61 + 3) % 40).astype(np.uint16), other, order=3,
                  progress=False)
    for ds, what in ((NgramDataset(other, SEQ, seed=1), "another file"),
                     (NgramDataset(path, SEQ + 1, seed=1), "seq_len"),
                     (NgramDataset(path, SEQ, seed=2), "another seed"),
                     (NgramDataset(path, SEQ, seed=1, shuffle=False), "shuffle")):
        with pytest.raises(ngramds.InputError, match=what):
            ds.load_state_dict(state)
    ds = NgramDataset(path, SEQ, seed=1)
    for bad, what in (({"epoch": 0, "consumed": -1}, "missing"), (None, "dict"), ({}, "missing"),
                      (dict(state, consumed=-1), "consumed"),
                      (dict(state, consumed=10**9), "consumed"),
                      (dict(state, epoch=2**64), "epoch"), (dict(state, epoch=1.5), "epoch")):
        with pytest.raises(ngramds.InputError, match=what):
            ds.load_state_dict(bad)


def test_bad_partition_and_epoch_arguments(path, monkeypatch):
    with pytest.raises(ngramds.InputError, match="world_size"):
        NgramDataset(path, SEQ, rank=0, world_size=0)
    with pytest.raises(ngramds.InputError, match="rank"):
        NgramDataset(path, SEQ, rank=2, world_size=2)
    ds = NgramDataset(path, SEQ)
    for bad in (-1, 2**64, 1.5):
        with pytest.raises(ngramds.InputError, match="epoch"):
            ds.set_epoch(bad)
    for kw in (dict(seed=2**64), dict(seed=-1), dict(top_r=2.5), dict(max_k=-1), dict(max_k=0),
               dict(top_r=10**6)):
        with pytest.raises(ngramds.InputError):
            NgramDataset(path, SEQ, **kw)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert tuple(NgramDataset(path, SEQ).partition) == (1, 2)


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_rank_reaches_workers_of_any_start_method(path, method, monkeypatch):
    """In one process: the partition travels with the dataset to spawned workers."""
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    ds = NgramDataset(path, SEQ, seed=1, batch_size=BS)
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    got = indices(DataLoader(ds, batch_size=BS, num_workers=2, multiprocessing_context=method))
    expect = NgramDataset(path, SEQ, seed=1, rank=1, world_size=2, batch_size=BS)
    assert got == indices(DataLoader(expect, batch_size=BS))
    assert len(got) == len(ds)


FIELD_VALUES = {
    "version": st.sampled_from([2, "1", None]),
    "epoch": st.one_of(st.integers(-2, 3), st.just(2**63), st.just(2**64), st.floats()),
    "consumed": st.one_of(st.integers(-2, 70), st.just(2**63), st.floats()),
    "num_samples": st.sampled_from([60, 0, "61"]),
    "seq_len": st.sampled_from([SEQ + 1, None]),
    "seed": st.sampled_from([2, 2**64]),
    "shuffle": st.sampled_from([False, None]),
    "file_crc": st.integers(0, 2**32),
    "world_size": st.integers(-1, 4),
    "drop_last": st.booleans(),
    "worker": st.one_of(st.just({"num_workers": 2, "next_block": -5, "in_block": 99,
                                 "start": -1, "base": 10**9, "rank": 0}), st.just([])),
    "targets": st.sampled_from([[], {"escape": 1.0}, {}]),
}


@pytest.mark.filterwarnings("ignore:resuming with other target options")  # (tested below)
@given(changes=st.dictionaries(st.sampled_from(sorted(FIELD_VALUES)), st.none(), max_size=3),
       data=st.data(), drop=st.sampled_from([None, "epoch", "consumed", "file_crc"]))
@settings(max_examples=80)
def test_fuzzed_states_are_refused_or_resume_exactly_once(path, changes, data, drop):
    """Any state is refused with a one-line InputError, or resumes the epoch with
    every remaining sample once; never a hang, a crash or an empty epoch by mistake."""
    ds = NgramDataset(path, SEQ, seed=1)
    loader = NgramLoader(ds, batch_size=BS)
    state = dict(ds.state_dict(), epoch=1, consumed=13)
    for key in changes:
        state[key] = data.draw(FIELD_VALUES[key], label=key)
    if drop:
        state.pop(drop)
    try:
        loader.load_state_dict(state)
    except ngramds.InputError as exc:
        assert "\n" not in str(exc)
        return
    assert "worker" not in changes, "a bogus worker position was accepted"
    epoch, consumed = state["epoch"], state["consumed"]
    order = epoch_order(path, epoch)
    assert indices(loader) == order[consumed:]


def test_resuming_with_other_targets_warns(tmp_path):
    """The sample order does not depend on the target options, so a state resumes under
    others, but says so; a state of ngramds < 0.3.0 (no options recorded) warns that its
    Witten-Bell targets used escape=1 when these do not."""
    import warnings
    tokens = (np.random.default_rng(7).zipf(1.4, SEQ * 61 + 3) % 40).astype(np.uint16)
    path = ngramds.build(tokens, tmp_path / "m.ngds", orders=[2, 3], progress=False)
    saved = NgramDataset(path, SEQ, seed=1, escape=1).state_dict()
    assert saved["targets"]["escape"] == 1.0 and saved["targets"]["mixing"] == "auto"

    def warned(ds, state):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds.load_state_dict(state)
        return [str(w.message) for w in caught]

    assert warned(NgramDataset(path, SEQ, seed=1, escape=1), saved) == []
    (msg,) = warned(NgramDataset(path, SEQ, seed=1, top_r=4), saved)
    assert "top_r 8 -> 4" in msg and "escape 1.0 -> 10.0" in msg
    old = {k: v for k, v in saved.items() if k != "targets"}  # as ngramds 0.2 saved it
    (msg,) = warned(NgramDataset(path, SEQ, seed=1), old)
    assert "< 0.3.0" in msg and "escape=1" in msg
    assert warned(NgramDataset(path, SEQ, seed=1, escape=1), old) == []
    assert warned(NgramDataset(path, SEQ, seed=1, mixing="none"), old) == []
    with pytest.raises(ngramds.InputError, match="target options are not a dict"):
        NgramDataset(path, SEQ, seed=1).load_state_dict(dict(saved, targets=[1]))
    # an option a state does not record (added since it was saved) had its default then
    older = dict(saved, targets={k: v for k, v in saved["targets"].items()
                                 if k != "alpha_count"})
    assert warned(NgramDataset(path, SEQ, seed=1, escape=1), older) == []
    (msg,) = warned(NgramDataset(path, SEQ, seed=1, escape=1, alpha_count=2), older)
    assert "alpha_count 0.0 -> 2.0" in msg


@pytest.mark.parametrize("workers", [0, 2])
def test_a_loop_that_stops_at_len_gets_the_next_epoch(path, workers):
    """Frameworks (Lightning) take len(loader) batches and never ask for the end."""
    loader = NgramLoader(NgramDataset(path, SEQ, seed=1), batch_size=BS, num_workers=workers)
    for epoch in range(2):
        it = iter(loader)
        got = [i for _ in range(len(loader)) for i in next(it)["index"].tolist()]
        assert got == epoch_order(path, epoch)
        assert loader.state_dict()["epoch"] == epoch + 1
        assert loader.state_dict()["consumed"] == 0

"""Device targets of pruned files (spec/FORMAT.md, "Pruned files") equal the compiled ones:
global context ids shipped (also from a compact file, searched in the workers), unseen
orders' weights moved down, on every device and backend."""
import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import ngramds
from ngramds.errors import InputError
from ngramds.targets import TargetConfig, Targets
from ngramds.torch import NgramTargets


def compare(f, cfg, seed, epoch, device, seq_len=3):
    cpu = Targets(f, cfg)
    starts = np.arange(0, f.num_tokens - seq_len, max(1, seq_len // 2))
    if starts.size == 0:
        return
    expect = cpu.compute(starts, seq_len, seed, epoch)
    shipped = cpu.device_inputs(starts, seq_len)
    assert set(shipped) == {"window", "context_ids"}  # global ids, also from a compact file
    ids = shipped["context_ids"].astype(np.int64).reshape(-1)
    assert np.array_equal(ids, f.global_ids((starts[:, None] + np.arange(1, seq_len + 1))
                                            .reshape(-1)))
    b = starts.size
    batch = {k: torch.from_numpy(v) for k, v in shipped.items()}
    batch.update(start=torch.from_numpy(starts), epoch=torch.full((b,), epoch))
    for backend in ("torch", "compiled") if device == "cpu" else ("torch",):
        dev = NgramTargets(f, cfg, seed=seed, backend=backend, device=device)
        got = {k: v.cpu() for k, v in dev(batch).items()}
        dev.check()
        assert torch.equal(got["target_ids"], torch.from_numpy(expect.target_ids)), backend
        np.testing.assert_allclose(got["target_probs"].numpy(), expect.target_probs,
                                   rtol=1e-6, atol=1e-7)


@given(data=st.data(), mode=st.sampled_from(["allnts", "tail", "renorm"]),
       mixing=st.sampled_from(["none", "backoff", "witten-bell", "fixed"]),
       r=st.integers(1, 3), seed=st.sampled_from([0, 2**64 - 1]), compact=st.booleans())
@settings(max_examples=40, deadline=None)
def test_pruned_device_targets_equal_the_compiled_kernels(tmp_path_factory, device, data, mode,
                                                          mixing, r, seed, compact):
    vocab = data.draw(st.integers(2, 6))
    docs = [data.draw(st.lists(st.integers(0, vocab - 1), min_size=1, max_size=60))
            for _ in range(data.draw(st.integers(1, 3)))]
    orders = sorted(data.draw(st.lists(st.integers(1, 4), min_size=2, max_size=3, unique=True)))
    spec = {o: data.draw(st.integers(1, 3)) for o in orders[1:]}
    path = tmp_path_factory.mktemp("d") / "f.ngds"
    try:
        ngramds.build(docs, path, orders=orders, vocab_size=vocab, progress=False,
                      min_count=spec, compact=compact)
    except InputError:
        return
    f = ngramds.open(path)
    if not f.pruned:
        return  # (unpruned files: tests/torch/test_device.py)
    used = sorted(data.draw(st.lists(st.sampled_from(orders), min_size=1, unique=True)))
    if mixing != "none" and f.table(used[0]).min_count > 1:
        used = [orders[0], *used]
    lambdas = data.draw(st.lists(st.integers(0, 3), min_size=len(used),
                                 max_size=len(used)).filter(any)) if mixing == "fixed" else None
    targets, residual = ("allnts", "tail") if mode == "allnts" else ("coconts", mode)
    compare(f, TargetConfig(targets, r, residual, 3, mixing, used, 2, lambdas), seed, 1,
            device)


def test_pruned_real_corpus(tmp_path, device):
    rng = np.random.default_rng(4)
    tokens = (rng.zipf(1.2, 60_000) % 3000).astype(np.uint16)
    for compact in (False, True):
        path = tmp_path / f"p{compact}.ngds"
        ngramds.build(tokens, path, eos_id=0, progress=False, min_count=2, compact=compact)
        f = ngramds.open(path, verify=True)
        for cfg in (TargetConfig(top_r=4), TargetConfig("allnts", max_k=8),
                    TargetConfig(mixing="backoff", top_r=3), TargetConfig(mixing="none"),
                    TargetConfig(mixing="fixed", lambdas=[1, 2, 3])):
            compare(f, cfg, seed=7, epoch=3, device=device, seq_len=256)
    assert NgramTargets.table_bytes(path) < NgramTargets.table_bytes(
        ngramds.build(tokens, tmp_path / "u.ngds", eos_id=0, progress=False))

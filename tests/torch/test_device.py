"""Device targets (NgramTargets, here on the CPU, by torch ops and by the compiled kernels) equal
the compiled CPU kernels of the loader: ids identical, probabilities within float32 rounding,
for every mode and mixing, on random files."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import ngramds
from ngramds.targets import TargetConfig, Targets
from ngramds.torch import NgramDataset, NgramLoader, NgramTargets, ngram_loss
from strategies import multi_order_files


def backends(device):
    """The backends NgramTargets has on ``device``."""
    return ("torch", "compiled") if device == "cpu" else ("torch",)


def compare(f, cfg, seed, epoch, seq_len=3, device="cpu"):
    cpu = Targets(f, cfg)
    starts = np.arange(0, f.num_tokens - seq_len, max(1, seq_len // 2))
    if starts.size == 0:
        return
    weights = np.empty((starts.size, seq_len), np.float32) if cpu.plan.soft_weight else None
    expect = cpu.compute(starts, seq_len, seed, epoch, soft_weights=weights)
    shipped = cpu.device_inputs(starts, seq_len)
    compact = f.table().position_contexts is None
    assert ("context_ids" not in shipped) == compact  # (small keys: searched on the device)
    b = starts.size
    batch = {k: torch.from_numpy(v) for k, v in shipped.items()}
    batch.update(start=torch.from_numpy(starts), epoch=torch.full((b,), epoch))
    for backend in backends(device):
        dev = NgramTargets(f, cfg, seed=seed, backend=backend, device=device)
        if compact:  # the device's search finds the contexts the file's own search does
            found = dev.contexts(*(batch[k].to(device).long() for k in
                                   ("window", "history", "context_lengths")))
            expect_ids = f.contexts_at((starts[:, None] +
                                        np.arange(1, seq_len + 1)).reshape(-1))
            assert found.reshape(-1).tolist() == expect_ids.tolist()
        got = {k: v.cpu() for k, v in dev(batch).items()}
        dev.check()
        assert torch.equal(got["input_ids"], torch.from_numpy(expect.input_ids))
        assert torch.equal(got["labels"], torch.from_numpy(expect.labels))
        assert torch.equal(got["target_ids"], torch.from_numpy(expect.target_ids)), backend
        np.testing.assert_allclose(got["target_probs"].numpy(), expect.target_probs,
                                   rtol=1e-6, atol=1e-7)
        if weights is None:
            assert "soft_weight" not in got
        else:  # the soft-term weights: bit for bit
            assert torch.equal(got["soft_weight"], torch.from_numpy(weights)), backend


@given(data=st.data(), mode=st.sampled_from(["allnts", "tail", "renorm", "onehot"]),
       mixing=st.sampled_from(["none", "backoff", "witten-bell", "fixed", "kneser-ney"]),
       r=st.integers(1, 3), max_k=st.sampled_from([None, 1, 2]),
       seed=st.sampled_from([0, 1, 2**64 - 1]), epoch=st.integers(0, 3),
       min_count=st.integers(1, 3), escape=st.sampled_from([1.0, 0.5, 3.0, 7.25]),
       alpha_count=st.sampled_from([0.0, 0.0, 0.5, 3.0, 1e6]))
@settings(max_examples=60)
def test_device_targets_equal_the_compiled_kernels(tmp_path_factory, device, data, mode, mixing,
                                                   r, max_k, seed, epoch, min_count, escape,
                                                   alpha_count):
    f = data.draw(multi_order_files(tmp_path_factory))
    orders = data.draw(st.lists(st.sampled_from(f.orders), min_size=1, unique=True))
    lambdas = data.draw(st.lists(st.integers(0, 3), min_size=len(orders),
                                 max_size=len(orders)).filter(any)) if mixing == "fixed" else None
    targets, residual = {"allnts": ("allnts", "tail"), "onehot": ("onehot", "tail")}.get(
        mode, ("coconts", mode))
    if targets == "coconts" and any(f.table(o).top_k and r > f.table(o).top_k for o in orders):
        return
    cfg = TargetConfig(targets, r, residual, max_k, mixing, orders, min_count, lambdas,
                       escape, alpha_count)
    if mixing == "kneser-ney" and (any(f.table(o).top_k for o in orders) or any(
            o + 1 not in f.tables for o in sorted(orders)[:-1])):
        return  # (refused: tests/targets/test_kneser_ney.py)
    compare(f, cfg, seed, epoch, device=device)


def test_real_corpus_every_mixing(tmp_path, device):
    rng = np.random.default_rng(4)
    tokens = (rng.zipf(1.2, 60_000) % 3000).astype(np.uint16)  # long tails: block searches
    ngramds.build(tokens, tmp_path / "z.ngds", orders=[1, 2, 3, 4], eos_id=0, progress=False)
    ngramds.build(tokens, tmp_path / "k.ngds", orders=[2, 4], top_k=5, eos_id=0, progress=False)
    ngramds.build(tokens, tmp_path / "c.ngds", eos_id=0, progress=False, compact=True)
    for name in ("z.ngds", "k.ngds", "c.ngds"):
        f = ngramds.open(tmp_path / name)
        kn = [TargetConfig(top_r=4, mixing="kneser-ney", alpha_count=2.0)] \
            if name == "c.ngds" else []
        for cfg in (TargetConfig(top_r=4, alpha_count=7.0),
                    TargetConfig(residual="renorm", top_r=4),
                    TargetConfig("allnts", max_k=8), *kn, TargetConfig(top_r=4, escape=3.0),
                    TargetConfig(mixing="backoff", top_r=3), TargetConfig(mixing="none", top_r=2)):
            compare(f, cfg, seed=7, epoch=3, seq_len=256, device=device)


@pytest.mark.parametrize("backend", ["torch", "compiled"])
def test_a_batch_across_an_epoch_boundary(tmp_path, device, backend):
    """Each sample's tail draws use its own epoch."""
    if backend not in backends(device):
        pytest.skip("the compiled backend runs on the CPU")
    tokens = (np.random.default_rng(6).zipf(1.2, 5_000) % 300).astype(np.uint16)
    f = ngramds.open(ngramds.build(tokens, tmp_path / "e.ngds", progress=False))
    coconts = TargetConfig(targets="coconts")  # (AllNTs draws nothing)
    cpu, starts = Targets(f, coconts), np.array([5, 900, 17, 2_000])
    epochs = np.array([3, 4, 3, 4])
    shipped = {k: torch.from_numpy(v) for k, v in cpu.device_inputs(starts, 64).items()}
    shipped.update(start=torch.from_numpy(starts), epoch=torch.from_numpy(epochs))
    got = {k: v.cpu() for k, v in
           NgramTargets(f, config=coconts, seed=9, backend=backend, device=device)(
               shipped).items()}
    for i, (s, e) in enumerate(zip(starts, epochs)):
        expect = cpu.compute(starts[i:i + 1], 64, seed=9, epoch=int(e))
        assert torch.equal(got["target_ids"][i], torch.from_numpy(expect.target_ids[0]))
        np.testing.assert_allclose(got["target_probs"][i].numpy(), expect.target_probs[0],
                                   rtol=1e-6, atol=1e-7)
    assert not torch.equal(got["target_ids"],
                           NgramTargets(f, config=coconts, seed=9, backend=backend,
                                        device=device)(
                               {**shipped, "epoch": torch.full((4,), 3)})["target_ids"].cpu())


def test_backend_choice(tmp_path):
    f = ngramds.open(ngramds.build(np.arange(500) % 7, tmp_path / "b.ngds", progress=False))
    assert NgramTargets(f).backend == "compiled"  # on the CPU
    assert NgramTargets(f, backend="torch").backend == "torch"
    assert NgramTargets(f, backend="compiled").nbytes < NgramTargets(f, backend="torch").nbytes
    with pytest.raises(ngramds.InputError, match="backend"):
        NgramTargets(f, backend="numba")
    with pytest.raises(ngramds.InputError, match="CPU only"):
        NgramTargets(f, device="meta", backend="compiled")


@pytest.mark.parametrize("workers,compact,backend", [(0, False, "torch"), (2, False, "auto"),
                                                     (2, True, "torch"), (0, True, "auto")])
def test_device_mode_through_the_loader(tmp_path, device, workers, compact, backend):
    if device != "cpu":
        backend = "torch"
    tokens = (np.random.default_rng(5).zipf(1.3, 30_000) % 400).astype(np.uint16)
    ngramds.build(tokens, tmp_path / "d.ngds", progress=False, compact=compact,
                  doc_lengths=[10_000, 3, 1, 19_996])
    # odd sizes: the shared buffer of a worker's batch pads each array to 8 bytes
    host = NgramLoader(NgramDataset(tmp_path / "d.ngds", 125, seed=2, batched=True),
                       batch_size=3)
    ds = NgramDataset(tmp_path / "d.ngds", 125, seed=2, batched=True, targets_on="device")
    loader = NgramLoader(ds, batch_size=3, num_workers=workers,
                         pin_memory=device.startswith("cuda"))
    targets = NgramTargets(ds, backend=backend, device=device)
    f = ds._file
    assert targets.nbytes < 16 * sum(f.table(o).num_contexts for o in ds.orders) + \
        12 * sum(f.table(o).num_entries for o in ds.orders) + \
        4 * sum(f.table(o).num_contexts for o in f.orders[1:]) + \
        8 * compact * f.num_contexts + 4096  # links (and keys), not positions
    for epoch in range(2):
        n = 0
        for a, b in zip(host, loader):
            # the highest order's ids only (a compact file: each context's length and
            # the tokens before the window), each as narrow as its values allow
            assert b["window"].dtype == torch.uint16  # 400 token ids
            if compact:
                assert "context_ids" not in b and b["history"].shape == (len(b["window"]), 3)
                assert b["context_lengths"].shape == b["window"][:, 1:].shape
                assert b["context_lengths"].dtype == torch.uint8
            else:
                assert b["context_ids"].shape == b["window"][:, 1:].shape
                assert b["context_ids"].dtype == (torch.uint16 if f.num_contexts <= 1 << 16
                                                  else torch.int32)
            b = {k: v.cpu() for k, v in targets(b).items()}
            for key in ("input_ids", "labels", "target_ids", "index"):
                assert torch.equal(a[key], b[key]), key
            torch.testing.assert_close(a["target_probs"], b["target_probs"])
            logits = torch.randn(*b["labels"].shape, 400)
            torch.testing.assert_close(ngram_loss(logits, a), ngram_loss(logits, b))
            n += 1
        assert n == len(loader)
    targets.check()


@pytest.mark.parametrize("backend", ["torch", "compiled"])
def test_hostile_context_ids_are_refused(tmp_path, device, backend):
    if backend not in backends(device):
        pytest.skip("the compiled backend runs on the CPU")
    ngramds.build(np.arange(500) % 7, tmp_path / "h.ngds", progress=False)
    ds = NgramDataset(tmp_path / "h.ngds", 16, targets_on="device")
    for bad in (10**6, -1):
        batch = next(iter(NgramLoader(ds, batch_size=2)))
        batch["context_ids"] = batch["context_ids"].long()
        batch["context_ids"][0, 3] = bad
        with pytest.raises(ngramds.FormatError, match="context id"):
            checked(NgramTargets(ds, backend=backend, device=device), batch)


@pytest.mark.parametrize("backend", ["torch", "compiled"])
def test_hostile_context_lengths_are_refused(tmp_path, device, backend):
    if backend not in backends(device):
        pytest.skip("the compiled backend runs on the CPU")
    ngramds.build(np.arange(500) % 7, tmp_path / "h.ngds", progress=False, compact=True)
    ds = NgramDataset(tmp_path / "h.ngds", 16, targets_on="device")
    targets = NgramTargets(ds, backend=backend, device=device)
    # the torch search finds no such context; the compiled one checks the batch against the
    # file it searches
    refused = "not in the table" if backend == "torch" else "not the file's"
    for value in (4, 200):  # longer than the order's contexts
        batch = next(iter(NgramLoader(ds, batch_size=2)))
        batch["context_lengths"][0, 3] = value
        with pytest.raises(ngramds.FormatError, match=refused):
            checked(targets, batch)
    batch = next(iter(NgramLoader(ds, batch_size=2)))
    batch["history"][0] = 6  # a context the corpus never had (..., 6, 6, 6, 0, ...)
    batch["context_lengths"][0, 0] = 3
    with pytest.raises(ngramds.FormatError, match=refused):
        checked(targets, batch)
    # a token past V would carry into the next digit of a packed key: (0, 9, w) reads as
    # (1, 2, w), a context of the corpus; refused, not aliased
    batch = next(iter(NgramLoader(ds, batch_size=2)))
    batch["history"] = torch.tensor([[5, 0, 9], [5, 0, 9]], dtype=torch.int64)
    batch["window"] = batch["window"].long()
    batch["window"][:, 0] = 3
    batch["context_lengths"][:, 0] = 3
    with pytest.raises(ngramds.FormatError, match=refused):
        checked(targets, batch)
    batch = next(iter(NgramLoader(ds, batch_size=2)))
    batch["context_lengths"][0, 5] = 1  # not 0 (a document start) nor one more than before
    with pytest.raises(ngramds.FormatError, match=refused):
        checked(targets, batch)
    batch = next(iter(NgramLoader(ds, batch_size=2)))
    batch["history"] = batch["history"][:, :0]  # the wrong shape: not read as no history
    with pytest.raises(ngramds.InputError, match="history"):
        checked(targets, batch)


def test_a_link_past_the_lower_table_is_refused_once(tmp_path):
    path = ngramds.build(np.arange(500) % 7, tmp_path / "l.ngds", progress=False)
    s = next(s for s in ngramds.open(path).header["sections"]
             if s["name"] == "order4/lower_contexts")
    raw = bytearray(path.read_bytes())
    # every link past the table (the CRC is not checked without verify)
    raw[s["offset"]:s["offset"] + s["length"]] = b"\xff" * s["length"]
    path.write_bytes(bytes(raw))
    with pytest.raises(ngramds.FormatError, match="lower_contexts"):
        NgramTargets(path, backend="torch")
    ds = NgramDataset(path, 16, targets_on="device")  # the compiled kernels: when followed
    targets = NgramTargets(ds, backend="compiled")
    with pytest.raises(ngramds.FormatError, match="link"):
        for batch in NgramLoader(ds, batch_size=4):
            targets(batch)


def device_batch(ds, batch_size=2):
    return next(iter(NgramLoader(ds, batch_size=batch_size)))


def small_files(tmp_path, compact=False):
    """Two files of the same length and vocabulary, different text (a batch of one passes every
    range check of the other)."""
    a = ngramds.build(np.arange(500) % 7, tmp_path / "a.ngds", progress=False, compact=compact)
    b = ngramds.build((np.arange(500) * 3) % 7, tmp_path / "b.ngds", progress=False,
                      compact=compact)
    return (NgramDataset(a, 16, targets_on="device"), NgramDataset(b, 16, targets_on="device"))


def checked(targets, batch):
    """targets(batch) with its checks' verdict: raised by the call on the CPU, by
    :meth:`NgramTargets.check` where they are deferred (on CUDA: no host sync)."""
    out = targets(batch)
    targets.check()
    return out


@pytest.mark.parametrize("backend", ["torch", "compiled"])
def test_hostile_windows_starts_and_epochs_are_refused(tmp_path, device, backend):
    if device != "cpu" and backend == "compiled":
        pytest.skip("the compiled backend runs on the CPU")
    ds, _ = small_files(tmp_path)
    targets = NgramTargets(ds, device=device, backend=backend)
    for value in (10**6, -7):  # target ids must stay < V
        batch = device_batch(ds)
        batch["window"] = batch["window"].long()
        batch["window"][0, 5] = value
        with pytest.raises(ngramds.FormatError, match="token id outside 0..6"):
            checked(targets, batch)
    for value in (-100, 10**12, 500 - 16):  # the last: the window runs past the stream
        batch = device_batch(ds)
        batch["start"] = batch["start"].clone()
        batch["start"][1] = value
        with pytest.raises(ngramds.InputError, match="start"):
            checked(targets, batch)
    batch = device_batch(ds)
    batch["epoch"] = batch["epoch"].clone()
    batch["epoch"][0] = -1
    with pytest.raises(ngramds.InputError, match="epoch"):
        checked(targets, batch)
    checked(targets, device_batch(ds))  # a good batch afterwards is fine


@pytest.mark.parametrize("compact", [False, True])
def test_a_batch_of_another_file_is_refused(tmp_path, device, compact):
    ds, other = small_files(tmp_path, compact)
    assert device_batch(ds)["file_crc"].tolist() == [ds._file.header_crc] * 2
    backends = ["torch"] + (["compiled"] if device == "cpu" else [])
    for backend in backends:
        targets = NgramTargets(ds, device=device, backend=backend)
        with pytest.raises(ngramds.InputError, match="another file"):
            checked(targets, device_batch(other))
        checked(targets, device_batch(ds))


@pytest.mark.parametrize("backend", ["torch", "compiled"])
def test_malformed_batches_are_one_line_input_errors(tmp_path, device, backend):
    if device != "cpu" and backend == "compiled":
        pytest.skip("the compiled backend runs on the CPU")
    ds, _ = small_files(tmp_path)
    targets = NgramTargets(ds, device=device, backend=backend)
    cases = [({k: v[:0] for k, v in device_batch(ds).items()}, "empty"),
             ({**device_batch(ds), "context_ids": device_batch(ds)["context_ids"][:, :5]},
              r"context_ids is \[2, 5\]; expected \[2, 16\]"),
             ({**device_batch(ds), "start": torch.zeros(3, dtype=torch.int64)},
              r"start is \[3\]; expected \[2\]"),
             ({**device_batch(ds), "window": device_batch(ds)["window"].float()}, "integer"),
             ("window", "batch dict")]
    for key in ("window", "start", "epoch", "context_ids"):
        batch = device_batch(ds)
        del batch[key]
        cases.append((batch, f"no {key}"))
    for batch, message in cases:
        with pytest.raises(ngramds.InputError, match=message) as e:
            checked(targets, batch)
        assert "\n" not in str(e.value)


def test_deferred_checks_report_the_batch_later(tmp_path, monkeypatch):
    """Where a host sync would be needed (CUDA), the checks raise at the next call or at
    check(), naming the batch; the bad batch's ids are clamped meanwhile (no read outside a
    table, no id >= V handed to the model). Here forced on the CPU."""
    ds, _ = small_files(tmp_path)
    targets = NgramTargets(ds, backend="torch")
    monkeypatch.setattr(targets, "_defer", True)
    bad = device_batch(ds)
    bad["window"] = bad["window"].long()
    bad["window"][0, 5] = 10**6
    out = targets(bad)  # not raised yet
    assert int(out["input_ids"].max()) < 7 and int(out["target_ids"].max()) < 7
    with pytest.raises(ngramds.FormatError, match="batch 1 .*token id outside"):
        targets(device_batch(ds))
    targets(device_batch(ds))
    targets.check()  # nothing pending: the error was reported once
    bad = device_batch(ds)
    bad["context_ids"] = bad["context_ids"].long()
    bad["context_ids"][0, 3] = 10**6
    targets(bad)
    with pytest.raises(ngramds.FormatError, match="context id"):
        targets.check()


def test_table_bytes_are_known_before_placing_them(tmp_path):
    tokens = (np.random.default_rng(3).zipf(1.2, 20_000) % 500).astype(np.uint16)
    ngramds.build(tokens, tmp_path / "t.ngds", progress=False, orders=[1, 2, 3, 4])
    ngramds.build(tokens, tmp_path / "c.ngds", progress=False, compact=True)
    for name, cfg in (("t.ngds", TargetConfig()), ("t.ngds", TargetConfig(orders=[2, 4])),
                      ("c.ngds", TargetConfig()), ("c.ngds", TargetConfig(mixing="kneser-ney"))):
        path = tmp_path / name
        planned = NgramTargets.table_bytes(path, cfg)
        assert planned == NgramTargets(path, cfg, backend="torch").nbytes > 0


def test_tables_that_do_not_fit_are_refused_naming_the_cpu_path(tmp_path, monkeypatch):
    from ngramds.torch import device as mod
    path = ngramds.build(np.arange(500) % 7, tmp_path / "m.ngds", progress=False)
    monkeypatch.setattr(mod, "_free_bytes", lambda device: 100)
    with pytest.raises(ngramds.InputError, match=r"need .* free.*on the CPU") as e:
        NgramTargets(path, device="meta", backend="torch")
    assert "\n" not in str(e.value)
    monkeypatch.setattr(mod, "_free_bytes", lambda device: 10**9)
    assert NgramTargets(path, device="meta", backend="torch").nbytes == \
        NgramTargets.table_bytes(path)


def test_tables_are_placed_once_per_device(tmp_path, device):
    path = ngramds.build(np.arange(500) % 7, tmp_path / "p.ngds", progress=False)
    a = NgramTargets(path, device=device, backend="torch")
    b = NgramTargets(ngramds.open(path), device=device, backend="torch")
    assert a.tables[0].next_ids is b.tables[0].next_ids and a.links[0] is b.links[0]
    c = NgramTargets(path, TargetConfig(orders=[2, 4]), device=device, backend="torch")
    assert c.tables[0].next_ids is not a.tables[0].next_ids


@pytest.mark.parametrize("compact", [False, True])
def test_cuda_graphs_replay_the_eager_targets(tmp_path, device, compact):
    if not device.startswith("cuda"):
        pytest.skip("CUDA graphs exist on CUDA only")
    tokens = (np.random.default_rng(7).zipf(1.3, 20_000) % 400).astype(np.uint16)
    ngramds.build(tokens, tmp_path / "g.ngds", progress=False, compact=compact)
    ds = NgramDataset(tmp_path / "g.ngds", 64, seed=3, batched=True, targets_on="device")
    batches = [b for _, b in zip(range(8), NgramLoader(ds, batch_size=4, pin_memory=True))]
    graphs = NgramTargets(ds, device=device)
    eager = NgramTargets(ds, device=device, cuda_graphs=False)
    held = [graphs(b) for b in batches]  # replayed from the second call on
    assert len(graphs._graphs) == 1 and eager._graphs is None
    for b, got in zip(batches, held):  # a later replay overwrote none of the held batches
        want = eager(b)
        assert got.keys() == want.keys()
        for key, value in want.items():
            if isinstance(value, torch.Tensor):
                assert torch.equal(got[key], value), key
    graphs.check()
    bad = dict(batches[1], window=batches[1]["window"].clone())
    bad["window"][0, 5] = 60_000  # (still uint16: the captured shape's replay)
    graphs(bad)
    with pytest.raises(ngramds.FormatError, match="batch 9 on cuda.*outside 0..399"):
        graphs.check()


@pytest.mark.parametrize("compact,options", [(False, {}), (True, {}),
                                             (False, {"layout": "hf", "alpha_count": 4.0})])
def test_compiled_ops_equal_the_kernels(tmp_path, device, compact, options):
    """compile=True: the torch ops of a batch shape fused by torch.compile give the compiled
    kernels' targets bit for bit (the HF layout and soft-term weights too); its checks are
    deferred (reported at check())."""
    tokens = (np.random.default_rng(11).zipf(1.3, 20_000) % 300).astype(np.uint16)
    ngramds.build(tokens, tmp_path / "c.ngds", progress=False, compact=compact,
                  doc_lengths=[7_000, 13_000])
    ds = NgramDataset(tmp_path / "c.ngds", 48, seed=4, batched=True, targets_on="device",
                      **options)
    batches = [b for _, b in zip(range(3), NgramLoader(ds, batch_size=3))]
    reference = NgramTargets(ds)  # the compiled CPU kernels
    fused = NgramTargets(ds, backend="torch", device=device, compile=True)
    for b in batches:
        want, got = reference(b), fused(b)
        for key, value in want.items():
            if isinstance(value, torch.Tensor):
                assert torch.equal(got[key].cpu(), value), key
    fused.check()
    bad = dict(batches[0], window=batches[0]["window"].clone())
    bad["window"][1, 2] = 60_000
    fused(bad)  # deferred, also on the CPU
    with pytest.raises(ngramds.FormatError, match="batch 4 on .*outside 0..299"):
        fused.check()
    with pytest.raises(ngramds.InputError, match="compile=True"):
        NgramTargets(ds, backend="compiled", compile=True)


def test_graph_dispatch_on_the_cpu(tmp_path, monkeypatch):
    """The choice between eager calls and captured graphs (the graphs themselves need CUDA):
    a shape's second call captures, later ones replay, at most 4 shapes are captured, and a
    capture that fails warns once and leaves every later call eager."""
    import ngramds.torch.device as device_module

    captured = []

    class Replay:  # stands in for the CUDA graph: recomputes into fixed outputs
        def __init__(self, targets, inputs, B, L, shift):
            self.targets, self.args = targets, (B, L, shift)
            self.outputs = targets._compute(inputs, B, L, shift)
            self.word, targets._word = targets._word, None
            captured.append((B, L))

        def replay(self, inputs):
            out = self.targets._compute(inputs, *self.args)
            for k, v in out.items():
                self.outputs[k].copy_(v)
            return {k: v.clone() for k, v in self.outputs.items()}

    monkeypatch.setattr(device_module, "_Graph", Replay)
    ngramds.build(np.arange(3000) % 17, tmp_path / "g.ngds", progress=False)
    ds = NgramDataset(tmp_path / "g.ngds", 16, seed=1, batched=True, targets_on="device")
    reference = NgramTargets(ds)
    targets = NgramTargets(ds, backend="torch")
    targets._graphs = {}  # (as on CUDA)
    batches = {bs: [b for _, b in zip(range(3), NgramLoader(ds, batch_size=bs))]
               for bs in (1, 2, 3, 4, 5)}
    held = [targets(b) for b in batches[2]]
    assert captured == [(2, 16)]  # the second call captured, the third replayed
    for b, got in zip(batches[2], held):  # copies: no later call changed a held batch
        assert torch.equal(got["target_ids"], reference(b)["target_ids"])
    for bs in (1, 3, 4, 5):
        for b in batches[bs][:2]:
            targets(b)
    assert captured == [(2, 16), (1, 16), (3, 16), (4, 16)]  # 4 shapes, then eager
    assert torch.equal(targets(batches[5][2])["target_ids"],
                       reference(batches[5][2])["target_ids"])

    def refused(*args):
        raise RuntimeError("operation not permitted when stream is capturing\nmore")

    monkeypatch.setattr(device_module, "_Graph", refused)
    other = NgramTargets(ds, backend="torch")
    other._graphs = {}
    other(batches[2][0])
    with pytest.warns(RuntimeWarning, match="could not be captured .operation not permitted"):
        out = other(batches[2][1])
    assert other._graphs is None
    assert torch.equal(out["target_ids"], reference(batches[2][1])["target_ids"])

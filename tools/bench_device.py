"""Device-targets benchmark (issue 14): what a DataLoader worker hands over per position, loader
throughput against a plain memmap token loader of the same script, device targets on this
machine's CPU (and a GPU when present), the compiled CPU mixture path per thread, the file's
bytes per token, and the step time of a small GPT with device targets vs plain cross-entropy.
Default configuration (AllNTs up to 64 entries since 0.7; CoCoNTs r = 8 before), orders 2-4,
Witten-Bell, seq_len 1024, batch 16. Prints markdown.

    ngramds build --default-corpus -o out/stdlib.ngds     # once (tokeniser trained offline)
    python tools/bench_device.py out/stdlib.ngds [--batches 20] [--device cuda]
    ngramds build --default-corpus -o out/stdlib.compact.ngds --compact   # the compact file
    python tools/bench_device.py out/stdlib.compact.ngds

With ``--device cuda``: the device targets on the GPU at seq 1024, batch 16 and 64 (from
pinned host batches and from batches already there), the tables' GPU memory per token, and
the step of a 92M-parameter GPT (``--model``) with device targets against plain
cross-entropy, alone and fed by the loader (tools/gpu_check.py runs these).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

sys.path.insert(0, str(Path(__file__).parent))
import ngramds  # noqa: E402
from ngramds.targets import Targets  # noqa: E402
from bench_load import TinyGPT  # noqa: E402
from ngramds.torch import NgramDataset, NgramLoader, NgramTargets, ngram_loss  # noqa: E402

SEQ, BATCH = 1024, 16


class PlainWindows(IterableDataset):
    """nanoGPT-style: random windows of a token memmap, no targets (batched, per worker)."""

    def __init__(self, path, seq: int = SEQ, batch: int = BATCH):
        self.path, self.seq, self.batch = path, seq, batch

    def __iter__(self):
        f = ngramds.open(self.path)
        info = get_worker_info()
        rng = np.random.default_rng(info.id if info else 0)
        seq = self.seq
        while True:
            ix = rng.integers(0, f.num_tokens - seq - 1, self.batch)
            w = np.stack([f.tokens[i:i + seq + 1] for i in ix]).astype(np.int64)
            yield {"input_ids": torch.from_numpy(w[:, :-1]), "labels": torch.from_numpy(w[:, 1:])}


class Block(torch.nn.Module):
    """A pre-LayerNorm transformer block: causal attention by SDPA (flash attention on CUDA),
    GELU MLP of 4 d."""

    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = torch.nn.LayerNorm(d), torch.nn.LayerNorm(d)
        self.qkv, self.proj = torch.nn.Linear(d, 3 * d), torch.nn.Linear(d, d)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(d, 4 * d), torch.nn.GELU(),
                                       torch.nn.Linear(4 * d, d))

    def forward(self, x):
        B, T, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(B, T, 3, self.heads, d // self.heads).unbind(2)
        a = torch.nn.functional.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)
        x = x + self.proj(a.transpose(1, 2).reshape(B, T, d))
        return x + self.mlp(self.ln2(x))


class GPT(torch.nn.Module):
    """nanoGPT-like decoder (token and learned position embeddings, pre-LN blocks, tied
    output head): ``GPT(8192, **GPT_SIZES["gpt2"])`` has 92M parameters (85M outside the
    embeddings), GPT-2 small's shape."""

    def __init__(self, vocab: int, d: int = 768, layers: int = 12, heads: int = 12,
                 seq_len: int = SEQ):
        super().__init__()
        self.emb = torch.nn.Embedding(vocab, d)
        self.pos = torch.nn.Embedding(seq_len, d)
        self.blocks = torch.nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln = torch.nn.LayerNorm(d)
        self.head = torch.nn.Linear(d, vocab, bias=False)
        self.head.weight = self.emb.weight
        for name, p in self.named_parameters():
            if p.dim() == 2:
                torch.nn.init.normal_(p, std=0.02 / (2 * layers) ** 0.5 if name.endswith(
                    "proj.weight") or name.endswith("mlp.2.weight") else 0.02)
            elif name.endswith("bias"):
                torch.nn.init.zeros_(p)

    def forward(self, x):
        h = self.emb(x) + self.pos(torch.arange(x.shape[1], device=x.device))
        for block in self.blocks:
            h = block(h)
        return self.head(self.ln(h))


GPT_SIZES = {"toy": dict(d=64, layers=2, heads=2), "gpt2": dict(d=768, layers=12, heads=12)}


def sync(device) -> None:
    """Wait for ``device`` (a no-op on the CPU)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def device_targets_rows(path, device, batch_sizes=(16, 64), seq=SEQ, batches=8,
                        fused: bool = False, **options) -> list[dict]:
    """Positions/s of ``NgramTargets`` on ``device`` (the default configuration, or target
    ``options``), per batch size: the batches as the loader hands them over (pinned host
    memory on CUDA, copied by the call), already on the device, and the same without CUDA
    graphs (and, with ``fused``, at the first batch size, with ``compile=True``: its first
    call's seconds too); the tables' bytes and bytes per file token."""
    rows = []
    cuda = torch.device(device).type == "cuda"
    for bs in batch_sizes:
        ds = NgramDataset(path, seq, batched=True, targets_on="device", **options)
        it = iter(NgramLoader(ds, batch_size=bs, pin_memory=cuda))
        held = [next(it) for _ in range(batches)]
        del it
        targets = NgramTargets(ds, device=device)
        eager = NgramTargets(ds, device=device, cuda_graphs=False)
        for _ in range(2):  # (first calls: kernels, caches, the CUDA graph)
            targets(held[0]), eager(held[0])
        count = batches * bs * seq
        on_device = [{k: v.to(device) for k, v in b.items()} for b in held]
        rows.append({"batch": bs, "seq": seq, "backend": targets.backend,
                     "positions_per_s_from_host": throughput(each(targets, held), count,
                                                             str(device)),
                     "positions_per_s_on_device": throughput(each(targets, on_device), count,
                                                             str(device)),
                     "positions_per_s_no_graph": throughput(each(eager, on_device), count,
                                                            str(device)),
                     "table_bytes": targets.nbytes,
                     "table_bytes_per_token": targets.nbytes / ds.file.num_tokens})
        targets.check(), eager.check()
        if fused and bs == batch_sizes[0]:  # (one shape: each compiles anew)
            rows[-1].update(_fused_rate(ds, device, held, on_device, count, eager))
    return rows


def _fused_rate(ds, device, held, on_device, count, reference) -> dict:
    """``NgramTargets(..., compile=True)``: seconds of its first two calls (compiling, then
    capturing the CUDA graph), whether its targets equal ``reference``'s (an NgramTargets
    without compile or graphs) for every batch, and positions/s on the device (or why it
    failed)."""
    try:
        t0 = time.perf_counter()
        fused = NgramTargets(ds, device=device, compile=True, backend="torch")
        for _ in range(2):
            fused(held[0])
        sync(device)
        first = time.perf_counter() - t0
        equal = all(torch.equal(a[k], b[k]) for a, b in
                    ((fused(x), reference(x)) for x in on_device)
                    for k in ("target_ids", "target_probs"))
        rate_ = throughput(each(fused, on_device), count, str(device))
        fused.check(), reference.check()
        return {"compile_s": round(first, 1), "compiled_equal": equal,
                "positions_per_s_compiled": rate_}
    except Exception as e:  # (reported, not fatal: the option is new)
        return {"compiled_error": f"{type(e).__name__}: {str(e)[:300]}"}


def _loss_step(model, opt, batch, targets, amp):
    """One optimiser step: plain cross-entropy when ``targets`` is None (on the window's
    labels), else ngram_loss with the batch's targets (computed by ``targets``, an
    NgramTargets, for a device-mode batch)."""
    if targets is None:
        w = batch["window"].to(model.head.weight.device, non_blocking=True).long() \
            if "window" in batch else None
        x, y = (w[:, :-1], w[:, 1:]) if w is not None else \
            (batch["input_ids"].to(model.head.weight.device, non_blocking=True),
             batch["labels"].to(model.head.weight.device, non_blocking=True))
        with amp():
            logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), y.flatten())
    else:
        b = targets(batch) if "window" in batch else \
            {k: v.to(model.head.weight.device, non_blocking=True) for k, v in batch.items()}
        with amp():
            logits = model(b["input_ids"])
        loss = ngram_loss(logits, b)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss


def autocast_for(device, dtype=torch.bfloat16):
    """A callable returning the autocast context of ``device`` (bf16)."""
    kind = torch.device(device).type
    return lambda: torch.autocast(kind, dtype=dtype)


def model_step_rows(path, device, size="gpt2", batch=16, seq=SEQ, steps=12, workers=4,
                    warmup=3) -> dict:
    """The step of a GPT (``GPT_SIZES[size]``, bf16 autocast) on ``device``:

    - ``isolated``: median step time with the batches already in memory (loading excluded),
      plain cross-entropy against device targets + ngram_loss (the targets included),
      interleaved, and their ratio (goal <= 1.03x);
    - ``fed``: steps/s with the loader feeding the step (``workers`` workers, pinned memory):
      a plain memmap token loader + cross-entropy, NgramLoader with the targets in the
      workers + ngram_loss, NgramLoader with device targets + ngram_loss.
    """
    cuda = torch.device(device).type == "cuda"
    f = ngramds.open(path)
    torch.manual_seed(0)
    model = GPT(f.vocab_size, seq_len=seq, **GPT_SIZES[size]).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=cuda)
    amp = autocast_for(device)
    ds = NgramDataset(path, seq, batched=True, targets_on="device")
    targets = NgramTargets(ds, device=device)
    eager = NgramTargets(ds, device=device, cuda_graphs=False)
    it = forever(NgramLoader(ds, batch_size=batch, num_workers=min(workers, 2),
                             pin_memory=cuda))
    held = [next(it) for _ in range(steps + warmup)]
    del it  # (its workers stop)
    given = [targets(raw) for raw in held]  # (for the loss alone)
    # the step's kinds, interleaved: what each step computes besides the model
    kinds = {"plain cross-entropy": None, "device targets + ngram_loss": targets,
             "device targets (no CUDA graph) + ngram_loss": eager,
             "ngram_loss, targets computed before": "given"}
    times = {k: [] for k in kinds}
    for i in range(len(kinds) * len(held)):
        kind, j = list(kinds)[i % len(kinds)], i // len(kinds)
        raw = given[j] if kinds[kind] == "given" else held[j]
        sync(device)
        t0 = time.perf_counter()
        _loss_step(model, opt, raw, kinds[kind], amp)
        sync(device)
        if j >= warmup:
            times[kind].append(time.perf_counter() - t0)
    iso = {k: statistics.median(v) for k, v in times.items()}
    iso["ratio"] = iso["device targets + ngram_loss"] / iso["plain cross-entropy"]
    iso["ratio_loss_alone"] = iso["ngram_loss, targets computed before"] / \
        iso["plain cross-entropy"]
    fed = {}
    feeds = {
        "plain memmap loader + cross-entropy": (lambda: iter(DataLoader(
            PlainWindows(path, seq, batch), batch_size=None, num_workers=workers,
            pin_memory=cuda)), None),
        "NgramLoader, targets in the workers + ngram_loss": (lambda: forever(NgramLoader(
            NgramDataset(path, seq, batched=True), batch_size=batch, num_workers=workers,
            pin_memory=cuda)), "loader"),
        "NgramLoader, device targets + ngram_loss": (lambda: forever(NgramLoader(
            NgramDataset(path, seq, batched=True, targets_on="device"), batch_size=batch,
            num_workers=workers, pin_memory=cuda)), targets),
    }
    for name, (make, how) in feeds.items():
        loader_it = make()
        for _ in range(warmup):
            _loss_step(model, opt, next(loader_it), how, amp)
        sync(device)
        t0 = time.perf_counter()
        for _ in range(steps):
            _loss_step(model, opt, next(loader_it), how, amp)
        sync(device)
        fed[name] = steps / (time.perf_counter() - t0)
        del loader_it
    targets.check(), eager.check()
    return {"model": size, "parameters": sum(p.numel() for p in model.parameters()),
            "batch": batch, "seq": seq, "isolated_s_per_step": iso, "fed_steps_per_s": fed}


def positions(batch) -> int:
    return batch["index"].numel() * SEQ if "index" in batch else batch["labels"].numel()


def handed_bytes(batch) -> float:
    """Bytes of the batch's tensors per label position."""
    return sum(v.numel() * v.element_size() for v in batch.values()) / positions(batch)


def rate(make_iter, batches: int, windows: int = 3, warmup: int = 2) -> tuple[float, float]:
    """(median positions/s over ``windows`` windows of ``batches`` batches, bytes/position)."""
    it = make_iter()
    for _ in range(warmup):
        batch = next(it)
    rates = []
    for _ in range(windows):
        t0, n = time.perf_counter(), 0
        for _ in range(batches):
            batch = next(it)
            n += positions(batch)
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates), handed_bytes(batch)


def forever(loader):
    while True:
        yield from loader


def loader_rows(path, batches):
    rows = []
    for workers in (1, 2):
        plain = rate(lambda: iter(DataLoader(PlainWindows(path), batch_size=None,
                                             num_workers=workers)), batches)
        rows.append(("plain memmap token loader", workers, *plain, plain[0]))
        for where in ("loader", "device"):
            ds = NgramDataset(path, SEQ, batched=True, targets_on=where)
            got = rate(lambda: forever(NgramLoader(ds, batch_size=BATCH, num_workers=workers)),
                       batches)
            rows.append((f"ngramds, targets on the {where}", workers, *got, plain[0]))
        # no GPU: the device path with its targets computed on this CPU, in this process
        targets = NgramTargets(ds)
        got = rate(lambda: map(targets, forever(NgramLoader(ds, batch_size=BATCH,
                                                             num_workers=workers))), batches)
        rows.append(("ngramds, targets on the device = this CPU (`NgramTargets(ds)` in the "
                     "training process, compiled)", workers, got[0], rows[-1][3], plain[0]))
    return rows


def throughput(work, positions: int, dev: str = "cpu", repeats: int = 3) -> float:
    """Median positions/s of ``work()`` (which handles ``positions``) over ``repeats`` runs,
    synchronised with the device when it is not the CPU."""
    rates = []
    for _ in range(repeats):
        if dev != "cpu":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        work()
        if dev != "cpu":
            torch.cuda.synchronize()
        rates.append(positions / (time.perf_counter() - t0))
    return statistics.median(rates)


def each(fn, items):
    """A callable running ``fn`` on every item, keeping no result (for :func:`throughput`)."""
    def run():
        for x in items:
            fn(x)
    return run


def compute_rows(path, batches, device):
    """Positions/s of the targets alone: device targets on this CPU (all threads) or GPU, and
    the compiled CPU mixture kernels on 1 thread."""
    ds = NgramDataset(path, SEQ, batched=True, targets_on="device")
    it = iter(NgramLoader(ds, batch_size=BATCH))
    held = [next(it) for _ in range(batches)]
    count = len(held) * BATCH * SEQ
    rows = []
    runs = [("cpu", "compiled", False), ("cpu", "torch", False), ("cpu", "torch", True)] + \
        ([(device, "torch", False)] if device != "cpu" else [])
    for dev, backend, fused in runs:
        targets = NgramTargets(ds, device=dev, backend=backend, compile=fused)
        moved = [{k: v.to(dev) for k, v in b.items()} for b in held]
        targets(moved[0])  # (compiled once)
        how = f"backend {backend!r}" + (", compile=True" if fused else "")
        rows.append((f"device targets (NgramTargets, {how}) on {dev}, "
                     f"{torch.get_num_threads()} threads" if dev == "cpu" else
                     f"device targets on {dev}", throughput(each(targets, moved), count, dev),
                     targets.nbytes))
        if "context_lengths" in held[0]:  # a compact file: the search of those targets alone
            search = each(lambda b: targets.contexts(b["window"].long(), b["history"].long(),
                                                     b["context_lengths"].long()), moved)
            rows.append((f"  of which the context search (packed keys, searchsorted) on {dev}",
                         throughput(search, count, dev), targets.keys.numel() * 8))
    cpu = Targets(ds.file, ds.config)
    starts = [b["start"].numpy() for b in held]
    rows.append(("compiled CPU mixture kernels, 1 thread",
                 throughput(each(lambda s: cpu.compute(s, SEQ, 0, 0, threads=1), starts),
                            count), 0))
    return rows


def lookup_rows(path, batches):
    """The format choice of issue 14, on 1 thread: highest-order context ids read from the file
    (format 2) against found from the tokens. A file with ids also times a numpy binary search
    over (first token, lower link) keys (full-length contexts of orders 2-4; positions next to
    a document start, about 0.04% here, are left out); a compact file times the compiled search
    its loader runs (``contexts_at``: each window walked by ``prefix_offsets``)."""
    f = ngramds.open(path)
    top = f.table()
    starts = np.random.default_rng(0).integers(8, f.num_tokens - SEQ - 1, BATCH * batches)
    pos = (starts[:, None] + np.arange(1, SEQ + 1)).reshape(-1)
    size = max(s.offset + s.length for s in f.sections.values())
    jobs = []
    if top.position_contexts is None:
        how = "prefix_offsets" if top.prefix_offsets is not None else "binary search"
        f.contexts_at(pos[:SEQ])  # compiled once
        jobs.append((f"searched on the CPU (compact file, loader targets: compiled, {how})",
                     lambda: f.contexts_at(pos), size))
        if top.prefix_offsets is not None:  # the baseline: a reader that ignores the section
            def each():
                from ngramds.file.reader import find_contexts
                out, none = np.empty(pos.size, np.int64), np.zeros(0, np.uint8)
                find_contexts(f.tokens, f.doc_offsets, top.context_tokens,
                              top.context_length_offsets, *top.first_tokens, none, none, pos,
                              out)
            jobs.append(("searched position by position (compiled, ignoring prefix_offsets)",
                         each, size))
    else:
        stored = top.position_contexts
        jobs.append(("read from the file (format 2)", lambda: stored[pos].astype(np.int64),
                     size))
    if f.orders == [2, 3, 4] and top.position_contexts is not None:
        tables, tok = {n: f.table(n) for n in f.orders}, np.asarray(f.tokens, np.int64)
        clo = tables[2].context_length_offsets.astype(np.int64)
        dense = np.full(f.vocab_size, -1, np.int64)
        dense[tables[2].context_tokens[clo[1]:clo[2], 0].astype(np.int64)] = \
            np.arange(clo[1], clo[2])
        keys = {}
        for n in (3, 4):
            t = tables[n]
            lo, hi = (int(x) for x in t.context_length_offsets[n - 1:n + 1])
            keys[n] = (t.context_tokens[lo:hi, 0].astype(np.int64) * tables[n - 1].num_contexts
                       + t.lower_contexts[lo:hi].astype(np.int64), lo)

        def search():
            c = dense[tok[pos - 1]]
            for n in (3, 4):
                c = np.searchsorted(keys[n][0], tok[pos - n + 1] * tables[n - 1].num_contexts
                                    + c) + keys[n][1]
            return c

        jobs.append(("searched from the tokens by numpy (no per-position ids)", search,
                     sum(s.length for n, s in f.sections.items()
                         if n != "order4/position_contexts")))
    return [(name, throughput(fn, pos.size, repeats=5), nbytes / f.num_tokens)
            for name, fn, nbytes in jobs]


def step_rows(path, steps=6, batch=4):
    """Median step time of the README loop: device targets + ngram_loss vs cross-entropy on
    the same batches (loading excluded, the targets included)."""
    ds = NgramDataset(path, SEQ, batched=True, targets_on="device")
    targets = NgramTargets(ds)
    it = forever(NgramLoader(ds, batch_size=batch, num_workers=1))
    model = TinyGPT(ds.file.vocab_size, seq_len=SEQ)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    times = {"plain cross-entropy": [], "device targets + ngram_loss": []}
    for i in range(2 * steps + 2):
        raw = next(it)
        kind = list(times)[i % 2]
        t0 = time.perf_counter()
        if kind == "plain cross-entropy":
            w = raw["window"].long()
            logits = model(w[:, :-1])
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), w[:, 1:].flatten())
        else:
            b = targets(raw)
            logits = model(b["input_ids"])
            loss = ngram_loss(logits, b)
        loss.backward()
        opt.step()
        opt.zero_grad()
        if i >= 2:
            times[kind].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("file")
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--model", default="gpt2", choices=sorted(GPT_SIZES),
                   help="the GPT of the step rows on a GPU (default: gpt2, 92M parameters)")
    a = p.parse_args()
    f = ngramds.open(a.file)
    print(f"file {a.file}: {f.num_tokens:,} tokens, orders {f.orders}; torch threads "
          f"{torch.get_num_threads()}, {os.cpu_count()} cores\n")
    size = max(s.offset + s.length for s in f.sections.values())
    print(f"file size: {size / f.num_tokens:.2f} bytes per token\n")
    print("| loader | workers | M positions/s | bytes handed over per position | vs plain |")
    print("|---|---:|---:|---:|---:|")
    for name, w, r, b, plain in loader_rows(a.file, a.batches):
        print(f"| {name} | {w} | {r / 1e6:.2f} | {b:.1f} | {r / plain:.2f}x |")
    print("\n| targets alone | M positions/s | table bytes on the device |")
    print("|---|---:|---:|")
    for name, r, nbytes in compute_rows(a.file, a.batches, a.device):
        print(f"| {name} | {r / 1e6:.2f} | {nbytes / 2**20:.1f} MiB |" if nbytes else
              f"| {name} | {r / 1e6:.2f} | - |")
    rows = lookup_rows(a.file, a.batches)
    if rows:
        print("\n| highest-order context ids (1 thread) | M positions/s | file bytes per token |")
        print("|---|---:|---:|")
        for name, r, size in rows:
            print(f"| {name} | {r / 1e6:.1f} | {size:.2f} |")
    if a.device != "cpu":
        print(f"\n| device targets on {a.device} (seq {SEQ}) | batch | M positions/s from "
              "pinned host batches | M positions/s, batches on the device | the same, no "
              "CUDA graph | table MiB | table bytes per file token |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for r in device_targets_rows(a.file, a.device, seq=SEQ):
            print(f"| NgramTargets ({r['backend']}) | {r['batch']} | "
                  f"{r['positions_per_s_from_host'] / 1e6:.1f} | "
                  f"{r['positions_per_s_on_device'] / 1e6:.1f} | "
                  f"{r['positions_per_s_no_graph'] / 1e6:.1f} | "
                  f"{r['table_bytes'] / 2**20:.1f} | {r['table_bytes_per_token']:.2f} |")
        r = model_step_rows(a.file, a.device, a.model)
        iso = r["isolated_s_per_step"]
        print(f"\n| step of a {r['parameters'] / 1e6:.0f}M GPT on {a.device} (bf16, batch "
              f"{r['batch']} x {r['seq']}) | median s | ratio |")
        print("|---|---:|---:|")
        for k in [k for k in iso if not k.startswith("ratio")]:
            print(f"| {k} | {iso[k]:.4f} | {iso[k] / iso['plain cross-entropy']:.3f}x |")
        print("\n| the loader feeding the step | steps/s |\n|---|---:|")
        for k, v in r["fed_steps_per_s"].items():
            print(f"| {k} | {v:.2f} |")
        return
    steps = step_rows(a.file)
    base = steps["plain cross-entropy"]
    print("\n| step of a small GPT (CPU, batch 4 x 1024) | median s | ratio |")
    print("|---|---:|---:|")
    for k, v in steps.items():
        print(f"| {k} | {v:.3f} | {v / base:.3f}x |")


if __name__ == "__main__":
    main()

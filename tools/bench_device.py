"""Device-targets benchmark (issue 14): what a DataLoader worker hands over per position, loader
throughput against a plain memmap token loader of the same script, device targets on this
machine's CPU (and a GPU when present), the compiled CPU mixture path per thread, the file's
bytes per token, and the step time of a small GPT with device targets vs plain cross-entropy.
Default configuration: orders 2-4, Witten-Bell, r = 8, seq_len 1024, batch 16. Prints markdown.

    ngramds build --default-corpus -o out/stdlib.ngds     # once (tokeniser trained offline)
    python tools/bench_device.py out/stdlib.ngds [--batches 20] [--device cuda]
    ngramds build --default-corpus -o out/stdlib.compact.ngds --compact   # the compact file
    python tools/bench_device.py out/stdlib.compact.ngds
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

    def __init__(self, path):
        self.path = path

    def __iter__(self):
        f = ngramds.open(self.path)
        info = get_worker_info()
        rng = np.random.default_rng(info.id if info else 0)
        while True:
            ix = rng.integers(0, f.num_tokens - SEQ - 1, BATCH)
            w = np.stack([f.tokens[i:i + SEQ + 1] for i in ix]).astype(np.int64)
            yield {"input_ids": torch.from_numpy(w[:, :-1]), "labels": torch.from_numpy(w[:, 1:])}


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
    runs = [("cpu", "compiled"), ("cpu", "torch")] + ([(device, "torch")] if device != "cpu"
                                                       else [])
    for dev, backend in runs:
        targets = NgramTargets(ds, device=dev, backend=backend)
        moved = [{k: v.to(dev) for k, v in b.items()} for b in held]
        targets(moved[0])  # (compiled once)
        rows.append((f"device targets (NgramTargets, backend {backend!r}) on {dev}, "
                     f"{torch.get_num_threads()} threads" if dev == "cpu" else
                     f"device targets on {dev}", throughput(each(targets, moved), count, dev),
                     targets.nbytes))
        if "context_lengths" in held[0]:  # a compact file: the search of those targets alone
            search = each(lambda b: targets.contexts(b["window"].long(), b["history"].long(),
                                                     b["context_lengths"].long()), moved)
            rows.append((f"  of which the context search (packed keys, searchsorted) on {dev}",
                         throughput(search, count, dev), targets.keys.numel() * 8))
    cpu = Targets(ds._file, ds.config)
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
    model = TinyGPT(ds._file.vocab_size, seq_len=SEQ)
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
    steps = step_rows(a.file)
    base = steps["plain cross-entropy"]
    print("\n| step of a small GPT (CPU, batch 4 x 1024) | median s | ratio |")
    print("|---|---:|---:|")
    for k, v in steps.items():
        print(f"| {k} | {v:.3f} | {v / base:.3f}x |")


if __name__ == "__main__":
    main()

"""Loader benchmark: target positions per second of NgramDataset against a plain token loader
and against querying a suffix-array index (tokengrams) at training time; the cost of targets
mixed from several orders (backoff, Witten-Bell, fixed); plus the step time of a small GPT with
ngram_loss vs plain cross-entropy. Prints markdown tables.

    python tools/bench_load.py [--min-tokens 10000000] [--batches 40] [--only mixing]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

sys.path.insert(0, str(Path(__file__).parent))
import ngramds  # noqa: E402
from bench_corpus import load_bench_corpus  # noqa: E402
from ngramds.torch import NgramDataset, ngram_loss  # noqa: E402


class PlainWindows(IterableDataset):
    """nanoGPT-style: random windows of a token memmap, no targets (batched, per worker)."""

    def __init__(self, path, seq_len, batch_size, seed=0):
        self.path, self.seq_len, self.batch_size, self.seed = path, seq_len, batch_size, seed

    def __iter__(self):
        f = ngramds.open(self.path)
        info = get_worker_info()
        rng = np.random.default_rng([self.seed, info.id if info else 0])
        tokens, L = f.tokens, self.seq_len
        while True:
            ix = rng.integers(0, f.num_tokens - L - 1, self.batch_size)
            x = torch.stack([torch.from_numpy(tokens[i:i + L].astype(np.int64)) for i in ix])
            y = torch.stack([torch.from_numpy(tokens[i + 1:i + 1 + L].astype(np.int64))
                             for i in ix])
            yield {"input_ids": x, "labels": y}


def rate(loader, batches: int, warmup: int = 3, windows: int = 3) -> float:
    """Label positions per second: the median of ``windows`` consecutive windows of
    ``batches`` batches each, after ``warmup`` batches."""
    it = iter(loader)
    for _ in range(warmup):
        next(it)
    rates = []
    for _ in range(windows):
        t0, positions = time.perf_counter(), 0
        for _ in range(batches):
            positions += next(it)["labels"].numel()
        rates.append(positions / (time.perf_counter() - t0))
    return statistics.median(rates)


def loader_rows(path, seq_len, batches, batch_size=16):
    rows = []
    for workers in (0, 1, 2):
        plain = rate(DataLoader(PlainWindows(path, seq_len, batch_size), batch_size=None,
                                num_workers=workers), batches)
        rows.append(("plain memmap windows, no targets", seq_len, workers, plain, plain))
        for batched in (False, True):
            ds = NgramDataset(path, seq_len, targets="coconts", top_r=8, batched=batched,
                              batch_size=batch_size)
            loader = DataLoader(ds, batch_size=None if batched else batch_size,
                                num_workers=workers)
            mode = "batched" if batched else "per-sample"
            rows.append((f"ngramds coconts r=8, {mode}", seq_len, workers,
                         rate(loader, batches), plain))
    return rows


def mixing_rows(corpus, min_tokens, batches, seq_len=1024, batch_size=16):
    """In-process batched CoCoNTs r=8 from one order vs mixtures of orders 1..4."""
    path = Path("out/bench") / f"load-{min_tokens}-o1-4.ngds"
    if not path.exists():
        ngramds.build(corpus, path, orders=[1, 2, 3, 4], progress=False)
    rows = []
    for mixing, orders in (("none", [4]), ("backoff", [1, 2, 3, 4]),
                           ("witten-bell", [1, 2, 3, 4]), ("witten-bell", [2, 3, 4]),
                           ("fixed", [1, 2, 3, 4])):
        ds = NgramDataset(path, seq_len, targets="coconts", top_r=8, batched=True,
                          batch_size=batch_size, mixing=mixing, orders=orders,
                          lambdas=[0.1, 0.2, 0.3, 0.4] if mixing == "fixed" else None)
        slots = next(iter(ds))["target_ids"].shape[-1]
        name = f"{mixing}, orders {','.join(map(str, orders))}"
        rows.append((name, slots, rate(DataLoader(ds, batch_size=None), batches)))
    return rows


def tokengrams_rate(corpus_tokens, vocab, order, positions=2000):
    """AllNTs at training time: one suffix-array count_next query per position."""
    import tokengrams
    index = tokengrams.InMemoryIndex(corpus_tokens.tolist(), vocab, False)
    rng = np.random.default_rng(0)
    ps = rng.integers(order, corpus_tokens.size, positions)
    contexts = [corpus_tokens[p - order + 1:p].tolist() for p in ps]
    t0 = time.perf_counter()
    for c in contexts:
        counts = np.asarray(index.count_next(c), np.float64)
        _ = counts / max(counts.sum(), 1)
    return positions / (time.perf_counter() - t0)


class TinyGPT(torch.nn.Module):
    def __init__(self, vocab, d=128, layers=2, heads=4, seq_len=128):
        super().__init__()
        self.emb = torch.nn.Embedding(vocab, d)
        self.pos = torch.nn.Parameter(torch.zeros(seq_len, d))
        layer = torch.nn.TransformerEncoderLayer(d, heads, 4 * d, 0.0, batch_first=True,
                                                 norm_first=True)
        self.blocks = torch.nn.TransformerEncoder(layer, layers)
        self.head = torch.nn.Linear(d, vocab, bias=False)
        self.register_buffer("causal", torch.nn.Transformer.generate_square_subsequent_mask(
            seq_len), persistent=False)

    def forward(self, x):
        h = self.emb(x) + self.pos[:x.shape[1]]
        return self.head(self.blocks(h, mask=self.causal, is_causal=True))


def step_times(vocab, seq_len=128, batch=8, steps=24, k=9):
    torch.manual_seed(0)
    model = TinyGPT(vocab, seq_len=seq_len)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randint(0, vocab, (batch, seq_len))
    batch_d = {"labels": torch.randint(0, vocab, (batch, seq_len)),
               "target_ids": torch.randint(0, vocab, (batch, seq_len, k)),
               "target_probs": torch.full((batch, seq_len, k), 1.0 / k)}
    losses = {"cross_entropy": lambda z: F.cross_entropy(z.view(-1, vocab),
                                                          batch_d["labels"].view(-1)),
              "ngram_loss": lambda z: ngram_loss(z, batch_d, alpha=0.5)}
    times = {name: [] for name in losses}
    for _ in range(steps):  # interleave the two so drift hits both alike
        for name, fn in losses.items():
            t0 = time.perf_counter()
            loss = fn(model(x))
            loss.backward()
            opt.step()
            opt.zero_grad()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts[2:]) for name, ts in times.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--min-tokens", type=int, default=10_000_000)
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--order", type=int, default=4)
    ap.add_argument("--only", choices=["mixing"], help="run only the mixing table")
    a = ap.parse_args()
    torch.set_num_threads(2)
    corpus = load_bench_corpus(a.min_tokens)
    path = Path("out/bench") / f"load-{a.min_tokens}-o{a.order}.ngds"
    if not path.exists():
        ngramds.build(corpus, path, order=a.order, progress=False)
    f = ngramds.open(path)
    print(f"\ncorpus: {f.num_tokens:,} tokens, order {f.order}, vocab {f.vocab_size}, "
          f"file {path}\ncommand: python tools/bench_load.py --min-tokens {a.min_tokens} "
          f"--batches {a.batches}\n")
    print("| mixing (coconts r=8, batched, in-process) | slots K | M target positions/s | "
          "vs one order |")
    print("|---|---:|---:|---:|")
    mixed = mixing_rows(corpus, a.min_tokens, a.batches)
    for mixing, slots, r in mixed:
        print(f"| {mixing} | {slots} | {r / 1e6:.2f} | {r / mixed[0][2]:.2f}x |")
    if a.only == "mixing":
        t = step_times(16384, k=36)
        print(f"\nstep time, vocab 16384, 36 soft slots: ngram_loss / cross-entropy = "
              f"{t['ngram_loss'] / t['cross_entropy']:.3f}")
        return
    print()
    print("| loader | seq_len | workers (0: in-process) | M target positions/s | per worker "
          "| vs plain |")
    print("|---|---:|---:|---:|---:|---:|")
    best = 0.0
    for seq_len in (1024, 128):
        for name, L, w, r, plain in loader_rows(path, seq_len, a.batches):
            per_worker = r / max(w, 1)  # workers 0: the training process loads
            best = max(best, per_worker) if "ngramds" in name else best
            print(f"| {name} | {L} | {w} | {r / 1e6:.2f} | {per_worker / 1e6:.2f} | "
                  f"{r / plain:.2f}x |")
    tg = tokengrams_rate(np.asarray(f.tokens), f.vocab_size, f.order)
    print(f"| tokengrams count_next per position (AllNTs at train time) | - | 1 (main) | "
          f"{tg / 1e6:.5f} | {tg / 1e6:.5f} | - |")
    print(f"\nngramds (best per worker) / tokengrams: {best / tg:,.0f}x (target >= 1000x)")
    print("\n| vocab | soft slots | cross-entropy step s | ngram_loss step s | ratio (target "
          "<= 1.10) |")
    print("|---:|---:|---:|---:|---:|")
    for vocab, k in ((16384, 9), (50257, 9), (16384, 36)):
        t = step_times(vocab, k=k)
        print(f"| {vocab} | {k} | {t['cross_entropy']:.4f} | {t['ngram_loss']:.4f} | "
              f"{t['ngram_loss'] / t['cross_entropy']:.3f} |")


if __name__ == "__main__":
    main()

"""Loss benchmark: forward + backward of `ngram_loss`'s sparse soft cross-entropy (K target
slots) against `torch.nn.functional.cross_entropy` on the same logits, median of interleaved
repeats (ratios within one run are the figures to read). Prints markdown.

    python tools/bench_loss.py [--n 4096] [--vocab 8192] [--k 27] [--dtype bfloat16] [--device cuda]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from ngramds.torch import ngram_loss


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=4096, help="positions (default 4096)")
    p.add_argument("--vocab", type=int, default=8192)
    p.add_argument("--k", type=int, default=27, help="target slots (default 27: Witten-Bell 2-4)")
    p.add_argument("--repeats", type=int, default=12)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    a = p.parse_args()
    gen = torch.Generator().manual_seed(0)
    dev, dtype = torch.device(a.device), getattr(torch, a.dtype)
    logits = torch.randn(1, a.n, a.vocab, generator=gen).to(dev, dtype).requires_grad_()
    labels = torch.randint(0, a.vocab, (1, a.n), generator=gen).to(dev)
    probs = torch.rand(1, a.n, a.k, generator=gen)
    batch = {"labels": labels, "target_ids": torch.randint(0, a.vocab, (1, a.n, a.k),
                                                           generator=gen).to(dev),
             "target_probs": (probs / probs.sum(-1, keepdim=True)).to(dev)}
    runs = {"F.cross_entropy": lambda: torch.nn.functional.cross_entropy(
                logits.flatten(0, 1), labels.flatten()),
            f"ngram_loss (K = {a.k})": lambda: ngram_loss(logits, batch)}
    times = {name: [] for name in runs}
    for i in range(a.repeats + 2):
        for name, fn in runs.items():
            logits.grad = None
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            fn().backward()
            if dev.type == "cuda":
                torch.cuda.synchronize()
            if i >= 2:
                times[name].append(time.perf_counter() - t0)
    base = statistics.median(times["F.cross_entropy"])
    print(f"{a.n} positions, vocab {a.vocab}, {a.dtype} on {dev}, {torch.get_num_threads()} "
          f"threads\n")
    print("| loss, forward + backward | median ms | ratio |")
    print("|---|---:|---:|")
    for name, t in times.items():
        m = statistics.median(t)
        print(f"| {name} | {m * 1e3:.1f} | {m / base:.2f}x |")


if __name__ == "__main__":
    main()

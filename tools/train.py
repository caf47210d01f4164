"""Train a small GPT with ngramds soft targets; evaluate plain next-token loss on held-out text.

    ngramds build --default-corpus -o out/stdlib.ngds --order 4 \\
        --val-fraction 0.05 --val-output out/stdlib.val.ngds
    python tools/train.py --train out/stdlib.ngds --val out/stdlib.val.ngds \\
        --targets coconts --top-r 8 --out runs/coconts.jsonl

Each evaluation appends one JSON record (config, step, train losses, val loss and perplexity,
tokens/s, wall time) to --out. The model and loop are the README's integration, unchanged.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ngramds.torch import DEFAULT_ALPHA, NgramDataset, NgramLoader, ngram_loss


class Block(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.heads, d // self.heads).unbind(2)
        y = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2),
                                           v.transpose(1, 2), is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    """A minimal pre-LayerNorm GPT with tied input/output embeddings."""

    def __init__(self, vocab: int, seq_len: int, d: int, layers: int, heads: int):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(seq_len, d)
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln = nn.LayerNorm(d)
        self.apply(self._init)

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def forward(self, idx):
        x = self.tok(idx) + self.pos(torch.arange(idx.shape[1], device=idx.device))
        for block in self.blocks:
            x = block(x)
        return self.ln(x) @ self.tok.weight.T


@torch.no_grad()
def evaluate(model, val_batches, device) -> float:
    """Mean next-token cross-entropy over the fixed validation positions."""
    model.eval()
    total, count = 0.0, 0
    for batch in val_batches:
        logits = model(batch["input_ids"].to(device))
        labels = batch["labels"].to(device)
        total += F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="sum").item()
        count += labels.numel()
    model.train()
    return total / count


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--train", required=True, help="ngramds file of the training documents")
    p.add_argument("--val", required=True, help="ngramds file of the held-out documents")
    p.add_argument("--targets", choices=["onehot", "allnts", "coconts"], default="coconts")
    p.add_argument("--top-r", type=int, default=8)
    p.add_argument("--residual", choices=["tail", "renorm"], default="tail")
    p.add_argument("--max-k", type=int, default=64, help="AllNTs: entries kept per position")
    p.add_argument("--mixing", choices=["auto", "none", "backoff", "witten-bell", "fixed"],
                   default="auto", help="targets from several orders (default: the dataset's)")
    p.add_argument("--orders", type=lambda s: [int(x) for x in s.split(",")],
                   help="orders taking part, e.g. 2,3,4 (default: all stored)")
    p.add_argument("--min-count", type=int, default=2, help="backoff: context seen this often")
    p.add_argument("--lambdas", type=lambda s: [float(x) for x in s.split(",")],
                   help="fixed mixing: one weight per order, e.g. 0.1,0.2,0.3,0.4")
    p.add_argument("--alpha", type=float, default=DEFAULT_ALPHA,
                   help="weight of the soft-target term (default: ngramds's)")
    p.add_argument("--steps", type=int, default=800)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--eval-batches", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=0,
                   help="DataLoader worker processes (0: load in the training process)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", required=True, help="JSON-lines log to append to")
    return p.parse_args(argv)


def main(argv=None):
    a = parse_args(argv)
    torch.manual_seed(a.seed)
    if a.threads:
        torch.set_num_threads(a.threads)
    train = NgramDataset(a.train, a.seq_len, targets=a.targets, top_r=a.top_r,
                         residual=a.residual, max_k=a.max_k, mixing=a.mixing, orders=a.orders,
                         min_count=a.min_count, lambdas=a.lambdas, seed=a.seed, batched=True)
    loader = NgramLoader(train, batch_size=a.batch_size, num_workers=a.workers)
    val = NgramDataset(a.val, a.seq_len, targets="onehot", shuffle=False, batched=True,
                       batch_size=a.batch_size)
    val_batches = [b for _, b in zip(range(a.eval_batches), val)]  # same positions every run
    vocab = train._file.vocab_size
    model = GPT(vocab, a.seq_len, a.d_model, a.layers, a.heads).to(a.device)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.95), weight_decay=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / a.warmup) * (
        0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(s, a.steps) / a.steps))))
    config = {k: v for k, v in vars(a).items()}
    config["params"] = sum(p.numel() for p in model.parameters())
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    log = out.open("a")
    step, epoch, start = 0, 0, time.perf_counter()
    tokens, objective, plain_ce = 0, 0.0, 0.0
    interval_start = start
    while step < a.steps:
        train.set_epoch(epoch)
        for batch in loader:
            logits = model(batch["input_ids"].to(a.device))
            loss = ngram_loss(logits, batch, alpha=a.alpha if a.targets != "onehot" else 0.0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            tokens += batch["labels"].numel()
            objective += loss.item()
            with torch.no_grad():
                plain_ce += F.cross_entropy(logits.flatten(0, 1),
                                            batch["labels"].to(a.device).flatten()).item()
            if step % a.eval_every == 0 or step == a.steps:
                now = time.perf_counter()
                n = a.eval_every if step % a.eval_every == 0 else step % a.eval_every
                val_loss = evaluate(model, val_batches, a.device)
                record = {"config": config, "step": step, "train_objective": objective / n,
                          "train_ce": plain_ce / n, "val_loss": val_loss,
                          "val_ppl": math.exp(val_loss),
                          "tokens_per_s": tokens / (now - interval_start),
                          "wall_s": now - start}
                log.write(json.dumps(record) + "\n")
                log.flush()
                print(f"step {step:5d}  train {objective / n:.4f} (ce {plain_ce / n:.4f})  "
                      f"val {val_loss:.4f} ppl {math.exp(val_loss):.2f}  "
                      f"{tokens / (now - interval_start):,.0f} tok/s", flush=True)
                tokens, objective, plain_ce, interval_start = 0, 0.0, 0.0, time.perf_counter()
            if step >= a.steps:
                break
        epoch += 1
    log.close()


if __name__ == "__main__":
    main()

"""Fine-tuning experiment (docs/RESULTS.md, "Fine-tuning"): pre-train the small GPT on Python
source with one-hot targets, then fine-tune it on another domain (man pages) with one-hot vs
n-gram targets built from the fine-tuning data alone, on document-aligned samples
(``sampling="documents"``) with attention kept within documents (``doc_info`` position_ids).

    python tools/finetune.py            # prepare, pre-train, fine-tune (skips what exists)
    python tools/finetune.py --report   # the table of docs/RESULTS.md

Inputs: out/stdlib.ngds and out/stdlib.tokenizer.json (``ngramds build --default-corpus -o
out/stdlib.ngds``) and out/corpora/man.jsonl (tools/corpora.py). Outputs under out/ft/ and
docs/runs/finetune/.
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import ngramds
from ngramds.torch import NgramDataset, NgramLoader, ngram_loss
from ngramds.train.loop import optimizer_step
from ngramds.train.model import GPT

ROOT = Path(__file__).resolve().parents[1]
OUT, RUNS = ROOT / "out" / "ft", ROOT / "docs" / "runs" / "finetune"
SEQ, BATCH, D, LAYERS, HEADS = 128, 8, 128, 3, 4
PRE_STEPS, FT_STEPS, EVAL_EVERY, EVAL_BATCHES = 600, 400, 50, 32
KEEP_EVERY = 4  # fine-tuning data: every 4th man page (a small domain set)
METHODS = {"onehot": dict(targets="onehot"),
           "coconts": dict(targets="coconts", top_r=8),
           "allnts": dict(targets="allnts", max_k=64)}


def prepare() -> None:
    """out/ft/man.jsonl (every KEEP_EVERY-th page), its train/held-out files built with the
    pre-training tokenizer (held-out documents never counted)."""
    OUT.mkdir(parents=True, exist_ok=True)
    if (OUT / "man.ngds").exists():
        return
    lines = (ROOT / "out" / "corpora" / "man.jsonl").read_text().splitlines()
    (OUT / "man.jsonl").write_text("\n".join(lines[::KEEP_EVERY]) + "\n")
    subprocess.run([sys.executable, "-m", "ngramds.cli", "build", str(OUT / "man.jsonl"),
                    "--tokenizer", str(ROOT / "out" / "stdlib.tokenizer.json"), "--eos-id", "0",
                    "-o", str(OUT / "man.ngds"), "--val-fraction", "0.05", "--val-output",
                    str(OUT / "man.val.ngds"), "-q"], check=True)


def forward(model: GPT, idx: torch.Tensor, pos: torch.Tensor | None = None) -> torch.Tensor:
    """The GPT's logits; with ``pos`` (position_ids) its positions restart per document and
    attention stays within documents (the README's SDPA mask)."""
    if pos is None:
        return model(idx)
    L = idx.shape[1]
    doc = (pos == 0).cumsum(-1)
    causal = torch.ones(L, L, dtype=torch.bool).tril()
    mask = ((doc[:, :, None] == doc[:, None, :]) & causal)[:, None]
    x = model.tok(idx) + model.pos(pos)
    for blk in model.blocks:
        b, t, d = x.shape
        q, k, v = blk.qkv(blk.ln1(x)).view(b, t, 3, blk.heads, d // blk.heads).unbind(2)
        y = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2),
                                           v.transpose(1, 2), attn_mask=mask)
        x = x + blk.proj(y.transpose(1, 2).reshape(b, t, d))
        x = x + blk.mlp(blk.ln2(x))
    return model.ln(x) @ model.tok.weight.T


def schedule(opt, steps: int, warmup: int):
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup) * (
        0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))))


def pretrain() -> Path:
    path = OUT / "pretrained.pt"
    if path.exists():
        return path
    torch.manual_seed(0)
    vocab = ngramds.open(ROOT / "out" / "stdlib.ngds").vocab_size
    model = GPT(vocab, SEQ, D, LAYERS, HEADS)
    loader = NgramLoader(NgramDataset(ROOT / "out" / "stdlib.ngds", SEQ, targets="onehot",
                                      seed=0), batch_size=BATCH)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, betas=(0.9, 0.95), weight_decay=0.1)
    sched, step, t0 = schedule(opt, PRE_STEPS, 100), 0, time.time()
    for batch in loader:
        loss = ngram_loss(forward(model, batch["input_ids"]), batch, alpha=0)
        optimizer_step(model, opt, sched, loss)
        step += 1
        if step % 100 == 0:
            print(f"pre-train step {step}  loss {loss.item():.3f}  {time.time() - t0:.0f}s",
                  flush=True)
        if step == PRE_STEPS:
            break
    torch.save(model.state_dict(), path)
    return path


@torch.no_grad()
def evaluate(model: GPT, batches: list[dict]) -> float:
    model.eval()
    total, count = 0.0, 0
    for b in batches:
        logits = forward(model, b["input_ids"], b["position_ids"])
        total += F.cross_entropy(logits.flatten(0, 1), b["labels"].flatten(),
                                 ignore_index=-100, reduction="sum").item()
        count += int((b["labels"] != -100).sum())
    model.train()
    return total / count


def finetune(method: str, seed: int, lr: float) -> Path:
    out = RUNS / f"{method}.lr{lr:g}.seed{seed}.jsonl"
    if out.exists():
        return out
    RUNS.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    vocab = ngramds.open(OUT / "man.ngds").vocab_size
    model = GPT(vocab, SEQ, D, LAYERS, HEADS)
    model.load_state_dict(torch.load(OUT / "pretrained.pt"))
    opts = METHODS[method]
    ds = NgramDataset(OUT / "man.ngds", SEQ, sampling="documents", doc_info=True, seed=seed,
                      **opts)
    loader = NgramLoader(ds, batch_size=BATCH)
    val = NgramDataset(OUT / "man.val.ngds", SEQ, sampling="documents", doc_info=True,
                       targets="onehot", shuffle=False)
    val_batches = [b for _, b in zip(range(EVAL_BATCHES), NgramLoader(val, batch_size=BATCH))]
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.1)
    sched, step, t0 = schedule(opt, FT_STEPS, 20), 0, time.time()
    alpha = 0.0 if method == "onehot" else 1.0
    records = [{"method": method, "seed": seed, "lr": lr, "step": 0,
                "val_loss": evaluate(model, val_batches), "wall_s": 0.0,
                "train_samples": ds.num_samples}]
    while step < FT_STEPS:
        for batch in loader:  # each pass is the next epoch
            logits = forward(model, batch["input_ids"], batch["position_ids"])
            loss = ngram_loss(logits, batch, alpha=alpha)
            optimizer_step(model, opt, sched, loss)
            step += 1
            if step % EVAL_EVERY == 0:
                records.append({"method": method, "seed": seed, "lr": lr, "step": step,
                                "val_loss": evaluate(model, val_batches),
                                "train_objective": loss.item(), "wall_s": time.time() - t0,
                                "epoch": loader.state_dict()["epoch"]})
                print(f"{method} seed {seed} step {step}  val {records[-1]['val_loss']:.4f}  "
                      f"{time.time() - t0:.0f}s", flush=True)
            if step == FT_STEPS:
                break
    out.write_text("".join(json.dumps(r) + "\n" for r in records))
    return out


def report(lr: float) -> None:
    runs = {}
    for path in sorted(RUNS.glob(f"*.lr{lr:g}.seed*.jsonl")):
        recs = [json.loads(line) for line in path.read_text().splitlines()]
        runs.setdefault(recs[0]["method"], []).append(recs)
    if "onehot" not in runs:
        sys.exit("no one-hot runs yet")
    target = float(np.mean([r[-1]["val_loss"] for r in runs["onehot"]]))
    print(f"start (pre-trained, before fine-tuning): {runs['onehot'][0][0]['val_loss']:.4f}; "
          f"one-hot final mean {target:.4f}")
    print("| targets | seeds | final held-out loss | steps to one-hot's final loss |")
    print("|---|---:|---:|---:|")
    for method, rs in runs.items():
        finals = [r[-1]["val_loss"] for r in rs]
        reach = [next((x["step"] for x in r if x["step"] and x["val_loss"] <= target), "-")
                 for r in rs]
        spread = f" ± {np.std(finals):.4f}" if len(finals) > 1 else ""
        print(f"| {method} | {len(rs)} | {np.mean(finals):.4f}{spread} | "
              f"{', '.join(map(str, reach))} of {FT_STEPS} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--report", action="store_true")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    if a.report:
        return report(a.lr)
    torch.set_num_threads(a.threads)
    prepare()
    pretrain()
    for seed in range(a.seeds):
        for method in METHODS:
            finetune(method, seed, a.lr)
    report(a.lr)


if __name__ == "__main__":
    main()

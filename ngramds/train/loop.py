"""One training run: the README's integration (NgramDataset, NgramLoader, ngram_loss) around
the small GPT, with held-out evaluation by plain next-token cross-entropy."""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import FileAccessError, InputError
from ..file.reader import open_file
from ..torch import (DEFAULT_ALPHA, IGNORE_INDEX, NgramDataset, NgramLoader, hold_for_epochs,
                     ngram_loss)
from ..targets.entropy import mean_entropy
from ..torch.schedule import alpha_at
from .config import RunConfig, check_log_outputs
from .model import GPT


@torch.no_grad()
def evaluate(model: torch.nn.Module, batches: list[dict], device: str) -> float:
    """Mean next-token cross-entropy (nats per token) over the fixed held-out batches."""
    model.eval()
    total, count = 0.0, 0
    for batch in batches:
        logits = model(batch["input_ids"].to(device))
        labels = batch["labels"].to(device)
        total += F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="sum").item()
        count += int((labels != IGNORE_INDEX).sum())  # masked labels (prompts) are not predicted
    model.train()
    return total / count


def optimizer_step(model: torch.nn.Module, opt: torch.optim.Optimizer, sched, loss) -> None:
    """One update: gradients of ``loss``, clipped to norm 1, then the optimiser and the
    learning-rate schedule step."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    sched.step()


def resolve_device(device: str | None) -> str:
    """``device``, or cuda when available else cpu; InputError for a device torch lacks."""
    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as exc:
        first = (str(exc).splitlines() or ["unavailable"])[0]
        raise InputError(f"device {device!r} is not usable here ({first})") from None
    return device


def train_run(cfg: RunConfig, echo: bool = True, overwrite: bool = False) -> list[dict]:
    """Train one model as ``cfg`` says; write one JSON record per evaluation (config, step,
    train objective and plain cross-entropy, held-out loss and perplexity, tokens/s, wall
    time) to the new log ``cfg.out`` and return the records. ``echo`` prints one line per
    evaluation; ``overwrite`` replaces an existing log (else it is refused, as is a log that
    is the training or validation file)."""
    cfg.check()
    check_log_outputs([cfg.out], cfg, overwrite)
    device = resolve_device(cfg.device)
    vocab = open_file(cfg.train).vocab_size
    if open_file(cfg.val).vocab_size > vocab:
        raise InputError(f"{cfg.val} has a larger vocabulary than {cfg.train} "
                         f"({open_file(cfg.val).vocab_size} > {vocab}): build both with the "
                         "same tokenizer (ngramds build --val-fraction/--val-output)")
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    train = NgramDataset(cfg.train, cfg.seq_len, config=cfg.target, seed=cfg.seed, batched=True)
    loader = NgramLoader(train, batch_size=cfg.batch_size, num_workers=cfg.workers)
    val = NgramDataset(cfg.val, cfg.seq_len, targets="onehot", shuffle=False, batched=True,
                       batch_size=cfg.batch_size)
    val_batches = [b for _, b in zip(range(cfg.eval_batches), val)]  # same positions each run
    model = GPT(vocab, cfg.seq_len, cfg.d_model, cfg.layers, cfg.heads).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / cfg.warmup) * (
        0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(s, cfg.steps) / cfg.steps))))
    alpha = 0.0 if cfg.target.targets == "onehot" else (DEFAULT_ALPHA if cfg.alpha is None
                                                 else cfg.alpha)
    epochs = cfg.steps / len(loader)  # passes over the training documents
    hold = hold_for_epochs(epochs) if cfg.alpha_hold is None else cfg.alpha_hold
    # the soft term's floor: a soft loss near it is as low as these targets allow
    floor = None if cfg.target.targets == "onehot" else \
        mean_entropy(open_file(cfg.train), train.config, seed=cfg.seed)[0]
    config = {**cfg.record(), "alpha": alpha, "alpha_hold": hold, "epochs": epochs,
              "device": device,
              "params": sum(p.numel() for p in model.parameters()), "target_entropy": floor}
    if echo and floor is not None:
        print(f"targets' mean entropy {floor:.4f} nats (the soft term's floor)", flush=True)
    out = Path(cfg.out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if overwrite and os.path.lexists(out):
            out.unlink()  # (a link itself, never the file it points to)
        log = out.open("x")  # new: never appends to nor truncates another file
    except FileExistsError:
        raise FileAccessError(f"the log {out} appeared while the run started; give another "
                              "path") from None
    except OSError as exc:
        raise FileAccessError(f"cannot write the log {out}: {exc.strerror or exc}") from None
    records: list[dict] = []
    step, start = 0, time.perf_counter()
    tokens, objective, plain_ce, interval_start = 0, 0.0, 0.0, start
    with log:
        while step < cfg.steps:
            for batch in loader:  # each pass over the loader is the next epoch
                logits = model(batch["input_ids"].to(device))
                step_alpha = alpha_at(step, cfg.steps, alpha, hold)
                loss = ngram_loss(logits, batch, alpha=step_alpha)
                optimizer_step(model, opt, sched, loss)
                step += 1
                tokens += batch["labels"].numel()
                objective += loss.item()
                with torch.no_grad():
                    plain_ce += F.cross_entropy(logits.flatten(0, 1),
                                                batch["labels"].to(device).flatten()).item()
                if step % cfg.eval_every == 0 or step == cfg.steps:
                    now = time.perf_counter()
                    n = step % cfg.eval_every or cfg.eval_every
                    val_loss = evaluate(model, val_batches, device)
                    record = {"config": config, "step": step, "train_objective": objective / n,
                              "train_ce": plain_ce / n, "val_loss": val_loss,
                              "val_ppl": math.exp(val_loss), "alpha": step_alpha,
                              "tokens_per_s": tokens / (now - interval_start),
                              "wall_s": now - start}
                    log.write(json.dumps(record) + "\n")
                    log.flush()
                    records.append(record)
                    if echo:
                        print(f"step {step:5d}  train {objective / n:.4f} (ce {plain_ce / n:.4f})"
                              f"  val {val_loss:.4f} ppl {math.exp(val_loss):.2f}  "
                              f"{tokens / (now - interval_start):,.0f} tok/s", flush=True)
                    tokens, objective, plain_ce, interval_start = 0, 0.0, 0.0, time.perf_counter()
                if step >= cfg.steps:
                    break
    return records

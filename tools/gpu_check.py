"""One command that checks ngramds on a GPU (issue 26): correctness on CUDA, speed, and the gain
of the n-gram targets for a 92M-parameter GPT. Sized for <= 8 minutes on one H200 of a bare
machine holding only a copy of this checkout (nothing downloaded; torch, numba, msgpack,
hypothesis, tokenizers preinstalled):

    PYTHONPATH=. python tools/gpu_check.py --out $OUT            # on the GPU machine
    PYTHONPATH=. python tools/gpu_check.py --out /tmp/x --dry-run  # every step, CPU, toy sizes

Steps, each timed and guarded (a failure is recorded and the next step runs):

- ``device tests``: tests/torch/test_device.py and test_loss.py with NGRAMDS_TEST_DEVICES=cuda
  (hypothesis reference vs compiled kernels, every mode x mixing x escape, hostile batches);
- ``loss``: gradcheck in float64 on the device; bf16 / fp16 autocast against a float32
  reference (loss and gradients); torch.compile with 0 graph breaks (torch._dynamo.explain)
  and its value and gradient; a vocabulary smaller than the ids' (a subprocess on CUDA: the
  device-side assert ends its CUDA context);
- ``no host sync``: ``torch.cuda.set_sync_debug_mode("error")`` around the device targets,
  the loss and its backward of training steps fed by a pinned loader;
- ``pinned loader``: NgramLoader with ``pin_memory=True`` and 4 workers, device targets equal
  to the workers' targets;
- ``corpus``: this machine's Python stdlib + site-packages source, one document per file, BPE
  vocabulary 8192 trained on a sample, >= 50M tokens; a 1% held-out split;
- ``speed``: tools/bench_device.py on the GPU (targets positions/s at seq 1024, batch 16 / 64,
  with and without CUDA graphs and with ``compile=True``; table bytes per token; the GPT step
  with device targets vs plain cross-entropy, alone and fed by the loader; the default
  targets, AllNTs, beside CoCoNTs r = 8 and 16);
- ``gain``: one-hot vs the default targets (README alpha schedule: ``alpha_at`` with
  ``hold_for_epochs``) at equal steps, the same samples, each run ~2 minutes (fitted to the time
  left), held-out loss every N steps; the within-run crossing and the final gain; then, if time
  is left, the n-gram run at 0.7x the steps (its own schedule), the budget-matched point;
- ``teacher``: with a minute left, the targets' held-out cross-entropy as a language model
  (tools/teacher_loss.py), to set against the runs' curves (the gain step's fitted runs leave
  it that minute; a follow-up's fixed ``--steps`` may not: give it a larger ``--budget``).

A follow-up on the schedule (its one-hot run taken from an earlier check of the same corpus
and steps), then the speed step:

    python3 tools/gpu_check.py --out $OUT --budget 240 --steps 1437 --holds 0.5,0.25,0.5:0.5 \
        --baseline docs/runs/gpu/2026-12-04-h200-b03c969.json \
        --skip "device tests,loss,no host sync,pinned loader,0.7x"

(AllNTs, the default since 0.7, at the recorded run's hold 0.5, at 0.25, and ``0.5:0.5``:
alpha 0.5, not 1, for half the run, the copy task's best schedule, docs/RESULTS.md,
"Structure beyond the n-gram order"; ``H:A:coconts`` would run CoCoNTs r = 8.)

Writes OUT/gpu_check.json (everything) and OUT/gpu_check.md (the table, also printed), after
every step (a run cut short keeps what it measured).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import subprocess
import sys
import sysconfig
import time
import traceback
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tools")]

import numpy as np  # noqa: E402
import torch  # noqa: E402

import ngramds  # noqa: E402
from ngramds.targets import TargetConfig  # noqa: E402
from ngramds.torch import (DEFAULT_ALPHA, NgramDataset, NgramLoader,  # noqa: E402
                           NgramTargets, alpha_at, hold_for_epochs, ngram_loss)
import bench_device as bench  # noqa: E402

DEFAULT_TARGETS = TargetConfig().targets  # "allnts" (up to 64 entries per order)

FULL = dict(budget=480, tests_timeout=150, vocab=8192, min_tokens=50_000_000,
            tokenizer_mb=16, model="gpt2", seq=1024, batch=16, run_s=120, evals=15,
            eval_batches=8, speed_batches=(16, 64), speed_steps=10, lr=6e-4, files=None,
            held_out_every=100, workers=4, max_chars=200e6, fused=True)
DRY = dict(budget=60, tests_timeout=40, vocab=512, min_tokens=60_000, tokenizer_mb=0.3,
           model="toy", seq=64, batch=4, run_s=3, evals=4, eval_batches=2,
           speed_batches=(2, 4), speed_steps=2, lr=3e-3, files=60, held_out_every=10,
           workers=2, max_chars=1e7, fused=False)  # (compile=True: tests/torch)


class Check:
    """The steps' results, written to OUT after each one."""

    def __init__(self, out: Path, dry: bool, budget: float):
        self.out, self.dry, self.t0, self.budget = out, dry, time.monotonic(), budget
        self.result = {"command": " ".join([Path(sys.executable).name, *sys.argv]),
                       "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "dry_run": dry,
                       "machine": machine(), "steps": {}}

    def left(self) -> float:
        """Seconds of the budget left."""
        return self.budget - (time.monotonic() - self.t0)

    def step(self, name: str, fn, *args):
        """Run ``fn(*args)``, timed and guarded; its dict is the step's result."""
        t = time.monotonic()
        print(f"[gpu_check] {name} ... ({self.left():.0f} s of the budget left)", flush=True)
        entry = {"ok": False}
        try:
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                value = fn(*args)
            ours = sorted({str(w.message)[:300] for w in seen if "ngramds" in str(w.message)})
            if ours:  # (a CUDA graph that could not be captured, say)
                entry["warnings"] = ours
            entry.update(ok=bool(value.pop("ok", True)) if isinstance(value, dict) else True,
                         result=value)
        except Exception as exc:  # guarded: the others still run and report
            entry.update(error=f"{type(exc).__name__}: {str(exc)[:500]}",
                         traceback=traceback.format_exc()[-3000:])
        entry["seconds"] = round(time.monotonic() - t, 2)
        self.result["steps"][name] = entry
        self.write()
        print(f"[gpu_check] {name}: {'ok' if entry['ok'] else 'FAILED'} in "
              f"{entry['seconds']} s" + (f" ({entry['error']})" if "error" in entry else ""),
              flush=True)
        return entry.get("result")

    def write(self) -> None:
        self.result["seconds"] = round(time.monotonic() - self.t0, 1)
        (self.out / "gpu_check.json").write_text(json.dumps(self.result, indent=1,
                                                            default=str))
        (self.out / "gpu_check.md").write_text(table(self.result))


def machine() -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__,
            "cpus": os.cpu_count(), "host": platform.node(), "ngramds": ngramds.__version__}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    cuda=torch.version.cuda)
    try:  # (a copy of a checkout may carry an older .git: "-dirty" then)
        info["commit"] = subprocess.run(["git", "-C", str(ROOT), "describe", "--always",
                                         "--dirty"], capture_output=True, text=True,
                                        timeout=10).stdout.strip() or None
    except Exception:
        info["commit"] = None
    info["source_sha256"] = source_digest()
    return info


def source_digest() -> str:
    """sha256 of the package's and tools' Python sources (path and bytes, sorted): which
    code ran, whatever the copy's git state (compare with this function on a checkout)."""
    h = hashlib.sha256()
    for path in sorted([*ROOT.glob("ngramds/**/*.py"), *ROOT.glob("tools/*.py")]):
        h.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


# -- a: correctness -----------------------------------------------------------------------
def device_tests(device: str, dry: bool, timeout: float) -> dict:
    """The device-target and loss tests, on ``device``, in a subprocess."""
    select = ["tests/torch/test_device.py", "-k", "epoch_boundary or hostile_windows"] if dry \
        else ["tests/torch/test_device.py", "tests/torch/test_loss.py"]
    env = dict(os.environ, NGRAMDS_TEST_DEVICES=device, CI="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    try:
        proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                               "-x", *select], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=max(10.0, timeout))
    except subprocess.TimeoutExpired as e:
        return {"ok": False, "summary": f"timed out after {e.timeout:.0f} s",
                "tail": (e.stdout or "")[-2000:] if isinstance(e.stdout, str) else ""}
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    return {"ok": proc.returncode == 0, "summary": lines[-1] if lines else "",
            "tail": "" if proc.returncode == 0 else (proc.stdout + proc.stderr)[-3000:]}


def toy_batch(device, vocab=50, B=2, L=6, K=4, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, vocab, (B, L), generator=g)
    labels[0, 1] = -100
    ids = torch.randint(0, vocab, (B, L, K), generator=g)
    probs = torch.rand(B, L, K, generator=g, dtype=torch.float64)
    probs = (probs / probs.sum(-1, keepdim=True)).to(dtype)
    return {"labels": labels.to(device), "target_ids": ids.to(device),
            "target_probs": probs.to(device)}


def loss_checks(device: str, dry: bool) -> dict:
    """gradcheck float64; bf16/fp16 autocast vs a float32 reference; torch.compile with 0
    graph breaks; the vocabulary check."""
    out, ok = {}, True
    batch = toy_batch(device, vocab=11, dtype=torch.float64)
    z = torch.randn(2, 6, 11, dtype=torch.float64, device=device, requires_grad=True)
    out["gradcheck_float64"] = bool(torch.autograd.gradcheck(
        lambda x: ngram_loss(x, batch, alpha=0.5), (z,)))
    ok &= out["gradcheck_float64"]
    # autocast: a linear head's logits in bf16 / fp16 against float32
    torch.manual_seed(0)
    V = 512 if dry else 8192
    head = torch.nn.Linear(64, V).to(device)
    h = torch.randn(4, 128, 64, device=device)
    b = toy_batch(device, vocab=V, B=4, L=128, K=9)
    ref = ngram_loss(head(h), b)
    ref_grad = torch.autograd.grad(ref, head.weight)[0]
    kind = torch.device(device).type
    for dtype in (torch.bfloat16, torch.float16):
        name = str(dtype).split(".")[-1]
        try:
            with torch.autocast(kind, dtype=dtype):
                logits = head(h)
            loss = ngram_loss(logits, b)
            grad = torch.autograd.grad(loss, head.weight)[0]
            rel = float((grad.float() - ref_grad).norm() / ref_grad.norm())
            diff = abs(loss.item() - ref.item())
            out[f"autocast_{name}"] = {"logits_dtype": str(logits.dtype).split(".")[-1],
                                       "loss_abs_diff": diff, "grad_rel_err": rel}
            ok &= diff < 0.05 and rel < 0.05
        except RuntimeError as exc:  # (fp16 autocast where a CPU build lacks it)
            out[f"autocast_{name}"] = f"not run: {str(exc)[:120]}"
            ok &= kind != "cuda"
    # torch.compile: the loss traced in one graph, equal values and gradients
    torch._dynamo.reset()
    logits = torch.randn(4, 128, V, device=device, requires_grad=True)
    explained = torch._dynamo.explain(ngram_loss)(logits, b)
    out["compile_graph_breaks"] = explained.graph_break_count
    out["compile_break_reasons"] = [str(r)[:200] for r in explained.break_reasons]
    compiled = torch.compile(ngram_loss, backend="aot_eager" if dry else "inductor")
    a, c = ngram_loss(logits, b), compiled(logits, b)
    ga, = torch.autograd.grad(a, logits)
    gc, = torch.autograd.grad(c, logits)
    out["compile_loss_abs_diff"] = abs(a.item() - c.item())
    out["compile_grad_max_abs_diff"] = float((ga - gc).abs().max())
    ok &= explained.graph_break_count == 0 and out["compile_loss_abs_diff"] < 1e-4 and \
        out["compile_grad_max_abs_diff"] < 1e-5
    out["vocabulary_check"] = vocabulary_check(device)
    ok &= out["vocabulary_check"].startswith("ok")
    out["ok"] = ok
    return out


VOCAB_SCRIPT = """
import torch
from ngramds.torch import ngram_loss
b = {"labels": torch.full((2, 3), 7, device="cuda"),
     "target_ids": torch.zeros(2, 3, 2, dtype=torch.long, device="cuda"),
     "target_probs": torch.full((2, 3, 2), 0.5, device="cuda")}
ngram_loss(torch.randn(2, 3, 5, device="cuda"), b)
torch.cuda.synchronize()
"""


def vocabulary_check(device: str) -> str:
    """Ids past the logits' vocabulary: a one-line error naming the cause (on CUDA a
    device-side assert carrying it, in a subprocess)."""
    if torch.device(device).type != "cuda":
        b = toy_batch(device, vocab=11)
        try:
            ngram_loss(torch.randn(2, 6, 5, device=device), b)
        except ValueError as exc:
            return f"ok: {exc}" if "vocabulary" in str(exc) else f"wrong message: {exc}"
        return "not refused"
    proc = subprocess.run([sys.executable, "-c", VOCAB_SCRIPT], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    said = "vocabulary is smaller" in proc.stderr
    return ("ok: " if proc.returncode and said else "not named: ") + \
        " | ".join(ln for ln in proc.stderr.splitlines()[-3:])[:400]


def tiny_file(tmp: Path, compact: bool = False) -> Path:
    tokens = (np.random.default_rng(1).zipf(1.2, 120_000) % 900).astype(np.uint16)
    name = "tiny.compact.ngds" if compact else "tiny.ngds"
    return ngramds.build(tokens, tmp / name, progress=False, compact=compact,
                         doc_lengths=[50_000, 7, 69_993])


def no_sync(device: str, tmp: Path, dry: bool) -> dict:
    """Training steps under torch.cuda.set_sync_debug_mode("error") around the device
    targets, the loss and its backward: any host synchronisation raises. From the third step
    on: the first runs eagerly, the second captures the targets' CUDA graph (which
    synchronises once), the others replay it."""
    cuda = torch.device(device).type == "cuda"
    out = {}
    for compact in (False, True):
        path = tiny_file(tmp, compact)
        ds = NgramDataset(path, 128, targets_on="device", seed=1)
        targets = NgramTargets(ds, device=device)
        model = bench.GPT(ds.file.vocab_size, seq_len=128, **bench.GPT_SIZES["toy"]).to(device)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        loader = iter(NgramLoader(ds, batch_size=8, num_workers=2, pin_memory=cuda))
        steps = 0
        for raw in loader:
            if cuda and steps >= 2:
                torch.cuda.set_sync_debug_mode("error")
            try:
                batch = targets(raw)
                logits = model(batch["input_ids"])
                loss = ngram_loss(logits, batch)
                loss.backward()
            finally:
                if cuda:
                    torch.cuda.set_sync_debug_mode(0)
            opt.step()
            opt.zero_grad()
            steps += 1
            if steps == 6:
                break
        del loader
        targets.check()
        out["compact" if compact else "default"] = \
            f"{steps - 2} steps without a host sync ({len(targets._graphs or {})} CUDA " \
            "graph replayed)" if cuda else \
            f"{steps} steps (no CUDA: the sync debug mode is not checked)"
    return out


def pinned_loader(device: str, tmp: Path, dry: bool) -> dict:
    """pin_memory=True with 4 workers: pinned batches, and device targets equal to the
    workers' targets."""
    cuda = torch.device(device).type == "cuda"
    path = tiny_file(tmp)
    dev_ds = NgramDataset(path, 128, targets_on="device", seed=3)
    host = NgramLoader(NgramDataset(path, 128, seed=3), batch_size=8, num_workers=4)
    loader = NgramLoader(dev_ds, batch_size=8, num_workers=4, pin_memory=cuda)
    targets = NgramTargets(dev_ds, device=device)
    n, pinned, worst = 0, True, 0.0
    for a, raw in zip(host, loader):
        pinned &= all(v.is_pinned() for v in raw.values()) if cuda else True
        b = {k: v.cpu() for k, v in targets(raw).items()}
        for key in ("input_ids", "labels", "target_ids", "index"):
            if not torch.equal(a[key], b[key]):
                raise AssertionError(f"batch {n}: {key} differs from the workers' targets")
        worst = max(worst, float((a["target_probs"] - b["target_probs"]).abs().max()))
        n += 1
        if dry and n == 6:
            break
    targets.check()
    return {"ok": pinned and worst < 1e-6, "batches": n, "pinned": pinned,
            "max_prob_diff": worst}


# -- the corpus ---------------------------------------------------------------------------
def source_files() -> list[Path]:
    """This machine's Python source: the standard library, then site-packages, sorted."""
    from ngramds.corpus.stdlib import stdlib_files
    files = stdlib_files()
    seen = {p.resolve() for p in files}
    roots = {sysconfig.get_paths()[k] for k in ("purelib", "platlib")}
    for root in sorted(roots):
        for p in sorted(Path(root).rglob("*.py")):
            r = p.resolve()
            if r not in seen and p.is_file():
                seen.add(r)
                files.append(p)
    return files


def build_corpus(tmp: Path, cfg: dict, dry: bool) -> dict:
    """Train/held-out files of the machine's Python source (>= cfg min_tokens tokens)."""
    from ngramds.corpus.stdlib import EOS_TOKEN, train_tokenizer
    files = source_files()
    if cfg["files"]:
        files = files[:cfg["files"]]
    texts = []
    for p in files:
        try:
            t = p.read_bytes().decode("utf-8", errors="replace")
        except OSError:
            continue
        if t.strip():
            texts.append(t)
    chars = sum(map(len, texts))
    if chars > cfg["max_chars"]:  # every k-th file, spread over the whole tree
        texts = texts[::math.ceil(chars / cfg["max_chars"])]
        chars = sum(map(len, texts))
    step = max(1, round(chars / (cfg["tokenizer_mb"] * 1e6)))
    tok = train_tokenizer(texts[::step], cfg["vocab"])
    tok.save(str(tmp / "tokenizer.json"))
    eos = tok.token_to_id(EOS_TOKEN)
    parts = {"train": ([], []), "val": ([], [])}
    for lo in range(0, len(texts), 2000):
        for j, enc in enumerate(tok.encode_batch(texts[lo:lo + 2000])):
            split = "val" if (lo + j) % cfg["held_out_every"] == cfg["held_out_every"] - 1 \
                else "train"
            ids = np.asarray(enc.ids + [eos], dtype=np.uint16)
            parts[split][0].append(ids)
            parts[split][1].append(ids.size)
    out = {"files": len(texts), "characters": chars, "tokenizer_sample_every": step,
           "vocab": tok.get_vocab_size()}
    for split, (ids, lengths) in parts.items():
        tokens = np.concatenate(ids)
        path = ngramds.build(tokens, tmp / f"{split}.ngds", doc_lengths=lengths,
                             vocab_size=tok.get_vocab_size(), progress=False)
        out[f"{split}_tokens"] = int(tokens.size)
        out[f"{split}_path"] = str(path)
    out["ok"] = out["train_tokens"] >= cfg["min_tokens"]
    return out


# -- b: speed -----------------------------------------------------------------------------
def speed(device: str, path: str, cfg: dict) -> dict:
    rows = bench.device_targets_rows(path, device, cfg["speed_batches"], seq=cfg["seq"],
                                     batches=cfg["speed_steps"], fused=cfg["fused"])
    step = bench.model_step_rows(path, device, cfg["model"], batch=cfg["batch"],
                                 seq=cfg["seq"], steps=cfg["speed_steps"],
                                 workers=cfg["workers"])
    # the default (AllNTs) against CoCoNTs r = 8 (the default up to 0.6) and r = 16: device
    # targets, and the loader computing them in this machine's workers
    more = {"r=8": dict(targets="coconts", top_r=8), "r=16": dict(targets="coconts", top_r=16)}
    device_rows = {k: bench.device_targets_rows(path, device, cfg["speed_batches"][:1],
                                                seq=cfg["seq"], batches=cfg["speed_steps"],
                                                **o)[0] for k, o in more.items()}
    workers = max(2, min(16, (os.cpu_count() or 2) - 2))
    loader = {}
    for name, o in {DEFAULT_TARGETS: {}, **more}.items():
        ds = NgramDataset(path, cfg["seq"], batched=True, **o)
        loader[name] = bench.rate(lambda: bench.forever(NgramLoader(
            ds, batch_size=cfg["batch"], num_workers=workers)), cfg["speed_steps"])[0]
    out = {"targets": rows, "step": step,
           "other_targets": {"device_targets": device_rows, "loader_workers": workers,
                             "loader_positions_per_s": loader},
           "goal_200M_positions_per_s": all(r["positions_per_s_from_host"] >= 2e8
                                            for r in rows),
           "goal_step_ratio_1.03": step["isolated_s_per_step"]["ratio"] <= 1.03}
    if torch.device(device).type == "cuda":
        out["gpu_peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return out


# -- c: the gain --------------------------------------------------------------------------
def train_run(device: str, train: str, val_batches: list, cfg: dict, steps: int,
              ngram: bool, evals: int, timed_from: int = 0, hold: float | None = None,
              alpha: float = DEFAULT_ALPHA, targets_kind: str = DEFAULT_TARGETS) -> dict:
    """One run of ``steps`` steps (warm-up 5%, cosine to 10%), held-out loss every
    steps / evals steps; the same samples for one-hot and n-gram runs (seed 0); n-gram runs
    (``targets_kind``: "allnts", the default, or "coconts", r = 8) weigh the soft term by
    ``alpha_at(step, steps, alpha, hold)``. ``s_per_step``: of the steps from ``timed_from``
    on."""
    cuda = torch.device(device).type == "cuda"
    ds = NgramDataset(train, cfg["seq"], targets_on="device", seed=0,
                      targets=targets_kind if ngram else "onehot")
    targets = NgramTargets(ds, device=device) if ngram else None
    loader = NgramLoader(ds, batch_size=cfg["batch"], num_workers=cfg["workers"],
                         pin_memory=cuda)
    hold = hold_for_epochs(steps / len(loader)) if hold is None else hold
    torch.manual_seed(0)
    model = bench.GPT(ds.file.vocab_size, seq_len=cfg["seq"],
                      **bench.GPT_SIZES[cfg["model"]]).to(device)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": rest, "weight_decay": 0.0}], lr=cfg["lr"],
                            betas=(0.9, 0.95), fused=cuda)
    amp = bench.autocast_for(device)
    warm = max(1, steps // 20)
    every = max(1, steps // evals)
    curve, t0, step = [], time.monotonic(), 0
    batches = bench.forever(loader)
    while step < steps:
        if step == timed_from and step:
            bench.sync(device)
            t0 = time.monotonic()
        raw = next(batches)
        lr = cfg["lr"] * (step + 1) / warm if step < warm else cfg["lr"] * (
            0.1 + 0.45 * (1 + math.cos(math.pi * (step - warm) / max(1, steps - warm))))
        for g in opt.param_groups:
            g["lr"] = lr
        if ngram:
            batch = targets(raw)
            with amp():
                logits = model(batch["input_ids"])
            loss = ngram_loss(logits, batch, alpha=alpha_at(step, steps, alpha, hold))
        else:
            w = raw["window"].to(device, non_blocking=True).long()
            with amp():
                logits = model(w[:, :-1])
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(),
                                                     w[:, 1:].flatten())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        if step % every == 0 or step == steps:
            curve.append((step, evaluate(model, val_batches, amp)))
    bench.sync(device)
    seconds = time.monotonic() - t0
    del batches
    if targets is not None:
        targets.check()
    return {"steps": steps, "seconds": round(seconds, 1),
            "s_per_step": seconds / (steps - timed_from),
            "parameters": sum(p.numel() for p in model.parameters()),
            "hold": hold, "alpha": alpha if ngram else 0.0, "epochs": steps / len(loader),
            "targets": targets_kind if ngram else "onehot",
            "curve": curve,
            "final": curve[-1][1]}


@torch.no_grad()
def evaluate(model, batches: list, amp) -> float:
    model.eval()
    total = 0.0
    for x, y in batches:
        with amp():
            logits = model(x)
        total += float(torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(),
                                                         y.flatten()))
    model.train()
    return round(total / len(batches), 4)


def baseline_onehot(path: Path, steps: int) -> tuple[dict, dict]:
    """The one-hot run of an earlier gpu_check.json (its steps must be ``steps``) and what
    it was measured on."""
    earlier = json.loads(Path(path).read_text())
    result = earlier["steps"]["gain"]["result"]
    onehot = result["onehot"]
    if onehot["steps"] != steps:
        raise ValueError(f"{path}: its one-hot run has {onehot['steps']} steps, not {steps}")
    corpus = earlier["steps"].get("corpus", {}).get("result", {})
    return onehot, {"date": earlier.get("date"), "commit": earlier["machine"].get("commit"),
                    "train_tokens_then": corpus.get("train_tokens")}


def gain(device: str, corpus: dict, cfg: dict, check: Check) -> dict:
    """One-hot vs n-gram targets at equal steps; then 0.7x if time is left."""
    val = NgramDataset(corpus["val_path"], cfg["seq"], targets="onehot", shuffle=False)
    it = iter(NgramLoader(val, batch_size=cfg["batch"]))
    val_batches = []
    for _ in range(cfg["eval_batches"]):
        b = next(it, None)
        if b is None:
            break
        val_batches.append((b["input_ids"].to(device), b["labels"].to(device)))
    skip = cfg.get("skip", set())  # (also the gain's own runs: "onehot", "0.7x")
    holds = cfg.get("holds") or [(None, DEFAULT_ALPHA, DEFAULT_TARGETS)]  # hold_for_epochs
    steps = cfg.get("steps")
    out = {"model": cfg["model"], "batch": cfg["batch"], "seq": cfg["seq"]}
    if not steps:  # what fits the time per run, from a probe of the slower (n-gram) step
        probe = train_run(device, corpus["train_path"], val_batches[:1], cfg, 40, True, 1,
                          timed_from=20)  # (the first steps compile, the workers start)
        per_step = probe["s_per_step"] * 1.05 + probe["s_per_step"] * cfg["eval_batches"] \
            * cfg["evals"] / 3 / max(1.0, cfg["run_s"] / probe["s_per_step"])
        runs = ("onehot" not in skip) + len(holds) + 0.7 * ("0.7x" not in skip)
        reserve = 20 + 45 * (not check.dry and "teacher" not in skip)
        run_s = min(cfg["run_s"], max(2.0, (check.left() - reserve) / max(1.0, runs + 0.1)))
        steps = max(10, int(run_s / per_step))
        out["probe_s_per_step"] = round(probe["s_per_step"], 4)
    out["steps"] = steps
    onehot = None
    if cfg.get("baseline"):  # one-hot's run from an earlier check of the same corpus and steps
        onehot, recorded = baseline_onehot(cfg["baseline"], steps)
        out["onehot_from"] = {"file": str(cfg["baseline"]), **recorded,
                              "train_tokens_now": corpus["train_tokens"]}
        out["onehot"] = onehot
    elif "onehot" not in skip:
        onehot = out["onehot"] = train_run(device, corpus["train_path"], val_batches, cfg,
                                           steps, False, cfg["evals"])
        check.write()
    for i, (hold, alpha, kind) in enumerate(holds):
        key = "" if i == 0 else f"_hold{hold}" + ("" if alpha == DEFAULT_ALPHA else
                                                  f"_alpha{alpha}") + \
            ("" if kind == DEFAULT_TARGETS else f"_{kind}")
        ngram = out["ngram" + key] = train_run(device, corpus["train_path"], val_batches, cfg,
                                               steps, True, cfg["evals"], hold=hold, alpha=alpha,
                                               targets_kind=kind)
        out["parameters"] = ngram["parameters"]
        check.write()
        if onehot is None:
            continue
        out["final_gain" + key] = round(onehot["final"] - ngram["final"], 4)
        crossing = next((s for s, v in ngram["curve"] if v <= onehot["final"]), None)
        out["within_run_crossing" + key] = None if crossing is None else \
            {"step": crossing, "fraction": round(crossing / steps, 3)}
        # "never worse": the largest excess over one-hot at the same evaluation
        worst = max((v - w, s) for (s, v), (_, w) in zip(ngram["curve"], onehot["curve"]))
        out["worst_deficit" + key] = {"nats": round(worst[0], 4), "step": worst[1]}
    short = int(0.7 * steps)
    if "0.7x" in skip or onehot is None:
        return out
    if check.left() > 0.7 * out["ngram"]["seconds"] + 10:
        r = train_run(device, corpus["train_path"], val_batches, cfg, short, True,
                      cfg["evals"], hold=holds[0][0], alpha=holds[0][1],
                      targets_kind=holds[0][2])
        out["ngram_0.7x"] = r
        out["budget_0.7x_matches_onehot"] = r["final"] <= onehot["final"]
    else:
        out["ngram_0.7x"] = f"not run: {check.left():.0f} s left"
    return out


def teacher(corpus: dict, check: Check) -> dict:
    """The targets' held-out cross-entropy as a language model (tools/teacher_loss.py): a
    model below it knows more than they do on average. Last, as it takes ~30 s of CPU."""
    if not check.dry and check.left() < 60:
        return {"not run": f"{check.left():.0f} s left"}
    import teacher_loss
    losses = teacher_loss.teacher_loss(ngramds.open(corpus["train_path"]),
                                       ngramds.open(corpus["val_path"]))
    return {f"orders 2-{n}": round(x, 4) for n, x in enumerate(losses, 2)}


def parse_holds(text: str) -> list[tuple[float, float, str]]:
    """"0.25,0.1,0.5:0.5,0.5:1:coconts" -> [(hold, alpha, targets), ...], alpha DEFAULT_ALPHA
    and targets DEFAULT_TARGETS unless given; ValueError for an entry that is not H, H:A or
    H:A:T with H and A in [0, 1] and T allnts or coconts, or one given twice."""
    holds = []
    for entry in filter(None, (h.strip() for h in text.split(","))):
        fields = entry.split(":")
        if len(fields) > 3 or (len(fields) == 3 and fields[2] not in ("coconts", "allnts")):
            raise ValueError(entry)
        hold = float(fields[0])
        alpha = float(fields[1]) if len(fields) >= 2 else DEFAULT_ALPHA
        run = (hold, alpha, fields[2] if len(fields) == 3 else DEFAULT_TARGETS)
        if not (0 <= hold <= 1 and 0 <= alpha <= 1) or run in holds:
            raise ValueError(entry)
        holds.append(run)
    return holds


# -- the report ---------------------------------------------------------------------------
def figures(name: str, r) -> str:
    """A short summary of a step's result for the table."""
    if not isinstance(r, dict):
        return ""
    try:
        if name == "device tests":
            return r.get("summary", "")
        if name == "loss":
            return (f"gradcheck {r['gradcheck_float64']}; bf16 grad rel err "
                    f"{_get(r, 'autocast_bfloat16', 'grad_rel_err')}; fp16 "
                    f"{_get(r, 'autocast_float16', 'grad_rel_err')}; compile graph breaks "
                    f"{r['compile_graph_breaks']}; vocab check {r['vocabulary_check'][:60]}")
        if name == "no host sync":
            return "; ".join(f"{k}: {v}" for k, v in r.items())
        if name == "pinned loader":
            return f"{r['batches']} batches, pinned {r['pinned']}, max prob diff " \
                   f"{r['max_prob_diff']:.1e}"
        if name == "corpus":
            return f"{r['files']} files, train {r['train_tokens'] / 1e6:.1f}M tokens, " \
                   f"held out {r['val_tokens'] / 1e6:.2f}M"
        if name == "speed":
            t = ", ".join(f"batch {x['batch']}: {x['positions_per_s_from_host'] / 1e6:.0f}M/s"
                          f" ({x['positions_per_s_no_graph'] / 1e6:.0f}M/s no graph, "
                          + (f"{x['positions_per_s_compiled'] / 1e6:.0f}M/s compiled, equal "
                             f"{x['compiled_equal']}, compile {x['compile_s']} s"
                             if "positions_per_s_compiled" in x else
                             f"compiled: {x['compiled_error'][:80]}" if "compiled_error" in x
                             else "compiled: not run") + ")"
                          for x in r["targets"])
            s = r["step"]
            return (f"targets {t} (goal 200M: {r['goal_200M_positions_per_s']}); tables "
                    f"{r['targets'][0]['table_bytes_per_token']:.2f} B/token; "
                    f"step ratio {s['isolated_s_per_step']['ratio']:.3f}x (goal 1.03: "
                    f"{r['goal_step_ratio_1.03']}; loss alone "
                    f"{s['isolated_s_per_step']['ratio_loss_alone']:.3f}x); fed steps/s " + ", ".join(
                        f"{v:.2f}" for v in s["fed_steps_per_s"].values()) +
                    "; device " + ", ".join(
                        f"{k} {v['positions_per_s_on_device'] / 1e6:.0f}M/s" for k, v in
                        r["other_targets"]["device_targets"].items()) +
                    f"; loader ({r['other_targets']['loader_workers']} workers) " + ", ".join(
                        f"{k} {v / 1e6:.2f}M/s" for k, v in
                        r["other_targets"]["loader_positions_per_s"].items()))
        if name == "teacher":
            return ", ".join(f"{k}: {v}" for k, v in r.items())
        if name == "gain":
            parts = [f"{r['parameters'] / 1e6:.2f}M params, {r['steps']} steps"]
            if "onehot" in r:
                parts.append(f"one-hot {r['onehot']['final']:.3f}")
            for key, run in r.items():
                if not (key.startswith("ngram") and isinstance(run, dict)):
                    continue
                tail = key[len("ngram"):]
                alpha = run.get("alpha", DEFAULT_ALPHA)
                text = f"n-gram{tail.replace('_', ' ')} (hold {run['hold']:.3g}" + (
                    "" if alpha == DEFAULT_ALPHA else f", alpha {alpha:.3g}") + \
                    f") {run['final']:.3f}"
                if "final_gain" + tail in r:
                    c = r["within_run_crossing" + tail]
                    d = r["worst_deficit" + tail]
                    cross = "none" if c is None else f"{c['step']} ({c['fraction']}x)"
                    text += (f", gain {r['final_gain' + tail]:+.3f}, crossing {cross}, "
                             f"worst vs one-hot {d['nats']:+.3f} at step {d['step']}")
                parts.append(text)
            seven = r.get("ngram_0.7x")
            if isinstance(seven, str):
                parts.append(f"0.7x: {seven}")
            return "; ".join(parts)
    except (KeyError, TypeError) as exc:
        return f"(incomplete: {exc})"
    return ""


def _get(r, key, field):
    v = r.get(key)
    return f"{v[field]:.1e}" if isinstance(v, dict) else "n/a"


def table(result: dict) -> str:
    m = result["machine"]
    lines = [f"gpu_check {'(dry run, CPU) ' if result['dry_run'] else ''}{result['date']}: "
             f"{m.get('gpu', 'no GPU')}, torch {m['torch']}, {m['cpus']} CPUs, commit "
             f"{m.get('commit')}; {result.get('seconds', 0)} s", "",
             "| step | ok | s | figures |", "|---|---|---:|---|"]
    for name, e in result["steps"].items():
        fig = figures(name, e.get("result")) if e["ok"] or e.get("result") else \
            e.get("error", "")
        fig += "".join(f" [warning: {w}]" for w in e.get("warnings", []))
        lines.append(f"| {name} | {'ok' if e['ok'] else 'FAILED'} | {e['seconds']} | "
                     f"{fig.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="directory for the JSON and table")
    p.add_argument("--dry-run", action="store_true",
                   help="every step on the CPU at toy sizes (under a minute)")
    p.add_argument("--budget", type=float, help="seconds for the whole check (default 480; "
                   "the dry run 60)")
    p.add_argument("--skip", default="", help="comma-separated steps to leave out; also the "
                   "gain's runs 'onehot' and '0.7x'")
    p.add_argument("--steps", type=int, help="the gain's steps per run (default: fitted to "
                   "the time left); the gain then runs before the speed step")
    p.add_argument("--holds", default="", help="comma-separated alpha holds, one n-gram run "
                   "each (default: the README's hold_for_epochs); H:A holds alpha A (default "
                   "1) for the fraction H of the steps; H:A:coconts trains on CoCoNTs r = 8 "
                   "instead of the default AllNTs")
    p.add_argument("--baseline", type=Path, help="an earlier gpu_check.json whose one-hot run "
                   "(same corpus, --steps) the n-gram runs are compared with, instead of a "
                   "new one")
    a = p.parse_args()
    cfg = dict(DRY if a.dry_run else FULL)
    if a.budget:
        cfg["budget"] = a.budget
    try:
        cfg["holds"] = parse_holds(a.holds)
        if a.steps is not None and a.steps < 10:
            raise ValueError
    except ValueError:
        p.error(f"--holds takes distinct H, H:A or H:A:T (T allnts or coconts), H and A in "
                f"[0, 1], and --steps at least 10; got --holds {a.holds!r}")
    cfg["steps"] = a.steps
    if a.baseline is not None:
        if not a.baseline.is_file() or a.steps is None:
            p.error("--baseline takes an earlier gpu_check.json, with --steps of its runs")
        cfg["baseline"] = a.baseline
    cfg["skip"] = {s.strip() for s in a.skip.split(",") if s.strip()}
    device = "cpu" if a.dry_run else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        print("gpu_check: error: no CUDA device (use --dry-run to check the script on the "
              "CPU)", file=sys.stderr)
        return 2
    a.out.mkdir(parents=True, exist_ok=True)
    tmp = a.out / "work"
    tmp.mkdir(exist_ok=True)
    if a.dry_run:
        torch.set_num_threads(min(2, torch.get_num_threads()))
    check = Check(a.out, a.dry_run, cfg["budget"])

    def run(name, fn, *args):
        if name in cfg["skip"]:
            return None
        return check.step(name, fn, *args)

    run("device tests", device_tests, device, a.dry_run, min(cfg["tests_timeout"],
                                                             check.left() - 30))
    run("loss", loss_checks, device, a.dry_run)
    run("no host sync", no_sync, device, tmp, a.dry_run)
    run("pinned loader", pinned_loader, device, tmp, a.dry_run)
    corpus = run("corpus", build_corpus, tmp, cfg, a.dry_run)
    if corpus and corpus.get("train_path"):
        later = [("speed", speed, device, corpus["train_path"], cfg),
                 ("gain", gain, device, corpus, cfg, check)]
        for args in later[::-1] if cfg["steps"] else later:  # (a follow-up: its gain first)
            run(*args)
        run("teacher", teacher, corpus, check)
    check.write()
    text = table(check.result)
    print("\n" + text)
    return 0 if all(e["ok"] for e in check.result["steps"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())

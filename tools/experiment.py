"""The training experiment of docs/RESULTS.md: onehot vs CoCoNTs vs AllNTs on Python's standard
library (held-out documents never counted), plus sweeps of order n, r, alpha and residual.

    python tools/experiment.py            # runs what is missing, then prints the tables
    python tools/experiment.py --report   # only the tables, from runs/*.jsonl

Each run is `tools/train.py` with its defaults but 900 steps (about 5 minutes on 2 CPU cores)
plus the options listed in RUNS; logs go to runs/NAME.seedS.jsonl, files to out/.
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT, RUNS_DIR = ROOT / "out", ROOT / "runs"
BASE = {"order": 4}
# name: (train.py options, order of the n-gram file, seeds)
RUNS = {
    "onehot": (["--targets", "onehot"], 4, (0, 1)),
    "coconts-r8": (["--targets", "coconts", "--top-r", "8", "--alpha", "0.5"], 4, (0, 1)),
    "allnts": (["--targets", "allnts", "--max-k", "64", "--alpha", "0.5"], 4, (0, 1)),
    "coconts-r8-a1": (["--targets", "coconts", "--top-r", "8", "--alpha", "1.0"], 4, (0,)),
    "coconts-r8-a0.25": (["--targets", "coconts", "--top-r", "8", "--alpha", "0.25"], 4, (0,)),
    "coconts-r8-n2": (["--targets", "coconts", "--top-r", "8", "--alpha", "0.5"], 2, (0,)),
    "coconts-r8-n6": (["--targets", "coconts", "--top-r", "8", "--alpha", "0.5"], 6, (0,)),
    "coconts-r2": (["--targets", "coconts", "--top-r", "2", "--alpha", "0.5"], 4, (0,)),
}


def ensure_files(order: int) -> dict:
    """Build out/stdlib-nN.ngds (+ .val) once; return build time and sizes."""
    train, val = OUT / f"stdlib-n{order}.ngds", OUT / f"stdlib-n{order}.val.ngds"
    meta = OUT / f"stdlib-n{order}.build.json"
    if not meta.exists():
        OUT.mkdir(exist_ok=True)
        tok = OUT / "stdlib.tokenizer.json"
        cmd = ["ngramds", "build", "--default-corpus", "-o", str(train), "--order", str(order),
               "--val-fraction", "0.05", "--val-output", str(val)]
        if tok.exists():  # every order shares one tokenizer
            (OUT / f"stdlib-n{order}.tokenizer.json").write_bytes(tok.read_bytes())
        t0 = time.perf_counter()
        done = subprocess.run(cmd, check=True, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        # the builder's closing line of the training file: "... in 2.31s (3.59M tokens/s)"
        build_s = float(re.findall(r" in ([0-9.]+)s \(", done.stderr)[-1])
        if not tok.exists():
            tok.write_bytes((OUT / f"stdlib-n{order}.tokenizer.json").read_bytes())
        meta.write_text(json.dumps({"seconds_incl_tokenising": seconds, "build_s": build_s,
                                    "bytes": train.stat().st_size}))
    return json.loads(meta.read_text())


def run_all() -> None:
    RUNS_DIR.mkdir(exist_ok=True)
    for name, (options, order, seeds) in RUNS.items():
        ensure_files(order)
        for seed in seeds:
            log = RUNS_DIR / f"{name}.seed{seed}.jsonl"
            if log.exists():
                continue
            tmp = log.with_suffix(".partial")
            tmp.unlink(missing_ok=True)
            cmd = [sys.executable, str(ROOT / "tools" / "train.py"),
                   "--train", str(OUT / f"stdlib-n{order}.ngds"),
                   "--val", str(OUT / f"stdlib-n{order}.val.ngds"),
                   "--seed", str(seed), "--steps", "900", "--out", str(tmp), *options]
            print(f"== {name} seed {seed}: {' '.join(cmd)}", flush=True)
            subprocess.run(cmd, check=True)
            tmp.rename(log)


def load(name: str) -> list[list[dict]]:
    runs = []
    for log in sorted(RUNS_DIR.glob(f"{name}.seed*.jsonl")):
        runs.append([json.loads(x) for x in log.read_text().splitlines() if x.strip()])
    return runs


def report() -> None:
    base = load("onehot")
    if not base:
        raise SystemExit("no onehot runs yet")
    target = statistics.mean(r[-1]["val_loss"] for r in base)
    print(f"baseline: onehot final held-out loss {target:.4f} (mean of {len(base)} seeds)\n")
    print("| run | order | seeds | final val loss | final val ppl | steps to onehot's final "
          "loss | s/step (train) | build s | file MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, (_, order, _) in RUNS.items():
        runs = load(name)
        if not runs:
            continue
        finals = [r[-1]["val_loss"] for r in runs]
        reach = []
        for r in runs:
            hit = [x["step"] for x in r if x["val_loss"] <= target]
            reach.append(hit[0] if hit else None)
        steps = ", ".join("-" if s is None else str(s) for s in reach)
        cfg = runs[0][-1]["config"]
        per_step = statistics.median(cfg["batch_size"] * cfg["seq_len"] / x["tokens_per_s"]
                                     for r in runs for x in r)
        meta = ensure_files(order)
        spread = f" ± {statistics.pstdev(finals):.4f}" if len(finals) > 1 else ""
        ppl = statistics.mean(r[-1]["val_ppl"] for r in runs)
        print(f"| {name} | {order} | {len(runs)} | {statistics.mean(finals):.4f}{spread} | "
              f"{ppl:.2f} | {steps} | {per_step:.3f} | {meta.get('build_s', float('nan')):.2f} | "
              f"{meta['bytes'] / 2**20:.1f} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--report", action="store_true", help="only print the tables")
    a = ap.parse_args()
    if not a.report:
        run_all()
    report()


if __name__ == "__main__":
    main()

"""The training experiment of docs/RESULTS.md: onehot vs CoCoNTs vs AllNTs on Python's standard
library (held-out documents never counted), sweeps of order n, r and alpha, and single-order vs
backoff vs interpolated targets on two corpora (the stdlib, and package docs: tools/docs_corpus.py).

    python tools/experiment.py            # runs what is missing, then prints the tables
    python tools/experiment.py --report   # only the tables, from docs/runs/*.jsonl

Each run is `ngramds-train run` (ngramds/train) with its defaults but 900 steps (about 5
minutes on 2 CPU cores) plus the options listed in RUNS; logs go to docs/runs/NAME.seedS.jsonl,
files to out/. Each corpus's runs are compared with its own onehot run.
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
OUT, RUNS_DIR = ROOT / "out", ROOT / "docs" / "runs"
CORPORA = ("stdlib", "docs")
# the runs of this table kept alpha constant (ngramds-train's default now decays it: --alpha-hold)
COCO = ["--targets", "coconts", "--top-r", "8", "--alpha-hold", "1"]
# name: (`ngramds-train run` options, n-gram file (corpus-orders), seeds)
RUNS = {
    "onehot": (["--targets", "onehot"], "stdlib-n4", (0, 1)),
    "coconts-r8": (COCO + ["--alpha", "0.5"], "stdlib-n4", (0, 1)),
    "allnts": (["--targets", "allnts", "--max-k", "64", "--alpha", "0.5", "--alpha-hold", "1"],
               "stdlib-n4", (0, 1)),
    "coconts-r8-a1": (COCO + ["--alpha", "1.0"], "stdlib-n4", (0,)),
    "coconts-r8-a0.25": (COCO + ["--alpha", "0.25"], "stdlib-n4", (0,)),
    "coconts-r8-n2": (COCO + ["--alpha", "0.5"], "stdlib-n2", (0,)),
    "coconts-r8-n6": (COCO + ["--alpha", "0.5"], "stdlib-n6", (0,)),
    "coconts-r2": (["--targets", "coconts", "--top-r", "2", "--alpha", "0.5", "--alpha-hold", "1"],
                   "stdlib-n4", (0,)),
    # several orders (alpha 1.0, CoCoNTs r = 8): compare with coconts-r8-a1
    "backoff": (COCO + ["--mixing", "backoff"], "stdlib-o1-4", (0,)),
    "witten-bell": (COCO + ["--mixing", "witten-bell"], "stdlib-o1-4", (0,)),
    "witten-bell-o2-4": (COCO + ["--mixing", "witten-bell", "--orders", "2,3,4"], "stdlib-o1-4",
                         (0,)),
    "docs-onehot": (["--targets", "onehot"], "docs-o1-4", (0,)),
    "docs-coconts-r8": (COCO + ["--mixing", "none"], "docs-o1-4", (0,)),
    "docs-backoff": (COCO + ["--mixing", "backoff"], "docs-o1-4", (0,)),
    "docs-witten-bell": (COCO + ["--mixing", "witten-bell"], "docs-o1-4", (0,)),
    "docs-witten-bell-o2-4": (COCO + ["--mixing", "witten-bell", "--orders", "2,3,4"],
                              "docs-o1-4", (0,)),
}


def ensure_files(name: str) -> dict:
    """Build out/NAME.ngds (+ .val) once, NAME = corpus-nN (one order) or corpus-o1-4 (orders
    1..4); return build time and sizes."""
    corpus, orders = name.split("-", 1)
    train, val = OUT / f"{name}.ngds", OUT / f"{name}.val.ngds"
    meta = OUT / f"{name}.build.json"
    if not meta.exists():
        OUT.mkdir(exist_ok=True)
        order_opts = (["--order", orders[1:]] if orders.startswith("n")
                      else ["--orders", orders[1:]])
        cmd = ["ngramds", "build", "-o", str(train), *order_opts,
               "--val-fraction", "0.05", "--val-output", str(val)]
        tok = OUT / f"{corpus}.tokenizer.json"
        if corpus == "docs":
            if not (OUT / "docs.jsonl").exists():
                subprocess.run([sys.executable, str(ROOT / "tools" / "docs_corpus.py"),
                                str(OUT / "docs")], check=True)
            cmd += [str(OUT / "docs.jsonl"), "--tokenizer", str(tok)]
        else:
            cmd += ["--default-corpus"]
            if tok.exists():  # every order shares one tokenizer
                (OUT / f"{name}.tokenizer.json").write_bytes(tok.read_bytes())
        t0 = time.perf_counter()
        done = subprocess.run(cmd, check=True, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        # the builder's closing line of the training file: "... in 2.31s (3.59M tokens/s)"
        build_s = float(re.findall(r" in ([0-9.]+)s \(", done.stderr)[-1])
        if not tok.exists():
            tok.write_bytes((OUT / f"{name}.tokenizer.json").read_bytes())
        meta.write_text(json.dumps({"seconds_incl_tokenising": seconds, "build_s": build_s,
                                    "bytes": train.stat().st_size}))
    return json.loads(meta.read_text())


def run_all() -> None:
    RUNS_DIR.mkdir(exist_ok=True)
    for name, (options, files, seeds) in RUNS.items():
        ensure_files(files)
        for seed in seeds:
            log = RUNS_DIR / f"{name}.seed{seed}.jsonl"
            if log.exists():
                continue
            tmp = log.with_suffix(".partial")
            tmp.unlink(missing_ok=True)
            cmd = [sys.executable, "-m", "ngramds.train", "run",
                   "--train", str(OUT / f"{files}.ngds"),
                   "--val", str(OUT / f"{files}.val.ngds"),
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
    for corpus in CORPORA:
        names = [n for n, (_, files, _) in RUNS.items() if files.startswith(corpus + "-")]
        base = load(next(n for n in names if n.endswith("onehot")))
        if not base:
            continue
        target = statistics.mean(r[-1]["val_loss"] for r in base)
        print(f"\n{corpus}: onehot final held-out loss {target:.4f} (mean of {len(base)} "
              "seeds)\n")
        print("| run | file | seeds | final val loss | final val ppl | steps to onehot's final "
              "loss | s/step (train) | build s | file MiB |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for name in names:
            runs = load(name)
            if runs:
                print(_row(name, RUNS[name][1], runs, target))


def _row(name: str, files: str, runs: list, target: float) -> str:
    finals = [r[-1]["val_loss"] for r in runs]
    reach = []
    for r in runs:
        hit = [x["step"] for x in r if x["val_loss"] <= target]
        reach.append(hit[0] if hit else None)
    steps = ", ".join("-" if s is None else str(s) for s in reach)
    cfg = runs[0][-1]["config"]
    per_step = statistics.median(cfg["batch_size"] * cfg["seq_len"] / x["tokens_per_s"]
                                 for r in runs for x in r)
    meta = ensure_files(files)
    spread = f" ± {statistics.pstdev(finals):.4f}" if len(finals) > 1 else ""
    ppl = statistics.mean(r[-1]["val_ppl"] for r in runs)
    return (f"| {name} | {files} | {len(runs)} | {statistics.mean(finals):.4f}{spread} | "
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

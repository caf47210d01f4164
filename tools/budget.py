"""Budget-matched training experiment (docs/RESULTS.md, "What a trainer pays"): one-hot
targets at N steps against n-gram targets at budgets f x N, each run with its own full
schedule (warm-up, cosine learning rate, alpha schedule), on one corpus at a time.

    python tools/budget.py stdlib                 # runs what is missing, then the table
    python tools/budget.py man --report           # only the table, from runs/budget/
    python tools/budget.py all --report           # every corpus

Corpora: stdlib (Python source, the default corpus), docs (package documentation,
tools/docs_corpus.py), cheaders and man (tools/corpora.py). Files are built once with the
default orders (2-4) and a 5% held-out split into out/budget/. Runs are `ngramds-train run`
with its defaults (the shipped targets: CoCoNTs r = 8, Witten-Bell over orders 2-4,
alpha 1) but --steps f x N and --eval-every 50; logs go to runs/budget/.

The table: one-hot's final held-out loss L at N; each n-gram budget's final loss; the budget
(as a fraction of N) at which the n-gram runs match L, interpolated linearly between the two
budgets around it; the loss gain at equal budget; and the within-run crossing (the first
evaluation of the n-gram run at N at or below L). Cost: (1 + sum of fractions + 1) x N steps
per corpus and seed, about 0.3 s per step on 2 idle CPU cores at the defaults.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT, RUNS = ROOT / "out" / "budget", ROOT / "runs" / "budget"
CORPORA = ("stdlib", "docs", "cheaders", "man")


def ensure_files(corpus: str) -> tuple[Path, Path]:
    """out/budget/CORPUS.ngds and its held-out CORPUS.val.ngds (built once)."""
    train, val = OUT / f"{corpus}.ngds", OUT / f"{corpus}.val.ngds"
    if train.exists() and val.exists():
        return train, val
    OUT.mkdir(parents=True, exist_ok=True)
    cmd = ["ngramds", "build", "-o", str(train), "--val-fraction", "0.05", "--val-output",
           str(val), "-q"]
    if corpus == "stdlib":
        cmd.append("--default-corpus")
    else:
        text, tok = OUT / f"{corpus}.jsonl", OUT / f"{corpus}.tokenizer.json"
        if not text.exists():
            tool = "docs_corpus.py" if corpus == "docs" else "corpora.py"
            args = [str(OUT / "docs")] if corpus == "docs" else [corpus, str(OUT)]
            subprocess.run([sys.executable, str(ROOT / "tools" / tool), *args], check=True)
        cmd += [str(text), "--tokenizer", str(tok), "--eos-id", "0"]
    print("==", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    return train, val


def run(corpus: str, name: str, steps: int, seed: int, options: list[str]) -> list[dict]:
    """The log of one run (made unless it exists)."""
    log = RUNS / f"{corpus}.{name}.seed{seed}.jsonl"
    if not log.exists():
        train, val = ensure_files(corpus)
        RUNS.mkdir(parents=True, exist_ok=True)
        tmp = log.with_suffix(".partial")
        tmp.unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "ngramds.train", "run", "--train", str(train), "--val",
               str(val), "--steps", str(steps), "--eval-every", "50", "--seed", str(seed),
               "--warmup", str(max(1, round(100 * steps / 800))), "--out", str(tmp), *options]
        print("==", " ".join(cmd), flush=True)
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        print(f"   {time.perf_counter() - t0:.0f} s", flush=True)
        tmp.rename(log)
    return [json.loads(x) for x in log.read_text().splitlines() if x.strip()]


def matched_budget(points: list[tuple[float, float]], target: float) -> str:
    """The smallest budget at which the final loss reaches ``target``, interpolating the
    (budget, final loss) points linearly: "0.62x"; "<= 0.70x" when the smallest budget tried
    already reaches it; "> 1.00x" when none does."""
    points = sorted(points)
    if not points:
        return "-"
    if points[0][1] <= target:
        return f"<= {points[0][0]:.2f}x"
    for (b0, l0), (b1, l1) in zip(points, points[1:]):
        if l1 <= target < l0:
            return f"{b0 + (b1 - b0) * (l0 - target) / (l0 - l1):.2f}x"
    return f"> {points[-1][0]:.2f}x"


def experiment(corpus: str, steps: int, fractions: list[float], seed: int, hold: float,
               const: bool, report_only: bool) -> str | None:
    get = (lambda *a: _load(corpus, a[0], a[2])) if report_only else \
        (lambda *a: run(corpus, *a))
    onehot = get("onehot", steps, seed, ["--targets", "onehot"])
    if not onehot:
        return None
    target = onehot[-1]["val_loss"]
    sched = ["--alpha-hold", str(hold)]
    finals, crossing = [], {}
    for f in fractions:
        n = round(f * steps)
        log = get(f"ngram-hold{hold}-{n}", n, seed, sched)
        if log:
            finals.append((f, log[-1]["val_loss"]))
    const_opts = ["--alpha-hold", "1"]
    for name, opts in ((f"ngram-hold{hold}-{steps}", sched),) + ((("ngram-const", const_opts),)
                                                                if const else ()):
        log = get(name if name != "ngram-const" else f"ngram-const-{steps}", steps, seed, opts)
        if log:
            hit = next((r["step"] for r in log if r["val_loss"] <= target), None)
            crossing[name] = (hit, log[-1]["val_loss"])
    matched = matched_budget(finals, target)
    const = crossing.get("ngram-const")
    full = dict(finals).get(1.0)
    s_step = sorted(r["config"]["batch_size"] * r["config"]["seq_len"] / r["tokens_per_s"]
                    for r in onehot)[len(onehot) // 2]
    cells = " / ".join(f"{f:g}: {loss:.3f}" for f, loss in finals)
    hold_hit = crossing.get(f"ngram-hold{hold}-{steps}", (None,))[0]
    return (f"| {corpus} | {target:.3f} | {cells} | "
            f"{matched} | {_gain(target, full)} | {_gain(target, const and const[1])} | "
            f"{_x(hold_hit, steps)} | {_x(const and const[0], steps)} | "
            f"{s_step:.2f} |")


def _gain(target: float, loss: float | None) -> str:
    return "-" if loss is None else f"{target - loss:+.3f}"


def _x(step, steps) -> str:
    return "-" if step is None else f"{step} ({step / steps:.2f}x)"


def _load(corpus: str, name: str, seed: int) -> list[dict]:
    log = RUNS / f"{corpus}.{name}.seed{seed}.jsonl"
    return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus", choices=(*CORPORA, "all"))
    ap.add_argument("--steps", type=int, default=600, help="one-hot's budget N (default 600)")
    ap.add_argument("--fractions", default="0.5,0.7,1.0",
                    help="n-gram budgets as fractions of N (default 0.5,0.7,1.0)")
    ap.add_argument("--hold", type=float, default=0.5, help="--alpha-hold of the n-gram runs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-const", action="store_true",
                    help="skip the n-gram run with alpha 1 throughout (equal budget)")
    ap.add_argument("--report", action="store_true", help="only the table, from the logs")
    a = ap.parse_args()
    fractions = [float(x) for x in a.fractions.split(",")]
    rows = [experiment(c, a.steps, fractions, a.seed, a.hold, not a.no_const, a.report)
            for c in (CORPORA if a.corpus == "all" else [a.corpus])]
    print(f"\nN = {a.steps} steps, seed {a.seed}; n-gram runs: defaults with alpha held for "
          f"{a.hold:g} of the steps, then linear to 0\n")
    print("| corpus | one-hot loss at N | n-gram final loss by budget | budget matching "
          "one-hot | gain at N (alpha schedule) | gain at N (alpha 1 throughout) | "
          "within-run crossing (schedule) | within-run crossing (alpha 1) | s/step |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    print("\n".join(r for r in rows if r))


if __name__ == "__main__":
    main()

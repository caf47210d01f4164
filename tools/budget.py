"""Budget-matched training experiment (docs/RESULTS.md, "What a trainer pays"): one-hot
targets at N steps against n-gram targets at budgets f x N, each run with its own full
schedule (warm-up, cosine learning rate, alpha schedule), on one corpus at a time.

    python tools/budget.py stdlib                 # runs what is missing, then the table
    python tools/budget.py man --report           # only the table, from docs/runs/budget/
    python tools/budget.py all --report           # every corpus
    python tools/budget.py all --report --seed 0,1,2 --plot docs/budget.png   # and the plot
    python tools/budget.py man-small --steps 1000 --seed 0,1 --fractions 0.7,1.0 --no-const
                                                  # several epochs, two seeds

Corpora: stdlib (Python source, the default corpus), docs (package documentation,
tools/docs_corpus.py), cheaders and man (tools/corpora.py), the English prose corpora kernel,
pydoc, perldoc, wordnet, manuals, dictionaries, speeches, langref and guides
(tools/corpora.py; their packages' files under --root; "prose" runs the nine, "every" the
code and prose corpora; the table marks those held out of every choice of default), and
man-small: the first 198 documents (5%) of out/budget/man.jsonl with man's tokenizer, about
271k tokens, so that 1000 steps of 8 x 128 tokens are about 4 epochs of its training part.
Files are built once with the default orders (2-4) and a 5% held-out split into out/budget/.
Runs are `ngramds-train run` with its defaults (the shipped targets: AllNTs up to 64 entries per
order, Witten-Bell over orders 2-4, alpha 1; --targets coconts: CoCoNTs r = 8, the targets
of 0.6 and before) but --steps f x N, --warmup N/8, --eval-every 50 and --threads 1
(--threads); logs go to docs/runs/budget/. --seed takes a list; each seed is a separate row.

The table: one-hot's final held-out loss L at N; each n-gram budget's final loss; the budget
(as a fraction of N) at which the n-gram runs match L, interpolated linearly between the two
budgets around it; the loss gain at equal budget; and the within-run crossing (the first
evaluation of the n-gram run at N at or below L). A second table lists every run: its final
and best held-out loss (a final loss above the best is overfitting), the evaluations at
which an n-gram run is worse than one-hot at the same step, and its wall time. Cost:
(1 + sum of fractions [+ 1 without --no-const]) x N steps per corpus and seed, about 0.22 s
per step with --threads 1 on an otherwise idle core at the defaults. "all" is the four large
corpora (not man-small).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from ngramds.targets import TargetConfig

ROOT = Path(__file__).resolve().parent.parent
OUT, RUNS = ROOT / "out" / "budget", ROOT / "docs" / "runs" / "budget"
CORPORA = ("stdlib", "docs", "cheaders", "man")
# the prose corpora (tools/corpora.py --root)
PROSE = ("kernel", "pydoc", "perldoc", "wordnet", "manuals", "dictionaries", "speeches",
         "langref", "guides")
# corpora made of the first documents of another corpus's JSONL file, with its tokenizer
SUBSETS = {"man-small": ("man", 198)}  # 198 of 3956: 5%
# corpora no default was chosen or checked on (escape, orders, mixing, r, hold, alpha_count):
# stdlib and docs chose them, kernel and wordnet checked escape and alpha_count on prose, and
# man-small (the first 5% of man) chose the hold over several epochs
HELD_OUT = ("cheaders", "pydoc", "perldoc", "manuals", "dictionaries", "speeches", "langref",
            "guides")


def ensure_files(corpus: str) -> tuple[Path, Path]:
    """out/budget/CORPUS.ngds and its held-out CORPUS.val.ngds (built once)."""
    train, val = OUT / f"{corpus}.ngds", OUT / f"{corpus}.val.ngds"
    if train.exists() and val.exists():
        return train, val
    OUT.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "ngramds.cli", "build", "-o", str(train), "--val-fraction",
           "0.05", "--val-output", str(val), "-q"]
    if corpus == "stdlib":
        cmd.append("--default-corpus")
    elif corpus in SUBSETS:
        parent, docs = SUBSETS[corpus]
        text, tok = OUT / f"{corpus}.jsonl", OUT / f"{parent}.tokenizer.json"
        if not text.exists():
            with (OUT / f"{parent}.jsonl").open() as f:
                text.write_text("".join(line for _, line in zip(range(docs), f)))
        cmd += [str(text), "--tokenizer", str(tok), "--eos-id", "0"]
    else:
        text, tok = OUT / f"{corpus}.jsonl", OUT / f"{corpus}.tokenizer.json"
        if not text.exists():
            tool = "docs_corpus.py" if corpus == "docs" else "corpora.py"
            args = [str(OUT / "docs")] if corpus == "docs" else [corpus, str(OUT)]
            if corpus in PROSE:
                args += ["--root", str(ROOT_DIR)]
            subprocess.run([sys.executable, str(ROOT / "tools" / tool), *args], check=True)
        cmd += [str(text), "--tokenizer", str(tok), "--eos-id", "0"]
    print("==", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    return train, val


THREADS = 1  # torch threads per run (main: --threads)
TARGETS = TargetConfig().targets  # the n-gram runs' targets (--targets)
ESCAPE = TargetConfig().escape  # Witten-Bell's escape weight of the n-gram runs (--escape)
ALPHA_COUNT = TargetConfig().alpha_count  # k of the count-aware soft weight (--alpha-count)
ROOT_DIR = Path("/")  # where the prose packages' files are (--root)


def run(corpus: str, name: str, steps: int, seed: int, options: list[str]) -> list[dict]:
    """The log of one run (made unless it exists)."""
    log = _log_path(corpus, name, seed)
    if not log.exists():
        train, val = ensure_files(corpus)
        RUNS.mkdir(parents=True, exist_ok=True)
        tmp = log.with_suffix(".partial")
        tmp.unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "ngramds.train", "run", "--train", str(train), "--val",
               str(val), "--steps", str(steps), "--eval-every", "50", "--seed", str(seed),
               "--warmup", str(max(1, round(100 * steps / 800))), "--threads", str(THREADS),
               "--out", str(tmp), *options]
        print("==", " ".join(cmd), flush=True)
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        print(f"   {time.perf_counter() - t0:.0f} s", flush=True)
        tmp.rename(log)
    return _load(corpus, name, seed)


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


def ngram_name(hold: float | None, steps: int) -> str:
    """The log name of an n-gram run: "ngram-hold0.5-600" ("ngram-const-600": alpha 1
    throughout, ``hold`` None); with an escape weight other than Witten-Bell's 1
    (:data:`ESCAPE`), "ngram-esc3-hold0.5-600"; "ngram" is CoCoNTs r = 8, "allnts-..." AllNTs
    (:data:`TARGETS`)."""
    kind = "const" if hold is None else f"hold{hold}"  # as the runs were first named
    count = f"ac{ALPHA_COUNT:g}-" if ALPHA_COUNT else ""
    prefix = "ngram" if TARGETS == "coconts" else TARGETS
    return f"{prefix}-{f'esc{ESCAPE:g}-' if ESCAPE != 1 else ''}{count}{kind}-{steps}"


def experiment(corpus: str, steps: int, fractions: list[float], seed: int, hold: float,
               const: bool, report_only: bool) -> tuple[str, float | None] | None:
    """The table row of one corpus and seed (running what is missing unless
    ``report_only``), and the loss gain at equal budget (None without that run)."""
    get = (lambda *a: _load(corpus, a[0], a[2])) if report_only else \
        (lambda *a: run(corpus, *a))
    onehot = get(_onehot_name(corpus, steps), steps, seed, ["--targets", "onehot"])
    if not onehot:
        return None
    target = onehot[-1]["val_loss"]
    sched = ["--targets", TARGETS, "--alpha-hold", str(hold), "--escape", str(ESCAPE),
             "--alpha-count", str(ALPHA_COUNT)]
    finals, crossing = [], {}
    for f in fractions:
        n = round(f * steps)
        log = get(ngram_name(hold, n), n, seed, sched)
        if log:
            finals.append((f, log[-1]["val_loss"]))
    const_opts = ["--targets", TARGETS, "--alpha-hold", "1", "--escape", str(ESCAPE)]
    for name, opts in ((ngram_name(hold, steps), sched),) + ((("ngram-const", const_opts),)
                                                                if const else ()):
        log = get(name if name != "ngram-const" else ngram_name(None, steps), steps, seed, opts)
        if log:
            hit = next((r["step"] for r in log if r["val_loss"] <= target), None)
            crossing[name] = (hit, log[-1]["val_loss"])
    matched = matched_budget(finals, target)
    const = crossing.get("ngram-const")
    full = dict(finals).get(1.0)
    s_step = sorted(r["config"]["batch_size"] * r["config"]["seq_len"] / r["tokens_per_s"]
                    for r in onehot)[len(onehot) // 2]
    cells = " / ".join(f"{f:g}: {loss:.3f}" for f, loss in finals)
    hold_hit = crossing.get(ngram_name(hold, steps), (None,))[0]
    name = f"{corpus} (held out)" if corpus in HELD_OUT else corpus
    return (f"| {name} | {seed} | {target:.3f} | {cells} | "
            f"{matched} | {_gain(target, full)} | {_gain(target, const and const[1])} | "
            f"{_x(hold_hit, steps)} | {_x(const and const[0], steps)} | "
            f"{s_step:.2f} |"), (None if full is None else target - full)


def run_rows(corpus: str, steps: int, fractions: list[float], seed: int, hold: float,
             const: bool) -> list[str]:
    """One row per run of this corpus and seed whose log exists: final and best held-out
    loss, the evaluations at which an n-gram run is worse than one-hot at the same step,
    and the run's wall time (evaluations included)."""
    onehot = _load(corpus, _onehot_name(corpus, steps), seed)
    if not onehot:
        return []
    ref = {r["step"]: r["val_loss"] for r in onehot}
    names = [(_onehot_name(corpus, steps), steps)]
    names += [(ngram_name(hold, round(f * steps)), round(f * steps))
              for f in sorted(set(fractions) | {1.0})]
    names += [(ngram_name(None, steps), steps)] if const else []
    rows = []
    for name, n in names:
        log = _load(corpus, name, seed)
        if not log:
            continue
        final, best = log[-1], min(log, key=lambda r: r["val_loss"])
        worse = "-"
        if not name.startswith("onehot"):
            diffs = [(r["val_loss"] - ref[r["step"]], r["step"]) for r in log
                     if r["step"] in ref]
            bad = [(d, st) for d, st in diffs if d > 0]
            worse = "none" if not bad else (f"{len(bad)} of {len(diffs)} (most "
                                            f"{max(bad)[0]:+.4f} at {max(bad)[1]})")
        rows.append(f"| {corpus} | {seed} | {name} | {final['val_loss']:.3f} | "
                    f"{best['val_loss']:.3f} ({best['step']}) | "
                    f"{final['val_loss'] - best['val_loss']:+.3f} | {worse} | "
                    f"{final['wall_s']:.0f} ({final['wall_s'] / n:.2f}) |")
    return rows


def _onehot_name(corpus: str, steps: int) -> str:
    """The one-hot run's log name: "onehot" for the first runs (N = 600 on the four large
    corpora), "onehot-N" for every other budget or corpus."""
    return "onehot" if steps == 600 and corpus in CORPORA else f"onehot-{steps}"


def _gain(target: float, loss: float | None) -> str:
    return "-" if loss is None else f"{target - loss:+.3f}"


def _x(step, steps) -> str:
    return "-" if step is None else f"{step} ({step / steps:.2f}x)"


def _log_path(corpus: str, name: str, seed: int) -> Path:
    return RUNS / f"{corpus}.{name}.seed{seed}.jsonl"


def _load(corpus: str, name: str, seed: int) -> list[dict]:
    """The records of a run's log; none when it was not run."""
    log = _log_path(corpus, name, seed)
    return [json.loads(x) for x in log.read_text().splitlines() if x.strip()] \
        if log.exists() else []


def plot(path: str, corpora, steps: int, fractions: list[float], seeds: list[int],
         hold: float) -> None:
    """Final held-out loss against the budget (fraction of N), one panel per corpus: each
    seed's n-gram runs as a line, one-hot's loss at N as a dashed level; where a line crosses
    the level is the matched budget."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(corpora), figsize=(3.2 * len(corpora), 3.0), squeeze=False)
    for ax, c in zip(axes[0], corpora):
        for seed in seeds:
            onehot = _load(c, _onehot_name(c, steps), seed)
            points = [(f, _load(c, ngram_name(hold, round(f * steps)), seed))
                      for f in fractions]
            points = [(f, log[-1]["val_loss"]) for f, log in points if log]
            if points:
                line, = ax.plot(*zip(*points), "o-", label=f"n-gram, seed {seed}")
            if onehot:
                ax.axhline(onehot[-1]["val_loss"], ls="--", lw=1,
                           color=line.get_color() if points else "k",
                           label=f"one-hot at N, seed {seed}")
        ax.set_title(c)
        ax.set_xlabel(f"budget (fraction of N = {steps})")
    axes[0][0].set_ylabel("final held-out loss (nats)")
    axes[0][-1].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def main() -> None:
    global THREADS, TARGETS, ESCAPE, ALPHA_COUNT, ROOT_DIR
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus", choices=(*CORPORA, *PROSE, *SUBSETS, "all", "prose", "every"))
    ap.add_argument("--alpha-count", type=float, default=ALPHA_COUNT,
                    help="k of the n-gram runs' count-aware soft weight (0: off)")
    ap.add_argument("--root", type=Path, default=ROOT_DIR,
                    help="prose corpora: where their packages' files are (tools/corpora.py)")
    ap.add_argument("--steps", type=int, default=600, help="one-hot's budget N (default 600)")
    ap.add_argument("--fractions", default="0.5,0.7,1.0",
                    help="n-gram budgets as fractions of N (default 0.5,0.7,1.0)")
    ap.add_argument("--hold", type=float, default=0.5, help="--alpha-hold of the n-gram runs")
    ap.add_argument("--escape", type=float, default=ESCAPE,
                    help=f"Witten-Bell's escape weight of the n-gram runs (default {ESCAPE:g}, "
                         "the library's; runs are named ngram-escE-... when it is not 1)")
    ap.add_argument("--targets", choices=("allnts", "coconts"), default=TARGETS,
                    help=f"the n-gram runs' targets (default {TARGETS}, the library's; "
                         "coconts: r = 8, runs named ngram-..., allnts: allnts-...)")
    ap.add_argument("--seed", default="0", help="seeds, e.g. 0,1 (default 0)")
    ap.add_argument("--threads", type=int, default=THREADS,
                    help=f"torch threads per run (default {THREADS}; 0: torch's default)")
    ap.add_argument("--no-const", action="store_true",
                    help="skip the n-gram run with alpha 1 throughout (equal budget)")
    ap.add_argument("--report", action="store_true", help="only the table, from the logs")
    ap.add_argument("--plot", metavar="PNG", help="also plot final loss vs budget (with --report)")
    a = ap.parse_args()
    THREADS, TARGETS, ESCAPE, ALPHA_COUNT, ROOT_DIR = (a.threads, a.targets, a.escape,
                                                       a.alpha_count, a.root)
    fractions = [float(x) for x in a.fractions.split(",")]
    seeds = [int(x) for x in a.seed.split(",")]
    corpora = {"all": CORPORA, "prose": PROSE, "every": CORPORA + PROSE}.get(a.corpus, [a.corpus])
    rows, gains = [], {}
    for c in corpora:
        for seed in seeds:
            row = experiment(c, a.steps, fractions, seed, a.hold, not a.no_const, a.report)
            if row:
                rows.append(row[0])
                if row[1] is not None:
                    gains.setdefault(c, []).append(row[1])
    print(f"\nN = {a.steps} steps, seeds {a.seed}; n-gram runs: {TARGETS}, escape {ESCAPE:g}, "
          f"with alpha held for {a.hold:g} of the steps, then linear to 0\n")
    print("| corpus | seed | one-hot loss at N | n-gram final loss by budget | budget matching "
          "one-hot | gain at N (alpha schedule) | gain at N (alpha 1 throughout) | "
          "within-run crossing (schedule) | within-run crossing (alpha 1) | s/step |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))
    for c, g in gains.items():
        if len(g) > 1:
            print(f"\n{c}: gain at N (alpha schedule) over {len(g)} seeds: mean "
                  f"{sum(g) / len(g):+.3f}, range {min(g):+.3f} to {max(g):+.3f}")
    print("\n| corpus | seed | run | final loss | best loss (step) | final - best | "
          "evaluations worse than one-hot at the same step | wall s (s/step) |")
    print("|---|---:|---|---:|---:|---:|---|---:|")
    print("\n".join(r for c in corpora for seed in seeds
                    for r in run_rows(c, a.steps, fractions, seed, a.hold, not a.no_const)))
    if a.plot:
        plot(a.plot, corpora, a.steps, fractions, seeds, a.hold)


if __name__ == "__main__":
    main()

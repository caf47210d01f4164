"""The ``ngramds-train`` command: train a small GPT on an ngramds file with one-hot or n-gram
targets, evaluate it on held-out documents, compare target kinds, plot held-out loss.

    ngramds build corpus.jsonl --tokenizer tok.json --eos-id 0 -o train.ngds \\
        --val-fraction 0.05 --val-output val.ngds
    ngramds-train compare --train train.ngds --val val.ngds --out-dir runs
    ngramds-train run --train train.ngds --val val.ngds --targets allnts --out runs/allnts.jsonl
    ngramds-train plot runs/*.jsonl -o val_loss.png
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from ..cli import CommandParser, run_command
from ..errors import InputError, NgramdsError
from ..version import __version__
from .plot import PLOT_HINT, have_matplotlib

# (the run's options and the targets' kernels load in main(), inside its handling of Ctrl-C)
PROG = "ngramds-train"
COMPARE_DEFAULT = ("onehot", "allnts")  # one-hot and the library's default targets


def _defaults() -> dict:
    """RunConfig's fields and their defaults (``target``: the default TargetConfig)."""
    from .config import RunConfig
    return {f.name: f.default for f in dataclasses.fields(RunConfig)}


def _kinds(text: str) -> list[str]:
    """'onehot,coconts' -> the target kinds, each once."""
    from .config import TARGET_KINDS
    kinds = [k.strip() for k in text.split(",")]
    bad = [k for k in kinds if k not in TARGET_KINDS]
    if bad or len(set(kinds)) != len(kinds):
        raise argparse.ArgumentTypeError(f"expected distinct target kinds out of "
                                         f"{','.join(TARGET_KINDS)}, got {text!r}")
    return kinds


def _run_options(p: argparse.ArgumentParser, compare: bool) -> None:
    """The options of RunConfig; unset ones take RunConfig's defaults."""
    from ..targets.config import add_target_flags
    defaults = _defaults()

    def opt(group, flag: str, kind, text: str, **kw) -> None:
        default = defaults[flag[2:].replace("-", "_")]
        shown = kw.pop("shown", default)
        metavar = {int: "N", float: "X"}.get(kind)
        group.add_argument(flag, type=kind, default=argparse.SUPPRESS, metavar=metavar,
                           help=f"{text} (default: {shown})", **kw)

    p.add_argument("--train", required=True, metavar="FILE",
                   help="ngramds file of the training documents")
    p.add_argument("--val", required=True, metavar="FILE",
                   help="ngramds file of held-out documents, e.g. from `ngramds build "
                        "--val-fraction 0.05 --val-output FILE`")
    if compare:
        p.add_argument("--targets", type=_kinds, default=list(COMPARE_DEFAULT), metavar="LIST",
                       dest="kinds",
                       help=f"target kinds, one run each (default: {','.join(COMPARE_DEFAULT)})")
        p.add_argument("--out-dir", required=True, metavar="DIR",
                       help="logs DIR/KIND.jsonl (new files; see --overwrite) and the plot")
        p.add_argument("--plot", metavar="PNG", help="the plot (default: DIR/val_loss.png "
                       "when matplotlib is installed)")
    else:
        p.add_argument("--out", required=True, metavar="LOG",
                       help="JSON-lines log, one record per evaluation (a new file; see "
                            "--overwrite)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing logs (and the default plot) instead of refusing")
    t = p.add_argument_group("targets (see ngramds.TargetConfig)")
    add_target_flags(t, defaults["target"], skip=("targets",) if compare else ())
    opt(t, "--alpha", float, "weight of the soft-target term", shown="ngramds.torch.DEFAULT_ALPHA")
    opt(t, "--alpha-hold", float, "alpha for this fraction of the steps, then linearly to 0 "
        "(ngramds.torch.alpha_at)", shown="0.5 up to one epoch, else 0.5 / epochs: "
        "ngramds.torch.hold_for_epochs")
    m = p.add_argument_group("model and optimisation")
    for flag, text in [("--steps", "optimiser steps"), ("--batch-size", "sequences per step"),
                       ("--seq-len", "tokens per sequence"), ("--d-model", "model width"),
                       ("--layers", "transformer blocks"), ("--heads", "attention heads"),
                       ("--warmup", "warm-up steps (then cosine decay to 0.1)"),
                       ("--eval-every", "steps between held-out evaluations"),
                       ("--eval-batches", "held-out batches (the same each run)"),
                       ("--seed", "model and sample-order seed"),
                       ("--workers", "DataLoader worker processes (0: in this process)"),
                       ("--threads", "torch threads (0: torch's default)")]:
        opt(m, flag, int, text)
    opt(m, "--lr", float, "peak learning rate (AdamW)")
    opt(m, "--device", str, "torch device", shown="cuda when available, else cpu")


def _parser() -> argparse.ArgumentParser:
    p = CommandParser(prog=PROG, description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    _run_options(sub.add_parser("run", help="train one model; log held-out loss"), compare=False)
    _run_options(sub.add_parser(
        "compare", help="one run per target kind (same model, data and seed), then a table "
                        "and the plot"), compare=True)
    g = sub.add_parser("plot", help="held-out loss of runs vs steps and wall-clock (needs "
                                    "matplotlib: pip install matplotlib)")
    g.add_argument("runs", nargs="+", metavar="LOG", help="logs of `ngramds-train run`")
    g.add_argument("-o", "--output", default="val_loss.png", help="PNG (default val_loss.png)")
    return p


def _config(a: argparse.Namespace, kind: str | None = None, **override) -> RunConfig:
    """The RunConfig of the options in ``a`` (``kind``: compare's target kind)."""
    from ..targets.config import config_from_args
    from .config import RunConfig
    defaults = _defaults()
    given = {k: v for k, v in vars(a).items() if k in defaults}
    target = config_from_args(a, defaults["target"])
    if kind is not None:
        target = dataclasses.replace(target, targets=kind)
    return RunConfig(**{**given, **override, "target": target})


def _need_torch() -> None:
    try:
        import torch  # noqa: F401
    except ImportError:
        raise NgramdsError("training needs PyTorch: pip install torch (or torch "
                           "for your hardware, see pytorch.org)") from None


def _cmd_run(a: argparse.Namespace) -> int:
    from .config import check_log_outputs
    cfg = _config(a)
    check_log_outputs([cfg.out], cfg, a.overwrite)  # before torch: no work for a bad path
    _need_torch()
    from .loop import train_run
    train_run(cfg, overwrite=a.overwrite)
    return 0


def _cmd_compare(a: argparse.Namespace) -> int:
    out_dir = Path(a.out_dir)
    if a.plot and not have_matplotlib():
        raise NgramdsError(PLOT_HINT)
    configs = [_config(a, kind, out=str(out_dir / f"{kind}.jsonl")) for kind in a.kinds]
    for cfg in configs:  # every run's options and outputs before any work
        cfg.check()
    from .config import check_log_outputs
    inputs = [("training file", a.train), ("validation file", a.val)]
    logs = [cfg.out for cfg in configs]
    check_log_outputs(logs, configs[0], a.overwrite)
    plot = None
    if a.plot or have_matplotlib():
        from .plot import check_plot_output
        plot = check_plot_output(a.plot or out_dir / "val_loss.png",
                                 inputs + [("log", p) for p in logs])
        if not a.plot and plot.exists() and not a.overwrite:
            raise InputError(f"the plot {plot} exists; give --overwrite to replace it, or "
                             "another --out-dir or --plot")
    _need_torch()
    from .loop import train_run
    results = {}
    for cfg in configs:
        print(f"== {cfg.target.targets} -> {cfg.out}", flush=True)
        results[cfg.target.targets] = train_run(cfg, overwrite=a.overwrite)
    print(comparison_table(results))
    if plot is not None:
        from .plot import plot_runs
        print(f"wrote {plot_runs(logs, plot)}")
    else:
        print(f"{PROG}: note: {PLOT_HINT}; then `{PROG} plot {out_dir}/*.jsonl`",
              file=sys.stderr)
    return 0


def comparison_table(results: dict[str, list[dict]]) -> str:
    """Final held-out loss and perplexity of each run and the first step at which it reached
    the onehot run's final held-out loss (when there is a onehot run)."""
    base = results["onehot"][-1]["val_loss"] if results.get("onehot") else None
    head = f"{'targets':<10} {'val loss':>9} {'val ppl':>9} {'tokens/s':>10}"
    if base is not None:
        head += "  steps to onehot's final loss"
    rows = [head]
    for kind, records in results.items():
        last = records[-1]
        tok_s = sum(r["tokens_per_s"] for r in records) / len(records)
        row = f"{kind:<10} {last['val_loss']:9.4f} {last['val_ppl']:9.2f} {tok_s:10,.0f}"
        if base is not None:
            hit = next((r["step"] for r in records if r["val_loss"] <= base), None)
            row += f"  {hit if hit is not None else '-'} of {last['step']}"
        rows.append(row)
    return "\n".join(rows)


def _cmd_plot(a: argparse.Namespace) -> int:
    from .plot import plot_runs
    print(f"wrote {plot_runs(a.runs, a.output)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code (130 after Ctrl-C, at any
    moment: also while the heavy modules load)."""
    return run_command(PROG, _parser, {"run": _cmd_run, "compare": _cmd_compare,
                                       "plot": _cmd_plot}, argv)


if __name__ == "__main__":
    sys.exit(main())

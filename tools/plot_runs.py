"""Overlay training runs (JSON lines from tools/train.py) into one PNG: held-out loss against
steps and against wall-clock time. Needs matplotlib (pip install matplotlib).

    python tools/plot_runs.py runs/*.jsonl -o docs/val_loss.png
"""
from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path


def load_runs(paths):
    """{label: [records]}, one label (the log's file name) per run."""
    runs = defaultdict(list)
    for path in paths:
        for line in Path(path).read_text().splitlines():
            if line.strip():
                runs[Path(path).stem].append(json.loads(line))
    return runs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("runs", nargs="+", help="JSON-lines logs")
    ap.add_argument("-o", "--output", default="val_loss.png")
    a = ap.parse_args(argv)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("plotting needs matplotlib: pip install matplotlib") from None
    runs = load_runs(a.runs)
    fig, (by_step, by_time) = plt.subplots(1, 2, figsize=(12, 4.5))
    for label, records in sorted(runs.items()):
        records.sort(key=lambda r: r["step"])
        steps = [r["step"] for r in records]
        loss = [r["val_loss"] for r in records]
        line, = by_step.plot(steps, loss, label=label, lw=1.2)
        by_time.plot([r["wall_s"] for r in records], loss, color=line.get_color(), lw=1.2)
    by_step.set(xlabel="step", ylabel="held-out loss (nats/token)", title="vs steps")
    by_time.set(xlabel="wall-clock seconds", title="vs wall-clock")
    for ax in (by_step, by_time):
        ax.grid(alpha=0.3)
    by_step.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(a.output, dpi=120)
    print(f"wrote {a.output}")


if __name__ == "__main__":
    main()

"""Held-out loss of training runs (``ngramds-train`` logs) against steps and against
wall-clock time, in one PNG. Needs matplotlib: ``pip install 'ngramds[plot]'``."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import FileAccessError, InputError, NgramdsError

PLOT_HINT = "plotting needs matplotlib: pip install 'ngramds[plot]'"


def have_matplotlib() -> bool:
    """True when matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def load_runs(paths: list[str | Path]) -> dict[str, list[dict]]:
    """{label: records sorted by step}, one label (the log's file name without suffix) per
    log; InputError for a file that is not a log of ``ngramds-train run``."""
    runs: dict[str, list[dict]] = {}
    for path in map(Path, paths):
        try:
            lines = path.read_text().splitlines()
        except OSError as exc:
            raise FileAccessError(f"cannot read the log {path}: {exc.strerror or exc}") from None
        records = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                float(record["step"]), float(record["val_loss"]), float(record["wall_s"])
            except (ValueError, KeyError, TypeError):
                raise InputError(f"{path}:{number} is not a record of `ngramds-train run` "
                                 "(JSON with step, val_loss, wall_s)") from None
            records.append(record)
        if not records:
            raise InputError(f"{path} holds no records; has its run reached an evaluation?")
        runs.setdefault(path.stem, []).extend(records)
    for records in runs.values():
        records.sort(key=lambda r: r["step"])
    return runs


def plot_runs(paths: list[str | Path], output: str | Path) -> Path:
    """Write the plot of the logs ``paths`` to ``output`` (PNG) and return its path."""
    runs = load_runs(paths)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise NgramdsError(PLOT_HINT) from None
    fig, (by_step, by_time) = plt.subplots(1, 2, figsize=(12, 4.5))
    for label, records in sorted(runs.items()):
        loss = [r["val_loss"] for r in records]
        line, = by_step.plot([r["step"] for r in records], loss, label=label, lw=1.2)
        by_time.plot([r["wall_s"] for r in records], loss, color=line.get_color(), lw=1.2)
    by_step.set(xlabel="step", ylabel="held-out loss (nats/token)", title="vs steps")
    by_time.set(xlabel="wall-clock seconds", title="vs wall-clock")
    for ax in (by_step, by_time):
        ax.grid(alpha=0.3)
    by_step.legend(fontsize=7)
    fig.tight_layout()
    output = Path(output)
    try:
        fig.savefig(output, dpi=120)
    except OSError as exc:
        raise FileAccessError(f"cannot write {output}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
    return output

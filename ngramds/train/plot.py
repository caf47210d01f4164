"""Held-out loss of training runs (``ngramds-train`` logs) against steps and against
wall-clock time, in one PNG. Needs matplotlib: ``pip install matplotlib``."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import FileAccessError, InputError, NgramdsError
from ..file.paths import open_regular, same_file

PLOT_HINT = "plotting needs matplotlib: pip install matplotlib"


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
            with open_regular(path, "the log") as f:
                lines = f.read().decode("utf-8").splitlines()
        except FileAccessError as exc:
            raise FileAccessError(f"cannot read the log: {exc}") from None
        except OSError as exc:
            raise FileAccessError(f"cannot read the log {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise InputError(f"{path} is not a log of `ngramds-train run`: byte {exc.start} is "
                             "not UTF-8 text") from None
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


def image_formats() -> list[str]:
    """The file suffixes matplotlib can write (without the dot); NgramdsError naming the
    install when matplotlib is missing."""
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        raise NgramdsError(PLOT_HINT) from None
    return sorted(FigureCanvasBase.get_supported_filetypes())


def check_plot_output(output: str | Path, inputs: list[tuple[str, str | Path]]) -> Path:
    """``output`` as a Path once the plot can go there: an image suffix matplotlib writes,
    not a directory, and none of ``inputs`` ((what, path) pairs: logs, ngramds files).

    Raises:
        InputError: an output that is an input, or has no image suffix.
        NgramdsError: matplotlib is not installed.
    """
    output = Path(output)
    for what, path in inputs:
        if same_file(output, path):
            raise InputError(f"the plot {output} is the {what} {path}: writing it would "
                             "destroy it; choose another output path such as val_loss.png")
    if output.is_dir():
        raise InputError(f"the plot {output} is a directory; give a file such as "
                         f"{output / 'val_loss.png'}")
    formats = image_formats()
    suffix = output.suffix[1:].lower()
    if suffix not in formats:
        raise InputError(f"the plot {output} needs an image suffix matplotlib writes "
                         f"(.png, .pdf, .svg, ...: {', '.join(formats)}), not "
                         f"{'.' + suffix if suffix else 'none'}")
    return output


def plot_runs(paths: list[str | Path], output: str | Path) -> Path:
    """Write the plot of the logs ``paths`` to ``output`` (an image: PNG, PDF, SVG, ...) and
    return its path.

    Raises:
        InputError: a log that is not one of ``ngramds-train run``, or an unusable output
            (an input, no image suffix).
        FileAccessError: a log that cannot be read (missing, not a regular file) or an
            output that cannot be written.
        NgramdsError: matplotlib is not installed.
    """
    output = check_plot_output(output, [("log", p) for p in paths])
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
    try:
        fig.savefig(output, dpi=120)
    except OSError as exc:
        raise FileAccessError(f"cannot write {output}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
    return output

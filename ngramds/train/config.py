"""The options of one training run, their defaults and checks (torch-free)."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields

from ..errors import InputError
from ..file.paths import same_file
from ..targets.config import TARGETS, TargetConfig

TARGET_KINDS = TARGETS


@dataclass
class RunConfig:
    """One run of :func:`ngramds.train.loop.train_run` (the defaults are those of
    docs/RESULTS.md, except ``steps``: the experiment pins 900). ``target``: the target
    options (the library's defaults)."""

    train: str
    val: str
    out: str
    target: TargetConfig = TargetConfig()
    alpha: float | None = None  # None: ngramds.torch.DEFAULT_ALPHA
    alpha_hold: float | None = None  # alpha for this fraction of the steps, then linearly
                                     # to 0; None: ngramds.torch.hold_for_epochs (0.5 up to
                                     # one epoch; docs/RESULTS.md)
    steps: int = 800
    batch_size: int = 8
    seq_len: int = 128
    d_model: int = 128
    layers: int = 3
    heads: int = 4
    lr: float = 2e-3
    warmup: int = 100
    eval_every: int = 100
    eval_batches: int = 32
    seed: int = 0
    workers: int = 0
    threads: int = 0
    device: str | None = None  # None: cuda when available, else cpu

    def check(self) -> None:
        """InputError naming the first unusable option (the target options are checked by
        :class:`TargetConfig`, and against the file by the dataset)."""
        for name in ("steps", "batch_size", "seq_len", "d_model", "layers", "heads", "warmup",
                     "eval_every", "eval_batches"):
            if getattr(self, name) < 1:
                raise InputError(f"{name.replace('_', '-')} must be at least 1, got "
                                 f"{getattr(self, name)}")
        for name in ("seed", "workers", "threads"):
            if getattr(self, name) < 0:
                raise InputError(f"{name} must be at least 0, got {getattr(self, name)}")
        if not isinstance(self.target, TargetConfig):
            raise InputError(f"target must be a TargetConfig, got {type(self.target).__name__}")
        if self.d_model % self.heads:
            raise InputError(f"d-model ({self.d_model}) must be a multiple of heads "
                             f"({self.heads})")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise InputError(f"lr must be a positive number, got {self.lr}")
        if self.alpha is not None and not (math.isfinite(self.alpha) and self.alpha >= 0):
            raise InputError(f"alpha must be a non-negative number, got {self.alpha}")
        if self.alpha_hold is not None and not 0 <= self.alpha_hold <= 1:
            raise InputError(f"alpha-hold must be in [0, 1], got {self.alpha_hold}")

    def record(self) -> dict:
        """The configuration as the log's ``config`` field: flat, the target options in the
        place of ``target`` (the keys of older logs)."""
        out: dict = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out.update(value.options() if f.name == "target" else {f.name: value})
        return out


def check_log_outputs(logs: list[str], cfg: RunConfig, overwrite: bool = False) -> None:
    """InputError unless every path of ``logs`` can take a new log: not the run's training or
    validation file (nor another of ``logs``), not a directory, and not an existing file
    unless ``overwrite``.

    Args:
        logs: the log paths of the runs about to start.
        cfg: a run's configuration (its ``train`` and ``val`` files are the inputs).
        overwrite: existing logs may be replaced.

    Raises:
        InputError: naming the first unusable log.
    """
    inputs = [("training file", cfg.train), ("validation file", cfg.val)]
    for i, log in enumerate(logs):
        if not str(log).strip():
            raise InputError("the log path is empty; give a file such as runs/coconts.jsonl")
        for what, path in inputs:
            if same_file(log, path):
                raise InputError(f"the log {log} is the {what} {path} (an input): writing it "
                                 "would destroy it; choose another log path")
        for other in logs[i + 1:]:
            if same_file(log, other):
                raise InputError(f"the logs {log} and {other} are the same file")
        if os.path.isdir(log):
            raise InputError(f"the log {log} is a directory; give a file such as "
                             f"{os.path.join(log, 'run.jsonl')}")
        if os.path.lexists(log) and not overwrite:
            raise InputError(f"the log {log} exists; give --overwrite to replace it, or "
                             "another path")

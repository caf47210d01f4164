"""The weight of the soft-target term over a training run."""
from __future__ import annotations

import math
import numbers

from ..validation import is_int
from .loss import DEFAULT_ALPHA

__all__ = ["alpha_at", "hold_for_epochs", "DEFAULT_HOLD"]

# Fraction of the run at full alpha before the linear decay to 0 (docs/RESULTS.md: budget-
# matched runs; the soft term helps most early and costs a little at the end, when the model
# fits the one-hot labels better than the corpus statistics do).
DEFAULT_HOLD = 0.5


def hold_for_epochs(epochs: float) -> float:
    """The ``hold`` of :func:`alpha_at` for a run of ``epochs`` passes over the training
    documents: :data:`DEFAULT_HOLD` up to one epoch, else ``DEFAULT_HOLD / epochs`` (alpha at
    full weight for the first half epoch only). The targets are counted from the training
    documents themselves: repeated for several epochs at full weight they made held-out loss
    worse than one-hot's (docs/RESULTS.md, "Several epochs"), and decaying them earlier
    removed most of that.

    Args:
        epochs: the run's length in epochs (passes over the training documents), > 0.

    Returns:
        The fraction of the run at full alpha, for :func:`alpha_at`'s ``hold``.

    Raises:
        ValueError: ``epochs`` is not a positive number.
    """
    if not (isinstance(epochs, numbers.Real) and math.isfinite(epochs) and epochs > 0):
        raise ValueError(f"epochs must be a positive number, got {epochs!r}")
    return DEFAULT_HOLD if epochs <= 1 else DEFAULT_HOLD / float(epochs)


def alpha_at(step: int, total_steps: int, alpha: float = DEFAULT_ALPHA,
             hold: float = DEFAULT_HOLD) -> float:
    """``alpha`` for the first ``hold`` of ``total_steps`` (steps counted from 0), then
    linearly down, reaching 0 at step ``total_steps`` (the last step, ``total_steps - 1``,
    gets a small positive weight); ``hold=1`` keeps it constant, ``hold=0`` decays from the
    first step.

        loss = ngram_loss(logits, batch, alpha=alpha_at(step, total_steps))

    Args:
        step: the step, counted from 0.
        total_steps: the run's number of steps, >= 1.
        alpha: the weight while held.
        hold: the fraction of the run at full weight, in [0, 1].

    Returns:
        The soft term's weight at ``step``.

    Raises:
        ValueError: a step or step count that is not a non-negative integer, or ``alpha`` /
            ``hold`` out of range.
    """
    if not (is_int(total_steps) and total_steps >= 1):
        raise ValueError(f"total_steps must be a positive integer, got {total_steps!r}")
    if not (is_int(step) and 0 <= step):
        raise ValueError(f"step must be a non-negative integer, got {step!r}")
    if not (math.isfinite(alpha) and alpha >= 0):
        raise ValueError(f"alpha must be a non-negative number, got {alpha!r}")
    if not 0 <= hold <= 1:
        raise ValueError(f"hold must be in [0, 1], got {hold!r}")
    start = hold * total_steps
    if step < start or hold == 1:
        return float(alpha)
    span = total_steps - start
    return float(alpha) * max(0.0, 1.0 - (step - start) / span) if span > 0 else 0.0


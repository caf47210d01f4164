"""Entropy of the targets: the floor of the soft loss (a model's soft cross-entropy against a
target is at least the target's entropy). Torch-free, batched numpy over compiled targets."""
from __future__ import annotations

import numpy as np

from .compute import Targets
from .config import TargetConfig

DEFAULT_POSITIONS = 65536  # label positions sampled (evenly spaced) when the file has more
CELL_BUDGET = 1 << 23      # at most this many target slots (positions x K) in all ...
_CHUNK_CELLS = 1 << 20     # ... computed this many at a time
MIN_POSITIONS = 1024       # ... but at least this many positions (wide AllNTs targets)


def target_entropy(target_ids: np.ndarray, target_probs: np.ndarray) -> np.ndarray:
    """Entropy in nats (float64 [n]) of each row's target ([n, K] ids and probabilities); the
    slots of one id (several orders' blocks) are summed first."""
    n, k = target_ids.shape
    if k == 0 or n == 0:
        return np.zeros(n)
    ids = target_ids.astype(np.int64)
    width = int(ids.max()) + 1
    keys = np.arange(n, dtype=np.int64)[:, None] * width + ids
    uniq, inverse = np.unique(keys.ravel(), return_inverse=True)
    merged = np.bincount(inverse.ravel(), weights=target_probs.astype(np.float64).ravel(),
                         minlength=uniq.size)
    safe = np.where(merged > 0, merged, 1.0)
    h = np.bincount(uniq // width, weights=-merged * np.log(safe), minlength=n)
    return np.maximum(h, 0.0)  # no -0.0 (or rounding below 0) for one-token targets


def mean_entropy(f, config: TargetConfig, positions: int = DEFAULT_POSITIONS, seed: int = 0,
                 epoch: int = 0) -> tuple[float, int]:
    """(mean entropy in nats, positions used) of the targets of ``config`` over the label
    positions 1..N-1 of the file ``f``: all of them when there are at most ``positions``, else
    ``positions`` evenly spaced ones, fewer for wide targets (AllNTs of a file whose widest
    distribution is long): at most CELL_BUDGET slots in all, but at least MIN_POSITIONS
    positions. CoCoNTs tail draws use ``seed`` and ``epoch``."""
    targets = Targets(f, config)
    slots = max(1, targets.plan.slots)
    positions = min(positions, max(MIN_POSITIONS, CELL_BUDGET // slots))
    n = f.num_tokens - 1
    if n < 1:
        return 0.0, 0
    if n <= positions:
        chosen = np.arange(1, n + 1, dtype=np.int64)
    else:
        chosen = np.unique(np.linspace(1, n, positions).round().astype(np.int64))
    if targets.plan.slots == 0:
        return 0.0, int(chosen.size)
    total = 0.0
    chunk = max(1, _CHUNK_CELLS // slots)
    for a in range(0, chosen.size, chunk):
        batch = targets.compute(chosen[a:a + chunk] - 1, 1, seed, epoch)
        total += float(target_entropy(batch.target_ids[:, 0], batch.target_probs[:, 0]).sum())
    return total / chosen.size, int(chosen.size)

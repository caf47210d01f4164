"""What targets to compute: a torch-free configuration, checked on its own and then against a
file (spec/TARGETS.md)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np

from ..errors import FormatError, InputError
from . import kernels

TARGETS = ("onehot", "allnts", "coconts")
RESIDUALS = ("tail", "renorm")
MIXINGS = ("auto", "none", "backoff", "witten-bell", "fixed", "kneser-ney")
MAX_TOP_R = 4096  # a top-r target of more slots than this is a mistake, not a setting
DEFAULT_ESCAPE = 10.0  # Witten-Bell's escape weight (chosen in docs/RESULTS.md, "Smoothing")
MAX_ESCAPE = 1e6  # past this the lowest order takes everything


def is_int(x) -> bool:
    """An integer (Python or numpy), not a bool."""
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def check_int(name: str, value, lo: int, hi: int) -> int:
    """``value`` as an int once it is an integer in [lo, hi]; InputError naming it otherwise."""
    if not is_int(value) or not lo <= value <= hi:
        raise InputError(f"{name} must be an integer in {lo}..{hi}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class TargetConfig:
    """The target options of :class:`ngramds.torch.NgramDataset` (see its docstring).

    targets: "onehot", "allnts" (``max_k`` keeps the first max_k entries, renormalised) or
    "coconts" (top ``top_r`` plus one residual slot, ``residual`` "tail" or "renorm").
    mixing: "auto" (Witten-Bell over several orders, else the one order), "none" (the highest
    of ``orders``), "backoff" (``min_count``), "witten-bell" (``escape``: the weight of a
    context's distinct next tokens D in lambda = T / (T + escape * D); 1 is classic
    Witten-Bell, the default 10 gives the lower orders more weight, most where a context was
    seen least: docs/RESULTS.md), "fixed" (``lambdas``, one per order as given) or
    "kneser-ney" (complete tables, order o+1 stored for every lower order o). ``orders``
    defaults to every stored order.
    """

    targets: str = "coconts"
    top_r: int = 8
    residual: str = "tail"
    max_k: int | None = None
    mixing: str = "auto"
    orders: Sequence[int] | None = None
    min_count: int = 2
    lambdas: Sequence[float] | None = None
    escape: float = DEFAULT_ESCAPE

    def __post_init__(self):
        if self.targets not in TARGETS:
            raise InputError(f"targets must be one of {TARGETS}, got {self.targets!r}")
        if self.residual not in RESIDUALS:
            raise InputError(f"residual must be one of {RESIDUALS}, got {self.residual!r}")
        check_int("top_r", self.top_r, 1, MAX_TOP_R)
        if self.max_k is not None and (not is_int(self.max_k) or self.max_k < 1):
            raise InputError(f"max_k must be a positive integer or None, got {self.max_k!r}")
        if self.mixing not in MIXINGS:
            raise InputError(f"mixing must be one of {MIXINGS}, got {self.mixing!r}")
        check_int("min_count", self.min_count, 1, 1 << 62)
        if (not isinstance(self.escape, (int, float, np.integer, np.floating))
                or isinstance(self.escape, bool) or not 0 < self.escape <= MAX_ESCAPE):
            raise InputError(f"escape must be a number in (0, {MAX_ESCAPE:g}], got "
                             f"{self.escape!r}")
        object.__setattr__(self, "escape", float(self.escape))
        if self.orders is not None:
            orders = list(self.orders) if not is_int(self.orders) else [self.orders]
            if not orders or not all(is_int(o) for o in orders):
                raise InputError(f"orders must be a list of integers, got {self.orders!r}")
            if len(set(orders)) != len(orders):
                raise InputError(f"orders must be distinct, got {orders}")
            object.__setattr__(self, "orders", tuple(int(o) for o in orders))

    @property
    def mode(self) -> int:
        """The kernels' mode constant."""
        name = f"coconts-{self.residual}" if self.targets == "coconts" else self.targets
        return kernels.MODES[name]

    def resolve(self, f) -> "Plan":
        """The configuration made concrete for file ``f``: orders, mixing, weights, widths."""
        given = list(f.orders) if self.orders is None else list(self.orders)
        missing = [o for o in given if o not in f.tables]
        if missing:
            raise InputError(f"orders {missing} are not stored in {f.path} (stored: "
                             f"{', '.join(map(str, f.orders))}); build with --orders")
        orders = sorted(given)
        mixing = self.mixing
        if mixing == "auto":  # the best of docs/RESULTS.md when the file allows it
            mixing = "witten-bell" if len(orders) > 1 else "none"
        if mixing == "none":
            orders = orders[-1:]
        weights = np.ones(len(orders))
        if mixing == "fixed":
            if self.lambdas is None or len(self.lambdas) != len(given):
                raise InputError(f"mixing='fixed' needs one lambda per order {orders}, got "
                                 f"{self.lambdas!r}")
            try:
                weights = np.asarray(self.lambdas, dtype=np.float64)[np.argsort(given)]
            except (TypeError, ValueError):
                raise InputError(f"lambdas must be numbers, got {self.lambdas!r}") from None
            if not np.all(np.isfinite(weights)) or weights.min() < 0 or weights.sum() <= 0:
                raise InputError(f"lambdas must be non-negative with a positive sum, got "
                                 f"{list(self.lambdas)}")
            weights = weights / weights.sum()
        mode = self.mode
        if self.targets == "coconts":
            for order in orders:
                top_k = f.table(order).top_k
                if top_k is not None and self.top_r > top_k:
                    raise InputError(f"top_r={self.top_r} exceeds the file's --top-k {top_k}; "
                                     "rebuild with a larger --top-k or lower top_r")
        max_k = 0
        if self.targets == "allnts":
            widest = max(widest_distribution(f.table(o)) for o in orders)
            if not 1 <= widest <= f.vocab_size:
                raise FormatError("entry offsets are inconsistent; the file is damaged "
                                  "(run `ngramds verify`)")
            max_k = widest if self.max_k is None else min(int(self.max_k), widest)
        width = {kernels.ONEHOT: 0, kernels.ALLNTS: max_k}.get(mode, self.top_r + 1)
        blocks = 1 if mixing in ("none", "backoff") else len(orders)
        return Plan(mode, tuple(orders), mixing, weights, self.min_count, self.top_r, max_k,
                    width, blocks, self.escape)


class Plan(NamedTuple):
    """A :class:`TargetConfig` resolved against a file."""

    mode: int
    orders: tuple          # ascending
    mixing: str            # "none", "backoff", "witten-bell", "fixed" or "kneser-ney"
    lambdas: np.ndarray    # per order, ascending (normalised; "fixed" only)
    min_count: int
    top_r: int
    max_k: int
    width: int             # slots per order block
    blocks: int            # blocks per position
    escape: float          # "witten-bell": the weight of D in lambda = T / (T + escape * D)

    @property
    def slots(self) -> int:
        """K: slots per position of target_ids / target_probs."""
        return self.width * self.blocks


def widest_distribution(table) -> int:
    """Entries of the table's largest stored distribution."""
    return int(np.diff(table.entry_offsets.astype(np.int64)).max(initial=0))

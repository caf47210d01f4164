"""What targets to compute: a torch-free configuration, checked on its own and then against a
file (spec/TARGETS.md)."""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field, fields, replace
from typing import NamedTuple, Sequence

import numpy as np

from ..errors import FormatError, InputError
from ..validation import check_choice, check_int, is_int, is_number  # (re-exported)
from . import kernels

TARGETS = ("onehot", "allnts", "coconts")
RESIDUALS = ("tail", "renorm")
MIXINGS = ("auto", "none", "backoff", "witten-bell", "fixed", "kneser-ney")
MAX_TOP_R = 4096  # a top-r target of more slots than this is a mistake, not a setting
DEFAULT_ESCAPE = 10.0  # Witten-Bell's escape weight (chosen in docs/RESULTS.md, "Smoothing")
MAX_ESCAPE = 1e6  # past this the lowest order takes everything
MAX_ALPHA_COUNT = 1e18  # the soft-term weight's k: past the largest count, every weight ~0


@dataclass(frozen=True)
class TargetConfig:
    """The target options of :class:`ngramds.torch.NgramDataset`,
    :class:`ngramds.torch.NgramTargets`, ``ngramds show`` and ``ngramds-train`` (one flag per
    field, made by :func:`add_target_flags`). See spec/TARGETS.md.

    Args:
        targets: "allnts" (the default: each order's stored distribution, up to ``max_k``
            entries), "coconts" (top ``top_r`` plus one residual slot: 9 entries per order at
            r = 8, the default of 0.6 and before) or "onehot" (docs/RESULTS.md, "AllNTs as the
            default").
        top_r: CoCoNTs: entries kept intact (1..4096; at most the file's ``--top-k``).
        residual: CoCoNTs: "tail" or "renorm".
        max_k: AllNTs: keep each order's first max_k entries, renormalised (default 64;
            None: all, as wide as the file's widest distribution).
        mixing: "auto" (Witten-Bell over several orders, else the one order), "none" (the
            highest of ``orders``), "backoff" (``min_count``), "witten-bell" (``escape``),
            "fixed" (``lambdas``) or "kneser-ney" (interpolated; complete tables, order o+1
            stored for every lower order o; continuation counts derived once per process).
        orders: the stored orders taking part (None: every stored order).
        min_count: backoff: a context seen this often gives the target.
        lambdas: fixed mixing: one weight per order, in the order of ``orders``.
        escape: witten-bell: the weight of a context's distinct next tokens D in
            lambda = T / (T + escape * D); 1 is classic Witten-Bell, the default 10 gives
            the lower orders more weight, most where a context was seen least
            (docs/RESULTS.md).
        alpha_count: k of the count-aware soft-term weight: each position's soft term is
            weighed by alpha * T / (T + k), T the total of its context in the top order used
            (0 where a pruned file left it out),
            and its label by the rest (batches carry ``soft_weight``); 0 (the default): off,
            one alpha for every position.

    Raises:
        InputError: a value out of range or of the wrong kind (a file-dependent check, such
            as an order the file lacks, waits for :meth:`resolve`).
    """

    # metadata: the command-line flag's help (without the default), its parser ("type", else
    # str), "choices", what None means ("unset") and the word that gives None ("none_word"):
    # add_target_flags makes the flags of both CLIs from these fields
    targets: str = field(default="allnts", metadata=dict(
        help="onehot: the cross-entropy baseline; allnts: the stored distributions; coconts: "
             "the top r entries and a residual slot", choices=TARGETS))
    top_r: int = field(default=8, metadata=dict(help="CoCoNTs: entries kept intact", type=int))
    residual: str = field(default="tail", metadata=dict(help="CoCoNTs: the residual slot",
                                                        choices=RESIDUALS))
    max_k: int | None = field(default=64, metadata=dict(
        help="AllNTs: entries kept per order and position ('all': every stored entry)",
        type=int, unset="all", none_word="all"))
    mixing: str = field(default="auto", metadata=dict(help="targets from several orders",
                                                      choices=MIXINGS))
    orders: Sequence[int] | None = field(default=None, metadata=dict(
        help="orders taking part, e.g. 2,3,4", type=(int, "orders like 2,3,4"),
        unset="all stored"))
    min_count: int = field(default=2, metadata=dict(
        help="backoff: a context seen this often", type=int))
    lambdas: Sequence[float] | None = field(default=None, metadata=dict(
        help="fixed mixing: one weight per order", type=(float, "weights like 0.2,0.3,0.5"),
        unset="none"))
    escape: float = field(default=DEFAULT_ESCAPE, metadata=dict(
        help="witten-bell mixing: weight of a context's distinct next tokens D in lambda = "
             "T / (T + escape D); above 1 moves weight to the lower orders", type=float))
    alpha_count: float = field(default=0.0, metadata=dict(
        help="soft-term weight per position: alpha * T / (T + X), T the count of its top "
             "context; 0: off", type=float))

    def __post_init__(self):
        check_choice("targets", self.targets, TARGETS)
        check_choice("residual", self.residual, RESIDUALS)
        check_int("top_r", self.top_r, 1, MAX_TOP_R)
        if self.max_k is not None and (not is_int(self.max_k) or self.max_k < 1):
            raise InputError(f"max_k must be a positive integer or None, got {self.max_k!r}")
        check_choice("mixing", self.mixing, MIXINGS)
        check_int("min_count", self.min_count, 1, 1 << 62)
        if not is_number(self.escape) or not 0 < self.escape <= MAX_ESCAPE:
            raise InputError(f"escape must be a number in (0, {MAX_ESCAPE:g}], got "
                             f"{self.escape!r}")
        object.__setattr__(self, "escape", float(self.escape))
        if not is_number(self.alpha_count) or not 0 <= self.alpha_count <= MAX_ALPHA_COUNT:
            raise InputError(f"alpha_count must be a number in [0, {MAX_ALPHA_COUNT:g}] (0: "
                             f"off), got {self.alpha_count!r}")
        object.__setattr__(self, "alpha_count", float(self.alpha_count))
        if self.orders is not None:
            orders = list(self.orders) if not is_int(self.orders) else [self.orders]
            if not orders or not all(is_int(o) for o in orders):
                raise InputError(f"orders must be a list of integers, got {self.orders!r}")
            if len(set(orders)) != len(orders):
                raise InputError(f"orders must be distinct, got {orders}")
            object.__setattr__(self, "orders", tuple(int(o) for o in orders))

    def options(self) -> dict:
        """Every field as plain Python values (sequences as lists): what a dataset state and a
        training log record."""
        def plain(v):
            return [x.item() if isinstance(x, np.generic) else x for x in v] \
                if isinstance(v, (list, tuple, np.ndarray)) else v
        return {f.name: plain(getattr(self, f.name)) for f in fields(self)}

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
        if getattr(f, "pruned", False):
            orders, weights = _pruned_orders(f, orders, mixing, weights)
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
                    width, blocks, self.escape, self.alpha_count)


def add_target_flags(parser, defaults: TargetConfig | None = None, skip=()) -> None:
    """Add one flag per :class:`TargetConfig` field to ``parser`` (an argparse parser or
    group): ``--top-r`` for ``top_r``, its help, parser and choices from the field's metadata.
    Unset flags stay out of the namespace (:func:`config_from_args` keeps their defaults).

    Args:
        parser: where the flags go.
        defaults: the defaults the help states (default: ``TargetConfig()``); where one differs
            from the library's, the help says both.
        skip: field names that get no flag (the caller has its own).
    """
    library = TargetConfig()
    defaults = library if defaults is None else defaults
    for f in fields(TargetConfig):
        if f.name in skip:
            continue
        meta = f.metadata
        kind = meta.get("type", str)
        metavar = {int: "N", float: "X", str: None}.get(kind, "LIST")
        if isinstance(kind, tuple):
            kind = _list_of(*kind)
        elif "none_word" in meta:  # --max-k all: None
            metavar, kind = f"{metavar}|{meta['none_word']}", _or_none(kind, meta["none_word"])
        shown = _shown(getattr(defaults, f.name), meta)
        if getattr(defaults, f.name) != getattr(library, f.name):
            shown += f"; the library's: {_shown(getattr(library, f.name), meta)}"
        parser.add_argument("--" + f.name.replace("_", "-"), type=kind, metavar=metavar,
                            choices=meta.get("choices"), default=argparse.SUPPRESS,
                            help=f"{meta['help']} (default: {shown})")


def config_from_args(args: argparse.Namespace, base: TargetConfig | None = None
                     ) -> TargetConfig:
    """``base`` (default: ``TargetConfig()``) with the target flags given in ``args`` (made by
    :func:`add_target_flags`).

    Raises:
        InputError: a value the configuration refuses.
    """
    given = {f.name: getattr(args, f.name) for f in fields(TargetConfig)
             if hasattr(args, f.name)}
    return replace(base or TargetConfig(), **given)


def config_from_options(config: TargetConfig | None, options: dict) -> TargetConfig:
    """``config``, or a TargetConfig of the keyword ``options`` (the shortcut of
    :class:`ngramds.torch.NgramDataset`), not both.

    Raises:
        InputError: both given, an unknown option name, or a config that is no TargetConfig.
    """
    names = [f.name for f in fields(TargetConfig)]
    unknown = [k for k in options if k not in names]
    if unknown:
        raise InputError(f"unknown target option {unknown[0]!r}; the target options are "
                         f"{', '.join(names)}")
    if config is None:
        return TargetConfig(**options)
    if not isinstance(config, TargetConfig):
        raise InputError(f"config must be a TargetConfig, got {type(config).__name__}")
    if options:
        raise InputError(f"give config= or target keywords ({', '.join(options)}), not both")
    return config


def _shown(value, meta) -> str:
    """A default as the help states it."""
    if value is None:
        return meta.get("unset", "none")
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def _or_none(kind: type, word: str):
    """Parser of one ``kind`` value, or ``word`` for None (``--max-k all``)."""
    def parse(text: str):
        try:
            return None if text == word else kind(text)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {what} or {word!r}, got {text!r}") \
                from None
    return parse


def _list_of(kind: type, what: str):
    """Parser of comma-separated ``kind`` values, e.g. '2,3,4'."""
    def parse(text: str) -> list:
        try:
            return [kind(x) for x in text.split(",")]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    return parse


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
    alpha_count: float = 0.0  # k of the soft-term weight T / (T + k); 0: off

    @property
    def slots(self) -> int:
        """K: slots per position of target_ids / target_probs."""
        return self.width * self.blocks

    @property
    def soft_weight(self) -> bool:
        """Batches carry ``soft_weight`` (``alpha_count`` > 0 and soft targets)."""
        return self.alpha_count > 0 and self.mode != kernels.ONEHOT


def _pruned_orders(f, orders: list, mixing: str, weights: np.ndarray) -> tuple:
    """(orders, weights) on a pruned file (spec/TARGETS.md, "Pruned files"): "none" of an
    order that is pruned takes the deepest stored order's target (its weight moves down, as
    an unseen order's does, to an order never pruned); the other mixings need their lowest
    order never pruned, and Kneser-Ney unpruned tables."""
    if mixing == "kneser-ney":
        raise InputError("kneser-ney needs unpruned tables: build without --min-count")
    if mixing == "none" and f.table(orders[-1]).min_count > 1:
        lowest = max(o for o in f.orders if o <= orders[-1] and f.table(o).min_count == 1)
        orders = [o for o in f.orders if lowest <= o <= orders[-1]]
        weights = np.zeros(len(orders))
        weights[-1] = 1.0
    elif f.table(orders[0]).min_count > 1:
        raise InputError(f"order {orders[0]} is pruned (min_count "
                         f"{f.table(orders[0]).min_count}): the lowest order taking part must "
                         "keep every context; add a lower stored order to orders")
    return orders, weights


def widest_distribution(table) -> int:
    """Entries of the table's largest stored distribution."""
    return int(np.diff(table.entry_offsets.astype(np.int64)).max(initial=0))

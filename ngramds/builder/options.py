"""Build options: defaults, the one home of their checks, and :class:`BuildOptions`, the
record that ``build`` and ``merge`` fill from their keyword arguments and pass down (the
in-memory and bounded builds, the merge, the Dask engine)."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import FileAccessError, InputError
from ..file import format as fmt
from ..validation import check_choice, check_int, parse_size

DEFAULT_ORDERS = (2, 3, 4)        # trained best (docs/RESULTS.md, "Several orders")
DEFAULT_WORK_BYTES = 1 << 30      # a bounded build or merge given no --memory-limit: this
                                  # much beyond what the process already holds
ENGINES = ("local", "dask")
MAX_WORKERS = 4096


@dataclass(frozen=True)
class BuildOptions:
    """The checked options of one build or merge (made by :func:`build_options`)."""

    orders: tuple[int, ...] = DEFAULT_ORDERS
    top_k: int | None = None
    vocab_size: int | None = None
    memory_limit: int | None = None  # bytes; None: the bounded default (runs.py)
    tmp_dir: Path | None = None      # where runs spill; None when not used
    engine: str = "local"
    scheduler: str | None = None
    workers: int | None = None
    partial: bool = False
    compact: bool = False
    progress: bool = True
    min_count: dict | None = None    # order -> effective threshold (> 1 only); None: unpruned

    @property
    def bounded(self) -> bool:
        """Whether the build spills sorted runs (memory limit, partial result or Dask) rather
        than building in memory."""
        return self.memory_limit is not None or self.engine != "local" or self.partial


def build_options(*, order: int | None = None, orders=None, top_k: int | None = None,
                  vocab_size: int | None = None, memory_limit: int | str | None = None,
                  tmp_dir=None, engine: str = "local", scheduler: str | None = None,
                  workers: int | None = None, partial: bool = False, compact: bool = False,
                  progress: bool = True, merge: bool = False,
                  min_count=None) -> BuildOptions:
    """The keyword arguments of ``build`` (``merge``: of ``merge``) checked once, before any
    work, as a :class:`BuildOptions`; a ``tmp_dir`` the build does not use is dropped with a
    warning (a merge always spills). InputError (FileAccessError: a missing ``tmp_dir``)
    otherwise."""
    if order is not None and orders is not None:
        raise InputError("give order (one table) or orders (several), not both")
    orders = check_orders(orders if orders is not None else
                          DEFAULT_ORDERS if order is None else [order])
    top_k = check_top_k(top_k)
    limit = parse_size(memory_limit) if memory_limit is not None else None
    check_choice("engine", engine, ENGINES)
    if workers is not None:
        workers = check_int("workers", workers, 1, MAX_WORKERS)
    if compact and partial:
        raise InputError("a partial result keeps its runs: give compact to the merge "
                         "(`ngramds merge --compact`)")
    if min_count is not None and partial:
        raise InputError("a partial result keeps its runs: give min_count to the merge "
                         "(`ngramds merge --min-count`)")
    # a merge resolves min_count against its partials' orders (merge_from)
    thresholds = min_count if merge else min_counts(min_count, orders)
    options = BuildOptions(tuple(orders), top_k, vocab_size, limit, None, engine, scheduler,
                           workers, partial, compact, progress, thresholds)
    if tmp_dir is None:
        return options
    if partial:
        warnings.warn("tmp_dir (--tmp-dir) is ignored: a partial build keeps its runs in its "
                      "output", stacklevel=3)
        return options
    if not (merge or options.bounded):
        warnings.warn("tmp_dir (--tmp-dir) is ignored: only a memory-bounded build "
                      "(memory_limit, --memory-limit) or a Dask build spills runs there",
                      stacklevel=3)
        return options
    if not Path(tmp_dir).is_dir():
        raise FileAccessError(f"temporary directory {tmp_dir} does not exist; create it or "
                              "choose another --tmp-dir")
    return replace(options, tmp_dir=Path(tmp_dir))


def check_orders(orders) -> list[int]:
    """Sorted distinct orders, each an integer in 1..MAX_ORDER; InputError otherwise."""
    try:
        items = list(orders)
    except TypeError:
        items = [orders]
    items = [check_int("order", n, 1, fmt.MAX_ORDER) for n in items]
    if not items or len(set(items)) != len(items):
        raise InputError(f"orders must be distinct and at least one, got {items!r}")
    return sorted(items)


def check_top_k(top_k) -> int | None:
    """``top_k`` as a positive int (at most 2^32, more than any vocabulary), or None."""
    if top_k is None:
        return None
    return check_int("top_k", top_k, 1, fmt.MAX_VOCAB,
                     message="{name} must be an integer in {lo}..{hi} or None, got {value!r}")



def min_counts(spec, orders) -> dict | None:
    """The effective pruning thresholds (spec/FORMAT.md, "Pruned files") of ``spec`` for the
    stored ``orders``: {order: threshold} of the orders pruned (threshold > 1), or None when
    nothing is pruned. ``spec`` is None, an int N (every stored order but the lowest: N), a
    string "N" or "o:N,o:N" (the ``--min-count`` syntax), or a dict {order: N}. The lowest
    stored order is never pruned; a threshold applies to every higher order too unless that
    one names a larger one (effective t_n = the largest given for orders <= n), so every
    stored context's lower context is stored. InputError otherwise."""
    if spec is None:
        return None
    orders = sorted(orders)
    given = _parse_min_count(spec)
    if isinstance(given, int):
        if given > 1 and len(orders) == 1:
            raise InputError(f"min_count {given} would prune the only stored order {orders[0]}; "
                             "pruning needs two orders or more (the lowest keeps every context)")
        given = {n: given for n in orders[1:]}
    for n, t in given.items():
        if n not in orders:
            raise InputError(f"min_count names order {n}, which is not stored (orders "
                             f"{','.join(map(str, orders))})")
        if n == orders[0] and t > 1:
            raise InputError(f"min_count {n}:{t}: the lowest stored order ({n}) keeps every "
                             "context; prune higher orders only")
    out, run = {}, 1
    for n in orders:
        run = max(run, given.get(n, 1))
        if run > 1:
            out[n] = run
    return out or None


MAX_MIN_COUNT = 1 << 32


def _parse_min_count(spec) -> int | dict:
    """An int N or {order: N} from ``spec`` (int, "N", "o:N,o:N" or a dict)."""
    bad = (f"min_count must be N or order:N pairs like 4:2,3:2 (N in 1..{MAX_MIN_COUNT}), "
           f"got {spec!r}").replace("{", "{{").replace("}", "}}")  # (a template)
    if isinstance(spec, str):
        text = spec.strip()
        if ":" not in text:
            try:
                return check_int("min_count", int(text), 1, MAX_MIN_COUNT, message=bad)
            except ValueError:
                raise InputError(bad.format()) from None
        pairs = {}
        for item in text.split(","):
            try:
                o, n = (int(x) for x in item.split(":"))
            except ValueError:
                raise InputError(bad.format()) from None
            if o in pairs:
                raise InputError(f"min_count names order {o} twice: {spec!r}")
            pairs[o] = n
        spec = pairs
    if isinstance(spec, dict):
        if not spec:
            raise InputError(bad.format())
        return {check_int("order", o, 1, fmt.MAX_ORDER):
                check_int("min_count", n, 1, MAX_MIN_COUNT, message=bad)
                for o, n in spec.items()}
    return check_int("min_count", spec, 1, MAX_MIN_COUNT, message=bad)

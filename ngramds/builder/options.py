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

    @property
    def bounded(self) -> bool:
        """Whether the build spills sorted runs (memory limit, partial result or Dask) rather
        than building in memory."""
        return self.memory_limit is not None or self.engine != "local" or self.partial


def build_options(*, order: int | None = None, orders=None, top_k: int | None = None,
                  vocab_size: int | None = None, memory_limit: int | str | None = None,
                  tmp_dir=None, engine: str = "local", scheduler: str | None = None,
                  workers: int | None = None, partial: bool = False, compact: bool = False,
                  progress: bool = True, merge: bool = False) -> BuildOptions:
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
    options = BuildOptions(tuple(orders), top_k, vocab_size, limit, None, engine, scheduler,
                           workers, partial, compact, progress)
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


"""Build options: defaults and the one home of their checks."""
from __future__ import annotations

import math

import numpy as np

from ..errors import InputError
from ..file import format as fmt

DEFAULT_ORDERS = (2, 3, 4)        # trained best (docs/RESULTS.md, "Several orders")
DEFAULT_WORK_BYTES = 1 << 30      # a bounded build or merge given no --memory-limit: this
                                  # much beyond what the process already holds


def check_orders(orders) -> list[int]:
    """Sorted distinct orders, each an integer in 1..MAX_ORDER; InputError otherwise."""
    try:
        items = list(orders)
    except TypeError:
        items = [orders]
    for n in items:
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or \
                not 1 <= n <= fmt.MAX_ORDER:
            raise InputError(f"order must be an integer in 1..{fmt.MAX_ORDER}, got {n!r}")
    if not items or len(set(items)) != len(items):
        raise InputError(f"orders must be distinct and at least one, got {items!r}")
    return sorted(int(n) for n in items)


def check_top_k(top_k) -> int | None:
    """``top_k`` as a positive int (at most 2^32, more than any vocabulary), or None."""
    if top_k is None:
        return None
    if not isinstance(top_k, (int, np.integer)) or isinstance(top_k, bool) or \
            not 1 <= top_k <= fmt.MAX_VOCAB:
        raise InputError(f"top_k must be an integer in 1..{fmt.MAX_VOCAB} or None, "
                         f"got {top_k!r}")
    return int(top_k)


def parse_size(text) -> int:
    """'1G', '512M', '1.5GiB', '1000000' (or an int) -> bytes."""
    if isinstance(text, (int, np.integer)) and not isinstance(text, bool):
        if not 1 <= text < 1 << 62:
            raise InputError(f"size {text} must be positive and below 2^62 bytes")
        return int(text)
    t = str(text).strip().upper().removesuffix("IB").removesuffix("B")
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}.get(t[-1:], 1)
    try:
        value = float(t[:-1] if scale != 1 else t) * scale
    except ValueError:
        raise InputError(f"cannot read the size {text!r}; use e.g. 1G or 512M") from None
    if not math.isfinite(value) or not 1 <= value < 2.0 ** 62:
        raise InputError(f"size {text!r} must be a positive number of bytes below 2^62 "
                         "(e.g. 1G or 512M)")
    return int(value)

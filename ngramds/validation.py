"""Checks of integer, number, size and choice arguments: the one home of "an integer, not a
bool" (``True`` is an int to Python, never a count or an id to ngramds)."""
from __future__ import annotations

import math

import numpy as np

from .errors import InputError

__all__ = ["is_int", "is_number", "check_int", "check_choice", "parse_size"]


def is_int(x) -> bool:
    """An integer (Python or numpy), not a bool."""
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def is_number(x) -> bool:
    """An integer or a float (Python or numpy), not a bool."""
    return is_int(x) or isinstance(x, (float, np.floating))


def check_int(name: str, value, lo: int, hi: int, *, error: type[Exception] = InputError,
              message: str | None = None) -> int:
    """``value`` as an int once it is an integer in [lo, hi]; otherwise ``error`` naming it.

    Args:
        name: what ``value`` is, as the message names it.
        value: the value to check.
        lo: the least value allowed.
        hi: the greatest value allowed.
        error: the exception raised (:class:`InputError`; a reader of a damaged file gives
            its FormatError).
        message: the message, a template of ``name``, ``value``, ``lo`` and ``hi`` (default:
            "NAME must be an integer in LO..HI, got VALUE").

    Returns:
        ``value`` as a Python int.

    Raises:
        InputError: (or ``error``) ``value`` is no integer (a bool is none) or out of range.
    """
    if not is_int(value) or not lo <= value <= hi:
        template = message or "{name} must be an integer in {lo}..{hi}, got {value!r}"
        raise error(template.format(name=name, value=value, lo=lo, hi=hi))
    return int(value)


def check_choice(name: str, value, choices):
    """``value`` once it is one of ``choices``; InputError naming them otherwise."""
    if value not in choices:
        raise InputError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def parse_size(text) -> int:
    """'1G', '512M', '1.5GiB', '1000000' (or an int) -> bytes; InputError unless a positive
    size below 2^62 bytes."""
    if is_int(text):
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

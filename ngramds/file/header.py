"""The header's fields (spec/FORMAT.md section 3), written and read in one place."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import FormatError
from ..validation import check_int
from ..version import __version__
from . import format as fmt

__all__ = ["TableSpec", "HeaderFields", "table_entry", "file_header", "read_fields"]


class TableSpec(NamedTuple):
    """The header's record of one order's table."""

    order: int
    num_contexts: int
    num_entries: int
    top_k: int | None
    min_count: int = 1  # pruned files: contexts seen fewer times are not stored


class HeaderFields(NamedTuple):
    """The validated fields of a header (without its section table)."""

    vocab_size: int
    num_tokens: int
    num_documents: int
    token_dtype: np.dtype
    tables: list  # [TableSpec], ascending order


def table_entry(order: int, top_k: int | None, num_contexts: int, num_entries: int,
                min_count: int | None = None) -> dict:
    """The header's ``tables`` entry of one order (``min_count``: in pruned files only)."""
    entry = {"order": int(order), "top_k": int(top_k) if top_k else None,
             "num_contexts": int(num_contexts), "num_entries": int(num_entries)}
    if min_count is not None:
        entry["min_count"] = int(min_count)
    return entry


def table_entries(orders, top_k: int | None, arrays: dict, min_count: dict | None) -> list:
    """The ``tables`` entries of a file from its table sections (``arrays``, prefixed; their
    shapes give C and E) and its pruning thresholds (None: unpruned, no ``min_count`` key)."""
    return [table_entry(n, top_k, arrays[fmt.table_prefix(n) + "totals"].shape[0],
                        arrays[fmt.table_prefix(n) + "next_ids"].shape[0],
                        None if not min_count else min_count.get(n, 1)) for n in orders]


def file_header(vocab_size: int, num_tokens: int, num_documents: int, tables: list,
                sources: list, tokenizer: str | None) -> dict:
    """The header fields of a file, without its section table."""
    return {
        "format": "ngramds",
        "vocab_size": int(vocab_size),
        "num_tokens": int(num_tokens),
        "num_documents": int(num_documents),
        "token_dtype": fmt.dtype_name(fmt.token_dtype(vocab_size)),
        "tables": tables,
        "build": {"ngramds": __version__, "sources": [str(s) for s in sources],
                  "tokenizer": tokenizer},
    }


def read_fields(h: dict) -> HeaderFields:
    """The fields of a decoded header, each checked for type and range; FormatError otherwise."""
    if h.get("format") != "ngramds":
        raise FormatError("header does not describe an ngramds file; the file is damaged")
    try:
        vocab_size = _int(h, "vocab_size", 1, fmt.MAX_VOCAB)
        num_tokens = _int(h, "num_tokens", 1, 1 << 62)
        num_documents = _int(h, "num_documents", 1, 1 << 62)
        entries = h["tables"]
        if not isinstance(entries, list) or not entries:
            raise TypeError
        specs = []
        for t in entries:
            top_k = t.get("top_k")
            specs.append(TableSpec(_int(t, "order", 1, fmt.MAX_ORDER),
                                   _int(t, "num_contexts", 1, 1 << 62),
                                   _int(t, "num_entries", 1, 1 << 62),
                                   None if top_k is None else _int(t, "top_k", 1, 1 << 62),
                                   _int(t, "min_count", 1, 1 << 62) if "min_count" in t
                                   else 1))
    except (KeyError, IndexError, TypeError, AttributeError):
        raise FormatError("header lacks required fields; the file is damaged") from None
    if len({s.order for s in specs}) != len(specs):
        raise FormatError("two tables have the same order; the file is damaged")
    thresholds = [s.min_count for s in sorted(specs)]
    if thresholds[0] != 1 or thresholds != sorted(thresholds):
        raise FormatError("min_count must be 1 for the lowest order and not decrease with the "
                          "order; the file is damaged")
    if h.get("token_dtype") != fmt.dtype_name(fmt.token_dtype(vocab_size)):
        raise FormatError("header token dtype does not match its vocab size; damaged file")
    return HeaderFields(vocab_size, num_tokens, num_documents, fmt.token_dtype(vocab_size),
                        sorted(specs))


def _int(d: dict, key: str, lo: int, hi: int) -> int:
    """The header's integer field ``key``, in [lo, hi]; FormatError otherwise."""
    return check_int(key, d[key], lo, hi, error=FormatError, message="header field {name!r} = "
                     "{value!r} is out of range; the file is damaged")

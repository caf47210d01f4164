"""Build an ngramds file from a tokenised corpus (see spec/SEMANTICS.md for what is counted)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import build_kernels as K
from . import format as fmt
from .errors import InputError
from .progress import Progress
from .writer import check_output_dir, write_atomic

__all__ = ["Corpus", "build", "build_tables"]


@dataclass
class Corpus:
    """Token ids of all documents back to back, and document boundaries.

    ``doc_offsets`` has one entry per document plus one: document d is
    ``tokens[doc_offsets[d]:doc_offsets[d + 1]]``.
    """

    tokens: np.ndarray
    doc_offsets: np.ndarray
    sources: list = field(default_factory=list)
    tokenizer: str | None = None
    vocab_size: int | None = None

    @classmethod
    def from_documents(cls, documents) -> "Corpus":
        """A corpus from an iterable of token-id sequences."""
        arrays = [np.asarray(d).reshape(-1) for d in documents]
        for a in arrays:
            if a.size and a.dtype.kind not in "iu":
                raise InputError(f"documents must hold integer token ids, got dtype {a.dtype}")
        lengths = np.array([a.size for a in arrays], dtype=np.int64)
        dtype = np.result_type(*[a.dtype for a in arrays if a.size]) if lengths.sum() else np.int64
        tokens = np.concatenate(arrays).astype(dtype, copy=False) if arrays else np.empty(0, dtype)
        return cls(tokens, np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))


def _check_corpus(corpus: Corpus, vocab_size: int | None) -> tuple[np.ndarray, np.ndarray, int]:
    tokens = np.asarray(corpus.tokens).reshape(-1)
    if tokens.size == 0:
        raise InputError("the corpus is empty (no tokens); give at least one non-empty document")
    if tokens.dtype.kind not in "iu":
        raise InputError(f"token ids must be integers, got dtype {tokens.dtype}")
    vocab_size = check_vocab(int(tokens.min()), int(tokens.max()),
                             vocab_size if vocab_size is not None else corpus.vocab_size)
    doc_offsets = check_doc_offsets(corpus.doc_offsets, tokens.size)
    tokens = tokens.astype(fmt.token_dtype(vocab_size), copy=False)
    return np.ascontiguousarray(tokens), doc_offsets, vocab_size


def check_vocab(lo: int, hi: int, vocab_size: int | None) -> int:
    """The vocabulary size (given, else max id + 1) once the ids [lo, hi] fit it."""
    if lo < 0:
        raise InputError(f"negative token id {lo}; token ids must be in [0, vocab_size)")
    if vocab_size is None:
        vocab_size = hi + 1
    if not 1 <= vocab_size <= fmt.MAX_VOCAB:
        raise InputError(f"vocab_size {vocab_size} is outside [1, 2^32-1]")
    if hi >= vocab_size:
        raise InputError(f"token id {hi} >= vocab_size {vocab_size}; raise --vocab-size or fix "
                         "the input dtype")
    return int(vocab_size)


def check_doc_offsets(doc_offsets, num_tokens: int) -> np.ndarray:
    """Document offsets as int64, once they rise from 0 to ``num_tokens``."""
    doc_offsets = np.asarray(doc_offsets, dtype=np.int64).reshape(-1)
    if (doc_offsets.size < 2 or doc_offsets[0] != 0 or doc_offsets[-1] != num_tokens
            or np.any(np.diff(doc_offsets) < 0)):
        raise InputError("document boundaries must rise from 0 to the number of tokens "
                         f"({num_tokens})")
    return doc_offsets


def _key_layout(m: int, bits: int, next_token: bool = False):
    """Word and shift of each context field (length, t_1..t_m), and of the next token after
    them if ``next_token``, packed MSB-first."""
    widths = [m.bit_length()] + [bits] * (m + next_token)
    word, used, words, shifts, used_bits = 0, 0, [], [], []
    for w in widths:
        if used + w > 64:
            used_bits.append(used)
            word, used = word + 1, 0
        used += w
        words.append(word)
        shifts.append(64 - used if w else 0)
    used_bits.append(used)
    return np.array(words, np.int64), np.array(shifts, np.int64), used_bits


def key_bits(vocab_size: int) -> int:
    """Bits of one token id in a packed key."""
    return max(1, (vocab_size - 1).bit_length())


def _radix_sort(keys: np.ndarray, pos: np.ndarray, used_bits: list[int], lsb: bool):
    """Stable LSD radix sort of ``keys`` [n, words] (and ``pos`` alongside), over the used bits
    of each word: the top ones (``lsb=False``) or the low ones."""
    nchunks = K.num_chunks(keys.shape[0])
    spare_keys, spare_pos = np.empty_like(keys), np.empty_like(pos)
    for w in reversed(range(len(used_bits))):
        lo = 0 if lsb else 64 - used_bits[w]
        for shift in range(lo, lo + used_bits[w], K.RADIX_BITS):
            if K.radix_pass(keys, pos, spare_keys, spare_pos, w, shift, nchunks):
                keys, spare_keys, pos, spare_pos = spare_keys, keys, spare_pos, pos
    return keys, pos


def _group_by_context(tokens, doc_offsets, positions, m, bits):
    """Sort ``positions`` by context (any length, generic key layout); return
    (pos, starts, rows, lengths, nxt, distinct) of that group of positions."""
    words, shifts, used_bits = _key_layout(m, bits)
    keys = np.empty((positions.size, len(used_bits)), np.uint64)
    K.pack_contexts(tokens, doc_offsets, positions, m, words, shifts, keys)
    keys, pos = _radix_sort(keys, positions, used_bits, lsb=False)
    starts = K.group_starts(keys, 0, K.num_chunks(pos.size))
    rows = np.empty((starts.size - 1, m), tokens.dtype)
    lengths = np.empty(starts.size - 1, np.uint8)
    len_mask = (1 << m.bit_length()) - 1
    K.context_rows(tokens, keys, pos, starts, words[0], shifts[0], len_mask, rows, lengths)
    del keys
    nxt = np.empty(pos.size, tokens.dtype)
    distinct = np.empty(starts.size - 1, np.int64)
    K.sorted_next_tokens(tokens, pos, starts, nxt, distinct)
    return pos, starts, rows, lengths, nxt, distinct


def _group_by_ngram(tokens, doc_offsets, m, bits, pos_dtype):
    """Fast path when an (m+1)-gram fits in 64 bits: sort whole n-grams, so next tokens come
    out sorted within each context. Returns the parts of positions with short contexts
    (document starts) and with full ones, each as in :func:`_group_by_context`."""
    n = tokens.size
    short = int(np.minimum(np.diff(doc_offsets), m).sum())
    keys = np.empty((n - short, 1), np.uint64)
    full_pos = np.empty(n - short, pos_dtype)
    short_pos = np.empty(short, pos_dtype)
    K.pack_ngrams(tokens, doc_offsets, m, bits, keys, full_pos, short_pos, K.num_chunks(n))
    short_part = _group_by_context(tokens, doc_offsets, short_pos, m, bits)
    keys, pos = _radix_sort(keys, full_pos, [(m + 1) * bits], lsb=True)
    starts = K.group_starts(keys, bits, K.num_chunks(pos.size))
    rows = np.empty((starts.size - 1, m), tokens.dtype)
    K.ngram_context_rows(tokens, pos, starts, rows)
    nxt = np.empty(pos.size, tokens.dtype)
    distinct = np.empty(starts.size - 1, np.int64)
    K.ngram_next_tokens(keys, starts, bits, nxt, distinct)
    lengths = np.full(starts.size - 1, m, np.uint8)
    return [short_part, (pos, starts, rows, lengths, nxt, distinct)]


TABLE_STAGES = ("sorting contexts", "counting next tokens", "assembling distributions")


def build_tables(tokens: np.ndarray, doc_offsets: np.ndarray, order: int, vocab_size: int,
                 top_k: int | None = None, progress: Progress | None = None) -> dict:
    """Compute the context table of one order; return its arrays by section name (no prefix)."""
    progress = progress or Progress([], enabled=False)
    n, m = tokens.size, order - 1
    bits = key_bits(vocab_size)
    pos_dtype = np.promote_types(np.uint32, fmt.uint_dtype(n - 1))

    progress.step("sorting contexts")
    if m and (m + 1) * bits <= 64:
        parts = _group_by_ngram(tokens, doc_offsets, m, bits, pos_dtype)
    else:
        parts = [_group_by_context(tokens, doc_offsets, np.arange(n, dtype=pos_dtype), m, bits)]
    # contexts are numbered by length first, so the parts (short, then full) just concatenate
    pos, starts, rows, lengths, nxt, distinct = _concatenate(parts)
    del parts
    num_contexts = starts.size - 1
    length_offsets = np.zeros(m + 2, np.uint64)
    np.cumsum(np.bincount(lengths, minlength=m + 1), out=length_offsets[1:])

    progress.step("counting next tokens")
    position_contexts = np.empty(n, fmt.uint_dtype(max(0, num_contexts - 1)))
    K.position_contexts(pos, starts, position_contexts)
    del pos
    kept = distinct if not top_k else np.minimum(distinct, top_k)
    entry_offsets = np.zeros(num_contexts + 1, np.int64)
    np.cumsum(kept, out=entry_offsets[1:])
    del kept
    totals = np.diff(starts)
    max_total = int(totals.max())
    num_entries = int(entry_offsets[-1])

    progress.step("assembling distributions")
    next_ids = np.empty(num_entries, tokens.dtype)
    counts = np.empty(num_entries, fmt.uint_dtype(max_total))
    K.fill_entries(nxt, starts, distinct, entry_offsets, next_ids, counts)
    del nxt, distinct, starts
    count_dtype = fmt.uint_dtype(int(counts.max()) if num_entries else 0)
    return {
        "context_length_offsets": length_offsets,
        "context_tokens": rows,
        "entry_offsets": entry_offsets.astype(fmt.uint_dtype(num_entries)),
        "next_ids": next_ids,
        "counts": counts.astype(count_dtype, copy=False),
        "totals": totals.astype(fmt.uint_dtype(max_total)),
        "position_contexts": position_contexts,
    }


def _concatenate(parts):
    """Join per-part (pos, starts, rows, lengths, nxt, distinct), offsetting ``starts``."""
    if len(parts) == 1:
        return parts[0]
    base = np.cumsum([0] + [p[0].size for p in parts])
    starts = np.concatenate([p[1][:-1] + b for p, b in zip(parts, base)] + [base[-1:]])
    return (np.concatenate([p[0] for p in parts]), starts,
            *(np.concatenate([p[i] for p in parts]) for i in (2, 3, 4, 5)))


DEFAULT_ORDERS = (2, 3, 4)  # trained best (docs/RESULTS.md, "Several orders")


def build(source, output, *, order: int | None = None, orders=None, top_k: int | None = None,
          vocab_size: int | None = None, doc_offsets=None, doc_lengths=None,
          progress: bool = True, memory_limit: int | str | None = None, tmp_dir=None,
          engine: str = "local", scheduler: str | None = None, workers: int | None = None,
          partial: bool = False, **input_options) -> Path:
    """Build an ngramds file at ``output`` and return its path.

    ``source`` is a :class:`Corpus`, a 1-D integer array (documents given by ``doc_offsets``,
    ``doc_lengths`` or ``eos_id``; else one document), an iterable of token-id sequences (one
    per document), or input file path(s) read with ``input_options`` (see
    :func:`ngramds.inputs.load_corpus`). The file stores one table for each of ``orders``
    (default 2, 3, 4: what the default Witten-Bell targets use), sharing one token stream, or
    only the table of ``order``.

    ``memory_limit`` (bytes, or a size such as "1G") bounds the build's memory by spilling
    sorted runs under ``tmp_dir`` (default: beside ``output``); ``engine="dask"`` runs those
    steps on a Dask cluster (``scheduler`` address, else ``workers`` local processes);
    ``partial`` writes a shard's runs to the directory ``output`` for
    :func:`ngramds.merge`. All give the same file as the in-memory build (docs/SCALE.md).
    """
    from .inputs import load_corpus, load_stream  # inputs imports builder's Corpus

    if order is not None and orders is not None:
        raise InputError("give order (one table) or orders (several), not both")
    orders = check_orders(orders if orders is not None else
                          DEFAULT_ORDERS if order is None else [order])
    if top_k is not None and (not isinstance(top_k, (int, np.integer)) or top_k < 1):
        raise InputError(f"top_k must be a positive integer or None, got {top_k!r}")
    check_output_dir(output)  # fail before the work, not after it
    if memory_limit is not None or engine != "local" or partial:
        from .bounded import build_bounded
        from .external import parse_size
        stream = load_stream(source, doc_offsets=doc_offsets, doc_lengths=doc_lengths,
                             **input_options)
        limit = parse_size(memory_limit) if memory_limit is not None else 1 << 30
        return build_bounded(stream, output, orders=orders, top_k=top_k,
                             vocab_size=vocab_size, memory_limit=limit, tmp_dir=tmp_dir,
                             engine=engine, scheduler=scheduler, workers=workers,
                             partial=partial, progress=progress)
    t0 = time.perf_counter()
    stages = ["reading input", *TABLE_STAGES * len(orders), "writing file"]
    bar = Progress(stages, enabled=progress)
    bar.step("reading input")
    corpus = load_corpus(source, doc_offsets=doc_offsets, doc_lengths=doc_lengths,
                         **input_options)
    tokens, offsets, vocab_size = _check_corpus(corpus, vocab_size)
    num_docs = offsets.size - 1
    arrays = {"tokens": tokens,
              "doc_offsets": offsets.astype(fmt.uint_dtype(tokens.size))}
    tables = []
    for n in orders:
        bar.suffix = f" (order {n})" if len(orders) > 1 else ""
        table = build_tables(tokens, offsets, n, vocab_size, top_k, bar)
        arrays.update({fmt.table_prefix(n) + k: v for k, v in table.items()})
        tables.append(table_entry(n, top_k, table["totals"].size, table["next_ids"].size))
        del table
    header = file_header(vocab_size, tokens.size, num_docs, tables, corpus.sources,
                         corpus.tokenizer)
    bar.suffix = ""
    bar.step("writing file")
    size = write_atomic(Path(output), header, arrays)
    dt = time.perf_counter() - t0
    contexts = ", ".join(f"{t['num_contexts']:,}" for t in tables)
    bar.finish(f"ngramds: built {output}: {tokens.size:,} tokens, {num_docs:,} documents, "
               f"order {','.join(map(str, orders))}, {contexts} contexts, "
               f"{size / 2**20:.1f} MiB in {dt:.2f}s ({tokens.size / dt / 1e6:.2f}M tokens/s)")
    return Path(output)


def table_entry(order: int, top_k: int | None, num_contexts: int, num_entries: int) -> dict:
    """The header's ``tables`` entry of one order."""
    return {"order": int(order), "top_k": int(top_k) if top_k else None,
            "num_contexts": int(num_contexts), "num_entries": int(num_entries)}


def file_header(vocab_size: int, num_tokens: int, num_documents: int, tables: list,
                sources: list, tokenizer: str | None) -> dict:
    """The header fields of a file (spec/FORMAT.md section 3), without its section table."""
    return {
        "format": "ngramds",
        "vocab_size": int(vocab_size),
        "num_tokens": int(num_tokens),
        "num_documents": int(num_documents),
        "token_dtype": fmt.dtype_name(fmt.token_dtype(vocab_size)),
        "tables": tables,
        "build": {"ngramds": _version(), "sources": [str(s) for s in sources],
                  "tokenizer": tokenizer},
    }


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


def _version() -> str:
    from . import __version__
    return __version__

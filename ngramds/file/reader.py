"""Open ngramds files: zero-copy numpy views over a read-only memory map."""
from __future__ import annotations

import mmap
import os
import stat
from pathlib import Path

import numpy as np
from ..errors import ChecksumError, FileAccessError, FormatError, InputError
from ..validation import is_int
from . import format as fmt
from .header import read_fields
from .search import document_starts, find_contexts, find_row, search_contexts  # noqa: F401
from .verify import check_file

__all__ = ["NgramFile", "Table", "open_file"]


class NgramFile:
    """A built ngramds file. Arrays are read-only views into the mapped file.

    Open with :func:`ngramds.open`. Pickling re-opens the file by path (spawned workers).

    Args:
        path: the file.
        verify: also check every checksum and invariant (as :meth:`verify`).

    Raises:
        FileAccessError: the path cannot be read.
        FormatError: not an ngramds file, an unsupported version, or a damaged structure.
        ChecksumError: with ``verify=True``, a section does not match its checksum.
    """

    def __init__(self, path: str | os.PathLike, verify: bool = False):
        self.path = Path(path)
        try:
            self._open()
        except FormatError as exc:
            raise type(exc)(f"{self.path}: {exc}") from None
        if verify:
            self.verify()

    def _open(self) -> None:
        self._map = _map_file(self.path)
        size = len(self._map)
        self.version: int  # format version: 2, or 1 (every table has position ids)
        self.version, header_len, header_crc = fmt.read_preamble(
            self._map[:fmt.PREAMBLE_SIZE], size)
        self.header_crc: int = header_crc  # names the content: it covers every section CRC
        raw = self._map[fmt.PREAMBLE_SIZE:fmt.PREAMBLE_SIZE + header_len]
        self.header = fmt.decode_header(raw, header_crc)
        #: some table is pruned (min_count; spec/FORMAT.md, "Pruned files"): the highest
        #: table's position ids are global ids (:meth:`contexts_at`)
        self.pruned: bool = bool(fmt.read_flags(self._map[:fmt.PREAMBLE_SIZE]) & fmt.PRUNED)
        self.sections = fmt.parse_sections(self.header, size, fmt.PREAMBLE_SIZE + header_len)
        self._read_fields()
        self._arrays = {name: self._view(s) for name, s in self.sections.items()}
        self._check_shapes()

    # -- header -----------------------------------------------------------------------------
    def _read_fields(self) -> None:
        fields = read_fields(self.header)
        self.vocab_size: int = fields.vocab_size
        self.num_tokens: int = fields.num_tokens
        self.num_documents: int = fields.num_documents
        self.token_dtype: np.dtype = fields.token_dtype
        self._specs = fields.tables
        if self.pruned != any(spec.min_count > 1 for spec in self._specs):
            raise FormatError("the preamble's pruned flag disagrees with the tables' min_count; "
                              "the file is damaged")

    def _view(self, s: fmt.Section) -> np.ndarray:
        count = s.length // s.dtype.itemsize
        flat = np.frombuffer(self._map, s.dtype, count, s.offset) if count else \
            np.empty(0, s.dtype)
        try:
            arr = flat.reshape(s.shape)
        except ValueError:  # a shape numpy cannot hold, e.g. [0, 2^62]: kept flat (a known
            arr = flat      # section then fails the shape check, an unknown one is ignored)
        arr.flags.writeable = False
        return arr

    def _check_shapes(self) -> None:
        n, d, t = self.num_tokens, self.num_documents, self.token_dtype
        expect = {"tokens": ((n,), {t}), "doc_offsets": ((d + 1,), None)}
        ends = [("doc_offsets", 0, n)]  # offsets sections: (name, first value, last value)
        orders = sorted(spec.order for spec in self._specs)
        for order, c, e, *_ in self._specs:
            p, m = fmt.table_prefix(order), order - 1
            if self.version == 1 or (order == orders[-1] and
                                     p + "position_contexts" in self._arrays):  # else compact
                expect[p + "position_contexts"] = ((n,), None)
            if self.version >= 2 and order != orders[0]:
                expect[p + "lower_contexts"] = ((c,), None)
            expect.update({
                p + "context_length_offsets": ((m + 2,), None),
                p + "context_tokens": ((c, m), {t}),
                p + "entry_offsets": ((c + 1,), None),
                p + "next_ids": ((e,), {t}),
                p + "counts": ((e,), None),
                p + "totals": ((c,), None),
            })
            ends += [(p + "entry_offsets", 0, e), (p + "context_length_offsets", 0, c)]
        if "prompt_lengths" in self._arrays:  # optional
            expect["prompt_lengths"] = ((d,), None)
        top, below = orders[-1], orders[-2] if len(orders) > 1 else None
        prefixes = fmt.table_prefix(top) + "prefix_offsets"
        use_prefixes = (self.version >= 2 and below == top - 1 and prefixes in self._arrays
                        and fmt.table_prefix(top) + "position_contexts" not in self._arrays
                        and not self.pruned)  # (a pruned file has none: ignored)
        if use_prefixes:  # optional, compact files only
            specs = {spec.order: spec for spec in self._specs}
            expect[prefixes] = ((specs[below].num_contexts + 1,), None)
        for name, (shape, dtypes) in expect.items():
            if name not in self._arrays:
                raise FormatError(f"section {name!r} is missing; the file is damaged")
            arr = self._arrays[name]
            if arr.shape != shape or (dtypes and arr.dtype not in dtypes):
                raise FormatError(f"section {name!r} has shape {arr.shape} {arr.dtype}, "
                                  f"expected {shape}; the file is damaged")
        if use_prefixes:  # extensions of the lower contexts: every context of length >= 1
            first = int(self._arrays[fmt.table_prefix(top) + "context_length_offsets"][1])
            ends.append((prefixes, first, specs[top].num_contexts))
        for name, first, last in ends:
            arr = self._arrays[name]
            if int(arr[0]) != first or int(arr[-1]) != last:
                raise FormatError(f"offset section {name!r} does not run from {first} to "
                                  f"{last}; the file is damaged")
        self.tables = {spec.order: Table(self, *spec) for spec in self._specs}
        for low, high in zip(orders, orders[1:]):
            self.tables[high].lower = self.tables[low]
        #: pruned files: the first global id of each table (the highest table's ids first)
        self.id_bases = dict(zip(orders[::-1], np.cumsum(
            [0] + [self.tables[o].num_contexts for o in orders[::-1]]).tolist()))
        # only the sections this version has (and were checked above): any other is unknown
        for order, table in self.tables.items():
            p = fmt.table_prefix(order)
            if self.version == 1 or order == orders[-1]:
                table.position_contexts = self._arrays.get(p + "position_contexts")
            if self.version >= 2 and order != orders[0]:
                table._lower_contexts = self._arrays[p + "lower_contexts"]
            if use_prefixes and order == top:
                table.prefix_offsets = self._arrays[prefixes]
        for table in self.tables.values():
            if np.any(np.diff(table.context_length_offsets.astype(np.int64)) < 0):
                raise FormatError("context length offsets are not sorted; the file is damaged")

    # -- tables -----------------------------------------------------------------------------
    @property
    def orders(self) -> list[int]:
        """Stored orders, ascending."""
        return sorted(self.tables)

    @property
    def order(self) -> int:
        """The highest stored order: the default table of queries and targets."""
        return self.orders[-1]

    def table(self, order: int | None = None) -> "Table":
        """The table of ``order`` (default: the highest stored order)."""
        if order is None:
            return self.tables[self.order]
        if order not in self.tables:
            raise InputError(f"order {order} is not stored in {self.path}; stored orders: "
                             f"{', '.join(map(str, self.orders))}")
        return self.tables[order]

    @property
    def tokens(self) -> np.ndarray:
        """Token stream [num_tokens]."""
        return self._arrays["tokens"]

    @property
    def doc_offsets(self) -> np.ndarray:
        """Document d spans tokens[doc_offsets[d]:doc_offsets[d+1]]."""
        return self._arrays["doc_offsets"]

    @property
    def prompt_lengths(self) -> np.ndarray | None:
        """Tokens of each document's prompt (never a label in training items), or None when
        the file was built without them."""
        return self._arrays.get("prompt_lengths")

    def section(self, name: str) -> np.ndarray:
        """The read-only array of section ``name`` (see spec/FORMAT.md), e.g. "order4/counts"."""
        if name not in self._arrays:
            raise InputError(f"{self.path} has no section {name!r}; sections: "
                             f"{', '.join(self._arrays)}")
        return self._arrays[name]

    # -- the highest order's table, read as the file's own ------------------------------------
    @property
    def top_k(self) -> int | None:
        return self.table().top_k

    @property
    def num_contexts(self) -> int:
        return self.table().num_contexts

    @property
    def num_entries(self) -> int:
        return self.table().num_entries

    @property
    def context_length_offsets(self) -> np.ndarray:
        return self.table().context_length_offsets

    @property
    def context_tokens(self) -> np.ndarray:
        return self.table().context_tokens

    @property
    def entry_offsets(self) -> np.ndarray:
        return self.table().entry_offsets

    @property
    def next_ids(self) -> np.ndarray:
        return self.table().next_ids

    @property
    def counts(self) -> np.ndarray:
        return self.table().counts

    @property
    def totals(self) -> np.ndarray:
        return self.table().totals

    @property
    def position_contexts(self) -> np.ndarray | None:
        """The highest table's context id of every position; None in a compact file (see
        :meth:`contexts_at`)."""
        return self.table().position_contexts

    def chain(self, order: int | None = None) -> list["Table"]:
        """The tables from the highest stored one down to that of ``order`` (default: the
        highest alone), each the previous one's :attr:`Table.lower`: the path a position's
        context id follows (spec/FORMAT.md, section 6)."""
        target, tables = self.table(order), [self.table()]
        while tables[-1] is not target:
            tables.append(tables[-1].lower)
        return tables

    @property
    def num_ids(self) -> int:
        """The position ids' range: the highest table's contexts, in a pruned file every
        table's (global ids)."""
        return sum(t.num_contexts for t in self.tables.values()) if self.pruned else \
            self.table().num_contexts

    def contexts_at(self, positions, order: int | None = None) -> np.ndarray:
        """Context ids (int64) of token ``positions`` in the table of ``order`` (default: the
        highest): the highest table's ids, then each table's ``lower_contexts`` down to
        ``order`` (spec/FORMAT.md, section 6). In a pruned file, -1 where the position's
        context of that order is pruned (unseen)."""
        chain = self.chain(order)
        positions = np.asarray(positions, dtype=np.int64)
        if positions.size and (positions.min() < 0 or positions.max() >= self.num_tokens):
            raise InputError(f"positions must lie in 0..{self.num_tokens - 1}")
        if self.pruned:
            return self.split_ids(self.global_ids(positions), chain)
        table = chain[0]
        if table.position_contexts is None:  # a compact file: found from the tokens
            ids = np.empty(positions.size, np.int64)
            prefixes = table.prefix_offsets
            links = table.lower_contexts if prefixes is not None else None
            empty = np.zeros(0, np.uint8)
            if not find_contexts(self.tokens, self.doc_offsets, table.context_tokens,
                                 table.context_length_offsets, *table.first_tokens,
                                 empty if links is None else links,
                                 empty if prefixes is None else prefixes, positions, ids):
                raise FormatError("a position's context is not in the table; the file is "
                                  "damaged (run verify)")
        else:
            ids = _checked_take(table.position_contexts, positions, table.num_contexts,
                                "position_contexts")
        for high, low in zip(chain, chain[1:]):
            ids = _checked_take(high.lower_contexts, ids, low.num_contexts, "lower_contexts")
        return ids

    def global_ids(self, positions: np.ndarray) -> np.ndarray:
        """Pruned files: the global id (int64) of each position's deepest stored context
        (spec/FORMAT.md, "Pruned files"): read, or in a compact file searched in the highest
        table, then in each lower one for the positions not found yet."""
        top = self.table()
        if top.position_contexts is not None:
            return _checked_take(top.position_contexts, positions, self.num_ids,
                                 "position_contexts")
        ids = np.full(positions.size, -1, np.int64)
        for order in self.orders[::-1]:
            table, todo = self.tables[order], np.flatnonzero(ids < 0)
            if not todo.size:
                break
            found = np.empty(todo.size, np.int64)
            if not search_contexts(self.tokens, self.doc_offsets, table.context_tokens,
                                   table.context_length_offsets, *table.first_tokens,
                                   positions[todo], found):
                raise FormatError("a position or document offset is outside the tokens; "
                                  "the file is damaged (run verify)")
            ids[todo] = np.where(found >= 0, found + self.id_bases[order], -1)
        if (ids < 0).any():
            raise FormatError("a position's context is not in the lowest table; the file is "
                              "damaged (run verify)")
        return ids

    def split_ids(self, ids: np.ndarray, chain: list) -> np.ndarray:
        """Pruned files: the context ids in ``chain[-1]``'s table (-1: pruned there) of the
        positions whose global ids are ``ids``, following the links down ``chain``."""
        out, above = None, None
        for table in chain:
            base = self.id_bases[table.order]
            here = np.where((ids >= base) & (ids < base + table.num_contexts), ids - base, -1)
            if out is not None:
                live = out >= 0
                here[live] = _checked_take(above.lower_contexts, out[live], table.num_contexts,
                                           "lower_contexts")
            out, above = here, table
        return out

    # -- queries ----------------------------------------------------------------------------
    def table_for(self, context, order: int | None = None) -> "Table":
        """The table of ``order``; by default the one where ``context`` is a full context (its
        length + 1) when stored, else the highest order."""
        if order is None:
            length = np.asarray(context).size
            order = length + 1 if length + 1 in self.tables else self.order
        return self.table(order)

    def context_id(self, context, order: int | None = None) -> int:
        """Id of ``context`` (token ids, oldest first) in the table of ``order`` (default: see
        :meth:`distribution`), or -1 if unseen."""
        return self.table_for(context, order).context_id(context)

    def distribution(self, context, order: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(next_ids, counts) of ``context`` in stored order; empty arrays if unseen.

        ``order`` defaults to len(context) + 1 when that order is stored (the tokens are a full
        context), else the highest order, where a context shorter than order - 1 means "that
        many tokens after a document start".
        """
        return self.table_for(context, order).distribution(context)

    def total(self, context, order: int | None = None) -> int:
        """Number of positions with ``context`` (exact, also with --top-k); 0 if unseen."""
        return self.table_for(context, order).total(context)

    def document(self, d: int) -> np.ndarray:
        """Tokens of document ``d``."""
        return self.tokens[int(self.doc_offsets[d]):int(self.doc_offsets[d + 1])]

    # -- integrity --------------------------------------------------------------------------
    def verify(self) -> None:
        """Recompute every section checksum, check that nothing follows the last section and
        every invariant of spec/FORMAT.md (section 5).

        Raises:
            ChecksumError: a section's checksum fails.
            FormatError: bytes after the last section, or an invariant broken.
        """
        try:
            for name, s in self.sections.items():
                if fmt.crc32(self._arrays[name]) != s.crc32:
                    raise ChecksumError(f"section {name!r} fails its checksum; the file is "
                                        "damaged, rebuild it")
            end = max(s.offset + s.length for s in self.sections.values())
            if len(self._map) != end:
                raise FormatError(f"{len(self._map) - end:,} bytes after the last section "
                                  f"(which ends at byte {end:,}): the file was changed after "
                                  "it was written")
            check_file(self)
        except FormatError as exc:
            raise type(exc)(f"{self.path}: {exc}") from None

    # -- lifecycle --------------------------------------------------------------------------
    def close(self) -> None:
        """Release the arrays and the map (arrays handed out earlier keep it alive)."""
        self._arrays, self.tables = {}, {}
        self._map = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __reduce__(self):
        return (NgramFile, (str(self.path),))

    def __repr__(self) -> str:
        orders = ",".join(map(str, self.orders))
        return (f"NgramFile({str(self.path)!r}, orders={orders}, vocab_size={self.vocab_size}, "
                f"num_tokens={self.num_tokens})")


class Table:
    """The context table of one order: read-only array views (spec/FORMAT.md) and lookups."""

    def __init__(self, f: NgramFile, order: int, num_contexts: int, num_entries: int,
                 top_k: int | None, min_count: int = 1):
        self.order, self.num_contexts, self.num_entries, self.top_k = (
            order, num_contexts, num_entries, top_k)
        #: contexts seen fewer times are not stored (1: none pruned; spec/FORMAT.md)
        self.min_count = min_count
        self.vocab_size = f.vocab_size
        self.prefix = p = fmt.table_prefix(order)
        self.context_length_offsets: np.ndarray = f.section(p + "context_length_offsets")
        self.context_tokens: np.ndarray = f.section(p + "context_tokens")
        self.entry_offsets: np.ndarray = f.section(p + "entry_offsets")
        self.next_ids: np.ndarray = f.section(p + "next_ids")
        self.counts: np.ndarray = f.section(p + "counts")
        self.totals: np.ndarray = f.section(p + "totals")
        #: context id of every token position: the highest order's table only (format 1:
        #: every table); None elsewhere and in a compact file. Other tables' ids follow from
        #: it by ``lower_contexts`` (:meth:`NgramFile.contexts_at`). Set by the file.
        self.position_contexts: np.ndarray | None = None
        #: the next lower stored order's table (None for the lowest)
        self.lower: Table | None = None
        self._lower_contexts: np.ndarray | None = None  # format 2: set by the file
        #: compact files, highest table, when order-1 is stored too: the contexts made of
        #: lower context c' and one more token are ids [prefix_offsets[c'],
        #: prefix_offsets[c'+1]) (spec/FORMAT.md). Set by the file.
        self.prefix_offsets: np.ndarray | None = None
        self._first_tokens: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def first_tokens(self) -> tuple[np.ndarray, np.ndarray]:
        """(tokens, offsets): full-length contexts starting with tokens[j] are ids
        [offsets[j], offsets[j+1]) (int64, the distinct first tokens only; computed once per
        process): narrows the search of a compact file's contexts."""
        if self._first_tokens is None:
            m = self.order - 1
            lo, hi = (int(x) for x in self.context_length_offsets[m:m + 2])
            first = np.asarray(self.context_tokens[lo:hi, 0] if m else np.zeros(0), np.int64)
            starts = np.flatnonzero(np.diff(first, prepend=-1))  # rows where a token begins
            self._first_tokens = (first[starts], lo + np.append(starts, first.size))
        return self._first_tokens

    @property
    def lower_contexts(self) -> np.ndarray | None:
        """Per context, the id in :attr:`lower`'s table of the context of the same positions
        (None for the lowest table). Format-1 files store no links: they are derived once from
        both tables' position ids."""
        if self._lower_contexts is None and self.lower is not None:
            high, low = self.position_contexts, self.lower.position_contexts
            links = np.zeros(self.num_contexts, low.dtype)
            if high.size and int(high.max()) >= self.num_contexts:
                raise FormatError(f"{self.prefix}position_contexts holds ids past the table; "
                                  "the file is damaged (run verify)")
            links[high] = low
            links.flags.writeable = False
            self._lower_contexts = links
        return self._lower_contexts

    def context_id(self, context) -> int:
        """Id of ``context`` (up to order-1 token ids, oldest first), or -1 if unseen (also
        for ids outside the vocabulary); InputError for ids that are not integers."""
        query = _token_ids(context, self.vocab_size)
        m = self.order - 1
        if query is None:
            return -1
        if query.size > m:
            raise InputError(f"context has {query.size} tokens; order {self.order} contexts "
                             f"have at most {m}")
        lo = int(self.context_length_offsets[query.size])
        hi = int(self.context_length_offsets[query.size + 1])
        padded = np.zeros(m, np.int64)
        padded[:query.size] = query
        return int(find_row(self.context_tokens, lo, hi, padded, m))

    def distribution(self, context) -> tuple[np.ndarray, np.ndarray]:
        """(next_ids, counts) of ``context`` in stored order; empty arrays if unseen."""
        cid = self.context_id(context)
        if cid < 0:
            return self.next_ids[:0], self.counts[:0]
        lo, hi = int(self.entry_offsets[cid]), int(self.entry_offsets[cid + 1])
        if not 0 <= lo <= hi <= self.num_entries:
            raise FormatError("entry offsets out of range; the file is damaged (run verify)")
        return self.next_ids[lo:hi], self.counts[lo:hi]

    def total(self, context) -> int:
        """Number of positions with ``context`` (exact, also with --top-k); 0 if unseen."""
        cid = self.context_id(context)
        return 0 if cid < 0 else int(self.totals[cid])

    def __repr__(self) -> str:
        return (f"Table(order={self.order}, num_contexts={self.num_contexts}, "
                f"num_entries={self.num_entries}, top_k={self.top_k})")


def _token_ids(context, vocab_size: int) -> np.ndarray | None:
    """``context`` as int64 ids; None when one is outside [0, vocab_size) (unseen)."""
    items = np.asarray(context, dtype=object).reshape(-1)
    for t in items:
        if not is_int(t):
            raise InputError(f"context token ids must be integers, got {t!r}")
    if any(not 0 <= t < vocab_size for t in items):
        return None
    return items.astype(np.int64)


def _checked_take(array: np.ndarray, index: np.ndarray, limit: int, name: str) -> np.ndarray:
    """array[index] as int64, every value checked to be < ``limit`` (unsigned: a 64-bit value
    past 2^63 reads negative, and is refused too)."""
    out = array[index].astype(np.int64)
    if out.size and (int(out.max()) >= limit or int(out.min()) < 0):
        raise FormatError(f"{name} holds ids past its table; the file is damaged (run verify)")
    return out


def _map_file(path: Path) -> mmap.mmap:
    try:
        # non-blocking: opening a FIFO must not wait for a writer
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with open(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if stat.S_ISDIR(st.st_mode):
                raise IsADirectoryError
            if not stat.S_ISREG(st.st_mode):
                raise FileAccessError(f"{path} is not a regular file (a pipe, device or "
                                      "socket); give an ngramds file")
            size = st.st_size
            if size < fmt.PREAMBLE_SIZE:
                raise FormatError(f"file is {size} bytes, too short for an ngramds file")
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except FileNotFoundError:
        raise FileAccessError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise FileAccessError(f"{path} is a directory, not an ngramds file") from None
    except PermissionError:
        raise FileAccessError(f"{path} is not readable (permission denied)") from None
    except (FileAccessError, FormatError):
        raise
    except (OSError, ValueError) as exc:
        raise FileAccessError(f"cannot map {path}: {exc}") from None


def open_file(path: str | os.PathLike, verify: bool = False) -> NgramFile:
    """Open an ngramds file: memory-map it and check its structure (no data read).

    Args:
        path: the file (format version 1 or 2).
        verify: also check every section's checksum and the content's invariants
            (reads the whole file; :meth:`NgramFile.verify` does it later).

    Returns:
        The open :class:`NgramFile`.

    Raises:
        FileAccessError: the path cannot be read.
        FormatError: not an ngramds file, an unsupported version, or a damaged structure.
        ChecksumError: with ``verify=True``, a section's content does not match its checksum.
    """
    return NgramFile(path, verify=verify)

"""Columnar corpora: parquet and Arrow IPC files, HuggingFace ``datasets`` objects. One row is
one document; one column holds its text (to tokenise) or its token ids (a list of integers).
Read batch by batch; token ids come as numpy views of the Arrow buffers (no copy)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..errors import InputError

__all__ = ["COLUMNAR", "Column", "is_columnar", "is_hf_dataset", "open_columnar", "open_hf"]

COLUMNAR = (".parquet", ".arrow", ".feather", ".ipc")
BATCH_ROWS = 1024
MIB = 1 << 20
ID_NAMES = ("input_ids", "token_ids", "ids", "tokens")  # guessed in this order


@dataclass
class Column:
    """The chosen column of a columnar corpus: ``kind`` "text" or "ids", its ``name``, a
    callable yielding its chunks (Arrow arrays, in row order) with the fraction of the input
    read after each, and the number of rows when known."""

    kind: str
    name: str
    chunks: Callable[[], Iterator[tuple]]
    rows: int | None
    where: str
    row_bytes: int | None = None  # the most bytes one row may hold (None: no bound)

    def texts(self) -> Iterator[tuple[list[str], float | None]]:
        """(the texts of a chunk, fraction read)."""
        import pyarrow.compute as pc
        done = 0
        for chunk, frac in self.chunks():
            _check_chunk(chunk, self.where, self.name)
            if self.row_bytes is not None:
                sizes = pc.binary_length(chunk).to_numpy(zero_copy_only=False)
                check_rows(self.where, done, sizes, sizes, "bytes of text", self.row_bytes)
            done += len(chunk)
            yield chunk.to_pylist(), frac

    def ids(self) -> Iterator[tuple[np.ndarray, np.ndarray, float | None]]:
        """(token ids of a chunk, one document length per row, fraction read)."""
        import pyarrow.compute as pc
        done = 0
        for chunk, frac in self.chunks():
            # lengths from the list offsets: a row too large is refused before its ids are
            # touched (memory-mapped files) or converted
            _check_chunk(chunk, self.where, self.name)
            lengths = pc.list_value_length(chunk).to_numpy(zero_copy_only=False)
            if lengths.size and lengths.min() < 0:
                raise InputError(f"{self.where}: column {self.name!r} is damaged (its list "
                                 f"offsets fall at row {done + int(lengths.argmin()) + 1:,}); "
                                 "rewrite the file")
            if self.row_bytes is not None:
                check_rows(self.where, done, lengths, lengths * _value_bytes(chunk.type),
                           "token ids", self.row_bytes)
            done += len(chunk)
            flat = chunk.flatten()
            if flat.null_count:
                raise InputError(f"{self.where}: column {self.name!r} holds null token ids")
            yield flat.to_numpy(zero_copy_only=False), lengths.astype(np.int64), frac


def _check_chunk(chunk, where: str, name: str) -> None:
    """InputError naming the file when a chunk has null rows or its buffers do not hold
    together (list or string offsets past the values: a damaged file); Arrow's cheap checks,
    not a pass over the values."""
    import pyarrow as pa
    if chunk.null_count:
        raise InputError(f"{where}: column {name!r} has null rows; fill or drop them first")
    try:
        chunk.validate()
    except pa.ArrowException as exc:
        raise InputError(f"{where}: column {name!r} is damaged ({_first_line(exc)}); rewrite "
                         "the file") from None


def check_rows(where: str, first: int, counts: np.ndarray, sizes: np.ndarray, what: str,
               row_bytes: int) -> None:
    """InputError naming the first row (numbered from 1, ``first`` rows before these) whose
    ``sizes`` (bytes) exceed ``row_bytes``, the most one read may hold under the memory
    limit."""
    over = np.flatnonzero(np.asarray(sizes) > row_bytes)
    if over.size:
        i = int(over[0])
        raise InputError(f"{where}: row {first + i + 1:,} holds {int(counts[i]):,} {what} "
                         f"({int(sizes[i]) / MIB:.1f} MiB), more than one read may hold under "
                         f"the memory limit ({row_bytes / MIB:.1f} MiB); raise --memory-limit "
                         "(memory_limit=) or split the row")


def _value_bytes(type_) -> int:
    """Bytes of one value of a list type once read (at least 1)."""
    return max(1, getattr(type_.value_type, "bit_width", 64) // 8)


def is_columnar(path: Path) -> bool:
    return path.suffix in COLUMNAR


def is_hf_dataset(obj) -> bool:
    """A HuggingFace ``datasets.Dataset`` or ``IterableDataset`` (checked without importing
    `datasets`)."""
    return type(obj).__module__.startswith("datasets.") and hasattr(obj, "with_format")


def _pyarrow():
    try:
        import pyarrow
        import pyarrow.compute  # noqa: F401  (used by Column.ids)
        return pyarrow
    except ImportError:
        raise InputError("parquet and Arrow inputs need pyarrow: pip install pyarrow") from None


def _kind(pa, type_) -> str | None:
    if pa.types.is_string(type_) or pa.types.is_large_string(type_):
        return "text"
    if (pa.types.is_list(type_) or pa.types.is_large_list(type_)
            or pa.types.is_fixed_size_list(type_)) and pa.types.is_integer(type_.value_type):
        return "ids"
    return None


def choose_column(schema, field: str | None, where: str,
                  prefer_ids: bool = False) -> tuple[str, str]:
    """(name, kind) of the column holding text or token ids: ``field`` if given, else "text",
    else a list-of-integers column (``input_ids``, ``token_ids``, ``ids``, ``tokens`` or the
    only one; tried first with ``prefer_ids``, i.e. when there is no tokenizer); InputError
    listing the columns otherwise."""
    pa = _pyarrow()
    kinds = {f.name: _kind(pa, f.type) for f in schema}
    listing = ", ".join(f"{f.name} ({f.type})" for f in schema) or "none"
    if field is not None:
        if field not in kinds:
            raise InputError(f"{where} has no column {field!r}; its columns: {listing}")
        if kinds[field] is None:
            raise InputError(f"{where}: column {field!r} holds {schema.field(field).type}; "
                             "give a column of text (string) or token ids (list of integers)")
        return field, kinds[field]
    ids = [n for n, k in kinds.items() if k == "ids"]
    guess = next((n for n in ID_NAMES if n in ids), ids[0] if len(ids) == 1 else None)
    if guess is not None and prefer_ids:
        return guess, "ids"
    if kinds.get("text") == "text":
        return "text", "text"
    if guess is not None:
        return guess, "ids"
    raise InputError(f"{where}: which column holds the corpus? give --field NAME (text_field=); "
                     f"its columns: {listing}")


def open_columnar(path: Path, field: str | None, prefer_ids: bool = False,
                  row_bytes: int | None = None) -> Column:
    """The corpus column of a parquet or Arrow IPC (file or stream format) file; with
    ``row_bytes`` a row holding more bytes is an InputError (in parquet, refused from the file's
    metadata before it is read where a row group's rows hold more on average; rows are read in
    batches of about ``row_bytes``)."""
    pa = _pyarrow()
    where = str(path)
    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq
            pf = pq.ParquetFile(path, memory_map=True)
            name, kind = choose_column(pf.schema_arrow, field, where, prefer_ids)
            rows = pf.metadata.num_rows
            plan = _parquet_batches(pf, name, kind, where, row_bytes)

            def chunks():
                done = 0
                with _arrow_errors(where):
                    for group, size in plan:
                        for batch in pf.iter_batches(batch_size=size, row_groups=group,
                                                     columns=[name]):
                            done += batch.num_rows
                            yield batch.column(0), done / max(rows, 1)
            return Column(kind, name, chunks, rows, where, row_bytes)
        import pyarrow.ipc as ipc
        source = pa.memory_map(str(path))
        try:
            reader = ipc.open_file(source)
            name, kind = choose_column(reader.schema, field, where, prefer_ids)
            count = reader.num_record_batches

            def chunks():
                with _arrow_errors(where):
                    for i in range(count):
                        yield reader.get_batch(i).column(name), (i + 1) / count
            return Column(kind, name, chunks, None, where, row_bytes)
        except pa.ArrowInvalid:
            source.seek(0)
            stream = ipc.open_stream(source)
            name, kind = choose_column(stream.schema, field, where, prefer_ids)

            def chunks():
                with _arrow_errors(where):
                    for batch in stream:
                        yield batch.column(name), None
            return Column(kind, name, chunks, None, where, row_bytes)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path} is not a readable {path.suffix[1:]} file "
                         f"({_first_line(exc)})") from None


def _parquet_batches(pf, name: str, kind: str, where: str,
                     row_bytes: int | None) -> list[tuple[list[int] | None, int]]:
    """(row groups, rows per batch) to read a parquet column in: all at once without
    ``row_bytes``; else group by group, in batches of about ``row_bytes`` by the group's
    average row (its values counted from the metadata), and an InputError naming the limit,
    before anything is read, when that average alone exceeds ``row_bytes``."""
    if row_bytes is None:
        return [(None, BATCH_ROWS)]
    meta, plan, first = pf.metadata, [], 0
    type_ = pf.schema_arrow.field(name).type
    leaves = [j for j in range(meta.num_columns)
              if meta.schema.column(j).path == name
              or meta.schema.column(j).path.startswith(name + ".")]
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        rows = group.num_rows
        if kind == "ids":  # one value per id, read as the list's value type
            count = sum(group.column(j).num_values for j in leaves)
            size, what = count * _value_bytes(type_), "token ids"
        else:  # text: the encoded size, about its bytes
            size = sum(group.column(j).total_uncompressed_size for j in leaves)
            count, what = size, "bytes of text"
        if rows and size / rows > row_bytes:
            span = f"row {first + 1:,} holds" if rows == 1 else \
                f"rows {first + 1:,}-{first + rows:,} hold"
            raise InputError(f"{where}: {span} {count:,} {what} ({size / MIB:.1f} MiB), more "
                             f"than one read may hold under the memory limit "
                             f"({row_bytes / MIB:.1f} MiB); raise --memory-limit "
                             "(memory_limit=) or split the rows")
        per_row = size / rows if rows else 1
        plan.append(([g], max(1, min(BATCH_ROWS, int(row_bytes // max(per_row, 1))))))
        first += rows
    return plan


def open_hf(ds, field: str | None, prefer_ids: bool = False,
            row_bytes: int | None = None) -> Column:
    """The corpus column of a HuggingFace ``Dataset`` or ``IterableDataset``, read in its own
    row order (a selection or shuffle view included); a dictionary of splits (``DatasetDict``)
    is an InputError naming them."""
    pa = _pyarrow()
    if isinstance(ds, dict):
        splits = ", ".join(map(repr, ds)) or "none"
        first = next(iter(ds), "train")
        raise InputError(f"a {type(ds).__name__} holds several splits ({splits}): pick one, "
                         f"e.g. ds[{first!r}]")
    where = f"dataset {getattr(ds, 'info', None) and ds.info.dataset_name or type(ds).__name__}"
    arrow = ds.with_format("arrow")
    rows = getattr(ds, "num_rows", None)
    features = getattr(ds, "features", None)
    if features is not None:
        schema = features.arrow_schema
    else:  # an iterable dataset that does not know its features: look at the first batch
        first = next(iter(arrow.iter(batch_size=1)), None)
        if first is None:
            raise InputError(f"{where} is empty (no rows)")
        schema = first.schema
    name, kind = choose_column(schema, field, where, prefer_ids)

    expected = schema.field(name).type

    def chunks():
        done = 0
        tables = arrow.iter(batch_size=BATCH_ROWS)
        while True:
            try:
                table = next(tables, None)
            except pa.ArrowException as exc:  # e.g. rows whose columns changed type
                cause = " ".join(str(exc).split())[:300]
                raise InputError(f"{where}: rows after row {done:,} cannot be read with the "
                                 f"earlier ones ({cause}); give every row the same columns "
                                 "and types") from None
            if table is None:
                return
            if name not in table.column_names or table.schema.field(name).type != expected:
                now = table.schema.field(name).type if name in table.column_names \
                    else "missing"
                raise InputError(f"{where}: column {name!r} changes from {expected} to {now} "
                                 f"after row {done:,}; give every row the same columns and "
                                 "types")
            done += table.num_rows
            column = table.column(name)
            for chunk in column.chunks:
                yield chunk, (done / rows if rows else None)
    return Column(kind, name, chunks, rows, where, row_bytes)


class _arrow_errors:
    """Arrow's read errors (a damaged file) as one-line InputErrors."""

    def __init__(self, where: str):
        self.where = where

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        import pyarrow as pa
        if exc is not None and isinstance(exc, (pa.ArrowException, OSError)) \
                and not isinstance(exc, InputError):
            raise InputError(f"{self.where} cannot be read ({_first_line(exc)})") from None
        return False


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__

"""Read corpora: token arrays, headerless token files, .npy, Megatron indexed datasets, text
(plain or compressed), parquet/Arrow files and HuggingFace datasets, directories of these."""
from __future__ import annotations

import fnmatch
import json
import os
import re
import struct
import tempfile
import warnings
from pathlib import Path

import numpy as np

from ..errors import FileAccessError, InputError, InputWarning
from ..progress import Meter
from .columnar import COLUMNAR, Column, is_columnar, is_hf_dataset, open_columnar, open_hf
from .compressed import COMPRESSED, inner_suffix, open_input, read_errors
from .stream import READ_CHUNK, ArrayPiece, MappedPiece, TokenStream, piece_of
from .types import Corpus, check_eos_id

__all__ = ["load_corpus", "load_stream", "load_tokenizer", "read_megatron", "read_text",
           "input_files", "needs_spool", "expand_inputs", "split_text"]

TEXT_INPUTS = (".txt", ".jsonl")
TOKEN_INPUTS = (".npy", ".bin", ".idx")
SHORT_DOCUMENT = 16    # mean tokens per line-document below which .txt input warns ...
SHORT_DOCUMENTS = 100  # ... once it gave this many documents

RAW_DTYPES = {"uint16": np.dtype("<u2"), "uint32": np.dtype("<u4")}
MEGATRON_MAGIC = b"MMIDIDX\x00\x00"
MEGATRON_DTYPES = {1: "u1", 2: "i1", 3: "<i2", 4: "<i4", 5: "<i8", 8: "<u2"}
TEXT_BATCH = 1024           # documents (or pieces of one) per tokenizer call, at most
TEXT_BATCH_CHARS = 1 << 18  # characters per tokenizer call, about (it needs ~150 B a char)
TEXT_PIECE_CHARS = 1 << 18  # a longer document is encoded in pieces of this many characters
TEXT_LINE_BLOCK = 1 << 20   # bytes of a line read at a time; a longer .txt line is streamed
TEXT_SUFFIX = ".text-tokens"  # a text input's token file among a build's temporaries
DTYPE_SAMPLE = 1 << 20   # ids of a headerless file looked at to warn about a wrong --dtype
HUGE_VOCAB = 1 << 21     # uint32 ids past this look like uint16 pairs read as uint32
BINARY_INVALID = 0.01    # a file read as text with more invalid UTF-8 bytes than this is binary


def load_corpus(source, *, doc_offsets=None, doc_lengths=None, eos_id: int | None = None,
                dtype: str | None = None, force_dtype: bool = False,
                boundaries: str | os.PathLike | None = None,
                tokenizer: str | os.PathLike | None = None, text_field: str | None = None,
                text_unit: str | None = None, include=None, progress: bool = False) -> Corpus:
    """Turn any supported ``source`` into a :class:`Corpus`.

    Documents come from, in this order of precedence: ``doc_offsets``/``doc_lengths`` (arrays)
    or ``boundaries`` (a file of document lengths, ``.npy`` or one integer per line) covering all
    tokens; else ``eos_id`` (an EOS token ends its document); else each input file (or the
    array) is one document. For text inputs ``eos_id`` is appended to every document instead.
    A headerless token file read with ``dtype`` whose ids clearly have the other width is an
    InputError naming the right dtype, unless ``force_dtype``.
    """
    if isinstance(source, Corpus):
        return source
    stream = load_stream(source, doc_offsets=doc_offsets, doc_lengths=doc_lengths,
                         eos_id=eos_id, dtype=dtype, force_dtype=force_dtype,
                         boundaries=boundaries, tokenizer=tokenizer,
                         text_field=text_field, text_unit=text_unit, include=include,
                         progress=progress)
    parts = [p.array if isinstance(p, ArrayPiece) else p.read(0, p.size) for p in stream.pieces]
    tokens = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return Corpus(tokens, stream.doc_offsets, stream.sources, stream.tokenizer,
                  stream.vocab_size, prompt_lengths=stream.prompt_lengths)


def load_stream(source, *, doc_offsets=None, doc_lengths=None, eos_id: int | None = None,
                dtype: str | None = None, force_dtype: bool = False,
                boundaries: str | os.PathLike | None = None,
                tokenizer: str | os.PathLike | None = None, text_field: str | None = None,
                text_unit: str | None = None, include=None, progress: bool = False,
                text_spool: Path | None = None, read_bytes: int | None = None) -> TokenStream:
    """Like :func:`load_corpus`, but token files stay on disk as :class:`TokenStream` pieces
    (the memory-bounded build reads them in chunks). Text is tokenised batch by batch into
    token files under ``text_spool`` (a temporary directory the caller removes), else in
    memory (:func:`read_text`); so are the rows of parquet/Arrow files and datasets.
    ``read_bytes`` (a memory-bounded build's share of its limit): a parquet/Arrow/dataset row
    or a JSONL line holding more bytes is an InputError naming the limit."""
    check_eos_id(eos_id)
    if isinstance(source, Corpus):
        return TokenStream([ArrayPiece(np.asarray(source.tokens).reshape(-1))],
                           np.asarray(source.doc_offsets, np.int64), list(source.sources),
                           source.tokenizer, source.vocab_size, source.prompt_lengths)
    if text_unit not in (None, "line", "file"):
        raise InputError(f"unknown text unit {text_unit!r}; use 'line' or 'file'")
    if force_dtype and dtype is None:
        raise InputError("force_dtype (--force-dtype) forces the dtype given: give --dtype "
                         "uint16 or uint32 (dtype=) with it")
    if isinstance(source, (str, os.PathLike)):
        source = [source]
    meter = Meter("tokenising", enabled=progress)
    tok_name = Path(tokenizer).name if tokenizer else None
    if isinstance(source, np.ndarray):
        parts = [(source.reshape(-1), None)]
        sources, tok_name = ["<array>"], None
    elif _is_path_list(source):
        files = expand_inputs(source, include)
        if not files:
            raise InputError(_none_found(source, include, tokenizer))
        total = sum(_size(p) for p, _ in files)
        reader = _FileReader(dtype, tokenizer, text_field, eos_id, text_spool, meter, total)
        reader.read_bytes = read_bytes
        reader.source_unit = text_unit or "file"
        reader.force_dtype = bool(force_dtype)
        parts = [reader.read(p, text_unit or ("file" if in_dir else "line"), in_dir)
                 for p, in_dir in files]
        sources = [p.name for p, _ in files if p not in reader.skipped]
        _report_skipped(reader.skipped, len(files), meter)
        if reader.line_docs >= SHORT_DOCUMENTS and text_unit is None and \
                reader.line_tokens < SHORT_DOCUMENT * reader.line_docs:
            warnings.warn(
                f"{reader.line_files} .txt file(s) gave {reader.line_docs:,} documents of "
                f"{reader.line_tokens / reader.line_docs:.1f} tokens on average: each line is a "
                "document; give --text-unit file (text_unit='file') for one document per "
                "file, or --text-unit line to keep this", InputWarning, stacklevel=3)
    elif is_hf_dataset(source):
        column = open_hf(source, text_field, prefer_ids=tokenizer is None, row_bytes=read_bytes)
        reader = _FileReader(dtype, tokenizer, text_field, eos_id, text_spool, meter, 0)
        parts = [reader.column(column, "dataset")]
        sources = [column.where.removeprefix("dataset ")]
    else:
        corpus = Corpus.from_documents(source)
        parts = [(corpus.tokens, corpus.doc_offsets)]
        sources, tok_name = [], None
        if doc_offsets is None and doc_lengths is None and boundaries is None:
            doc_offsets = corpus.doc_offsets
    if meter.docs:
        meter.finish()
    pieces = [piece_of(arr) for arr, _ in parts]
    num_tokens = sum(p.size for p in pieces)
    if doc_offsets is not None or doc_lengths is not None or boundaries is not None:
        offsets = _given_offsets(num_tokens, doc_offsets, doc_lengths, boundaries)
    else:
        offsets, base, scanned, found, largest = [np.zeros(1, np.int64)], 0, False, False, -1
        for piece, (_, file_offsets) in zip(pieces, parts):
            if file_offsets is None:
                if eos_id is not None:
                    file_offsets, seen, top = _eos_offsets(piece, eos_id)
                    scanned, found, largest = True, found or seen, max(largest, top)
                else:
                    file_offsets = np.array([0, piece.size], np.int64)
            offsets.append(file_offsets[1:] + base)
            base += piece.size
        offsets = np.concatenate(offsets)
        if scanned and not found and num_tokens:
            above = f", and it is above the largest token id ({largest})" \
                if eos_id > largest else ""
            warnings.warn(f"EOS id {eos_id} never occurs in the tokens{above}, so each input "
                          "is one document; is --eos-id right?", InputWarning, stacklevel=3)
    vocab = load_tokenizer(tokenizer).get_vocab_size() if tokenizer is not None else None
    return TokenStream(pieces, offsets, sources, tok_name, vocab)


def _is_path_list(source) -> bool:
    return isinstance(source, (list, tuple)) and all(
        isinstance(s, (str, os.PathLike)) for s in source)


def _given_offsets(num_tokens: int, doc_offsets, doc_lengths, boundaries) -> np.ndarray:
    given = [x is not None for x in (doc_offsets, doc_lengths, boundaries)]
    if sum(given) > 1:
        raise InputError("give only one of doc_offsets, doc_lengths and a boundaries file")
    if boundaries is not None:
        doc_lengths = _read_integers(Path(boundaries))
    if doc_lengths is not None:
        lengths = np.asarray(doc_lengths).reshape(-1)
        if lengths.size and (lengths.dtype.kind not in "iu" or lengths.min() < 0):
            raise InputError("document lengths must be non-negative integers")
        doc_offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])
        if doc_offsets[-1] != num_tokens:
            raise InputError(f"document lengths add up to {doc_offsets[-1]} tokens but the "
                             f"input has {num_tokens}")
    return np.asarray(doc_offsets, dtype=np.int64).reshape(-1)


def _eos_offsets(piece, eos_id: int) -> tuple[np.ndarray, bool, int]:
    """Document offsets of a piece whose documents end with ``eos_id`` (bounded reads),
    whether ``eos_id`` occurs at all, and the largest id (-1 when empty)."""
    ends, top = [np.zeros(1, np.int64)], -1
    for lo in range(0, piece.size, READ_CHUNK):
        chunk = piece.read(lo, min(piece.size, lo + READ_CHUNK))
        ends.append(np.flatnonzero(chunk == eos_id).astype(np.int64) + lo + 1)
        if chunk.size:
            top = max(top, int(chunk.max()))
    seen = sum(e.size for e in ends) > 1
    ends.append(np.array([piece.size], np.int64))
    return np.unique(np.concatenate(ends)), seen, top


def _read_integers(path: Path) -> np.ndarray:
    _check_readable(path)
    if path.suffix == ".npy":
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise InputError(f"{path} is not a .npy file of integers ({exc})") from None
        if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "iu" or arr.ndim != 1:
            raise InputError(f"{path} holds {getattr(arr, 'dtype', type(arr).__name__)} "
                             f"values of {getattr(arr, 'ndim', '?')} dimensions; document "
                             "lengths are a 1-D array of integers")
        return np.array(arr)
    try:
        return np.loadtxt(path, dtype=np.int64, ndmin=1)
    except (ValueError, OverflowError) as exc:
        raise InputError(f"{path}: expected one integer per line ({exc})") from None


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise FileAccessError(f"input file {path} does not exist")
    if not path.is_file() or not os.access(path, os.R_OK):
        raise FileAccessError(f"input file {path} is not a readable file")


def _is_megatron(path: Path) -> bool:
    """A Megatron dataset named by its .idx, its .bin (beside an .idx) or its prefix."""
    return path.suffix == ".idx" or (not path.exists() and path.with_suffix(".idx").exists()) \
        or (path.suffix == ".bin" and path.with_suffix(".idx").exists())


def needs_spool(source, tokenizer=None, **options) -> bool:
    """Whether a memory-bounded build of ``source`` writes tokens to temporary token files
    first: text to tokenise, parquet/Arrow rows, a HuggingFace dataset."""
    if is_hf_dataset(source):
        return True
    if isinstance(source, (str, os.PathLike)):
        source = [source]
    if not _is_path_list(source):
        return False
    return any(inner_suffix(p) in TEXT_INPUTS or is_columnar(p)
               or _is_source_text(p, in_dir, tokenizer, options.get("dtype"))
               for p, in_dir in expand_inputs(source, options.get("include")))


def expand_inputs(paths, include=None) -> list[tuple[Path, bool]]:
    """(file, found in a directory) for each input: a file as given, a directory's files
    recursively in sorted order. In a directory, hidden names and symbolic links are skipped
    and a file is kept if its path inside the directory matches one of ``include`` (glob
    patterns), by default if it is a known input (text, token, columnar file); a Megatron
    dataset is read once, by its .idx, whatever the patterns. A directory that cannot be
    listed is a FileAccessError, a file name that is not UTF-8 an InputError (the file's
    header records input names)."""
    if isinstance(include, str):
        include = [include]
    out = []
    for p in map(Path, paths):
        if not p.is_dir():  # a directory named, through a link or not, is read
            out.append((_utf8_name(p), False))
            continue
        found = []
        for top, dirs, names in os.walk(p, onerror=_unlistable):  # links to directories
            # are listed, not entered
            dirs[:] = [d for d in dirs if not d.startswith(".")
                       and not os.path.islink(os.path.join(top, d))]
            for name in names:
                path = Path(top, name)
                if name.startswith(".") or path.is_symlink():
                    continue
                rel = path.relative_to(p)
                if path.suffix == ".bin" and path.with_suffix(".idx").exists():
                    continue  # a Megatron dataset's data: read with its .idx
                if include:
                    keep = any(fnmatch.fnmatch(rel.as_posix(), pat) for pat in include)
                else:
                    keep = _known_input(path)
                if keep:
                    found.append((rel.parts, path))
        out += [(_utf8_name(path), True) for _, path in sorted(found)]
    return out


def _unlistable(exc: OSError) -> None:
    """os.walk's error handler: a directory of the tree that cannot be listed stops the
    build (it is never left out without a word)."""
    raise FileAccessError(f"cannot list the directory {exc.filename}: "
                          f"{exc.strerror or exc}; make it readable or move it out of the "
                          "tree") from None


def _utf8_name(path: Path) -> Path:
    """``path``, once its name is UTF-8 (an undecodable byte would stop the build as it writes
    the names into the header); InputError naming it otherwise."""
    try:
        path.name.encode("utf-8")
    except UnicodeEncodeError:
        shown = os.fsencode(path).decode("utf-8", "backslashreplace")
        raise InputError(f"the file name {shown} is not UTF-8 (the output's header records "
                         "input names as UTF-8): rename it or leave it out") from None
    return path


def _is_source_text(path: Path, in_dir: bool, tokenizer, dtype) -> bool:
    """Whether ``path`` is read as text whatever its suffix (one document per file, e.g.
    source code): with a tokenizer and no --dtype, a file of no known input kind (one named
    compressed is refused instead: only .txt/.jsonl may be)."""
    return tokenizer is not None and dtype is None and not _is_megatron(path) and \
        not _known_input(path) and (in_dir or path.suffix not in COMPRESSED)


def _source_text(raw: bytes) -> tuple[str | None, str]:
    """(the text of a file read whatever its suffix, ""), or (None, why) for a binary file:
    one holding NUL bytes or more than :data:`BINARY_INVALID` of its bytes invalid UTF-8
    (fewer are read as U+FFFD)."""
    if b"\0" in raw:
        return None, "it holds NUL bytes"
    try:
        return raw.decode("utf-8"), ""
    except UnicodeDecodeError:
        pass
    text = raw.decode("utf-8", "replace")
    bad = text.count("\ufffd") - raw.count("\ufffd".encode())
    if bad > BINARY_INVALID * len(raw):
        return None, f"{bad:,} of its {len(raw):,} bytes are not UTF-8"
    return text, ""


def _report_skipped(skipped: list, matched: int, meter: Meter) -> None:
    """Say how many binary files a directory build left out (InputError when that was every
    file)."""
    if not skipped:
        return
    n = len(skipped)
    files = f"{n:,} binary file{'s' if n > 1 else ''} (NUL bytes or not UTF-8), e.g. " \
        f"{skipped[0]}"
    if n == matched:
        raise InputError(f"every file found is binary: {files}; choose text files with "
                         "--include GLOB")
    if meter.enabled:
        meter.stream.write(f"ngramds: skipped {files}\n")
        meter.stream.flush()


def _none_found(paths: list, include, tokenizer) -> str:
    """The message for input directories with no file to read: what they hold, and the
    option that reads it."""
    if not paths:
        return "no input files given"
    message = f"no input files given (none found in {', '.join(map(str, paths))}" \
        f"{' matching ' + ' '.join(include) if include else ''})"
    if include:
        return message
    counts: dict[str, int] = {}
    for p in map(Path, paths):
        for top, dirs, names in os.walk(p, onerror=_unlistable):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for name in names:
                if not name.startswith("."):
                    suffix = Path(name).suffix
                    counts[suffix] = counts.get(suffix, 0) + 1
    if not counts:
        return message
    top = sorted(counts.items(), key=lambda x: (-x[1], x[0]))
    held = ", ".join(f"{n:,} {s or 'suffix-less'} file{'s' if n > 1 else ''}"
                     for s, n in top[:3])
    pattern = f"*{top[0][0]}" if top[0][0] else "*"
    return (f"{message}; found there: {held}. Files of other kinds than "
            f"{', '.join(TEXT_INPUTS + TOKEN_INPUTS + COLUMNAR)} are read as text (one "
            "document per file) when --include matches them: give "
            f"{'' if tokenizer else '--tokenizer tokenizer.json '}--include '{pattern}'")


def _known_input(path: Path) -> bool:
    suffix = inner_suffix(path)
    return suffix in TEXT_INPUTS or (path.suffix not in COMPRESSED and (
        suffix in TOKEN_INPUTS or is_columnar(path)))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def input_files(source, *, boundaries=None, tokenizer=None, include=None,
                **_) -> list[tuple[str, Path]]:
    """(what, path) of every file a build of ``source`` reads: input files (those found in
    directories, both files of a Megatron dataset), the tokenizer and the document-lengths
    file."""
    files = []
    if isinstance(source, (str, os.PathLike)):
        source = [source]
    if _is_path_list(source):
        for p, _ in expand_inputs(source, include):
            if _is_megatron(p):
                files += [("input", p.with_suffix(".bin")), ("input", p.with_suffix(".idx"))]
            else:
                files.append(("input", p))
    if boundaries is not None:
        files.append(("document-lengths file", Path(boundaries)))
    if tokenizer is not None:
        files.append(("tokenizer", _utf8_name(Path(tokenizer))))  # its name is recorded too
    return files


class _FileReader:
    """Reads input files one by one into (tokens, document offsets or None), counting what
    line-per-document text gave (for the short-document warning)."""

    read_bytes: int | None = None  # the most bytes one row may hold (load_stream)

    def __init__(self, dtype, tokenizer, field, eos_id, spool, meter: Meter, total: int):
        self.dtype, self.tokenizer, self.field, self.eos_id = dtype, tokenizer, field, eos_id
        self.spool, self.meter, self.total, self.base = spool, meter, max(total, 1), 0
        self.current = 1  # bytes of the input being read (progress)
        self.line_files = self.line_docs = self.line_tokens = 0
        self.skipped: list[Path] = []  # binary files found in directories, left out

    source_unit = "file"  # a source file's documents: "file", or "line" when given so
    force_dtype = False   # read headerless files with dtype even where it looks wrong

    def read(self, path: Path, unit: str, in_dir: bool = False):
        self.current = _size(path)
        try:
            return self._read(path, unit, in_dir)
        finally:
            self.base += self.current

    def _read(self, path: Path, unit: str, in_dir: bool = False):
        if _is_megatron(path):
            return read_megatron(path.with_suffix(""))
        _check_readable(path)
        suffix = inner_suffix(path)
        if suffix in TEXT_INPUTS:
            self._need_tokenizer(path)
            stream, counter = open_input(path)
            docs = _text_documents(path, stream, suffix, self.field or "text", unit,
                                   self.read_bytes)
            tokens, offsets = self._encode(docs, path.name, lambda: counter.count)
            if suffix == ".txt" and unit == "line":
                self.line_files += 1
                self.line_docs += offsets.size - 1
                self.line_tokens += int(offsets[-1])
            return tokens, offsets
        if _is_source_text(path, in_dir, self.tokenizer, self.dtype):
            return self._source(path, in_dir)
        if path.suffix in COMPRESSED:
            raise InputError(f"{path}: only .txt and .jsonl inputs may be compressed; "
                             f"decompress {suffix or 'it'} first")
        if is_columnar(path):
            return self.column(open_columnar(path, self.field, self.tokenizer is None,
                                             self.read_bytes), path.stem)
        return _read_token_file(path, self.dtype, self.force_dtype)

    def _source(self, path: Path, in_dir: bool):
        """(tokens, document offsets) of a file read as text whatever its suffix (source code):
        one document (per line with ``source_unit`` "line"); a binary file found in a
        directory gives none and is counted in ``skipped``, one named is an InputError."""
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise FileAccessError(f"cannot read {path}: {exc.strerror or exc}") from None
        text, why = _source_text(raw)
        del raw
        docs: list[str] = []
        if text is None:
            if not in_dir:
                raise InputError(f"{path} is not text ({why}); a file of another suffix than "
                                 f"{', '.join(TEXT_INPUTS + TOKEN_INPUTS + COLUMNAR)} is read "
                                 "as text with --tokenizer: give --dtype uint16 or uint32 if "
                                 "it is a headerless token file")
            self.skipped.append(path)
        elif self.source_unit == "line":
            docs = [line.rstrip("\r") for line in text.split("\n") if line.strip()]
        else:
            docs = [text]
        del text
        return self._encode(iter(docs), path.name, lambda: self.current)

    def column(self, column: Column, stem: str):
        """(tokens, document offsets) of a columnar corpus: one row, one document."""
        if column.kind == "text":
            self._need_tokenizer(column.where)
            fractions = [0.0]

            def texts():
                for chunk, frac in column.texts():
                    yield from chunk
                    fractions[0] = frac or 0.0
            return self._encode(texts(), stem, lambda: fractions[0] * self.current)
        batches = ((ids, lengths) for ids, lengths, _ in column.ids())
        return _collect(batches, None, self.spool, stem)

    def _need_tokenizer(self, what) -> None:
        if self.tokenizer is None:
            raise InputError(f"{what} is text: give --tokenizer tokenizer.json to tokenise it")

    def _encode(self, documents, stem: str, consumed):
        """Tokenise ``documents`` (strings) batch by batch, counting progress by the bytes
        ``consumed()`` so far of this input."""
        tok = load_tokenizer(self.tokenizer)
        eos_id = self.eos_id
        if eos_id is not None and eos_id >= tok.get_vocab_size():
            raise InputError(f"--eos-id {eos_id} is outside the tokenizer's vocabulary of "
                             f"{tok.get_vocab_size()} ids; give the id of its end-of-text token")

        dtype = text_dtype(self.tokenizer)

        def counted():
            for ids, counts in _encoded_batches(documents, tok, eos_id, dtype):
                self.meter.add(ids.size, len(counts), (self.base + consumed()) / self.total)
                yield ids, counts
        return _collect(counted(), dtype, self.spool, stem)


def _collect(batches, dtype, spool: Path | None, stem: str):
    """(tokens, document offsets) of (ids, per-document token counts) batches: in memory, or
    appended to a new token file in ``spool`` and returned as a :class:`MappedPiece` of it
    (memory: 8 bytes per document). ``dtype`` None: the first batch's."""
    lengths, parts, count = [], [], 0
    f = name = None
    try:
        for ids, counts in batches:
            if dtype is None:
                dtype = ids.dtype
            ids = np.asarray(ids, dtype)
            lengths.append(np.asarray(counts, np.int64))
            if spool is None:
                parts.append(ids)
            else:
                if f is None:
                    fd, name = tempfile.mkstemp(prefix=f"{stem[:40]}.", suffix=TEXT_SUFFIX,
                                                dir=spool)
                    f = os.fdopen(fd, "wb")
                ids.tofile(f)
            count += ids.size
    finally:
        if f is not None:
            f.close()
    dtype = np.dtype(dtype if dtype is not None else np.uint16)
    if spool is None or not count:
        tokens = np.concatenate(parts) if parts else np.empty(0, dtype)
    else:
        tokens = MappedPiece(name, 0, dtype, count)
    lengths = np.concatenate(lengths) if lengths else np.empty(0, np.int64)
    return tokens, np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])


def _read_token_file(path: Path, dtype, force: bool = False):
    """(tokens, None) of a .npy or headerless token file (read with ``dtype`` even where its
    ids look like the other dtype's with ``force``)."""
    if path.suffix == ".npy":
        try:
            arr = np.load(path, mmap_mode="r")
        except ValueError as exc:
            raise InputError(f"{path} is not a valid .npy file ({exc})") from None
        if arr.dtype.kind not in "iu":
            raise InputError(f"{path} holds {arr.dtype} values; token ids must be integers")
        return (arr if arr.ndim == 1 else np.asarray(arr).reshape(-1)), None
    if dtype is None:
        known = ", ".join(TEXT_INPUTS + (".npy",) + COLUMNAR)
        raise InputError(f"{path} is a headerless token file: give --dtype uint16 or uint32 "
                         f"(other inputs are named by suffix: {known}, a Megatron .bin/.idx; "
                         "with --tokenizer, files of other suffixes are read as text)")
    if dtype not in RAW_DTYPES:
        raise InputError(f"unknown --dtype {dtype!r}; use uint16 or uint32")
    size = path.stat().st_size
    if size % RAW_DTYPES[dtype].itemsize:
        raise InputError(f"{path} has {size} bytes, not a multiple of {dtype}'s "
                         f"{RAW_DTYPES[dtype].itemsize}; is --dtype right?")
    if size == 0:
        return np.empty(0, RAW_DTYPES[dtype]), None
    tokens = np.memmap(path, dtype=RAW_DTYPES[dtype], mode="r")
    if not force:
        _check_other_dtype(path, tokens, dtype)
    return tokens, None


def _check_other_dtype(path: Path, tokens: np.ndarray, dtype: str) -> None:
    """InputError naming the right dtype when a headerless file's first ids clearly have the
    other width: every second uint16 zero (uint32 ids read as uint16), or uint32 ids past 2^21
    (pairs of uint16 ids read as one)."""
    sample = np.asarray(tokens[:DTYPE_SAMPLE])
    if dtype == "uint16" and sample.size >= 16 and sample.size % 2 == 0 \
            and not sample[1::2].any() and sample[0::2].any():
        seen, right = "every second uint16 value is zero, as in uint32 ids", "uint32"
    elif dtype == "uint32" and sample.size and int(sample.max()) >= HUGE_VOCAB:
        seen = f"uint32 ids reach {int(sample.max()):,}, as two uint16 ids read as one do"
        right = "uint16"
    else:
        return
    raise InputError(f"{path}: {seen}: the file holds {right} ids; give --dtype {right} "
                     f"(dtype={right!r}), or --force-dtype (force_dtype=True) to read it as "
                     f"{dtype} anyway")


def read_megatron(prefix: Path):
    """(tokens, document offsets) of a Megatron-LM indexed dataset ``prefix.bin/.idx``."""
    idx, bin_ = prefix.with_suffix(".idx"), prefix.with_suffix(".bin")
    for p in (idx, bin_):
        _check_readable(p)
    raw = idx.read_bytes()
    head = struct.Struct("<9sQBQQ")
    if len(raw) < head.size or raw[:9] != MEGATRON_MAGIC:
        raise InputError(f"{idx} is not a Megatron index (magic must be MMIDIDX)")
    _, version, code, num_seq, num_doc_idx = head.unpack_from(raw)
    if version != 1:
        raise InputError(f"{idx}: Megatron index version {version} is not supported (only 1)")
    if code not in MEGATRON_DTYPES:
        raise InputError(f"{idx}: Megatron dtype code {code} is not an integer token type")
    need = head.size + num_seq * 12 + num_doc_idx * 8
    if len(raw) < need or num_doc_idx < 1:
        raise InputError(f"{idx} is truncated ({len(raw)} bytes, need {need})")
    sizes = np.frombuffer(raw, "<i4", num_seq, head.size).astype(np.int64)
    pointers = np.frombuffer(raw, "<i8", num_seq, head.size + 4 * num_seq)
    doc_idx = np.frombuffer(raw, "<i8", num_doc_idx, head.size + 12 * num_seq)
    if (np.any(sizes < 0) or doc_idx[0] != 0 or doc_idx[-1] != num_seq
            or np.any(np.diff(doc_idx) < 0)):
        raise InputError(f"{idx}: inconsistent sequence sizes or document index")
    dtype = np.dtype(MEGATRON_DTYPES[code])
    bin_size = bin_.stat().st_size
    ends = pointers + sizes * dtype.itemsize
    if num_seq and (np.any(pointers < 0) or ends.max() > bin_size):
        raise InputError(f"{bin_} is shorter than its index says; the dataset is truncated")
    count = int(sizes.sum())
    contiguous = num_seq == 0 or np.array_equal(pointers[1:], ends[:-1])
    if count == 0:
        tokens = np.empty(0, dtype)  # no tokens (an empty .bin cannot be mapped)
    elif contiguous:
        tokens = np.memmap(bin_, dtype, "r", int(pointers[0]), (count,))
    else:
        data = np.memmap(bin_, dtype=np.uint8, mode="r")
        tokens = np.concatenate([np.frombuffer(data, dtype, int(s), int(p))
                                 for p, s in zip(pointers, sizes)])
        del data
    seq_offsets = np.concatenate([[0], np.cumsum(sizes)])
    return tokens, seq_offsets[doc_idx].astype(np.int64)


_TOKENIZERS: dict = {}


def load_tokenizer(path):
    """The HuggingFace tokenizer in ``path`` (cached per path; needs `tokenizers`)."""
    path = str(path)
    if path not in _TOKENIZERS:
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise InputError("text input needs the `tokenizers` package: "
                             "pip install 'ngramds[text]'") from None
        _check_tokenizer_file(Path(path))
        try:
            _TOKENIZERS[path] = Tokenizer.from_file(path)
        except Exception as exc:
            raise InputError(f"{path} is not a HuggingFace tokenizer.json ({exc})") from None
    return _TOKENIZERS[path]


def _check_tokenizer_file(path: Path) -> None:
    """FileAccessError unless ``path`` is a regular file (a FIFO would block the read)."""
    if not os.path.exists(path):
        raise FileAccessError(f"tokenizer file {path} does not exist")
    if path.is_dir():
        raise FileAccessError(f"tokenizer {path} is a directory; give its tokenizer.json")
    if not path.is_file():
        raise FileAccessError(f"tokenizer {path} is not a regular file (a FIFO, socket or "
                              "device); give a tokenizer.json file")


def _text_documents(path: Path, stream, suffix: str, text_field: str, text_unit: str,
                    read_bytes: int | None = None):
    """Yield the documents of a .txt (per line or whole file) or .jsonl file read from
    ``stream`` (decompressed); a damaged compressed stream is an InputError. A .txt line (or
    file) longer than :data:`TEXT_LINE_BLOCK` bytes comes as an iterator of its pieces
    (:func:`split_text`'s), read as they are encoded; a .jsonl line longer than ``read_bytes``
    is an InputError naming the memory limit."""
    with _damage_as_input_error(path), stream:
        if suffix == ".txt" and text_unit == "file":
            first = stream.read(TEXT_LINE_BLOCK)
            if len(first) < TEXT_LINE_BLOCK:
                yield _decode(first, path, 1)
            else:
                yield _streamed_text(path, stream, 1, first, whole_file=True)
            return
        lineno = 0
        while True:
            raw = stream.readline(TEXT_LINE_BLOCK)
            if not raw:
                return
            lineno += 1
            if suffix == ".txt":
                if raw.endswith(b"\n") or len(raw) < TEXT_LINE_BLOCK:
                    line = _decode(raw, path, lineno)
                    if line.strip():
                        yield line.rstrip("\r\n")
                    continue
                head = [raw]  # a long line: blank only if all whitespace
                while not any(b.strip() for b in head[-1:]) and not head[-1].endswith(b"\n"):
                    more = stream.readline(TEXT_LINE_BLOCK)
                    if not more:
                        break
                    head.append(more)
                if not any(b.strip() for b in head):
                    _decode(b"".join(head), path, lineno)
                    continue
                yield _streamed_text(path, stream, lineno, b"".join(head))
                continue
            parts, size = [raw], len(raw)
            while True:
                if read_bytes is not None and size > read_bytes:
                    raise InputError(
                        f"{path}:{lineno}: a line of more than {read_bytes / 2**20:.1f} MiB, "
                        "more than one read may hold under the memory limit; raise "
                        "--memory-limit (memory_limit=) or split the record")
                if parts[-1].endswith(b"\n"):
                    break
                more = stream.readline(TEXT_LINE_BLOCK)
                if not more:
                    break
                parts.append(more)
                size += len(more)
            line = _decode(parts[0] if len(parts) == 1 else b"".join(parts), path, lineno)
            del parts
            if line.strip():
                yield _json_text(line, path, lineno, text_field)


class _damage_as_input_error:
    """A damaged compressed stream's read errors as one-line InputErrors naming ``path``."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if exc is not None and isinstance(exc, read_errors()) \
                and not isinstance(exc, (FileAccessError, InputError)):
            raise InputError(f"{self.path}: cannot read it to the end ({exc}); is the file "
                             "damaged or truncated?") from None
        return False


def _streamed_text(path: Path, stream, lineno: int, first: bytes, whole_file: bool = False):
    """The pieces of the .txt line (or file) that starts with ``first`` and continues in
    ``stream``, as :func:`split_text` cuts the whole (trailing CR/LF of a line dropped), read
    :data:`TEXT_LINE_BLOCK` bytes at a time."""
    import codecs
    decoder = codecs.getincrementaldecoder("utf-8")()
    limit = TEXT_PIECE_CHARS
    done = 0  # bytes of the line decoded before the current block

    def decode(raw: bytes, final: bool = False) -> str:
        nonlocal done
        try:
            text = decoder.decode(raw, final)
        except UnicodeDecodeError as exc:
            raise InputError(f"{path}:{lineno}: text is not UTF-8 ({exc.reason} at byte "
                             f"{done + exc.start} of the line); convert the file to UTF-8") \
                from None
        done += len(raw)
        return text

    with _damage_as_input_error(path):
        buf, raw = decode(first), first
        while not (raw.endswith(b"\n") and not whole_file):
            raw = stream.read(TEXT_LINE_BLOCK) if whole_file else \
                stream.readline(TEXT_LINE_BLOCK)
            if not raw:
                break
            buf += decode(raw)
            # cut as split_text cuts the whole once what remains is surely longer than the
            # limit (a line's trailing CR/LF are dropped at its end)
            while len(buf if whole_file else buf.rstrip("\r\n")) > limit:
                m = _LAST_SPACE_RUN.search(buf, 0, limit)
                cut = m.start() if m and m.start() > 0 else limit
                yield buf[:cut]
                buf = buf[cut:]
        buf += decode(b"", final=True)
        yield from split_text(buf if whole_file else buf.rstrip("\r\n"), limit)


def _json_text(line: str, path: Path, lineno: int, text_field: str) -> str:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
    except RecursionError:
        raise InputError(f"{path}:{lineno}: JSON nested too deeply to read") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise InputError(f"{path}:{lineno}: unreadable JSON ({exc})") from None
    if not isinstance(record, dict) or not isinstance(record.get(text_field), str):
        fields = ", ".join(map(repr, record)) if isinstance(record, dict) else "none"
        raise InputError(f"{path}:{lineno}: no string field {text_field!r} (fields: "
                         f"{fields[:200]}); choose the field with --field")
    return record[text_field]


def _decode(raw: bytes, path: Path, lineno: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if lineno == 1 and b"\n" in raw:
            lineno = raw[:exc.start].count(b"\n") + 1
        raise InputError(f"{path}:{lineno}: text is not UTF-8 ({exc.reason} at byte "
                         f"{exc.start}); convert the file to UTF-8") from None


def split_text(text: str, limit: int | None = None) -> list[str]:
    """``text`` in pieces of at most ``limit`` characters (default :data:`TEXT_PIECE_CHARS`),
    each cut where the last run of whitespace within the limit begins (at the limit where
    there is none, or where the piece would be all whitespace), so that no tokenizer call sees
    one huge string.

    The pieces are encoded separately and their ids concatenated. With a byte-level BPE whose
    pre-tokeniser splits at whitespace (GPT-2 style regex, no prefix space added) this equals
    encoding the whole text, since a pre-token never joins a non-space character to the
    whitespace after it, so none crosses such a cut (a cut at the limit, or a run of
    whitespace longer than the limit, may still split one); with other tokenizers
    (a prefix space, SentencePiece-style normalisation, merges across whitespace) the tokens at
    a cut may differ from whole-document encoding. Texts within the limit are never cut.
    """
    limit = TEXT_PIECE_CHARS if limit is None else limit
    if len(text) <= limit:
        return [text]
    pieces, start = [], 0
    while len(text) - start > limit:
        m = _LAST_SPACE_RUN.search(text, start, start + limit)
        cut = m.start() - start if m and m.start() > start else limit
        pieces.append(text[start:start + cut])
        start += cut
    pieces.append(text[start:])
    return pieces


_LAST_SPACE_RUN = re.compile(r"\s+\S*\Z")


def text_dtype(tokenizer) -> np.dtype:
    """Token dtype of text tokenised with ``tokenizer``: uint16 up to 65536 ids, else uint32."""
    return np.dtype("<u2") if load_tokenizer(tokenizer).get_vocab_size() <= 1 << 16 \
        else np.dtype("<u4")


def _encoded_batches(documents, tok, eos_id, dtype):
    """Yield (ids of ``dtype``, per-document token counts) batch by batch: at most
    :data:`TEXT_BATCH` documents or pieces and about :data:`TEXT_BATCH_CHARS` characters per
    ``encode_batch`` call (the tokenizer's threads run in parallel); a long document's pieces
    (:func:`split_text`) may span batches, and its count is yielded with the batch holding its
    last piece."""
    batch, last, pending, chars = [], [], 0, 0  # texts, "ends a document", tokens so far
    # the same ids; the fast variant (tokenizers >= 0.21) skips computing character offsets
    encode = getattr(tok, "encode_batch_fast", tok.encode_batch)

    def flush():
        nonlocal pending
        encodings = encode(batch, add_special_tokens=False)
        parts, counts = [], []
        for enc, ends in zip(encodings, last):
            ids = enc.ids
            if ends and eos_id is not None:
                ids = ids + [eos_id]
            parts.append(np.asarray(ids, dtype=dtype))
            pending += len(ids)
            if ends:
                counts.append(pending)
                pending = 0
        del encodings
        batch.clear()
        last.clear()
        ids = np.concatenate(parts) if parts else np.empty(0, dtype)
        return ids, counts

    for doc in documents:  # a text, or an iterator of a long text's pieces
        pieces = iter(split_text(doc)) if isinstance(doc, str) else iter(doc)
        del doc
        piece = next(pieces, "")
        while piece is not None:
            following = next(pieces, None)  # read ahead: is this piece the last?
            batch.append(piece)
            last.append(following is None)
            chars += len(piece)
            if len(batch) >= TEXT_BATCH or chars >= TEXT_BATCH_CHARS:
                yield flush()
                chars = 0
            piece = following
        del pieces
    if batch:
        yield flush()


def read_text(path: Path, tokenizer, text_field: str = "text", text_unit: str = "line",
              eos_id: int | None = None, spool: Path | None = None):
    """(tokens, document offsets) of a text file (.txt/.jsonl, plain or compressed)
    tokenised in parallel batches, tokens as :func:`text_dtype`. Never more than one batch's
    ids are held as Python ints: with ``spool`` (a directory of this build's temporaries)
    each batch is appended to a new token file there and the tokens come back as a
    :class:`MappedPiece` of it (memory: 8 bytes per document); without, they are gathered in
    memory."""
    reader = _FileReader(None, tokenizer, text_field, eos_id, spool,
                         Meter("tokenising", enabled=False), 0)
    return reader.read(Path(path), text_unit)

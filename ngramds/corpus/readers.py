"""Read corpora: token arrays, headerless token files, .npy, Megatron indexed datasets, text
(plain or compressed), parquet/Arrow files and HuggingFace datasets, directories of these.

This module dispatches each input to its reader: :mod:`.discovery` (which files),
:mod:`.token_files` and :mod:`.megatron` (token inputs), :mod:`.text` and :mod:`.tokenize`
(text), :mod:`.columnar` (parquet/Arrow, datasets) and :mod:`.offsets` (document boundaries).
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from ..errors import FileAccessError, InputError, InputWarning
from ..progress import Meter
from .columnar import COLUMNAR, Column, is_columnar, is_hf_dataset, open_columnar, open_hf
from .compressed import COMPRESSED, inner_suffix, open_input
from .discovery import (TEXT_INPUTS, TOKEN_INPUTS, check_readable, expand_inputs, file_size,
                        input_files, is_megatron, is_path_list, is_source_text, needs_spool,
                        none_found)
from .megatron import read_megatron
from .offsets import eos_offsets, given_offsets
from .stream import ArrayPiece, TokenStream, piece_of
from .text import source_text, text_documents
from .token_files import read_token_file
from .tokenize import collect, encoded_batches, load_tokenizer, split_text, text_dtype
from .types import Corpus, check_eos_id

# (load_tokenizer, read_megatron, input_files, needs_spool, expand_inputs and split_text are
# re-exported: the readers' public names stay importable from here)
__all__ = ["load_corpus", "load_stream", "load_tokenizer", "read_megatron", "read_text",
           "input_files", "needs_spool", "expand_inputs", "split_text"]

SHORT_DOCUMENT = 16    # mean tokens per line-document below which .txt input warns ...
SHORT_DOCUMENTS = 100  # ... once it gave this many documents


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
    elif is_path_list(source):
        files = expand_inputs(source, include)
        if not files:
            raise InputError(none_found(source, include, tokenizer))
        total = sum(file_size(p) for p, _ in files)
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
        offsets = given_offsets(num_tokens, doc_offsets, doc_lengths, boundaries)
    else:
        offsets, base, scanned, found, largest = [np.zeros(1, np.int64)], 0, False, False, -1
        for piece, (_, file_offsets) in zip(pieces, parts):
            if file_offsets is None:
                if eos_id is not None:
                    file_offsets, seen, top = eos_offsets(piece, eos_id)
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
        self.current = file_size(path)
        try:
            return self._read(path, unit, in_dir)
        finally:
            self.base += self.current

    def _read(self, path: Path, unit: str, in_dir: bool = False):
        if is_megatron(path):
            return read_megatron(path.with_suffix(""))
        check_readable(path)
        suffix = inner_suffix(path)
        if suffix in TEXT_INPUTS:
            self._need_tokenizer(path)
            stream, counter = open_input(path)
            docs = text_documents(path, stream, suffix, self.field or "text", unit,
                                  self.read_bytes)
            tokens, offsets = self._encode(docs, path.name, lambda: counter.count)
            if suffix == ".txt" and unit == "line":
                self.line_files += 1
                self.line_docs += offsets.size - 1
                self.line_tokens += int(offsets[-1])
            return tokens, offsets
        if is_source_text(path, in_dir, self.tokenizer, self.dtype):
            return self._source(path, in_dir)
        if path.suffix in COMPRESSED:
            raise InputError(f"{path}: only .txt and .jsonl inputs may be compressed; "
                             f"decompress {suffix or 'it'} first")
        if is_columnar(path):
            return self.column(open_columnar(path, self.field, self.tokenizer is None,
                                             self.read_bytes), path.stem)
        return read_token_file(path, self.dtype, self.force_dtype)

    def _source(self, path: Path, in_dir: bool):
        """(tokens, document offsets) of a file read as text whatever its suffix (source code):
        one document (per line with ``source_unit`` "line"); a binary file found in a
        directory gives none and is counted in ``skipped``, one named is an InputError."""
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise FileAccessError(f"cannot read {path}: {exc.strerror or exc}") from None
        text, why = source_text(raw)
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
        return collect(batches, None, self.spool, stem)

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
            for ids, counts in encoded_batches(documents, tok, eos_id, dtype):
                self.meter.add(ids.size, len(counts), (self.base + consumed()) / self.total)
                yield ids, counts
        return collect(counted(), dtype, self.spool, stem)


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

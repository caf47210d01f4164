"""Tokenising text: the HuggingFace tokenizer (loaded once per path), long texts cut into
pieces, documents encoded in parallel batches, and the ids gathered in memory or appended to a
token file among a build's temporaries."""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import numpy as np

from ..errors import FileAccessError, InputError
from .stream import MappedPiece

__all__ = ["load_tokenizer", "split_text", "text_dtype", "encoded_batches", "collect", "TEXT_BATCH",
           "TEXT_BATCH_CHARS", "TEXT_PIECE_CHARS", "TEXT_SUFFIX"]

TEXT_BATCH = 1024           # documents (or pieces of one) per tokenizer call, at most
TEXT_BATCH_CHARS = 1 << 18  # characters per tokenizer call, about (it needs ~150 B a char)
TEXT_PIECE_CHARS = 1 << 18  # a longer document is encoded in pieces of this many characters
TEXT_SUFFIX = ".text-tokens"  # a text input's token file among a build's temporaries

_TOKENIZERS: dict = {}


def load_tokenizer(path):
    """The HuggingFace tokenizer in ``path`` (cached per path; needs `tokenizers`)."""
    path = str(path)
    if path not in _TOKENIZERS:
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise InputError("text input needs the `tokenizers` package: "
                             "pip install tokenizers") from None
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
        m = LAST_SPACE_RUN.search(text, start, start + limit)
        cut = m.start() - start if m and m.start() > start else limit
        pieces.append(text[start:start + cut])
        start += cut
    pieces.append(text[start:])
    return pieces


LAST_SPACE_RUN = re.compile(r"\s+\S*\Z")


def text_dtype(tokenizer) -> np.dtype:
    """Token dtype of text tokenised with ``tokenizer``: uint16 up to 65536 ids, else uint32."""
    return np.dtype("<u2") if load_tokenizer(tokenizer).get_vocab_size() <= 1 << 16 \
        else np.dtype("<u4")


def encoded_batches(documents, tok, eos_id, dtype):
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


def collect(batches, dtype, spool: Path | None, stem: str):
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

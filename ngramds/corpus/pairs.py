"""Prompt/response pairs for fine-tuning: JSONL records with a prompt and a response field, one
document per record (the prompt's tokens, then the response's, then EOS when given), and the
prompt's length per document, which training items mask out of the loss.

Records are read one at a time and tokenised in batches, a long field in pieces (as text
documents are: :func:`ngramds.corpus.tokenize.split_text`), so a huge prompt never reaches the
tokenizer whole; a memory-bounded build writes the tokens to a temporary token file."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import FileAccessError, InputError
from ..progress import Meter
from . import tokenize
from .compressed import open_input, read_errors
from .discovery import check_readable
from .tokenize import collect, load_tokenizer, split_text, text_dtype
from .stream import TokenStream, piece_of
from .text import TEXT_LINE_BLOCK, whole_line
from .types import Corpus, check_eos_id

__all__ = ["read_pairs", "pair_stream", "check_pair_fields"]



def check_pair_fields(prompt_field, response_field) -> None:
    """InputError unless the prompt and response fields are two different names."""
    for what, name in (("prompt", prompt_field), ("response", response_field)):
        if not isinstance(name, str) or not name:
            raise InputError(f"the {what} field must be a field name, got {name!r}")
    if prompt_field == response_field:
        raise InputError(f"the prompt and the response are both field {prompt_field!r}; "
                         "give two different fields (--prompt-field, --response-field)")


def read_pairs(paths, tokenizer: str | os.PathLike, prompt_field: str = "prompt",
               response_field: str = "response", eos_id: int | None = None) -> Corpus:
    """A :class:`Corpus` of the JSONL records in ``paths`` (one file or several, in order).

    Args:
        paths: a JSONL file (plain or .gz/.bz2/.xz/.zst) or a list of them.
        tokenizer: a HuggingFace tokenizer.json; no special tokens are added.
        prompt_field, response_field: the two string fields of each record (different names).
        eos_id: appended to every document when given.

    Returns:
        The corpus: document = tokens of the prompt, tokens of the response, then ``eos_id``;
        ``prompt_lengths`` = the prompt's token count. The two texts are tokenised apart, so
        the boundary is exact (a field longer than the piece size is encoded in pieces cut
        before whitespace, as text documents are).

    Raises:
        InputError: a record that is not an object with both fields as strings (naming file
            and line), equal field names, no records at all, an ``eos_id`` outside the
            vocabulary.
    """
    stream = pair_stream(paths, tokenizer, prompt_field, response_field, eos_id)
    tokens = np.concatenate([p.read(0, p.size) for p in stream.pieces])
    return Corpus(tokens, stream.doc_offsets, stream.sources, stream.tokenizer,
                  stream.vocab_size, prompt_lengths=stream.prompt_lengths)


def pair_stream(paths, tokenizer, prompt_field: str = "prompt",
                response_field: str = "response", eos_id: int | None = None,
                spool: Path | None = None, read_bytes: int | None = None,
                progress: bool = False) -> TokenStream:
    """:func:`read_pairs` as a :class:`TokenStream` with ``prompt_lengths``: the tokens in
    memory, or appended batch by batch to a token file in ``spool`` (a temporary directory the
    caller removes; memory: 16 bytes per record). ``read_bytes``: a record (line) longer than
    this is an InputError naming the memory limit, found before the line is read whole."""
    check_pair_fields(prompt_field, response_field)
    if tokenizer is None:
        raise InputError("prompt/response pairs are JSONL files read with a tokenizer: give "
                         "--tokenizer tokenizer.json")
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if not isinstance(paths, (list, tuple)) or \
            not all(isinstance(p, (str, os.PathLike)) for p in paths):
        raise InputError("prompt/response pairs are read from JSONL files: give their paths, "
                         f"not {type(paths).__name__}")
    paths = [Path(p) for p in paths]
    if not paths:
        raise InputError("no input files given")
    check_eos_id(eos_id)
    for path in paths:
        if path.is_dir():
            raise InputError(f"{path} is a directory; prompt/response pairs are read from "
                             "JSONL files: name them")
        check_readable(path)
    tok = load_tokenizer(tokenizer)
    vocab = tok.get_vocab_size()
    if eos_id is not None and eos_id >= vocab:
        raise InputError(f"eos_id {eos_id} is outside the tokenizer's vocabulary ({vocab})")
    dtype = text_dtype(tokenizer)
    meter = Meter("tokenising", enabled=progress)
    prompts: list[np.ndarray] = []
    pieces, offsets, base = [], [np.zeros(1, np.int64)], 0
    for path in paths:
        records = _records(path, prompt_field, response_field, read_bytes)
        tokens, file_offsets = collect(_encoded_pairs(records, tok, eos_id, dtype, prompts,
                                                      meter), dtype, spool, path.stem)
        pieces.append(piece_of(tokens))
        offsets.append(file_offsets[1:] + base)
        base += int(file_offsets[-1])
    if meter.docs:
        meter.finish()
    doc_offsets = np.concatenate(offsets)
    if doc_offsets.size == 1:
        raise InputError(f"no records in {', '.join(map(str, paths))}")
    lengths = np.concatenate(prompts) if prompts else np.empty(0, np.int64)
    return TokenStream(pieces, doc_offsets, [p.name for p in paths], Path(tokenizer).name,
                       vocab, lengths)


def _encoded_pairs(records, tok, eos_id, dtype, prompts: list, meter: Meter):
    """Yield (ids, per-record token counts) batch by batch (at most :data:`tokenize.TEXT_BATCH`
    pieces, about :data:`tokenize.TEXT_BATCH_CHARS` characters per tokenizer call), each field
    cut by :func:`split_text`; appends each batch's prompt token counts to ``prompts``."""
    encode = getattr(tok, "encode_batch_fast", tok.encode_batch)
    batch: list[str] = []
    ends: list[int] = []  # per piece: -1 more of its field follows, 0 ends a prompt, 1 a record
    state = {"pending": 0, "prompt": 0}

    def flush():
        parts, counts, lengths = [], [], []
        for enc, end in zip(encode(batch, add_special_tokens=False), ends):
            ids = enc.ids
            if end == 1 and eos_id is not None:
                ids = ids + [eos_id]
            parts.append(np.asarray(ids, dtype=dtype))
            state["pending"] += len(enc.ids)
            if end == 0:
                state["prompt"] = state["pending"]
            elif end == 1:
                counts.append(state["pending"] + (eos_id is not None))
                lengths.append(state["prompt"])
                state["pending"] = state["prompt"] = 0
        batch.clear()
        ends.clear()
        prompts.append(np.array(lengths, np.int64))
        ids = np.concatenate(parts) if parts else np.empty(0, dtype)
        meter.add(ids.size, len(counts), None)
        return ids, counts

    chars = 0
    for prompt, response in records:
        for end, text in ((0, prompt), (1, response)):
            cut = split_text(text)
            for i, piece in enumerate(cut):
                batch.append(piece)
                ends.append(end if i == len(cut) - 1 else -1)
                chars += len(piece)
                if len(batch) >= tokenize.TEXT_BATCH or chars >= tokenize.TEXT_BATCH_CHARS:
                    yield flush()
                    chars = 0
            del cut, text
    if batch:
        yield flush()


def _records(path: Path, prompt_field: str, response_field: str,
             read_bytes: int | None = None) -> Iterator[tuple[str, str]]:
    """(prompt, response) of each record of the JSONL file ``path``, read line by line."""
    try:
        stream, _ = open_input(path)  # .gz/.bz2/.xz/.zst decompressed
    except OSError as exc:
        raise FileAccessError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        with stream:
            for number, line in enumerate(_lines(stream, path, read_bytes), 1):
                if line.strip():
                    yield _record(line, f"{path.name}:{number}", prompt_field, response_field)
    except InputError:
        raise
    except read_errors() as exc:
        if isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError):
            raise FileAccessError(f"cannot read {path}: {exc.strerror or exc}") from None
        raise InputError(f"{path}: cannot read it to the end ({exc}); is the file damaged "
                         "or truncated?") from None


def _lines(stream, path: Path, read_bytes: int | None) -> Iterator[bytes]:
    """The lines of ``stream`` (each read by :func:`~ngramds.corpus.text.whole_line`: with
    ``read_bytes`` a longer line is refused once that much of it is read)."""
    number = 0
    while True:
        line = stream.readline(TEXT_LINE_BLOCK)
        if not line:
            return
        number += 1
        yield whole_line(stream, line, f"{path}:{number}", read_bytes)


def _record(line: bytes, where: str, prompt_field: str, response_field: str):
    try:
        record = json.loads(line)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InputError(f"{where}: not valid JSON ({str(exc)[:200]})") from None
    if not isinstance(record, dict):
        raise InputError(f"{where}: not a JSON object; each line is a record with "
                         f"{prompt_field!r} and {response_field!r}")
    pair = []
    for field in (prompt_field, response_field):
        if field not in record:
            raise InputError(f"{where}: no field {field!r} (fields: "
                             f"{', '.join(map(repr, record))[:200] or 'none'})")
        if not isinstance(record[field], str):
            raise InputError(f"{where}: field {field!r} is not a string")
        pair.append(record[field])
    return tuple(pair)

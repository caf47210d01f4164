"""Prompt/response pairs for fine-tuning: JSONL records with a prompt and a response field, one
document per record (the prompt's tokens, then the response's, then EOS when given), and the
prompt's length per document, which training items mask out of the loss."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..errors import FileAccessError, InputError
from .compressed import open_input, read_errors
from .readers import load_tokenizer
from .types import Corpus

__all__ = ["read_pairs"]

_BATCH = 4096  # records tokenised per call


def read_pairs(paths, tokenizer: str | os.PathLike, prompt_field: str = "prompt",
               response_field: str = "response", eos_id: int | None = None) -> Corpus:
    """A :class:`Corpus` of the JSONL records in ``paths`` (one file or several, in order):
    document = tokens of ``prompt_field``, tokens of ``response_field``, then ``eos_id`` if
    given; ``prompt_lengths`` = the prompt's token count. The two texts are tokenised apart
    (``tokenizer``: a HuggingFace tokenizer.json, no special tokens added), so the boundary is
    exact. Blank lines are skipped; a record that is not an object with both fields as
    strings is an InputError naming file and line."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [Path(p) for p in paths]
    tok = load_tokenizer(tokenizer)
    if eos_id is not None and not (isinstance(eos_id, (int, np.integer)) and
                                   0 <= eos_id < 1 << 32):
        raise InputError(f"eos_id must be a token id, got {eos_id!r}")
    docs, prompts = [], []
    for path in paths:
        records = list(_records(path, prompt_field, response_field))
        for a in range(0, len(records), _BATCH):
            chunk = records[a:a + _BATCH]
            p = tok.encode_batch([r[0] for r in chunk], add_special_tokens=False)
            q = tok.encode_batch([r[1] for r in chunk], add_special_tokens=False)
            for x, y in zip(p, q):
                tail = [eos_id] if eos_id is not None else []
                docs.append(np.array(x.ids + y.ids + tail, dtype=np.int64))
                prompts.append(len(x.ids))
    if not docs:
        raise InputError(f"no records in {', '.join(map(str, paths))}")
    lengths = np.array([d.size for d in docs], dtype=np.int64)
    corpus = Corpus(np.concatenate(docs), np.concatenate([[0], np.cumsum(lengths)]),
                    sources=[p.name for p in paths], tokenizer=Path(tokenizer).name,
                    vocab_size=tok.get_vocab_size(),
                    prompt_lengths=np.array(prompts, dtype=np.int64))
    if eos_id is not None and eos_id >= corpus.vocab_size:
        raise InputError(f"eos_id {eos_id} is outside the tokenizer's vocabulary "
                         f"({corpus.vocab_size})")
    return corpus


def _records(path: Path, prompt_field: str, response_field: str):
    """(prompt, response) of each record of the JSONL file ``path``."""
    try:
        stream, _ = open_input(path)  # .gz/.bz2/.xz/.zst decompressed
        with stream:
            data = stream.read()
    except InputError:
        raise
    except read_errors() as exc:
        if isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError):
            raise FileAccessError(f"cannot read {path}: {exc.strerror or exc}") from None
        raise InputError(f"{path}: cannot read it to the end ({exc}); is the file damaged "
                         "or truncated?") from None
    for number, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path.name}:{number}"
        try:
            record = json.loads(line)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InputError(f"{where}: not valid JSON ({exc})") from None
        if not isinstance(record, dict):
            raise InputError(f"{where}: not a JSON object; each line is a record with "
                             f"{prompt_field!r} and {response_field!r}")
        pair = []
        for field in (prompt_field, response_field):
            if field not in record:
                raise InputError(f"{where}: no field {field!r} (fields: "
                                 f"{', '.join(map(repr, record)) or 'none'})")
            if not isinstance(record[field], str):
                raise InputError(f"{where}: field {field!r} is not a string")
            pair.append(record[field])
        yield tuple(pair)

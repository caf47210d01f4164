"""The corpus as the builder sees it, and the one home of the checks every corpus passes."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..file import format as fmt
from ..validation import check_int

__all__ = ["Corpus", "check_corpus", "check_vocab", "check_doc_offsets",
           "check_prompt_lengths"]


@dataclass
class Corpus:
    """Token ids of all documents back to back, and document boundaries.

    ``doc_offsets`` has one entry per document plus one: document d is
    ``tokens[doc_offsets[d]:doc_offsets[d + 1]]``. ``prompt_lengths`` (optional, one per
    document): the first prompt_lengths[d] tokens of document d are its prompt, which training
    items never use as labels (the file's ``prompt_lengths`` section).

    Args:
        tokens: 1-D integer array of token ids.
        doc_offsets: int64 [D + 1], rising from 0 to ``len(tokens)``.
        sources: where the documents came from (file names, for messages and the header).
        tokenizer: the tokenizer.json path the text was encoded with, if any.
        vocab_size: the vocabulary size (default: the tokenizer's, else max id + 1).
        prompt_lengths: [D], the prompt tokens at the start of each document (optional).

    Checked by :func:`ngramds.build` (InputError: ids that are not integers or not below
    ``vocab_size``, boundaries that do not rise from 0 to the number of tokens).
    """

    tokens: np.ndarray
    doc_offsets: np.ndarray
    sources: list = field(default_factory=list)
    tokenizer: str | None = None
    vocab_size: int | None = None
    prompt_lengths: np.ndarray | None = None

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


def check_eos_id(eos_id) -> int | None:
    """``eos_id`` as an int in 0..2^32-1 (a token id), or None; InputError otherwise."""
    if eos_id is None:
        return None
    return check_int("eos_id", eos_id, 0, (1 << 32) - 1,
                     message="{name} must be a token id in 0..2^32-1, got {value!r}")


def check_corpus(corpus: Corpus, vocab_size: int | None) -> tuple[np.ndarray, np.ndarray, int]:
    """(tokens in the file's token dtype, document offsets, vocabulary size) of a usable corpus;
    InputError otherwise."""
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


def check_prompt_lengths(prompt_lengths, doc_offsets: np.ndarray) -> np.ndarray:
    """Prompt lengths as int64, once there is one per document, each within its document."""
    lengths = np.asarray(prompt_lengths).reshape(-1)
    docs = np.diff(np.asarray(doc_offsets, dtype=np.int64))
    if lengths.size and lengths.dtype.kind not in "iu":
        raise InputError(f"prompt lengths must be integers, got dtype {lengths.dtype}")
    lengths = lengths.astype(np.int64)
    if lengths.size != docs.size:
        raise InputError(f"{lengths.size} prompt lengths for {docs.size} documents; give one "
                         "prompt length per document")
    bad = np.flatnonzero((lengths < 0) | (lengths > docs))
    if bad.size:
        d = int(bad[0])
        raise InputError(f"prompt length {int(lengths[d])} of document {d} is outside 0.."
                         f"{int(docs[d])} (the document's length)")
    return lengths

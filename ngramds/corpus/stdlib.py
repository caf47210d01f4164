"""The built-in default corpus: this Python's standard library source, one document per file,
tokenised with a byte-level BPE trained offline on the same text (needs `tokenizers`)."""
from __future__ import annotations

import os
import sysconfig
from pathlib import Path

import numpy as np

from ..errors import FileAccessError, InputError
from .tokenize import encoded_batches
from .types import Corpus

DEFAULT_VOCAB = 8192
EOS_TOKEN = "<|endoftext|>"


def stdlib_files() -> list[Path]:
    """All .py files of the standard library (not site-packages), in a fixed order."""
    root = Path(sysconfig.get_paths()["stdlib"])
    return sorted(p for p in root.rglob("*.py")
                  if "site-packages" not in p.parts and "dist-packages" not in p.parts)


def _read(path: Path) -> str:
    return path.read_bytes().decode("utf-8", errors="replace")


def train_tokenizer(texts: list[str], vocab_size: int = DEFAULT_VOCAB):
    """A byte-level BPE tokenizer trained on ``texts`` (deterministic for the same input)."""
    try:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    except ImportError:
        raise InputError("the default corpus needs `tokenizers`: pip install tokenizers") from None
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS_TOKEN],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def saved_tokenizer(path: Path):
    """The tokenizer an earlier default-corpus build saved at ``path``; None when there is no
    such file; InputError for a file that is not one (it is never overwritten)."""
    if not os.path.lexists(path):
        return None
    try:
        from tokenizers import Tokenizer
        tok = Tokenizer.from_file(str(path))
    except ImportError:
        raise InputError("the default corpus needs `tokenizers`: pip install tokenizers") \
            from None
    except Exception as exc:  # tokenizers raises its own types
        raise InputError(f"{path} exists and is not a tokenizer.json "
                         f"({str(exc).splitlines()[0][:80] if str(exc) else 'unreadable'}); "
                         "move it away or choose another output name") from None
    if tok.token_to_id(EOS_TOKEN) is None:
        raise InputError(f"{path} exists but is not the default corpus's tokenizer (no "
                         f"{EOS_TOKEN} token); move it away or choose another output name")
    return tok


def stdlib_corpus(tokenizer_path: str | Path, vocab_size: int = DEFAULT_VOCAB,
                  files: list[Path] | None = None) -> Corpus:
    """Tokenise the standard library (each file a document ending with EOS).

    The tokenizer is trained and saved to ``tokenizer_path`` unless that file exists.
    """
    tokenizer_path = Path(tokenizer_path)
    tok = saved_tokenizer(tokenizer_path)  # checked before the work
    files = stdlib_files() if files is None else files
    texts = [_read(p) for p in files]
    if tok is None:
        tok = train_tokenizer(texts, vocab_size)
        try:
            tok.save(str(tokenizer_path))
        except Exception as exc:  # tokenizers raises its own types
            raise FileAccessError(f"cannot save the tokenizer to {tokenizer_path}: "
                                  f"{str(exc)[:120]}") from None
    eos = tok.token_to_id(EOS_TOKEN)
    # encoded in bounded batches (the encodings of all the text at once would need ~1.5 GB)
    dtype = np.dtype("<u2") if tok.get_vocab_size() <= 1 << 16 else np.dtype("<u4")
    parts, lengths = [], []
    for ids, counts in encoded_batches(texts, tok, eos, dtype):
        parts.append(ids)
        lengths += counts
    corpus = Corpus(np.concatenate(parts),
                    np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]))
    corpus.sources = ["<python stdlib>"]
    corpus.tokenizer = tokenizer_path.name
    corpus.vocab_size = tok.get_vocab_size()
    return corpus

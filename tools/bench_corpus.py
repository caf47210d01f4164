"""A real-text benchmark corpus of at least ``min_tokens`` tokens with a 16-bit vocabulary.

The Python standard library .py files (one document each, ending with EOS), then, only if
needed to reach ``min_tokens``, whole .py files of the installed site-packages in sorted path
order, all tokenised with the byte-level BPE (vocab 8192) that ngramds.corpus.stdlib trains on
the standard library. Tokens and document offsets are cached as .npy under ``cache_dir``.

    from bench_corpus import load_bench_corpus
    corpus = load_bench_corpus(10_000_000)      # ngramds.Corpus, tokens uint16
"""
from __future__ import annotations

import json
import sysconfig
from pathlib import Path

import numpy as np

from ngramds import Corpus
from ngramds.corpus.stdlib import DEFAULT_VOCAB, EOS_TOKEN, _read, stdlib_files, train_tokenizer

BATCH_FILES = 256


def site_package_files() -> list[Path]:
    """The .py files of the installed site-packages, sorted by path."""
    root = Path(sysconfig.get_paths()["purelib"])
    return sorted(root.rglob("*.py"))


def _tokenizer(cache_dir: Path):
    from tokenizers import Tokenizer
    path = cache_dir / f"stdlib-bpe-{DEFAULT_VOCAB}.json"
    if not path.exists():
        print(f"bench corpus: training BPE (vocab {DEFAULT_VOCAB}) on the stdlib -> {path}")
        train_tokenizer([_read(p) for p in stdlib_files()], DEFAULT_VOCAB).save(str(path))
    return Tokenizer.from_file(str(path)), path


def _tokenise(min_tokens: int, cache_dir: Path) -> tuple[list[np.ndarray], dict]:
    tok, tok_path = _tokenizer(cache_dir)
    eos = tok.token_to_id(EOS_TOKEN)
    docs, total, used = [], 0, {"stdlib": 0, "site-packages": 0, "last_file": None}
    for source, files in (("stdlib", stdlib_files()), ("site-packages", site_package_files())):
        for b in range(0, len(files), BATCH_FILES):
            if source != "stdlib" and total >= min_tokens:  # the stdlib is always all in
                break
            batch = files[b:b + BATCH_FILES]
            encoded = tok.encode_batch([_read(p) for p in batch], add_special_tokens=False)
            for path, enc in zip(batch, encoded):
                if source != "stdlib" and total >= min_tokens:
                    break
                docs.append(np.append(np.asarray(enc.ids, np.uint16), np.uint16(eos)))
                total += docs[-1].size
                used[source] += 1
                used["last_file"] = str(path)
    if total < min_tokens:
        raise SystemExit(f"only {total:,} tokens of .py text available (< {min_tokens:,})")
    used.update(tokens=total, documents=len(docs), tokenizer=str(tok_path),
                vocab_size=tok.get_vocab_size())
    return docs, used


def load_bench_corpus(min_tokens: int = 10_000_000, cache_dir: str | Path = "out/bench") -> Corpus:
    """A Corpus (tokens uint16, doc_offsets int64) of at least ``min_tokens`` tokens."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    stem = cache_dir / f"corpus-{min_tokens}"
    tok_file, off_file, meta_file = (Path(f"{stem}.{s}") for s in
                                     ("tokens.npy", "offsets.npy", "json"))
    if tok_file.exists() and off_file.exists() and meta_file.exists():
        tokens, offsets = np.load(tok_file), np.load(off_file)
        meta = json.loads(meta_file.read_text())
        how = f"cached in {stem}.*"
    else:
        docs, meta = _tokenise(min_tokens, cache_dir)
        corpus = Corpus.from_documents(docs)
        tokens, offsets = corpus.tokens.astype(np.uint16), corpus.doc_offsets
        np.save(tok_file, tokens)
        np.save(off_file, offsets)
        meta_file.write_text(json.dumps(meta, indent=1))
        how = f"tokenised and saved to {stem}.*"
    print(f"bench corpus: {tokens.size:,} tokens, {offsets.size - 1:,} documents "
          f"({meta['stdlib']} stdlib + {meta['site-packages']} site-packages .py files, last "
          f"{meta['last_file']}), BPE vocab {meta['vocab_size']}; {how}")
    return Corpus(tokens, offsets, sources=["<python stdlib>", "<site-packages>"],
                  tokenizer=Path(meta["tokenizer"]).name, vocab_size=meta["vocab_size"])


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--min-tokens", type=int, default=10_000_000)
    ap.add_argument("--cache-dir", default="out/bench")
    args = ap.parse_args()
    load_bench_corpus(args.min_tokens, args.cache_dir)

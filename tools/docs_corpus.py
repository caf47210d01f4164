"""A second, prose-like corpus for the training experiment: the documentation installed with
this machine's Python packages (.rst, .md, .txt and METADATA files under site-packages), one
document per file, with a byte-level BPE (vocab 8192) trained on the same text.

    python tools/docs_corpus.py out/docs      # writes out/docs.jsonl, out/docs.tokenizer.json
    ngramds build out/docs.jsonl --tokenizer out/docs.tokenizer.json -o out/docs.ngds --orders 1-4

What is installed differs between machines, so the corpus does too; the file list is printed.
"""
from __future__ import annotations

import argparse
import json
import sysconfig
from pathlib import Path

from ngramds.corpus.stdlib import DEFAULT_VOCAB, _read, train_tokenizer

PATTERNS = ("*.rst", "*.md", "*.txt", "METADATA")


def doc_files() -> list[Path]:
    """Documentation files of the installed packages, sorted by path (no duplicates)."""
    root = Path(sysconfig.get_paths()["purelib"])
    files = {p for pattern in PATTERNS for p in root.rglob(pattern) if p.is_file()}
    return sorted(p for p in files if p.stat().st_size > 200)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("prefix", type=Path, help="output prefix, e.g. out/docs")
    a = ap.parse_args()
    files = doc_files()
    texts = [_read(p) for p in files]
    a.prefix.parent.mkdir(parents=True, exist_ok=True)
    with open(a.prefix.with_suffix(".jsonl"), "w") as out:
        for text in texts:
            out.write(json.dumps({"text": text}) + "\n")
    train_tokenizer(texts, DEFAULT_VOCAB).save(str(a.prefix.with_suffix(".tokenizer.json")))
    print(f"{len(files)} files, {sum(map(len, texts)) / 2**20:.1f} MiB of text -> "
          f"{a.prefix.with_suffix('.jsonl')}")


if __name__ == "__main__":
    main()

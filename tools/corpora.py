"""Offline corpora of other kinds for the training experiments (present on any Debian-like
machine with Python; nothing is downloaded): one JSONL record per file and a byte-level BPE
(vocab 8192) trained on the same text.

    python tools/corpora.py cheaders out/   # C headers under /usr/include (C code)
    python tools/corpora.py man out/        # English man pages (/usr/share/man/man1-8, groff)

Files are taken in sorted path order, every k-th one so that about ``--max-mb`` MB of text
is kept (spread over the whole tree rather than its first directories); the list is fixed
for a machine. Writes OUT/NAME.jsonl and OUT/NAME.tokenizer.json.
"""
from __future__ import annotations

import argparse
import gzip
import json
import math
from pathlib import Path

from ngramds.corpus.stdlib import DEFAULT_VOCAB, train_tokenizer

SOURCES = {
    "cheaders": lambda: sorted(Path("/usr/include").rglob("*.h")),
    "man": lambda: sorted(p for d in sorted(Path("/usr/share/man").glob("man[1-8]"))
                          for p in d.glob("*.gz")),
}


def read(path: Path) -> str:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    return raw.decode("utf-8", errors="replace")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("name", choices=sorted(SOURCES))
    ap.add_argument("out", type=Path, help="output directory")
    ap.add_argument("--max-mb", type=float, default=30.0, help="text kept, about (MB)")
    a = ap.parse_args()
    files = [p for p in SOURCES[a.name]() if p.is_file() and not p.is_symlink()]
    total = sum(p.stat().st_size for p in files) * (4 if a.name == "man" else 1)  # gz ~1:4
    step = max(1, math.ceil(total / (a.max_mb * 1e6)))
    texts = [t for t in (read(p) for p in files[::step]) if t.strip()]
    a.out.mkdir(parents=True, exist_ok=True)
    with open(a.out / f"{a.name}.jsonl", "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps({"text": t}) + "\n")
    train_tokenizer(texts, DEFAULT_VOCAB).save(str(a.out / f"{a.name}.tokenizer.json"))
    print(f"{a.name}: {len(texts):,} of {len(files):,} files (every {step}), "
          f"{sum(map(len, texts)) / 1e6:.1f}M characters -> {a.out / (a.name + '.jsonl')}")


if __name__ == "__main__":
    main()

"""File and device-table bytes with and without ``--min-count`` (docs/SCALE.md, "Pruning").

    python tools/bench_pruning.py stdlib.ngds OUT_DIR

rebuilds the corpus of an existing file (its tokens and documents, orders 2-4) unpruned and
pruned, plain and compact, and prints contexts, file bytes and ``NgramTargets.table_bytes``.
"""
import sys
import time
from pathlib import Path

import numpy as np

import ngramds
from ngramds.torch import NgramTargets


def main(source: str, out_dir: str) -> None:
    src = ngramds.open(source)
    corpus = ngramds.Corpus(np.array(src.tokens), np.array(src.doc_offsets).astype(np.int64))
    print(f"{src.num_tokens:,} tokens, {src.num_documents:,} documents")
    for spec in (None, "4:2", 2, 3):
        for compact in (False, True):
            out = Path(out_dir) / f"pruned-{spec}-{compact}.ngds".replace(":", "_")
            t0 = time.perf_counter()
            ngramds.build(corpus, out, vocab_size=src.vocab_size, progress=False,
                          min_count=spec, compact=compact)
            dt = time.perf_counter() - t0
            f = ngramds.open(out)
            size = max(s.offset + s.length for s in f.sections.values())
            contexts = [f.table(o).num_contexts for o in f.orders]
            print(f"min_count={spec} compact={compact}: contexts {contexts}, file {size:,} B "
                  f"({size / f.num_tokens:.2f} B/token), device tables "
                  f"{NgramTargets.table_bytes(f):,} B, build {dt:.1f} s", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:3])

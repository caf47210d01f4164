"""What a larger CoCoNTs r or AllNTs costs (docs/BENCHMARKS.md): the loader's throughput
with 2 workers, the compiled targets' rate on 1 thread and the bytes a batch carries, for
each CoCoNTs r and AllNTs ("all": up to ``--max-k`` entries per order, the default targets),
the choices alternating within each repeat, medians printed as a table.

    python tools/bench_top_r.py out/budget/stdlib.ngds            # r = 8, 16 and AllNTs
    python tools/bench_top_r.py FILE --r 4,8,16 --repeats 7
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_device import BATCH, SEQ, each, forever, rate, throughput  # noqa: E402

from ngramds.targets import Targets  # noqa: E402
from ngramds.torch import NgramDataset, NgramLoader  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file")
    ap.add_argument("--r", default="8,16,all",
                    help="CoCoNTs r values, 'all' for AllNTs (default 8,16,all)")
    ap.add_argument("--max-k", type=int, default=64, help="AllNTs: entries kept per order "
                    "(default 64, the library's)")
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    try:
        rs = [x if x == "all" else int(x) for x in a.r.split(",")]
    except ValueError:
        ap.error(f"--r: integers or 'all', got {a.r!r}")
    options = {r: dict(targets="allnts", max_k=a.max_k) if r == "all" else
               dict(targets="coconts", top_r=r) for r in rs}
    loader = {r: [] for r in rs}
    targets = {r: [] for r in rs}
    nbytes = {}
    for rep in range(a.repeats):
        for r in rs:
            ds = NgramDataset(a.file, SEQ, batched=True, **options[r])
            if r not in nbytes:
                batch = next(iter(NgramLoader(ds, batch_size=BATCH)))
                nbytes[r] = sum(v.nbytes for v in batch.values()) / (BATCH * SEQ)
            loader[r].append(rate(lambda: forever(NgramLoader(ds, batch_size=BATCH,
                                                              num_workers=2)), 20)[0] / 1e6)
            cpu = Targets(ds.file, ds.config)
            rng = np.random.default_rng(rep)
            starts = [rng.integers(0, ds.file.num_tokens - SEQ - 1, BATCH) for _ in range(10)]
            cpu.compute(starts[0], SEQ, 0, 0, threads=1)
            targets[r].append(throughput(each(lambda s: cpu.compute(s, SEQ, 0, 0, threads=1),
                                              starts), 10 * BATCH * SEQ, repeats=1) / 1e6)
    base = rs[0]
    print(f"| r | batch bytes per position | loader M pos/s, 2 workers (vs r = {base}) | "
          f"targets M pos/s, 1 thread (vs r = {base}) |\n|---:|---:|---:|---:|")
    for r in rs:
        lo, tg = statistics.median(loader[r]), statistics.median(targets[r])
        print(f"| {r} | {nbytes[r]:.0f} | {lo:.2f} ({lo / statistics.median(loader[base]):.2f}x) "
              f"| {tg:.2f} ({tg / statistics.median(targets[base]):.2f}x) |")


if __name__ == "__main__":
    main()

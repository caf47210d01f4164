"""What a larger CoCoNTs r costs (docs/RESULTS.md, "r = 16 on the held-out corpora"): the
loader's throughput with 2 workers and the compiled targets' rate on 1 thread, for each r,
the r values alternating within each repeat, medians printed as a table.

    python tools/bench_top_r.py out/budget/stdlib.ngds            # r = 8 and 16
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
    ap.add_argument("--r", default="8,16", help="CoCoNTs r values (default 8,16)")
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    rs = [int(x) for x in a.r.split(",")]
    loader = {r: [] for r in rs}
    targets = {r: [] for r in rs}
    for rep in range(a.repeats):
        for r in rs:
            ds = NgramDataset(a.file, SEQ, batched=True, top_r=r)
            loader[r].append(rate(lambda: forever(NgramLoader(ds, batch_size=BATCH,
                                                              num_workers=2)), 20)[0] / 1e6)
            cpu = Targets(ds.file, ds.config)
            rng = np.random.default_rng(rep)
            starts = [rng.integers(0, ds.file.num_tokens - SEQ - 1, BATCH) for _ in range(10)]
            cpu.compute(starts[0], SEQ, 0, 0, threads=1)
            targets[r].append(throughput(each(lambda s: cpu.compute(s, SEQ, 0, 0, threads=1),
                                              starts), 10 * BATCH * SEQ, repeats=1) / 1e6)
    base = rs[0]
    print(f"| r | loader M pos/s, 2 workers (vs r = {base}) | targets M pos/s, 1 thread "
          f"(vs r = {base}) |\n|---:|---:|---:|")
    for r in rs:
        lo, tg = statistics.median(loader[r]), statistics.median(targets[r])
        print(f"| {r} | {lo:.2f} ({lo / statistics.median(loader[base]):.2f}x) | {tg:.2f} "
              f"({tg / statistics.median(targets[base]):.2f}x) |")


if __name__ == "__main__":
    main()

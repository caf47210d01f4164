"""Where the compiled CPU targets spend their time (issue 14): each kernel of one tile of
positions timed on its own, 1 thread, on random windows (cold caches) and on one window
repeated (every table read already in the cache: the gap between the two is what memory
accesses cost). Default file layout and configuration (orders 2-4, Witten-Bell; AllNTs up to
64 entries since 0.7, CoCoNTs r = 8 before). Prints markdown.

    python tools/profile_targets.py out/stdlib.ngds [--tiles 40]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import ngramds
from ngramds.targets import TargetConfig, Targets
from ngramds.targets import kernels as K
from ngramds.targets.compute import TILE_ROWS


def profile(t: Targets, positions: np.ndarray) -> dict[str, float]:
    """Seconds per kernel over the tiles of ``positions`` (the steps of the compiled path,
    ngramds.targets.compute._Tiles, one at a time)."""
    f, plan = t.file, t.plan
    labels = f.tokens[positions].astype(np.int64)
    spent: dict[str, float] = {}

    def timed(name, fn):
        t0 = time.perf_counter()
        out = fn()
        spent[name] = spent.get(name, 0.0) + time.perf_counter() - t0
        return out

    ids = np.empty((TILE_ROWS, plan.slots), np.int64)
    probs = np.empty((TILE_ROWS, plan.slots), np.float32)
    k, n = len(t.chain), TILE_ROWS
    ctx, los, his, tots = (np.empty((k, n), np.int64) for _ in range(4))
    w = np.empty((len(plan.orders), n))
    keys = np.empty(n, np.uint64)
    for a in range(0, positions.size - n + 1, n):
        pos, lab = positions[a:a + n], labels[a:a + n]
        timed("initial (label, 0) slots", lambda: K.init_rows(lab, ids, probs))
        index = pos
        for j, (table, source) in enumerate(t.chain):
            timed(f"gather order {table.order} (context, entry range, total)",
                  lambda: K.check(K.gather(source, table.entry_offsets, table.totals,
                                           table.next_ids.size, index, ctx[j], los[j], his[j],
                                           tots[j])))
            index = ctx[j]
        lo, hi, tot = ([x[r] for r in t.rows] for x in (los, his, tots))
        timed("Witten-Bell weights", lambda: K.mix_weights(t.mixing, los, his, tots, t.rows, w))
        timed("position keys (the tail draws' words)",
              lambda: K.position_keys(np.uint64(0), np.uint64(0), pos, keys))
        part = "first max_k entries" if plan.mode == K.ALLNTS else "top r, residual, tail draw"
        for j, (order, table) in enumerate(zip(plan.orders, t.tables)):
            timed(f"order {order}'s part ({part})",
                  lambda: K.check(K.fill_component(
                      table.next_ids, table.counts, lo[j], hi[j], tot[j], lab, keys, w[j],
                      plan.mode, plan.top_r, order, order != plan.orders[-1],
                      table.top_k is None, f.vocab_size, j * plan.width, plan.width, ids,
                      probs, t.prefixes[j])))
    return spent


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("file")
    p.add_argument("--tiles", type=int, default=40,
                   help=f"tiles of {TILE_ROWS} positions per run")
    a = p.parse_args()
    f = ngramds.open(a.file)
    t = Targets(f, TargetConfig())
    if t.chain[0][1] is None or t.plan.mixing != "witten-bell":
        raise SystemExit("profile_targets: needs a default (not --compact) file of several "
                         "orders")
    rng = np.random.default_rng(0)
    windows = a.tiles * TILE_ROWS // 1024
    cold = (rng.integers(0, f.num_tokens - 1025, windows)[:, None] +
            np.arange(1, 1025)).reshape(-1)
    warm = np.tile(cold[:1024], windows)
    profile(t, cold[:TILE_ROWS])  # compiled once
    runs = {name: [profile(t, pos) for _ in range(3)] for name, pos in
            (("cold", cold), ("warm", warm))}
    n = cold.size
    med = {name: {k: statistics.median(r[k] for r in rs) for k in rs[0]}
           for name, rs in runs.items()}
    print(f"file {a.file}: {f.num_tokens:,} tokens; {n:,} positions per run, median of 3; "
          "1 thread\n")
    print("| kernel | ns/position, random windows | share | ns/position, one window "
          "repeated (cached) |")
    print("|---|---:|---:|---:|")
    total = {name: sum(m.values()) for name, m in med.items()}
    for k in med["cold"]:
        print(f"| {k} | {med['cold'][k] / n * 1e9:.0f} | {med['cold'][k] / total['cold']:.0%} "
              f"| {med['warm'][k] / n * 1e9:.0f} |")
    print(f"| **all** | **{total['cold'] / n * 1e9:.0f}** ({n / total['cold'] / 1e6:.2f}M "
          f"positions/s) | 100% | **{total['warm'] / n * 1e9:.0f}** "
          f"({n / total['warm'] / 1e6:.2f}M/s) |")


if __name__ == "__main__":
    main()

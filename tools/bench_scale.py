"""Benchmark of builds at scale: in memory vs a memory budget vs Dask workers (docs/SCALE.md).

The corpus is real text repeated with variation: the 30M-token benchmark corpus of
tools/bench_corpus.py (stdlib + site-packages source, BPE 8192) copied until it has at least
--min-tokens tokens, each copy after the first with --noise of its tokens replaced by tokens
drawn from the corpus's own unigram distribution (new n-grams at a realistic frequency). It is
written once as out/bench/scale-N.npy (uint16) with its document lengths.

Every variant is `ngramds build` in a fresh process; its peak resident memory is sampled every
0.1 s over the process and all its children (Dask workers): the largest single process and the
largest sum. Temporary disk is what the build reports.

    python tools/bench_scale.py                       # 210M tokens, order 4, limit 1G
    python tools/bench_scale.py --min-tokens 20000000 --variants memory,budget
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))


def make_corpus(min_tokens: int, noise: float, cache: Path) -> tuple[Path, Path]:
    tokens_path = cache / f"scale-{min_tokens}.npy"
    lengths_path = cache / f"scale-{min_tokens}.lengths.npy"
    if tokens_path.exists() and lengths_path.exists():
        return tokens_path, lengths_path
    from bench_corpus import load_bench_corpus
    base = load_bench_corpus(30_000_000, cache)
    tokens, offsets = base.tokens.astype(np.uint16), base.doc_offsets
    copies = -(-min_tokens // tokens.size)
    rng = np.random.default_rng(0)
    out = np.lib.format.open_memmap(tokens_path.with_suffix(".tmp.npy"), "w+", np.uint16,
                                    (copies * tokens.size,))
    for k in range(copies):
        copy = tokens.copy()
        if k:
            hit = np.flatnonzero(rng.random(copy.size) < noise)
            copy[hit] = tokens[rng.integers(0, tokens.size, hit.size)]
        out[k * tokens.size:(k + 1) * tokens.size] = copy
    out.flush()
    del out
    np.save(lengths_path, np.tile(np.diff(offsets), copies))
    tokens_path.with_suffix(".tmp.npy").rename(tokens_path)
    print(f"scale corpus: {copies} copies of {tokens.size:,} tokens -> {tokens_path}")
    return tokens_path, lengths_path


def run(cmd: list[str]) -> dict:
    """Run ``cmd``; return wall seconds, peak RSS (largest process, largest sum) and stderr."""
    import psutil
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    parent = psutil.Process(proc.pid)
    peak_one = peak_sum = 0
    err = []
    import threading
    reader = threading.Thread(target=lambda: err.append(proc.stderr.read()))
    reader.start()
    while proc.poll() is None:
        try:
            procs = [parent] + parent.children(recursive=True)
            rss = []
            for p in procs:
                try:
                    rss.append(p.memory_info().rss)
                except psutil.Error:
                    pass
            peak_one, peak_sum = max(peak_one, max(rss)), max(peak_sum, sum(rss))
        except psutil.Error:
            pass
        time.sleep(0.1)
    reader.join()
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{err[0][-2000:]}")
    return {"wall": wall, "peak_one": peak_one, "peak_sum": peak_sum, "stderr": err[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--min-tokens", type=int, default=200_000_000)
    ap.add_argument("--noise", type=float, default=0.03)
    ap.add_argument("--order", default="4", help="--order N, or orders like 1-4")
    ap.add_argument("--limit", default="1G")
    ap.add_argument("--variants", default="memory,budget,dask1,dask2")
    ap.add_argument("--cache-dir", default=str(ROOT / "out" / "bench"))
    a = ap.parse_args()
    cache = Path(a.cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    tokens, lengths = make_corpus(a.min_tokens, a.noise, cache)
    n = int(np.load(tokens, mmap_mode="r").shape[0])
    order = ["--orders", a.order] if "-" in a.order or "," in a.order else ["--order", a.order]
    base = [sys.executable, "-m", "ngramds.cli", "build", str(tokens), "--doc-lengths",
            str(lengths), "--vocab-size", "8192", *order]
    variants = {
        "memory": ("in memory", []),
        "budget": (f"--memory-limit {a.limit}", ["--memory-limit", a.limit]),
        "dask1": (f"dask, 1 worker, limit {a.limit}", ["--engine", "dask", "--workers", "1",
                                                       "--memory-limit", a.limit]),
        "dask2": (f"dask, 2 workers, limit {a.limit}", ["--engine", "dask", "--workers", "2",
                                                        "--memory-limit", a.limit]),
    }
    outputs, rows = {}, []
    for key in a.variants.split(","):
        label, extra = variants[key]
        out = cache / f"scale-{key}.ngds"
        r = run(base + ["-o", str(out)] + extra)
        temp = re.findall(r"temporary disk ([0-9.]+) MiB \(([0-9.]+) bytes/token\)",
                          r["stderr"])
        outputs[key] = out
        rows.append((label, r, temp))
        print(f"{label}: {r['wall']:.1f} s", flush=True)
    same = {k: outputs[k].read_bytes() == outputs["memory"].read_bytes()
            for k in outputs if "memory" in outputs and k != "memory"}
    print(f"\n{n:,} tokens, order {a.order}, vocab 8192; output files identical to the "
          f"in-memory build: {same}\n")
    print("| variant | wall s | M tokens/s | vs in memory | peak RSS, largest process (MiB) "
          "| peak RSS, all processes (MiB) | temporary disk |")
    print("|---|---:|---:|---:|---:|---:|---|")
    ref = rows[0][1]["wall"] if a.variants.startswith("memory") else None
    for label, r, temp in rows:
        rel = f"{ref / r['wall']:.2f}x" if ref else "-"
        disk = f"{temp[0][0]} MiB ({temp[0][1]} B/token)" if temp else "-"
        print(f"| {label} | {r['wall']:.1f} | {n / r['wall'] / 1e6:.2f} | {rel} | "
              f"{r['peak_one'] / 2**20:.0f} | {r['peak_sum'] / 2**20:.0f} | {disk} |")
    for out in outputs.values():
        out.unlink(missing_ok=True)


if __name__ == "__main__":
    main()

"""Build benchmark: ngramds vs a numpy np.unique reference vs a tokengrams suffix-array index.

All variants work on the same real-text corpus (tools/bench_corpus.py: Python stdlib plus, if
needed, site-packages .py files, BPE vocab 8192, uint16 tokens). Every (variant, repeat) runs
in a fresh child process, so peak RSS (resource.getrusage(RUSAGE_SELF).ru_maxrss, read in the
child) belongs to that variant alone; the child also reports its RSS just after imports,
warm-up and loading the corpus (the baseline), so the cost of the build itself is visible.
Repeats are run round-robin over the variants. Only the build call itself is timed.

Variants
  ngramds          ngramds.build(corpus, path, order=ORDER, progress=False): the complete build
                   (checks, counting, CSR assembly, file written and fsynced). Numba kernels are
                   warmed up on a tiny corpus first. Stage times come from a recording stand-in
                   for ngramds.builder.dispatch.Progress (patched at run time; ngramds is not
                   modified).
  numpy-unique     A pure numpy reference of the same table: pack (context length, context
                   tokens, next token) of every position into one uint64 key (shifted
                   slices; the first ORDER-1 positions of each document redone), then
                   np.unique(keys, return_inverse=True, return_counts=True), order each
                   context's entries by (count desc, id asc) with one np.sort of packed
                   (context id, max count - count, id) uint64 keys (np.lexsort if those
                   do not fit 64 bits), and derive
                   context_length_offsets, context_tokens, entry_offsets, next_ids, counts,
                   totals and position_contexts. It does not write a file. After timing, the
                   child checks that every one of these arrays (so also the number of contexts
                   and entries) equals the ngramds file's.
  numpy-unique-counts  The same, but np.unique(keys, return_counts=True) (a sort, no inverse):
                   every section except position_contexts, i.e. less work than ngramds does.
  tokengrams-array tokengrams.InMemoryIndex(tokens_uint16_ndarray, vocab=V): builds the suffix
                   array from the in-memory tokens (the constructor takes the numpy array).
  tokengrams-file  tokengrams.InMemoryIndex.from_token_file(path, vocab=V): the same in-memory
                   suffix array, tokens read from a raw uint16 file (written, and in the page
                   cache, before timing). tokengrams indexes the whole token stream (any n, no
                   document boundaries) and counts at query time; it is the nearest existing tool.

    python tools/bench_build.py [--min-tokens 10000000] [--order 4] [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

TOOLS = Path(__file__).resolve().parent
ROOT = TOOLS.parent
sys.path.insert(0, str(TOOLS))
VARIANTS = ("ngramds", "numpy-unique", "numpy-unique-counts", "tokengrams-array",
            "tokengrams-file")
TARGETS = {"tokengrams": 2.0, "numpy": 10.0}   # min. ngramds throughput ratio
MAX_BYTES_PER_TOKEN = 40.0


def peak_rss() -> int:
    """Peak resident set size of this process in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def vm_hwm() -> int:
    """Peak RSS of this process image (VmHWM); ru_maxrss also counts the parent's RSS at fork,
    which Linux carries across exec, so the parent stays small and the two are compared."""
    with open("/proc/self/status") as f:
        return next(int(ln.split()[1]) * 1024 for ln in f if ln.startswith("VmHWM:"))


def current_rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# -- the numpy reference --------------------------------------------------------------------

def numpy_reference(tokens: np.ndarray, doc_offsets: np.ndarray, order: int,
                    vocab_size: int, positions: bool = True) -> dict:
    """The order-``order`` table of spec/SEMANTICS.md with np.unique over packed uint64 keys.

    With ``positions=False`` it skips position_contexts, which needs np.unique's inverse
    (an argsort instead of a plain sort).
    """
    n, m = tokens.size, order - 1
    bits = max(1, (vocab_size - 1).bit_length())
    if m.bit_length() + order * bits > 64:
        raise ValueError(f"order {order} with {bits}-bit tokens does not fit a uint64 key")
    u64 = np.uint64
    # key = length | t_1 | .. | t_m | next, MSB first (zero padded when length < m), so sorted
    # keys list contexts as ngramds does: by length, then tokens. Full contexts come from
    # shifted slices; the first m positions of each document (shorter contexts) are redone.
    t64 = tokens.astype(u64)
    keys = np.full(n, u64(m) << u64(order * bits), u64)
    for i in range(1, m + 1):                            # tokens[p - i] at shift i * bits
        keys[i:] |= t64[:-i] << u64(i * bits)
    keys |= t64
    doc_starts, doc_lengths = doc_offsets[:-1], np.diff(doc_offsets)
    for j in range(m):                                   # context length j
        p = doc_starts[doc_lengths > j] + j
        k = (u64(j) << u64(order * bits)) | t64[p]
        for i in range(j):                               # t_{i+1} = tokens[p - j + i]
            k |= t64[p - j + i] << u64((m - i) * bits)
        keys[p] = k
    del t64
    if positions:
        uniq, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    else:
        uniq, counts = np.unique(keys, return_counts=True)
    del keys
    mask = u64((1 << bits) - 1)
    ctx = uniq >> u64(bits)
    new_ctx = np.empty(uniq.size, bool)
    new_ctx[0] = True
    np.not_equal(ctx[1:], ctx[:-1], out=new_ctx[1:])
    starts = np.flatnonzero(new_ctx)
    entry_ctx = np.cumsum(new_ctx) - 1
    # entries by (context, count desc, id asc): one sort of packed (context, ~count, id) keys
    cmax = int(counts.max())
    cbits, gbits = cmax.bit_length(), int(entry_ctx[-1]).bit_length()
    if gbits + cbits + bits <= 64:
        ek = ((entry_ctx.astype(u64) << u64(cbits + bits))
              | ((cmax - counts).astype(u64) << u64(bits)) | (uniq & mask))
        ek.sort()
        next_ids, sorted_counts = ek & mask, cmax - ((ek >> u64(bits)) & u64((1 << cbits) - 1))
    else:
        order_ = np.lexsort(((uniq & mask), -counts, entry_ctx))
        next_ids, sorted_counts = uniq[order_] & mask, counts[order_]
    ctx_keys = ctx[starts]
    lengths = (ctx_keys >> u64(m * bits)).astype(np.int64)
    rows = np.empty((starts.size, m), tokens.dtype)
    for i in range(m):
        rows[:, i] = (ctx_keys >> u64((m - 1 - i) * bits)) & mask
    table = {
        "context_length_offsets": np.concatenate([[0], np.cumsum(np.bincount(lengths,
                                                                             minlength=m + 1))]),
        "context_tokens": rows,
        "entry_offsets": np.append(starts, uniq.size),
        "next_ids": next_ids.astype(tokens.dtype),
        "counts": sorted_counts,
        "totals": np.add.reduceat(counts, starts),
    }
    if positions:
        table["position_contexts"] = entry_ctx[inverse.reshape(-1)]
    return table


def verify_against_file(table: dict, path: Path) -> str:
    """Compare the reference table with an ngramds file; raise on any difference."""
    import ngramds
    with ngramds.open(path) as f:
        n_ctx, n_ent = table["totals"].size, table["next_ids"].size
        if (f.num_contexts, f.num_entries) != (n_ctx, n_ent):
            raise SystemExit(f"MISMATCH: numpy reference has {n_ctx:,} contexts, {n_ent:,} "
                             f"entries; ngramds file has {f.num_contexts:,}, {f.num_entries:,}")
        for name, arr in table.items():
            if not np.array_equal(arr, getattr(f, name)):
                raise SystemExit(f"MISMATCH: section {name} differs from {path}")
    return (f"{n_ctx:,} contexts, {n_ent:,} entries; its {len(table)} table sections "
            f"({', '.join(table)}) equal those of {path.name}")


# -- one child: one variant, one repeat -----------------------------------------------------

class StageRecorder:
    """Stand-in for ngramds.builder.dispatch.Progress: records when each stage begins."""
    runs: list = []

    def __init__(self, stages, enabled=True, stream=None):
        self.marks = []
        StageRecorder.runs.append(self.marks)

    def step(self, stage):
        self.marks.append((stage, time.perf_counter(), peak_rss()))

    def finish(self, message):
        self.marks.append(("end", time.perf_counter(), peak_rss()))


def child(args) -> dict:
    from bench_corpus import load_bench_corpus
    v = args.child
    corpus = load_bench_corpus(args.min_tokens, args.cache_dir)
    tokens, offsets, vocab = corpus.tokens, corpus.doc_offsets, corpus.vocab_size
    ngds_path = Path(args.cache_dir) / f"build-{args.min_tokens}-order{args.order}.ngds"
    tiny_tokens = (np.arange(5000) * 7919 % 97).astype(np.uint16)
    tiny_offsets = np.array([0, 1000, 1000, 5000])
    if v == "ngramds":
        import ngramds
        import ngramds.builder.dispatch
        ngramds.build(ngramds.Corpus(tiny_tokens, tiny_offsets, vocab_size=vocab),
                      Path(args.cache_dir) / "warmup.ngds", order=args.order, progress=False)
        ngramds.builder.dispatch.Progress = StageRecorder
        run = lambda: ngramds.build(corpus, ngds_path, order=args.order, progress=True)  # noqa
    elif v.startswith("numpy"):
        positions = v == "numpy-unique"
        numpy_reference(tiny_tokens, tiny_offsets, args.order, vocab, positions)
        run = lambda: numpy_reference(tokens, offsets, args.order, vocab, positions)  # noqa
    else:
        import tokengrams
        tokengrams.InMemoryIndex(tiny_tokens, vocab=vocab)
        if v == "tokengrams-array":
            run = lambda: tokengrams.InMemoryIndex(tokens, vocab=vocab)  # noqa: E731
        else:
            raw = Path(args.cache_dir) / f"corpus-{args.min_tokens}.tokens.u16"
            if not raw.exists() or raw.stat().st_size != tokens.nbytes:
                tokens.astype("<u2").tofile(raw)
            raw.read_bytes()                 # in the page cache before timing
            run = lambda: tokengrams.InMemoryIndex.from_token_file(str(raw), vocab=vocab)  # noqa
    base_rss, base_peak = current_rss(), peak_rss()
    cpu0, t0 = time.process_time(), time.perf_counter()
    result = run()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    out = {"variant": v, "tokens": int(tokens.size), "seconds": seconds, "cpu": cpu,
           "base_rss": base_rss, "base_peak": base_peak, "peak_rss": peak_rss(), "hwm": vm_hwm()}
    if v == "ngramds":
        marks = StageRecorder.runs[-1]
        out["stages"] = [(s, t1 - t, p1) for (s, t, _), (_, t1, p1) in zip(marks, marks[1:])]
        out["file_mib"] = ngds_path.stat().st_size / 2**20
    elif v.startswith("numpy"):
        out["check"] = (verify_against_file(result, ngds_path) if ngds_path.exists()
                        else "not verified (no ngramds file; run the ngramds variant first)")
    else:
        tok = int(tokens[len(tokens) // 2])
        if result.count([tok]) != int(np.count_nonzero(tokens == tok)):
            raise SystemExit("tokengrams index gives a wrong unigram count")
    return out


# -- the parent -----------------------------------------------------------------------------

def run_child(args, variant: str) -> dict:
    cmd = [sys.executable, __file__, "--child", variant, "--min-tokens", str(args.min_tokens),
           "--order", str(args.order), "--cache-dir", args.cache_dir]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        sys.exit(f"{variant} child failed (rc {proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return json.loads(lines[-1][7:])


def versions() -> str:
    from importlib.metadata import version
    import numba
    pkgs = ", ".join(f"{p} {version(p)}" for p in ("ngramds", "numpy", "numba", "tokengrams"))
    return (f"Python {platform.python_version()}, {pkgs}; {os.cpu_count()} CPUs, "
            f"numba threads {numba.config.NUMBA_NUM_THREADS}")


def report(args, results: dict[str, list[dict]], command: str) -> None:
    mib = 2**20
    n = next(iter(results.values()))[0]["tokens"]
    speed = {v: n / statistics.median(r["seconds"] for r in rs) for v, rs in results.items()}
    ours = speed.get("ngramds")
    print(f"\n## ngramds build benchmark: order {args.order}, {n:,} tokens, "
          f"{args.repeats} repeats (median)\n")
    print(f"command: `{command}`  \n{versions()}\n")
    print("| variant | tokens | median s | M tokens/s | peak RSS MiB | RSS bytes/token "
          "| ngramds speed-up | min s | CPU s | baseline RSS MiB | (peak - baseline) bytes/token |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for v, rs in results.items():
        secs = statistics.median(r["seconds"] for r in rs)
        peak = statistics.median(r["peak_rss"] for r in rs)
        base = statistics.median(r["base_rss"] for r in rs)
        ratio = f"{ours / speed[v]:.2f}x" if ours else "-"
        cpu = statistics.median(r["cpu"] for r in rs)
        print(f"| {v} | {n:,} | {secs:.3f} | {n / secs / 1e6:.2f} | {peak / mib:.0f} "
              f"| {peak / n:.1f} | {ratio} | {min(r['seconds'] for r in rs):.3f} | {cpu:.2f} "
              f"| {base / mib:.0f} | {(peak - base) / n:.1f} |")
    print("\nMedians over repeats (min s: the fastest). CPU s: the child's user+sys time in the "
          "timed call, all threads. RSS bytes/token: whole-process peak RSS / tokens; baseline: "
          "the child's RSS after imports, warm-up and loading the corpus.")
    print("\nper repeat (s / peak RSS MiB / baseline RSS MiB):")
    for v, rs in results.items():
        print(f"- {v}: " + ", ".join(f"{r['seconds']:.2f} / {r['peak_rss'] / mib:.0f} / "
                                     f"{r['base_rss'] / mib:.0f}" for r in rs))
    for v in results:
        if v.startswith("numpy"):
            print(f"{v} check: {results[v][0]['check']}")
    if "ngramds" in results:
        rs = results["ngramds"]
        print(f"\nngramds stages (median s; peak RSS MiB when the stage ends), file "
              f"{rs[0]['file_mib']:.1f} MiB:\n")
        print("| stage | median s | peak RSS at its end MiB |")
        print("|---|---:|---:|")
        for i, (stage, _, _) in enumerate(rs[0]["stages"]):
            t = statistics.median(r["stages"][i][1] for r in rs)
            p = statistics.median(r["stages"][i][2] for r in rs)
            print(f"| {stage} | {t:.3f} | {p / mib:.0f} |")
    if ours:
        print("\ntargets:")
        tg = [v for v in results if v.startswith("tokengrams")]
        checks = []
        if tg:
            best = max(tg, key=speed.get)
            checks.append((f"ngramds >= {TARGETS['tokengrams']:g}x tokengrams throughput "
                           f"(fastest: {best})", ours / speed[best], TARGETS["tokengrams"], "x"))
        for v in (v for v in results if v.startswith("numpy")):
            checks.append((f"ngramds >= {TARGETS['numpy']:g}x numpy reference throughput ({v})",
                           ours / speed[v], TARGETS["numpy"], "x"))
        for label, value, goal, unit in checks:
            print(f"- {label}: {value:.2f}{unit} -> {'PASS' if value >= goal else 'FAIL'}")
        rs = results["ngramds"]
        peak = statistics.median(r["peak_rss"] for r in rs)
        extra = peak - statistics.median(r["base_rss"] for r in rs)
        print(f"- ngramds peak RSS <= {MAX_BYTES_PER_TOKEN:g} bytes/token: whole process "
              f"{peak / n:.1f} -> {'PASS' if peak / n <= MAX_BYTES_PER_TOKEN else 'FAIL'}; "
              f"above the baseline {extra / n:.1f} -> "
              f"{'PASS' if extra / n <= MAX_BYTES_PER_TOKEN else 'FAIL'}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--min-tokens", type=int, default=10_000_000)
    ap.add_argument("--order", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help=f"comma-separated subset of {','.join(VARIANTS)}")
    ap.add_argument("--cache-dir", default="out/bench")
    ap.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.cache_dir = str((ROOT / args.cache_dir).resolve())
    if args.child:
        print("RESULT " + json.dumps(child(args)))
        return
    variants = [v for v in VARIANTS if v in args.variants.split(",")]
    command = "cd " + shlex.quote(str(ROOT)) + " && python " + " ".join(
        shlex.quote(a) for a in [os.path.relpath(__file__, ROOT)] + sys.argv[1:])
    # build the corpus cache once, up front, in a child: the parent's RSS at fork would show
    # in every child's ru_maxrss
    subprocess.run([sys.executable, str(TOOLS / "bench_corpus.py"), "--min-tokens",
                    str(args.min_tokens), "--cache-dir", args.cache_dir], check=True)
    load_before = os.getloadavg()[0]
    results = {v: [] for v in variants}
    for rep in range(args.repeats):
        for v in variants:
            r = run_child(args, v)
            if r["peak_rss"] > 1.02 * r["hwm"] + 2**20:
                print(f"warning: {v}: ru_maxrss {r['peak_rss'] / 2**20:.0f} MiB exceeds VmHWM "
                      f"{r['hwm'] / 2**20:.0f} MiB (inherited from the parent?)")
            results[v].append(r)
            print(f"repeat {rep + 1}/{args.repeats} {v}: {r['seconds']:.2f}s, "
                  f"peak RSS {r['peak_rss'] / 2**20:.0f} MiB", flush=True)
    print(f"1-min load average: {load_before:.2f} before, {os.getloadavg()[0]:.2f} after "
          f"(on {os.cpu_count()} CPUs; other work on the machine inflates wall times)")
    report(args, results, command)


if __name__ == "__main__":
    main()

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

With ``--source DIR`` it measures a real corpus instead (docs/SCALE.md, "A real corpus at three
sizes"): the Linux kernel's source tree (Debian's linux-source-6.1, unpacked), never repeated,
at three nested sizes chosen by ``--include`` globs (SIZES below), tokenised with a byte-level
BPE of 8192 trained once on every 40th .c/.h file (``--tokenizer``, written if missing). Per
size: the text build under ``--memory-limit`` in a fresh process (wall time per stage, peak
RSS, temporary disk), the file's bytes per token by section, the device tables' bytes per
token, singleton shares, the compiled targets' positions/s on 1 thread and the loader's
throughput against a plain memmap token loader.

    python tools/bench_scale.py --source /data/linux-source-6.1 --out-dir /data/scale \
        [--sizes S,M,L] [--limit 6G]
    python tools/bench_scale.py --source /data/linux-source-6.1 --out-dir /data/scale \
        --rates-only built,out/stdlib.ngds     # the rates again, of the files built (and others)
"""
from __future__ import annotations

import argparse
import re
import statistics
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
    ap.add_argument("--source", help="a real source tree: measure it at three sizes")
    ap.add_argument("--out-dir", help="with --source: where the files are written")
    ap.add_argument("--sizes", default="S,M,L", help="with --source: which of S, M, L")
    ap.add_argument("--tokenizer", help="with --source: tokenizer.json (trained if missing)")
    ap.add_argument("--batches", type=int, default=20, help="with --source: per rate window")
    ap.add_argument("--rates-only", metavar="built[,FILE...]",
                    help="with --source: only the targets and loader rates of the files "
                         "already built (and of the .ngds files named)")
    a = ap.parse_args()
    if a.source:
        return real_corpus(a)
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


# Nested sizes of the kernel tree (globs match across "/": fs/*.c is every .c under fs/).
_CORE = ["fs", "kernel", "lib", "mm", "net"]
_NOT_DRIVERS = _CORE + ["arch", "block", "certs", "crypto", "include", "init", "io_uring",
                        "ipc", "rust", "samples", "scripts", "security", "sound", "tools",
                        "usr", "virt"]
_TEXT = ["c", "h", "S", "dts", "dtsi", "rst", "txt", "sh", "py", "yaml"]
SIZES = {
    "S": [f"{d}/*.{e}" for d in _CORE for e in ("c", "h")],
    "M": [f"{d}/*.{e}" for d in _NOT_DRIVERS for e in ("c", "h")],
    "L": [f"*.{e}" for e in _TEXT],
}


def kernel_tokenizer(source: Path, path: Path) -> None:
    """A byte-level BPE of 8192 trained on every 40th .c/.h file of ``source`` (sorted)."""
    from ngramds.corpus.stdlib import train_tokenizer
    files = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix in (".c", ".h"))
    tok = train_tokenizer([p.read_text(errors="replace") for p in files[::40]], 8192)
    tok.save(str(path))


def stage_seconds(stderr: str) -> dict[str, float]:
    """Seconds per build stage from the progress lines (off a terminal: one line per stage,
    each with the seconds since the build began) and the summary lines."""
    out = {}
    m = re.search(r"tokenised .* in ([0-9.]+)s", stderr)
    if m:
        out["tokenising"] = float(m.group(1))
    marks = [(name.strip(), float(t)) for name, t in
             re.findall(r"\] \d+/\d+ ([a-z ]+?)(?: \(order \d+\))? \(([0-9.]+)s\)", stderr)]
    end = re.search(r"built .* in ([0-9.]+)s", stderr)
    if marks and end:
        marks.append(("end", float(end.group(1))))
        for (name, t0), (_, t1) in zip(marks, marks[1:]):
            out[name] = out.get(name, 0.0) + t1 - t0
    return out


def file_rows(path: Path) -> dict:
    """Bytes per token of each section group, device table bytes, singleton shares."""
    import ngramds
    from ngramds.torch import NgramTargets
    f = ngramds.open(path)
    n = f.num_tokens
    groups: dict[str, int] = {}
    for name, arr in f.sections.items():
        key = name.split("/")[-1]
        groups[key] = groups.get(key, 0) + arr.length
    return {"tokens": n, "file": path.stat().st_size / n,
            "sections": {k: v / n for k, v in sorted(groups.items())},
            "device": NgramTargets.table_bytes(f) / n}


def targets_rate(path: Path, batches: int) -> tuple[float, float]:
    """(M positions/s on 1 thread of the compiled targets alone and of
    ``NgramTargets(backend="compiled")``; the loader with 2 workers against a plain memmap
    loader, and its M positions/s) at seq 1024, batch 16, default configuration, random
    windows, fresh in every repeat."""
    import torch
    from bench_device import BATCH, SEQ, PlainWindows, each, forever, rate, throughput
    from ngramds.targets import Targets
    from ngramds.torch import NgramDataset, NgramLoader, NgramTargets
    ds = NgramDataset(path, SEQ, batched=True)
    cpu = Targets(ds.file, ds.config)
    rng = np.random.default_rng(0)
    cpu.compute(rng.integers(0, ds.file.num_tokens - SEQ - 1, BATCH), SEQ, 0, 0, threads=1)
    rates = []  # fresh random windows each repeat: no table read is cached from the last one
    for _ in range(5):
        starts = [rng.integers(0, ds.file.num_tokens - SEQ - 1, BATCH) for _ in range(batches)]
        rates.append(throughput(each(lambda s: cpu.compute(s, SEQ, 0, 0, threads=1), starts),
                                batches * BATCH * SEQ, repeats=1))
    one = statistics.median(rates) / 1e6
    torch.set_num_threads(1)  # NgramTargets(backend="compiled") on the batches of the loader
    dev = NgramDataset(path, SEQ, batched=True, targets_on="device")
    it = iter(NgramLoader(dev, batch_size=BATCH))
    held = [next(it) for _ in range(5 * batches)]
    targets = NgramTargets(dev, backend="compiled")
    targets(held[0])
    wrapped = statistics.median(
        throughput(each(targets, held[k::5]), batches * BATCH * SEQ, repeats=1)
        for k in range(5)) / 1e6
    plain = rate(lambda: iter(torch.utils.data.DataLoader(PlainWindows(str(path)),
                                                          batch_size=None, num_workers=2)),
                 batches)[0]
    ours = rate(lambda: forever(NgramLoader(ds, batch_size=BATCH, num_workers=2)), batches)[0]
    return one, wrapped, ours / plain, ours / 1e6


def tokenise_alone(source: Path, globs: list[str], tokenizer: Path) -> tuple[int, float]:
    """(tokens, seconds) of tokenising the files a build of ``source`` with ``globs`` reads,
    with the library's batching over ``encode_batch_fast`` alone: files read and decoded,
    ids made into arrays, nothing sorted or written."""
    from ngramds.corpus.discovery import expand_inputs
    from ngramds.corpus.tokenize import encoded_batches, load_tokenizer
    tok = load_tokenizer(tokenizer)
    files = [p for p, _ in expand_inputs([source], globs)]
    t0, n = time.perf_counter(), 0
    docs = (p.read_bytes().decode("utf-8", "replace") for p in files)
    for ids, _ in encoded_batches(docs, tok, 0, np.uint16):
        n += ids.size
    return n, time.perf_counter() - t0


def real_corpus(a) -> None:
    """Build the kernel tree at each size; print the scale table (docs/SCALE.md)."""
    source, out = Path(a.source), Path(a.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = Path(a.tokenizer) if a.tokenizer else out / "linux-bpe8192.json"
    if not tok.exists():
        kernel_tokenizer(source, tok)
    if a.rates_only:  # the files already built, and other files named: rates only
        import ngramds
        paths = [out / f"linux-{size}.ngds" for size in a.sizes.split(",")] + \
            [Path(x) for x in a.rates_only.split(",") if x != "built"]
        print("| file | tokens | targets M pos/s, 1 thread: kernels / NgramTargets | "
              "loader M pos/s, 2 workers (vs plain) |\n|---|---:|---:|---:|")
        for path in paths:
            one, wrapped, ratio, ours = targets_rate(path, a.batches)
            print(f"| {path.name} | {ngramds.open(path).num_tokens / 1e6:.1f}M | {one:.2f} / "
                  f"{wrapped:.2f} | {ours:.2f} ({ratio:.2f}x) |", flush=True)
        return
    results = {}
    for size in a.sizes.split(","):
        path = out / f"linux-{size}.ngds"
        inc = [x for g in SIZES[size] for x in ("--include", g)]
        cmd = [sys.executable, "-m", "ngramds.cli", "build", str(source), *inc, "--tokenizer",
               str(tok), "--eos-id", "0", "-o", str(path), "--memory-limit", a.limit,
               "--tmp-dir", str(out)]
        print("$", " ".join(cmd), flush=True)
        r = run(cmd)
        temp = re.findall(r"temporary disk ([0-9.]+) MiB \(([0-9.]+) bytes/token\)",
                          r["stderr"])
        info = subprocess.run([sys.executable, "-m", "ngramds.cli", "info", str(path)],
                              capture_output=True, text=True, check=True).stdout
        once = dict(re.findall(r"^\s+(\d+)\s+[\d,]+\s+([0-9.]+%)", info, re.M))
        row = {"wall": r["wall"], "rss": r["peak_sum"] / 2**30, "stages": stage_seconds(
            r["stderr"]), "temp": float(temp[0][1]) if temp else float("nan"), "once": once,
            **file_rows(path)}
        row["targets"], row["wrapped"], row["loader_ratio"], row["loader"] = targets_rate(
            path, a.batches)
        n, secs = tokenise_alone(source, SIZES[size], tok)
        row["tokenise_alone"] = n / secs / 1e6
        row["build_rate"] = row["tokens"] / r["wall"] / 1e6
        results[size] = row
        print(size, row, flush=True)
    print(f"\n| size | tokens | build wall s | stages (s) | peak RSS GiB | temporary B/token "
          f"| file B/token | sections B/token | device tables B/token | contexts seen once "
          f"(order: share) | targets M pos/s, 1 thread: kernels / NgramTargets | loader M pos/s, 2 workers (vs plain) |")
    print("|---|---:|---:|---|---:|---:|---:|---|---:|---|---:|---:|")
    rows = []
    for size, r in results.items():
        stages = ", ".join(f"{k} {v:.0f}" for k, v in r["stages"].items())
        secs = ", ".join(f"{k} {v:.2f}" for k, v in r["sections"].items())
        once = ", ".join(f"{k}: {v}" for k, v in r["once"].items())
        print(f"| {size} | {r['tokens'] / 1e6:.1f}M | {r['wall']:.0f} | {stages} | "
              f"{r['rss']:.2f} | {r['temp']:.1f} | {r['file']:.2f} | {secs} | "
              f"{r['device']:.2f} | {once} | {r['targets']:.2f} / {r['wrapped']:.2f} | "
              f"{r['loader']:.2f} "
              f"({r['loader_ratio']:.2f}x) |")
        rows.append(f"| {size} | {r['build_rate']:.2f} | {r['tokenise_alone']:.2f} | "
                    f"{r['build_rate'] / r['tokenise_alone']:.2f}x |")
    print("\n| size | text build M tokens/s (whole build) | tokenising alone M tokens/s "
          "(encode_batch_fast, same batching) | build / tokenising |")
    print("|---|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()

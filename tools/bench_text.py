"""Text builds against tokenising alone: throughput and peak memory (issue 15's targets).

Writes a JSONL corpus of this Python's standard library source (one file per record),
repeated ``--repeat`` times, then runs, each in its own process and measured there:

1. tokenising alone: the same JSONL read line by line and encoded with the tokenizer's
   batch API (``encode_batch``, and ``encode_batch_fast`` where the tokenizers version has it,
   on 1024 records at a time), ids kept as numpy arrays; the faster is the baseline;
2. ``ngramds build`` in memory;
3. ``ngramds build --memory-limit``.

It prints one table: tokens, seconds, tokens/s, the ratio of each build's throughput to
tokenising alone (same run) and each process's peak RSS (ru_maxrss).

    python tools/bench_text.py --tokenizer out/stdlib.tokenizer.json --repeat 6
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

TOKENIZE_ALONE = r"""
import json, sys, time
import numpy as np
from tokenizers import Tokenizer
tok = Tokenizer.from_file(sys.argv[2])
t0, total, batch = time.perf_counter(), 0, []
def flush():
    global total
    for e in getattr(tok, sys.argv[3])(batch, add_special_tokens=False):
        total += np.asarray(e.ids, np.uint16).size + 1
    batch.clear()
with open(sys.argv[1], "rb") as f:
    for line in f:
        batch.append(json.loads(line)["text"])
        if len(batch) == 1024:
            flush()
flush()
print(total, time.perf_counter() - t0)
"""

MEASURE = r"""
import resource, subprocess, sys, time
t0 = time.perf_counter()
r = subprocess.run(sys.argv[1:], capture_output=True, text=True)
dt = time.perf_counter() - t0
sys.stderr.write(r.stderr[-2000:])
print(r.returncode, dt, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.stdout)
"""


def write_corpus(path: Path, repeat: int) -> None:
    from ngramds.corpus.stdlib import _read, stdlib_files
    texts = [_read(p) for p in stdlib_files()]
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(repeat):
            for t in texts:
                f.write(json.dumps({"text": t}) + "\n")


def measure(cmd: list[str]) -> tuple[float, int, str]:
    """(wall seconds, peak RSS in bytes, stdout) of ``cmd`` run in a child process."""
    out = subprocess.run([sys.executable, "-c", MEASURE, *cmd], capture_output=True, text=True)
    code, dt, rss, *rest = out.stdout.split(maxsplit=3)
    if code != "0":
        raise SystemExit(f"{' '.join(cmd)} failed ({code}):\n{out.stderr}")
    return float(dt), int(rss) * 1024, rest[0] if rest else ""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tokenizer", required=True, help="tokenizer.json (e.g. the stdlib one)")
    p.add_argument("--repeat", type=int, default=6, help="copies of the stdlib in the corpus")
    p.add_argument("--memory-limit", default="512M")
    p.add_argument("--work", default="/tmp/ngramds-bench-text", help="scratch directory")
    a = p.parse_args()
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    corpus = work / f"stdlib-x{a.repeat}.jsonl"
    if not corpus.exists():
        print(f"writing {corpus} ...", file=sys.stderr)
        write_corpus(corpus, a.repeat)
    eos = ["--eos-id", "0"]
    build = [sys.executable, "-m", "ngramds.cli", "build", str(corpus), "--tokenizer",
             a.tokenizer, *eos, "-q"]
    rows = []
    from tokenizers import Tokenizer
    apis = ["encode_batch"] + (["encode_batch_fast"] if hasattr(Tokenizer, "encode_batch_fast")
                               else [])
    for api in apis:
        dt, rss, out = measure([sys.executable, "-c", TOKENIZE_ALONE, str(corpus), a.tokenizer,
                                api])
        tokens = int(out.split()[0])
        rows.append((f"tokenising alone ({api})", dt, rss))
    alone = min(dt for _, dt, _ in rows)
    dt, rss, _ = measure(build + ["-o", str(work / "mem.ngds")])
    rows.append(("ngramds build (in memory)", dt, rss))
    dt, rss, _ = measure(build + ["-o", str(work / "lim.ngds"), "--memory-limit", a.memory_limit,
                                  "--tmp-dir", str(work)])
    rows.append((f"ngramds build --memory-limit {a.memory_limit}", dt, rss))
    same = (work / "mem.ngds").read_bytes() == (work / "lim.ngds").read_bytes()
    print(f"corpus: {corpus.name}, {corpus.stat().st_size / 2**20:.0f} MiB, {tokens:,} tokens; "
          f"tokenizer {Path(a.tokenizer).name}; files identical: {same}")
    print(f"{'run':<40} {'seconds':>8} {'M tokens/s':>10} {'vs alone':>9} {'peak RSS':>10}")
    for name, dt, rss in rows:
        print(f"{name:<40} {dt:8.1f} {tokens / dt / 1e6:10.2f} {alone / dt:8.2f}x "
              f"{rss / 2**20:7.0f} MiB")


if __name__ == "__main__":
    main()

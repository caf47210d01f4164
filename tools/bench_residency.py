"""Loader and target throughput when only part of the file fits in the page cache (docs/SCALE.md,
"Files larger than RAM").

Every run is a fresh process. "in RAM": the file is read once first, so every page is
resident. A share below 1 (``--resident 0.5``): the process moves itself into a new cgroup v1
memory group (root; Linux) and, once its loader is warm, limits it to what it holds besides
the file plus that share of the file's size, so the page cache keeps at most that share (the
process's own memory counts against the limit, the kernel evicts file pages to stay under
it); then it runs ``--warmup`` batches (the cache fills with what the batches read, as in a
long run) and measures.
Prefetch: ``NgramDataset(..., prefetch_pages=...)`` off, "windows" or "tables".

Workloads (``--workloads``):
  loader   NgramLoader over NgramDataset(targets_on="loader"): targets computed in the loader
  device   NgramLoader over NgramDataset(targets_on="device") + NgramTargets(ds) (the compiled
           kernels on this CPU, 1 thread), the loop as a CPU training loop runs it
  windows  the device-mode loader alone (what a GPU run reads from the file: tokens and ids)

Each figure is M label positions/s, the median over ``--repeats`` runs (alternating the
variants) of the median of ``--windows`` windows of ``--batches`` batches after 3 warm-up
batches. Also shown: the share of the file resident at the end (mincore) and the major page
faults per batch.

    python tools/bench_residency.py /work/scratch/residency/scale.ngds --resident 1,0.5
"""
from __future__ import annotations

import argparse
import ctypes
import json
import mmap
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CGROUP = Path("/sys/fs/cgroup/memory")


def resident_bytes(path: str, ranges=None) -> int:
    """Bytes of ``path`` in the page cache (mincore over a fresh read-only map), of byte
    ``ranges`` [(offset, length)] when given."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        m = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    page = mmap.PAGESIZE
    vec = (ctypes.c_ubyte * (-(-size // page)))()
    libc = ctypes.CDLL(None, use_errno=True)
    view = np.frombuffer(m, np.uint8)
    if libc.mincore(ctypes.c_void_p(view.ctypes.data), ctypes.c_size_t(size), vec) != 0:
        raise OSError(ctypes.get_errno(), "mincore")
    del view
    present = np.frombuffer(vec, np.uint8) & 1
    m.close()
    if ranges is None:
        return min(int(present.sum()) * page, size)
    return sum(int(present[o // page:-(-(o + n) // page)].sum()) * page for o, n in ranges)


def table_ranges(f) -> list:
    """(offset, length) of the sections the targets read besides the windows' (tokens,
    position ids): the tables' offsets, totals, links and entries."""
    keep = ("entry_offsets", "totals", "lower_contexts", "next_ids", "counts")
    return [(s.offset, s.length) for name, s in f.sections.items() if name.endswith(keep)]


def evict(path: str) -> None:
    """Drop the file's clean pages from the page cache (pages mapped by a process stay)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def read_through(path: str) -> None:
    """Read the whole file once (into the page cache, as far as the limit lets it stay)."""
    with open(path, "rb", buffering=0) as fh:
        while fh.read(16 << 20):
            pass


def majflt() -> int:
    self_, kids = (resource.getrusage(w).ru_majflt for w in (resource.RUSAGE_SELF,
                                                            resource.RUSAGE_CHILDREN))
    return self_ + kids + sum(_worker_majflt())


def _worker_majflt():
    """Major faults of this process's live children (DataLoader workers)."""
    me = os.getpid()
    for task in Path("/proc").iterdir():
        if not task.name.isdigit():
            continue
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == me:  # ppid
            yield int(fields[9])  # majflt


def child(a) -> dict:
    group = None
    if a.share < 1:
        group = CGROUP / f"ngramds-residency-{os.getpid()}"
        group.mkdir()
        (group / "cgroup.procs").write_text(str(os.getpid()))
    try:
        return _measure(a, group)
    finally:
        if group is not None:
            (CGROUP / "cgroup.procs").write_text(str(os.getpid()))  # back to the root group
            _remove_group(group)


def _remove_group(group: Path) -> None:
    """Remove a benchmark's cgroup once its processes are gone (workers end after their
    parent), waiting up to 10 s."""
    for _ in range(100):
        try:
            group.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)


def _measure(a, group) -> dict:
    import torch
    from ngramds.torch import NgramDataset, NgramLoader, NgramTargets
    torch.set_num_threads(1)
    size = os.path.getsize(a.file)
    evict(a.file)
    if group is None:
        read_through(a.file)
    targets_on = "loader" if a.workload == "loader" else "device"
    pages = {"off": False, "windows": "windows", "tables": "tables"}[a.prefetch]
    ds = NgramDataset(a.file, a.seq_len, batch_size=a.batch_size, seed=a.seed,
                      targets_on=targets_on, prefetch_pages=pages)
    loader = NgramLoader(ds, a.batch_size, num_workers=a.workers)
    nt = NgramTargets(ds) if a.workload == "device" else None
    it = iter(loader)
    in_targets = [0.0]

    def step():
        batch = next(it)
        if nt is not None:
            t0 = time.perf_counter()
            nt(batch)
            in_targets[0] += time.perf_counter() - t0
        return batch
    for _ in range(3):
        step()
    limit = None
    if group is not None:
        usage = int((group / "memory.usage_in_bytes").read_text())
        limit = usage - resident_bytes(a.file) + int(a.share * size)
        (group / "memory.limit_in_bytes").write_text(str(limit))
        for _ in range(a.warmup):
            step()
    per_window, faults = [], []
    for _ in range(a.windows):
        in_targets[0], f0, t0 = 0.0, majflt(), time.perf_counter()
        for _ in range(a.batches):
            step()
        t = time.perf_counter() - t0
        per_window.append((t, in_targets[0]))
        faults.append(majflt() - f0)
    del it  # (the workers end)
    tables = table_ranges(ds.file)
    n = a.batches * a.batch_size * a.seq_len
    rates = sorted(n / t / 1e6 for t, _ in per_window)
    target_rates = sorted(n / s / 1e6 for _, s in per_window if s > 0)
    return {"rate": statistics.median(rates),
            "targets_rate": statistics.median(target_rates) if target_rates else None,
            "resident": resident_bytes(a.file) / size, "limit": limit,
            "tables_resident": resident_bytes(a.file, tables) / sum(n for _, n in tables),
            "majflt_per_batch": statistics.median(faults) / a.batches}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file")
    ap.add_argument("--resident", default="1,0.5", help="shares of the file resident (1: in RAM)")
    ap.add_argument("--workloads", default="loader,device,windows")
    ap.add_argument("--prefetch", default="off,windows,tables",
                    help="prefetch_pages variants: off, windows, tables")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--windows", type=int, default=3)
    ap.add_argument("--batches", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=20,
                    help="batches run under the limit before measuring")
    ap.add_argument("--seq-len", type=int, default=1024)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--child-timeout", type=float, default=240,
                    help="seconds a run may take (a slower one is left out)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--workload", help=argparse.SUPPRESS)
    ap.add_argument("--share", type=float, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print("RESULT " + json.dumps(child(a)), flush=True)
        return
    shares = [float(x) for x in a.resident.split(",")]
    if any(s < 1 for s in shares) and not (CGROUP / "cgroup.procs").exists():
        raise SystemExit("a share below 1 needs cgroup v1 memory control at "
                         f"{CGROUP} (and root)")
    results: dict = {}
    variants = [(w, s, p) for w in a.workloads.split(",") for s in shares
                for p in a.prefetch.split(",")]
    for r in range(a.repeats):
        for w, s, p in variants:
            cmd = [sys.executable, __file__, a.file, "--child", "--workload", w, "--share",
                   str(s), "--prefetch", p, "--windows", str(a.windows), "--batches",
                   str(a.batches), "--warmup", str(a.warmup), "--seq-len", str(a.seq_len),
                   "--batch-size", str(a.batch_size), "--workers", str(a.workers),
                   "--seed", str(a.seed + r)]
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
            try:
                stdout, stderr = proc.communicate(timeout=a.child_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                _remove_group(CGROUP / f"ngramds-residency-{proc.pid}")
                print(f"# {w} resident {s:g} prefetch {p} repeat {r}: over "
                      f"{a.child_timeout} s, left out", flush=True)
                continue
            line = [x for x in stdout.splitlines() if x.startswith("RESULT ")]
            if proc.returncode or not line:
                raise SystemExit(f"failed: {' '.join(cmd)}\n{stderr[-3000:]}")
            res = json.loads(line[0][7:])
            results.setdefault((w, s, p), []).append(res)
            print(f"# {w} resident {s:g} prefetch {p} repeat {r}: {res}", flush=True)
    size = os.path.getsize(a.file)
    print(f"\n{a.file}: {size / 2**30:.2f} GiB; seq_len {a.seq_len}, batch {a.batch_size}, "
          f"{a.workers} worker(s); median of {a.repeats} runs\n")
    print("| workload | file resident | prefetch | M positions/s | vs in RAM, no prefetch "
          "| targets alone M/s | resident at end: file / tables | major faults / batch |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for w, s, p in variants:
        rs = results.get((w, s, p))
        if not rs:
            print(f"| {w} | {s:.0%} | {p} | over {a.child_timeout:g} s | - | - | - | - |")
            continue
        med = statistics.median(x["rate"] for x in rs)
        base = results.get((w, 1.0, "off"))
        ref = statistics.median(x["rate"] for x in base) if base else None
        tr = [x["targets_rate"] for x in rs if x["targets_rate"]]
        print(f"| {w} | {'in RAM' if s >= 1 else f'{s:.0%}'} | {p} | {med:.2f} | "
              f"{f'{med / ref:.2f}x' if ref else '-'} | "
              f"{f'{statistics.median(tr):.2f}' if tr else '-'} | "
              f"{statistics.median(x['resident'] for x in rs):.0%} / "
              f"{statistics.median(x['tables_resident'] for x in rs):.0%} | "
              f"{statistics.median(x['majflt_per_batch'] for x in rs):.0f} |")


if __name__ == "__main__":
    main()

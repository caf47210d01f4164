"""Memory-bounded, sharded and distributed builds (docs/SCALE.md): the map, reduce and
assembly steps of :mod:`ngramds.external`, run here or on a Dask cluster."""
from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..corpus.stream import TokenStream
from ..corpus.types import check_doc_offsets, check_vocab
from ..errors import FileAccessError, InputError, os_errors_as
from ..file import format as fmt
from ..file.header import file_header, table_entry
from ..file.temporaries import remove_stale, temporary_dir
from ..file.writer import check_output_dir, write_atomic
from ..progress import Progress
from . import runs as X
from .keys import KeyLayout, key_bits
from .options import DEFAULT_MEMORY_LIMIT, check_orders, parse_size

ENGINES = ("local", "dask")


class RunSizes(NamedTuple):
    """Run and bucket sizes that override the ones derived from the memory limit (tests use
    tiny ones to cross every boundary; ``None`` keeps the derived size)."""

    positions: int | None = None  # positions per sorted run
    entries: int | None = None    # run entries per merged bucket


@contextmanager
def _spilling(parent: Path, name: str):
    """A locked temporary directory under ``parent`` for the runs of output ``name``, removed
    whatever happens (and stale ones of dead builds before); a full disk reported clearly."""
    if not parent.is_dir():
        raise FileAccessError(f"temporary directory {parent} does not exist; create it or "
                              "choose another --tmp-dir")
    remove_stale(parent, name)
    with os_errors_as(f"disk full while spilling sorted runs under {parent}; free space or "
                      "choose another --tmp-dir", f"cannot write temporary runs under {parent}"):
        with temporary_dir(parent, name) as root:
            yield root


class Executor:
    """Runs a step's independent tasks: in this process, or on a Dask cluster."""

    def __init__(self, engine: str = "local", scheduler: str | None = None,
                 workers: int | None = None, memory_limit: int | None = None):
        if engine not in ENGINES:
            raise InputError(f"engine must be one of {ENGINES}, got {engine!r}")
        self.client = self._cluster = None
        if engine == "dask":
            try:
                from dask.distributed import Client, LocalCluster
            except ImportError:
                raise InputError("--engine dask needs dask.distributed: "
                                 "pip install 'ngramds[dask]'") from None
            if scheduler:
                self.client = Client(scheduler)
            else:
                self._cluster = LocalCluster(n_workers=workers or 2, threads_per_worker=1,
                                             processes=True, dashboard_address=None,
                                             memory_limit=memory_limit or "auto")
                self.client = Client(self._cluster)

    def map(self, fn, *iterables) -> list:
        if self.client is None:
            return [fn(*args) for args in zip(*iterables)]
        futures = self.client.map(fn, *iterables, pure=False)
        return self.client.gather(futures)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        if self._cluster is not None:
            self._cluster.close()


def build_bounded(stream: TokenStream, output, *, orders, top_k: int | None = None,
                  vocab_size: int | None = None, memory_limit: int = DEFAULT_MEMORY_LIMIT,
                  tmp_dir=None, engine: str = "local", scheduler: str | None = None,
                  workers: int | None = None, partial: bool = False,
                  progress: bool = True, sizes: RunSizes = RunSizes()) -> Path:
    """Build ``stream`` into ``output`` with at most ``memory_limit`` bytes resident per process
    (plus the constant documented in docs/SCALE.md), spilling sorted runs under ``tmp_dir``.
    With ``partial`` the runs are kept in the directory ``output`` for `ngramds merge`."""
    t0 = time.perf_counter()
    orders = check_orders(orders)
    output = Path(output)
    check_output_dir(output)
    lo, hi = stream.min_max()
    given_vocab = vocab_size if vocab_size is not None else stream.vocab_size
    vocab_size = check_vocab(lo, hi, given_vocab)
    offsets = check_doc_offsets(stream.doc_offsets, stream.size)
    if partial and given_vocab is None:
        # keys as wide as the token dtype, so that every shard's partial merges with the others
        bits = 8 * fmt.token_dtype(vocab_size).itemsize
    else:
        bits = key_bits(vocab_size)
    work = X.work_budget(memory_limit, X.resident_bytes(), offsets.nbytes)
    token_dtype = fmt.token_dtype(vocab_size)
    if partial:
        if os.path.lexists(output):
            raise InputError(f"{output} exists; a partial result goes to a new directory")
        parent = output.parent
    else:
        parent = Path(tmp_dir) if tmp_dir is not None else output.parent
    bar = Progress(["sorting runs", "merging", "writing file"] if not partial
                   else ["sorting runs", "writing partial"], enabled=progress)
    with _spilling(parent, output.name) as root, Executor(engine, scheduler, workers,
                                                          memory_limit) as ex:
        bar.step("sorting runs")
        runs = {}
        for n in orders:
            layout = KeyLayout(n, bits)
            size = sizes.positions or X.run_positions(work, layout.num_words,
                                                      token_dtype.itemsize)
            starts = list(range(0, stream.size, size))
            paths = [str(root / f"order{n}" / f"run{i:06d}") for i in range(len(starts))]
            runs[n] = ex.map(X.map_run, [stream] * len(starts), [offsets] * len(starts),
                             starts, [min(stream.size, s + size) for s in starts],
                             [layout] * len(starts), paths)
        if partial:
            bar.step("writing partial")
            _write_partial(root, stream, offsets, runs, orders, top_k, given_vocab, bits, hi)
            os.replace(root, output)
            bar.finish(f"ngramds: partial result {output}: {stream.size:,} tokens, orders "
                       f"{','.join(map(str, orders))} in {time.perf_counter() - t0:.2f}s")
            return output
        return _merge_and_write(ex, stream, offsets, runs, orders, top_k, vocab_size, bits,
                                work, root, output, bar, t0, sizes)


def merge_partials(partials: list, output, *, vocab_size: int | None = None,
                   memory_limit: int | str = DEFAULT_MEMORY_LIMIT, tmp_dir=None,
                   engine: str = "local", scheduler: str | None = None,
                   workers: int | None = None, progress: bool = True,
                   sizes: RunSizes = RunSizes()) -> Path:
    """Merge partial results (``ngramds build --partial``) into one file, byte-identical to
    one build of their inputs in the order given."""
    t0 = time.perf_counter()
    memory_limit = parse_size(memory_limit)
    if not partials:
        raise InputError("no partial results given")
    output = Path(output)
    check_output_dir(output)
    infos = [X.load_partial(Path(p)) for p in partials]
    first = infos[0]
    for p, info in zip(partials, infos):
        for key in ("orders", "top_k", "bits"):
            if info[key] != first[key]:
                hint = " (build every shard with the same --vocab-size)" if key == "bits" else ""
                raise InputError(f"{p} has {key} {info[key]}, {partials[0]} has {first[key]}; "
                                 f"partials must agree{hint}")
    max_id = max(info["max_id"] for info in infos)
    given = {info["vocab_size"] for info in infos} - {None}
    if vocab_size is None and len(given) > 1:
        raise InputError(f"the partials were built with vocab sizes {sorted(given)}; give "
                         "--vocab-size")
    vocab_size = check_vocab(0, max_id, vocab_size if vocab_size is not None else
                             (given.pop() if given else None))
    if key_bits(vocab_size) > first["bits"]:
        raise InputError(f"vocab size {vocab_size} needs wider keys than the partials were "
                         "built with; rebuild them with --vocab-size")
    bases = np.cumsum([0] + [info["num_tokens"] for info in infos])
    offsets = np.concatenate([[0]] + [np.asarray(info["doc_offsets"][1:], np.int64) + b
                                      for info, b in zip(infos, bases)])
    tokenizers = {info["tokenizer"] for info in infos}
    stream = TokenStream([info["tokens"] for info in infos], offsets,
                         [s for info in infos for s in info["sources"]],
                         tokenizers.pop() if len(tokenizers) == 1 else None)
    runs = {n: [r for info in infos for r in info["runs"][n]] for n in first["orders"]}
    offsets = check_doc_offsets(offsets, stream.size)
    work = X.work_budget(memory_limit, X.resident_bytes(), offsets.nbytes)
    parent = Path(tmp_dir) if tmp_dir is not None else output.parent
    bar = Progress(["merging", "writing file"], enabled=progress)
    with _spilling(parent, output.name) as root, Executor(engine, scheduler, workers,
                                                          memory_limit) as ex:
        return _merge_and_write(ex, stream, offsets, runs, first["orders"], first["top_k"],
                                vocab_size, first["bits"], work, root, output, bar, t0, sizes)


def _merge_and_write(ex: Executor, stream, offsets, runs: dict, orders, top_k, vocab_size,
                     bits, work, root: Path, output: Path, bar, t0, sizes: RunSizes) -> Path:
    bar.step("merging")
    token_dtype = fmt.token_dtype(vocab_size)
    arrays = X.token_sections(stream, offsets, token_dtype)
    tables = []
    for n in orders:
        layout = KeyLayout(n, bits)
        cap = sizes.entries or X.bucket_entries(work, layout.num_words)
        plan = X.plan_buckets(runs[n], layout, cap)
        paths = [str(root / f"order{n}" / f"bucket{b:06d}") for b in range(len(plan))]
        buckets = ex.map(X.reduce_bucket, [runs[n]] * len(plan), plan, [layout] * len(plan),
                         [top_k] * len(plan), [token_dtype.str] * len(plan), paths)
        sections, C, E = X.table_sections(runs[n], buckets, n, stream.size, token_dtype)
        arrays.update(sections)
        tables.append(table_entry(n, top_k, C, E))
    temp_bytes = X.directory_bytes(root)
    header = file_header(vocab_size, stream.size, offsets.size - 1, tables, stream.sources,
                         stream.tokenizer)
    bar.step("writing file")
    size = write_atomic(output, header, arrays)
    dt = time.perf_counter() - t0
    bar.finish(f"ngramds: built {output}: {stream.size:,} tokens, orders "
               f"{','.join(map(str, orders))}, {size / 2**20:.1f} MiB in {dt:.2f}s "
               f"({stream.size / dt / 1e6:.2f}M tokens/s); temporary disk "
               f"{temp_bytes / 2**20:.1f} MiB ({temp_bytes / stream.size:.1f} bytes/token)")
    return output


def _write_partial(root: Path, stream, offsets, runs, orders, top_k, given_vocab, bits,
                   max_id) -> None:
    """Tokens, document offsets and runs of a shard, with a manifest written last."""
    root.mkdir(parents=True, exist_ok=True)
    dtype = fmt.token_dtype(given_vocab or max_id + 1)
    with open(root / "tokens.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": dtype.str, "fortran_order": False,
                                                 "shape": (stream.size,)})
        for _, t in stream.chunks(X.OUTPUT_CHUNK, dtype):
            f.write(memoryview(np.ascontiguousarray(t)).cast("B"))
    X.save_manifest(root, {
        "format": X.PARTIAL_FORMAT, "version": 1, "num_tokens": stream.size,
        "doc_offsets": offsets.tolist(), "orders": orders, "top_k": top_k, "bits": bits,
        "vocab_size": given_vocab, "max_id": int(max_id), "dtype": dtype.str,
        "sources": [str(s) for s in stream.sources], "tokenizer": stream.tokenizer,
        "runs": {str(n): [dict(X.run_record(r), path=Path(r.path).relative_to(root).as_posix())
                          for r in rs] for n, rs in runs.items()},
    })

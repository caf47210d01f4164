"""Memory-bounded, sharded and distributed builds (docs/SCALE.md): the map, reduce and
assembly steps of :mod:`ngramds.builder.runs`, run here or on a Dask cluster."""
from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..corpus.stream import M64, TokenStream, changed_input
from ..corpus.types import check_doc_offsets, check_prompt_lengths, check_vocab
from ..errors import FileAccessError, InputError, os_errors_as
from ..file import format as fmt
from ..file.header import file_header, table_entries
from ..file.paths import check_distinct, check_output_path
from ..file.temporaries import LOCK_NAME, remove_stale, temporary_dir
from ..file.writer import write_atomic
from ..progress import Progress
from . import runs
from .links import file_tables
from .keys import KeyLayout, key_bits
from .options import BuildOptions, build_options, min_counts
from .partials import load_partial, write_partial


class RunSizes(NamedTuple):
    """Run and bucket sizes that override the ones derived from the memory limit (``None``
    keeps the derived size)."""

    positions: int | None = None  # positions per sorted run
    entries: int | None = None    # run entries per merged bucket


_run_sizes = RunSizes()  # a test hook: tiny runs and buckets cross every boundary


@contextmanager
def spill_dir(parent: Path, name: str, what: str = "spilling sorted runs"):
    """A locked temporary directory under ``parent`` for the runs (or tokenised text) of
    output ``name``, removed whatever happens (and stale ones of dead builds before); a full
    disk reported clearly."""
    if not parent.is_dir():
        raise FileAccessError(f"temporary directory {parent} does not exist; create it or "
                              "choose another --tmp-dir")
    remove_stale(parent, name)
    with os_errors_as(f"disk full while {what} under {parent}; free space or choose another "
                      "--tmp-dir", f"cannot write temporaries under {parent}"):
        with temporary_dir(parent, name) as root:
            yield root


class Executor:
    """Runs a step's independent tasks: in this process, or on a Dask cluster."""

    def __init__(self, options: BuildOptions, memory_limit: int | None = None):
        """``options``' engine (checked), scheduler and workers; ``memory_limit``: the bytes
        of each local worker."""
        self.client = self._cluster = None
        scheduler = options.scheduler
        if options.engine == "dask":
            try:
                from dask.distributed import Client, LocalCluster
            except ImportError:
                raise InputError("--engine dask needs dask.distributed: "
                                 "pip install 'dask[distributed]'") from None
            if scheduler:
                try:
                    self.client = Client(scheduler)
                except (OSError, TimeoutError, ValueError) as exc:
                    raise FileAccessError(
                        f"cannot reach the Dask scheduler at {scheduler} "
                        f"({str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__}"
                        "); check --scheduler and that the scheduler runs") from None
            else:
                self._cluster = LocalCluster(n_workers=options.workers or 2, threads_per_worker=1,
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


def build_bounded(stream: TokenStream, output, options: BuildOptions) -> Path:
    """Build ``stream`` into ``output`` with at most ``options.memory_limit`` bytes resident
    per process (plus the constant documented in docs/SCALE.md; default: what the process
    holds plus 1 GiB), spilling sorted runs under ``options.tmp_dir``.
    With ``options.partial`` the runs are kept in the directory ``output`` for
    `ngramds merge`."""
    t0 = time.perf_counter()
    memory_limit = runs.memory_limit_or_default(options.memory_limit)
    orders, top_k, partial = options.orders, options.top_k, options.partial
    vocab_size = options.vocab_size
    output = check_output_path(output, directory=partial)
    lo, hi = stream.min_max()
    given_vocab = vocab_size if vocab_size is not None else stream.vocab_size
    vocab_size = check_vocab(lo, hi, given_vocab)
    offsets = check_doc_offsets(stream.doc_offsets, stream.size)
    if partial and given_vocab is None:
        # keys as wide as the token dtype, so that every shard's partial merges with the others
        bits = 8 * fmt.token_dtype(vocab_size).itemsize
    else:
        bits = key_bits(vocab_size)
    work = runs.work_budget(memory_limit, runs.resident_bytes(), offsets.nbytes)
    token_dtype = fmt.token_dtype(vocab_size)
    parent = options.tmp_dir or output.parent  # (a partial build's tmp_dir is None)
    bar = Progress(["sorting runs", "merging", "writing file"] if not partial
                   else ["sorting runs", "writing partial"], enabled=options.progress)
    with spill_dir(parent, output.name) as root, Executor(options, memory_limit) as ex:
        bar.step("sorting runs")
        order_runs = {}
        for n in orders:
            layout = KeyLayout(n, bits)
            size = _run_sizes.positions or runs.run_positions(work, layout.num_words,
                                                         token_dtype.itemsize)
            starts = list(range(0, stream.size, size))
            paths = [str(root / f"order{n}" / f"run{i:06d}") for i in range(len(starts))]
            order_runs[n] = ex.map(runs.map_run, [stream] * len(starts),
                                   [offsets] * len(starts), starts,
                                   [min(stream.size, s + size) for s in starts],
                                   [layout] * len(starts), paths)
            if sum(r.digest for r in order_runs[n]) & M64 != stream.checksum:
                raise changed_input(", ".join(stream.sources) or "tokens")
        if partial:
            bar.step("writing partial")
            write_partial(root, stream, offsets, order_runs, orders, top_k, given_vocab, bits,
                          hi)
            os.replace(root, output)
            (output / LOCK_NAME).unlink(missing_ok=True)  # still held until the build ends
            bar.finish(f"ngramds: partial result {output}: {stream.size:,} tokens, orders "
                       f"{','.join(map(str, orders))} in {time.perf_counter() - t0:.2f}s")
            return output
        return _merge_and_write(ex, stream, offsets, order_runs, orders, top_k, vocab_size,
                                bits, work, root, output, bar, t0, options.compact,
                                options.min_count)


def merge_partials(partials: list, output, *, vocab_size: int | None = None,
                   memory_limit: int | str | None = None, tmp_dir=None,
                   engine: str = "local", scheduler: str | None = None,
                   workers: int | None = None, progress: bool = True,
                   compact: bool = False, min_count: int | str | dict | None = None) -> Path:
    """Merge partial results (``ngramds build --partial``) into one file, byte-identical to
    one build of their inputs in the order given.

    Args:
        partials: the partial result directories, in corpus order.
        output: the file to write (atomically).
        vocab_size: the vocabulary size (default: from the shards).
        memory_limit: bytes (or "1G", ...) the merge may hold; default: a share of memory.
        tmp_dir: where to spill (default: beside the output).
        engine: "local" or "dask" (as :func:`ngramds.build`).
        scheduler: the Dask scheduler's address (``engine="dask"``).
        workers: Dask workers to start locally when no scheduler is given.
        progress: print a progress line.
        compact: leave out the per-position context ids (as :func:`ngramds.build`).
        min_count: prune contexts seen fewer times (as :func:`ngramds.build`).

    Returns:
        The path of the written file.

    Raises:
        InputError: bad options, or partials that do not fit together.
        FormatError: a partial is damaged or not a partial result.
        FileAccessError: a partial cannot be read or the output cannot be written.
    """
    options = build_options(vocab_size=vocab_size, memory_limit=memory_limit, tmp_dir=tmp_dir,
                            engine=engine, scheduler=scheduler, workers=workers,
                            progress=progress, compact=compact, merge=True,
                            min_count=min_count)
    return merge_from(partials, output, options)


def merge_from(partials: list, output, options: BuildOptions) -> Path:
    """:func:`merge_partials` with its options checked (their orders and top_k unused: the
    partials' own)."""
    t0 = time.perf_counter()
    memory_limit = runs.memory_limit_or_default(options.memory_limit)
    vocab_size = options.vocab_size
    if not partials:
        raise InputError("no partial results given")
    output = check_output_path(output)
    check_distinct([("output", output)], [("partial result", p) for p in partials])
    loaded = [load_partial(Path(p)) for p in partials]
    check_distinct([("output", output)], [("partial result file", f) for part in loaded
                                          for f in part.files()])
    infos = [part.manifest for part in loaded]
    first = infos[0]
    for p, info in zip(partials, infos):
        for key in ("orders", "top_k", "bits"):
            if getattr(info, key) != getattr(first, key):
                hint = " (build every shard with the same --vocab-size)" if key == "bits" else ""
                raise InputError(f"{p} has {key} {getattr(info, key)}, {partials[0]} has "
                                 f"{getattr(first, key)}; partials must agree{hint}")
    thresholds = min_counts(options.min_count, first.orders)  # (checked before the work)
    max_id = max(info.max_id for info in infos)
    given = {info.vocab_size for info in infos} - {None}
    if vocab_size is None and len(given) > 1:
        raise InputError(f"the partials were built with vocab sizes {sorted(given)}; give "
                         "--vocab-size")
    vocab_size = check_vocab(0, max_id, vocab_size if vocab_size is not None else
                             (given.pop() if given else None))
    if key_bits(vocab_size) > first.bits:
        raise InputError(f"vocab size {vocab_size} needs wider keys than the partials were "
                         "built with; rebuild them with --vocab-size")
    bases = np.cumsum([0] + [info.num_tokens for info in infos])
    offsets = np.concatenate([[0]] + [np.asarray(info.doc_offsets[1:], np.int64) + b
                                      for info, b in zip(infos, bases)])
    tokenizers = {info.tokenizer for info in infos}
    stream = TokenStream([part.tokens for part in loaded], offsets,
                         [s for info in infos for s in info.sources],
                         tokenizers.pop() if len(tokenizers) == 1 else None)
    stream.min_max()  # the checksum the write compares with
    order_runs = {n: [r for part in loaded for r in part.runs[n]] for n in first.orders}
    offsets = check_doc_offsets(offsets, stream.size)
    work = runs.work_budget(memory_limit, runs.resident_bytes(), offsets.nbytes)
    parent = options.tmp_dir or output.parent
    bar = Progress(["merging", "writing file"], enabled=options.progress)
    with spill_dir(parent, output.name) as root, Executor(options, memory_limit) as ex:
        return _merge_and_write(ex, stream, offsets, order_runs, first.orders, first.top_k,
                                vocab_size, first.bits, work, root, output, bar, t0,
                                options.compact, thresholds)


def _merge_and_write(ex: Executor, stream, offsets, order_runs: dict, orders, top_k,
                     vocab_size, bits, work, root: Path, output: Path, bar, t0,
                     compact: bool, min_count: dict | None = None) -> Path:
    bar.step("merging")
    token_dtype = fmt.token_dtype(vocab_size)
    arrays = runs.token_sections(stream, offsets, token_dtype)
    if getattr(stream, "prompt_lengths", None) is not None:  # as the in-memory build writes
        prompts = check_prompt_lengths(stream.prompt_lengths, offsets)
        arrays["prompt_lengths"] = prompts.astype(fmt.uint_dtype(int(prompts.max())))
    sections = {}
    for n in orders:
        layout = KeyLayout(n, bits)
        cap = _run_sizes.entries or runs.bucket_entries(work, layout.num_words)
        plan = runs.plan_buckets(order_runs[n], layout, cap)
        paths = [str(root / f"order{n}" / f"bucket{b:06d}") for b in range(len(plan))]
        buckets = ex.map(runs.reduce_bucket, [order_runs[n]] * len(plan), plan,
                         [layout] * len(plan), [top_k] * len(plan),
                         [token_dtype.str] * len(plan), paths)
        sections[n], C, E = runs.table_sections(order_runs[n], buckets, n, stream.size,
                                                token_dtype)
    arrays.update(file_tables(sections, spill=root, compact=compact, min_count=min_count))
    tables = table_entries(orders, top_k, arrays, min_count)
    temp_bytes = runs.directory_bytes(root)
    header = file_header(vocab_size, stream.size, offsets.size - 1, tables, stream.sources,
                         stream.tokenizer)
    bar.step("writing file")
    size = write_atomic(output, header, arrays)
    dt = time.perf_counter() - t0
    bar.finish(f"ngramds: built {output}: {stream.size:,} tokens, orders "
               f"{','.join(map(str, orders))}, {size / 2**20:.1f} MiB "
               f"{bar.timing(dt, stream.size)}; temporary disk "
               f"{temp_bytes / 2**20:.1f} MiB ({temp_bytes / stream.size:.1f} bytes/token)")
    return output

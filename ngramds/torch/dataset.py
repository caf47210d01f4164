"""NgramDataset: packed token windows with per-position soft targets, sharded and resumable."""
from __future__ import annotations

import os

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from ..errors import InputError
from ..file.reader import NgramFile, open_file
from ..shuffle import sample_order
from ..targets import TargetConfig, Targets, batch_shapes
from ..targets.kernels import ONEHOT


class NgramDataset(IterableDataset):
    """Samples of ``seq_len`` tokens with the corpus's next-token distributions as targets.

    Sample k covers tokens [k*L, k*L+L]: ``input_ids`` = tokens[k*L : k*L+L], ``labels`` =
    tokens[k*L+1 : k*L+L+1]; there are floor((N-1)/L) samples. Each item is a dict of
    ``input_ids`` and ``labels`` (int64 [L]), ``index`` (the sample number k) and, unless
    ``targets="onehot"``, ``target_ids`` (int64 [L, K]) and ``target_probs`` (float32 [L, K]).

    targets: "onehot" (no soft targets), "allnts" (full stored distribution; ``max_k`` keeps
    the first max_k entries, renormalised) or "coconts" (top ``top_r`` plus one residual slot,
    ``residual`` "tail" or "renorm"); see spec/TARGETS.md.

    Order: a permutation of the samples keyed by (seed, epoch) when ``shuffle``; call
    :meth:`set_epoch` every epoch. Ranks take every world_size-th sample of that order; with
    ``drop_last`` each rank gets floor(S / world_size) samples, else ranks differ by at most one
    and every sample is delivered exactly once. Within a rank, consecutive blocks of
    ``batch_size`` samples go to DataLoader workers round-robin, so the order a DataLoader
    delivers is the same for any number of workers when ``batch_size`` equals the loader's.

    Several orders (files store orders 2-4 by default): ``mixing="backoff"`` takes each
    position's target from the highest of ``orders`` whose context was seen at least
    ``min_count`` times; ``"witten-bell"`` and ``"fixed"`` (one weight per order in ``lambdas``)
    interpolate the orders, and the target has one block of K slots per order. ``orders``
    defaults to every stored order; with ``mixing="none"`` the highest of ``orders`` alone is
    used. The default ``"auto"`` is ``"witten-bell"`` when several orders take part, else
    ``"none"``.

    ``batched=True`` yields whole batches of ``batch_size`` (use ``DataLoader(batch_size=None)``):
    one compiled call per batch and no per-sample collation; the fastest mode.
    """

    def __init__(self, source: str | os.PathLike | NgramFile, seq_len: int, *,
                 targets: str = "coconts", top_r: int = 8, residual: str = "tail",
                 max_k: int | None = None, mixing: str = "auto", orders=None,
                 min_count: int = 2, lambdas=None, shuffle: bool = True, seed: int = 0,
                 rank: int | None = None, world_size: int | None = None,
                 drop_last: bool = True, batch_size: int = 1, batched: bool = False,
                 verify: bool = False):
        self.path = source.path if isinstance(source, NgramFile) else source
        self._file = source if isinstance(source, NgramFile) else open_file(source, verify)
        self._pid = os.getpid()
        f = self._file
        if not isinstance(seq_len, int) or seq_len < 1:
            raise InputError(f"seq_len must be a positive integer, got {seq_len!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.config = TargetConfig(targets=targets, top_r=top_r, residual=residual, max_k=max_k,
                                   mixing=mixing, orders=orders, min_count=min_count,
                                   lambdas=lambdas)
        self._targets = Targets(f, self.config)
        plan = self._targets.plan
        self.seq_len, self.targets, self.top_r, self.residual = seq_len, targets, top_r, residual
        self.mode, self.orders, self.mixing = plan.mode, list(plan.orders), plan.mixing
        self.max_k = plan.max_k
        self.num_samples = (f.num_tokens - 1) // seq_len
        if self.num_samples < 1:
            raise InputError(f"the corpus has {f.num_tokens} tokens, too few for one sample of "
                             f"seq_len {seq_len} (needs seq_len + 1)")
        self.shuffle, self.seed, self.drop_last = shuffle, seed, drop_last
        self.batch_size, self.batched = batch_size, batched
        self._rank, self._world = rank, world_size
        self.epoch = 0
        self._base = 0          # rank-local samples consumed before this pass
        self._resume = None     # per-worker position restored from a worker's state
        self._next_block = None
        self._in_block = 0

    # -- partition ----------------------------------------------------------------------
    def _rank_world(self) -> tuple[int, int]:
        rank, world = self._rank, self._world
        if rank is None or world is None:
            dist = torch.distributed
            if dist.is_available() and dist.is_initialized():
                rank = dist.get_rank() if rank is None else rank
                world = dist.get_world_size() if world is None else world
        rank, world = rank or 0, world or 1
        if not 0 <= rank < world:
            raise InputError(f"rank {rank} is outside world_size {world}")
        return rank, world

    def rank_samples(self) -> int:
        """Samples this rank delivers per epoch."""
        rank, world = self._rank_world()
        if self.drop_last:
            return self.num_samples // world
        return (self.num_samples - rank + world - 1) // world

    def __len__(self) -> int:
        n = self.rank_samples()
        return -(-n // self.batch_size) if self.batched else n

    # -- state --------------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Start epoch ``epoch`` (a new order when shuffling) from its beginning."""
        self.epoch, self._base, self._resume = int(epoch), 0, None
        self._next_block, self._in_block = None, 0

    def state_dict(self) -> dict:
        """Position in the epoch: ``consumed`` = this rank's samples delivered so far.

        Called in a DataLoader worker (as torchdata's StatefulDataLoader does), it also records
        that worker's own position, so restoring each worker's state continues it exactly.
        """
        info = get_worker_info()
        workers = info.num_workers if info else 1
        bs, block = self.batch_size, self._next_block
        if block is None:
            consumed = self._base
        elif self._in_block:
            consumed = self._base + block * bs + self._in_block
        else:
            consumed = self._base + (block - workers + 1) * bs
        return {"epoch": self.epoch, "consumed": min(consumed, self.rank_samples()),
                "base": self._base, "next_block": block, "in_block": self._in_block,
                "num_workers": workers, "batch_size": bs}

    def load_state_dict(self, state: dict) -> None:
        """Resume after ``state['consumed']`` samples of ``state['epoch']``, with any number
        of workers; a worker's own state (same worker count) resumes that worker exactly."""
        self.epoch = int(state["epoch"])
        self._base = int(state["consumed"])
        self._resume = state if state.get("next_block") is not None else None
        self._next_block, self._in_block = None, 0

    # -- iteration ----------------------------------------------------------------------
    def _open(self) -> Targets:
        if self._file is None or self._pid != os.getpid():
            self._file, self._pid = open_file(self.path), os.getpid()
            self._targets = Targets(self._file, self.config)
        return self._targets

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_file"] = state["_targets"] = None  # each process maps the file itself
        return state

    def _batch(self, targets: Targets, local: np.ndarray, rank: int, world: int) -> dict:
        samples = sample_order(local * world + rank, self.num_samples, self.seed, self.epoch,
                               self.shuffle)
        shapes = batch_shapes(targets.plan, local.size, self.seq_len)
        if self.batched and get_worker_info() is not None:
            tensors = _shared_tensors(shapes)
        else:
            tensors = [torch.from_numpy(np.empty(shape, dtype)) for shape, dtype in shapes]
        # in the training process, tiles of the batch run on every core
        threads = 1 if get_worker_info() is not None else os.cpu_count() or 1
        targets.compute(samples * self.seq_len, self.seq_len, self.seed, self.epoch,
                        [t.numpy() for t in tensors], threads)
        out = {"input_ids": tensors[0], "labels": tensors[1], "index": torch.from_numpy(samples)}
        if self.mode != ONEHOT:
            out["target_ids"], out["target_probs"] = tensors[2], tensors[3]
        return out

    def _start(self, wid: int, workers: int) -> tuple[int, int, int]:
        """(base, first block, samples to skip in it) for this worker."""
        r = self._resume
        self._resume = None
        if r is not None and r.get("num_workers") == workers and \
                r.get("batch_size") == self.batch_size:
            return int(r["base"]), int(r["next_block"]), int(r["in_block"])
        return self._base, wid, 0

    def __iter__(self):
        f = self._open()
        rank, world = self._rank_world()
        info = get_worker_info()
        wid, workers = (info.id, info.num_workers) if info else (0, 1)
        total, bs = self.rank_samples(), self.batch_size
        base, block, skip = self._start(wid, workers)
        self._base, self._next_block, self._in_block = base, None, 0
        while base + block * bs < total:
            lo = base + block * bs
            local = np.arange(lo, min(lo + bs, total), dtype=np.int64)
            batch = self._batch(f, local, rank, world)
            if self.batched:
                self._next_block, self._in_block = block + workers, 0
                yield batch
            else:
                for j in range(skip, local.size):
                    done = j + 1 == local.size
                    self._next_block = block + workers if done else block
                    self._in_block = 0 if done else j + 1
                    yield {k: v[j] for k, v in batch.items()}
            skip = 0
            block += workers
        self.set_epoch(self.epoch)  # a finished pass restarts the same epoch


def _shared_tensors(shapes: list) -> list[torch.Tensor]:
    """Tensors of ``shapes`` [(shape, numpy dtype)] in one shared-memory buffer: handing a
    batch from a worker to the training process then copies nothing and maps one segment."""
    sizes = [int(np.prod(shape)) * np.dtype(dtype).itemsize for shape, dtype in shapes]
    buffer = torch.empty(sum(sizes), dtype=torch.uint8).share_memory_()
    tensors, offset = [], 0
    for (shape, dtype), size in zip(shapes, sizes):
        torch_dtype = torch.from_numpy(np.empty(0, dtype)).dtype
        tensors.append(buffer[offset:offset + size].view(torch_dtype).view(shape))
        offset += size
    return tensors

"""Which share of the samples this process trains on, and where a pass over them stands.

A pass of an epoch runs over one global order of the samples (positions 0..S-1 of
:func:`ngramds.shuffle.sample_order`), from a ``start`` position (0, or a resumed one). Rank r
of W takes global positions start + r, start + r + W, ...: its local samples 0, 1, ... Local
samples form blocks of ``batch_size``; block b goes to DataLoader worker b mod ``workers``.
The functions here are that arithmetic, pure (no torch, no state), and its inverse for a
state: the global position after a number of delivered samples. :class:`SharedPasses` is the
state every copy of a dataset shares (epoch, resume position, pass counters).
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import torch

from ..errors import InputError
from ..targets.config import check_int, is_int

MAX_WORKERS = 64  # DataLoader workers per loader a dataset keeps pass counts for


class Partition(NamedTuple):
    rank: int
    world_size: int


class WorkerStart(NamedTuple):
    """Where a worker's share of a pass starts: the pass's global ``start``, the worker's first
    ``block`` (counted from the local sample ``base``) and the samples of that block it
    already delivered (``skip``)."""

    start: int
    base: int
    block: int
    skip: int


def resolve_partition(rank: int | None = None, world_size: int | None = None) -> Partition:
    """Rank and world size: as given, else from an initialised ``torch.distributed``, else from
    the ``RANK`` and ``WORLD_SIZE`` environment (torchrun sets them), else 0 of 1."""
    if rank is None or world_size is None:
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized():
            found = dist.get_rank(), dist.get_world_size()
        elif "WORLD_SIZE" in os.environ and "RANK" in os.environ:
            try:
                found = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
            except ValueError:
                raise InputError(f"RANK={os.environ['RANK']!r} / WORLD_SIZE="
                                 f"{os.environ['WORLD_SIZE']!r} are not integers") from None
        else:
            found = 0, 1
        rank = found[0] if rank is None else rank
        world_size = found[1] if world_size is None else world_size
    world_size = check_int("world_size", world_size, 1, 1 << 31)
    if not is_int(rank) or not 0 <= rank < world_size:
        raise InputError(f"rank {rank!r} is outside world_size {world_size}")
    return Partition(int(rank), world_size)


# -- the pass arithmetic (pure) -------------------------------------------------------------
def rank_samples(num_samples: int, world_size: int, drop_last: bool, start: int = 0) -> int:
    """Samples each rank delivers in a pass starting at global position ``start``: with
    ``drop_last`` floor((S - start) / W), else ceil (the last positions wrap around to the
    start of the order, as ``DistributedSampler`` pads)."""
    remaining = num_samples - start
    return remaining // world_size if drop_last else -(-remaining // world_size)


def worker_blocks(total: int, batch_size: int, workers: int,
                  first: WorkerStart) -> Iterator[tuple[int, int, int]]:
    """The blocks a worker builds of a rank's ``total`` local samples: (block, lo, hi), local
    samples [lo, hi), from ``first.block`` on, every ``workers``-th block."""
    block = first.block
    while first.base + block * batch_size < total:
        lo = first.base + block * batch_size
        yield block, lo, min(lo + batch_size, total)
        block += workers


def order_positions(start: int, rank: int, world_size: int, lo: int, hi: int) -> np.ndarray:
    """Global order positions (int64) of local samples [lo, hi) of ``rank`` in a pass starting
    at ``start``; positions >= S wrap around (mod S) when the pass pads."""
    return start + np.arange(lo, hi, dtype=np.int64) * world_size + rank


def consumed_position(start: int, delivered: int, world_size: int, num_samples: int) -> int:
    """The inverse, for a state: the global position a pass starting at ``start`` has reached
    when every rank delivered ``delivered`` samples (ranks consume in lockstep), at most S."""
    return min(start + delivered * world_size, num_samples)


def worker_delivered(base: int, batch_size: int, workers: int, next_block: int | None,
                     in_block: int) -> int:
    """Local samples a worker's position stands for: before its first sample ``base``; in a
    block (``in_block`` samples of ``next_block`` delivered) up to there; after a block, up to
    the end of the block before ``next_block`` of the rank's blocks."""
    if next_block is None:
        return base
    if in_block:
        return base + next_block * batch_size + in_block
    return base + (next_block - workers + 1) * batch_size


def pass_of(base_epoch: int, started: int, resume_epoch: int, resume_start: int
            ) -> tuple[int, int]:
    """(epoch, start) of a copy's ``started``-th pass since the epoch was ``base_epoch``: the
    next epoch each pass; the first starts at a loaded resume position of its epoch."""
    epoch = base_epoch + started - 1
    return epoch, resume_start if started == 1 and resume_epoch == epoch else 0


def resumed_worker(worker, workers: int, rank: int, batch_size: int,
                   saved_batch_size) -> WorkerStart | None:
    """Where a worker continues from its own saved position (torchdata's per-worker state,
    ``worker`` as ``NgramDataset.state_dict`` records it), when it was saved with the same
    worker count, rank and batch size and inside a pass; else None."""
    if isinstance(worker, dict) and worker.get("num_workers") == workers and \
            worker.get("rank") == rank and saved_batch_size == batch_size \
            and worker.get("next_block") is not None:
        return WorkerStart(int(worker["start"]), int(worker["base"]), int(worker["next_block"]),
                           int(worker["in_block"]))
    return None


# -- the shared state -----------------------------------------------------------------------
class SharedPasses:
    """What every copy of one dataset reads when it starts a pass (DataLoader workers of any
    start method, persistent or not): the epoch the counting starts from, a loaded resume
    position (epoch, start) and a pass counter per worker of each worker count. One int64
    tensor in shared memory, so it travels to workers by fork, spawn and forkserver."""

    _EPOCH, _RESUME_EPOCH, _RESUME_START, _COUNTERS = 0, 1, 2, 3

    def __init__(self, max_workers: int = MAX_WORKERS):
        self.max_workers = max_workers
        self._t = torch.zeros(self._COUNTERS + (max_workers + 1) * max_workers,
                              dtype=torch.int64).share_memory_()
        self._t[self._RESUME_EPOCH] = -1

    @property
    def epoch(self) -> int:
        """The epoch of a counter's first pass."""
        return int(self._t[self._EPOCH])

    @epoch.setter
    def epoch(self, epoch: int) -> None:
        self._t[self._EPOCH] = epoch

    @property
    def resume_epoch(self) -> int:
        """The epoch of the loaded resume position (-1: none)."""
        return int(self._t[self._RESUME_EPOCH])

    @property
    def resume(self) -> tuple[int, int]:
        """The loaded resume position (epoch, start); epoch -1: none."""
        return self.resume_epoch, int(self._t[self._RESUME_START])

    def resume_start(self, epoch: int) -> int:
        """Where a pass of ``epoch`` starts: the loaded position if it is of ``epoch``, else 0."""
        return int(self._t[self._RESUME_START]) if self.resume_epoch == epoch else 0

    def set_resume(self, epoch: int, start: int) -> None:
        """A pass of ``epoch`` starts at global position ``start``."""
        self._t[self._RESUME_EPOCH], self._t[self._RESUME_START] = epoch, start

    def drop_resume(self) -> None:
        """Passes start at 0."""
        self._t[self._RESUME_EPOCH] = -1

    def restart(self) -> None:
        """Every counter at 0: each copy's next pass is of :attr:`epoch`."""
        self._t[self._COUNTERS:] = 0

    def any_started(self) -> bool:
        """A copy has started a pass since the counters were last reset."""
        return bool(self._t[self._COUNTERS:].any())

    def counter(self, workers: int, worker: int) -> int:
        """The counter of ``worker`` of ``workers`` (0: a copy iterated in its own process)."""
        if workers > self.max_workers:
            raise InputError(f"num_workers={workers} is more than the {self.max_workers} "
                             "workers NgramDataset supports")
        return self._COUNTERS + workers * self.max_workers + worker

    def passes(self, counter: int) -> int:
        """Passes counted on ``counter``."""
        return int(self._t[counter])

    def start_pass(self, counter: int) -> int:
        """Count a pass on ``counter``; returns the passes counted, this one included."""
        self._t[counter] += 1
        return int(self._t[counter])

    def reset(self, counter: int) -> None:
        """``counter`` at 0 (a worker restoring its own state)."""
        self._t[counter] = 0

"""Which share of the samples this process trains on: rank and world size."""
from __future__ import annotations

import os
from typing import NamedTuple

import torch

from ..errors import InputError
from ..targets.config import check_int, is_int


class Partition(NamedTuple):
    rank: int
    world_size: int


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

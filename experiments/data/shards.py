"""Which part of the data each worker of a data-parallel trial takes (experiments.train.ranks)."""
from __future__ import annotations


def shard_bounds(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """[lo, hi): the contiguous part of ``n`` items that rank ``rank`` of ``world_size`` takes
    (the parts differ by at most one item and cover all ``n``)."""
    return n * rank // world_size, n * (rank + 1) // world_size

"""DistributedDataParallel data sharding: each rank's share of the batches.

Under ``torchrun`` (world size W) the Trainer wraps the loader's batch sampler so rank r
takes batches r, r + W, r + 2W, ... and every rank stops after the same number of batches
(all ranks step together; DESIGN.md "Engine").
"""
from __future__ import annotations

from typing import Iterable, Iterator

__all__ = ["ShardedBatchSampler"]


class ShardedBatchSampler:
    """Rank ``rank``'s share of a batch sampler: batches rank, rank + W, rank + 2W, ...

    Yields at most ``len(batch_sampler) // world_size`` batches (so every rank does the same
    number of steps; the last ``len % W`` batches are dropped), minus the first ``skip``
    of them (used to resume inside an epoch). ``set_epoch`` is forwarded.
    """

    def __init__(self, batch_sampler: Iterable, rank: int = 0, world_size: int = 1,
                 skip: int = 0):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
        self.batch_sampler, self.rank, self.world_size = batch_sampler, rank, world_size
        self.skip = skip

    def _quota(self) -> int | None:
        try:
            return len(self.batch_sampler) // self.world_size
        except TypeError:
            return None

    def __iter__(self) -> Iterator:
        quota, taken = self._quota(), 0
        for i, batch in enumerate(self.batch_sampler):
            if i % self.world_size != self.rank:
                continue
            if quota is not None and taken >= quota:
                break
            if taken >= self.skip:
                yield batch
            taken += 1

    def __len__(self) -> int:
        quota = self._quota()
        if quota is None:
            raise TypeError("the wrapped batch sampler has no len()")
        return max(0, quota - self.skip)

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.batch_sampler, "set_epoch"):
            self.batch_sampler.set_epoch(epoch)

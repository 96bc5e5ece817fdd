"""DistributedDataParallel data sharding and process-group helpers (``torchrun``).

Under ``torchrun`` (world size W) the Trainer wraps the loader's batch sampler so rank r
takes batches r, r + W, r + 2W, ... and every rank stops after the same number of batches
(all ranks step together; DESIGN.md "Engine"). Used alone that makes the global batch
W x the loader's batch. :class:`SplitBatchSampler` keeps the *paper's* global batch
instead: it cuts every batch of the paper's sampler into W consecutive per-rank slices, so
the Trainer's round robin hands rank r slice r of every global batch (global batch = per-rank
batch x W = the paper's batch; the same batches, epochs and lr milestones as one process).

:func:`init_from_env` starts the process group from torchrun's environment (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``; gloo on the CPU, NCCL on
CUDA); :func:`rank_world`, :func:`is_main` and :func:`barrier` are safe without one.
"""
from __future__ import annotations

import datetime
import os
from typing import Iterable, Iterator

__all__ = ["ShardedBatchSampler", "SplitBatchSampler", "init_from_env", "rank_world",
           "is_main", "barrier", "env_world_size"]


def env_world_size() -> int:
    """``WORLD_SIZE`` from the environment (1 when unset: not launched by torchrun).

    Raises:
        ValueError: ``WORLD_SIZE`` is not a positive integer (names the value).
    """
    raw = os.environ.get("WORLD_SIZE", "1")
    try:
        w = int(raw)
    except ValueError:
        w = 0
    if w < 1:
        raise ValueError(f"environment WORLD_SIZE={raw!r}: expected a positive integer "
                         "(torchrun sets it)")
    return w


def rank_world() -> tuple[int, int]:
    """``(rank, world_size)`` of the initialised process group, else from the environment
    (``RANK`` / ``WORLD_SIZE``; ``(0, 1)`` for a plain process)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return int(os.environ.get("RANK", "0")), env_world_size()


def is_main() -> bool:
    """True on rank 0 (and in a plain process): the rank that writes files."""
    return rank_world()[0] == 0


def init_from_env(device: str = "cpu", *, timeout_s: float = 4 * 3600) -> tuple[int, int]:
    """Initialise the default process group when launched by torchrun (``WORLD_SIZE`` > 1).

    Backend NCCL when ``device`` is CUDA (and the rank's GPU is ``LOCAL_RANK``), gloo
    otherwise. ``timeout_s`` bounds every collective, barriers included: the other ranks
    wait at a barrier while rank 0 evaluates, so it is generous (4 h). Nothing happens in
    a plain process or when a group already exists.

    Returns:
        ``(rank, world_size)``.

    Raises:
        RuntimeError: torch.distributed is not available in this build.
    """
    import torch
    import torch.distributed as dist

    world = env_world_size()
    if world == 1 or (dist.is_available() and dist.is_initialized()):
        return rank_world()
    if not dist.is_available():
        raise RuntimeError(f"WORLD_SIZE={world} but this torch build has no torch.distributed")
    cuda = str(device).startswith("cuda")
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="nccl" if cuda else "gloo",
                            timeout=datetime.timedelta(seconds=float(timeout_s)))
    return dist.get_rank(), dist.get_world_size()


def barrier() -> None:
    """Wait for every rank (no-op without a process group)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()


class SplitBatchSampler:
    """Every batch of ``batch_sampler`` cut into ``world_size`` consecutive slices.

    Yields, for each global batch ``b`` of B indices, ``b[0:B/W], b[B/W:2B/W], ...``:
    W batches per global batch, so ``len`` is W x ``len(batch_sampler)``. The Trainer's
    :class:`ShardedBatchSampler` (rank r takes positions r, r + W, ...) then gives rank r
    slice r of every global batch: the optimiser steps on exactly the batches of one
    process, each split over the ranks (DDP averages the gradients of equal slices, which
    for a per-image mean loss is the gradient of the global batch). With W = 1 it yields
    the batches unchanged.

    P x K batches (``num_instances`` = K): the slices keep whole identities only when
    B / W is a multiple of K (checked), since the P x K sampler emits each identity's K
    images consecutively. Per rank, batch-hard mining and BatchNorm statistics see B / W
    images (as torchreid and reid-strong-baseline under DDP without SyncBN).

    Args:
        batch_sampler: any iterable of index lists with ``len`` (a DataLoader's batch sampler).
        world_size: W >= 1.
        num_instances: K of a P x K sampler (None: not P x K).

    Raises:
        ValueError: W < 1; a batch whose size is not a multiple of W (or, P x K, of W x K),
            named with the sizes (raised when the batch is drawn for variable batch sizes).
    """

    def __init__(self, batch_sampler: Iterable, world_size: int,
                 num_instances: int | None = None):
        if int(world_size) < 1:
            raise ValueError(f"world_size must be >= 1, got {world_size!r}")
        self.batch_sampler, self.world_size = batch_sampler, int(world_size)
        self.num_instances = None if num_instances is None else int(num_instances)
        size = getattr(batch_sampler, "batch_size", None)
        if size is not None:
            self._check(int(size))

    @property
    def sampler(self):
        """The wrapped batch sampler's index sampler (the Trainer pins its epoch)."""
        return getattr(self.batch_sampler, "sampler", None)

    def per_rank(self, batch_size: int) -> int:
        """Images per rank for a global batch of ``batch_size`` (checked)."""
        self._check(batch_size)
        return batch_size // self.world_size

    def _check(self, size: int) -> None:
        w, k = self.world_size, self.num_instances
        if size % w:
            raise ValueError(f"global batch {size} is not divisible by the world size {w}: "
                             f"every rank must take the same number of images; choose "
                             f"--nproc_per_node (x nodes) dividing {size}")
        if k and (size // w) % k:
            raise ValueError(f"P x K batch {size} (K = {k}) split over {w} ranks gives "
                             f"{size // w} images per rank, not whole identities (a multiple "
                             f"of K = {k}); use a world size dividing P = {size // k}")

    def __iter__(self) -> Iterator[list]:
        w = self.world_size
        for batch in self.batch_sampler:
            batch = list(batch)
            self._check(len(batch))
            n = len(batch) // w
            for r in range(w):
                yield batch[r * n:(r + 1) * n]

    def __len__(self) -> int:
        return len(self.batch_sampler) * self.world_size

    def set_epoch(self, epoch: int) -> None:
        """Forwarded to the wrapped batch sampler when it has one (resume exactness)."""
        if hasattr(self.batch_sampler, "set_epoch"):
            self.batch_sampler.set_epoch(epoch)


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

"""Identity-aware batch sampling: P x K (Hermans et al.) and MaskReID's anchor P/N scheme.

Both samplers take the pid of every dataset index (``dataset.pids("train")`` or
``[r.pid for r in records]``) and draw from a NumPy generator seeded with
``(seed, epoch)``: the order of an epoch is a pure function of those two numbers.
``set_epoch(e)`` pins the epoch (as ``DistributedSampler``); each ``iter()`` uses the
current epoch and then advances it by one, so a loop that never calls ``set_epoch`` still
sees a new order every epoch, and one that does gets exactly epoch ``e``'s order.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

__all__ = ["RandomIdentitySampler", "AnchorRankingSampler"]


def _index_by_pid(pids: Sequence[int]) -> dict[int, list[int]]:
    by_pid: dict[int, list[int]] = defaultdict(list)
    for i, p in enumerate(pids):
        by_pid[int(p)].append(i)
    return dict(sorted(by_pid.items()))


class _EpochMixin:
    seed: int
    epoch: int

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch``'s order for the next ``iter()``."""
        self.epoch = int(epoch)

    def _rng(self) -> np.random.Generator:
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        return rng


class RandomIdentitySampler(_EpochMixin, Sampler[int]):
    """P x K sampler: each batch holds P = batch_size // K identities, K images each.

    Source: Hermans et al., "In Defense of the Triplet Loss for Person Re-Identification",
    2017 (PK batches); implementation follows torchreid ``data/sampler.py``
    ``RandomIdentitySampler`` (also reid-strong-baseline ``data/samplers/triplet_sampler.py``):
    per epoch each identity's indices are shuffled and cut into chunks of K (an identity
    with fewer than K images is drawn K times *with replacement*; a remainder shorter than
    K is dropped); then batches of P distinct identities are formed by drawing P identities
    among those with chunks left and taking one chunk of each.

    Difference from torchreid: torchreid's ``__len__`` is the number of chunked indices,
    but its loop stops once fewer than P identities have chunks left, so it yields fewer
    indices than it claims. Here, when fewer than P identities have chunks left, a fresh
    shuffled round of chunks is added for every identity and drawing goes on, so an epoch
    yields exactly ``len(self)`` = (total chunks // P) * P * K indices, a multiple of
    ``batch_size``, and every consecutive ``batch_size`` indices are P distinct identities
    x K images (use ``drop_last=False`` or ``True``: no partial batch exists).

    Args:
        pids: pid of every dataset index (any ints; length N).
        batch_size: P * K.
        num_instances: K, images per identity in a batch.
        seed: random seed.

    Yields:
        int dataset indices.

    Raises:
        ValueError: batch_size not a positive multiple of num_instances, or fewer than
            P identities.
    """

    def __init__(self, pids: Sequence[int], batch_size: int, num_instances: int,
                 seed: int = 0):
        if num_instances < 1 or batch_size < num_instances or batch_size % num_instances:
            raise ValueError(f"batch_size ({batch_size}) must be a positive multiple of "
                             f"num_instances ({num_instances})")
        self.batch_size = batch_size
        self.num_instances = num_instances
        self.num_pids_per_batch = batch_size // num_instances
        self.index_by_pid = _index_by_pid(pids)
        self.pid_list = list(self.index_by_pid)
        if len(self.pid_list) < self.num_pids_per_batch:
            raise ValueError(f"{len(self.pid_list)} identities cannot fill batches of "
                             f"P={self.num_pids_per_batch} distinct identities "
                             f"(batch_size {batch_size} / num_instances {num_instances})")
        k = num_instances
        self.num_chunks = sum(max(len(ix), k) // k for ix in self.index_by_pid.values())
        self.num_batches = self.num_chunks // self.num_pids_per_batch
        self.seed = int(seed)
        self.epoch = 0

    def _chunks(self, rng: np.random.Generator) -> dict[int, list[list[int]]]:
        k = self.num_instances
        out = {}
        for pid, idxs in self.index_by_pid.items():
            idxs = np.asarray(idxs)
            if len(idxs) < k:
                idxs = rng.choice(idxs, size=k, replace=True)
            else:
                idxs = rng.permutation(idxs)
            n = len(idxs) // k * k
            out[pid] = [idxs[i:i + k].tolist() for i in range(0, n, k)]
        return out

    def __iter__(self) -> Iterator[int]:
        rng = self._rng()
        p = self.num_pids_per_batch
        chunks = self._chunks(rng)
        final: list[int] = []
        for _ in range(self.num_batches):
            avail = [pid for pid in self.pid_list if chunks[pid]]
            if len(avail) < p:  # top up with a fresh round (see class docstring)
                for pid, more in self._chunks(rng).items():
                    chunks[pid].extend(more)
                avail = [pid for pid in self.pid_list if chunks[pid]]
            for j in rng.choice(len(avail), size=p, replace=False):
                final.extend(chunks[avail[j]].pop(0))
        return iter(final)

    def __len__(self) -> int:
        return self.num_batches * self.batch_size


class AnchorRankingSampler(_EpochMixin, Sampler[list[int]]):
    """MaskReID batch sampler: one anchor identity with P images + N other identities x 1.

    Source: MaskReID (Qi et al.), ICME version §3.2 (000) and long version §4.2 (003);
    recipes.md §1.3: "we randomly select one person, then P images with the same identity
    are chosen randomly. Afterwards, N negative samples are sampled from N person randomly
    (i.e., one person has only one image) ... P/N = 10/54. Especially, if the chosen person
    has only k < 10 images, P/N is set to k/(64-k)" (the k < P rule is in 000 only).

    Per batch: the anchor identity's P = min(num_pos, k) images (without replacement), then
    B - P other identities drawn without replacement, one random image each. The batch
    lists the P positives first. Anchor identities are those with at least 2 images (an
    identity with one image gives the ranking loss no positive pair); they are visited in
    a fresh random permutation per epoch (a new permutation starts when one runs out), so
    every such identity is an anchor once before any is an anchor twice.

    Args:
        pids: pid of every dataset index (length N).
        batch_size: B (64 in the paper).
        num_pos: P (10 in the paper); an identity with k < P images gives P = k.
        num_batches: batches per epoch; ``None`` = N // B (as many images as one pass).
        seed: random seed.

    Yields:
        list[int] of B dataset indices (use as ``DataLoader(batch_sampler=...)``).

    Raises:
        ValueError: num_pos < 2 or >= batch_size; no identity with 2 images; fewer than
            B - 1 other identities for the negatives.
    """

    def __init__(self, pids: Sequence[int], batch_size: int = 64, num_pos: int = 10,
                 num_batches: int | None = None, seed: int = 0):
        if not 2 <= num_pos < batch_size:
            raise ValueError(f"need 2 <= num_pos < batch_size, got num_pos={num_pos}, "
                             f"batch_size={batch_size}")
        self.batch_size, self.num_pos = batch_size, num_pos
        self.index_by_pid = _index_by_pid(pids)
        self.pid_list = list(self.index_by_pid)
        self.anchor_pids = [p for p, ix in self.index_by_pid.items() if len(ix) >= 2]
        if not self.anchor_pids:
            raise ValueError("no identity has 2 or more images: the ranking loss needs an "
                             "anchor identity with at least one positive pair")
        # The worst case is an anchor with P = num_pos images (fewest images -> most negatives).
        min_pos = min(min(len(self.index_by_pid[p]), num_pos) for p in self.anchor_pids)
        need = batch_size - min_pos
        if len(self.pid_list) - 1 < need:
            raise ValueError(f"{len(self.pid_list)} identities cannot fill a batch of "
                             f"{batch_size}: an anchor with {min_pos} images needs {need} other "
                             "identities, one image each; lower batch_size")
        n = len(pids)
        self.num_batches = max(1, n // batch_size) if num_batches is None else int(num_batches)
        if self.num_batches < 1:
            raise ValueError(f"num_batches must be >= 1, got {num_batches}")
        self.seed = int(seed)
        self.epoch = 0

    def __iter__(self) -> Iterator[list[int]]:
        rng = self._rng()
        order: list[int] = []
        batches = []
        pid_arr = np.asarray(self.pid_list)
        for _ in range(self.num_batches):
            if not order:
                order = [self.anchor_pids[i] for i in rng.permutation(len(self.anchor_pids))]
            anchor = order.pop()
            idxs = self.index_by_pid[anchor]
            p = min(self.num_pos, len(idxs))
            pos = rng.choice(idxs, size=p, replace=False).tolist()
            others = pid_arr[pid_arr != anchor]
            neg_pids = rng.choice(others, size=self.batch_size - p, replace=False)
            neg = [int(rng.choice(self.index_by_pid[int(q)])) for q in neg_pids]
            batches.append(pos + neg)
        return iter(batches)

    def __len__(self) -> int:
        return self.num_batches

"""Trainer callbacks: what is recorded and logged around each step, outside the step.

:class:`Callback` is the hook; :class:`HistoryCSV` writes the per-iteration history while a
run trains, :class:`TensorBoardLogger` writes event files when ``tensorboard`` is
installed. The batch distance statistics of the history (001 Fig. 1) are computed here
(:func:`distance_stats`); the Trainer evaluates them inside the step on the device, with
the loss terms, so one device-to-host copy per step carries all the numbers.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import torch
import torch.nn.functional as F

from .utils import atomic_path

if TYPE_CHECKING:  # pragma: no cover
    from .engine import Trainer

__all__ = ["Callback", "HistoryCSV", "TensorBoardLogger", "STAT_COLUMNS", "distance_stats"]

STAT_COLUMNS = ("d_intra", "d_inter_min", "d_inter_mean")


def _distance_stats_tensor(embeddings: torch.Tensor, pids: torch.Tensor) -> torch.Tensor:
    """[d_intra, d_inter_min, d_inter_mean] as a float32 tensor [3] on the input's device."""
    x = F.normalize(embeddings.detach().float().flatten(1), dim=1)              # [N, D]
    d = torch.cdist(x, x, compute_mode="donot_use_mm_for_euclid_dist")           # [N, N]
    pids = pids.detach().reshape(-1).to(d.device)
    same = pids[:, None] == pids[None, :]                                        # [N, N]
    pos = same & ~torch.eye(len(pids), dtype=torch.bool, device=d.device)
    neg = ~same
    nan = torch.tensor(float("nan"), device=d.device)
    intra = (d * pos).sum() / pos.sum()                         # 0/0 = NaN without pairs
    inter_mean = (d * neg).sum() / neg.sum()
    inter_min = torch.where(neg.any(), torch.where(neg, d, torch.inf).min(), nan)
    stats = torch.stack([intra, inter_min, inter_mean])
    return torch.where(pos.any(), stats, nan)


def distance_stats(embeddings: torch.Tensor, pids: torch.Tensor) -> dict[str, float]:
    """Intra/inter-class distances of one batch, as plotted in 001 Fig. 1.

    Args:
        embeddings: [N, D] features (any float dtype); L2-normalised here, so distances
            are Euclidean on the unit sphere, in [0, 2].
        pids: [N] identity labels.

    Returns:
        ``d_intra``: mean distance over same-identity pairs (i != j);
        ``d_inter_min``: the *batch* minimum distance between two different identities
        (001 §1: "we calculate the intra-class distance and all inter-class distance in
        the batch ... the minimum inter-class distance is only chosen in a batch");
        ``d_inter_mean``: mean distance over different-identity pairs.
        All three are NaN when the batch has no positive pair (001 uses only batches
        "that include positive pairs"); the inter values are NaN with one identity only.
    """
    if embeddings.ndim < 2 or len(embeddings) != len(pids.reshape(-1)):
        raise ValueError(f"distance_stats: embeddings must be [N, D] with N = len(pids); got "
                         f"{tuple(embeddings.shape)} and {tuple(pids.shape)}")
    vals = _distance_stats_tensor(embeddings, pids).tolist()
    return dict(zip(STAT_COLUMNS, vals))


class Callback:
    """Hook into :meth:`Trainer.fit`: override either method (both do nothing here).

    ``on_step(trainer, row)`` runs after every optimiser step with that step's history row
    (column -> float, the columns of :attr:`Trainer.history`); ``on_epoch_end(trainer)``
    after the epoch's checkpoint was written (also after a ``max_iters`` stop). Callbacks
    run on every rank: check ``trainer.rank`` to write files once.
    """

    def on_step(self, trainer: "Trainer", row: Mapping[str, float]) -> None:  # noqa: B027
        pass

    def on_epoch_end(self, trainer: "Trainer") -> None:  # noqa: B027
        pass


class HistoryCSV(Callback):
    """Write the whole :attr:`Trainer.history` to ``path`` (CSV, atomically) after each
    epoch, on rank 0: a long run's curves can be read while it trains."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def on_epoch_end(self, trainer: "Trainer") -> None:
        if trainer.rank == 0:
            with atomic_path(self.path) as tmp:
                trainer.history.to_csv(tmp, index=False)


class TensorBoardLogger(Callback):
    """TensorBoard event files (``torch.utils.tensorboard.SummaryWriter``) in ``log_dir``:
    every history column as a scalar ``train/<column>`` against the iteration, rank 0.

    Use :meth:`available` first: the writer needs the ``tensorboard`` package, which
    reidnb does not require.

    Raises:
        ImportError: ``tensorboard`` is not installed.
    """

    def __init__(self, log_dir: str | os.PathLike, every: int = 10):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(log_dir))
        self.every = max(1, int(every))

    @staticmethod
    def available() -> bool:
        """True when the ``tensorboard`` package can be imported."""
        import importlib.util

        return importlib.util.find_spec("tensorboard") is not None

    def on_step(self, trainer: "Trainer", row: Mapping[str, float]) -> None:
        it = int(row["iter"])
        if trainer.rank == 0 and it % self.every == 0:
            for k, v in row.items():
                if k not in ("iter", "epoch") and math.isfinite(float(v)):
                    self.writer.add_scalar(f"train/{k}", float(v), it)

    def on_epoch_end(self, trainer: "Trainer") -> None:
        if trainer.rank == 0:
            self.writer.flush()

"""Fig. 3 of 004: the stage4/5/6 attention maps of a trained SAL network and how much they agree.

The maps come from the SAL network itself (``model(x, return_attention=True)``, Eq. 1 at
stage4/5/6); the overlay figure is drawn by :func:`reidnb.viz.plot_attention_overlays`
and saved with :func:`reidnb.viz.save_figure`.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ...data.datasets import ImageDataset, Record, ReIDDataset
from ..common import test_transform

__all__ = ["sample_query_images", "attention_maps", "attention_agreement"]


def sample_query_images(cfg: Any, dataset: ReIDDataset, n: int = 4
                        ) -> tuple[torch.Tensor, list[Record]]:
    """``n`` query images of ``n`` different identities, spread evenly over the query list.

    Returns:
        images float32 [n, 3, cfg.height, cfg.width] (test transform: resized,
        ImageNet-normalised) and their records.

    Raises:
        ValueError: fewer than ``n`` query identities.
    """
    firsts: dict[int, int] = {}
    for i, r in enumerate(dataset.query):
        firsts.setdefault(r.pid, i)
    if len(firsts) < n:
        raise ValueError(f"sample_query_images: {dataset.name} at {dataset.root} has "
                         f"{len(firsts)} query identities, fewer than n={n}")
    idx = sorted(firsts.values())
    pick = [idx[int(j)] for j in np.linspace(0, len(idx) - 1, n).round()]
    data = ImageDataset([dataset.query[i] for i in pick], test_transform(cfg))
    images = torch.stack([data[i]["img"] for i in range(n)])
    return images, [dataset.query[i] for i in pick]


@torch.no_grad()
def attention_maps(model: nn.Module, images: torch.Tensor, device: Any = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stage4/5/6 attention maps (004 Eq. 1) of a SAL model, eval mode (mode restored).

    Args:
        model: a :class:`reidnb.papers.sal.model.SAL` with stage6.
        images: float [N, 3, H, W] (normalised as for the model).
        device: where to run (default: the model's device).

    Returns:
        (a4, a5, a6), each float32 numpy [N, h, w], every map of unit L2 norm (h x w =
        stage5's grid: H/8 x W/8 dilated, H/32 x W/32 otherwise).

    Raises:
        ValueError: the model has no stage6 (from ``SAL.forward``).
    """
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        maps = model(images.to(device), return_attention=True)
    finally:
        model.train(was_training)
    return tuple(a.float().cpu().numpy() for a in maps)  # type: ignore[return-value]


@torch.no_grad()
def attention_agreement(model: nn.Module, cfg: Any, dataset: ReIDDataset, *,
                        max_images: int = 256, batch_size: int = 64) -> dict[str, float]:
    """How much the stage attention maps agree, over the first ``max_images`` queries.

    Fig. 3's claim, measured: with SAC "deep and shallow layers focus on the same
    discriminative region". With unit-norm maps, cos(a_s, a6) = a_s . a6 and Eq. 2 equals
    ``4 - 2 cos(a5, a6) - 2 cos(a4, a6)``, the quantity SAC minimises. Attention maps
    are positive, so their cosine is high even for unrelated maps (a near-uniform map has
    cosine ~1 with any other); the Pearson correlation over the h x w positions (maps
    centred first) says whether the *peaks* coincide.

    Returns:
        means over the images: ``cos_s4_s6``, ``cos_s5_s6``, ``corr_s4_s6``,
        ``corr_s5_s6`` (in [-1, 1]) and ``sac`` (Eq. 2, in [0, 4]).

    Raises:
        ValueError: the dataset has no query images.
    """
    data = ImageDataset(dataset.query[:max_images], test_transform(cfg))
    sums = dict.fromkeys(("cos_s4_s6", "cos_s5_s6", "corr_s4_s6", "corr_s5_s6"), 0.0)
    n = 0
    for start in range(0, len(data), batch_size):
        x = torch.stack([data[i]["img"] for i in range(start, min(len(data), start + batch_size))])
        a4, a5, a6 = (torch.from_numpy(a).flatten(1).double()
                      for a in attention_maps(model, x, cfg.device))   # [B, h*w] each
        c4, c5, c6 = (torch.nn.functional.normalize(a - a.mean(1, keepdim=True), dim=1)
                      for a in (a4, a5, a6))
        sums["cos_s4_s6"] += float((a4 * a6).sum())
        sums["cos_s5_s6"] += float((a5 * a6).sum())
        sums["corr_s4_s6"] += float((c4 * c6).sum())
        sums["corr_s5_s6"] += float((c5 * c6).sum())
        n += len(x)
    if n == 0:
        raise ValueError(f"attention_agreement: {dataset.name} at {dataset.root} has no query "
                         "images")
    out = {k: v / n for k, v in sums.items()}
    out["sac"] = 4 - 2 * out["cos_s4_s6"] - 2 * out["cos_s5_s6"]
    return out

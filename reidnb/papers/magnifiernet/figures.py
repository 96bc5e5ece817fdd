"""Data of MagnifierNet's figures: image batches, activations (Fig. 2), mask-module parts,
the Fig. 3 top-1 panel, and where the notebook saves its figures.

The drawing itself is :mod:`reidnb.viz`'s (``plot_activation_overlays``,
``plot_part_predictions``, ``plot_top1_pairs``); this module turns runs into the arrays
those functions take.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ... import viz
from ...data.datasets import ImageDataset, Record
from ...data.transforms import build_transforms, denormalize
from ...evaluation.retrieval import pick_top1_queries, top1_matches

__all__ = ["figure_batch", "activation_maps", "predicted_parts", "top1_panel"]


def figure_batch(cfg: Any, records: Sequence[Any], n: int = 6, *, seed: int = 0
                 ) -> dict[str, Any]:
    """A few test-size images for the figures, with their part maps when the records have
    them.

    Picks ``n`` records spread over the list (deterministic for ``seed``; sorted, so with
    ``n = len(records)`` the given order is kept), resized to ``cfg.height x cfg.width``.

    Returns:
        dict ``x`` float32 [n, 3, H, W] (normalised), ``rgb`` uint8 [n, H, W, 3],
        ``parts`` int64 [n, H, W] or None, ``records``.

    Raises:
        ValueError: no records.
    """
    if not records:
        raise ValueError("figure_batch: no records to draw from")
    rng = np.random.default_rng(seed)
    pick = sorted(rng.choice(len(records), size=min(n, len(records)), replace=False).tolist())
    recs = [records[i] for i in pick]
    has_parts = all(getattr(r, "parts", None) for r in recs)
    data = ImageDataset(recs, build_transforms(cfg.height, cfg.width, is_train=False),
                        load_parts=has_parts)
    items = [data[i] for i in range(len(recs))]
    x = torch.stack([it["img"] for it in items])
    rgb = (denormalize(x).clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
    parts = torch.stack([it["parts"] for it in items]) if has_parts else None
    return {"x": x, "rgb": rgb, "parts": parts, "records": recs}


def activation_maps(models: Mapping[str, Any], x: torch.Tensor) -> dict[str, np.ndarray]:
    """Backbone activation per model (002 Fig. 2-style saliency) at the image size.

    :func:`reidnb.viz.activation_maps` (mean over channels of F^2 of
    ``model(x, return_featuremaps=True)``, eval mode), upsampled bilinearly to the image
    and scaled to [0, 1] per image (min-max), as ``viz.plot_activation_overlays`` takes.

    Args:
        models: name -> MagnifierNet (or a Run).
        x: float32 [N, 3, H, W].

    Returns:
        name -> float32 [N, H, W] in [0, 1].
    """
    out = {}
    for name, m in models.items():
        a = torch.from_numpy(viz.activation_maps(getattr(m, "model", m), x))
        a = F.interpolate(a[:, None], size=x.shape[-2:], mode="bilinear",
                          align_corners=False)[:, 0]
        lo = a.flatten(1).min(1).values.view(-1, 1, 1)
        hi = a.flatten(1).max(1).values.view(-1, 1, 1)
        out[name] = ((a - lo) / (hi - lo).clamp_min(1e-12)).numpy()
    return out


@torch.no_grad()
def predicted_parts(model: Any, x: torch.Tensor) -> np.ndarray:
    """The mask module's part map (002 §3.1): argmax of the 8 region masks at feature
    resolution, nearest-upsampled to the image: int64 [N, H, W] in 0..7.

    Raises:
        ValueError: the model has no mask module (``use_mask=False``).
    """
    net = getattr(model, "model", model)
    if not getattr(net, "use_mask", False):
        raise ValueError("predicted_parts: this MagnifierNet has no mask module (use_mask=False)")
    was = net.training
    net.eval()
    dev = next(net.parameters()).device
    f = net(x.to(dev), return_featuremaps=True)
    p = net.seg_head(f).argmax(1).float().cpu()
    net.train(was)
    return F.interpolate(p[:, None], size=x.shape[-2:], mode="nearest")[:, 0].long().numpy()


def top1_panel(cfg: Any, baseline: Any, improved: Any, n: int = 2) -> dict[str, Any]:
    """Data of a Fig. 3-style panel (``viz.plot_top1_pairs``): ``n`` queries where the
    baseline's top-1 is wrong and the improved model's right
    (:func:`reidnb.evaluation.retrieval.pick_top1_queries`), their top-1 gallery images
    under both models and each model's activation maps.

    Args:
        baseline, improved: evaluated Runs of the same dataset (same query/gallery order).

    Returns:
        dict ``query_rgb`` uint8 [n, H, W, 3], ``rows`` (per query two dicts: ``rgb``,
        ``correct``, ``dist``, ``query_map``, ``match_map``), ``queries`` (indices),
        ``names`` (run names).

    Raises:
        ValueError: a run without evaluation, or runs evaluated on different queries.
    """
    ra, rb = baseline.result, improved.result
    if ra is None or rb is None:
        raise ValueError("top1_panel: both runs must be evaluated")
    if list(ra.q_paths) != list(rb.q_paths) or list(ra.g_paths) != list(rb.g_paths):
        raise ValueError("top1_panel: the runs were evaluated on different query/gallery sets")
    queries = pick_top1_queries(ra, rb, n)
    idx_a, ok_a = top1_matches(ra)
    idx_b, ok_b = top1_matches(rb)

    def batch(paths):
        recs = [Record(path=p, pid=0, camid=0) for p in paths]
        return figure_batch(cfg, recs, n=len(recs))

    qb = batch([ra.q_paths[q] for q in queries])
    rows = []
    maps_q = activation_maps({"a": baseline, "b": improved}, qb["x"])
    for j, q in enumerate(queries):
        pair = []
        for key, run, res, idx, ok in (("a", baseline, ra, idx_a, ok_a),
                                       ("b", improved, rb, idx_b, ok_b)):
            g = int(idx[q])
            gb = batch([res.g_paths[g]])
            m = activation_maps({key: run}, gb["x"])[key][0]
            pair.append({"rgb": gb["rgb"][0], "correct": bool(ok[q]),
                         "dist": float(res.distmat[q, g]), "query_map": maps_q[key][j],
                         "match_map": m})
        rows.append(pair)
    return {"query_rgb": qb["rgb"], "rows": rows, "queries": queries,
            "names": (baseline.name, improved.name)}

"""Part maps for MagnifierNet's training images: the pseudo labels of its mask module (§4.1).

Only the training split needs part maps: at test time the mask head predicts the regions.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from ...data.parts import LABEL_DIR_SUFFIX, attach_masks, label_path

__all__ = ["prepare_parts"]


def prepare_parts(cfg: Any, dataset: Any, *, source: str | None = None,
                  verbose: bool = True) -> tuple[Any, dict[str, Any]]:
    """Give every training record a part map (MagnifierNet's pseudo labels, 002 §4.1).

    * synthetic set: its exact part maps (the records already carry them).
    * real data, ``source="labels"``: training images without a parsing label are
      dropped (Market-1501: 586 of 12,936 have none; the count is printed and stored in
      ``info["dropped"]``), the rest get their label-derived maps
      (:func:`reidnb.data.parts.attach_masks` with ``source="labels"``).
    * real data, ``source="auto"`` (or another ``attach_masks`` source): every training
      image is served, unlabelled ones by the light parser (trained if none is cached).

    Args:
        cfg: the notebook's config (``parts_source``, ``workers``, ``device``, ``seed``).
        dataset: a :class:`reidnb.data.datasets.ReIDDataset`.
        source: overrides ``cfg.parts_source`` (default ``"auto"``).

    Returns:
        ``(dataset, info)``: the dataset with part maps on its training records (identities
        relabelled 0..n-1 again if whole identities were dropped) and ``info`` (from
        ``attach_masks`` plus ``dropped``).

    Raises:
        ValueError / RuntimeError: from ``attach_masks`` when a source cannot serve images;
            ValueError when no training image has a parsing label (``source="labels"``).
    """
    src = source or getattr(cfg, "parts_source", None) or "auto"
    if dataset.kind == "synthetic" and all(r.parts for r in dataset.train):
        if verbose:
            print(f"part maps: the synthetic set's exact maps for all {len(dataset.train)} "
                  "training images")
        return dataset, {"source": "synthetic", "dropped": 0}
    dropped = 0
    if src == "labels":
        listed: dict[Path, set[str]] = {}
        keep = []
        for r in dataset.train:
            lab = label_path(r.path, Path(dataset.root))
            if lab.parent not in listed:
                listed[lab.parent] = set(os.listdir(lab.parent)) if lab.parent.is_dir() else set()
            if lab.name in listed[lab.parent]:
                keep.append(r)
        dropped = len(dataset.train) - len(keep)
        if not keep:
            raise ValueError(f"prepare_parts: no training image of {dataset.name} has a parsing "
                             f"label under {dataset.root}/<split>{LABEL_DIR_SUFFIX}/; use "
                             "source='auto'")
        if dropped:
            dataset = _drop_and_relabel(dataset, keep)
            if verbose:
                print(f"part maps: dropped {dropped} training images without a parsing label "
                      f"(REDUCED; {len(keep)} images of {dataset.num_train_pids} identities kept)")
    out, info = attach_masks(dataset, source=src, splits=("train",),
                             workers=int(cfg.workers or 0), device=cfg.device,
                             seed=cfg.seed, parser_max_iters=cfg.max_iters or None,
                             verbose=verbose)
    no_parts = [r for r in out.train if not r.parts]
    if no_parts:   # torchvision found no person (mask only): no part labels to train with
        out = _drop_and_relabel(out, [r for r in out.train if r.parts])
        if verbose:
            print(f"part maps: dropped {len(no_parts)} training images without a part map "
                  f"(REDUCED; {len(out.train)} images of {out.num_train_pids} identities kept)")
    info["dropped"] = dropped + len(no_parts)
    return out, info


def _drop_and_relabel(dataset, keep: list):
    """``dataset`` with only the training records ``keep``, pids relabelled 0..P-1.

    Raises:
        ValueError: nothing left to train on.
    """
    if not keep:
        raise ValueError(f"prepare_parts: no training image of {dataset.name} has a part map; "
                         "give a parsing-label folder or a labelled set under data_root")
    pids = sorted({r.pid for r in keep})
    relabel = {p: i for i, p in enumerate(pids)}
    keep = [dataclasses.replace(r, pid=relabel[r.pid]) for r in keep]
    return dataclasses.replace(dataset, train=keep, num_train_pids=len(pids))

"""Semantic-segmentation scores of part maps: confusion matrix, IoU / mIoU, foreground IoU.

Standard definitions (as in torchvision's ``references/segmentation/utils.py``
``ConfusionMatrix`` and the PASCAL VOC / LIP benchmarks): per class ``IoU = TP / (TP + FP
+ FN)`` from one confusion matrix accumulated over all pixels; mIoU is the mean over the
classes present in the ground truth or the prediction. Used to score the part parser
against held-out part labels (label 0 = background, 1.. = body parts).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch

__all__ = ["confusion_matrix", "segmentation_scores", "foreground_iou"]


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, k: int) -> torch.Tensor:
    """Pixel confusion matrix of predicted against ground-truth labels.

    Args:
        pred: integer label map of any shape, e.g. [N, H, W], values in ``0..k-1``.
        target: the ground-truth labels, same number of elements (compared flattened),
            values in ``0..k-1``.
        k: number of classes (8 for reidnb's part maps).

    Returns:
        int64 CPU tensor [k, k]: ``conf[t, p]`` = number of pixels of true class t
        predicted as p (rows = ground truth, columns = prediction).

    Raises:
        ValueError: ``pred`` and ``target`` of different sizes, or a label outside
            ``0..k-1`` (either would be counted in the wrong cell).
    """
    if pred.numel() != target.numel():
        raise ValueError(f"confusion_matrix: pred {tuple(pred.shape)} and target "
                         f"{tuple(target.shape)} must have the same number of pixels")
    for name, t in (("pred", pred), ("target", target)):
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= k):
            raise ValueError(f"confusion_matrix: {name} has labels in [{int(t.min())}, "
                             f"{int(t.max())}], expected 0..{k - 1}")
    idx = target.reshape(-1).to(torch.int64) * k + pred.reshape(-1).to(torch.int64)
    return torch.bincount(idx, minlength=k * k).reshape(k, k).cpu()


def segmentation_scores(conf: torch.Tensor,
                        names: Sequence[str] | None = None) -> dict[str, Any]:
    """mIoU, per-class IoU, pixel accuracy and foreground IoU of a confusion matrix.

    Args:
        conf: [k, k] confusion matrix (rows = ground truth, columns = prediction), any
            numeric dtype, e.g. :func:`confusion_matrix` summed over batches.
        names: k class names for the keys of ``per_class_iou`` (e.g.
            ``reidnb.data.parts.PART_NAMES``); default the class indices 0..k-1.

    Returns:
        dict with ``miou`` (float, mean IoU over the classes present in the ground truth
        or the prediction; NaN if none), ``per_class_iou`` (name -> IoU in [0, 1], NaN for
        a class absent from both), ``pixel_acc`` (trace / total; NaN for an empty matrix)
        and ``fg_iou`` (:func:`foreground_iou`).

    Raises:
        ValueError: ``names`` does not have k entries.
    """
    conf = conf.to(torch.float64)
    k = conf.shape[0]
    keys = list(range(k)) if names is None else list(names)
    if len(keys) != k:
        raise ValueError(f"segmentation_scores: {len(keys)} names for a {k} x {k} matrix")
    tp = conf.diag()
    union = conf.sum(0) + conf.sum(1) - tp
    iou = [float(t / u) if u > 0 else math.nan for t, u in zip(tp, union)]
    valid = [v for v in iou if not math.isnan(v)]
    return {"miou": float(np.mean(valid)) if valid else math.nan,
            "per_class_iou": dict(zip(keys, iou)),
            "pixel_acc": float(tp.sum() / conf.sum()) if conf.sum() > 0 else math.nan,
            "fg_iou": foreground_iou(conf)}


def foreground_iou(conf: torch.Tensor) -> float:
    """IoU of the foreground mask (label > 0) implied by a confusion matrix.

    Foreground = every class but 0: ``TP = conf[1:, 1:].sum()`` (a foreground pixel
    predicted as any foreground class), ``union`` = pixels foreground in the ground truth
    or in the prediction.

    Args:
        conf: [k, k] confusion matrix (rows = ground truth, columns = prediction).

    Returns:
        float in [0, 1]; NaN when neither ground truth nor prediction has foreground.
    """
    conf = conf.to(torch.float64)
    tp = conf[1:, 1:].sum()
    union = conf[1:, :].sum() + conf[:, 1:].sum() - tp
    return float(tp / union) if union > 0 else math.nan

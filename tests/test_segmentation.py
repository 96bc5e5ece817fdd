"""Tests of reidnb.evaluation.segmentation: confusion matrix, IoU / mIoU, foreground IoU."""
from __future__ import annotations

import math

import pytest
import torch

from reidnb.evaluation.segmentation import (confusion_matrix, foreground_iou,
                                            segmentation_scores)

NAMES = ("background", "head", "upper arm", "lower arm", "chest", "upper leg", "lower leg",
         "foot")


def test_confusion_matrix_hand_worked():
    # pixels (truth -> prediction): 0->0, 0->1, 1->1, 1->1, 7->0
    target = torch.tensor([[0, 0, 1], [1, 7, 7]])
    pred = torch.tensor([[0, 1, 1], [1, 0, 7]], dtype=torch.uint8)
    conf = confusion_matrix(pred, target, 8)
    assert conf.dtype == torch.int64 and conf.shape == (8, 8)
    assert conf[0, 0] == 1 and conf[0, 1] == 1 and conf[1, 1] == 2
    assert conf[7, 0] == 1 and conf[7, 7] == 1 and int(conf.sum()) == 6
    with pytest.raises(ValueError, match="labels"):
        confusion_matrix(torch.tensor([8]), torch.tensor([0]), 8)
    with pytest.raises(ValueError, match="labels"):
        confusion_matrix(torch.tensor([0]), torch.tensor([-1]), 8)
    with pytest.raises(ValueError, match="same number"):
        confusion_matrix(torch.tensor([0, 1]), torch.tensor([0]), 8)


def test_scores_hand_worked():
    # truth [0, 0, 1, 1], prediction [0, 1, 1, 1]:
    # background: TP 1, union 2 -> 1/2; head: TP 2, union 3 -> 2/3; others absent (NaN).
    # foreground (label > 0): truth {2, 3}, prediction {1, 2, 3} -> IoU 2/3.
    conf = confusion_matrix(torch.tensor([0, 1, 1, 1]), torch.tensor([0, 0, 1, 1]), 8)
    s = segmentation_scores(conf, NAMES)
    assert s["per_class_iou"]["background"] == pytest.approx(1 / 2)
    assert s["per_class_iou"]["head"] == pytest.approx(2 / 3)
    assert math.isnan(s["per_class_iou"]["foot"])          # absent: not in the mean
    assert s["miou"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert s["pixel_acc"] == pytest.approx(3 / 4)
    assert s["fg_iou"] == pytest.approx(2 / 3)
    # default keys: class indices
    assert segmentation_scores(conf)["per_class_iou"][1] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="names"):
        segmentation_scores(conf, NAMES[:3])


def test_foreground_iou_and_empty_cases():
    conf = confusion_matrix(torch.tensor([0, 1, 1, 1]), torch.tensor([0, 0, 1, 1]), 8)
    assert foreground_iou(conf) == 2 / 3                    # int64 input, float64 maths
    # all background in truth and prediction: no foreground -> NaN
    bg = confusion_matrix(torch.zeros(5, dtype=torch.long), torch.zeros(5, dtype=torch.long), 3)
    assert math.isnan(foreground_iou(bg))
    s = segmentation_scores(bg)
    assert s["miou"] == 1.0 and s["pixel_acc"] == 1.0
    empty = segmentation_scores(torch.zeros(3, 3))
    assert math.isnan(empty["miou"]) and math.isnan(empty["pixel_acc"])

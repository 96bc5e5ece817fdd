"""Shared building blocks of the re-ID heads: BoT initialisations, the BNNeck, a GAP base.

From reid-strong-baseline (BoT: Luo et al. 2019, "Bag of Tricks and a Strong Baseline for
Deep Person Re-identification", ``modeling/baseline.py``):

* :func:`weights_init_kaiming` / :func:`weights_init_classifier`: BoT's initialisers;
* :class:`BNNeck`: BatchNorm1d with its bias frozen at 0 -> bias-free classifier (the
  triplet loss acts on the feature before the BN, cross-entropy on the classifier of the
  feature after it; test feature after the BN, ``neck_feat="after"``);
* :class:`GAPHead`: base of the heads that global-average-pool a
  :class:`~reidnb.models.backbones.ResNetBackbone` map (``backbone``, ``pretrained_loaded``).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .backbones import ResNetBackbone

__all__ = ["weights_init_kaiming", "weights_init_classifier", "BNNeck", "GAPHead",
           "check_num_classes"]


def weights_init_kaiming(m: nn.Module) -> None:
    """BoT ``weights_init_kaiming``: Linear Kaiming-normal (fan_out), Conv Kaiming-normal
    (fan_in), BatchNorm weight 1 / bias 0; biases 0. Use as ``module.apply(...)``."""
    if isinstance(m, nn.Linear):
        nn.init.kaiming_normal_(m.weight, a=0, mode="fan_out")
        if m.bias is not None:
            nn.init.constant_(m.bias, 0.0)
    elif isinstance(m, nn.Conv2d):
        nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
        if m.bias is not None:
            nn.init.constant_(m.bias, 0.0)
    elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and m.affine:
        nn.init.constant_(m.weight, 1.0)
        nn.init.constant_(m.bias, 0.0)


def weights_init_classifier(m: nn.Module) -> None:
    """BoT ``weights_init_classifier``: Linear weight ~ N(0, 0.001^2), bias 0."""
    if isinstance(m, nn.Linear):
        nn.init.normal_(m.weight, std=0.001)
        if m.bias is not None:
            nn.init.constant_(m.bias, 0.0)


def check_num_classes(num_classes: int) -> int:
    """``num_classes`` when it is a positive int.

    Raises:
        ValueError: anything else (the message shows the value).
    """
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    return num_classes


class BNNeck(nn.Module):
    """BoT BNNeck head: BatchNorm1d (bias frozen at 0) -> bias-free classifier.

    Args:
        dim: feature dimension D.
        num_classes: training identities.

    forward(feat float [N, D]) -> (bn_feat float [N, D], logits float [N, num_classes]).

    Parameters: ``bn`` (``weight`` [D] trainable, ``bias`` [D] with
    ``requires_grad=False``, running statistics) and ``classifier.weight``
    [num_classes, D]. Init as reid-strong-baseline: BN weight 1 / bias 0, classifier
    N(0, 0.001^2).
    """

    def __init__(self, dim: int, num_classes: int):
        super().__init__()
        self.bn = nn.BatchNorm1d(dim)
        self.bn.bias.requires_grad_(False)
        self.classifier = nn.Linear(dim, num_classes, bias=False)
        self.bn.apply(weights_init_kaiming)
        self.classifier.apply(weights_init_classifier)

    def forward(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        bn_feat = self.bn(feat)
        return bn_feat, self.classifier(bn_feat)


class GAPHead(nn.Module):
    """Shared part of the global-average-pooling heads: ``self.backbone`` (a
    :class:`ResNetBackbone`, set by the subclass) and its pooled feature."""

    backbone: ResNetBackbone

    @property
    def pretrained_loaded(self) -> bool:
        """True when ImageNet weights were loaded into the backbone."""
        return self.backbone.pretrained_loaded

    def _backbone_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer-4 map [N, C, h, w] and its global average [N, C] of images [N, 3, H, W]."""
        f = self.backbone(x)
        return f, F.adaptive_avg_pool2d(f, 1).flatten(1)

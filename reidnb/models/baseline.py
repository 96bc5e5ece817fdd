"""Global-feature baselines: the batch-contrastive network (001) and the BNNeck head (BoT).

* ``"bcloss"`` — 001 §2.1, Fig. 2: ResNet conv1 ... pool5 (global average pooling),
  dropout on pool5 (rate 0.9, §3.2), FC to the identities. The B-C and centre losses
  act on the pool5 feature *before* dropout (``embeddings``; the losses L2-normalise it),
  the softmax on the FC of the dropout output (recipes.md §2.1, §2.5).
* ``"bnneck"`` — Luo et al. 2019, "Bag of Tricks and a Strong Baseline for Deep Person
  Re-identification" (reid-strong-baseline ``modeling/baseline.py``): GAP ->
  ``embeddings`` (triplet) -> BatchNorm1d with a frozen bias -> bias-free classifier
  (cross-entropy); test feature after the BN (``neck_feat="after"``). MagnifierNet's
  global branch (recipes.md §3.1).
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import register_model
from .backbones import ResNetBackbone

__all__ = ["BCLossNet", "BNNeckNet", "weights_init_kaiming", "weights_init_classifier"]


def weights_init_kaiming(m: nn.Module) -> None:
    """BoT ``weights_init_kaiming``: Linear Kaiming-normal (fan_out), Conv Kaiming-normal
    (fan_in), BatchNorm weight 1 / bias 0; biases 0."""
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


def _check_num_classes(num_classes: int) -> int:
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    return num_classes


class _GAPHead(nn.Module):
    """Shared part of the global-average-pooling heads: ``self.backbone`` (a
    :class:`ResNetBackbone`) and its pooled feature."""

    backbone: ResNetBackbone

    @property
    def pretrained_loaded(self) -> bool:
        """True when ImageNet weights were loaded into the backbone."""
        return self.backbone.pretrained_loaded

    def _backbone_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer-4 map [N, C, h, w] and its global average [N, C] of images [N, 3, H, W]."""
        f = self.backbone(x)
        return f, F.adaptive_avg_pool2d(f, 1).flatten(1)


@register_model("bcloss")
class BCLossNet(_GAPHead):
    """Batch-contrastive-loss network (001 §2.1): ResNet -> pool5 -> dropout -> FC.

    Args:
        num_classes: training identities (751 Market-1501, 702 DukeMTMC-reID).
        backbone: ResNet name (``resnet50`` in the paper; ``resnet18`` for quick runs).
        pretrained: ``False`` | ``True`` | ``"auto"`` (see ``ResNetBackbone``).
        last_stride: stride of the last ResNet stage (2: the paper's plain ResNet-50).
        dropout: dropout probability on pool5 (0.9, 001 §3.2).

    forward(x [N, 3, H, W] float32, return_featuremaps=False):
        * ``return_featuremaps=True``: layer4 map [N, C, h, w] (C = 2048 for ResNet-50).
        * training: dict ``logits`` [N, num_classes] (FC of dropout(pool5)),
          ``embeddings`` [N, C] (pool5 before dropout, not normalised),
          ``featuremaps`` [N, C, h, w].
        * eval: pool5 feature [N, C] (the paper's 2048-d test feature, §2.4).

    The FC is initialised N(0, 0.001^2), bias 0 (BoT's classifier init; 001's Caffe
    initialisation is not given).
    """

    def __init__(self, num_classes: int, backbone: str = "resnet50",
                 pretrained: bool | Literal["auto"] = False, last_stride: int = 2,
                 dropout: float = 0.9):
        super().__init__()
        self.num_classes = _check_num_classes(num_classes)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.backbone = ResNetBackbone(backbone, pretrained=pretrained, last_stride=last_stride)
        self.feat_dim = self.backbone.out_channels
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(self.feat_dim, num_classes)
        self.classifier.apply(weights_init_classifier)

    def forward(self, x: torch.Tensor, return_featuremaps: bool = False):
        f, pool5 = self._backbone_features(x)             # [N, C, h, w], [N, C]
        if return_featuremaps:
            return f
        if not self.training:
            return pool5
        logits = self.classifier(self.dropout(pool5))     # [N, num_classes]
        return {"logits": logits, "embeddings": pool5, "featuremaps": f}


@register_model("bnneck")
class BNNeckNet(_GAPHead):
    """BoT head (Luo et al. 2019): GAP -> BNNeck (frozen bias) -> bias-free classifier.

    Args:
        num_classes: training identities.
        backbone: ResNet name.
        pretrained: ``False`` | ``True`` | ``"auto"`` (see ``ResNetBackbone``).
        last_stride: 1 as BoT (a 256x128 input gives a 16x8 map with ResNet-50).
        neck_feat: test feature, ``"after"`` the BN (BoT default) or ``"before"``.

    forward(x [N, 3, H, W] float32, return_featuremaps=False):
        * ``return_featuremaps=True``: layer4 map [N, C, h, w].
        * training: dict ``logits`` [N, num_classes] (classifier of the post-BN feature),
          ``embeddings`` [N, C] (pre-BN GAP feature, for the triplet loss),
          ``bn_embeddings`` [N, C] (post-BN), ``featuremaps`` [N, C, h, w].
        * eval: [N, C] post-BN (``"after"``) or pre-BN (``"before"``) feature.

    Init as reid-strong-baseline: BN weight 1, bias 0 with ``requires_grad=False``;
    classifier N(0, 0.001^2) without bias. The backbone keeps torchvision's init (or
    ImageNet weights).
    """

    def __init__(self, num_classes: int, backbone: str = "resnet50",
                 pretrained: bool | Literal["auto"] = False, last_stride: int = 1,
                 neck_feat: Literal["after", "before"] = "after"):
        super().__init__()
        self.num_classes = _check_num_classes(num_classes)
        if neck_feat not in ("after", "before"):
            raise ValueError(f"neck_feat must be 'after' or 'before', got {neck_feat!r}")
        self.neck_feat = neck_feat
        self.backbone = ResNetBackbone(backbone, pretrained=pretrained, last_stride=last_stride)
        self.feat_dim = self.backbone.out_channels
        self.bottleneck = nn.BatchNorm1d(self.feat_dim)
        self.bottleneck.bias.requires_grad_(False)        # BoT: no shift
        self.classifier = nn.Linear(self.feat_dim, num_classes, bias=False)
        self.bottleneck.apply(weights_init_kaiming)
        self.classifier.apply(weights_init_classifier)

    def forward(self, x: torch.Tensor, return_featuremaps: bool = False):
        f, global_feat = self._backbone_features(x)       # [N, C, h, w], [N, C]
        if return_featuremaps:
            return f
        feat = self.bottleneck(global_feat)               # [N, C]
        if not self.training:
            return feat if self.neck_feat == "after" else global_feat
        return {"logits": self.classifier(feat), "embeddings": global_feat,
                "bn_embeddings": feat, "featuremaps": f}

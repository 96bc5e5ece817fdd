"""The batch-contrastive-loss network of paper 001, registered as model ``"bcloss"``.

001 §2.1, Fig. 2: ResNet conv1 ... pool5 (global average pooling), dropout on pool5 (rate
0.9, §3.2), FC to the identities. The B-C and centre losses act on the pool5 feature
*before* dropout (``embeddings``; the losses L2-normalise it), the softmax on the FC of the
dropout output (recipes.md §2.1, §2.5).
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn as nn

from ...models import register_model
from ...models.backbones import ResNetBackbone
from ...models.layers import GAPHead, check_num_classes, weights_init_classifier

__all__ = ["BCLossNet"]


@register_model("bcloss")
class BCLossNet(GAPHead):
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

    Raises:
        ValueError: ``num_classes`` not a positive int, ``dropout`` outside [0, 1).
    """

    def __init__(self, num_classes: int, backbone: str = "resnet50",
                 pretrained: bool | Literal["auto"] = False, last_stride: int = 2,
                 dropout: float = 0.9):
        super().__init__()
        self.num_classes = check_num_classes(num_classes)
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

"""The SAL network (004 §3.1): dilated ResNet + stage6, multi-level features, Eq. 1 attention.

Registered as ``build_model("sal", ...)`` when :mod:`reidnb.papers.sal` is imported.

Source: "Self-attention learning for person re-identification" (paper 004 in
``shared/papers``), §3.1 (architecture, Fig. 1), Fig. 2 (dilated convolution), §3.2 Eq. 1
(attention maps) and Eq. 2 (self-attention constraint, computed in ``reidnb.losses``).
Choices the paper leaves open follow ``shared/papers/recipes.md`` §4.6 (marked [default]).

Architecture (ResNet stage names as in the paper: stage4 = torchvision ``layer3``,
stage5 = ``layer4``)::

    x [N,3,H,W]
      -> stem, layer1 (1/4), layer2 (1/8)            ResNet stages 1-3
      -> stage4 = layer3  f4 [N,C4,H/8,W/8]          dilation 2, stride removed (DIL)
      -> stage5 = layer4  f5 [N,C5,H/8,W/8]          dilation 4, stride removed (DIL)
      -> stage6           f6 [N,C6,H/8,W/8]          new, C6 = C5/2, dilation 2, random init
      -> cat(f4, f5, f6)  [N,C4+C5+C6,H/8,W/8]       multi-level feature map
      -> global average pool -> FC -> BatchNorm1d    feature [N,feat_dim]   (no ReLU)
      -> Linear classifier                           logits  [N,num_classes]

Channel counts: ResNet-50 C4/C5/C6 = 1024/2048/1024 (concatenation 4096, as 004 §3.1);
ResNet-18/34 256/512/256 (concatenation 1024).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from reidnb.losses import attention_map  # 004 Eq. 1, pinned in DESIGN.md "Losses"
from reidnb.models import register_model
from reidnb.models.backbones import ResNetBackbone

__all__ = ["SAL"]


def _block_out_channels(block: nn.Module) -> int:
    """Output channels of a torchvision ``BasicBlock`` / ``Bottleneck``."""
    if isinstance(block, Bottleneck):
        return block.bn3.num_features
    if isinstance(block, BasicBlock):
        return block.bn2.num_features
    raise TypeError(f"SAL: expected a torchvision BasicBlock or Bottleneck in the backbone, "
                    f"got {type(block).__name__}")


def _set_dilation(conv: nn.Conv2d, dilation: int) -> None:
    """Turn a 3x3, stride-1 convolution into a dilated one with 'same' padding."""
    conv.dilation = (dilation, dilation)
    conv.padding = (dilation, dilation)


def make_stage6(stage5: nn.Sequential, dilation: int) -> nn.Sequential:
    """Stage6 of 004 §3.1: stage5's structure with half the channels, randomly initialised.

    Args:
        stage5: the backbone's ``layer4`` (blocks of one torchvision type).
        dilation: dilation of every 3x3 convolution of stage6 ([default] 2 for the dilated
            network, lower than stage5's 4 to reduce gridding; 1 for the non-dilated ablation).

    Returns:
        ``nn.Sequential`` of ``len(stage5)`` blocks, stride 1 (the spatial size of stage5 is
        kept), input channels = stage5's output C5, output channels C5 / 2. ResNet-50: 3
        bottlenecks of width 256, 2048 -> 1024 ([default] recipes.md §4.6); ResNet-18: 2 basic
        blocks of width 256, 512 -> 256. The first block has a 1x1 conv + BN projection
        shortcut because the channel count changes.
    """
    block_type = type(stage5[0])
    in_ch = _block_out_channels(stage5[-1])
    out_ch = in_ch // 2
    planes = out_ch // block_type.expansion
    blocks = []
    for i in range(len(stage5)):
        inplanes = in_ch if i == 0 else out_ch
        down = None
        if i == 0:
            down = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch))
        # torchvision's BasicBlock refuses dilation > 1 in its constructor: build it plain and
        # dilate its 3x3 convolutions afterwards (same result as Bottleneck(dilation=d)).
        block = block_type(inplanes, planes, stride=1, downsample=down)
        convs = [block.conv2] if block_type is Bottleneck else [block.conv1, block.conv2]
        for conv in convs:
            _set_dilation(conv, dilation)
        blocks.append(block)
    stage6 = nn.Sequential(*blocks)
    for m in stage6.modules():  # torchvision ResNet's own initialisation
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return stage6


@register_model("sal")
class SAL(nn.Module):
    """Self-attention learning network (004 §3.1, Fig. 1) with the switches of Table 1.

    Args:
        num_classes: number of training identities (classifier outputs).
        backbone: torchvision ResNet name for ``ResNetBackbone`` ("resnet50" in the paper,
            "resnet18" in the quick profile; basic and bottleneck blocks both work).
        pretrained: ImageNet weights for stages 1-5 (``ResNetBackbone`` semantics: False, True
            or "auto"); stage6, FC and classifier are always randomly initialised.
        feat_dim: size of the final feature (1024 in 004 §3.1).
        dilation: True (DIL, paper): stage4/stage5 strides removed, PyTorch dilation 2 and 4
            ("doubled after every removed down-sampling"; Fig. 2 counts an ordinary 3x3 as
            dilation 0), ``ResNetBackbone(dilation=(2, 4))``, every map from
            stage3 on at 1/8 of the input. False: ordinary ResNet strides, stage4 at 1/16,
            stage5 and stage6 at 1/32 (stage6 never down-samples).
        multi_level: True (Multi, paper): the feature map is the channel concatenation of the
            last-conv outputs of stage4, stage5 and stage6 (stage6 only if built). False: the
            feature map is the output of the last stage (stage6 if built, else stage5).
        stage6: build stage6 (``make_stage6``). None (default) = same as ``multi_level``, so
            ``multi_level=False`` gives the plain (dilated) ResNet of Table 1 settings 1-3.
        single_level: with ``multi_level=False``, which stage's output is the feature map:
            ``"last"`` (default: stage6 if built, else stage5) or ``"stage5"`` (stage6, if
            built, then only supplies att_s6 for the SAC loss: the Table 4 networks, so every
            row classifies from the same stage5 head; ``reidnb.papers.sal.cifar``).

    Table 1 settings (reconstruction in shared/papers/README.md): 1-3 / 3(T):
    ``dilation=False, multi_level=False``; 4 (components unknown, best guess):
    ``dilation=False, multi_level=True``; 5-8: ``dilation=True, multi_level=True`` (the
    defaults). SAC and the losses are chosen in the trainer, not here.

    Non-dilated multi-level case: stage4 (1/16) is larger than stage5/6 (1/32). For the
    concatenation f4 is area-averaged (``adaptive_avg_pool2d``) to stage5's size, which leaves
    the globally pooled feature exactly equal to pooling f4 on its own grid; for the attention,
    a4 (Eq. 1 at stage4's own resolution) is area-averaged to stage5's grid and
    L2-normalised again (= area-resizing the unnormalised map, then normalising).

    Forward ``forward(x, return_featuremaps=False, return_attention=False)`` with
    x float [N,3,H,W]:
        * training mode: dict with
          ``logits`` [N,num_classes];
          ``embeddings`` [N,feat_dim] = BN(FC(GAP(feature map))), not L2-normalised, the
          feature for softmax and quadruplet/triplet losses ([default] recipes.md §4.6);
          ``featuremaps`` [N,C,h,w] = the multi-level concatenation (multi_level=True) or the
          last stage's output (multi_level=False);
          ``attention`` = (a4, a5, a6), each float32 [N,h*w] with unit-L2 rows (004 Eq. 1 on
          the last-conv outputs of stage4/5/6, all on stage5's grid), or None when stage6 is
          not built: Eq. 2 anchors both of its terms at att_s6, so the self-attention
          constraint is undefined there and a SAC loss term must not be used.
        * eval mode: the test feature, float [N,feat_dim] (the same BN output; evaluation
          L2-normalises it).
        * ``return_featuremaps=True`` (either mode): the ``featuremaps`` tensor above.
        * ``return_attention=True`` (either mode): (a4, a5, a6), each float32 [N,h,w], the
          ``attention`` maps unflattened (for 004 Fig. 3 overlays); ValueError without stage6.

    Attributes: ``stage_channels`` (C4, C5, C6 or None), ``feat_channels`` (C of the feature
    map, e.g. 4096 for ResNet-50), ``out_stride`` (8 dilated, 32 otherwise: stride of stage5).
    """

    def __init__(self, num_classes: int, backbone: str = "resnet50",
                 pretrained: bool | str = False, feat_dim: int = 1024, dilation: bool = True,
                 multi_level: bool = True, stage6: bool | None = None,
                 single_level: str = "last") -> None:
        super().__init__()
        if num_classes < 1 or feat_dim < 1:
            raise ValueError(f"SAL: num_classes and feat_dim must be >= 1, "
                             f"got {num_classes} and {feat_dim}")
        if single_level not in ("last", "stage5"):
            raise ValueError(f"SAL: single_level must be 'last' or 'stage5', got {single_level!r}")
        self.single_level = single_level
        self.dilation = bool(dilation)
        self.multi_level = bool(multi_level)
        self.use_stage6 = self.multi_level if stage6 is None else bool(stage6)
        self.backbone = ResNetBackbone(backbone, pretrained=pretrained,
                                       dilation=(2, 4) if self.dilation else (1, 1))
        self.out_stride = self.backbone.stride  # 8 dilated, 32 otherwise
        c4 = _block_out_channels(self.backbone.layer3[-1])
        c5 = _block_out_channels(self.backbone.layer4[-1])
        self.stage6 = make_stage6(self.backbone.layer4, 2 if self.dilation else 1) \
            if self.use_stage6 else None
        c6 = c5 // 2 if self.use_stage6 else None
        self.stage_channels = (c4, c5, c6)
        if self.multi_level:
            self.feat_channels = c4 + c5 + (c6 or 0)
        else:
            self.feat_channels = c6 if self.use_stage6 and single_level == "last" else c5
        self.feat_dim = feat_dim
        self.fc = nn.Linear(self.feat_channels, feat_dim)  # FC 4096 -> 1024, no ReLU
        self.bn = nn.BatchNorm1d(feat_dim)
        self.classifier = nn.Linear(feat_dim, num_classes)
        # torchreid's initialisation of the new head (normal std 0.01 / 0.001, zero bias)
        nn.init.normal_(self.fc.weight, 0, 0.01)
        nn.init.zeros_(self.fc.bias)
        nn.init.ones_(self.bn.weight)
        nn.init.zeros_(self.bn.bias)
        nn.init.normal_(self.classifier.weight, 0, 0.001)
        nn.init.zeros_(self.classifier.bias)

    def stages(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Last-conv outputs of stage4, stage5, stage6.

        Returns ([N,C4,h4,w4], [N,C5,h,w], [N,C6,h,w] or None) for x float [N,3,H,W].
        """
        b = self.backbone
        x = b.layer2(b.layer1(b.stem(x)))  # [N, C3, H/8, W/8]
        f4 = b.layer3(x)                   # [N, C4, H/8, W/8] dilated, else H/16
        f5 = b.layer4(f4)                  # [N, C5, H/8, W/8] dilated, else H/32
        f6 = self.stage6(f5) if self.stage6 is not None else None  # [N, C6, same as f5]
        return f4, f5, f6

    def _featuremap(self, f4, f5, f6) -> torch.Tensor:
        if not self.multi_level:
            return f6 if f6 is not None and self.single_level == "last" else f5
        if f4.shape[-2:] != f5.shape[-2:]:  # non-dilated ablation: area-resize to stage5
            f4 = F.adaptive_avg_pool2d(f4, f5.shape[-2:])
        maps = [f4, f5] if f6 is None else [f4, f5, f6]
        return torch.cat(maps, dim=1)      # [N, C4+C5(+C6), h, w]

    def _attention(self, f4, f5, f6) -> tuple[torch.Tensor, ...] | None:
        if f6 is None:
            return None
        n, (h, w) = f5.shape[0], f5.shape[-2:]
        a4 = attention_map(f4.float())     # [N, h4*w4], unit rows (004 Eq. 1)
        if f4.shape[-2:] != f5.shape[-2:]:
            a4 = F.adaptive_avg_pool2d(a4.reshape(n, 1, *f4.shape[-2:]), (h, w))
            a4 = F.normalize(a4.flatten(1), p=2, dim=1)
        return a4, attention_map(f5.float()), attention_map(f6.float())  # 3 x [N, h*w]

    def forward(self, x: torch.Tensor, return_featuremaps: bool = False,
                return_attention: bool = False):
        """See the class docstring for the outputs of each mode."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"SAL.forward: expected images [N,3,H,W], got {tuple(x.shape)}")
        if return_featuremaps and return_attention:
            raise ValueError("SAL.forward: ask for return_featuremaps or return_attention, "
                             "not both")
        f4, f5, f6 = self.stages(x)
        if return_attention:
            if f6 is None:
                raise ValueError("SAL.forward(return_attention=True) needs stage6 "
                                 "(built with stage6=False / multi_level=False)")
            h, w = f5.shape[-2:]
            return tuple(a.reshape(-1, h, w) for a in self._attention(f4, f5, f6))
        fmap = self._featuremap(f4, f5, f6)
        if return_featuremaps:
            return fmap
        feat = self.bn(self.fc(F.adaptive_avg_pool2d(fmap, 1).flatten(1)))  # [N, feat_dim]
        if not self.training:
            return feat
        return {"logits": self.classifier(feat), "embeddings": feat, "featuremaps": fmap,
                "attention": self._attention(f4, f5, f6)}

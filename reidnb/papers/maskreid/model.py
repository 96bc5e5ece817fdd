"""MaskReID: two-stream (image + masked image) network with a skipped fusing layer.

Reference: L. Qi, J. Huo, L. Wang, Y. Shi, Y. Gao, "MaskReID: A Mask Based Deep Ranking
Neural Network for Person Re-identification" (ICME 2019, short version, 000 §2.1, Fig. 3;
long version, 003 §3.1, Fig. 3). Base network: T. Xiao, H. Li, W. Ouyang, X. Wang,
"Learning Deep Feature Representations with Domain Guided Dropout for Person
Re-identification" (CVPR 2016, "DGD"); layer sizes and inception blocks follow the public
Caffe definition ``Cysu/dgd_person_reid/models/dgd/jstl_trainval.prototxt`` (re-written
here in PyTorch; domain-guided dropout is not used, 000 §2.1).

What the papers show only as a figure is filled in as recipes.md §1.1/§1.7 pins it:

- **Streams** ("three separated convolution layers", 003): each input has its own
  conv1-conv3 (3x3/1, 32 ch, BN+ReLU) and 2x2/2 max-pool; the two 32-ch maps are
  concatenated (64 ch) and fed to the shared inception network.
- **Masked image**: ``x * mask + (1 - mask) * black`` where ``black`` is the normalised
  value of a 0-valued pixel (``-mean / std``), i.e. the background is set to 0 *before*
  normalisation (recipes.md §1.7).
- **Skipped fusing layer**: global average pool of the outputs of inception 1b, 2b and 3b
  (low / middle / high level; 384 + 768 + 1536 = 2688 values), concatenated, one FC to
  256 + BatchNorm. Without fusion the same FC+BN sits on the last level only (DGD's fc7).

Ablations (000 Table 4 / 003 Table 1 names) are options of the one class::

    use_mask  fusion   variant
    True      True     MaskReID (003: MaskReID-MF)
    False     True     MaskReID-F  (fusion, no masked input)
    True      False    MaskReID-M  (masked input, no fusion)
    False     False    DGD (base network, single stream, fc7 on inception 3b)

``backbone="resnet18"|"resnet50"`` swaps the DGD network for a ResNet (quick profile):
each stream gets its own copy of the ResNet stem (conv1+bn1+relu+maxpool), a 1x1 conv
fuses the concatenated 128 ch back to 64 (initialised to the average of the two streams,
so ImageNet weights of layer1 see the statistics they were trained on), then layer1..layer4
are shared; the levels are the outputs of layer2 / layer3 / layer4.
"""
from __future__ import annotations

import copy
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from reidnb.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from reidnb.models import register_model

# IMAGENET_MEAN / IMAGENET_STD (RGB, images in [0, 1]) are defined once, in
# reidnb.data.transforms; re-exported here for ``from reidnb.papers.maskreid.model import ...``.
__all__ = ["MaskReID", "DGDInception", "masked_image", "IMAGENET_MEAN", "IMAGENET_STD"]

_BACKBONES = ("dgd", "resnet18", "resnet50")


def masked_image(x: torch.Tensor, mask: torch.Tensor, black: torch.Tensor) -> torch.Tensor:
    """Blend a normalised image with the normalised black image outside the mask.

    Args:
        x: float [N, 3, H, W], normalised image.
        mask: float [N, 1, H, W] in [0, 1] (1 = person). Hard {0, 1} masks give the
            paper's masked image; soft masks blend (003's "MaskReID_soft").
        black: float [1, 3, 1, 1] (or broadcastable), normalised value of a 0 pixel.

    Returns:
        float [N, 3, H, W]: ``x * mask + (1 - mask) * black``.
    """
    return x * mask + (1.0 - mask) * black


def _conv_bn_relu(cin: int, cout: int, k: int, stride: int = 1) -> nn.Sequential:
    """Conv(k x k, pad k//2, no bias) + BN + ReLU: the prototxt's Convolution/BN/ReLU triple.

    (Caffe's conv bias before BN is redundant and dropped.)
    """
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class _InceptionA(nn.Module):
    """DGD inception "a" block (stride 1): four branches of ``width`` channels each.

    Branches (prototxt ``inception_Xa``): 1x1; 1x1 -> 3x3; 1x1 -> 3x3 -> 3x3;
    3x3/1 average pool (pad 1) -> 1x1. Output [N, 4*width, H, W].
    """

    def __init__(self, cin: int, width: int):
        super().__init__()
        self.b1x1 = _conv_bn_relu(cin, width, 1)
        self.b3x3 = nn.Sequential(_conv_bn_relu(cin, width, 1), _conv_bn_relu(width, width, 3))
        self.b3x3dbl = nn.Sequential(_conv_bn_relu(cin, width, 1),
                                     _conv_bn_relu(width, width, 3),
                                     _conv_bn_relu(width, width, 3))
        self.bpool = _conv_bn_relu(cin, width, 1)
        self.out_channels = 4 * width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Caffe AVE pooling with pad counts the padded zeros (count_include_pad=True).
        pooled = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=True)
        return torch.cat([self.b1x1(x), self.b3x3(x), self.b3x3dbl(x), self.bpool(pooled)], 1)


class _InceptionB(nn.Module):
    """DGD inception "b" block (stride 2): two conv branches + a max-pool pass-through.

    Branches (prototxt ``inception_Xb``): 1x1 -> 3x3/2; 1x1 -> 3x3 -> 3x3/2; 3x3/2 max
    pool of the input. Output [N, 2*width + cin, ceil(H/2), ceil(W/2)].

    The prototxt pools with Caffe's ceil rounding and no padding, except ``inception_3b``
    which pads the width by 1 (W = 7 there). Both are the same rule: pad a side by 1 when
    it is odd, round up. That is what this block does for any input size, so the pool
    branch always matches the 3x3/2 conv branches (144x56 input reproduces the prototxt
    exactly: 72x28 -> 36x14 -> 18x7 -> 9x4).
    """

    def __init__(self, cin: int, width: int):
        super().__init__()
        self.b3x3 = nn.Sequential(_conv_bn_relu(cin, width, 1),
                                  _conv_bn_relu(width, width, 3, stride=2))
        self.b3x3dbl = nn.Sequential(_conv_bn_relu(cin, width, 1),
                                     _conv_bn_relu(width, width, 3),
                                     _conv_bn_relu(width, width, 3, stride=2))
        self.out_channels = 2 * width + cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        pooled = F.max_pool2d(x, 3, stride=2, padding=(h % 2, w % 2), ceil_mode=True)
        return torch.cat([self.b3x3(x), self.b3x3dbl(x), pooled], 1)


def _dgd_stream() -> nn.Sequential:
    """conv1-conv3 (3x3/1, 32 ch, BN+ReLU) + pool1 (2x2/2 max, Caffe ceil rounding).

    [N, 3, H, W] -> [N, 32, ceil(H/2), ceil(W/2)].
    """
    return nn.Sequential(_conv_bn_relu(3, 32, 3), _conv_bn_relu(32, 32, 3),
                         _conv_bn_relu(32, 32, 3),
                         nn.MaxPool2d(2, stride=2, ceil_mode=True))


class DGDInception(nn.Module):
    """The shared inception part of DGD: inception 1a, 1b, 2a, 2b, 3a, 3b.

    Branch widths 64 / 128 / 256 for stages 1 / 2 / 3 (prototxt). ``forward`` returns the
    three level maps; for a 144x56 image (pool1 map 72x28, ``cin`` channels):
    ``low`` [N, 384, 36, 14] (1b), ``mid`` [N, 768, 18, 7] (2b), ``high`` [N, 1536, 9, 4] (3b).
    """

    def __init__(self, cin: int = 32):
        super().__init__()
        self.inception_1a = _InceptionA(cin, 64)                      # 256 ch
        self.inception_1b = _InceptionB(256, 64)                      # 384 ch, /2
        self.inception_2a = _InceptionA(384, 128)                     # 512 ch
        self.inception_2b = _InceptionB(512, 128)                     # 768 ch, /2
        self.inception_3a = _InceptionA(768, 256)                     # 1024 ch
        self.inception_3b = _InceptionB(1024, 256)                    # 1536 ch, /2
        self.level_channels = (384, 768, 1536)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        low = self.inception_1b(self.inception_1a(x))
        mid = self.inception_2b(self.inception_2a(low))
        high = self.inception_3b(self.inception_3a(mid))
        return low, mid, high


class _ResNetTrunk(nn.Module):
    """layer1..layer4 of a ResNet returning the layer2/3/4 maps (the three levels)."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.layer1, self.layer2 = backbone.layer1, backbone.layer2
        self.layer3, self.layer4 = backbone.layer3, backbone.layer4
        c = backbone.out_channels
        self.level_channels = (c // 4, c // 2, c)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        low = self.layer2(self.layer1(x))
        mid = self.layer3(low)
        high = self.layer4(mid)
        return low, mid, high


@register_model("maskreid")
class MaskReID(nn.Module):
    """MaskReID network and its ablations (DGD, MaskReID-F, MaskReID-M).

    Args:
        num_classes: number of training identities (size of fc8).
        use_mask: two streams, original + masked image (``forward`` then needs ``mask``).
        fusion: skipped fusing layer over the three levels; else the feature comes from
            the last level only (DGD's fc7).
        backbone: ``"dgd"`` (paper; no pretrained weights exist), ``"resnet18"`` or
            ``"resnet50"`` (via :class:`reidnb.models.backbones.ResNetBackbone`).
        pretrained: ImageNet weights for a ResNet backbone (``False``/``True``/``"auto"``,
            passed to ``ResNetBackbone``). For ``"dgd"`` only ``False`` and ``"auto"``
            (= none available, random init) are accepted.
        feat_dim: size of the feature (256 in both papers' Fig. 3).
        pixel_mean, pixel_std: the normalisation the images went through (RGB, [0, 1]
            scale), used to compute the normalised black pixel of the masked image.

    Forward:
        ``forward(x, mask=None, return_featuremaps=False)`` with ``x`` float [N, 3, H, W]
        (normalised) and ``mask`` float [N, 1, H, W] in [0, 1] (1 = person). With
        ``use_mask=False`` a given mask is ignored, so one input function serves every
        ablation.

        - training mode: dict with ``logits`` [N, num_classes], ``embeddings``
          [N, feat_dim] (BN output, before the ReLU; not normalised), ``featuremaps``
          (last level map, e.g. [N, 1536, 9, 4] for DGD at 144x56) and ``levels`` (the
          three globally pooled level features, e.g. [N, 384], [N, 768], [N, 1536]).
        - eval mode: ``embeddings`` [N, feat_dim] (the test feature; the evaluation
          L2-normalises it, as the papers' S(x_i, x_j) = x_i . x_j on unit vectors).
        - ``return_featuremaps=True``: the last level map in either mode.

    Feature and classifier: ``embeddings = BN(FC(levels))``; ``logits =
    fc8(ReLU(embeddings))``, as DGD's fc7 -> BN -> ReLU -> fc8 (no dropout: 000 §2.1
    drops domain-guided dropout). The embedding is taken *before* the ReLU (DGD's Caffe
    net read the ReLU'd blob): after a ReLU every feature is non-negative, so cosine
    similarities live in [0, 1] and the ranking loss could never push a negative past
    orthogonal; before it, S ranges over [-1, 1] (the BNNeck argument of Luo et al. 2019).

    Raises:
        ValueError: unknown ``backbone``; ``pretrained=True`` with ``"dgd"``; ``use_mask``
            and no ``mask``; ``x`` or ``mask`` of the wrong shape.
    """

    def __init__(self, num_classes: int, *, use_mask: bool = True, fusion: bool = True,
                 backbone: str = "dgd", pretrained: bool | str = False, feat_dim: int = 256,
                 pixel_mean: Sequence[float] = IMAGENET_MEAN,
                 pixel_std: Sequence[float] = IMAGENET_STD):
        super().__init__()
        if backbone not in _BACKBONES:
            raise ValueError(f"MaskReID: unknown backbone {backbone!r}; expected one of "
                             f"{_BACKBONES}")
        if num_classes < 1:
            raise ValueError(f"MaskReID: num_classes must be >= 1, got {num_classes}")
        self.num_classes, self.feat_dim = int(num_classes), int(feat_dim)
        self.use_mask, self.fusion, self.backbone_name = bool(use_mask), bool(fusion), backbone
        n_streams = 2 if self.use_mask else 1

        if backbone == "dgd":
            if pretrained is True:
                raise ValueError("MaskReID: no pretrained weights exist for the DGD network "
                                 "(the papers pre-train it on the small-scale datasets, "
                                 "recipes.md §1.4); use pretrained=False or a ResNet backbone")
            self.stream = _dgd_stream()
            self.mask_stream = _dgd_stream() if self.use_mask else None
            self.stream_fuse = None                # DGD: plain concatenation, 64 ch
            self.trunk = DGDInception(cin=32 * n_streams)
        else:
            from reidnb.models.backbones import ResNetBackbone

            net = ResNetBackbone(backbone, pretrained=pretrained)
            self.stream = net.stem
            self.mask_stream = copy.deepcopy(net.stem) if self.use_mask else None
            if self.use_mask:
                c = net.layer1[0].conv1.in_channels          # 64 for every torchvision ResNet
                self.stream_fuse = nn.Conv2d(2 * c, c, 1, bias=False)
                with torch.no_grad():                        # average of the two streams
                    eye = torch.eye(c).view(c, c, 1, 1) / 2
                    self.stream_fuse.weight.copy_(torch.cat([eye, eye], 1))
            else:
                self.stream_fuse = None
            self.trunk = _ResNetTrunk(net)

        in_feat = sum(self.trunk.level_channels) if self.fusion else self.trunk.level_channels[-1]
        self.fc = nn.Linear(in_feat, self.feat_dim)          # fusing layer / DGD fc7
        self.bn = nn.BatchNorm1d(self.feat_dim)
        self.classifier = nn.Linear(self.feat_dim, self.num_classes)   # fc8
        self.register_buffer("black", self._black(pixel_mean, pixel_std), persistent=False)
        self._init_weights(backbone == "dgd")

    @staticmethod
    def _black(mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
        if len(mean) != 3 or len(std) != 3 or any(s <= 0 for s in std):
            raise ValueError(f"MaskReID: pixel_mean/pixel_std must be 3 values with std > 0, "
                             f"got {tuple(mean)} / {tuple(std)}")
        m, s = torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)
        return (-m / s).view(1, 3, 1, 1)                     # normalised value of a 0 pixel

    def _init_weights(self, whole_net: bool) -> None:
        """Prototxt fillers: "xavier" (Caffe: U(+-sqrt(3/fan_in)) = kaiming_uniform a=1),
        BN slope 1 / bias 0, fc8 N(0, 0.001). ResNet layers keep their own init/weights."""
        new = [self.fc, self.classifier]
        if whole_net:
            new += [self.stream, self.mask_stream, self.trunk]
        for mod in new:
            if mod is None:
                continue
            for m in mod.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    nn.init.kaiming_uniform_(m.weight, a=1)
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)
        nn.init.normal_(self.classifier.weight, std=0.001)
        nn.init.zeros_(self.classifier.bias)

    # ------------------------------------------------------------------ inputs
    def masked_input(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The masked image fed to the mask stream: float [N, 3, H, W] (see module doc).

        Raises:
            ValueError: ``mask`` is not [N, 1, H, W] for ``x`` [N, 3, H, W], or leaves [0, 1].
        """
        if mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[0] != x.shape[0] \
                or mask.shape[-2:] != x.shape[-2:]:
            raise ValueError(f"MaskReID: mask must be [N, 1, H, W] = [{x.shape[0]}, 1, "
                             f"{x.shape[-2]}, {x.shape[-1]}] for x {tuple(x.shape)}, got "
                             f"{tuple(mask.shape)}")
        mask = mask.to(x.dtype)
        if bool(((mask < 0) | (mask > 1)).any()):
            raise ValueError("MaskReID: mask values must lie in [0, 1] (1 = person), got "
                             f"range [{mask.min().item():g}, {mask.max().item():g}]")
        return masked_image(x, mask, self.black.to(x.dtype))

    # ------------------------------------------------------------------ maps
    def forward_maps(self, x: torch.Tensor, mask: torch.Tensor | None = None
                     ) -> dict[str, torch.Tensor]:
        """All intermediate maps, for inspection and tests.

        Returns a dict (DGD at 144x56 / ResNet-18 at 128x64 shapes):
        ``original`` stream output [N, 32, 72, 28] / [N, 64, 32, 16];
        ``masked`` mask-stream output, same shape (only with ``use_mask``);
        ``shared`` input of the shared network [N, 64, 72, 28] / [N, 64, 32, 16];
        ``low`` [N, 384, 36, 14] / [N, 128, 16, 8]; ``mid`` [N, 768, 18, 7] /
        [N, 256, 8, 4]; ``high`` [N, 1536, 9, 4] / [N, 512, 4, 2].
        """
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"MaskReID: x must be a normalised image batch [N, 3, H, W], "
                             f"got {tuple(x.shape)}")
        maps: dict[str, torch.Tensor] = {"original": self.stream(x)}
        if self.use_mask:
            if mask is None:
                raise ValueError("MaskReID(use_mask=True) needs the person mask: call "
                                 "model(x, mask=mask) with mask float [N, 1, H, W] in {0, 1} "
                                 "(ImageDataset(..., load_mask=True) gives batch['mask']), or "
                                 "build the model with use_mask=False")
            maps["masked"] = self.mask_stream(self.masked_input(x, mask))
            shared = torch.cat([maps["original"], maps["masked"]], 1)   # [N, 2C, h, w]
            if self.stream_fuse is not None:
                shared = self.stream_fuse(shared)                        # [N, C, h, w]
        else:
            shared = maps["original"]
        maps["shared"] = shared
        maps["low"], maps["mid"], maps["high"] = self.trunk(shared)
        return maps

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                return_featuremaps: bool = False):
        maps = self.forward_maps(x, mask)
        if return_featuremaps:
            return maps["high"]
        levels = tuple(F.adaptive_avg_pool2d(maps[k], 1).flatten(1)
                       for k in ("low", "mid", "high"))             # [N, C_l] each
        pooled = torch.cat(levels, 1) if self.fusion else levels[-1]
        emb = self.bn(self.fc(pooled))                               # [N, feat_dim]
        if not self.training:
            return emb
        logits = self.classifier(F.relu(emb))                        # [N, num_classes]
        return {"logits": logits, "embeddings": emb, "featuremaps": maps["high"],
                "levels": levels}

    def extra_repr(self) -> str:
        return (f"backbone={self.backbone_name}, use_mask={self.use_mask}, "
                f"fusion={self.fusion}, feat_dim={self.feat_dim}, "
                f"num_classes={self.num_classes}")

"""ResNet backbones with the two re-ID modifications the papers use.

* ``last_stride=1`` removes the down-sampling of ``layer4`` (conv5_x), as in BoT
  (Luo et al. 2019, reid-strong-baseline ``modeling/backbones/resnet.py``) and
  MagnifierNet (002 §4.1): a 256x128 input then gives a 16x8 map instead of 8x4.
* ``dilation=(d3, d4)`` dilates *every* 3x3 convolution of ``layer3`` / ``layer4``
  (conv4_x / conv5_x) and removes their stride, as SAL does (004 §3.1: "stage4" and
  "stage5" with dilation 2 and 4, i.e. ``dilation=(2, 4)``; the map stays at 1/8 of
  the input). Unlike torchvision's ``replace_stride_with_dilation`` (DeepLab style, the
  first block of a dilated stage keeps the previous dilation) all blocks of a stage use
  the same dilation, as the paper says "all convolutions ... are dilated"; and it works
  for the basic-block ResNet-18/34 as well, which torchvision refuses.

The layers are torchvision's (``torchvision.models.resnet``), so torchvision's ImageNet
weights load unchanged (``ResNet50_Weights.IMAGENET1K_V1`` etc.; stride and dilation
change no parameter shapes).
"""
from __future__ import annotations


import warnings
from collections import OrderedDict
from typing import Literal

import torch
import torch.nn as nn
import torchvision.models as tvm

from ..core.utils import refuse_download_offline

__all__ = ["ResNetBackbone", "RESNET_SPECS"]

#: name -> (torchvision constructor, ImageNet weights enum member, output channels)
RESNET_SPECS = {
    "resnet18": (tvm.resnet18, tvm.ResNet18_Weights.IMAGENET1K_V1, 512),
    "resnet34": (tvm.resnet34, tvm.ResNet34_Weights.IMAGENET1K_V1, 512),
    "resnet50": (tvm.resnet50, tvm.ResNet50_Weights.IMAGENET1K_V1, 2048),
    "resnet101": (tvm.resnet101, tvm.ResNet101_Weights.IMAGENET1K_V1, 2048),
}


#: weights -> the error of the failed load, for ``pretrained="auto"``: tried once per
#: process (a notebook builds a dozen models; each retry costs a DNS timeout and a warning).
_FAILED_LOADS: dict[str, str] = {}


def _load_imagenet_state(weights: tvm.WeightsEnum) -> dict[str, torch.Tensor]:
    """Fetch torchvision weights (from the hub cache, else by download).

    Raises:
        RuntimeError: the weights are neither cached nor downloadable; the message
            names the weights, their URL and the cache folder.
    """
    cache = f"{torch.hub.get_dir()}/checkpoints"
    try:
        refuse_download_offline(weights.url)
        return weights.get_state_dict(progress=False, check_hash=True)
    except Exception as err:  # URLError, hash mismatch, corrupt file, ...
        raise RuntimeError(
            f"could not load the ImageNet weights {weights!r} ({weights.url}): "
            f"{type(err).__name__}: {err}. torchvision looks for them in {cache} "
            "(set TORCH_HOME to change it); on a machine without internet copy the file "
            "there, or build the model with pretrained=False / pretrained='auto'.") from err


def _set_first_block_stride(layer: nn.Sequential, stride: int) -> None:
    """Set the stride of the down-sampling convs of ``layer``'s first block.

    BasicBlock strides ``conv1``, Bottleneck (torchvision v1.5) ``conv2``; both stride
    ``downsample[0]``. Only convs that down-sample (stride != 1) are touched.
    """
    block = layer[0]
    for m in block.modules():
        if isinstance(m, nn.Conv2d) and m.stride != (1, 1):
            m.stride = (stride, stride)
    block.stride = stride


def _dilate_layer(layer: nn.Sequential, dilation: int) -> None:
    """Give every 3x3 conv of ``layer`` ``dilation`` (padding = dilation, so the map
    size is kept) and stride 1; 1x1 shortcut convs get stride 1 too."""
    for m in layer.modules():
        if isinstance(m, nn.Conv2d):
            m.stride = (1, 1)
            if m.kernel_size == (3, 3):
                m.dilation = (dilation, dilation)
                m.padding = (dilation, dilation)
            elif m.kernel_size != (1, 1):
                raise ValueError(f"cannot dilate a {m.kernel_size} conv")
    for block in layer:
        block.stride = 1


class ResNetBackbone(nn.Module):
    """torchvision ResNet conv1 ... conv5_x (no pooling, no fc) for re-ID.

    Args:
        name: ``resnet18`` | ``resnet34`` | ``resnet50`` | ``resnet101``.
        pretrained: ``False`` random init (torchvision's: Kaiming-normal convs, BN 1/0);
            ``True`` ImageNet weights (``IMAGENET1K_V1``), RuntimeError when they cannot
            be had; ``"auto"`` tries them and falls back to random init with a warning
            (``warnings.warn`` and ``print``). ``self.pretrained_loaded`` records what
            happened.
        last_stride: stride of ``layer4`` (2 as ImageNet ResNet, 1 as BoT).
        dilation: ``(d3, d4)`` dilation of ``layer3`` / ``layer4``; a value > 1 removes
            that layer's stride (and then overrides ``last_stride`` for ``layer4``).

    Attributes:
        stem: ``nn.Sequential(conv1, bn1, relu, maxpool)`` (stride 4).
        layer1 .. layer4: the residual stages (conv2_x .. conv5_x).
        out_channels: channels of ``forward``'s output (512 or 2048).
        stride: total down-sampling factor of the output map (e.g. 32, 16, 8).
        pretrained_loaded: whether ImageNet weights were loaded.
        weights_name: e.g. ``"ResNet50_Weights.IMAGENET1K_V1"``.

    Input: float32 image batch [N, 3, H, W] (ImageNet-normalised).
    Output: ``forward(x)`` -> float feature map [N, out_channels, H/stride, W/stride]
    (sizes rounded up per stride-2 step as convolution arithmetic does).

    Raises:
        ValueError: unknown name, last_stride not 1/2, bad dilation or pretrained value.
        RuntimeError: ``pretrained=True`` and the weights cannot be loaded.
    """

    def __init__(self, name: str = "resnet50",
                 pretrained: bool | Literal["auto"] = False,
                 last_stride: int = 2, dilation: tuple[int, int] = (1, 1)):
        super().__init__()
        if name not in RESNET_SPECS:
            raise ValueError(f"unknown backbone {name!r}; expected one of {sorted(RESNET_SPECS)}")
        if last_stride not in (1, 2):
            raise ValueError(f"last_stride must be 1 or 2, got {last_stride!r}")
        dilation = tuple(dilation)
        if len(dilation) != 2 or not all(isinstance(d, int) and d >= 1 for d in dilation):
            raise ValueError(f"dilation must be two integers >= 1 (layer3, layer4), got {dilation!r}")
        if pretrained not in (True, False, "auto"):
            raise ValueError(f"pretrained must be True, False or 'auto', got {pretrained!r}")
        if pretrained != "auto":
            pretrained = bool(pretrained)

        ctor, weights, channels = RESNET_SPECS[name]
        net = ctor(weights=None)
        self.pretrained_loaded = False
        self.weights_name = repr(weights)
        if pretrained == "auto" and repr(weights) in _FAILED_LOADS:
            pretrained = False   # already failed in this process: warned then, not again
        if pretrained:
            try:
                state = _load_imagenet_state(weights)
            except RuntimeError as err:
                if pretrained is True:
                    raise
                _FAILED_LOADS[repr(weights)] = str(err)
                msg = (f"[reidnb] {name}: falling back to random initialisation (later "
                       f"models of this process too, without retrying). {err}")
                warnings.warn(msg, RuntimeWarning, stacklevel=2)
                print(msg)
            else:
                net.load_state_dict(state)
                self.pretrained_loaded = True

        d3, d4 = dilation
        if d3 > 1:
            _dilate_layer(net.layer3, d3)
        if d4 > 1:
            _dilate_layer(net.layer4, d4)
        elif last_stride != 2:
            _set_first_block_stride(net.layer4, last_stride)

        self.name = name
        self.last_stride = last_stride
        self.dilation = dilation
        self.out_channels = channels
        self.stride = 8 * (1 if d3 > 1 else 2) * (1 if (d4 > 1 or last_stride == 1) else 2)
        self.stem = nn.Sequential(OrderedDict(
            conv1=net.conv1, bn1=net.bn1, relu=net.relu, maxpool=net.maxpool))
        self.layer1, self.layer2 = net.layer1, net.layer2
        self.layer3, self.layer4 = net.layer3, net.layer4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"ResNetBackbone expects images [N, 3, H, W], got {tuple(x.shape)}")
        x = self.stem(x)      # [N, 64, H/4, W/4]
        x = self.layer1(x)    # [N, 64|256, H/4, W/4]
        x = self.layer2(x)    # [N, 128|512, H/8, W/8]
        x = self.layer3(x)    # [N, 256|1024, H/16 (H/8 dilated), ...]
        return self.layer4(x)  # [N, out_channels, H/stride, W/stride]

    def extra_repr(self) -> str:
        return (f"name={self.name}, last_stride={self.last_stride}, dilation={self.dilation}, "
                f"pretrained_loaded={self.pretrained_loaded}")

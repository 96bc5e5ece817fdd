"""Paired image / mask / part-map transforms (torchvision.transforms.v2).

The image is wrapped as ``tv_tensors.Image`` and the foreground mask and part-label map as
``tv_tensors.Mask``; a v2 transform draws its random parameters once per call and applies
them to every input, so flip, pad and crop move image, mask and part map together. Masks
are resized with nearest-neighbour interpolation (v2 coerces any mode to NEAREST for
``Mask``), so labels stay labels.

Pipelines (reid-strong-baseline ``data/transforms/build.py``; torchreid
``data/transforms.py`` with ``random_flip``, ``random_crop``/pad, ``random_erase``):

- train: Resize(H, W) -> RandomHorizontalFlip(p) -> Pad(pad, fill 0) -> RandomCrop(H, W)
  -> float in [0, 1] -> Normalize(ImageNet mean/std) -> RandomErasing (image only).
- test: Resize(H, W) -> float -> Normalize.

Random erasing (Zhong et al., "Random Erasing Data Augmentation", AAAI 2020) as BoT uses
it: probability ``random_erasing``, area 0.02..0.4 of the image, aspect 0.3..3.33. BoT and
torchreid fill the box, after normalisation, with (0.4914, 0.4822, 0.4465) (CIFAR means
written into an already-normalised tensor); here the box is filled with 0 after
normalisation, i.e. the ImageNet mean colour in pixel space, which is what the random
erasing paper means by "mean value". Erasing touches the image only: the mask and part map
still describe the person under the box.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms import v2

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "PairedTransform", "paired_inputs", "build_transforms",
           "normalize", "denormalize"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _to_image(img: Any) -> tv_tensors.Image:
    """PIL RGB image / uint8 HxWx3 array / uint8 [3,H,W] tensor -> tv_tensors.Image uint8."""
    if isinstance(img, Image.Image):
        if img.mode != "RGB":
            img = img.convert("RGB")
        img = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)
    elif isinstance(img, np.ndarray):
        if img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"image array must be H x W x 3, got shape {img.shape}")
        img = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)
    elif not (isinstance(img, torch.Tensor) and img.ndim == 3 and img.shape[0] == 3):
        raise TypeError(f"image must be a PIL image, an HxWx3 array or a [3,H,W] tensor, "
                        f"got {type(img).__name__}")
    return tv_tensors.Image(img)


def _to_mask(m: Any, what: str) -> tv_tensors.Mask:
    """PIL single-channel image / HxW array or tensor -> tv_tensors.Mask [1,H,W] uint8."""
    if isinstance(m, Image.Image):
        if m.mode != "L":
            m = m.convert("L")
        m = torch.from_numpy(np.asarray(m).copy())
    elif isinstance(m, np.ndarray):
        m = torch.from_numpy(np.ascontiguousarray(m))
    elif not isinstance(m, torch.Tensor):
        raise TypeError(f"{what} must be a PIL image, an array or a tensor, got "
                        f"{type(m).__name__}")
    if m.ndim == 3 and m.shape[0] == 1:
        m = m[0]
    if m.ndim != 2:
        raise ValueError(f"{what} must be H x W (single channel), got shape {tuple(m.shape)}")
    if m.dtype == torch.bool:
        m = m.to(torch.uint8)
    return tv_tensors.Mask(m[None])


def paired_inputs(img: Any, mask: Any = None, parts: Any = None) -> dict[str, Any]:
    """``{"img": tv_tensors.Image, "mask"/"parts": tv_tensors.Mask}`` (labels only when
    given), ready for one v2 transform call that moves them together.

    Raises:
        ValueError: a mask or part map whose size differs from the image's.
    """
    data: dict[str, Any] = {"img": _to_image(img)}
    size = tuple(data["img"].shape[-2:])
    for key, value in (("mask", mask), ("parts", parts)):
        if value is not None:
            m = _to_mask(value, key)
            if tuple(m.shape[-2:]) != size:
                raise ValueError(f"{key} is {tuple(m.shape[-2:])} (H, W) but the image is "
                                 f"{size}; they must have the same size")
            data[key] = m
    return data


class PairedTransform:
    """Apply one geometric pipeline to an image and, optionally, its mask and part map.

    Call: ``t(img, mask=None, parts=None) -> dict`` with

    - ``img``: float32 [3, H, W], normalised with ImageNet mean/std;
    - ``mask``: float32 [1, H, W] in {0, 1} (input 0/255 or 0/1, single channel), or None;
    - ``parts``: int64 [H, W] labels (input uint8 0..7, single channel), or None.

    Inputs: ``img`` a PIL RGB image (or HxWx3 uint8 array / [3,H,W] uint8 tensor); ``mask``
    and ``parts`` PIL single-channel images (or HxW arrays/tensors) of the image's size.

    Raises:
        ValueError: a mask or part map whose size differs from the image's.
    """

    def __init__(self, geometry: v2.Transform, erase: v2.Transform | None, *,
                 height: int | None, width: int | None, is_train: bool):
        self.geometry = geometry
        self.erase = erase
        self.height, self.width, self.is_train = height, width, is_train

    def __call__(self, img: Any, mask: Any = None, parts: Any = None) -> dict[str, Any]:
        out = self.geometry(paired_inputs(img, mask, parts))
        x = out["img"]
        if self.erase is not None:
            x = self.erase(x)
        result: dict[str, Any] = {"img": x.as_subclass(torch.Tensor), "mask": None,
                                  "parts": None}
        if "mask" in out:
            m = out["mask"].as_subclass(torch.Tensor)
            thr = 0 if int(m.max()) <= 1 else 127  # accepts 0/1 and 0/255 masks
            result["mask"] = (m > thr).to(torch.float32)
        if "parts" in out:
            result["parts"] = out["parts"].as_subclass(torch.Tensor)[0].to(torch.int64)
        return result

    def __repr__(self) -> str:
        return (f"PairedTransform(is_train={self.is_train}, size={self.height}x{self.width},\n"
                f"  geometry={self.geometry},\n  erase={self.erase})")


def build_transforms(height: int | None, width: int | None, is_train: bool, *,
                     flip_p: float = 0.5, pad: int = 10, random_erasing: float = 0.0,
                     mean: tuple[float, float, float] = IMAGENET_MEAN,
                     std: tuple[float, float, float] = IMAGENET_STD) -> PairedTransform:
    """Build the train or test :class:`PairedTransform` (BoT / torchreid pipelines).

    Args:
        height, width: output size in pixels (``None`` for both: keep the input size, no
            crop; used by :class:`~reidnb.data.datasets.ImageDataset` without a transform).
        is_train: train pipeline (flip, pad + random crop, random erasing) or test pipeline.
        flip_p: horizontal-flip probability (train; BoT 0.5).
        pad: padding in pixels before the random crop back to (H, W) (train; BoT 10;
            0 disables pad+crop).
        random_erasing: probability of random erasing (train; BoT 0.5, off by default).
        mean, std: normalisation (ImageNet statistics, as torchvision's pretrained weights).

    Raises:
        ValueError: only one of height/width given, or a probability outside [0, 1].
    """
    if (height is None) != (width is None):
        raise ValueError(f"give both height and width or neither, got {height}, {width}")
    for name, p in (("flip_p", flip_p), ("random_erasing", random_erasing)):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{name} must be a probability in [0, 1], got {p}")
    ops: list[v2.Transform] = []
    if height is not None:
        ops.append(v2.Resize((height, width), interpolation=v2.InterpolationMode.BILINEAR,
                             antialias=True))
    if is_train:
        if flip_p > 0:
            ops.append(v2.RandomHorizontalFlip(p=flip_p))
        if pad > 0:
            if height is None:
                raise ValueError("pad + random crop needs height and width")
            ops += [v2.Pad(pad, fill=0), v2.RandomCrop((height, width))]
    ops += [v2.ToDtype({tv_tensors.Image: torch.float32, "others": None}, scale=True),
            v2.Normalize(mean=list(mean), std=list(std))]
    erase = None
    if is_train and random_erasing > 0:
        erase = v2.RandomErasing(p=random_erasing, scale=(0.02, 0.4), ratio=(0.3, 3.33),
                                 value=0.0)
    return PairedTransform(v2.Compose(ops), erase, height=height, width=width,
                           is_train=is_train)


def normalize(img: torch.Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """Normalise an image batch as the pipelines do: uint8 [..., 3, H, W] (0..255) or float
    [..., 3, H, W] in [0, 1] -> float ``(x - mean) / std`` (float32 for uint8 input); the
    inverse of :func:`denormalize`. For batches decoded outside :class:`PairedTransform`
    (e.g. the part parser's prediction loader)."""
    x = img if img.is_floating_point() else img.float() / 255.0
    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(3, 1, 1)
    s = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(3, 1, 1)
    return (x - m) / s


def denormalize(img: torch.Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """Undo the normalisation: float [..., 3, H, W] -> float in [0, 1] (clamped), for display."""
    m = torch.as_tensor(mean, dtype=img.dtype, device=img.device).view(3, 1, 1)
    s = torch.as_tensor(std, dtype=img.dtype, device=img.device).view(3, 1, 1)
    return (img * s + m).clamp(0, 1)

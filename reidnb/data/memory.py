"""Decode once, train many times: resized images held in memory as uint8 tensors.

The file pipeline (:class:`~reidnb.data.datasets.ImageDataset` + :mod:`reidnb.data.transforms`)
decodes every image, resizes it and augments it again at every epoch and every evaluation.
At the small image sizes of the smoke and quick profiles that work costs about as much as a
ResNet-18 step on the CPU (measured: decode 0.25 ms + torchvision v2 transform 0.38 ms per
64 x 32 image, collate included ~1 ms, against ~4 ms of training step). Here:

- :func:`decoded` decodes and resizes a record list once (the test transform's
  ``v2.Resize``, bilinear with antialias; masks and part maps nearest) into uint8 tensors,
  kept in a process-wide cache keyed by the image paths, the size and the label kinds;
- :class:`MemoryDataset` serves those tensors as items (uint8, no work per item);
- :class:`BatchTransform`, the loader's ``collate_fn``, collates a batch and runs the same
  pipeline as :func:`~reidnb.data.transforms.build_transforms` on the whole batch at once:
  train = per-image horizontal flip (p), zero pad + random crop back to H x W, float
  scaling, ImageNet normalisation, random erasing (image only); test = scaling and
  normalisation. Each image draws its own flip, crop offset and erasing box from torch's
  global generator (as v2 does), so the distribution of the augmented batches is the file
  pipeline's; the draws themselves differ, so a run through memory is another random draw
  of the same recipe than the same seed through files. Mask and part map follow the
  image's flip and crop, as :class:`~reidnb.data.transforms.PairedTransform`.

Resize-then-augment is the order of the file pipeline too (Resize -> flip -> pad -> crop),
so the cached tensor is exactly the image the file pipeline augments (a test checks the
bytes). Sources: torchvision ``transforms.v2`` (Resize, the reference of every step);
random erasing as Zhong et al. 2020 (Alg. 1, area 0.02..0.4, aspect 0.3..3.33, 10 tries),
filled with 0 after normalisation (the ImageNet mean colour), as
:func:`~reidnb.data.transforms.build_transforms`.
"""
from __future__ import annotations

import hashlib
import math
import os
from collections import OrderedDict
from typing import Any, Mapping, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, default_collate
from torchvision.transforms import v2

from .transforms import IMAGENET_MEAN, IMAGENET_STD, paired_inputs

__all__ = ["Decoded", "decoded", "clear_cache", "cache_bytes", "MemoryDataset",
           "BatchTransform", "CACHE_LIMIT_MB"]

#: Largest total size of the decoded tensors kept (MiB; env ``REIDNB_MEMORY_CACHE_MB``).
#: Beyond it the least recently used record list is dropped (and decoded again if asked).
CACHE_LIMIT_MB = float(os.environ.get("REIDNB_MEMORY_CACHE_MB", 4096))

_CACHE: "OrderedDict[str, Decoded]" = OrderedDict()


class Decoded:
    """Resized uint8 tensors of one record list.

    Attributes:
        images: uint8 [N, 3, H, W] (RGB, 0..255, the test transform's Resize).
        masks: uint8 [N, 1, H, W] as stored (0/255 or 0/1), or None.
        parts: uint8 [N, H, W] labels 0..7, or None.
    """

    def __init__(self, images: torch.Tensor, masks: torch.Tensor | None,
                 parts: torch.Tensor | None):
        self.images, self.masks, self.parts = images, masks, parts

    @property
    def nbytes(self) -> int:
        """Bytes held by the tensors."""
        return sum(t.numel() * t.element_size() for t in (self.images, self.masks, self.parts)
                   if t is not None)


class _ResizeOnly:
    """PairedTransform-like callable: image (+ mask, part map) -> resized uint8 tensors."""

    def __init__(self, height: int, width: int):
        self.resize = v2.Resize((height, width), interpolation=v2.InterpolationMode.BILINEAR,
                                antialias=True)

    def __call__(self, img: Any, mask: Any = None, parts: Any = None) -> dict[str, Any]:
        out = self.resize(paired_inputs(img, mask, parts))
        return {"img": out["img"].as_subclass(torch.Tensor),
                "mask": out["mask"].as_subclass(torch.Tensor) if "mask" in out else None,
                "parts": out["parts"].as_subclass(torch.Tensor)[0] if "parts" in out else None}


def _key(records: Sequence[Any], height: int, width: int, load_mask: bool,
         load_parts: bool) -> str:
    h = hashlib.sha1(f"{height}x{width}|{load_mask}|{load_parts}".encode())
    for r in records:
        h.update(f"{r.path}|{r.mask if load_mask else ''}|{r.parts if load_parts else ''}\n"
                 .encode())
    return h.hexdigest()


def decoded(records: Sequence[Any], height: int, width: int, *, load_mask: bool = False,
            load_parts: bool = False, workers: int = 0) -> Decoded:
    """The records decoded and resized to ``height x width`` (pixels), from the process-wide
    cache or decoded now (``workers`` DataLoader processes; the file checks of
    :class:`~reidnb.data.datasets.ImageDataset` apply).

    Raises:
        ValueError: an empty record list; a record without a mask / part-map path while
            ``load_mask`` / ``load_parts``; a label map of another size than its image or
            with labels above 7 (names the file).
        OSError, FileNotFoundError: an image or label file that cannot be read (named).
    """
    from .datasets import ImageDataset

    if not records:
        raise ValueError("decoded: no records")
    key = _key(records, height, width, load_mask, load_parts)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    ds = ImageDataset(records, _ResizeOnly(height, width), load_mask=load_mask,
                      load_parts=load_parts)
    loader = DataLoader(ds, batch_size=256, shuffle=False, num_workers=int(workers),
                        collate_fn=_stack)
    chunks = list(loader)
    out = Decoded(torch.cat([c["img"] for c in chunks]),
                  torch.cat([c["mask"] for c in chunks]) if load_mask else None,
                  torch.cat([c["parts"] for c in chunks]) if load_parts else None)
    _CACHE[key] = out
    limit = CACHE_LIMIT_MB * 2 ** 20
    while len(_CACHE) > 1 and cache_bytes() > limit:
        _CACHE.popitem(last=False)
    return out


def _stack(items: list[dict]) -> dict[str, torch.Tensor]:
    return {k: torch.stack([it[k] for it in items]) for k in ("img", "mask", "parts")
            if k in items[0]}


def clear_cache() -> None:
    """Drop every decoded record list of this process."""
    _CACHE.clear()


def cache_bytes() -> int:
    """Bytes held by this process's decoded record lists."""
    return sum(d.nbytes for d in _CACHE.values())


class MemoryDataset(Dataset):
    """Items of :func:`decoded` tensors, shaped like :class:`ImageDataset` items but uint8
    and not yet transformed: ``img`` uint8 [3, H, W], ``pid`` / ``camid`` int64 scalar
    tensors, ``index`` int, ``path`` str, ``mask`` uint8 [1, H, W] and ``parts`` uint8
    [H, W] when loaded. Use it with ``collate_fn=BatchTransform(...)``.

    Args:
        records: the records (``dataset.train``, ``dataset.query``, ...).
        height, width: the size every image is resized to (pixels).
        load_mask, load_parts, workers: see :func:`decoded`.

    Raises:
        the errors of :func:`decoded`.
    """

    def __init__(self, records: Sequence[Any], height: int, width: int, *,
                 load_mask: bool = False, load_parts: bool = False, workers: int = 0):
        self.records = list(records)
        self.data = decoded(self.records, height, width, load_mask=load_mask,
                            load_parts=load_parts, workers=workers)
        self.pids = torch.tensor([r.pid for r in self.records], dtype=torch.int64)
        self.camids = torch.tensor([r.camid for r in self.records], dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = {"img": self.data.images[index], "pid": self.pids[index],
                "camid": self.camids[index], "index": index, "path": self.records[index].path}
        if self.data.masks is not None:
            item["mask"] = self.data.masks[index]
        if self.data.parts is not None:
            item["parts"] = self.data.parts[index]
        return item


class BatchTransform:
    """``collate_fn`` of a :class:`MemoryDataset` loader: collate, then augment and normalise
    the whole batch (see the module docstring).

    Output batch: ``img`` float32 [B, 3, H, W] normalised; ``mask`` float32 [B, 1, H, W] in
    {0, 1}; ``parts`` int64 [B, H, W]; ``pid``, ``camid`` int64 [B]; ``index``, ``path``.

    Args:
        is_train: the train pipeline (flip, pad + crop, erasing) or the test one.
        flip_p, pad, random_erasing, mean, std: as
            :func:`~reidnb.data.transforms.build_transforms`.

    Raises:
        ValueError: a probability outside [0, 1] or a negative pad.
    """

    def __init__(self, is_train: bool, *, flip_p: float = 0.5, pad: int = 10,
                 random_erasing: float = 0.0, mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD):
        for name, p in (("flip_p", flip_p), ("random_erasing", random_erasing)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {p}")
        if pad < 0:
            raise ValueError(f"pad must be >= 0, got {pad}")
        self.is_train, self.flip_p, self.pad = is_train, float(flip_p), int(pad)
        self.random_erasing = float(random_erasing)
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)

    def __call__(self, items: list[dict]) -> dict[str, Any]:
        batch = default_collate(items)
        img = batch["img"]
        labels = {k: batch[k] for k in ("mask", "parts") if k in batch}
        if self.is_train:
            img, labels = self.geometry(img, labels)
        x = img.to(torch.float32).mul_(1.0 / 255.0).sub_(self.mean).div_(self.std)
        if self.is_train and self.random_erasing > 0:
            x = self.erase(x)
        batch["img"] = x
        if "mask" in labels:
            m = labels["mask"]
            thr = 0 if int(m.max()) <= 1 else 127   # accepts 0/1 and 0/255 masks
            batch["mask"] = (m > thr).to(torch.float32)
        if "parts" in labels:
            batch["parts"] = labels["parts"].to(torch.int64)
        return batch

    def geometry(self, img: torch.Tensor, labels: Mapping[str, torch.Tensor]
                 ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Per-image flip (p = ``flip_p``) and zero pad + random crop, the same draw for an
        image, its mask and its part map. uint8 [B, C, H, W] (part maps [B, H, W]) in and
        out."""
        b, _, h, w = img.shape
        tensors = {"img": img, **labels}
        if self.flip_p > 0:
            flip = torch.rand(b) < self.flip_p
            tensors = {k: torch.where(flip.view(-1, *([1] * (t.ndim - 1))), t.flip(-1), t)
                       for k, t in tensors.items()}
        if self.pad > 0:
            p = self.pad
            top = torch.randint(0, 2 * p + 1, (b,)).tolist()
            left = torch.randint(0, 2 * p + 1, (b,)).tolist()
            out = {}
            for k, t in tensors.items():
                padded = torch.nn.functional.pad(t, (p, p, p, p))   # zeros, as v2.Pad(fill=0)
                out[k] = torch.stack([padded[i, ..., y:y + h, x:x + w]
                                      for i, (y, x) in enumerate(zip(top, left))])
            tensors = out
        img = tensors.pop("img")
        return img, tensors

    def erase(self, x: torch.Tensor) -> torch.Tensor:
        """Random erasing of each image with probability ``random_erasing`` (float
        [B, 3, H, W], normalised; boxes filled with 0)."""
        b, _, h, w = x.shape
        area = h * w
        for i in torch.nonzero(torch.rand(b) < self.random_erasing).flatten().tolist():
            for _ in range(10):
                target = area * float(torch.empty(1).uniform_(0.02, 0.4))
                ratio = math.exp(float(torch.empty(1).uniform_(math.log(0.3), math.log(3.33))))
                eh = int(round(math.sqrt(target * ratio)))
                ew = int(round(math.sqrt(target / ratio)))
                if eh < h and ew < w:
                    y = int(torch.randint(0, h - eh + 1, ()))
                    x0 = int(torch.randint(0, w - ew + 1, ()))
                    x[i, :, y:y + eh, x0:x0 + ew] = 0.0
                    break
        return x

    def __repr__(self) -> str:
        return (f"BatchTransform(is_train={self.is_train}, flip_p={self.flip_p}, "
                f"pad={self.pad}, random_erasing={self.random_erasing})")


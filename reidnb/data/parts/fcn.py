"""Person masks from torchvision's FCN (the MaskReID papers' FCN choice, recipes.md §1.7).

``fcn_resnet101`` (or another torchvision segmentation model) with its COCO-with-VOC-labels
weights; a pixel is person where the argmax over the 21 VOC classes is class 15. Masks
only: FCN has no part classes. The weights are never downloaded silently: when they
cannot be loaded, :func:`_try_load_fcn` prints why and the caller falls back to the other
mask sources (:func:`reidnb.data.parts.attach_masks`).
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ...core.utils import refuse_download_offline, resolve_device
from ..datasets import _open_rgb
from ..transforms import build_transforms

__all__ = ["predict_fcn_masks"]


def _load_fcn(name: str = "fcn_resnet101") -> nn.Module:
    """torchvision's segmentation model ``name`` with its COCO-with-VOC-labels weights
    (downloads them into the torch hub cache when missing and the network allows)."""
    from torchvision.models import get_model, get_model_weights

    weights = get_model_weights(name).DEFAULT
    refuse_download_offline(weights.url)
    return get_model(name, weights=weights).eval()


def _try_load_fcn(name: str) -> nn.Module | None:
    """:func:`_load_fcn`, or None after printing why it failed (always printed: a source the
    caller asked for is being replaced)."""
    try:
        return _load_fcn(name)
    except Exception as e:  # URLError, OSError, RuntimeError (hash mismatch), ...
        msg = (f"masks: torchvision {name} weights could not be loaded "
               f"({type(e).__name__}: {e}). Put the weights file in the torch hub cache "
               f"({torch.hub.get_dir()}/checkpoints/) or allow the download; falling "
               "back to the other mask sources.")
        print(msg)
        return None


@torch.inference_mode()
def predict_fcn_masks(model: nn.Module, paths: Sequence[str], *, batch_size: int = 16,
                      device: str | torch.device = "auto", size: tuple[int, int] = (256, 128),
                      person_class: int = 15) -> Iterator[tuple[int, np.ndarray]]:
    """Person masks from a torchvision segmentation model (``out`` logits over the 21 VOC
    classes): argmax == ``person_class`` (VOC 15), computed at ``size`` (H, W) and resized
    back to each image.

    Args:
        model: e.g. :func:`_load_fcn`'s model; its forward returns ``{"out": logits}``
            or the logits [B, 21, h, w].
        paths: image files. batch_size, device: inference settings.
        size: (H, W) in pixels the images are resized to for the model.
        person_class: the person class index (VOC 15).

    Yields:
        ``(index into paths, mask uint8 [H, W] in {0, 255})`` in order, at each image's
        own size.

    Raises:
        OSError / FileNotFoundError: an image that cannot be decoded (names it).
    """
    dev = resolve_device(device)
    model.eval().to(dev)
    tf = build_transforms(*size, is_train=False)
    for s in range(0, len(paths), batch_size):
        imgs = [_open_rgb(p) for p in paths[s:s + batch_size]]
        x = torch.stack([tf(im)["img"] for im in imgs]).to(dev)
        out = model(x)
        logits = out["out"] if isinstance(out, dict) else out          # [B, 21, h, w]
        for j, im in enumerate(imgs):
            w, h = im.size
            lj = F.interpolate(logits[j:j + 1].float(), size=(h, w), mode="bilinear",
                               align_corners=False)
            yield s + j, (lj.argmax(1)[0] == person_class).to(torch.uint8).cpu().numpy() * 255



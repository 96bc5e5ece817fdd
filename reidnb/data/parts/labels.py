"""Part labels: the 7-part scheme, LIP human-parsing labels -> part maps, colours, masks.

Part labels (DESIGN.md "Data"; MagnifierNet, 002 §4.1): 0 background, 1 head, 2 upper arm,
3 lower arm, 4 chest, 5 upper leg, 6 lower leg, 7 foot. Upper torso = {1, 2, 3, 4}, lower
torso = {5, 6, 7}. A foreground mask is ``parts > 0`` (0/255 PNG).

The LIP labels (Gong et al., "Look into Person", CVPR 2017; the SCHP pseudo labels
Market-1501 ships for its training images in ``bounding_box_train_parsing_pgt/``) are
mapped by :func:`lip_to_parts`; :func:`read_label_parts` reads one such PNG, checked
against its image. :data:`PART_COLORS` is the one colour table of the package (overlays
in :mod:`reidnb.viz` use it).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

__all__ = ["PART_NAMES", "PART_COLORS", "NUM_PARTS", "LIP_LABELS", "MAPPING_VERSION",
           "LABEL_DIR_SUFFIX", "HEAD", "UPPER_ARM", "LOWER_ARM", "CHEST", "UPPER_LEG",
           "LOWER_LEG", "FOOT", "lip_to_parts", "masks_from_parts", "colorize_parts",
           "label_path", "read_label_parts"]

#: Part label -> name (DESIGN.md "Data"; the synthetic generator draws these labels).
PART_NAMES = ("background", "head", "upper arm", "lower arm", "chest", "upper leg",
              "lower leg", "foot")
#: RGB colour per part label, for overlays (background black).
PART_COLORS = ((0, 0, 0), (230, 159, 0), (86, 180, 233), (0, 114, 178), (0, 158, 115),
               (240, 228, 66), (213, 94, 0), (204, 121, 167))
#: LIP label ids of the SCHP parsing labels (shared/data/README.md).
LIP_LABELS = ("background", "hat", "hair", "glove", "sunglasses", "upper-clothes", "dress",
              "coat", "socks", "pants", "jumpsuits", "scarf", "skirt", "face", "left-arm",
              "right-arm", "left-leg", "right-leg", "left-shoe", "right-shoe")

#: Version of the LIP -> part mapping; cached label-derived maps of another version are redone.
MAPPING_VERSION = "1"
NUM_PARTS = len(PART_NAMES)
HEAD, UPPER_ARM, LOWER_ARM, CHEST, UPPER_LEG, LOWER_LEG, FOOT = range(1, 8)

_LIP_HEAD = (1, 2, 4, 13)               # hat, hair, sunglasses, face
_LIP_CHEST = (3, 5, 6, 7, 10, 11)       # glove, upper-clothes, dress, coat, jumpsuits, scarf
_LIP_FOOT = (8, 18, 19)                 # socks, left-shoe, right-shoe
_LIP_ARMS = ((14,), (15,))              # left-arm, right-arm: each split on its own
_LIP_LEGS = (9, 12, 16, 17)             # pants, skirt, left-leg, right-leg: one joint region
_LIP_LUT = np.zeros(len(LIP_LABELS), np.uint8)
_LIP_LUT[list(_LIP_HEAD)] = HEAD
_LIP_LUT[list(_LIP_CHEST)] = CHEST
_LIP_LUT[list(_LIP_FOOT)] = FOOT

#: Label folder of a split folder for the "labels" source (Market-1501 convention).
LABEL_DIR_SUFFIX = "_parsing_pgt"


PARSER_SIZE = (128, 64)
_CKPT_FORMAT = "reidnb.masks.parser/1"


# --------------------------------------------------------------------------- label maps


def _longest_row_run(rows: np.ndarray, weights: np.ndarray) -> tuple[int, int]:
    """(first, last) row of the longest run of consecutive row indices in sorted ``rows``;
    a tie goes to the run with more pixels (``weights`` = pixels per row)."""
    breaks = np.flatnonzero(np.diff(rows) > 1)
    starts = np.concatenate(([0], breaks + 1))
    ends = np.concatenate((breaks, [rows.size - 1]))
    if starts.size == 1:
        return int(rows[0]), int(rows[-1])
    csum = np.concatenate(([0], np.cumsum(weights)))
    key = [(e - s, csum[e + 1] - csum[s]) for s, e in zip(starts, ends)]
    best = max(range(len(key)), key=key.__getitem__)
    return int(rows[starts[best]]), int(rows[ends[best]])


def _split_rows(out: np.ndarray, region: np.ndarray, upper: int, lower: int) -> None:
    """Label ``region`` (bool [H, W]) ``upper`` at or above the middle row of its vertical
    extent and ``lower`` below it, in place. The extent is the longest run of consecutive
    rows holding the region, so a stray blob a few rows away does not stretch it."""
    per_row = region.sum(1)
    rows = np.flatnonzero(per_row)
    if rows.size == 0:
        return
    r0, r1 = _longest_row_run(rows, per_row[rows])
    middle = (r0 + r1) / 2.0                   # e.g. rows 10..29 -> 19.5
    is_upper = (np.arange(region.shape[0]) <= middle)[:, None]
    out[region & is_upper] = upper
    out[region & ~is_upper] = lower


def lip_to_parts(label: np.ndarray, source: str | os.PathLike | None = None) -> np.ndarray:
    """Map a LIP human-parsing label map to the 7-part map of DESIGN.md.

    - head (1) = hat 1, hair 2, sunglasses 4, face 13;
    - chest (4) = glove 3, upper-clothes 5, dress 6, coat 7, jumpsuits 10, scarf 11;
    - foot (7) = socks 8, left-shoe 18, right-shoe 19;
    - arms: left-arm 14 and right-arm 15 each on its own: pixels at or above the middle
      row of that label's vertical extent are upper arm (2), below it lower arm (3);
    - legs: pants 9, skirt 12, left-leg 16 and right-leg 17 form **one joint leg region**
      (pants and skirt have no side, and bare legs below shorts or a skirt continue the
      same limb, so splitting each label on its own would call the top of a bare shin an
      upper leg); split into upper leg (5) / lower leg (6) at its middle row likewise;
    - background 0 stays 0, so ``parts > 0 == label > 0``.

    The vertical extent of a region is the longest run of consecutive rows that hold it
    (rows ``r0..r1``; middle ``(r0 + r1) / 2``; a row equal to the middle is upper); other
    pixels of the same region (stray blobs) are split at the same middle row. Example: an
    arm over rows 10..29 gives upper arm on rows 10..19 and lower arm on rows 20..29.

    Args:
        label: integer array [H, W] of LIP ids 0..19 (uint8 as the PNGs store them).
        source: file the label came from, named in error messages.

    Returns:
        uint8 array [H, W] with values 0..7.

    Raises:
        ValueError: ``label`` is not 2-D or holds ids outside 0..19 (message names
            ``source``).
    """
    where = f" in {source}" if source is not None else ""
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f"LIP label map{where} must be H x W (single channel), got shape "
                         f"{label.shape}")
    if label.size and (label.min() < 0 or label.max() >= len(LIP_LABELS)):
        bad = sorted(set(np.unique(label).tolist()) - set(range(len(LIP_LABELS))))
        raise ValueError(f"LIP label map{where} holds ids {bad[:10]} outside 0..19 "
                         "(expected LIP ids: 0 background, 1 hat, ..., 19 right-shoe)")
    label = label.astype(np.intp, copy=False)
    out = _LIP_LUT[label]
    for ids in _LIP_ARMS:
        _split_rows(out, np.isin(label, ids), UPPER_ARM, LOWER_ARM)
    _split_rows(out, np.isin(label, _LIP_LEGS), UPPER_LEG, LOWER_LEG)
    return out


def masks_from_parts(parts: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """Foreground mask of a part map: 255 where ``parts > 0`` else 0.

    Args:
        parts: uint8/int array or tensor [..., H, W] of part labels 0..7.

    Returns:
        uint8 array/tensor of the same shape with values {0, 255} (what the mask PNGs hold).
    """
    if isinstance(parts, torch.Tensor):
        return (parts > 0).to(torch.uint8) * 255
    return (np.asarray(parts) > 0).astype(np.uint8) * 255


def colorize_parts(parts: np.ndarray | torch.Tensor) -> np.ndarray:
    """uint8 RGB image [H, W, 3] of a part map [H, W] (labels 0..7; others clipped into
    that range) with :data:`PART_COLORS`."""
    parts = np.asarray(parts.cpu() if isinstance(parts, torch.Tensor) else parts)
    return np.asarray(PART_COLORS, np.uint8)[np.clip(parts, 0, NUM_PARTS - 1)]


def label_path(img_path: str, label_root: Path) -> Path:
    """Where the LIP label of an image lives: ``<label_root>/<split folder>_parsing_pgt/
    <stem>.png`` (Market-1501's layout)."""
    p = Path(img_path)
    return Path(label_root) / (p.parent.name + LABEL_DIR_SUFFIX) / (p.stem + ".png")


def read_label_parts(img_path: str, lab_path: Path) -> np.ndarray:
    """Read a LIP label PNG, check it against its image, return its part map.

    Args:
        img_path: the image the label belongs to.
        lab_path: the single-channel PNG of LIP ids 0..19.

    Returns:
        uint8 array [H, W] with values 0..7 (:func:`lip_to_parts`).

    Raises:
        ValueError: the label is not single-channel, its size differs from the image's
            (names both paths and sizes) or it holds ids outside 0..19 (names it).
    """
    with Image.open(lab_path) as lab:
        lab.load()
        if lab.mode not in ("L", "P"):
            raise ValueError(f"parsing label {lab_path} has mode {lab.mode!r}; expected a "
                             "single-channel PNG of LIP ids")
        arr = np.asarray(lab)
    with Image.open(img_path) as im:
        img_size = im.size
    if (arr.shape[1], arr.shape[0]) != img_size:
        raise ValueError(f"parsing label {lab_path} is {arr.shape[1]}x{arr.shape[0]} (W x H) "
                         f"but its image {img_path} is {img_size[0]}x{img_size[1]}")
    return lip_to_parts(arr, source=lab_path)

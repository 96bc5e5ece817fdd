"""Paired transforms keep image, mask and part map aligned; values hand-checked."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from reidnb.data.transforms import (IMAGENET_MEAN, IMAGENET_STD, build_transforms,
                                    denormalize)

H, W = 32, 16
# white square at rows 2..9, cols 1..6 (inclusive) on black
R0, R1, C0, C1 = 2, 9, 1, 6


def _square():
    img = np.zeros((H, W, 3), np.uint8)
    img[R0:R1 + 1, C0:C1 + 1] = 255
    mask = np.zeros((H, W), np.uint8)
    mask[R0:R1 + 1, C0:C1 + 1] = 255
    parts = (mask > 0).astype(np.uint8) * 3
    return Image.fromarray(img), Image.fromarray(mask), Image.fromarray(parts)


def _white(img: torch.Tensor) -> torch.Tensor:
    """Boolean [H, W]: pixels that were white (255) before normalisation."""
    return (denormalize(img) > 0.99).all(dim=0)


def test_test_transform_values_and_determinism():
    img, mask, parts = _square()
    t = build_transforms(H, W, is_train=False)
    a, b = t(img, mask, parts), t(img, mask, parts)
    assert a["img"].dtype == torch.float32 and a["img"].shape == (3, H, W)
    assert torch.equal(a["img"], b["img"])
    black = torch.tensor([-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)])
    white = torch.tensor([(1 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)])
    torch.testing.assert_close(a["img"][:, 0, 0], black)        # -2.1179, -2.0357, -1.8044
    torch.testing.assert_close(a["img"][:, R0, C0], white)      # 2.2489, 2.4286, 2.6400
    assert a["mask"].dtype == torch.float32 and a["mask"].shape == (1, H, W)
    assert a["parts"].dtype == torch.int64 and a["parts"].shape == (H, W)
    expected = torch.zeros(H, W, dtype=torch.bool)
    expected[R0:R1 + 1, C0:C1 + 1] = True
    assert torch.equal(a["mask"][0].bool(), expected)
    assert torch.equal(a["parts"], expected.long() * 3)
    assert t(img)["mask"] is None and t(img)["parts"] is None


def test_flip_moves_image_mask_and_parts_together():
    img, mask, parts = _square()
    t = build_transforms(H, W, is_train=True, flip_p=1.0, pad=0)
    out = t(img, mask, parts)
    expected = torch.zeros(H, W, dtype=torch.bool)
    expected[R0:R1 + 1, W - 1 - C1:W - C0] = True     # cols 9..14 after the flip
    assert torch.equal(_white(out["img"]), expected)
    assert torch.equal(out["mask"][0].bool(), expected)
    assert torch.equal(out["parts"] == 3, expected)


def test_resize_uses_nearest_for_mask_and_parts():
    img, mask, parts = _square()
    t = build_transforms(2 * H, 2 * W, is_train=False)
    out = t(img, mask, parts)
    assert set(out["mask"].unique().tolist()) == {0.0, 1.0}
    assert set(out["parts"].unique().tolist()) == {0, 3}
    expected = torch.zeros(2 * H, 2 * W, dtype=torch.bool)
    expected[2 * R0:2 * R1 + 2, 2 * C0:2 * C1 + 2] = True   # rows 4..19, cols 2..13
    assert torch.equal(out["mask"][0].bool(), expected)
    assert torch.equal(out["parts"] == 3, expected)


def test_pad_and_random_crop_keep_alignment():
    img, mask, parts = _square()
    t = build_transforms(H, W, is_train=True, flip_p=0.5, pad=4)
    offsets = set()
    for seed in range(25):
        torch.manual_seed(seed)
        out = t(img, mask, parts)
        m = out["mask"][0].bool()
        assert torch.equal(_white(out["img"]), m), f"seed {seed}: image and mask differ"
        assert torch.equal(out["parts"] == 3, m)
        assert set(out["parts"].unique().tolist()) <= {0, 3}
        rows, cols = torch.nonzero(m, as_tuple=True)
        offsets.add((rows.min().item(), cols.min().item()))
        # the padding is black in the image (normalised black) and 0 in mask/parts
    assert len(offsets) > 3  # the crop really moves the square


def test_random_erasing_touches_the_image_only():
    img = Image.new("RGB", (W, H), (255, 255, 255))
    mask = Image.new("L", (W, H), 255)
    base = build_transforms(H, W, is_train=True, flip_p=0.0, pad=0)
    erase = build_transforms(H, W, is_train=True, flip_p=0.0, pad=0, random_erasing=1.0)
    a = base(img, mask)
    torch.manual_seed(0)
    b = erase(img, mask)
    erased = (b["img"] == 0).all(dim=0)            # filled with 0 = ImageNet mean colour
    frac = erased.float().mean().item()
    assert 0.02 <= frac <= 0.4 + 1e-6
    rows, cols = torch.nonzero(erased, as_tuple=True)
    box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
    assert box.item() == erased.sum().item()       # one rectangle
    assert torch.equal(b["img"][:, ~erased], a["img"][:, ~erased])
    assert torch.equal(b["mask"], a["mask"]) and b["mask"].eq(1).all()


def test_mask_formats_and_errors():
    img, _, _ = _square()
    t = build_transforms(H, W, is_train=False)
    m01 = np.zeros((H, W), np.uint8)
    m01[:5] = 1
    assert t(img, mask=m01)["mask"][0, :5].eq(1).all()     # 0/1 masks accepted too
    assert t(img, mask=m01)["mask"][0, 5:].eq(0).all()
    with pytest.raises(ValueError, match="same size"):
        t(img, mask=Image.new("L", (W, H // 2)))
    with pytest.raises(ValueError, match="both height and width"):
        build_transforms(H, None, is_train=False)
    with pytest.raises(ValueError, match="probability"):
        build_transforms(H, W, is_train=True, random_erasing=1.5)

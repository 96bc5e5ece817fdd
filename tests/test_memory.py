"""The in-memory image path (reidnb.data.memory) against the file pipeline it replaces."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from reidnb.data import memory
from reidnb.data.datasets import ImageDataset, Record
from reidnb.data.memory import BatchTransform, MemoryDataset, decoded
from reidnb.data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_transforms

H, W = 32, 16


@pytest.fixture()
def records(tmp_path):
    """6 images of H x W with a mask (0/255, green > 127) and a part map (red // 32), so
    every geometric step can be checked pixel by pixel (at H x W, Resize leaves them as
    they are; other sizes resize the labels nearest and the image bilinearly)."""
    rng = np.random.default_rng(0)
    out = []
    for i in range(6):
        img = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        p = tmp_path / f"{i:04d}_c1s1_000001_00.png"
        Image.fromarray(img).save(p)
        m = tmp_path / f"{i}_mask.png"
        Image.fromarray(((img[..., 1] > 127) * 255).astype(np.uint8)).save(m)
        q = tmp_path / f"{i}_parts.png"
        Image.fromarray((img[..., 0] // 32).astype(np.uint8)).save(q)
        out.append(Record(str(p), pid=i % 3 + 1, camid=i // 3, mask=str(m), parts=str(q)))
    memory.clear_cache()
    yield out
    memory.clear_cache()


def _pixels(x: torch.Tensor) -> torch.Tensor:
    """Normalised float [B, 3, h, w] back to 0..255 integers."""
    m = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    s = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x * s + m).mul(255).round().to(torch.int64)


def test_cache_holds_the_file_pipelines_resized_bytes(records):
    d = decoded(records, H, W, load_mask=True, load_parts=True)
    assert d.images.dtype == torch.uint8 and d.images.shape == (6, 3, H, W)
    assert d.masks.shape == (6, 1, H, W) and d.parts.shape == (6, H, W)
    assert d.nbytes == 6 * (3 + 1 + 1) * H * W
    # test pipeline of the files = the cached bytes, scaled and normalised
    files = ImageDataset(records, build_transforms(H, W, is_train=False))
    mem = MemoryDataset(records, H, W)
    batch = BatchTransform(False)([mem[i] for i in range(6)])
    ref = torch.stack([files[i]["img"] for i in range(6)])
    assert torch.allclose(batch["img"], ref, atol=1e-6)
    assert torch.equal(_pixels(batch["img"]), d.images.to(torch.int64))
    assert decoded(records, H, W, load_mask=True, load_parts=True) is d   # cached
    assert decoded(records, H + 2, W) is not d
    # three entries: with labels, image only (MemoryDataset above), image only at H + 2
    assert memory.cache_bytes() == d.nbytes + 6 * 3 * H * W + 6 * 3 * (H + 2) * W


def test_train_geometry_moves_image_mask_and_parts_together(records):
    mem = MemoryDataset(records, H, W, load_mask=True, load_parts=True)
    items = [mem[i] for i in range(6)] * 12          # 72 draws
    torch.manual_seed(0)
    out = BatchTransform(True, flip_p=0.5, pad=4)(items)
    assert out["img"].shape == (72, 3, H, W) and out["img"].dtype == torch.float32
    assert out["parts"].dtype == torch.int64 and out["mask"].dtype == torch.float32
    assert set(out["mask"].unique().tolist()) <= {0.0, 1.0}
    px = _pixels(out["img"])
    # zero padding is 0 in pixel space in all three; elsewhere the labels follow the image
    pad = (px == 0).all(1)
    assert torch.equal(out["parts"][~pad], (px[:, 0] // 32)[~pad])
    assert torch.equal(out["mask"][:, 0][~pad], (px[:, 1] > 127).float()[~pad])
    # every output is a crop of the (possibly mirrored) padded cached image
    flipped = offsets = 0
    src = mem.data.images.to(torch.int64)
    for k in range(72):
        base = src[k % 6]
        hits = []
        for f, im in ((0, base), (1, base.flip(-1))):
            padded = torch.nn.functional.pad(im, (4, 4, 4, 4))
            hits += [(f, y, x) for y in range(9) for x in range(9)
                     if torch.equal(padded[:, y:y + H, x:x + W], px[k])]
        assert hits, f"output {k} is no crop of its padded image"
        flipped += hits[0][0]
        offsets += hits[0][1]
    assert 20 <= flipped <= 52            # Binomial(72, 0.5): P(outside) < 1e-3
    assert 3.2 <= offsets / 72 <= 4.8      # uniform 0..8 has mean 4, sd of the mean 0.30


def test_no_flip_no_pad_is_the_test_pipeline(records):
    mem = MemoryDataset(records, H, W)
    items = [mem[i] for i in range(6)]
    a = BatchTransform(True, flip_p=0.0, pad=0)(items)["img"]
    b = BatchTransform(False)(items)["img"]
    assert torch.equal(a, b)
    c = BatchTransform(True, flip_p=1.0, pad=0)(items)["img"]
    assert torch.equal(c, b.flip(-1))


def test_random_erasing_boxes(records):
    mem = MemoryDataset(records, H, W)
    items = [mem[i] for i in range(6)] * 10
    torch.manual_seed(1)
    none = BatchTransform(True, flip_p=0.0, pad=0, random_erasing=0.0)(items)["img"]
    torch.manual_seed(1)
    every = BatchTransform(True, flip_p=0.0, pad=0, random_erasing=1.0)(items)["img"]
    zero = (every == 0).all(1) & (none != 0).any(1)      # erased pixels
    frac = zero.flatten(1).float().mean(1)
    # area 0.02..0.4 of the image (rounded box sides), one box per image, every image
    assert (frac > 0.01).all() and (frac < 0.45).all()
    for k in range(60):
        ys, xs = torch.nonzero(zero[k], as_tuple=True)
        box = (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
        assert box == len(ys), f"image {k}: the erased pixels are not one rectangle"
    with pytest.raises(ValueError, match="random_erasing"):
        BatchTransform(True, random_erasing=1.5)


def test_evaluate_from_memory_matches_files(records):
    from reidnb.data.datasets import ReIDDataset
    from reidnb.evaluation.features import evaluate

    ds = ReIDDataset("t", records[0].path, "synthetic", train=[], query=records[:3],
                     gallery=records, num_train_pids=0, num_train_cams=1)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten())
    tf = build_transforms(H, W, is_train=False)
    for flip in (False, True):
        a = evaluate(net, ds, tf, flip=flip)
        b = evaluate(net, ds, tf, flip=flip, memory=True)
        assert np.allclose(a.distmat, b.distmat, atol=1e-5)
    with pytest.raises(ValueError, match="height and width"):
        evaluate(net, ds, None, memory=True)

"""Tests of reidnb.data.datasets.cifar100: locating CIFAR-100 (never downloaded at quick),
the dict dataset and the transforms."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from reidnb.core.config import RunConfig
from reidnb.data.datasets import cifar100 as C
from reidnb.data.transforms import IMAGENET_MEAN, IMAGENET_STD


def test_cifar_is_found_or_not_run_and_never_downloaded_at_quick(tmp_path):
    cfg = RunConfig.make("quick", device="cpu", data_root=str(tmp_path))
    root, msg = C.prepare_cifar100(cfg, download=True)
    assert root is None and "refused" in msg and "quick" in msg
    root, msg = C.prepare_cifar100(cfg)
    assert root is None and "cifar_download=False" in msg
    d = tmp_path / "cifar100" / "cifar-100-python"
    d.mkdir(parents=True)
    for f in ("train", "test", "meta"):
        (d / f).write_bytes(b"")
    assert C.find_cifar100(tmp_path) == tmp_path / "cifar100"
    assert C.prepare_cifar100(cfg)[0] == tmp_path / "cifar100"


def test_dict_dataset_and_transforms():
    black = Image.fromarray(np.zeros((32, 32, 3), np.uint8))
    base = [(black, 3), (black, 7), (black, 99)]
    ds = C.CifarDictDataset(base, C.cifar_transforms(64, False), indices=[2, 0])
    assert len(ds) == 2
    item = ds[0]
    assert item["pid"].dtype == torch.int64 and int(item["pid"]) == 99
    assert item["img"].shape == (3, 64, 64) and item["img"].dtype == torch.float32
    want = torch.tensor([-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)])
    torch.testing.assert_close(item["img"][:, 10, 10], want)
    torch.manual_seed(0)
    assert C.cifar_transforms(32, True)(black).shape == (3, 32, 32)
    assert len(C.CifarDictDataset(base, C.cifar_transforms(32, False))) == 3

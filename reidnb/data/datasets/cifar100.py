"""CIFAR-100 for SAL Table 4 (classification, not re-ID): locate, prepare, wrap, transform.

SAL (004 §4.5, Table 4) also reports the error rate of its networks on CIFAR-100
(Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", 2009). The images are
read with ``torchvision.datasets.CIFAR100`` from a ``cifar-100-python/`` folder; this
module finds that folder (:func:`find_cifar100`), downloads it only when asked at the
paper profile (:func:`prepare_cifar100`), turns (image, label) pairs into the Trainer's dict
batches (:class:`CifarDictDataset`) and builds the train/test transforms
(:func:`cifar_transforms`, ImageNet statistics of :mod:`reidnb.data.transforms`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from ..transforms import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["find_cifar100", "prepare_cifar100", "CifarDictDataset", "cifar_transforms"]


def find_cifar100(data_root: str | Path | None) -> Path | None:
    """The folder to pass to ``torchvision.datasets.CIFAR100(root=...)``, or None.

    Looks for ``cifar-100-python/{train,test,meta}`` under ``<data_root>`` and
    ``<data_root>/cifar100`` (``data_root`` None: the project's ``data/``).
    """
    from ...core.config import PROJECT_ROOT

    base = Path(data_root) if data_root else PROJECT_ROOT / "data"
    for root in (base, base / "cifar100"):
        d = root / "cifar-100-python"
        if all((d / f).is_file() for f in ("train", "test", "meta")):
            return root
    return None


def prepare_cifar100(cfg: Any, download: bool = False) -> tuple[Path | None, str]:
    """Locate CIFAR-100 for Table 4; download it only when asked at the paper profile.

    Args:
        cfg: a run config (``reidnb.core.config``) with ``data_root`` and ``profile``.
        download: allow the download (only honoured when ``cfg.profile == "paper"``);
            it goes to ``<data_root or PROJECT_ROOT/data>/cifar100``.

    Returns:
        (root or None, a sentence saying what was found or why Table 4 is not run).

    Raises:
        whatever ``torchvision.datasets.CIFAR100(download=True)`` raises when an allowed
        download fails (no network, checksum mismatch).
    """
    root = find_cifar100(cfg.data_root)
    if root is not None:
        return root, f"CIFAR-100 found under {root}"
    base = Path(cfg.data_root) if cfg.data_root else None
    where = f"{base or 'data/'} (or its cifar100/ subfolder)"
    if not download:
        return None, (f"Table 4 not run: CIFAR-100 (cifar-100-python/) is not under {where} "
                      "and cifar_download=False")
    if cfg.profile != "paper":
        return None, (f"Table 4 not run: CIFAR-100 is not under {where}; downloads are "
                      f"refused at the {cfg.profile!r} profile (only profile='paper' with "
                      "cifar_download=True downloads)")
    from torchvision.datasets import CIFAR100

    from ...core.config import PROJECT_ROOT
    root = (base or PROJECT_ROOT / "data") / "cifar100"
    CIFAR100(str(root), train=True, download=True)
    CIFAR100(str(root), train=False, download=True)
    return root, f"CIFAR-100 downloaded to {root}"


class CifarDictDataset(torch.utils.data.Dataset):
    """(image, label) dataset -> the Trainer's dict batches.

    Item: a dict with ``img`` = ``transform(image)`` (float32 [3, S, S] with
    :func:`cifar_transforms`) and ``pid`` = the class label 0..99 as an int64 scalar
    tensor (the key the Trainer's cross-entropy term reads).

    Args:
        base: an indexable (image, label) dataset, e.g. ``torchvision.datasets.CIFAR100``.
        transform: applied to each image.
        indices: the positions of ``base`` to serve (a subset); None = all.
    """

    def __init__(self, base: Any, transform: Callable, indices: Sequence[int] | None = None):
        self.base, self.transform = base, transform
        self.indices = list(range(len(base))) if indices is None else list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict:
        img, label = self.base[self.indices[i]]
        return {"img": self.transform(img), "pid": torch.tensor(int(label))}


def cifar_transforms(size: int, train: bool) -> Callable:
    """CIFAR-100 transforms (torchvision.transforms.v2): PIL 32x32 RGB -> float32 [3, S, S].

    Train: random crop 32 with padding 4 and horizontal flip (the usual CIFAR recipe);
    both: resize to ``size`` x ``size`` pixels when ``size != 32`` (antialiased), values in
    [0, 1] normalised with the ImageNet mean/std (:data:`reidnb.data.transforms.IMAGENET_MEAN`).
    """
    from torchvision.transforms import v2 as T

    ops = [T.ToImage(), T.ToDtype(torch.float32, scale=True)]
    if train:
        ops += [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()]
    if size != 32:
        ops.append(T.Resize((size, size), antialias=True))
    ops.append(T.Normalize(list(IMAGENET_MEAN), list(IMAGENET_STD)))
    return T.Compose(ops)

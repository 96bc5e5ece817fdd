"""CIFAR-100 for SAL Table 4 (classification, not re-ID): locate, prepare, wrap, transform.

SAL (004 §4.5, Table 4) also reports the error rate of its networks on CIFAR-100
(Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", 2009). The images are
read with ``torchvision.datasets.CIFAR100`` from a ``cifar-100-python/`` folder; this
module finds that folder (:func:`find_cifar100`), downloads it only when asked at the
paper profile (:func:`prepare_cifar100`), turns (image, label) pairs into the Trainer's dict
batches (:class:`CifarDictDataset`) and builds the train/test transforms
(:func:`cifar_transforms`, ImageNet statistics of :mod:`reidnb.data.transforms`).

:func:`open_cifar100` reads the same files as ``torchvision.datasets.CIFAR100`` (same
items) but checks their structure instead of torchvision's md5 of the official files, so
a fixture (``reidnb.data.synthetic.fixtures``) or a re-pickled copy loads too; pass
``verify_md5=True`` for torchvision's check.
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..transforms import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["find_cifar100", "prepare_cifar100", "CifarDictDataset", "cifar_transforms",
           "Cifar100Files", "open_cifar100"]


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


class Cifar100Files(torch.utils.data.Dataset):
    """CIFAR-100 read from ``<root>/cifar-100-python/{train|test, meta}`` as torchvision does.

    Item ``i``: ``(PIL.Image RGB 32 x 32, fine label int 0..99)``, as
    ``torchvision.datasets.CIFAR100`` (whose file format and reading this follows).
    Attributes: ``data`` uint8 [N, 32, 32, 3] (HWC), ``targets`` list[int] (fine labels),
    ``classes`` list[str] (``fine_label_names`` of ``meta``), ``root``, ``train``.

    Raises (on construction):
        FileNotFoundError: a file is missing (named). ValueError: a file that is not a
        CIFAR pickle: unreadable, ``data`` not uint8 [N, 3072], labels not N ints in
        0..99, or ``meta`` without 100 ``fine_label_names`` (the message names the file).
    """

    def __init__(self, root: str | Path, train: bool = True):
        self.root, self.train = Path(root), bool(train)
        folder = self.root / "cifar-100-python"
        path = folder / ("train" if train else "test")
        entry = _read_pickle(path)
        data, labels = entry.get("data"), entry.get("fine_labels")
        data = np.asarray(data) if data is not None else None
        if data is None or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
            raise ValueError(f"{path}: 'data' must be uint8 [N, 3072] (CIFAR rows: 1024 R, "
                             f"1024 G, 1024 B), got "
                             f"{None if data is None else (data.dtype, data.shape)}")
        if (not isinstance(labels, (list, tuple, np.ndarray)) or len(labels) != len(data)
                or any(not 0 <= int(v) < 100 for v in labels)):
            raise ValueError(f"{path}: 'fine_labels' must be {len(data)} ints in 0..99")
        self.data = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        self.targets = [int(v) for v in labels]
        meta = _read_pickle(folder / "meta")
        names = meta.get("fine_label_names")
        if not isinstance(names, (list, tuple)) or len(names) != 100:
            raise ValueError(f"{folder / 'meta'}: expected 100 'fine_label_names'")
        self.classes = [str(n) for n in names]

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int):
        from PIL import Image

        return Image.fromarray(self.data[i]), self.targets[i]


def _read_pickle(path: Path) -> dict:
    """A CIFAR pickle (latin1, as torchvision reads it) as a dict; errors name the file."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; expected torchvision's cifar-100-python/ "
                                "files (train, test, meta)")
    try:
        with open(path, "rb") as fh:
            entry = pickle.load(fh, encoding="latin1")
    except Exception as e:  # noqa: BLE001 - any unpickling failure is a bad file
        raise ValueError(f"{path}: not a readable CIFAR pickle ({type(e).__name__}: {e})") from e
    if not isinstance(entry, dict):
        raise ValueError(f"{path}: expected a pickled dict, got {type(entry).__name__}")
    return entry


def open_cifar100(root: str | Path, train: bool = True, *, verify_md5: bool = False):
    """The CIFAR-100 split under ``root`` (what :func:`find_cifar100` returns).

    Args:
        root: folder holding ``cifar-100-python/``.
        train: the train (50,000 images) or test (10,000) split.
        verify_md5: return ``torchvision.datasets.CIFAR100(root, train, download=False)``,
            which checks the md5 of the official files (a fixture fails it).

    Returns:
        :class:`Cifar100Files` (or torchvision's CIFAR100 with ``verify_md5``): items
        ``(PIL image 32 x 32, fine label)``.

    Raises:
        as :class:`Cifar100Files`; with ``verify_md5`` torchvision's RuntimeError.
    """
    if verify_md5:
        from torchvision.datasets import CIFAR100

        return CIFAR100(str(root), train=train, download=False)
    return Cifar100Files(root, train)


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

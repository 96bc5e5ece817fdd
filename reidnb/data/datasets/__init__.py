"""Dataset registry: ``load_dataset(name, data_root)`` and the names it accepts.

Re-ID datasets are plain lists of records, checked on load (DESIGN.md "Data"):

- :mod:`.base`: :class:`Record`, :class:`ReIDDataset`, :class:`ImageDataset`,
  :func:`subset_train`, :func:`subset_test` and the Market-1501 layout constants;
- :mod:`.reid_sets`: Market-1501, DukeMTMC-reID, CUHK03-NP and the synthetic set
  (the ``load_dataset`` names, :data:`DATASET_NAMES`);
- :mod:`.small_sets`: the small-scale sets of MaskReID Table 1 (VIPeR, PRID, 3DPeS, iLIDS,
  CUHK01, CUHK03 classic, Shinpuhkan) and DGD's joint training set;
- :mod:`.cifar100`: CIFAR-100 for SAL Table 4 (classification, not re-ID).

Every name importable from the former single module ``reidnb.data.datasets`` is still
importable from here (private ``_open_rgb`` / ``_open_label`` included).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from .base import (IMAGE_EXTENSIONS, MULTI_QUERY_DIR, PID_CAM_PATTERN, SPLIT_DIRS,
                   STAT_QUANTITIES, ImageDataset, Record, ReIDDataset, subset_test,
                   subset_train)
from .base import _open_label, _open_rgb  # noqa: F401  (private, kept importable from here)
from .cifar100 import (Cifar100Files, CifarDictDataset, cifar_transforms, find_cifar100,
                       open_cifar100, prepare_cifar100)
from .reid_sets import REID_SET_NAMES, load_reid_set, load_synthetic_set
from .small_sets import (SMALL_SET_LOADERS, SMALL_SETS, find_small_sets, joint_train_set,
                         load_small_set)

__all__ = [
    "Record", "ReIDDataset", "DATASET_NAMES", "load_dataset", "subset_train", "subset_test",
    "ImageDataset", "STAT_QUANTITIES", "SPLIT_DIRS", "MULTI_QUERY_DIR", "PID_CAM_PATTERN",
    "IMAGE_EXTENSIONS", "SMALL_SETS", "SMALL_SET_LOADERS", "load_small_set", "find_small_sets",
    "joint_train_set", "find_cifar100", "prepare_cifar100", "CifarDictDataset",
    "cifar_transforms", "open_cifar100", "Cifar100Files",
]


def _synthetic(data_root: Path, *, synthetic_size: str, seed: int,
               verbose: bool) -> ReIDDataset:
    return load_synthetic_set(data_root, size=synthetic_size, seed=seed, verbose=verbose)


def _real(name: str) -> Callable[..., ReIDDataset]:
    def load(data_root: Path, **_) -> ReIDDataset:
        return load_reid_set(name, data_root)
    load.__name__ = f"load_{name.replace('-', '_')}"
    return load


#: ``load_dataset`` name -> loader ``fn(data_root, *, synthetic_size, seed, verbose)``.
_LOADERS: dict[str, Callable[..., ReIDDataset]] = {
    **{name: _real(name) for name in REID_SET_NAMES}, "synthetic": _synthetic}

#: Names accepted by :func:`load_dataset`.
DATASET_NAMES = tuple(_LOADERS)


def load_dataset(name: str, data_root: str | os.PathLike | None = None, *,
                 verbose: bool = True, synthetic_size: str = "quick", seed: int = 0
                 ) -> ReIDDataset:
    """Load a re-ID dataset's record lists (no image is decoded).

    Args:
        name: one of :data:`DATASET_NAMES`.
        data_root: the dataset folder itself (holding ``bounding_box_train/``, ``query/``,
            ``bounding_box_test/`` and, for Market-1501, ``gt_bbox/``) or a folder holding it
            under its usual name (``market1501/``, ``Market-1501-v15.09.15/``,
            ``dukemtmc-reid/DukeMTMC-reID/``, ``DukeMTMC-reID/``, ``cuhk03-np/labeled/``,
            ``cuhk03-np/detected/``, ...). ``None``: ``PROJECT_ROOT/data``. For
            ``synthetic`` the set lives in ``<data_root>/synthetic/<size>_seed<seed>/`` and is
            generated there (``reidnb.data.synthetic.generate_synthetic``) when its
            ``COMPLETE`` marker is missing or the generator's ``is_complete`` rejects it
            (another generator version); ``data_root`` may also be one generated set
            itself (used as it is).
        verbose: print :meth:`ReIDDataset.summary` (measured vs published counts, skips).
        synthetic_size: size preset of the synthetic generator (``"smoke"``, ``"quick"``...).
        seed: seed of the synthetic generator (real datasets ignore it).

    Returns:
        :class:`ReIDDataset`.

    Raises:
        KeyError: unknown ``name``.
        FileNotFoundError: the dataset folder or one of its split folders is missing.
        ValueError: an empty split folder, a file name not matching the dataset's pattern,
            or a camera index out of range (each message names the path).
    """
    if name not in _LOADERS:
        raise KeyError(f"unknown dataset {name!r}; expected one of {list(DATASET_NAMES)}")
    if data_root is None:
        from ...core.config import PROJECT_ROOT

        data_root = PROJECT_ROOT / "data"
    ds = _LOADERS[name](Path(data_root).expanduser(), synthetic_size=synthetic_size,
                        seed=seed, verbose=verbose)
    if verbose:
        print(ds.summary())
    return ds

"""Data pipeline: dataset records, paired transforms and identity samplers.

- :mod:`reidnb.data.datasets`: ``load_dataset``, ``subset_train``, ``ImageDataset``,
  ``Record``, ``ReIDDataset`` (Market-1501, DukeMTMC-reID, CUHK03-NP, synthetic); the
  small-scale sets of MaskReID Table 1 and CIFAR-100 (SAL Table 4).
- :mod:`reidnb.data.parts`: person masks and 7-part maps (LIP labels, the light part
  parser, FCN) cached as PNG, ``attach_masks`` (imported on demand).
- :mod:`reidnb.data.transforms`: ``build_transforms`` -> ``PairedTransform``.
- :mod:`reidnb.data.samplers`: ``RandomIdentitySampler`` (P x K), ``AnchorRankingSampler``
  (MaskReID P/N).
- :mod:`reidnb.data.synthetic`: the procedural generator (imported on demand).
"""
from .datasets import (DATASET_NAMES, ImageDataset, Record, ReIDDataset, load_dataset,
                       subset_train)
from .samplers import AnchorRankingSampler, RandomIdentitySampler
from .transforms import PairedTransform, build_transforms, denormalize

__all__ = ["DATASET_NAMES", "ImageDataset", "Record", "ReIDDataset", "load_dataset",
           "subset_train", "AnchorRankingSampler", "RandomIdentitySampler",
           "PairedTransform", "build_transforms", "denormalize"]

"""Person masks and 7-part maps: labels, the light part parser, FCN masks and their cache.

- :mod:`.labels`: the part scheme (:data:`PART_NAMES`, :data:`PART_COLORS`,
  :data:`NUM_PARTS`), LIP labels -> part maps (:func:`lip_to_parts`),
  :func:`masks_from_parts`, :func:`colorize_parts`;
- :mod:`.parser`: :class:`PartParser`, :func:`build_parser`, :func:`train_parser` (through
  :class:`reidnb.core.engine.Trainer`), :func:`evaluate_parser`, :func:`save_parser`,
  :func:`load_parser`, :func:`predict_parts`;
- :mod:`.fcn`: torchvision FCN person masks (:func:`predict_fcn_masks`);
- :mod:`.pose`: COCO-17 keypoints -> 7 parts (:func:`keypoints_to_parts`) and torchvision's
  keypoint R-CNN (:func:`predict_pose_parts`);
- :mod:`.store`: the PNG cache folders;
- :mod:`.sources`: the labelled set a parser trains on (own, given, or a sibling under the
  data root), the shared parser (:func:`obtain_parser`), :class:`NoMaskSourceError`;
- :mod:`.cache`: :func:`attach_masks` (the synthetic -> labels -> parser -> torchvision
  chain), :func:`attach_small_set_masks`.

Layering: imports ``reidnb.core``, ``reidnb.data.datasets`` / ``.transforms`` and
``reidnb.evaluation.segmentation`` only.
"""
from __future__ import annotations

from .cache import SOURCES, attach_masks, attach_small_set_masks
from .fcn import predict_fcn_masks
from .labels import (CHEST, FOOT, HEAD, LABEL_DIR_SUFFIX, LIP_LABELS, LOWER_ARM, LOWER_LEG,
                     MAPPING_VERSION, NUM_PARTS, PART_COLORS, PART_NAMES, UPPER_ARM,
                     UPPER_LEG, colorize_parts, label_path, lip_to_parts, masks_from_parts,
                     read_label_parts)
from .parser import (PARSER_SIZE, PartCrossEntropy, PartParser, build_parser,
                     evaluate_parser, load_parser, predict_parts, save_parser, train_parser)
from .pose import COCO_KEYPOINTS, keypoints_to_parts, predict_pose_parts
from .sources import NoMaskSourceError, find_label_set, obtain_parser
from .store import default_cache_root, has_exact_maps

__all__ = [
    "PART_NAMES", "PART_COLORS", "NUM_PARTS", "LIP_LABELS", "MAPPING_VERSION",
    "LABEL_DIR_SUFFIX", "HEAD", "UPPER_ARM", "LOWER_ARM", "CHEST", "UPPER_LEG", "LOWER_LEG",
    "FOOT", "lip_to_parts", "masks_from_parts", "colorize_parts", "label_path",
    "read_label_parts", "PARSER_SIZE", "PartParser", "PartCrossEntropy", "build_parser",
    "train_parser", "evaluate_parser", "predict_parts", "save_parser", "load_parser",
    "predict_fcn_masks", "SOURCES", "attach_masks", "obtain_parser", "attach_small_set_masks",
    "default_cache_root", "has_exact_maps", "COCO_KEYPOINTS", "keypoints_to_parts",
    "predict_pose_parts", "NoMaskSourceError", "find_label_set",
]

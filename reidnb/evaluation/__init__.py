"""Person re-ID evaluation: features, distances, CMC / mAP / mINP, re-ranking, retrieval.

Re-exports the public API of the package's modules, so ``from reidnb.evaluation import X``
works for every name below:

- :mod:`.rank`: :class:`RankResult`, :func:`evaluate_rank` (Market-1501 and CUHK03
  protocols, per-query AP).
- :mod:`.rerank`: :func:`re_ranking` (k-reciprocal, Zhong et al., CVPR 2017).
- :mod:`.features`: :class:`Features`, :class:`EvalResult`, :data:`SETTINGS`,
  :func:`compute_distance_matrix`, :func:`extract_features`,
  :func:`multi_query_features`, :func:`evaluate_features`, :func:`evaluate`.
- :mod:`.retrieval`: the junk rule (:func:`junk_mask`) and what is built on it
  (:func:`top1_matches`, :func:`pick_top1_queries`, :func:`pick_queries`,
  :func:`pair_distances`, :func:`chance_level`).
- :mod:`.feature_file`: :func:`save_feature_file`, :func:`load_feature_file`,
  :func:`evaluate_feature_file` (query / gallery features in one ``.npz``, the file
  ``python -m reidnb features`` writes).
- :mod:`.segmentation`: :func:`confusion_matrix`, :func:`segmentation_scores`,
  :func:`foreground_iou` (part-map scores).

Nothing here imports ``reidnb.papers``, ``reidnb.viz`` or a recipe module.
"""
from __future__ import annotations

from .features import (SETTINGS, EvalResult, Features, compute_distance_matrix, evaluate,
                       evaluate_features, extract_features, multi_query_features)
from .feature_file import (FEATURE_KEYS, evaluate_feature_file, load_feature_file,
                           save_feature_file)
from .rank import RankResult, evaluate_rank
from .rerank import re_ranking
from .retrieval import (chance_level, junk_mask, pair_distances, pick_queries,
                        pick_top1_queries, top1_matches)
from .segmentation import confusion_matrix, foreground_iou, segmentation_scores

__all__ = [
    "RankResult",
    "Features",
    "EvalResult",
    "SETTINGS",
    "evaluate_rank",
    "re_ranking",
    "compute_distance_matrix",
    "extract_features",
    "multi_query_features",
    "evaluate_features",
    "evaluate",
    "junk_mask",
    "top1_matches",
    "pick_top1_queries",
    "pick_queries",
    "pair_distances",
    "chance_level",
    "confusion_matrix",
    "segmentation_scores",
    "foreground_iou",
    "FEATURE_KEYS",
    "save_feature_file",
    "load_feature_file",
    "evaluate_feature_file",
]

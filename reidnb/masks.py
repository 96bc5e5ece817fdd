"""TEMPORARY shim: ``reidnb.masks`` moved to :mod:`reidnb.data.parts`; this re-exports it.

Only here while the paper modules and notebooks still ``import reidnb.masks``; new code
imports from ``reidnb.data.parts``. Delete this file once nothing imports it. The names
below are every public name of the former module plus the private ones other code or
older tests used.
"""
from __future__ import annotations

from .data.parts import *  # noqa: F401,F403
from .data.parts import __all__ as _parts_all
from .data.parts.cache import _attach, _get_parser, _serve_predicted, _torch_threads  # noqa: F401
from .data.parts.fcn import _load_fcn, _try_load_fcn  # noqa: F401
from .data.parts.labels import (_LIP_ARMS, _LIP_CHEST, _LIP_FOOT, _LIP_HEAD,  # noqa: F401
                                _LIP_LEGS, _LIP_LUT, _longest_row_run, _split_rows)
from .data.parts.parser import (_CKPT_FORMAT, _LRASPP, _PARSERS, _ImageOnly,  # noqa: F401
                                _class_weights, _loader, _parser_id, _run)
from .data.parts.store import (_Store, _save_png, _split_dir, _stem_png)  # noqa: F401
from .data.parts.store import default_cache_root as _default_cache_root  # noqa: F401
from .data.parts.store import has_exact_maps as _has_exact  # noqa: F401
from .data.parts.labels import label_path as _label_path  # noqa: F401
from .data.parts.labels import read_label_parts as _read_label_parts  # noqa: F401
from .data.transforms import normalize as _normalize  # noqa: F401
from .evaluation.segmentation import foreground_iou as _fg_iou  # noqa: F401

__all__ = list(_parts_all)


def _confusion(pred, target, k: int = NUM_PARTS):  # noqa: F405
    """Former ``reidnb.masks._confusion``: int64 [k, k] confusion matrix."""
    from .evaluation.segmentation import confusion_matrix

    return confusion_matrix(pred, target, k)


def _scores(conf):
    """Former ``reidnb.masks._scores``: segmentation scores keyed by part name."""
    from .data.parts.labels import PART_NAMES
    from .evaluation.segmentation import segmentation_scores

    return segmentation_scores(conf, PART_NAMES)

"""Query / gallery features in one ``.npz`` file (torchreid's feature-extractor role).

``python -m reidnb features RUN --dataset ... --out feats.npz`` writes such a file with
:func:`save_feature_file`; :func:`evaluate_feature_file` evaluates it (CMC, mAP, mINP of
:func:`reidnb.evaluation.evaluate_features`) without the model, e.g. on another machine
or after re-ranking experiments.

File layout (``np.load(path, allow_pickle=False)`` reads it):

- ``qf`` float32 [Q, D], ``gf`` float32 [G, D]: the model's test-time features as extracted
  (not L2-normalised; the evaluation normalises them, as the notebooks' evaluation does);
- ``q_pids``, ``q_camids`` int64 [Q]; ``g_pids``, ``g_camids`` int64 [G];
- ``q_paths`` [Q], ``g_paths`` [G]: image paths (unicode str arrays);
- ``meta``: 0-d str, a JSON object (run folder, dataset, image size, flip, ...).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..core.utils import atomic_path, read_npz
from .features import EvalResult, Features, evaluate_features

__all__ = ["FEATURE_KEYS", "save_feature_file", "load_feature_file", "evaluate_feature_file"]

#: Arrays every feature file holds (besides ``meta``).
FEATURE_KEYS = ("qf", "gf", "q_pids", "g_pids", "q_camids", "g_camids", "q_paths", "g_paths")


def save_feature_file(path: str | Path, query: Features, gallery: Features, *,
                      meta: Mapping[str, Any] | None = None) -> Path:
    """Write query and gallery :class:`~reidnb.evaluation.Features` to ``path`` (atomically).

    Args:
        query, gallery: from :func:`reidnb.evaluation.extract_features` (feats float [N, D],
            pids / camids int [N], paths list of N str).
        meta: JSON-serialisable description stored as ``meta``.

    Returns:
        ``path``.

    Raises:
        ValueError: query and gallery features of different dimension.
    """
    qf = np.asarray(query.feats.detach().cpu().float().numpy() if hasattr(query.feats, "detach")
                    else query.feats, dtype=np.float32)
    gf = np.asarray(gallery.feats.detach().cpu().float().numpy()
                    if hasattr(gallery.feats, "detach") else gallery.feats, dtype=np.float32)
    if qf.ndim != 2 or gf.ndim != 2 or qf.shape[1] != gf.shape[1]:
        raise ValueError(f"query / gallery features must be [Q, D] / [G, D] with one D, got "
                         f"{qf.shape} / {gf.shape}")
    arrays = {"qf": qf, "gf": gf,
              "q_pids": np.asarray(query.pids, dtype=np.int64),
              "g_pids": np.asarray(gallery.pids, dtype=np.int64),
              "q_camids": np.asarray(query.camids, dtype=np.int64),
              "g_camids": np.asarray(gallery.camids, dtype=np.int64),
              "q_paths": np.asarray([str(p) for p in query.paths], dtype=str),
              "g_paths": np.asarray([str(p) for p in gallery.paths], dtype=str),
              "meta": np.asarray(json.dumps(dict(meta or {}), default=str))}
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    return path


def load_feature_file(path: str | Path) -> dict[str, Any]:
    """The arrays of a feature file (``meta`` decoded to a dict), checked.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a readable ``.npz``, a missing key, or lengths that disagree (the
            message names the file and what was expected).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"feature file {path} does not exist (write one with "
                                "python -m reidnb features RUN --dataset ... --out FILE)")
    d = read_npz(path, "feature file", "write it again with python -m reidnb features")
    missing = [k for k in FEATURE_KEYS if k not in d]
    if missing:
        raise ValueError(f"feature file {path}: missing arrays {missing}; expected "
                         f"{list(FEATURE_KEYS)} (+ meta)")
    for side in ("q", "g"):
        n = {k: len(d[f"{side}_{k}"]) for k in ("pids", "camids", "paths")}
        f = d[f"{side}f"]
        if f.ndim != 2 or any(v != f.shape[0] for v in n.values()):
            raise ValueError(f"feature file {path}: {side}f has shape {f.shape} but "
                             f"{side}_pids/camids/paths have lengths {n}")
    try:
        d["meta"] = json.loads(str(d["meta"])) if "meta" in d else {}
    except ValueError:
        d["meta"] = {}
    return d


def evaluate_feature_file(path: str | Path, **kw: Any) -> EvalResult:
    """Evaluate a feature file: :func:`reidnb.evaluation.evaluate_features` on its arrays.

    Args:
        kw: passed on (``normalize`` default True, ``metric``, ``rerank``, ``protocol``,
            ``max_rank``...).

    Returns:
        :class:`~reidnb.evaluation.EvalResult` (``results["single-query"].mAP`` in [0, 1]).

    Raises:
        the errors of :func:`load_feature_file` and :func:`evaluate_features`.
    """
    d = load_feature_file(path)
    return evaluate_features(d["qf"], d["gf"], d["q_pids"], d["g_pids"], d["q_camids"],
                             d["g_camids"], q_paths=list(d["q_paths"]),
                             g_paths=list(d["g_paths"]), **kw)

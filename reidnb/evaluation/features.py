"""Features to metrics: feature extraction, distances, and the evaluation of a model.

:func:`extract_features` runs a model over a loader (optionally flip-averaged, fast-reid's
flip test), :func:`compute_distance_matrix` gives Euclidean or cosine distances (torchreid
``torchreid/metrics/distance.py``), :func:`multi_query_features` averages Market-1501
multi-query groups, and :func:`evaluate_features` / :func:`evaluate` compute every setting
(single / multi query, with or without re-ranking) into an :class:`EvalResult`, which
round-trips through ``np.savez`` (:meth:`EvalResult.to_arrays`, :meth:`EvalResult.from_arrays`).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ._inputs import _as_ids
from .rank import RankResult, evaluate_rank
from .rerank import re_ranking

__all__ = [
    "SETTINGS",
    "Features",
    "EvalResult",
    "compute_distance_matrix",
    "extract_features",
    "multi_query_features",
    "evaluate_features",
    "evaluate",
]

#: Names of the settings in :attr:`EvalResult.results` (and rows of ``summary()``).
SETTINGS = ("single-query", "single-query+re-rank", "multi-query", "multi-query+re-rank")


class Features(NamedTuple):
    """Output of :func:`extract_features`.

    Attributes:
        feats: float32 CPU tensor [N, D] (as the model returns it, not normalised).
        pids, camids: int64 numpy arrays [N].
        paths: list of N image paths (``""`` where the batch had no ``path``).
    """

    feats: torch.Tensor
    pids: np.ndarray
    camids: np.ndarray
    paths: list


# ------------------------------------------------------------------------ distances


def compute_distance_matrix(a: Any, b: Any, metric: str = "euclidean") -> torch.Tensor:
    """Pairwise distances between the rows of ``a`` [M, D] and ``b`` [N, D].

    ``"euclidean"``: ``||a_i - b_j||_2`` (the distance itself, via
    ``sqrt(max(|a|^2 + |b|^2 - 2 a.b, 0))``). torchreid's ``metric='euclidean'`` returns the
    *squared* distance; the ranking is the same, and :func:`re_ranking` squares its input as
    Zhong et al.'s original code does with ``cdist`` distances, so feeding it these
    distances reproduces the original re-ranking exactly.
    ``"cosine"``: ``1 - cos(a_i, b_j)`` in [0, 2] (torchreid ``cosine_distance``).

    Returns:
        float32 tensor [M, N] on ``a``'s device (inputs of other float dtypes are cast).

    Raises:
        ValueError: not 2-D, different feature sizes (names both shapes), unknown metric.
    """
    a = torch.as_tensor(a)
    b = torch.as_tensor(b, device=a.device)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"features must be [M, D] and [N, D] with the same D, got "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")
    a, b = a.detach().float(), b.detach().float()
    if metric == "euclidean":
        out = (a.square().sum(1)[:, None] + b.square().sum(1)[None, :])
        out.addmm_(a, b.t(), alpha=-2.0)
        return out.clamp_min_(0).sqrt_()
    if metric == "cosine":
        return 1.0 - F.normalize(a, dim=1) @ F.normalize(b, dim=1).t()
    raise ValueError(f"metric must be 'euclidean' or 'cosine', got {metric!r}")



# ------------------------------------------------------------------------ features


def _model_device(model: torch.nn.Module) -> torch.device:
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def _flip_batch(batch: Mapping[str, Any]) -> dict:
    """Horizontal flip of every image-like tensor (>= 3 dims: img, mask, parts)."""
    return {k: (v.flip(-1) if isinstance(v, torch.Tensor) and v.ndim >= 3 else v)
            for k, v in batch.items()}


def _with_flips(batch: Mapping[str, Any], n: int) -> dict:
    """The batch followed by its horizontal flip (tensors with ``n`` rows doubled; image-like
    ones, >= 3 dims, mirrored in the second half)."""
    flipped = _flip_batch(batch)
    return {k: (torch.cat([v, flipped[k]]) if isinstance(v, torch.Tensor) and v.ndim >= 1
                and v.shape[0] == n else v) for k, v in batch.items()}


def _forward(model: torch.nn.Module, batch: Mapping[str, Any],
             input_fn: Callable | None) -> torch.Tensor:
    x = batch["img"] if input_fn is None else input_fn(batch)
    out = model(**x) if isinstance(x, Mapping) else model(x)
    if not isinstance(out, torch.Tensor) or out.ndim != 2:
        what = type(out).__name__ if not isinstance(out, torch.Tensor) else f"shape {tuple(out.shape)}"
        raise TypeError(f"{type(model).__name__} in eval mode must return a feature tensor "
                        f"[N, D], got {what}")
    return out


def extract_features(model: torch.nn.Module, loader: Any, device: Any = None, *,
                     flip: bool = False, input_fn: Callable | None = None) -> Features:
    """Test-time features of every image of ``loader`` (in loader order).

    The model runs in eval mode under ``torch.inference_mode`` (its training flag is
    restored afterwards) on ``device`` (default: the device of its parameters; a given
    device moves the model there). With ``flip=True`` the feature is the mean of the
    features of the batch and of its horizontal flip (fast-reid's flip test); every image-
    like tensor of the batch (``img``, ``mask``, ``parts``: 3 or more dims) is flipped.

    Args:
        model: returns a [N, D] tensor in eval mode (reidnb model contract).
        loader: iterable of dict batches (``ImageDataset`` + default collate) with ``img``,
            ``pid``, ``camid`` and optionally ``path``.
        input_fn: ``input_fn(batch) -> model input``; a Tensor is passed positionally, a
            dict as keyword arguments (e.g. ``dict(x=b["img"], mask=b["mask"])``).
            Default ``batch["img"]``. The batch's tensors are already on the device.

    Returns:
        :class:`Features` with float32 CPU ``feats`` [N, D], int64 ``pids``/``camids``
        [N], ``paths``.

    Raises:
        KeyError: a batch without ``pid``/``camid`` (or ``img`` without ``input_fn``).
        TypeError: a batch that is not a dict, or a model output that is not [N, D].
        ValueError: an empty loader.
    """
    dev = _model_device(model) if device is None else torch.device(device)
    if device is not None:
        model.to(dev)
    was_training = model.training
    model.eval()
    feats, pids, camids, paths = [], [], [], []
    try:
        with torch.inference_mode():
            for batch in loader:
                if not isinstance(batch, Mapping):
                    raise TypeError(f"loader must yield dict batches (ImageDataset), got "
                                    f"{type(batch).__name__}")
                for key in ("pid", "camid"):
                    if key not in batch:
                        raise KeyError(f"batch has no {key!r}; keys: {sorted(batch)}")
                b = {k: (v.to(dev, non_blocking=True) if isinstance(v, torch.Tensor) else v)
                     for k, v in batch.items()}
                n = len(batch["pid"])
                if flip:   # one forward over the batch and its mirror image
                    f = _forward(model, _with_flips(b, n), input_fn)
                    f = (f[:n] + f[n:]) / 2 if f.shape[0] == 2 * n else f
                else:
                    f = _forward(model, b, input_fn)
                if f.shape[0] != n:
                    raise TypeError(f"model returned {f.shape[0]} features for a batch of {n}")
                feats.append(f.float().cpu())
                pids.append(np.asarray(batch["pid"]).reshape(-1))
                camids.append(np.asarray(batch["camid"]).reshape(-1))
                p = list(batch["path"]) if "path" in batch else [""] * n
                if len(p) != n:
                    raise ValueError(f"batch has {n} pids but {len(p)} paths")
                paths.extend(p)
    finally:
        model.train(was_training)
    if not feats:
        raise ValueError("the loader yielded no batch: nothing to extract")
    return Features(torch.cat(feats), np.concatenate(pids).astype(np.int64),
                    np.concatenate(camids).astype(np.int64), paths)


def multi_query_features(feats: torch.Tensor, groups: Sequence[Sequence[int]], *,
                         normalize: bool = True) -> torch.Tensor:
    """Multi-query features: the mean of each group's features.

    Market-1501 multi-query (Zheng et al., ICCV 2015, Sec. 5): a query's feature is the
    average of the features of all ``gt_bbox`` images of its identity in its camera (the
    query image itself is one of them). With ``normalize`` each feature is L2-normalised
    before averaging (as the features of single-query evaluation are); the caller
    normalises the means again.

    Args:
        feats: [M, D] features of the gt_bbox images. groups: Q lists of row indices.

    Returns:
        float32 [Q, D].

    Raises:
        ValueError: an empty group (names its position) or an index out of range.
    """
    feats = feats.float()
    if normalize:
        feats = F.normalize(feats, dim=1)
    sizes = [len(g) for g in groups]
    if any(s == 0 for s in sizes):
        raise ValueError(f"multi-query group {sizes.index(0)} is empty: every query needs "
                         "at least one gt_bbox image")
    idx = torch.as_tensor([i for g in groups for i in g], dtype=torch.long)
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= feats.shape[0]):
        raise ValueError(f"multi-query indices must be in [0, {feats.shape[0]}), got "
                         f"[{int(idx.min())}, {int(idx.max())}]")
    seg = torch.repeat_interleave(torch.arange(len(groups)), torch.as_tensor(sizes))
    out = torch.zeros(len(groups), feats.shape[1]).index_add_(0, seg, feats[idx])
    return out / torch.as_tensor(sizes, dtype=torch.float32)[:, None]


# ------------------------------------------------------------------------ evaluation


@dataclasses.dataclass
class EvalResult:
    """Features, distances and metrics of one evaluation.

    Attributes:
        qf, gf: float32 CPU [Q, D] / [G, D] features as used (L2-normalised when the
            evaluation normalised them).
        q_pids, g_pids, q_camids, g_camids: int64 numpy [Q] / [G].
        q_paths, g_paths: image paths (lists of str; may be empty).
        distmat: float32 numpy [Q, G], single-query distances (``metric``).
        results: setting name (see ``SETTINGS``) -> :class:`RankResult`.
        mq_qf: float32 [Q, D] multi-query features, or None.
        distmat_rerank: float32 numpy [Q, G] re-ranked single-query distances, or None.
        metric: distance used.
    """

    qf: torch.Tensor
    gf: torch.Tensor
    q_pids: np.ndarray
    g_pids: np.ndarray
    q_camids: np.ndarray
    g_camids: np.ndarray
    q_paths: list
    g_paths: list
    distmat: np.ndarray
    results: dict
    mq_qf: torch.Tensor | None = None
    distmat_rerank: np.ndarray | None = None
    metric: str = "euclidean"

    def summary(self):
        """pandas DataFrame: setting, rank1, rank5, rank10, mAP, mINP (in percent).

        A rank beyond the CMC's length is NaN.
        """
        import pandas as pd

        rows = []
        for name, r in self.results.items():
            cmc = np.asarray(r.cmc)
            rk = {f"rank{k}": 100.0 * float(cmc[k - 1]) if len(cmc) >= k else math.nan
                  for k in (1, 5, 10)}
            rows.append({"setting": name, **rk, "mAP": 100.0 * r.mAP, "mINP": 100.0 * r.mINP})
        return pd.DataFrame(rows, columns=["setting", "rank1", "rank5", "rank10", "mAP", "mINP"])

    def __repr__(self) -> str:
        res = ", ".join(f"{k}: R1 {100 * v.cmc[0]:.1f} mAP {100 * v.mAP:.1f}"
                        for k, v in self.results.items())
        return (f"EvalResult({self.qf.shape[0]} queries x {self.gf.shape[0]} gallery, "
                f"D={self.qf.shape[1]}, {self.metric}; {res})")

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Every field as NumPy arrays, for ``np.savez(path, **r.to_arrays())``.

        Keys (all plain dtypes, so ``np.load(..., allow_pickle=False)`` reads them):

        - ``qf``, ``gf``: float32 [Q, D] / [G, D]; ``mq_qf``: float32 [Q, D] (only when
          not None).
        - ``q_pids``, ``g_pids``, ``q_camids``, ``g_camids``: int64 [Q] / [G].
        - ``q_paths``, ``g_paths``: unicode str arrays [Q] / [G] (or [0]).
        - ``distmat``: float32 [Q, G]; ``distmat_rerank``: float32 [Q, G] (only when not
          None).
        - ``metric``: 0-d str array.
        - ``settings``: str array of the setting names, in the order of ``results``.
        - per setting ``s``: ``results/<s>/cmc`` float64 [max_rank], ``results/<s>/mAP``
          and ``results/<s>/mINP`` 0-d float64, and ``results/<s>/query_ap`` (float64),
          ``results/<s>/query_index`` (int64), ``results/<s>/query_rank1``,
          ``query_rank5``, ``query_rank10``, ``query_inp`` (float64), each [V], when the
          :class:`RankResult` has them.

        Returns:
            dict key -> np.ndarray; :meth:`from_arrays` inverts it exactly.
        """
        out: dict[str, np.ndarray] = {
            "qf": _np(self.qf), "gf": _np(self.gf),
            "q_pids": np.asarray(self.q_pids), "g_pids": np.asarray(self.g_pids),
            "q_camids": np.asarray(self.q_camids), "g_camids": np.asarray(self.g_camids),
            "q_paths": np.asarray(list(self.q_paths), dtype=str),
            "g_paths": np.asarray(list(self.g_paths), dtype=str),
            "distmat": np.asarray(self.distmat),
            "metric": np.asarray(str(self.metric)),
            "settings": np.asarray(list(self.results), dtype=str),
        }
        if self.mq_qf is not None:
            out["mq_qf"] = _np(self.mq_qf)
        if self.distmat_rerank is not None:
            out["distmat_rerank"] = np.asarray(self.distmat_rerank)
        for name, r in self.results.items():
            key = f"results/{name}/"
            out[key + "cmc"] = np.asarray(r.cmc)
            out[key + "mAP"] = np.asarray(float(r.mAP), dtype=np.float64)
            out[key + "mINP"] = np.asarray(float(r.mINP), dtype=np.float64)
            for field in _QUERY_FIELDS:
                v = getattr(r, field, None)
                if v is not None:
                    out[key + field] = np.asarray(v)
        return out

    @classmethod
    def from_arrays(cls, d: Mapping[str, np.ndarray]) -> "EvalResult":
        """The :class:`EvalResult` of :meth:`to_arrays` output (or of the ``np.load`` of
        an ``np.savez`` of it).

        Args:
            d: mapping key -> array with the keys of :meth:`to_arrays` (an ``NpzFile``
                works).

        Returns:
            EvalResult with float32 CPU torch ``qf``/``gf``/``mq_qf``, NumPy ids and
            distances, lists of str paths, Python-float ``mAP``/``mINP``: every field equal
            to the saved result's.

        Raises:
            KeyError: a required key is missing (named).
        """
        need = ("qf", "gf", "q_pids", "g_pids", "q_camids", "g_camids", "q_paths",
                "g_paths", "distmat", "metric", "settings")
        keys = set(d.keys()) if hasattr(d, "keys") else set(d)
        missing = [k for k in need if k not in keys]
        if missing:
            raise KeyError(f"EvalResult.from_arrays: missing keys {missing} "
                           "(expected the output of EvalResult.to_arrays)")
        results: dict[str, RankResult] = {}
        for name in (str(s) for s in np.asarray(d["settings"]).tolist()):
            key = f"results/{name}/"
            extra = {f: np.asarray(d[key + f]) for f in _QUERY_FIELDS if key + f in keys}
            results[name] = RankResult(cmc=np.asarray(d[key + "cmc"]),
                                       mAP=float(d[key + "mAP"]), mINP=float(d[key + "mINP"]),
                                       **extra)
        return cls(qf=torch.from_numpy(np.array(d["qf"])),
                   gf=torch.from_numpy(np.array(d["gf"])),
                   q_pids=np.asarray(d["q_pids"]), g_pids=np.asarray(d["g_pids"]),
                   q_camids=np.asarray(d["q_camids"]), g_camids=np.asarray(d["g_camids"]),
                   q_paths=[str(p) for p in np.asarray(d["q_paths"]).tolist()],
                   g_paths=[str(p) for p in np.asarray(d["g_paths"]).tolist()],
                   distmat=np.asarray(d["distmat"]), results=results,
                   mq_qf=(torch.from_numpy(np.array(d["mq_qf"])) if "mq_qf" in keys
                          else None),
                   distmat_rerank=(np.asarray(d["distmat_rerank"]) if "distmat_rerank" in keys
                                   else None),
                   metric=str(np.asarray(d["metric"]).item()))


#: Per-query fields of :class:`RankResult` that :meth:`EvalResult.to_arrays` saves.
_QUERY_FIELDS = ("query_ap", "query_index", "query_rank1", "query_rank5", "query_rank10",
                 "query_inp")


def _np(t: Any) -> np.ndarray:
    """A tensor (any device) or array as a NumPy array (no copy for CPU tensors)."""
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def evaluate_features(qf: Any, gf: Any, q_pids: Any, g_pids: Any, q_camids: Any,
                      g_camids: Any, *, q_paths: Sequence[str] | None = None,
                      g_paths: Sequence[str] | None = None, normalize: bool = True,
                      metric: str = "euclidean", rerank: bool = False,
                      mq_qf: Any = None, max_rank: int = 50, protocol: str = "market1501",
                      k1: int = 20, k2: int = 6, lambda_value: float = 0.3) -> EvalResult:
    """Evaluate features that are already extracted.

    Settings computed: ``single-query``; ``single-query+re-rank`` when ``rerank``;
    ``multi-query`` (and ``multi-query+re-rank``) when ``mq_qf`` is given (see
    :func:`multi_query_features`). Features are L2-normalised when ``normalize`` (the
    multi-query means too), distances by :func:`compute_distance_matrix` (``metric``),
    ranks by :func:`evaluate_rank` (``protocol``, ``max_rank``), re-ranking by
    :func:`re_ranking` (``k1, k2, lambda_value``) on the same distances.

    Args:
        qf: [Q, D]; gf: [G, D]; ids as :func:`evaluate_rank`; mq_qf: [Q, D] or None.

    Returns:
        :class:`EvalResult`.

    Raises:
        ValueError: shapes that disagree (named), or the errors of :func:`evaluate_rank`.
    """
    qf = torch.as_tensor(qf).detach().float().cpu()
    gf = torch.as_tensor(gf).detach().float().cpu()
    if qf.ndim != 2 or gf.ndim != 2 or qf.shape[1] != gf.shape[1]:
        raise ValueError(f"qf and gf must be [Q, D] and [G, D] with the same D, got "
                         f"{tuple(qf.shape)} and {tuple(gf.shape)}")
    q_pids, g_pids = _as_ids(q_pids, "q_pids"), _as_ids(g_pids, "g_pids")
    q_camids, g_camids = _as_ids(q_camids, "q_camids"), _as_ids(g_camids, "g_camids")
    if not (len(q_pids) == len(q_camids) == qf.shape[0]
            and len(g_pids) == len(g_camids) == gf.shape[0]):
        raise ValueError(f"qf {tuple(qf.shape)} / gf {tuple(gf.shape)} but q_pids "
                         f"{q_pids.shape}, q_camids {q_camids.shape}, g_pids {g_pids.shape}, "
                         f"g_camids {g_camids.shape}")
    if mq_qf is not None:
        mq_qf = torch.as_tensor(mq_qf).detach().float().cpu()
        if tuple(mq_qf.shape) != tuple(qf.shape):
            raise ValueError(f"mq_qf must have the shape of qf {tuple(qf.shape)}, got "
                             f"{tuple(mq_qf.shape)}")
    if normalize:
        qf, gf = F.normalize(qf, dim=1), F.normalize(gf, dim=1)
        mq_qf = None if mq_qf is None else F.normalize(mq_qf, dim=1)
    ids = (q_pids, g_pids, q_camids, g_camids)
    kw = dict(max_rank=max_rank, protocol=protocol)
    results: dict[str, RankResult] = {}
    distmat = compute_distance_matrix(qf, gf, metric).numpy()
    results["single-query"] = evaluate_rank(distmat, *ids, **kw)
    distmat_rr = None
    g_g = None
    if rerank:
        g_g = compute_distance_matrix(gf, gf, metric).numpy()
        q_q = compute_distance_matrix(qf, qf, metric).numpy()
        distmat_rr = re_ranking(distmat, q_q, g_g, k1, k2, lambda_value)
        results["single-query+re-rank"] = evaluate_rank(distmat_rr, *ids, **kw)
    if mq_qf is not None:
        d_mq = compute_distance_matrix(mq_qf, gf, metric).numpy()
        results["multi-query"] = evaluate_rank(d_mq, *ids, **kw)
        if rerank:
            q_q = compute_distance_matrix(mq_qf, mq_qf, metric).numpy()
            results["multi-query+re-rank"] = evaluate_rank(
                re_ranking(d_mq, q_q, g_g, k1, k2, lambda_value), *ids, **kw)
    return EvalResult(qf=qf, gf=gf, q_pids=q_pids, g_pids=g_pids, q_camids=q_camids,
                      g_camids=g_camids, q_paths=list(q_paths or []),
                      g_paths=list(g_paths or []), distmat=distmat, results=results,
                      mq_qf=mq_qf, distmat_rerank=distmat_rr, metric=metric)


def evaluate(model: torch.nn.Module, dataset: Any, transform: Callable | None, *,
             device: Any = None, batch_size: int = 128, workers: int = 0, flip: bool = False,
             normalize: bool = True, metric: str = "euclidean", multi_query: bool = False,
             rerank: bool = False, input_fn: Callable | None = None, load_mask: bool = False,
             load_parts: bool = False, max_rank: int = 50,
             protocol: str = "market1501", memory: bool = False) -> EvalResult:
    """Extract query / gallery features of ``dataset`` with ``model`` and evaluate them.

    Args:
        model: reidnb model (eval mode returns [N, D]).
        dataset: a :class:`reidnb.data.datasets.ReIDDataset` (``query``, ``gallery``,
            ``multi_query``, ``name``).
        transform: test transform for :class:`~reidnb.data.datasets.ImageDataset`.
        device: where the model runs (default: where it is; ``"auto"`` resolves).
        flip: flip-averaged features (:func:`extract_features`).
        multi_query: also evaluate Market-1501 multi-query (``dataset.multi_query`` maps a
            query's index to the gt_bbox records of its identity and camera; their mean
            feature replaces the query's, :func:`multi_query_features`).
        rerank: also evaluate with k-reciprocal re-ranking.
        memory: decode the images once per process into memory at the size of
            ``transform`` (:mod:`reidnb.data.memory`; later evaluations of the same records
            reuse them) instead of decoding them at every evaluation.
        load_mask, load_parts, input_fn: for models with extra inputs (MaskReID,
            MagnifierNet), passed to ``ImageDataset`` / :func:`extract_features`.
        Other arguments: see :func:`evaluate_features`.

    Returns:
        :class:`EvalResult`; ``summary()`` gives the table in percent.

    The seconds it takes are added to ``eval`` of :data:`reidnb.core.timing.LEDGER`.

    Raises:
        ValueError: ``multi_query`` on a dataset with no multi-query groups, or a query
            without one (names it); errors of :func:`evaluate_features`.
    """
    from reidnb.core.timing import phase

    with phase("eval"):
        return _evaluate(model, dataset, transform, device=device, batch_size=batch_size,
                         workers=workers, flip=flip, normalize=normalize, metric=metric,
                         multi_query=multi_query, rerank=rerank, input_fn=input_fn,
                         load_mask=load_mask, load_parts=load_parts, max_rank=max_rank,
                         protocol=protocol, memory=memory)


def _evaluate(model, dataset, transform, *, device, batch_size, workers, flip, normalize,
              metric, multi_query, rerank, input_fn, load_mask, load_parts, max_rank,
              protocol, memory) -> EvalResult:
    """:func:`evaluate` without the timing."""
    from torch.utils.data import DataLoader

    from reidnb.data.datasets import ImageDataset
    from reidnb.core.utils import resolve_device

    dev = _model_device(model) if device is None else resolve_device(device)

    size = (getattr(transform, "height", None), getattr(transform, "width", None))
    if memory and None in size:
        raise ValueError(f"memory=True needs a transform with height and width, got "
                         f"{transform!r}")

    def features(records) -> Features:
        if memory:
            from reidnb.data.memory import BatchTransform, MemoryDataset

            ds = MemoryDataset(records, *size, load_mask=load_mask, load_parts=load_parts,
                               workers=workers)
            loader = DataLoader(ds, batch_size=batch_size, shuffle=False,
                                collate_fn=BatchTransform(False), pin_memory=dev.type == "cuda")
            return extract_features(model, loader, dev, flip=flip, input_fn=input_fn)
        ds = ImageDataset(records, transform, load_mask=load_mask, load_parts=load_parts)
        loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=workers,
                            pin_memory=dev.type == "cuda")
        return extract_features(model, loader, dev, flip=flip, input_fn=input_fn)

    groups = None
    if multi_query:
        mq = getattr(dataset, "multi_query", None) or {}
        name = getattr(dataset, "name", "dataset")
        if not mq:
            raise ValueError(f"multi_query=True but {name} has no multi-query groups "
                             "(dataset.multi_query is empty; it is defined for Market-1501 "
                             "and the synthetic set, from gt_bbox/)")
        missing = [i for i in range(len(dataset.query)) if not mq.get(i)]
        if missing:
            raise ValueError(f"multi_query=True but {len(missing)} queries of {name} have no "
                             f"gt_bbox group, e.g. query {missing[0]} "
                             f"({dataset.query[missing[0]].path})")
    q = features(dataset.query)
    g = features(dataset.gallery)
    mq_qf = None
    if multi_query:
        pos: dict[str, int] = {}
        recs = []
        for i in range(len(dataset.query)):
            for r in mq[i]:
                if r.path not in pos:
                    pos[r.path] = len(recs)
                    recs.append(r)
        groups = [[pos[r.path] for r in mq[i]] for i in range(len(dataset.query))]
        m = features(recs)
        mq_qf = multi_query_features(m.feats, groups, normalize=normalize)
    return evaluate_features(q.feats, g.feats, q.pids, g.pids, q.camids, g.camids,
                             q_paths=q.paths, g_paths=g.paths, normalize=normalize,
                             metric=metric, rerank=rerank, mq_qf=mq_qf, max_rank=max_rank,
                             protocol=protocol)

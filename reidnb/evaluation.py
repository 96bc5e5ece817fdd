"""Person re-ID evaluation: features, distances, CMC / mAP / mINP and re-ranking.

Protocols (numbers identical to the field's reference code):

- Market-1501 / DukeMTMC-reID / CUHK03-NP (``protocol="market1501"``): Zheng et al.,
  "Scalable Person Re-identification: A Benchmark", ICCV 2015, as torchreid
  ``torchreid/metrics/rank.py`` ``eval_market1501`` and fast-reid
  ``fastreid/evaluation/rank.py`` compute it. Per query, the gallery images of the same
  identity *and* camera and the junk images (pid ``-1``) are removed; distractors (pid ``0``)
  stay and count as wrong matches; queries with no match left are skipped. AP is the
  non-interpolated average precision, mINP is fast-reid's (Ye et al., "Deep Learning for
  Person Re-identification: A Survey and Outlook", TPAMI 2021, Eq. 7).
- CUHK03 classic (``protocol="cuhk03"``): single-gallery-shot CMC (Li et al., "DeepReID",
  CVPR 2014), as torchreid ``eval_cuhk03``: per query, one gallery image of each identity
  is drawn at random, 10 repeats, CMC averaged; AP (and mINP) use the whole gallery.
- Re-ranking: Zhong et al., "Re-ranking Person Re-identification with k-reciprocal
  Encoding", CVPR 2017, the same numbers as the authors' / torchreid's ``re_ranking``
  (``torchreid/utils/rerank.py``) but sparse, chunked and in torch (see :func:`re_ranking`).

Nothing here sorts a whole query x gallery matrix: the rank of every true match is counted
with a binary search against the (few) match distances of its query, in query chunks, so
memory stays bounded and the work runs on the distance matrix's device.
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "RankResult",
    "Features",
    "EvalResult",
    "evaluate_rank",
    "re_ranking",
    "compute_distance_matrix",
    "extract_features",
    "multi_query_features",
    "evaluate_features",
    "evaluate",
]

#: Names of the settings in :attr:`EvalResult.results` (and rows of ``summary()``).
SETTINGS = ("single-query", "single-query+re-rank", "multi-query", "multi-query+re-rank")

#: Rough size of the temporaries of one query chunk of :func:`evaluate_rank` (bytes).
_CHUNK_BYTES = 64 * 2**20


class RankResult(NamedTuple):
    """CMC, mAP and mINP of one evaluation.

    Attributes:
        cmc: float64 [max_rank]; ``cmc[k]`` = fraction of the valid queries whose first
            true match is at rank ``<= k + 1`` (in [0, 1]).
        mAP: mean over valid queries of the non-interpolated average precision, in [0, 1].
        mINP: mean inverse negative penalty (fast-reid), in [0, 1].
    """

    cmc: np.ndarray
    mAP: float
    mINP: float


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


# ------------------------------------------------------------------------ input checks


def _as_ids(x: Any, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one id per image), got shape {a.shape}")
    if a.size and not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.bool_)):
        raise TypeError(f"{name} must hold integers, got dtype {a.dtype}")
    return np.ascontiguousarray(a, dtype=np.int64)


def _as_dist(x: Any, name: str) -> torch.Tensor:
    """A distance matrix as a floating torch tensor (no copy for numpy float32/64)."""
    if isinstance(x, torch.Tensor):
        t = x.detach()
    else:
        a = np.asarray(x)
        if a.dtype == np.float16 or not np.issubdtype(a.dtype, np.floating):
            if not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
                raise TypeError(f"{name} must be numeric, got dtype {a.dtype}")
            a = a.astype(np.float64 if np.issubdtype(a.dtype, np.integer) else np.float32)
        if any(st < 0 for st in a.strides):                 # e.g. a[:, ::-1]
            a = np.ascontiguousarray(a)
        t = torch.from_numpy(a)
    if not t.is_floating_point():
        t = t.double()
    elif t.dtype in (torch.float16, torch.bfloat16):
        t = t.float()
    if t.ndim != 2:
        raise ValueError(f"{name} must be a 2-D matrix, got shape {tuple(t.shape)}")
    return t


def _check_finite_rows(t: torch.Tensor, name: str, rows: int = 1024, offset: int = 0) -> None:
    for r0 in range(0, t.shape[0], rows):
        blk = t[r0:r0 + rows]
        if not bool(torch.isfinite(blk).all()):
            bad = (~torch.isfinite(blk)).nonzero()[0].tolist()
            raise ValueError(f"{name} holds a non-finite value (NaN or inf) at "
                             f"[{bad[0] + r0 + offset}, {bad[1]}]; distances must be finite")


# ------------------------------------------------------------------------ rank metrics


class _PidIndex(NamedTuple):
    """Kept gallery (junk dropped) grouped by pid, to list each query's matches sparsely."""

    keep: torch.Tensor | None     # [Gk] kept gallery columns (None: all kept)
    gp: torch.Tensor              # [Gk] pids of the kept columns
    gc: torch.Tensor              # [Gk] camids of the kept columns
    order: torch.Tensor           # [Gk] kept columns sorted by pid (stable)
    pids: torch.Tensor            # [U] distinct pids
    start: torch.Tensor           # [U] first position of each pid in ``order``
    count: torch.Tensor           # [U]


def _pid_index(gp: torch.Tensor, gc: torch.Tensor) -> _PidIndex:
    junk = gp == -1
    keep = None
    if bool(junk.any()):
        keep = (~junk).nonzero().squeeze(1)
        gp, gc = gp[keep], gc[keep]
    order = torch.sort(gp, stable=True).indices
    pids, count = torch.unique_consecutive(gp[order], return_counts=True)
    return _PidIndex(keep, gp, gc, order, pids, torch.cumsum(count, 0) - count, count)


def _match_ranks(d: torch.Tensor, qp: torch.Tensor, qc: torch.Tensor,
                 idx: _PidIndex) -> tuple[torch.Tensor, torch.Tensor]:
    """1-based ranks of the true matches of a chunk of queries, Market-1501 protocol.

    Nothing is sorted but each query's (few) match distances: every distance is located
    among them by one binary search, and a histogram of those positions counts the
    non-matches before each match. The matches and same-camera images come from ``idx``
    (sparse lists); images at exactly a match's distance are put in gallery-index order.

    Args:
        d: [B, Gk] distances to the kept (non-junk) gallery columns of ``idx``.
        qp, qc: [B] query pids / camids.

    Returns:
        n: int64 [B], number of true matches of each query.
        ranks: int64 [B, M] (M = n.max()); ``ranks[b, j]`` (``j < n[b]``) is the
        position, among the gallery images kept for query b (1-based), of its (j+1)-th
        true match in the ranking by (distance, gallery index).
    """
    B, Gk = d.shape
    dev = d.device
    # same-pid gallery images of each query, as flat (row, column) lists
    nu = len(idx.pids)
    u = torch.searchsorted(idx.pids, qp).clamp_max(max(nu - 1, 0))
    has = idx.pids[u] == qp if nu else torch.zeros_like(qp, dtype=torch.bool)
    cnt = torch.where(has, idx.count[u] if nu else 0, 0)
    rows = torch.arange(B, device=dev).repeat_interleave(cnt)
    cols = idx.order[_segments(idx.start[u], cnt)] if nu else rows   # ascending per row
    is_match = idx.gc[cols] != qc[rows]
    mb, mg = rows[is_match], cols[is_match]                  # true matches
    n = torch.bincount(mb, minlength=B)
    M = int(n.max()) if B else 0
    if M == 0:
        return n, torch.zeros(B, 0, dtype=torch.long, device=dev)
    start = torch.cumsum(n, 0) - n
    slot = torch.arange(mb.numel(), device=dev) - start[mb]
    mval = torch.full((B, M + 1), math.inf, dtype=d.dtype, device=dev)   # +inf pad column
    midx = torch.full((B, M + 1), Gk, dtype=torch.long, device=dev)
    mval[mb, slot] = d[mb, mg]
    midx[mb, slot] = mg
    mval, perm = torch.sort(mval, dim=1, stable=True)        # by (distance, column)
    midx = midx.gather(1, perm)

    before = torch.searchsorted(mval, d)                     # [B, Gk] matches with value < d
    # Images at exactly a match distance (the matches themselves and true ties): count the
    # tied matches of lower gallery index too, so the order is (distance, index).
    eb, eg = (mval.gather(1, before) == d).nonzero(as_tuple=True)
    if eb.numel() != mb.numel():                            # more than the matches: ties
        k = before[eb, eg]
        v = d[eb, eg]
        extra = torch.zeros_like(k)
        live = torch.ones_like(k, dtype=torch.bool)
        while bool(live.any()):
            pos = k + extra                                  # <= M: the pad column stops it
            live &= (mval[eb, pos] == v) & (midx[eb, pos] < eg)
            extra += live.long()
        before[eb, eg] = k + extra
    before += (torch.arange(B, device=dev) * (M + 1))[:, None]
    hist = torch.bincount(before.view(-1), minlength=B * (M + 1))
    hist -= torch.bincount(before[rows, cols], minlength=B * (M + 1))   # drop same-pid
    neg_before = hist.view(B, M + 1).cumsum(1)[:, :M]        # non-matches before match j
    return n, neg_before + torch.arange(1, M + 1, device=dev)[None, :]


def _chunk_rows(G: int, itemsize: int = 4) -> int:
    """Queries per chunk: per distance a copy, an int64 position, a bool and a value."""
    return max(1, min(4096, _CHUNK_BYTES // max(1, G * (2 * itemsize + 9))))


def evaluate_rank(distmat: Any, q_pids: Any, g_pids: Any, q_camids: Any, g_camids: Any,
                  max_rank: int = 50, protocol: str = "market1501", *, seed: int = 0,
                  num_repeats: int = 10, chunk_size: int | None = None) -> RankResult:
    """CMC, mAP and mINP of a query x gallery distance matrix (smaller = more similar).

    Market-1501 protocol (``protocol="market1501"``, also used for DukeMTMC-reID and
    CUHK03-NP): per query, gallery images with the query's pid and camid, and gallery
    images with pid ``-1`` (junk), are removed; pid ``0`` (distractors) and every other
    identity count as wrong matches. Queries left with no true match are skipped. Gallery
    images at equal distance are ranked by gallery index (a stable sort). Per valid query
    with true matches at (1-based) ranks ``r_1 < ... < r_m``:
    ``AP = mean_j (j / r_j)`` (torchreid), ``INP = m / r_m`` (fast-reid), and the query
    counts in ``cmc[k]`` when ``r_1 <= k + 1``. Same numbers as torchreid's
    ``eval_market1501`` / fast-reid's (torchreid drops junk when loading Market-1501; this
    function drops it here, since reidnb's gallery keeps it).

    CUHK03 classic protocol (``protocol="cuhk03"``, torchreid ``eval_cuhk03``): the same
    removal, then per query and repeat one image of each remaining gallery identity is
    drawn uniformly (``num_repeats`` repeats, NumPy ``default_rng(seed)``, queries in
    order); the CMC of the query is averaged over repeats. AP and mINP use the whole kept
    gallery, as torchreid does for AP (fast-reid reports no mINP for this protocol).
    torchreid draws from NumPy's global generator, so single draws differ from it; the
    protocol is the same.

    Args:
        distmat: [Q, G] numpy array or torch tensor (any float dtype; CUDA tensors are
            evaluated on their GPU). Must be finite.
        q_pids, q_camids: [Q] integer ids; g_pids, g_camids: [G] integer ids.
        max_rank: length of the returned CMC. Unlike torchreid (which shortens the CMC to
            G when G < max_rank) the length is always ``max_rank``; entries past the
            gallery size are 1.
        protocol: ``"market1501"`` or ``"cuhk03"``.
        seed, num_repeats: the random draws of the CUHK03 protocol.
        chunk_size: queries per chunk (default: ~64 MB of temporaries).

    Returns:
        :class:`RankResult` (cmc float64 [max_rank], mAP, mINP as floats in [0, 1]).

    Raises:
        ValueError: shapes of ``distmat`` and the id arrays disagree (names the shapes), a
            non-finite distance, ``max_rank < 1``, an unknown protocol, or no query has a
            true match in the gallery.
        TypeError: non-integer ids.
    """
    if protocol not in ("market1501", "cuhk03"):
        raise ValueError(f"protocol must be 'market1501' or 'cuhk03', got {protocol!r}")
    if int(max_rank) < 1:
        raise ValueError(f"max_rank must be >= 1, got {max_rank}")
    max_rank = int(max_rank)
    dist = _as_dist(distmat, "distmat")
    q_pids, g_pids = _as_ids(q_pids, "q_pids"), _as_ids(g_pids, "g_pids")
    q_camids, g_camids = _as_ids(q_camids, "q_camids"), _as_ids(g_camids, "g_camids")
    Q, G = dist.shape
    if not (len(q_pids) == len(q_camids) == Q and len(g_pids) == len(g_camids) == G):
        raise ValueError(
            f"shapes disagree: distmat {tuple(dist.shape)} (queries x gallery) but q_pids "
            f"{q_pids.shape}, q_camids {q_camids.shape}, g_pids {g_pids.shape}, g_camids "
            f"{g_camids.shape}")
    dev = dist.device
    qp_all = torch.from_numpy(q_pids).to(dev)
    qc_all = torch.from_numpy(q_camids).to(dev)
    gp = torch.from_numpy(g_pids).to(dev)
    gc = torch.from_numpy(g_camids).to(dev)
    index = _pid_index(gp, gc)
    B = int(chunk_size) if chunk_size else _chunk_rows(G, dist.element_size())

    rng = np.random.default_rng(seed) if protocol == "cuhk03" else None
    if rng is not None:
        groups = _gallery_groups(g_pids)

    first_hist = np.zeros(max_rank, dtype=np.float64)     # valid queries with r_1 == k + 1
    cmc_sum = np.zeros(max_rank, dtype=np.float64)        # cuhk03: summed per-query CMCs
    ap_sum = inp_sum = 0.0
    num_valid = 0
    for q0 in range(0, Q, B):
        d = dist[q0:q0 + B]
        lo, hi = torch.aminmax(d) if d.numel() else (torch.zeros(()), torch.zeros(()))
        if not (math.isfinite(float(lo)) and math.isfinite(float(hi))):
            _check_finite_rows(d, "distmat", offset=q0)
        qp, qc = qp_all[q0:q0 + B], qc_all[q0:q0 + B]
        dk = (d if index.keep is None else d.index_select(1, index.keep)).contiguous()
        n, ranks = _match_ranks(dk, qp, qc, index)
        valid = n > 0
        if not bool(valid.any()):
            continue
        n_v = n[valid].double()
        r_v = ranks[valid].double()                                      # [V, M]
        M = r_v.shape[1]
        j = torch.arange(1, M + 1, device=dev, dtype=torch.float64)[None, :]
        inside = j <= n_v[:, None]
        ap = torch.where(inside, j / r_v, torch.zeros_like(r_v)).sum(1) / n_v
        last = r_v.gather(1, (n[valid] - 1)[:, None]).squeeze(1)
        ap_sum += float(ap.sum())
        inp_sum += float((n_v / last).sum())
        num_valid += int(valid.sum())
        if rng is None:
            first = ranks[valid][:, 0]
            first = first[first <= max_rank].cpu().numpy()
            first_hist += np.bincount(first - 1, minlength=max_rank)[:max_rank]
        else:
            d_np = d.cpu().numpy()
            for b in np.flatnonzero(valid.cpu().numpy()):
                q = q0 + b
                cmc_sum += _cuhk03_cmc(d_np[b], q_pids[q], q_camids[q], g_camids, groups,
                                       rng, num_repeats, max_rank)
    if num_valid == 0:
        raise ValueError(
            f"no query has a true match in the gallery ({Q} queries, {G} gallery images; "
            "matches of the same camera and junk pid -1 are removed): check the pids")
    cmc = (np.cumsum(first_hist) if rng is None else cmc_sum) / num_valid
    return RankResult(cmc=cmc, mAP=ap_sum / num_valid, mINP=inp_sum / num_valid)


def _gallery_groups(g_pids: np.ndarray) -> dict:
    """Gallery indices per identity (junk pid -1 left out), for the CUHK03 draws."""
    order = np.argsort(g_pids, kind="stable")
    order = order[g_pids[order] != -1]
    pids, starts, counts = np.unique(g_pids[order], return_index=True, return_counts=True)
    return {"order": order, "pids": pids, "starts": starts, "counts": counts}


def _cuhk03_cmc(d: np.ndarray, q_pid: int, q_cam: int, g_camids: np.ndarray, groups: dict,
                rng: np.random.Generator, repeats: int, max_rank: int) -> np.ndarray:
    """Single-shot CMC of one query (which has at least one true match)."""
    order, pids = groups["order"], groups["pids"]
    starts, counts = groups["starts"], groups["counts"]
    own = int(np.searchsorted(pids, q_pid))
    members = order[starts[own]:starts[own] + counts[own]]
    pool = members[g_camids[members] != q_cam]                   # the true matches kept
    others = np.arange(len(pids)) != own
    o_starts, o_counts = starts[others], counts[others]
    drawn = order[o_starts[None, :] + (rng.random((repeats, len(o_starts)))
                                       * o_counts[None, :]).astype(np.int64)]   # [R, P-1]
    m = pool[rng.integers(len(pool), size=repeats)]              # [R] drawn true match
    dm, ds = d[m][:, None], d[drawn]
    rank = 1 + ((ds < dm) | ((ds == dm) & (drawn < m[:, None]))).sum(1)        # [R]
    return (rank[:, None] <= np.arange(1, max_rank + 1)[None, :]).mean(0)


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


# ------------------------------------------------------------------------ re-ranking


def re_ranking(q_g_dist: Any, q_q_dist: Any, g_g_dist: Any, k1: int = 20, k2: int = 6,
               lambda_value: float = 0.3, *, chunk_size: int = 1024,
               pair_budget: int = 4_000_000) -> np.ndarray:
    """k-reciprocal re-ranking (Zhong et al., CVPR 2017), query x gallery distances.

    Same algorithm and numbers as the reference ``re_ranking`` (Zhong's code, as in
    torchreid ``torchreid/utils/rerank.py``). With ``N = Q + G`` images and ``D`` the
    full N x N matrix ``[[q_q, q_g], [q_g^T, g_g]]``:

    1. ``O = (D**2 / max over each column of D**2)^T`` in float32 (squared, then each
       column scaled to max 1, then transposed: row i of O is column i of D).
    2. ``R(i, k)``: the k nearest images of i in row i of O (i itself included).
       k-reciprocal set ``K(i) = {j in R(i, k1+1): i in R(j, k1+1)}``. For each
       ``c in K(i)`` with half set ``H(c)`` (the same with ``round(k1/2) + 1``, NumPy's
       round-half-even), ``H(c)`` is added when ``|H(c) & K(i)| > 2/3 |H(c)|``.
    3. ``V[i, j] = exp(-O[i, j]) / sum`` over the expanded set (Gaussian kernel, Eq. 7).
    4. Local query expansion (k2 != 1): ``V[i] <- mean of V[R(i, k2)]`` (Eq. 11).
    5. Jaccard distance ``1 - s / (2 - s)`` with ``s = sum_j min(V[i, j], V[g, j])``
       (Eq. 10), then ``final = (1 - lambda) * jaccard + lambda * O`` (Eq. 12).

    How it differs from the reference (results equal to ~1e-6; not a different method):
    nothing N x N is built. Rows of O are formed in chunks straight from the three inputs
    (columns copied in cache-sized tiles); only the ``max(k1 + 1, k2)`` nearest neighbours
    are kept (``torch.topk`` on the squared row, whose order the scaling keeps, not a full
    argsort); V is a sparse (CSR) matrix; the Jaccard sums go over an inverted index of
    the gallery rows, for the query rows only. Equal distances are ordered by index (the
    reference's ``np.argsort`` quicksort leaves their order unspecified), and float32 sums
    are accumulated in another order (differences of order 1e-7). Memory beyond the
    inputs: the [Q, G] output plus a few hundred MB at Market-1501 size (19,281 images),
    against ~6 GB for the reference.

    Args:
        q_g_dist: [Q, G]; q_q_dist: [Q, Q]; g_g_dist: [G, G] distances (numpy arrays or
            torch tensors, all on one device; CUDA tensors are processed on the GPU).
            Pass Euclidean distances (not squared): step 1 squares them, as the original.
        k1, k2, lambda_value: the paper's parameters (defaults 20, 6, 0.3, Sec. 4.2).
        chunk_size: rows of O per chunk; pair_budget: (query, gallery) pairs per chunk of
            the Jaccard step. Both bound memory only.

    Returns:
        float32 numpy array [Q, G] of re-ranked distances.

    Raises:
        ValueError: shapes that do not fit together (names them), a non-finite distance,
            an all-zero column (no scale), k1 < 1, k2 < 1, lambda_value outside [0, 1].
    """
    qg = _as_dist(q_g_dist, "q_g_dist")
    qq = _as_dist(q_q_dist, "q_q_dist")
    gg = _as_dist(g_g_dist, "g_g_dist")
    Q, G = qg.shape
    if tuple(qq.shape) != (Q, Q) or tuple(gg.shape) != (G, G):
        raise ValueError(f"expected q_g_dist [Q, G], q_q_dist [Q, Q], g_g_dist [G, G]; got "
                         f"{tuple(qg.shape)}, {tuple(qq.shape)}, {tuple(gg.shape)}")
    if not (qg.device == qq.device == gg.device):
        raise ValueError(f"the three matrices are on different devices: {qg.device}, "
                         f"{qq.device}, {gg.device}")
    if int(k1) < 1 or int(k2) < 1:
        raise ValueError(f"k1 and k2 must be >= 1, got k1={k1}, k2={k2}")
    if not 0.0 <= float(lambda_value) <= 1.0:
        raise ValueError(f"lambda_value must be in [0, 1], got {lambda_value}")
    if Q == 0 or G == 0:
        return np.zeros((Q, G), dtype=np.float32)
    k1, k2, lam = int(k1), int(k2), float(lambda_value)
    dev = qg.device
    N = Q + G
    ctype = torch.promote_types(torch.promote_types(qg.dtype, qq.dtype), gg.dtype)

    def sq(x: torch.Tensor) -> torch.Tensor:       # np.power(x, 2).astype(np.float32)
        return x.to(ctype).square().to(torch.float32)

    # --- rows of D^T (= rows of O before scaling), nearest neighbours, scales ----------
    # Row i of O is column i of D, squared, divided by its own maximum (the reference's
    # column maximum). Columns are copied in cache-sized tiles (a strided transpose of a
    # 1 GB g_g is otherwise the slowest step). The neighbours are found on the squared
    # values: dividing a row by its positive maximum keeps their order.
    kmax = min(N, max(k1 + 1, k2))
    rank = torch.empty(N, kmax, dtype=torch.long, device=dev)
    colmax = torch.empty(N, dtype=torch.float32, device=dev)
    tile = 2048

    def put_t(dst: torch.Tensor, src: torch.Tensor, a: int, b: int) -> None:
        for t0 in range(0, src.shape[0], tile):               # dst = src[:, a:b]^T
            dst[:, t0:t0 + tile] = src[t0:t0 + tile, a:b].t()

    for r0 in range(0, N, chunk_size):
        r1 = min(N, r0 + chunk_size)
        rows = torch.empty(r1 - r0, N, dtype=ctype, device=dev)   # columns r0:r1 of D
        if r0 < Q:
            a, b = r0, min(r1, Q)
            put_t(rows[:b - a, :Q], qq, a, b)
            rows[:b - a, Q:] = qg[a:b]
        if r1 > Q:
            a, b = max(r0, Q) - Q, r1 - Q
            put_t(rows[r1 - r0 - (b - a):, :Q], qg, a, b)
            put_t(rows[r1 - r0 - (b - a):, Q:], gg, a, b)
        rows = rows.square_().to(torch.float32)
        colmax[r0:r1] = rows.amax(1)
        vals, idx = torch.topk(rows, kmax, dim=1, largest=False, sorted=True)
        del rows
        idx, p = torch.sort(idx, dim=1)                      # order ties by index:
        vals = vals.gather(1, p)                             # sort by index, then stably
        _, p = torch.sort(vals, dim=1, stable=True)          # by value
        rank[r0:r1] = idx.gather(1, p)
        del vals, idx, p
    if not bool(torch.isfinite(colmax).all()):
        i = int((~torch.isfinite(colmax)).nonzero()[0])
        raise ValueError(f"non-finite distance (NaN or inf) in column {i} of the stacked "
                         "[[q_q, q_g], [q_g^T, g_g]] matrix; distances must be finite")
    if bool((colmax == 0).any()):
        i = int((colmax == 0).nonzero()[0])
        raise ValueError(f"column {i} of the stacked distance matrix is all zero: the "
                         "reference divides by each column's maximum")

    # --- k-reciprocal sets, expansion, Gaussian weights -> sparse V -------------------
    kk = min(k1 + 1, N)
    kh = min(int(np.around(k1 / 2.0)) + 1, N)
    Rk, Rh = rank[:, :kk], rank[:, :kh]
    ar = torch.arange(N, device=dev)
    recip = torch.empty(N, kk, dtype=torch.bool, device=dev)
    recip_h = torch.empty(N, kh, dtype=torch.bool, device=dev)
    for r0 in range(0, N, 4096):
        r1 = min(N, r0 + 4096)
        a = ar[r0:r1, None, None]
        recip[r0:r1] = (Rk[Rk[r0:r1]] == a).any(2)
        recip_h[r0:r1] = (Rh[Rh[r0:r1]] == a).any(2)

    v_rows, v_cols, v_vals = [], [], []
    for r0 in range(0, N, 2048):
        r1 = min(N, r0 + 2048)
        B = r1 - r0
        K = torch.where(recip[r0:r1], Rk[r0:r1], -1)                 # [B, kk], -1 = absent
        H = Rh[Rk[r0:r1]]                                            # [B, kk, kh] half sets
        Hv = recip_h[Rk[r0:r1]]                                      # [B, kk, kh]
        inter = ((H[..., None] == K[:, None, None, :]).any(-1) & Hv).sum(-1)   # [B, kk]
        size = Hv.sum(-1)
        accept = recip[r0:r1] & (inter.double() > (2.0 / 3) * size.double())
        H = torch.where(accept[..., None] & Hv, H, -1).reshape(B, kk * kh)
        cand = torch.cat([K, H], dim=1)
        cand = torch.where(cand < 0, N, cand)
        cand, _ = torch.sort(cand, dim=1)
        keep = cand < N
        keep[:, 1:] &= cand[:, 1:] != cand[:, :-1]                   # np.unique
        rows, pos = keep.nonzero(as_tuple=True)
        cols = cand[rows, pos]
        rows = rows + r0
        # O[i, j] = D[j, i]**2 / colmax[i], looked up in the right block.
        draw = torch.empty(rows.numel(), dtype=ctype, device=dev)
        qi, gi_ = rows < Q, rows >= Q
        qj, gj = cols < Q, cols >= Q
        m = qj & qi                                                  # D[j, i] = q_q[j, i]
        draw[m] = qq[cols[m], rows[m]].to(ctype)
        m = qj & gi_                                                 # D[j, i] = q_g[j, i-Q]
        draw[m] = qg[cols[m], rows[m] - Q].to(ctype)
        m = gj & qi                                                  # D[j, i] = q_g[i, j-Q]
        draw[m] = qg[rows[m], cols[m] - Q].to(ctype)
        m = gj & gi_                                                 # D[j, i] = g_g[j-Q, i-Q]
        draw[m] = gg[cols[m] - Q, rows[m] - Q].to(ctype)
        w = torch.exp(-(sq(draw) / colmax[rows]))
        wsum = torch.zeros(N, dtype=torch.float32, device=dev).index_add_(0, rows, w)
        v_rows.append(rows)
        v_cols.append(cols)
        v_vals.append(w / wsum[rows])
    rows, cols, vals = torch.cat(v_rows), torch.cat(v_cols), torch.cat(v_vals)
    del v_rows, v_cols, v_vals, recip, recip_h

    # --- local query expansion: V[i] <- mean_{a < k2} V[rank[i, a]] --------------------
    k2e = min(k2, N)
    if k2e != 1:
        cnt = torch.bincount(rows, minlength=N)
        crow = torch.cumsum(cnt, 0) - cnt
        nq_rows, nq_cols, nq_vals = [], [], []
        step = max(1, pair_budget // max(1, k2e * int(cnt.max())))
        for r0 in range(0, N, step):
            r1 = min(N, r0 + step)
            src = rank[r0:r1, :k2e].reshape(-1)                      # [(r1-r0) * k2]
            seg = cnt[src]
            tgt = torch.arange(r0, r1, device=dev).repeat_interleave(k2e).repeat_interleave(seg)
            flat = _segments(crow[src], seg)
            key = (tgt - r0) * N + cols[flat]
            uniq, inv = torch.unique(key, sorted=True, return_inverse=True)
            acc = torch.zeros(uniq.numel(), dtype=torch.float32, device=dev)
            acc.index_add_(0, inv, vals[flat])
            nq_rows.append(uniq // N + r0)
            nq_cols.append(uniq % N)
            nq_vals.append(acc / k2e)
        rows, cols, vals = torch.cat(nq_rows), torch.cat(nq_cols), torch.cat(nq_vals)
        del nq_rows, nq_cols, nq_vals

    # --- Jaccard distance, query rows x gallery rows, via the inverted index ----------
    gal = rows >= Q
    g_cols, order = torch.sort(cols[gal], stable=True)
    g_rows, g_vals = rows[gal][order] - Q, vals[gal][order]          # inverted index
    ccnt = torch.bincount(g_cols, minlength=N)
    cstart = torch.cumsum(ccnt, 0) - ccnt
    qsel = rows < Q
    q_rows, q_cols, q_vals = rows[qsel], cols[qsel], vals[qsel]      # row-sorted
    q_pairs = ccnt[q_cols]                                           # pairs per entry
    row_pairs = torch.zeros(Q, dtype=torch.long, device=dev).index_add_(0, q_rows, q_pairs)
    q_start = torch.cumsum(torch.bincount(q_rows, minlength=Q), 0)   # entry end per row
    out = torch.empty(Q, G, dtype=torch.float32, device=dev)
    cum = torch.cumsum(row_pairs, 0).cpu().numpy()
    r0 = 0
    while r0 < Q:
        base = cum[r0 - 1] if r0 else 0
        r1 = int(np.searchsorted(cum, base + pair_budget, side="right"))
        r1 = min(Q, max(r1, r0 + 1), r0 + max(1, (64 * 2**20) // (4 * G)))
        e0 = int(q_start[r0 - 1]) if r0 else 0
        e1 = int(q_start[r1 - 1])
        seg = q_pairs[e0:e1]
        flat = _segments(cstart[q_cols[e0:e1]], seg)
        mins = torch.minimum(q_vals[e0:e1].repeat_interleave(seg), g_vals[flat])
        tgt = (q_rows[e0:e1] - r0).repeat_interleave(seg) * G + g_rows[flat]
        s = torch.zeros((r1 - r0) * G, dtype=torch.float32, device=dev)
        s.index_add_(0, tgt, mins)
        s = s.view(r1 - r0, G)
        jac = torch.rsub(s, 2.0)                                    # 1 - s / (2 - s)
        torch.div(s, jac, out=jac)
        jac.neg_().add_(1.0).mul_(1 - lam)
        orig = sq(qg[r0:r1]).div_(colmax[r0:r1, None]).mul_(lam)
        torch.add(jac, orig, out=out[r0:r1])
        r0 = r1
    return out.cpu().numpy()


def _segments(starts: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Concatenation of ``arange(s, s + l)`` for each (s, l), as one int64 tensor."""
    total = int(lengths.sum())
    if total == 0:
        return torch.zeros(0, dtype=torch.long, device=starts.device)
    offs = torch.cumsum(lengths, 0) - lengths
    return (torch.arange(total, device=starts.device)
            + (starts - offs).repeat_interleave(lengths))


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
                f = _forward(model, b, input_fn)
                if flip:
                    f = (f + _forward(model, _flip_batch(b), input_fn)) / 2
                n = len(batch["pid"])
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
             protocol: str = "market1501") -> EvalResult:
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
        load_mask, load_parts, input_fn: for models with extra inputs (MaskReID,
            MagnifierNet), passed to ``ImageDataset`` / :func:`extract_features`.
        Other arguments: see :func:`evaluate_features`.

    Returns:
        :class:`EvalResult`; ``summary()`` gives the table in percent.

    Raises:
        ValueError: ``multi_query`` on a dataset with no multi-query groups, or a query
            without one (names it); errors of :func:`evaluate_features`.
    """
    from torch.utils.data import DataLoader

    from reidnb.data.datasets import ImageDataset
    from reidnb.core.utils import resolve_device

    dev = _model_device(model) if device is None else resolve_device(device)

    def features(records) -> Features:
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

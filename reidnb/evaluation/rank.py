"""Rank metrics of a query x gallery distance matrix: CMC, mAP, mINP (and per query).

Protocols (numbers identical to the field's reference code):

- Market-1501 / DukeMTMC-reID / CUHK03-NP (``protocol="market1501"``): Zheng et al.,
  "Scalable Person Re-identification: A Benchmark", ICCV 2015, as torchreid
  ``torchreid/metrics/rank.py`` ``eval_market1501`` and fast-reid
  ``fastreid/evaluation/rank.py`` compute it. Per query, the gallery images of the same
  identity *and* camera and the junk images (pid ``-1``) are removed; distractors (pid ``0``)
  stay and count as wrong matches; queries with no match left are skipped. AP is the
  non-interpolated average precision, mINP is fast-reid's (Ye et al., "Deep Learning for
  Person Re-identification: A Survey and Outlook", TPAMI 2021, Eq. 7). The same removal
  rule, as a dense mask, is :func:`reidnb.evaluation.retrieval.junk_mask`.
- CUHK03 classic (``protocol="cuhk03"``): single-gallery-shot CMC (Li et al., "DeepReID",
  CVPR 2014), as torchreid ``eval_cuhk03``: per query, one gallery image of each identity
  is drawn at random, 10 repeats, CMC averaged; AP (and mINP) use the whole gallery.

Nothing here sorts a whole query x gallery matrix: the rank of every true match is counted
with a binary search against the (few) match distances of its query, in query chunks, so
memory stays bounded and the work runs on the distance matrix's device.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import torch

from ._inputs import _as_dist, _as_ids, _check_finite_rows, _segments

__all__ = ["RankResult", "evaluate_rank"]

#: Rough size of the temporaries of one query chunk of :func:`evaluate_rank` (bytes).
_CHUNK_BYTES = 64 * 2**20


class RankResult(NamedTuple):
    """CMC, mAP and mINP of one evaluation, and the per-query numbers behind them.

    ``cmc``, ``mAP`` and ``mINP`` are the first three fields (``r[:3]``, ``r.cmc``, ...);
    the per-query arrays (for paired tests such as a bootstrap over queries) follow with
    default None, so ``RankResult(cmc, mAP, mINP)`` still builds one. With more fields a
    three-name unpacking ``cmc, mAP, mINP = r`` no longer works: use ``r[:3]``.

    Attributes:
        cmc: float64 [max_rank]; ``cmc[k]`` = fraction of the valid queries whose first
            true match is at rank ``<= k + 1`` (in [0, 1]).
        mAP: mean over valid queries of the non-interpolated average precision, in [0, 1].
        mINP: mean inverse negative penalty (fast-reid), in [0, 1].
        query_ap: float64 [V], the AP of each valid query (those with a true match left
            after the junk removal), in query order; ``mean(query_ap) == mAP`` up to
            float64 summation order. None when not computed (e.g. built by hand).
        query_index: int64 [V], the query indices (rows of the distance matrix) of the
            valid queries, ascending; the rows of ``query_ap`` / ``query_rank1``.
        query_rank1: float64 [V], rank-1 hit of each valid query: 1.0 / 0.0 (Market-1501
            protocol: the first kept gallery image is a true match), or the fraction of
            the draws with a rank-1 hit (CUHK03 protocol); ``mean == cmc[0]``.
        query_rank5, query_rank10: float64 [V], the same for a true match within the first
            5 / 10 (``mean == cmc[4]`` / ``cmc[9]``); None when ``max_rank`` is smaller.
        query_inp: float64 [V], each query's inverse negative penalty (matches / rank of
            the last match, fast-reid); ``mean == mINP``.
    """

    cmc: np.ndarray
    mAP: float
    mINP: float
    query_ap: np.ndarray | None = None
    query_index: np.ndarray | None = None
    query_rank1: np.ndarray | None = None
    query_rank5: np.ndarray | None = None
    query_rank10: np.ndarray | None = None
    query_inp: np.ndarray | None = None


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
        :class:`RankResult`: cmc float64 [max_rank], mAP, mINP as floats in [0, 1], and
        always the per-query ``query_ap``, ``query_index``, ``query_rank1``,
        ``query_inp`` (and ``query_rank5`` / ``query_rank10`` when ``max_rank`` reaches
        them) of the V valid queries (float64 / int64 / float64 NumPy arrays [V]).

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
    q_ap, q_idx, q_r1, q_inp = [], [], [], []            # per-query arrays, per chunk
    q_rk: dict[int, list] = {k: [] for k in (5, 10) if k <= max_rank}
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
        inp = n_v / last
        inp_sum += float(inp.sum())
        q_inp.append(inp.cpu().numpy())
        num_valid += int(valid.sum())
        valid_np = valid.cpu().numpy()
        q_ap.append(ap.cpu().numpy())
        q_idx.append(q0 + np.flatnonzero(valid_np))
        if rng is None:
            first = ranks[valid][:, 0]
            q_r1.append((first == 1).cpu().numpy().astype(np.float64))
            for k, lst in q_rk.items():
                lst.append((first <= k).cpu().numpy().astype(np.float64))
            first = first[first <= max_rank].cpu().numpy()
            first_hist += np.bincount(first - 1, minlength=max_rank)[:max_rank]
        else:
            d_np = d.cpu().numpy()
            per_q = []
            for b in np.flatnonzero(valid_np):
                q = q0 + b
                cmc_q = _cuhk03_cmc(d_np[b], q_pids[q], q_camids[q], g_camids, groups,
                                    rng, num_repeats, max_rank)
                cmc_sum += cmc_q
                per_q.append(cmc_q)
            per_q = np.asarray(per_q, dtype=np.float64).reshape(-1, max_rank)
            q_r1.append(per_q[:, 0])
            for k, lst in q_rk.items():
                lst.append(per_q[:, k - 1])
    if num_valid == 0:
        raise ValueError(
            f"no query has a true match in the gallery ({Q} queries, {G} gallery images; "
            "matches of the same camera and junk pid -1 are removed): check the pids")
    cmc = (np.cumsum(first_hist) if rng is None else cmc_sum) / num_valid
    return RankResult(cmc=cmc, mAP=ap_sum / num_valid, mINP=inp_sum / num_valid,
                      query_ap=np.concatenate(q_ap).astype(np.float64),
                      query_index=np.concatenate(q_idx).astype(np.int64),
                      query_rank1=np.concatenate(q_r1),
                      query_rank5=np.concatenate(q_rk[5]) if 5 in q_rk else None,
                      query_rank10=np.concatenate(q_rk[10]) if 10 in q_rk else None,
                      query_inp=np.concatenate(q_inp).astype(np.float64))


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


"""The Market-1501 junk rule as a dense mask, and the per-query retrieval facts built on it.

One rule, one place: a gallery image is *junk* for a query when it shows the query's
identity in the query's camera, or when its pid is ``-1`` (Zheng et al., "Scalable Person
Re-identification: A Benchmark", ICCV 2015; torchreid ``eval_market1501`` and fast-reid
``fastreid/evaluation/rank.py`` drop the same images; distractors, pid ``0``, stay and
count as wrong). :func:`junk_mask` computes it; the top-1 match, the query pickers for
figures, the true-match / different-identity distance split and the chance level all use
it. :func:`reidnb.evaluation.rank.evaluate_rank` applies the same rule sparsely.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .rank import evaluate_rank

__all__ = ["junk_mask", "top1_matches", "pick_top1_queries", "pick_queries",
           "pair_distances", "chance_level"]


def junk_mask(q_pids: Any, g_pids: Any, q_camids: Any, g_camids: Any) -> np.ndarray:
    """Which gallery images the Market-1501 protocol removes for each query.

    ``junk[i, j]`` is True when gallery image j has query i's pid *and* camid, or gallery
    pid ``-1`` (junk images). Distractors (pid ``0``) are not junk. Same rule as torchreid
    ``torchreid/metrics/rank.py`` ``eval_market1501`` (``remove = (g_pids[order] == q_pid)
    & (g_camids[order] == q_camid)``; torchreid drops pid -1 when it loads Market-1501,
    reidnb keeps those images in the gallery and drops them here).

    Args:
        q_pids, q_camids: [Q] integer ids (NumPy arrays, lists or CPU tensors).
        g_pids, g_camids: [G] integer ids.

    Returns:
        bool NumPy array [Q, G].

    Raises:
        ValueError: an id array that is not 1-D, or pids and camids of different lengths.
    """
    qp, gp, qc, gc = (_ids(x) for x in (q_pids, g_pids, q_camids, g_camids))
    for name, a in (("q_pids", qp), ("g_pids", gp), ("q_camids", qc), ("g_camids", gc)):
        if a.ndim != 1:
            raise ValueError(f"junk_mask: {name} must be 1-D, got shape {a.shape}")
    if len(qp) != len(qc) or len(gp) != len(gc):
        raise ValueError(f"junk_mask: q_pids {qp.shape} / q_camids {qc.shape} and g_pids "
                         f"{gp.shape} / g_camids {gc.shape} must have equal lengths")
    same = (qp[:, None] == gp[None, :]) & (qc[:, None] == gc[None, :])
    return same | (gp == -1)[None, :]


def top1_matches(result: Any, distmat: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-1 gallery match per query under the Market-1501 protocol.

    Gallery images of the query's identity *and* camera, and junk (pid -1), are skipped,
    as ``evaluate_rank`` does (:func:`junk_mask`); ties keep gallery order (stable sort).

    Args:
        result: an ``EvalResult`` (``distmat``, ``q_pids``, ``g_pids``, ``q_camids``,
            ``g_camids``).
        distmat: distances to rank by (default ``result.distmat``).

    Returns:
        ``(index, correct)``: int64 [Q] gallery index of the top-1 (-1 when nothing is
        left) and bool [Q] whether it has the query's identity.

    Raises:
        ValueError: ``distmat`` is not [Q, G] of the result's ids.
    """
    dm = np.asarray(result.distmat if distmat is None else distmat)
    qp, gp = np.asarray(result.q_pids), np.asarray(result.g_pids)
    if dm.shape != (len(qp), len(gp)):
        raise ValueError(f"top1_matches: distmat {dm.shape} != ({len(qp)}, {len(gp)})")
    junk = junk_mask(qp, gp, result.q_camids, result.g_camids)          # [Q, G]
    idx = np.full(len(qp), -1, dtype=np.int64)
    ok = np.zeros(len(qp), dtype=bool)
    for i in range(len(qp)):
        order = np.argsort(dm[i], kind="stable")
        valid = ~junk[i, order]
        if valid.any():
            j = int(order[np.argmax(valid)])
            idx[i], ok[i] = j, bool(gp[j] == qp[i])
    return idx, ok


def pick_top1_queries(baseline: Any, improved: Any, n: int = 2) -> list[int]:
    """Queries for a Fig. 3-style panel: the baseline's top-1 is wrong and the improved
    model's is right (002 Fig. 3, MagnifierNet), lowest query index first; topped up with
    queries both get right, then any, when there are fewer than ``n``.

    Args:
        baseline, improved: ``EvalResult`` s of the same query / gallery split (top-1 by
            :func:`top1_matches`).
        n: number of queries wanted.

    Returns:
        up to ``n`` distinct query indices (Python ints).
    """
    _, ok_a = top1_matches(baseline)
    _, ok_b = top1_matches(improved)
    order = [np.flatnonzero(~ok_a & ok_b), np.flatnonzero(ok_a & ok_b),
             np.arange(len(ok_a))]
    out: list[int] = []
    for group in order:
        for q in group:
            if len(out) == n:
                return out
            if int(q) not in out:
                out.append(int(q))
    return out


def pick_queries(a: Any, b: Any, n: int = 4, seed: int = 0) -> list[int]:
    """Queries to show in ranked lists of two results of the same split.

    The first ``n - 1`` query indices whose rank-1 correctness differs between ``a`` and
    ``b`` (in query order), then random other queries (NumPy ``default_rng(seed)``) up to
    ``n``. Rank-1 correctness is :func:`top1_matches` (junk skipped as in the Market-1501
    protocol; a query whose whole gallery is junk counts as wrong).

    Args:
        a, b: ``EvalResult`` s (``distmat``, pids, camids) with the same queries.
        n: number of queries; seed: draws the extra queries.

    Returns:
        the ``differ`` indices in query order, then the random ones sorted (Python ints).

    Raises:
        ValueError: the two results have different queries.
    """
    if len(a.q_pids) != len(b.q_pids) or not np.array_equal(a.q_pids, b.q_pids):
        raise ValueError("pick_queries: the two results have different query sets")
    _, ok_a = top1_matches(a)
    _, ok_b = top1_matches(b)
    differ = np.flatnonzero(ok_a != ok_b)[: max(0, n - 1)].tolist()
    rest = [i for i in range(len(a.q_pids)) if i not in set(differ)]
    rng = np.random.default_rng(seed)
    extra = rng.choice(rest, size=min(n - len(differ), len(rest)), replace=False).tolist()
    return [int(i) for i in differ + sorted(extra)]


def pair_distances(result: Any) -> tuple[np.ndarray, np.ndarray]:
    """Single-query distances of true-match and of different-identity pairs.

    Market-1501 protocol (as :func:`reidnb.evaluation.evaluate_rank`, :func:`junk_mask`):
    gallery images of pid -1 (junk) and of the query's own identity *and* camera are left
    out; distractors (pid 0) count as different identities.

    Args:
        result: :class:`reidnb.evaluation.EvalResult` (``distmat`` [Q, G], pids, camids).

    Returns:
        ``(pos, neg)``: float32 1-D arrays of the distances of the kept same-identity
        and different-identity pairs (row-major order of the [Q, G] matrix).
    """
    d = np.asarray(result.distmat, dtype=np.float32)                    # [Q, G]
    qp, gp = np.asarray(result.q_pids), np.asarray(result.g_pids)
    keep = ~junk_mask(qp, gp, result.q_camids, result.g_camids)         # [Q, G]
    same = qp[:, None] == gp[None, :]
    return d[keep & same], d[keep & ~same]


def chance_level(result: Any, *, draws: int = 3, seed: int = 0) -> dict[str, float]:
    """What a random ranking scores on this query/gallery split (percent).

    ``rank1`` is exact: the mean over valid queries of (true matches / kept gallery) after
    the Market-1501 junk removal (:func:`junk_mask`: same pid and camera, pid -1).
    ``mAP`` is the mean over ``draws`` random distance matrices (uniform float32 from
    NumPy ``default_rng(seed)``) evaluated with :func:`reidnb.evaluation.evaluate_rank`.

    Args:
        result: an :class:`reidnb.evaluation.EvalResult` (its pids and camids are used).
        draws: random distance matrices for the mAP; seed: their generator.

    Returns:
        ``{"rank1": float, "mAP": float}`` in percent (``rank1`` NaN when no query has a
        true match).

    Raises:
        ValueError: from ``evaluate_rank`` when no query has a true match and
            ``draws > 0``.
    """
    qp, gp = np.asarray(result.q_pids), np.asarray(result.g_pids)
    qc, gc = np.asarray(result.q_camids), np.asarray(result.g_camids)
    junk = junk_mask(qp, gp, qc, gc)                                    # [Q, G]
    match = (qp[:, None] == gp[None, :]) & ~junk                        # [Q, G]
    kept = (~junk).sum(1)
    ok = match.any(1)
    rank1 = float((match.sum(1)[ok] / kept[ok]).mean()) if ok.any() else float("nan")
    rng = np.random.default_rng(seed)
    maps = [evaluate_rank(rng.random((len(qp), len(gp))).astype(np.float32), qp, gp, qc, gc,
                          max_rank=10).mAP for _ in range(int(draws))]
    return {"rank1": 100.0 * rank1, "mAP": 100.0 * float(np.mean(maps))}


def _ids(x: Any) -> np.ndarray:
    """Ids as a NumPy array (CPU copy of a tensor)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)

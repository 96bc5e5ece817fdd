"""Tests of reidnb.evaluation.retrieval: the junk rule and what is built on it, hand-worked."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from reidnb.evaluation import evaluate_rank
from reidnb.evaluation.retrieval import (chance_level, junk_mask, pair_distances,
                                         pick_queries, pick_top1_queries, top1_matches)

# 2 queries x 4 gallery images.
#   q0: pid 1 cam 0          q1: pid 2 cam 0
#   g0: pid 1 cam 0  -> junk for q0 (same pid and camera), kept for q1 (other identity)
#   g1: pid 1 cam 1  -> true match of q0 (other camera), wrong for q1
#   g2: pid 2 cam 1  -> wrong for q0, true match of q1
#   g3: pid -1       -> junk for both
Q_PIDS, Q_CAMS = np.array([1, 2]), np.array([0, 0])
G_PIDS, G_CAMS = np.array([1, 1, 2, -1]), np.array([0, 1, 1, 1])
JUNK = np.array([[True, False, False, True],
                 [False, False, False, True]])


def _result(distmat):
    return SimpleNamespace(distmat=np.asarray(distmat, dtype=np.float32), q_pids=Q_PIDS,
                           g_pids=G_PIDS, q_camids=Q_CAMS, g_camids=G_CAMS)


# q0: g3 (0.0, junk), g0 (0.1, junk), then g1 and g2 tie at 0.3 -> g1 (lower index) is
#     the top-1: correct.  q1: g3 (0.1, junk), g1 (0.2, pid 1) -> top-1 wrong.
A = _result([[0.1, 0.3, 0.3, 0.0],
             [0.5, 0.2, 0.4, 0.1]])
# The opposite: q0's top-1 g2 (0.2, wrong); q1's top-1 g2 (0.1, right).
B = _result([[0.0, 0.5, 0.2, 0.9],
             [0.3, 0.4, 0.1, 0.0]])


def test_junk_mask_hand_worked():
    j = junk_mask(Q_PIDS, G_PIDS, Q_CAMS, G_CAMS)
    assert j.dtype == np.bool_ and j.shape == (2, 4)
    np.testing.assert_array_equal(j, JUNK)
    # distractors (pid 0) are not junk; tensors and lists are accepted
    np.testing.assert_array_equal(junk_mask(torch.tensor([0]), [0, 0], [0], [1, 0]),
                                  [[False, True]])
    np.testing.assert_array_equal(junk_mask([5], [0, 5, -1], [0], [0, 1, 0]),
                                  [[False, False, True]])
    with pytest.raises(ValueError, match="equal lengths"):
        junk_mask([1, 2], [1], [0], [0])
    with pytest.raises(ValueError, match="1-D"):
        junk_mask([[1]], [1], [0], [0])


def test_junk_mask_is_the_rule_of_evaluate_rank():
    # Removing the junk columns by hand and evaluating without any junk left gives the
    # same numbers as evaluate_rank on the full gallery.
    rng = np.random.default_rng(0)
    qp, gp = rng.integers(1, 8, 30), rng.integers(-1, 8, 120)
    qc, gc = rng.integers(0, 3, 30), rng.integers(0, 3, 120)
    d = rng.random((30, 120))
    full = evaluate_rank(d, qp, gp, qc, gc, max_rank=5)
    junk = junk_mask(qp, gp, qc, gc)
    aps = []
    for i in range(30):
        keep = ~junk[i]
        if not (gp[keep] == qp[i]).any():
            continue
        aps.append(evaluate_rank(d[i:i + 1, keep], qp[i:i + 1], gp[keep], [-9], gc[keep]).mAP)
    np.testing.assert_allclose(full.query_ap, aps)


def test_top1_matches_hand_worked():
    idx, ok = top1_matches(A)
    np.testing.assert_array_equal(idx, [1, 1])
    np.testing.assert_array_equal(ok, [True, False])
    assert idx.dtype == np.int64 and ok.dtype == np.bool_
    idx, ok = top1_matches(A, B.distmat)                  # another distance matrix
    np.testing.assert_array_equal(idx, [2, 2])
    np.testing.assert_array_equal(ok, [False, True])
    # a gallery of junk only: no top-1 (-1), not correct
    r = SimpleNamespace(distmat=np.zeros((1, 2)), q_pids=np.array([1]),
                        g_pids=np.array([1, -1]), q_camids=np.array([0]),
                        g_camids=np.array([0, 0]))
    idx, ok = top1_matches(r)
    assert idx.tolist() == [-1] and ok.tolist() == [False]
    with pytest.raises(ValueError, match="distmat"):
        top1_matches(A, np.zeros((2, 3)))


def test_pick_top1_queries_hand_worked():
    # baseline A right on q0 only, improved B right on q1 only:
    # first the queries A gets wrong and B right ([1]); none both right; then any (0).
    assert pick_top1_queries(A, B, n=1) == [1]
    assert pick_top1_queries(A, B, n=2) == [1, 0]
    assert pick_top1_queries(B, A, n=2) == [0, 1]
    assert pick_top1_queries(A, A, n=2) == [0, 1]        # both right on q0 first
    assert pick_top1_queries(A, B, n=5) == [1, 0]        # only two queries


def test_pick_queries_hand_worked():
    # rank-1 correctness differs on both queries: the first n - 1 of them, then random.
    assert pick_queries(A, B, n=2) == [0, 1]
    assert pick_queries(A, B, n=3) == [0, 1]             # both differ, nothing left
    assert pick_queries(A, A, n=2, seed=0) == sorted(
        np.random.default_rng(0).choice([0, 1], size=2, replace=False).tolist())
    other = SimpleNamespace(**{**vars(B), "q_pids": np.array([1, 3])})
    with pytest.raises(ValueError, match="different query sets"):
        pick_queries(A, other)


def test_pair_distances_hand_worked():
    # kept pairs (row-major): q0-g1 same 0.3, q0-g2 other 0.3; q1-g0 other 0.5,
    # q1-g1 other 0.2, q1-g2 same 0.4. Junk pairs (q0-g0, q0-g3, q1-g3) are left out.
    pos, neg = pair_distances(A)
    assert pos.dtype == neg.dtype == np.float32
    np.testing.assert_allclose(pos, [0.3, 0.4])
    np.testing.assert_allclose(neg, [0.3, 0.5, 0.2])


def test_chance_level_hand_worked():
    # rank-1 of a random ranking: q0 has 1 true match among 2 kept images (1/2), q1 1
    # among 3 (1/3) -> (1/2 + 1/3) / 2 = 5/12.
    c = chance_level(A, draws=4, seed=1)
    assert c["rank1"] == pytest.approx(100 * 5 / 12)
    # mAP: evaluate_rank of the same random matrices (the distances themselves unused)
    rng = np.random.default_rng(1)
    maps = [evaluate_rank(rng.random((2, 4)).astype(np.float32), Q_PIDS, G_PIDS, Q_CAMS,
                          G_CAMS, max_rank=10).mAP for _ in range(4)]
    assert c["mAP"] == pytest.approx(100 * np.mean(maps))
    # each query has one match: AP is 1/rank, so the expectation is (3/4 + 11/18) / 2
    # (standard error of 150 draws ~1.6 points; the seed is fixed)
    many = chance_level(A, draws=150, seed=0)
    assert many["mAP"] == pytest.approx(100 * (3 / 4 + 11 / 18) / 2, abs=5)

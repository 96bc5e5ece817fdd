"""Tests of reidnb.evaluation: hand-worked CMC / AP / mINP, protocols, re-ranking."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from reference_impl import reference_re_ranking

from reidnb import evaluation as ev
from reidnb.evaluation import (RankResult, compute_distance_matrix, evaluate_features,
                               evaluate_rank, extract_features, multi_query_features,
                               re_ranking)

# ----------------------------------------------------------------- slow references


def slow_eval_market(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50):
    """torchreid eval_market1501 + fast-reid mINP, written as loops; junk (pid -1) removed,
    stable sort (ties by gallery index)."""
    all_cmc, all_ap, all_inp = [], [], []
    for q in range(distmat.shape[0]):
        order = np.argsort(distmat[q], kind="stable")
        keep = [g for g in order
                if g_pids[g] != -1 and not (g_pids[g] == q_pids[q] and g_camids[g] == q_camids[q])]
        raw = [1 if g_pids[g] == q_pids[q] else 0 for g in keep]
        if sum(raw) == 0:
            continue
        hits, precisions, last = 0, [], 0
        cmc = np.zeros(max_rank)
        for pos, r in enumerate(raw, start=1):
            if r:
                hits += 1
                precisions.append(hits / pos)
                last = pos
                if hits == 1:
                    cmc[pos - 1:] = 1 if pos <= max_rank else 0
        all_cmc.append(cmc)
        all_ap.append(sum(precisions) / hits)
        all_inp.append(hits / last)
    return np.mean(all_cmc, 0), float(np.mean(all_ap)), float(np.mean(all_inp))


def random_problem(rng, Q, G, n_ids, n_cams=6, ties=False):
    q_pids = rng.integers(1, n_ids + 1, Q)
    g_pids = rng.integers(1, n_ids + 1, G)
    g_pids[rng.random(G) < 0.1] = 0                 # distractors
    g_pids[rng.random(G) < 0.05] = -1               # junk
    q_cams, g_cams = rng.integers(0, n_cams, Q), rng.integers(0, n_cams, G)
    d = rng.random((Q, G)).astype(np.float32)
    if ties:
        d = np.round(d * 8) / 8                     # many equal distances
    return d, q_pids, g_pids, q_cams, g_cams


def features_problem(rng, n_ids, per_id, dim=16, spread=0.6):
    """Clustered features: identity centre + noise; returns features, pids, camids."""
    centres = rng.normal(size=(n_ids, dim))
    pids = np.repeat(np.arange(1, n_ids + 1), per_id)
    feats = centres[pids - 1] + spread * rng.normal(size=(len(pids), dim))
    cams = rng.integers(0, 3, len(pids))
    return feats.astype(np.float32), pids, cams


# ----------------------------------------------------------------- hand-worked ranks


def test_hand_worked_cmc_ap_minp_with_junk_distractors_and_skipped_query():
    # gallery:      g0        g1      g2      g3       g4            g5
    g_pids = np.array([1, 2, 1, -1, 0, 1])
    g_cams = np.array([0, 1, 1, 1, 2, 2])
    # query A (pid 1, cam 0): g0 same pid+cam -> removed; g3 junk -> removed.
    #   kept by distance: g1 0.2 (wrong), g2 0.3 (match, rank 2), g4 0.4 (distractor,
    #   wrong), g5 0.5 (match, rank 4).
    #   AP = (1/2 + 2/4) / 2 = 1/2; INP = 2 matches / rank 4 = 1/2; first match rank 2.
    # query B (pid 2, cam 0): only g3 (junk) removed.
    #   kept by distance: g2 0.1, g4 0.2, g1 0.6 (match, rank 3), g5 0.7, g0 0.9.
    #   AP = 1/3; INP = 1/3; first match rank 3.
    # query C (pid 3): no gallery image of pid 3 -> skipped.
    d = np.array([[0.1, 0.2, 0.3, 0.05, 0.4, 0.5],
                  [0.9, 0.6, 0.1, 0.3, 0.2, 0.7],
                  [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]], dtype=np.float32)
    r = evaluate_rank(d, [1, 2, 3], g_pids, [0, 0, 0], g_cams, max_rank=5)
    assert isinstance(r, RankResult)
    # cmc[k] = share of the 2 valid queries with first match at rank <= k+1
    np.testing.assert_allclose(r.cmc, [0, 0.5, 1, 1, 1])
    assert r.mAP == pytest.approx((1 / 2 + 1 / 3) / 2)        # 5/12
    assert r.mINP == pytest.approx((1 / 2 + 1 / 3) / 2)
    assert len(r.cmc) == 5


def test_per_query_ap_and_rank1_of_the_hand_worked_case():
    # The case above: query A (row 0) AP 1/2, first match rank 2; query B (row 1) AP 1/3,
    # first match rank 3; query C (row 2) has no match -> not in the per-query arrays.
    g_pids = np.array([1, 2, 1, -1, 0, 1])
    g_cams = np.array([0, 1, 1, 1, 2, 2])
    d = np.array([[0.1, 0.2, 0.3, 0.05, 0.4, 0.5],
                  [0.9, 0.6, 0.1, 0.3, 0.2, 0.7],
                  [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]], dtype=np.float32)
    for chunk in (None, 1):
        r = evaluate_rank(d, [1, 2, 3], g_pids, [0, 0, 0], g_cams, max_rank=5,
                          chunk_size=chunk)
        np.testing.assert_array_equal(r.query_index, [0, 1])
        assert r.query_index.dtype == np.int64 and r.query_ap.dtype == np.float64
        np.testing.assert_allclose(r.query_ap, [1 / 2, 1 / 3])
        np.testing.assert_array_equal(r.query_rank1, [0.0, 0.0])
        assert float(np.mean(r.query_ap)) == pytest.approx(r.mAP)
        assert r[:3] == (r.cmc, r.mAP, r.mINP)
    # query 0 matches at rank 1 (g1), query 1 at rank 2 (g1 first, then g0)
    r = evaluate_rank(np.array([[0.3, 0.1], [0.2, 0.1]]), [2, 1], [1, 2], [0, 0], [1, 1])
    np.testing.assert_allclose(r.query_ap, [1.0, 0.5])
    np.testing.assert_array_equal(r.query_rank1, [1.0, 0.0])
    assert float(np.mean(r.query_rank1)) == r.cmc[0] == 0.5
    # CUHK03 protocol: query_rank1 is the share of draws with a rank-1 hit; mean = cmc[0]
    c = evaluate_rank(d, [1, 2, 3], g_pids, [0, 0, 0], g_cams, max_rank=5, protocol="cuhk03")
    assert float(np.mean(c.query_rank1)) == pytest.approx(c.cmc[0])
    np.testing.assert_allclose(c.query_ap, [1 / 2, 1 / 3])


def test_per_query_rank5_rank10_and_inp_average_to_cmc_and_minp():
    # query 0: matches (pid 1, other camera) at ranks 2 and 6 of 8 -> rank-5 hit 1, rank-10
    # hit 1, INP 2/6; query 1: its only match at rank 7 -> rank-5 0, rank-10 1, INP 1/7.
    g_pids = np.array([9, 1, 9, 9, 9, 1, 2, 9])
    g_cams = np.ones(8, dtype=int)
    d0 = d1 = np.arange(8, dtype=np.float32)      # gallery ranked in index order
    r = evaluate_rank(np.stack([d0, d1]), [1, 2], g_pids, [0, 0], g_cams, max_rank=10)
    np.testing.assert_array_equal(r.query_rank5, [1.0, 0.0])
    np.testing.assert_array_equal(r.query_rank10, [1.0, 1.0])
    np.testing.assert_allclose(r.query_inp, [2 / 6, 1 / 7])
    assert np.mean(r.query_rank5) == pytest.approx(r.cmc[4])
    assert np.mean(r.query_rank10) == pytest.approx(r.cmc[9])
    assert np.mean(r.query_inp) == pytest.approx(r.mINP)
    # max_rank below 5: no rank-5 / rank-10 arrays (they are not defined), INP still
    short = evaluate_rank(np.stack([d0, d1]), [1, 2], g_pids, [0, 0], g_cams, max_rank=3)
    assert short.query_rank5 is None and short.query_rank10 is None
    assert short.query_inp is not None
    # CUHK03 protocol: per-query shares of the draws, same means
    c = evaluate_rank(np.stack([d0, d1]), [1, 2], g_pids, [0, 0], g_cams, max_rank=10,
                      protocol="cuhk03")
    assert np.mean(c.query_rank5) == pytest.approx(c.cmc[4])
    assert np.mean(c.query_rank10) == pytest.approx(c.cmc[9])


def test_distractor_counts_as_wrong_and_same_camera_match_is_junk():
    # query pid 5 cam 0; g0 distractor (0) nearest, g1 pid 5 cam 0 (junk), g2 pid 5 cam 1.
    # kept: g0 (wrong), g2 (match at rank 2) -> AP 1/2, INP 1/2.
    r = evaluate_rank(np.array([[0.1, 0.0, 0.2]]), [5], [0, 5, 5], [0], [3, 0, 1],
                      max_rank=3)
    np.testing.assert_allclose(r.cmc, [0, 1, 1])
    assert (r.mAP, r.mINP) == pytest.approx((0.5, 0.5))


def test_ties_are_ranked_by_gallery_index():
    # All four distances equal: order g0, g1, g2, g3 (stable sort).
    # query pid 1 cam 0; g0 pid 2 (wrong), g1, g2 pid 1 cam 1 (matches), g3 pid 3.
    # matches at ranks 2 and 3: AP = (1/2 + 2/3)/2 = 7/12; INP = 2/3; first rank 2.
    d = np.full((1, 4), 0.5, dtype=np.float32)
    r = evaluate_rank(d, [1], [2, 1, 1, 3], [0], [1, 1, 1, 1], max_rank=4)
    np.testing.assert_allclose(r.cmc, [0, 1, 1, 1])
    assert r.mAP == pytest.approx(7 / 12)
    assert r.mINP == pytest.approx(2 / 3)
    # Match first in index order: g0 pid 1, g1 pid 2 -> rank 1, AP 1, INP 1.
    r = evaluate_rank(np.full((1, 2), 0.3), [1], [1, 2], [0], [1, 1], max_rank=2)
    np.testing.assert_allclose(r.cmc, [1, 1])
    assert (r.mAP, r.mINP) == (1.0, 1.0)
    # Partial tie: g1 (match, 0.2) ties with g0 (wrong, 0.2) and g2 (wrong, 0.2); g3 (match 0.1).
    # order: g3 (match, rank 1), g0 (wrong), g1 (match, rank 3), g2.
    # AP = (1/1 + 2/3)/2 = 5/6; INP = 2/3.
    r = evaluate_rank(np.array([[0.2, 0.2, 0.2, 0.1]]), [1], [2, 1, 3, 1], [0], [1, 1, 1, 1])
    assert r.mAP == pytest.approx(5 / 6)
    assert r.mINP == pytest.approx(2 / 3)


def test_cmc_length_is_max_rank_even_beyond_gallery():
    r = evaluate_rank(np.array([[0.2, 0.1]]), [1], [1, 2], [0], [1, 1], max_rank=4)
    np.testing.assert_allclose(r.cmc, [0, 1, 1, 1])


@pytest.mark.parametrize("ties", [False, True])
def test_matches_slow_reference_on_random_data(ties):
    rng = np.random.default_rng(1)
    d, qp, gp, qc, gc = random_problem(rng, Q=70, G=300, n_ids=25, ties=ties)
    cmc, mAP, mINP = slow_eval_market(d, qp, gp, qc, gc, max_rank=50)
    for chunk in (None, 7):
        r = evaluate_rank(d, qp, gp, qc, gc, max_rank=50, chunk_size=chunk)
        np.testing.assert_allclose(r.cmc, cmc, atol=1e-12)
        assert r.mAP == pytest.approx(mAP, abs=1e-12)
        assert r.mINP == pytest.approx(mINP, abs=1e-12)
    # float64, torch and non-contiguous input give the same numbers
    r64 = evaluate_rank(torch.from_numpy(d.astype(np.float64)), torch.from_numpy(qp), gp, qc, gc)
    assert r64.mAP == pytest.approx(mAP, abs=1e-12)
    rev = evaluate_rank(d[:, ::-1], qp, gp[::-1], qc, gc[::-1])      # negative strides
    _, mAP_rev, _ = slow_eval_market(d[:, ::-1], qp, gp[::-1], qc, gc[::-1])
    assert rev.mAP == pytest.approx(mAP_rev, abs=1e-12)


def test_market_numbers_equal_torchreid_style_reference_without_junk():
    # torchreid drops junk at load time: evaluating on the gallery without pid -1 must give
    # the same numbers as ours with junk kept.
    rng = np.random.default_rng(2)
    d, qp, gp, qc, gc = random_problem(rng, Q=40, G=200, n_ids=15)
    keep = gp != -1
    a = evaluate_rank(d, qp, gp, qc, gc)
    b = evaluate_rank(d[:, keep], qp, gp[keep], qc, gc[keep])
    np.testing.assert_allclose(a.cmc, b.cmc)
    assert (a.mAP, a.mINP) == pytest.approx((b.mAP, b.mINP))


# ----------------------------------------------------------------- CUHK03 protocol


def test_cuhk03_one_image_per_identity_is_deterministic_and_equals_market():
    # Each gallery identity has one image (other camera): no draw changes anything.
    # query 0 pid 1: gallery order g1 (pid 2), g0 (pid 1) -> rank 2.
    # query 1 pid 2: g1 nearest -> rank 1.  query 2 pid 3: g2 after g0, g1 -> rank 3.
    d = np.array([[0.5, 0.1, 0.9], [0.4, 0.2, 0.3], [0.1, 0.2, 0.3]])
    ids = ([1, 2, 3], [1, 2, 3], [0, 0, 0], [1, 1, 1])
    r = evaluate_rank(d, *ids, max_rank=3, protocol="cuhk03")
    np.testing.assert_allclose(r.cmc, [1 / 3, 2 / 3, 1])
    m = evaluate_rank(d, *ids, max_rank=3)
    np.testing.assert_allclose(r.cmc, m.cmc)
    assert r.mAP == pytest.approx((1 / 2 + 1 + 1 / 3) / 3)
    assert r.mINP == pytest.approx(m.mINP)


def test_cuhk03_draws_one_image_per_identity():
    # query pid 1 cam 0. gallery: pid 1 at 0.3 and 0.6 (cam 1), pid 2 at 0.2 and 0.5,
    # pid 3 at 0.4. Draw match m and one pid-2 image:
    #   m = 0.3 (p 1/2): rank 1 if pid-2 draw is 0.5 (p 1/2) else 2.
    #   m = 0.6 (p 1/2): 0.2 or 0.5 and 0.4 are before it -> rank 3.
    # => P(rank 1) = 1/4, P(rank <= 2) = 1/2, P(rank <= 3) = 1.
    # AP on the whole gallery: order 0.2 w, 0.3 m, 0.4 w, 0.5 w, 0.6 m -> (1/2 + 2/5)/2.
    d = np.array([[0.3, 0.6, 0.2, 0.5, 0.4]])
    args = (d, [1], [1, 1, 2, 2, 3], [0], [1, 1, 1, 1, 1])
    r = evaluate_rank(*args, max_rank=3, protocol="cuhk03", num_repeats=4000)
    np.testing.assert_allclose(r.cmc, [0.25, 0.5, 1.0], atol=0.03)
    assert r.mAP == pytest.approx(0.45)
    assert r.mINP == pytest.approx(0.4)
    a = evaluate_rank(*args, max_rank=3, protocol="cuhk03", seed=3)
    b = evaluate_rank(*args, max_rank=3, protocol="cuhk03", seed=3)
    np.testing.assert_array_equal(a.cmc, b.cmc)
    assert np.all(np.round(a.cmc * 10, 9) == np.round(a.cmc * 10))   # 10 repeats


# ----------------------------------------------------------------- validation


def test_input_validation():
    d = np.zeros((2, 3), dtype=np.float32)
    with pytest.raises(ValueError, match=r"\(2, 3\).*q_pids \(3,\)"):
        evaluate_rank(d, [1, 2, 3], [1, 2, 3], [0, 0], [0, 0, 0])
    with pytest.raises(ValueError, match="g_camids"):
        evaluate_rank(d, [1, 2], [1, 2, 3], [0, 0], [0, 0])
    with pytest.raises(ValueError, match="2-D"):
        evaluate_rank(np.zeros(3), [1], [1, 2, 3], [0], [0, 0, 0])
    with pytest.raises(ValueError, match="protocol"):
        evaluate_rank(d, [1, 2], [1, 2, 3], [0, 0], [1, 1, 1], protocol="viper")
    bad = d.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"non-finite.*\[1, 2\]"):
        evaluate_rank(bad, [1, 2], [1, 2, 3], [0, 0], [1, 1, 1])
    with pytest.raises(ValueError, match="no query has a true match"):
        evaluate_rank(d, [7, 8], [1, 2, 3], [0, 0], [1, 1, 1])
    with pytest.raises(TypeError, match="integers"):
        evaluate_rank(d, [1.5, 2.0], [1, 2, 3], [0, 0], [1, 1, 1])
    with pytest.raises(ValueError, match=r"\(3, 4\)"):
        compute_distance_matrix(torch.zeros(2, 3), torch.zeros(3, 4))
    with pytest.raises(ValueError, match="metric"):
        compute_distance_matrix(torch.zeros(2, 3), torch.zeros(3, 3), metric="l1")
    with pytest.raises(ValueError, match=r"q_q_dist \[Q, Q\].*\(2, 2\)"):
        re_ranking(np.ones((2, 3)), np.ones((2, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="lambda_value"):
        re_ranking(np.ones((2, 3)), np.ones((2, 2)), np.ones((3, 3)), lambda_value=2)


# ----------------------------------------------------------------- distances


def test_compute_distance_matrix():
    a = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    b = torch.tensor([[3.0, 0.0], [0.0, 2.0]])
    # Euclidean: |(0,0)-(3,0)| = 3, |(0,0)-(0,2)| = 2, |(3,4)-(3,0)| = 4, |(3,4)-(0,2)| = sqrt(13)
    torch.testing.assert_close(compute_distance_matrix(a, b),
                               torch.tensor([[3.0, 2.0], [4.0, math.sqrt(13)]]))
    # cosine: 1 - cos; (3,4)/5 . (1,0) = 0.6 -> 0.4; . (0,1) = 0.8 -> 0.2; zero vector -> 1
    torch.testing.assert_close(compute_distance_matrix(a, b, "cosine"),
                               torch.tensor([[1.0, 1.0], [0.4, 0.2]]))


# ----------------------------------------------------------------- re-ranking


def test_re_ranking_hand_worked():
    # Points on a line: query x=0; gallery x=1, 10, 11. k1 = 1, k2 = 1.
    # squared distances D^2: row/col 0: [0, 1, 100, 121]; 1: [1, 0, 81, 100];
    # 2: [100, 81, 0, 1]; 3: [121, 100, 1, 0]. Column maxima 121, 100, 100, 121.
    # O row 0 = [0, 1/121, 100/121, 1], O row 1 = [0.01, 0, 0.81, 1].
    # k1+1 = 2 nearest: R(0)={0,1}, R(1)={1,0}, R(2)={2,3}, R(3)={3,2}: all reciprocal,
    # K(0)=K(1)={0,1}, K(2)=K(3)={2,3}; half sets (round(0.5)+1 = 1) add nothing.
    # V[0] = softmax(-[0, 1/121]) on {0,1}; V[1] = softmax(-[0.01, 0]) on {0,1};
    # V[2], V[3] live on {2,3}: no overlap with V[0] -> Jaccard distance 1.
    e1, e2 = math.exp(-1 / 121), math.exp(-0.01)
    v00, v01 = 1 / (1 + e1), e1 / (1 + e1)
    v10, v11 = e2 / (1 + e2), 1 / (1 + e2)
    s = min(v00, v10) + min(v01, v11)
    jac = 1 - s / (2 - s)
    qg = np.array([[1.0, 10.0, 11.0]])
    qq = np.array([[0.0]])
    gg = np.array([[0.0, 9.0, 10.0], [9.0, 0.0, 1.0], [10.0, 1.0, 0.0]])
    out = re_ranking(qg, qq, gg, k1=1, k2=1, lambda_value=0.3)
    assert out.dtype == np.float32 and out.shape == (1, 3)
    np.testing.assert_allclose(out, [[0.7 * jac + 0.3 / 121, 0.7 + 0.3 * 100 / 121, 0.7 + 0.3]],
                               atol=1e-6)
    np.testing.assert_allclose(re_ranking(qg, qq, gg, k1=1, k2=1, lambda_value=0.0),
                               [[jac, 1, 1]], atol=1e-6)
    # (float32 cancellation in 1 - s/(2-s) with s ~ 0.995: compare absolutely)
    np.testing.assert_allclose(out, reference_re_ranking(qg, qq, gg, 1, 1, 0.3), atol=1e-6)


@pytest.mark.parametrize("k1,k2,lam", [(20, 6, 0.3), (5, 3, 0.0), (7, 1, 0.5), (4, 6, 1.0)])
def test_re_ranking_equals_reference(k1, k2, lam):
    rng = np.random.default_rng(k1 + k2)
    feats, pids, _ = features_problem(rng, n_ids=12, per_id=5)          # 60 images
    f = torch.from_numpy(feats)
    perm = rng.permutation(len(f))
    q, g = f[perm[:15]], f[perm[15:]]
    qg = compute_distance_matrix(q, g).numpy()
    qq = compute_distance_matrix(q, q).numpy()
    gg = compute_distance_matrix(g, g).numpy()
    ref = reference_re_ranking(qg, qq, gg, k1, k2, lam)
    out = re_ranking(qg, qq, gg, k1, k2, lam, chunk_size=16, pair_budget=300)
    np.testing.assert_allclose(out, ref, atol=1e-5)
    # float64 inputs and one-chunk processing give the same result too
    ref64 = reference_re_ranking(qg.astype(np.float64), qq.astype(np.float64),
                            gg.astype(np.float64), k1, k2, lam)
    np.testing.assert_allclose(re_ranking(qg.astype(np.float64), qq.astype(np.float64),
                                          gg.astype(np.float64), k1, k2, lam), ref64, atol=1e-5)


def test_re_ranking_non_symmetric_inputs_follow_the_reference():
    # The reference transposes after scaling columns: asymmetric q_q / g_g blocks matter.
    rng = np.random.default_rng(5)
    qg = rng.random((6, 14)) + 0.1
    qq = rng.random((6, 6)) + 0.1
    gg = rng.random((14, 14)) + 0.1
    np.testing.assert_allclose(re_ranking(qg, qq, gg, 4, 3, 0.3),
                               reference_re_ranking(qg, qq, gg, 4, 3, 0.3), atol=1e-5)


def test_re_ranking_improves_an_obvious_cluster():
    # Query and its 3 true gallery neighbours form a tight cluster; a distractor sits
    # slightly closer to the query than the farthest cluster member but belongs to another
    # cluster. After re-ranking every cluster member comes before every other image.
    pts = {"q": [0.0, 0.0], "a": [0.3, 0.0], "b": [0.0, 0.3], "c": [0.45, 0.45],
           "x": [0.6, 0.0]}
    other = [[0.9, 0.0], [1.0, 0.1], [0.95, -0.1], [5.0, 5.0], [5.1, 5.0], [5.0, 5.1]]
    q = torch.tensor([pts["q"]])
    g = torch.tensor([pts["a"], pts["b"], pts["c"], pts["x"]] + other)
    qg = compute_distance_matrix(q, g).numpy()
    assert qg[0, 3] < qg[0, 2]                      # distractor x closer than c
    out = re_ranking(qg, compute_distance_matrix(q, q).numpy(),
                     compute_distance_matrix(g, g).numpy(), k1=3, k2=2, lambda_value=0.3)
    assert out[0, :3].max() < out[0, 3:].min()


# ----------------------------------------------------------------- features & evaluation


class _Tiny(torch.nn.Module):
    """Eval mode: feature = [mean of left half, mean of right half] of the image."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, x, mask=None):
        w = x.shape[-1] // 2
        f = torch.stack([x[..., :w].mean((1, 2, 3)), x[..., w:].mean((1, 2, 3))], 1)
        if mask is not None:
            f = f + mask.flatten(1)[:, :1]
        return f * self.scale


def _batches(imgs, pids, cams, bs=2, extra=None):
    out = []
    for i in range(0, len(imgs), bs):
        b = {"img": imgs[i:i + bs], "pid": torch.tensor(pids[i:i + bs]),
             "camid": torch.tensor(cams[i:i + bs]), "path": [f"p{j}" for j in range(i, min(i + bs, len(imgs)))]}
        if extra is not None:
            b["mask"] = extra[i:i + bs]
        out.append(b)
    return out


def test_extract_features_flip_and_mode():
    imgs = torch.zeros(3, 3, 4, 4)
    imgs[:, :, :, :2] = torch.tensor([1.0, 2.0, 3.0])[:, None, None, None]   # left half
    model = _Tiny().train()
    out = extract_features(model, _batches(imgs, [1, 2, 3], [0, 1, 0]))
    assert model.training                                # mode restored
    assert out.feats.dtype == torch.float32 and out.feats.device.type == "cpu"
    torch.testing.assert_close(out.feats, torch.tensor([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]]))
    assert out.pids.tolist() == [1, 2, 3] and out.pids.dtype == np.int64
    assert out.paths == ["p0", "p1", "p2"]
    # flip: mean of feature and the flipped image's feature -> (v + 0)/2 for both halves
    f = extract_features(model, _batches(imgs, [1, 2, 3], [0, 1, 0]), flip=True).feats
    torch.testing.assert_close(f, torch.tensor([[0.5, 0.5], [1.0, 1.0], [1.5, 1.5]]))
    # input_fn returning a dict -> keyword arguments (e.g. MaskReID's mask)
    masks = torch.full((3, 1, 4, 4), 10.0)
    f = extract_features(model, _batches(imgs, [1, 2, 3], [0, 1, 0], extra=masks),
                         input_fn=lambda b: {"x": b["img"], "mask": b["mask"]}).feats
    torch.testing.assert_close(f[:, 1], torch.full((3,), 10.0))
    with pytest.raises(ValueError, match="no batch"):
        extract_features(model, [])


def test_multi_query_features_average():
    # normalised: (1,0), (0,1), (3,4)/5 = (0.6, 0.8); groups {0,1} and {2}
    f = torch.tensor([[1.0, 0.0], [0.0, 1.0], [3.0, 4.0]])
    torch.testing.assert_close(multi_query_features(f, [[0, 1], [2]]),
                               torch.tensor([[0.5, 0.5], [0.6, 0.8]]))
    torch.testing.assert_close(multi_query_features(f, [[0, 2]], normalize=False),
                               torch.tensor([[2.0, 2.0]]))
    with pytest.raises(ValueError, match="group 1 is empty"):
        multi_query_features(f, [[0], []])


def _mq_case():
    # query pid 1 cam 0 at angle 40 deg; gallery: g0 pid 2 at 45 deg, g1 pid 1 at 0 deg.
    # single query: nearest is g0 (wrong) -> rank 2, AP 1/2.
    # multi-query group: query (40 deg) and another image at -60 deg; the mean of the
    # unit vectors points at -10 deg -> g1 nearest -> rank 1, AP 1.
    def unit(deg):
        return [math.cos(math.radians(deg)), math.sin(math.radians(deg))]
    qf = torch.tensor([unit(40)])
    gf = torch.tensor([unit(45), unit(0)])
    mq_feats = torch.tensor([unit(40), unit(-60)])
    return qf, gf, mq_feats


def test_evaluate_features_single_and_multi_query():
    qf, gf, mq_feats = _mq_case()
    mq = multi_query_features(mq_feats, [[0, 1]])
    res = evaluate_features(qf, gf, [1], [2, 1], [0], [1, 1], mq_qf=mq, max_rank=2,
                            rerank=True, k1=1, k2=1)
    assert list(res.results) == ["single-query", "single-query+re-rank", "multi-query",
                                 "multi-query+re-rank"]
    assert res.results["single-query"].mAP == pytest.approx(0.5)
    assert res.results["multi-query"].mAP == pytest.approx(1.0)
    df = res.summary()
    assert list(df.columns) == ["setting", "rank1", "rank5", "rank10", "mAP", "mINP"]
    assert df.loc[0, "rank1"] == 0 and df.loc[2, "rank1"] == 100
    assert math.isnan(df.loc[0, "rank5"])                     # max_rank 2
    assert res.distmat.shape == (1, 2) and res.distmat_rerank.shape == (1, 2)
    assert res.distmat[0, 0] < res.distmat[0, 1]
    with pytest.raises(ValueError, match=r"mq_qf"):
        evaluate_features(qf, gf, [1], [2, 1], [0], [1, 1], mq_qf=torch.zeros(2, 2))


def _assert_same_result(a, b):
    assert a.metric == b.metric and a.q_paths == b.q_paths and a.g_paths == b.g_paths
    for f in ("qf", "gf", "mq_qf"):
        x, y = getattr(a, f), getattr(b, f)
        assert (x is None) == (y is None)
        if x is not None:
            assert isinstance(y, torch.Tensor) and y.dtype == x.dtype and torch.equal(x, y)
    for f in ("q_pids", "g_pids", "q_camids", "g_camids", "distmat", "distmat_rerank"):
        x, y = getattr(a, f), getattr(b, f)
        assert (x is None) == (y is None)
        if x is not None:
            assert y.dtype == x.dtype
            np.testing.assert_array_equal(x, y)
    assert list(a.results) == list(b.results)
    for name, r in a.results.items():
        s = b.results[name]
        np.testing.assert_array_equal(r.cmc, s.cmc)
        assert (r.mAP, r.mINP) == (s.mAP, s.mINP) and type(s.mAP) is float
        for f in ("query_ap", "query_index", "query_rank1", "query_rank5", "query_rank10",
                  "query_inp"):
            np.testing.assert_array_equal(getattr(r, f), getattr(s, f))


def test_eval_result_round_trips_through_savez(tmp_path):
    qf, gf, mq_feats = _mq_case()
    mq = multi_query_features(mq_feats, [[0, 1]])
    full = evaluate_features(qf, gf, [1], [2, 1], [0], [1, 1], mq_qf=mq, max_rank=2,
                             rerank=True, k1=1, k2=1, q_paths=["q/0001_c1.jpg"],
                             g_paths=["g/0002_c2.jpg", "g/été.jpg"], metric="cosine")
    bare = evaluate_features(qf, gf, [1], [2, 1], [0], [1, 1], max_rank=2)
    for res in (full, bare):
        arrays = res.to_arrays()
        assert all(isinstance(v, np.ndarray) for v in arrays.values())
        np.savez(tmp_path / "r.npz", **arrays)
        with np.load(tmp_path / "r.npz", allow_pickle=False) as d:
            back = ev.EvalResult.from_arrays(d)
        _assert_same_result(res, back)
    assert "mq_qf" not in bare.to_arrays() and bare.to_arrays()["q_paths"].shape == (0,)
    assert ev.EvalResult.from_arrays(bare.to_arrays()).mq_qf is None
    assert full.to_arrays()["results/multi-query/mAP"] == 1.0
    with pytest.raises(KeyError, match="distmat"):
        ev.EvalResult.from_arrays({k: v for k, v in full.to_arrays().items()
                                   if k != "distmat"})


def test_evaluate_end_to_end_with_stand_in_dataset(monkeypatch):
    # Stand-in for reidnb.data.datasets.ImageDataset: a record's "path" names a 2-D
    # feature; the image holds it in its left/right halves so _Tiny returns it.
    import reidnb.data.datasets as datasets

    qf, gf, mq_feats = _mq_case()
    table = {"q0": qf[0], "g0": gf[0], "g1": gf[1], "m0": mq_feats[0], "m1": mq_feats[1]}

    class StandIn(torch.utils.data.Dataset):
        def __init__(self, records, transform=None, load_mask=False, load_parts=False):
            self.records = list(records)

        def __len__(self):
            return len(self.records)

        def __getitem__(self, i):
            r = self.records[i]
            img = torch.zeros(3, 2, 2)
            img[..., 0], img[..., 1] = table[r.path]
            return {"img": img, "pid": torch.tensor(r.pid), "camid": torch.tensor(r.camid),
                    "index": i, "path": r.path}

    monkeypatch.setattr(datasets, "ImageDataset", StandIn)
    R = SimpleNamespace
    ds = R(name="standin", query=[R(path="q0", pid=1, camid=0)],
           gallery=[R(path="g0", pid=2, camid=1), R(path="g1", pid=1, camid=1)],
           multi_query={0: [R(path="m0", pid=1, camid=0), R(path="m1", pid=1, camid=0)]})
    res = ev.evaluate(_Tiny(), ds, None, batch_size=1, multi_query=True, max_rank=2)
    assert res.results["single-query"].mAP == pytest.approx(0.5)
    assert res.results["multi-query"].mAP == pytest.approx(1.0)
    assert res.q_paths == ["q0"] and res.g_paths == ["g0", "g1"]
    ds.multi_query = {}
    with pytest.raises(ValueError, match="no multi-query groups"):
        ev.evaluate(_Tiny(), ds, None, multi_query=True)


@pytest.mark.gpu
def test_cuda_matches_cpu():
    rng = np.random.default_rng(7)
    d, qp, gp, qc, gc = random_problem(rng, Q=50, G=400, n_ids=20, ties=True)
    a = evaluate_rank(d, qp, gp, qc, gc)
    b = evaluate_rank(torch.from_numpy(d).cuda(), qp, gp, qc, gc)
    np.testing.assert_allclose(a.cmc, b.cmc)
    assert (a.mAP, a.mINP) == pytest.approx((b.mAP, b.mINP))
    f = torch.from_numpy(features_problem(rng, n_ids=10, per_id=6)[0])
    q, g = f[:12], f[12:]
    mats = [compute_distance_matrix(x, y) for x, y in ((q, g), (q, q), (g, g))]
    np.testing.assert_allclose(re_ranking(*[m.cuda() for m in mats]), re_ranking(*mats),
                               atol=1e-5)

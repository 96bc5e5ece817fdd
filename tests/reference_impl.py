"""Reference implementations the fast code is checked against (tests and benchmarks).

Slow, dense transcriptions kept outside the package on purpose: ``reidnb`` ships only its
own implementations; these exist to prove them equal.
"""
from __future__ import annotations

import numpy as np


def reference_re_ranking(q_g_dist, q_q_dist, g_g_dist, k1=20, k2=6, lambda_value=0.3):
    """The reference ``re_ranking`` (torchreid ``utils/rerank.py``), dense N x N.

    One change: ``np.argsort(kind="stable")`` instead of the default quicksort, so equal
    distances have one order (by index, as reidnb's). With quicksort the result depends
    on how the sort happens to order ties: on these inputs two of the 19,281 rows have a
    tie exactly at the k1+1 or half-set boundary, and quicksort puts those pairs in
    reverse index order, which moves 65 query rows by up to 3e-2.
    """
    original_dist = np.concatenate([np.concatenate([q_q_dist, q_g_dist], axis=1),
                                    np.concatenate([q_g_dist.T, g_g_dist], axis=1)], axis=0)
    original_dist = np.power(original_dist, 2).astype(np.float32)
    original_dist = np.transpose(1.0 * original_dist / np.max(original_dist, axis=0))
    V = np.zeros_like(original_dist).astype(np.float32)
    initial_rank = np.argsort(original_dist, kind="stable").astype(np.int32)
    query_num = q_g_dist.shape[0]
    all_num = gallery_num = q_g_dist.shape[0] + q_g_dist.shape[1]
    for i in range(all_num):
        forward = initial_rank[i, :k1 + 1]
        backward = initial_rank[forward, :k1 + 1]
        k_recip = forward[np.where(backward == i)[0]]
        expansion = k_recip
        for cand in k_recip:
            c_forward = initial_rank[cand, :int(np.around(k1 / 2.0)) + 1]
            c_backward = initial_rank[c_forward, :int(np.around(k1 / 2.0)) + 1]
            c_recip = c_forward[np.where(c_backward == cand)[0]]
            if len(np.intersect1d(c_recip, k_recip)) > 2.0 / 3 * len(c_recip):
                expansion = np.append(expansion, c_recip)
        expansion = np.unique(expansion)
        weight = np.exp(-original_dist[i, expansion])
        V[i, expansion] = 1.0 * weight / np.sum(weight)
    original_dist = original_dist[:query_num]
    if k2 != 1:
        V_qe = np.zeros_like(V, dtype=np.float32)
        for i in range(all_num):
            V_qe[i, :] = np.mean(V[initial_rank[i, :k2], :], axis=0)
        V = V_qe
        del V_qe
    del initial_rank
    inv_index = [np.where(V[:, i] != 0)[0] for i in range(gallery_num)]
    jaccard = np.zeros_like(original_dist, dtype=np.float32)
    for i in range(query_num):
        temp_min = np.zeros((1, gallery_num), dtype=np.float32)
        nz = np.where(V[i, :] != 0)[0]
        for j in nz:
            temp_min[0, inv_index[j]] += np.minimum(V[i, j], V[inv_index[j], j])
        jaccard[i] = 1 - temp_min / (2.0 - temp_min)
    final = jaccard * (1 - lambda_value) + original_dist * lambda_value
    return final[:query_num, query_num:]

"""Losses against hand-worked values from their equations (DESIGN.md "Losses")."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from reidnb import losses as L

SQ5, SQ10 = math.sqrt(5), math.sqrt(10)


def t(rows):
    return torch.tensor(rows, dtype=torch.float32, requires_grad=True)


def lab(ids):
    return torch.tensor(ids, dtype=torch.int64)


# Four unit vectors, two identities (used by the MaskReID losses):
#   x0 = (1, 0), x1 = (.8, .6)  -> id 0;   x2 = (.6, .8), x3 = (0, 1) -> id 1
#   S01 = .8, S02 = .6, S03 = 0, S12 = .96, S13 = .6, S23 = .8
UNIT4 = [[1.0, 0.0], [0.8, 0.6], [0.6, 0.8], [0.0, 1.0]]
Y4 = [0, 0, 1, 1]


def _finite_grad(x):
    assert x.grad is not None and torch.isfinite(x.grad).all()


# ------------------------------------------------------------------ cross-entropy
def test_cross_entropy_hand_and_label_smoothing():
    # logits (0, ln 3): softmax (1/4, 3/4); label 1 -> -ln(3/4)
    logits = torch.tensor([[0.0, math.log(3.0)]], requires_grad=True)
    assert L.cross_entropy(logits, lab([1])).item() == pytest.approx(-math.log(0.75), abs=1e-6)
    # eps = 0.1, C = 2: target (0.05, 0.95): 0.05 (-ln 1/4) + 0.95 (-ln 3/4)
    want = 0.05 * math.log(4) + 0.95 * -math.log(0.75)
    got = L.cross_entropy(logits, lab([1]), label_smoothing=0.1)
    assert got.item() == pytest.approx(want, abs=1e-6)
    g = torch.Generator().manual_seed(0)
    z, y = torch.randn(6, 5, generator=g), torch.randint(0, 5, (6,), generator=g)
    ref = torch.nn.CrossEntropyLoss(label_smoothing=0.1)(z, y)
    manual = -((0.9 * F.one_hot(y, 5) + 0.1 / 5) * z.log_softmax(1)).sum(1).mean()  # BoT form
    assert torch.allclose(L.cross_entropy(z, y, 0.1), ref, atol=1e-6)
    assert torch.allclose(ref, manual, atol=1e-6)
    with pytest.raises(ValueError, match="logits"):
        L.cross_entropy(z[0], y)


# ------------------------------------------------------------------ triplet
def test_triplet_hard_hand_worked():
    # x0 (0,0), x1 (0,2) id 0; x2 (1,0), x3 (4,0) id 1.
    # D01 = 2, D02 = 1, D03 = 4, D12 = sqrt5, D13 = sqrt20, D23 = 3; margin 0.3:
    # a0: 2 - 1 + .3 = 1.3; a1: 2 - sqrt5 + .3; a2: 3 - 1 + .3 = 2.3; a3: 3 - 4 + .3 < 0 -> 0
    x = t([[0, 0], [0, 2], [1, 0], [4, 0]])
    loss = L.triplet_hard_loss(x, lab(Y4), margin=0.3)
    assert loss.item() == pytest.approx((1.3 + 2.3 - SQ5 + 2.3) / 4, abs=1e-5)
    loss.backward()
    _finite_grad(x)
    # a3 contributes nothing and x3 is never a hard positive/negative of a violating anchor
    # except as a2's farthest positive: d(2.3)/dx3 via D23 = -(x2 - x3)/3 / 4 -> (0.25, 0)
    assert torch.allclose(x.grad[3], torch.tensor([0.25, 0.0]), atol=1e-6)


def test_triplet_hard_mining_picks_hardest():
    # anchor x0 (0,0) id0 with positives at distance 1 and 3, negatives at 2 and 5:
    # only the hardest pair matters: max(0, 3 - 2 + 0.3) = 1.3 (easy ones would give < 0)
    x = t([[0, 0], [1, 0], [3, 0], [0, 2], [0, 5]])
    y = lab([0, 0, 0, 1, 1])
    loss = L.triplet_hard_loss(x[:], y, margin=0.3)
    loss.backward()
    # anchor 0: 3 - 2 + .3 = 1.3; anchor 1 (1,0): pos 1 (x0), 2 (x2) -> 2; neg sqrt5, sqrt26
    #   -> 2 - sqrt5 + .3 = .0639; anchor 2 (3,0): pos 3, 2 -> 3; neg sqrt13 -> 3 - sqrt13 + .3 < 0;
    # anchor 3 (0,2): pos 3; neg min(2, sqrt5, sqrt13) = 2 -> 1.3; anchor 4 (0,5): pos 3;
    #   neg min(5, sqrt26, sqrt34) = 5 -> 0
    want = (1.3 + (2.3 - SQ5) + 0 + 1.3 + 0) / 5
    assert loss.item() == pytest.approx(want, abs=1e-5)


def test_triplet_normalize_and_duplicates_finite():
    x = t([[1, 0], [1, 0], [0, 3], [0, 3]])      # coincident pairs: distance 0
    loss = L.triplet_hard_loss(x, lab(Y4), margin=0.3, normalize=True)
    # normalised: positives coincide (0), negatives at sqrt2: max(0, 0 - sqrt2 + .3) = 0
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    loss.backward()
    _finite_grad(x)


# ------------------------------------------------------------------ quadruplet
# x0 (0,0), x1 (1,0) id0; x2 (2,0), x3 (7,0) id1; x4 (2,3), x5 (2,5) id2
QUAD_X = [[0, 0], [1, 0], [2, 0], [7, 0], [2, 3], [2, 5]]
QUAD_Y = [0, 0, 1, 1, 2, 2]


def test_quadruplet_hand_worked_h_rule():
    # margin1 0.5, margin2 2.5. j = farthest positive, k = nearest negative,
    # h = nearest to k with id not in {y_i, y_k}:
    # a0: Dij 1, k=x2 (2), h=x4 (D24=3): 0 + (1 - 3 + 2.5) = 0.5
    #     (the nearest non-id1 sample to x2 is x1 at 1, of the anchor's own id: excluded)
    # a1: Dij 1, k=x2 (1), h=x4 (3): (1 - 1 + .5) + (1 - 3 + 2.5) = 1.0
    # a2: Dij 5, k=x1 (1), h=x4 (sqrt10): 4.5 + (7.5 - sqrt10)
    # a3: Dij 5, k=x4 (sqrt34), h=x1 (sqrt10): 0 + (7.5 - sqrt10)
    # a4: Dij 2, k=x2 (3), h=x1 (1): 0 + 3.5;  a5: Dij 2, k=x2 (5), h=x1 (1): 0 + 3.5
    x = t(QUAD_X)
    loss = L.quadruplet_hard_loss(x, lab(QUAD_Y), margin1=0.5, margin2=2.5)
    assert loss.item() == pytest.approx((28 - 2 * SQ10) / 6, abs=1e-5)
    loss.backward()
    _finite_grad(x)


def test_quadruplet_two_ids_is_triplet():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(8, 4, generator=g), lab([0, 0, 0, 0, 1, 1, 1, 1])
    assert torch.allclose(L.quadruplet_hard_loss(x, y, margin1=0.3),
                          L.triplet_hard_loss(x, y, margin=0.3), atol=1e-6)


# ------------------------------------------------------------------ batch-contrastive
def test_batch_contrastive_hand_worked():
    # unit directions x0 (1,0), x1 (.6,.8) id0; x2 (.8,.6), x3 (-1,0) id1; x4 (0,-1) id2
    # (scaled to show the L2 normalisation inside). Squared distances 2 - 2cos:
    # 01 .8, 02 .4, 03 4, 04 2, 12 .08, 13 3.2, 14 3.6, 23 3.6, 24 3.2, 34 2. tau = 1:
    # a0 .5(.8 + (1 - .4)) = .7; a1 .5(.8 + .92) = .86; a2 .5(3.6 + .92) = 2.26;
    # a3 .5(3.6 + 0) = 1.8; a4 (no positive) .5(0 + (1 - 2)_+) = 0  -> mean over 5
    x = t([[3, 0], [0.6, 0.8], [0.8, 0.6], [-0.5, 0], [0, -2]])
    loss = L.batch_contrastive_loss(x, lab([0, 0, 1, 1, 2]), tau=1.0)
    assert loss.item() == pytest.approx(5.62 / 5, abs=1e-5)
    loss.backward()
    _finite_grad(x)


# 4 unit vectors: x0 (1,0), x1 (0,1) id 0; x2 (-1,0), x3 (.6,.8) id 1
X4, Y4 = [[1, 0], [0, 1], [-1, 0], [0.6, 0.8]], [0, 0, 1, 1]


def test_batch_contrastive_sum_is_the_printed_equation():
    # squared distances 2 - 2cos: 01 2, 02 4, 03 .8, 12 2, 13 .4, 23 3.2; tau = 1:
    # a0 .5(2 + (1 - .8)) = 1.1; a1 .5(2 + (1 - .4)) = 1.3; a2 .5(3.2 + (1 - 2)_+) = 1.6;
    # a3 .5(3.2 + (1 - .4)) = 1.9.  001 Eq. 3 sums over the m = 4 images: 5.9; mean 1.475
    s = L.batch_contrastive_loss(t(X4), lab(Y4), tau=1.0, reduction="sum")
    m = L.batch_contrastive_loss(t(X4), lab(Y4), tau=1.0, reduction="mean")
    assert s.item() == pytest.approx(5.9, abs=1e-5)
    assert m.item() == pytest.approx(1.475, abs=1e-5)
    assert s.item() == pytest.approx(4 * m.item(), abs=1e-5)
    assert L.batch_contrastive_loss(t(X4), lab(Y4), tau=1.0).item() == pytest.approx(1.475, abs=1e-5)
    with pytest.raises(ValueError, match="reduction"):
        L.batch_contrastive_loss(t(X4), lab(Y4), reduction="none")


def test_center_loss_sum_and_mean_by_hand():
    # centres c0 (1,0), c1 (0,1): 1/2||x - c||^2 = 0, 1, 1, .5(.36 + .04) = .2 -> sum 2.2
    # (001 Eq. 4 as printed), mean .55; the centre update is the same for both reductions
    out = {}
    for red in ("sum", "mean"):
        cl = L.CenterLoss(2, 2, center_lr=0.5, reduction=red)
        cl.centers.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        out[red] = (cl(t(X4), lab(Y4)).item(), cl.centers.clone())
    assert out["sum"][0] == pytest.approx(2.2, abs=1e-5)
    assert out["mean"][0] == pytest.approx(0.55, abs=1e-5)
    # c0 <- c0 - .5 * ((c0 - x0) + (c0 - x1)) / 3 = (1,0) - .5 (1,-1)/3
    assert torch.allclose(out["sum"][1], out["mean"][1])
    assert torch.allclose(out["sum"][1][0], torch.tensor([1 - 0.5 / 3, 0.5 / 3]))
    assert "reduction='sum'" in repr(L.CenterLoss(2, 2, reduction="sum"))
    assert "reduction" not in repr(L.CenterLoss(2, 2))       # mean runs keep their run keys
    with pytest.raises(ValueError, match="reduction"):
        L.CenterLoss(2, 2, reduction="avg")


# ------------------------------------------------------------------ ranking / N-pair
def _rank_terms(margin):
    # anchors 0 and 3: p = .8, negatives t = .1 (S .6) and -.5 (S 0)
    # anchors 1 and 2: p = .8, negatives t = .46 (S .96) and .1 (S .6); lam = 1:
    # second term lam / 2 (.8 - 1)^2 = .02 for every anchor
    assert margin == 0.3
    icme = (math.log(1 + math.exp(0.1)) + math.log(1 + math.exp(0.46) + math.exp(0.1))) / 2
    eccv = (math.log(1 + math.exp(0.1) + 1) + math.log(1 + math.exp(0.46) + math.exp(0.1))) / 2
    return icme + 0.02, eccv + 0.02


def test_ranking_loss_icme_vs_eccv_hand_worked():
    x = t([[2 * a, 2 * b] for a, b in UNIT4])          # scale: normalised inside
    icme, eccv = _rank_terms(0.3)
    got_i = L.ranking_loss(x, lab(Y4), margin=0.3, lam=1.0, form="icme")
    got_e = L.ranking_loss(x, lab(Y4), margin=0.3, lam=1.0, form="eccv")
    assert got_i.item() == pytest.approx(icme, abs=1e-5)
    assert got_e.item() == pytest.approx(eccv, abs=1e-5)
    (got_i + got_e).backward()
    _finite_grad(x)


def test_ranking_loss_floor_and_defaults():
    # identities orthogonal, positives identical: every negative satisfies the margin
    # (t = 0 - 1 + alpha < 0) and S_ki = 1: ICME gives 0, ECCV log(1 + |N|) = log 3
    x = t([[1, 0], [1, 0], [0, 1], [0, 1]])
    assert L.ranking_loss(x, lab(Y4), form="icme").item() == pytest.approx(0.0, abs=1e-6)
    assert L.ranking_loss(x, lab(Y4), form="eccv").item() == pytest.approx(math.log(3), abs=1e-6)
    g = torch.Generator().manual_seed(2)
    z, y = torch.randn(10, 6, generator=g), lab([0, 0, 0, 1, 1, 2, 2, 2, 2, 3])
    assert torch.allclose(L.ranking_loss(z, y, form="icme"),
                          L.ranking_loss(z, y, margin=0.2, lam=1.0, form="icme"))
    assert torch.allclose(L.ranking_loss(z, y, form="eccv"),
                          L.ranking_loss(z, y, margin=0.15, lam=2.0, form="eccv"))
    with pytest.raises(ValueError, match="form"):
        L.ranking_loss(z, y, form="cvpr")


def test_ranking_loss_multi_positive_uses_hardest():
    # anchor x0 (1,0) with positives at S = 1 (x1) and S = .6 (x2); negative S = .8 (x3).
    # lam = 0, margin .1: first term log(1 + exp(.8 - .6 + .1)); only anchors with a
    # negative and a positive count: x3 has no positive -> anchors 0, 1, 2:
    # a1 = a0 (same vector); a2 (.6,.8): positives S .6, .6 -> p .6; negative S(x2,x3) = .96:
    #   log(1 + exp(.96 - .6 + .1))
    x = t([[1, 0], [1, 0], [0.6, 0.8], [0.8, 0.6]])
    y = lab([0, 0, 0, 1])
    got = L.ranking_loss(x, y, margin=0.1, lam=0.0, form="icme")
    want = (2 * math.log(1 + math.exp(0.3)) + math.log(1 + math.exp(0.46))) / 3
    assert got.item() == pytest.approx(want, abs=1e-5)
    # second term alone (margin -10 silences the first in ICME): lam / (2|P|) sum (S - 1)^2
    # a0: (0 + .16) / 4 = .04 (lam 1, |P| 2); a1 same; a2: (.16 + .16) / 4 = .08
    got2 = L.ranking_loss(x, y, margin=-10.0, lam=1.0, form="icme")
    assert got2.item() == pytest.approx((0.04 + 0.04 + 0.08) / 3, abs=1e-5)


def test_npair_hand_worked():
    # a0/a3: log(1 + e^(.6-.8) + e^(0-.8));  a1/a2: log(1 + e^(.96-.8) + e^(.6-.8))
    x = t(UNIT4)
    a0 = math.log(1 + math.exp(-0.2) + math.exp(-0.8))
    a1 = math.log(1 + math.exp(0.16) + math.exp(-0.2))
    loss = L.npair_loss(x, lab(Y4))
    assert loss.item() == pytest.approx((a0 + a1) / 2, abs=1e-5)
    loss.backward()
    _finite_grad(x)


# ------------------------------------------------------------------ loop references
def _ref_losses(x, y):
    """Per-anchor Python loops straight from the DESIGN.md formulas."""
    n = len(y)
    xn = F.normalize(x, dim=1)
    S, D = xn @ xn.t(), torch.cdist(x, x)
    D2n = torch.cdist(xn, xn) ** 2
    out = {k: [] for k in ("icme", "eccv", "npair", "tri", "bc", "quad")}
    for k in range(n):
        P = [i for i in range(n) if y[i] == y[k] and i != k]
        N = [j for j in range(n) if y[j] != y[k]]
        if N:
            pull = sum(D2n[k, i] for i in P) if P else torch.tensor(0.0)
            out["bc"].append(0.5 * (pull + F.relu(1.0 - min(D2n[k, j] for j in N))))
        if not (P and N):
            continue
        p = min(S[k, i] for i in P)
        sec = 1.0 / (2 * len(P)) * sum((S[k, i] - 1) ** 2 for i in P)
        ti = [torch.exp(S[k, j] - p + 0.2) for j in N]
        out["icme"].append(torch.log(1 + sum(v if v > 1 else 0 * v for v in ti)) + sec)
        te = [torch.exp(F.relu(S[k, j] - p + 0.15)) for j in N]
        out["eccv"].append(torch.log(1 + sum(te)) + 2 * sec)
        out["npair"].append(sum(torch.log(1 + sum(torch.exp(S[k, j] - S[k, i]) for j in N))
                                for i in P) / len(P))
        jj = max(P, key=lambda i: D[k, i])
        kk = min(N, key=lambda j: D[k, j])
        out["tri"].append(F.relu(D[k, jj] - D[k, kk] + 0.3))
        H = [h for h in range(n) if y[h] != y[k] and y[h] != y[kk]]
        q = F.relu(D[k, jj] - D[k, kk] + 0.5)
        if H:
            q = q + F.relu(D[k, jj] - min(D[kk, h] for h in H) + 0.2)
        out["quad"].append(q)
    return {k: torch.stack(v).mean() for k, v in out.items()}


def test_vectorised_losses_match_loop_reference():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(13, 5, generator=g)
    y = lab([0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 4, 4, 5])       # ids 3 and 5: no positive
    ref = _ref_losses(x, y)
    got = {"icme": L.ranking_loss(x, y, form="icme"), "eccv": L.ranking_loss(x, y, form="eccv"),
           "npair": L.npair_loss(x, y), "tri": L.triplet_hard_loss(x, y, 0.3),
           "bc": L.batch_contrastive_loss(x, y, 1.0), "quad": L.quadruplet_hard_loss(x, y)}
    for k in ref:
        assert torch.allclose(got[k], ref[k], atol=1e-5), (k, got[k], ref[k])


ANCHOR_LOSSES = [
    lambda x, y: L.ranking_loss(x, y, form="icme"),
    lambda x, y: L.ranking_loss(x, y, form="eccv"),
    L.npair_loss, L.triplet_hard_loss, L.quadruplet_hard_loss, L.batch_contrastive_loss,
]


@pytest.mark.parametrize("fn", ANCHOR_LOSSES)
def test_no_valid_anchor_is_zero_with_grad(fn):
    # one identity only: no negatives for anyone -> 0 that back-propagates
    x = torch.randn(4, 3, requires_grad=True)
    loss = fn(x, lab([7, 7, 7, 7]))
    assert loss.item() == 0.0 and loss.grad_fn is not None
    loss.backward()
    assert torch.equal(x.grad, torch.zeros_like(x))


@pytest.mark.parametrize("fn", ANCHOR_LOSSES)
def test_gradients_finite_and_fp32_under_autocast(fn):
    g = torch.Generator().manual_seed(4)
    x = torch.randn(8, 6, generator=g)
    x[1] = x[0]                                         # coincident positives
    x = x.bfloat16().requires_grad_()
    y = lab([0, 0, 1, 1, 2, 2, 3, 4])                   # anchors 6, 7 without positives
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = fn(x, y)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(x.grad.float()).all()


def test_shape_errors():
    with pytest.raises(ValueError, match="labels must be"):
        L.triplet_hard_loss(torch.randn(4, 2), lab([0, 1, 0]))
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        L.npair_loss(torch.randn(4), lab([0, 1, 0, 1]))


# ------------------------------------------------------------------ centre loss
def test_center_loss_value_and_update():
    cl = L.CenterLoss(num_classes=3, feat_dim=2, center_lr=0.5)
    cl.centers.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]]))
    x = t([[3, 0], [1, 2], [0, 3]])
    y = lab([0, 0, 1])
    # ||x - c||^2 = 4, 4, 4 -> 1/2 * mean = 2
    loss = cl(x, y)
    assert loss.item() == pytest.approx(2.0)
    loss.backward()
    # d/dx_i = (x_i - c_{y_i}) / N
    assert torch.allclose(x.grad, torch.tensor([[2.0, 0.0], [0.0, 2.0], [0.0, 2.0]]) / 3)
    # dc_0 = ((1,0)-(3,0) + (1,0)-(1,2)) / (1 + 2) = (-2/3, -2/3); c0 - .5 dc0 = (4/3, 1/3)
    # dc_1 = ((0,1)-(0,3)) / 2 = (0, -1); c1 -> (0, 1.5); c2 unchanged (not in batch)
    want = torch.tensor([[4 / 3, 1 / 3], [0.0, 1.5], [5.0, 5.0]])
    assert torch.allclose(cl.centers, want, atol=1e-6)
    # the second call uses the new centres; eval mode does not update
    cl.eval()
    x2 = x.detach()
    assert cl(x2, y).item() == pytest.approx(
        0.5 * ((x2 - want[y]) ** 2).sum(1).mean().item(), abs=1e-6)
    assert torch.allclose(cl.centers, want, atol=1e-6)
    assert "centers" in cl.state_dict()


def test_center_loss_converges_towards_features_and_fp32():
    cl = L.CenterLoss(2, 4, center_lr=0.5)
    x = torch.randn(6, 4).bfloat16()
    y = lab([0, 0, 0, 1, 1, 1])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        first = cl(x, y)
        for _ in range(30):
            last = cl(x, y)
    assert first.dtype == torch.float32 and cl.centers.dtype == torch.float32
    means = torch.stack([x[:3].float().mean(0), x[3:].float().mean(0)])
    assert torch.allclose(cl.centers, means, atol=1e-4)
    assert last < first
    with pytest.raises(ValueError, match="labels must lie"):
        cl(x, lab([0, 0, 0, 1, 1, 2]))


# ------------------------------------------------------------------ SAL / MagnifierNet
def test_attention_map_and_sac():
    # channels (1, 2) and (3, 0): mean of squares (5, 2) -> / sqrt29
    f = torch.tensor([[[[1.0, 2.0]], [[3.0, 0.0]]]])            # [1, 2, 1, 2]
    a = L.attention_map(f)
    assert a.shape == (1, 2)
    assert torch.allclose(a, torch.tensor([[5.0, 2.0]]) / math.sqrt(29))
    # ||a6 - a5||^2 = 2, ||a6 - a4||^2 = .16 + .64 = .8 for sample 0; 0 for sample 1
    a6 = t([[1, 0], [1, 0]])
    a5 = t([[0, 1], [1, 0]])
    a4 = t([[0.6, 0.8], [1, 0]])
    sac = L.self_attention_constraint(a4, a5, a6)
    assert sac.item() == pytest.approx(1.4, abs=1e-6)
    sac.backward()
    assert a4.grad is not None and a5.grad is not None and a6.grad is not None
    with pytest.raises(ValueError, match="one shape"):
        L.self_attention_constraint(a4, a5, torch.zeros(2, 3))


def test_semantic_diversity_hand_worked():
    # p1 (1,0), p2 (0,2), p3 (1,1): cos12 0, cos13 1/sqrt2, cos23 1/sqrt2 -> mean sqrt2/3
    # second sample all parallel: cos 1 -> mean over the batch (sqrt2/3 + 1) / 2
    p = t([[[1, 0], [0, 2], [1, 1]], [[1, 1], [2, 2], [3, 3]]])
    got = L.semantic_diversity_loss(p)
    assert got.item() == pytest.approx((math.sqrt(2) / 3 + 1) / 2, abs=1e-6)
    got.backward()
    _finite_grad(p)
    z = torch.zeros(1, 3, 2)                                      # eps: no division by 0
    assert L.semantic_diversity_loss(z).item() == 0.0
    with pytest.raises(ValueError, match="K>=2"):
        L.semantic_diversity_loss(torch.zeros(2, 1, 4))


# ------------------------------------------------------------------ trainer wrappers
def test_term_wrappers():
    x = t([[0, 0], [0, 2], [1, 0], [4, 0]])
    outputs, batch = {"embeddings": x, "logits": torch.randn(4, 3)}, {"pid": lab(Y4)}
    term = L.Term(L.triplet_hard_loss, margin=0.3)
    assert torch.allclose(term(outputs, batch), L.triplet_hard_loss(x, lab(Y4), 0.3))
    normed = L.Term(L.triplet_hard_loss, normalize=True, margin=0.3)
    assert torch.allclose(normed(outputs, batch),
                          L.triplet_hard_loss(F.normalize(x), lab(Y4), 0.3))
    ce = L.Term(L.cross_entropy, key="logits", label_smoothing=0.1)
    assert torch.allclose(ce(outputs, batch), L.cross_entropy(outputs["logits"], lab(Y4), 0.1))
    ct = L.Term(L.CenterLoss(2, 2), normalize=True)
    ct(outputs, batch)
    assert "fn.centers" in ct.state_dict() and ct.state_dict()["fn.centers"].abs().sum() > 0
    assert "triplet_hard_loss" in repr(term)
    with pytest.raises(KeyError, match="no 'feats'"):
        L.Term(L.npair_loss, key="feats")(outputs, batch)


def test_sac_term_and_mask_term():
    g = torch.Generator().manual_seed(5)
    f4, f5, f6 = (torch.randn(2, 3, 4, 2, generator=g) for _ in range(3))
    maps = tuple(L.attention_map(f) for f in (f4, f5, f6))
    want = L.self_attention_constraint(*maps)
    assert torch.allclose(L.SACTerm()({"attention": maps}, {}), want)
    assert torch.allclose(L.SACTerm()({"attention": (f4, f5, f6)}, {}), want)  # raw maps
    # parts 4x4 -> nearest 2x2 keeps pixels (0,0), (0,2), (2,0), (2,2): labels 1, 2, 0, 2
    parts = torch.tensor([[[1, 0, 2, 0], [0, 0, 0, 0], [0, 1, 2, 1], [1, 1, 1, 1]]])
    # logits: 5 at the kept label, 0 elsewhere (3 classes): CE = log(1 + 2 e^-5) per pixel
    target = torch.tensor([[[1, 2], [0, 2]]])
    logits = 5.0 * F.one_hot(target, 3).permute(0, 3, 1, 2).float()
    got = L.MaskTerm()({"seg_logits": logits}, {"parts": parts})
    assert got.item() == pytest.approx(math.log(1 + 2 * math.exp(-5)), abs=1e-6)
    with pytest.raises(ValueError, match=r"\[N, K, h, w\]"):
        L.MaskTerm()({"seg_logits": logits[0]}, {"parts": parts})

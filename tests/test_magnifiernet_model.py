"""Tests of reidnb.papers.magnifiernet.model (002: G, M, SAB, SFB/AB, SD; Table 2 switches).

Small and CPU-only: ResNet-18 without weights, 64x32 images (a 4x2 map with last stride 1),
a batch of 4 = 2 identities x 2 images. Part maps put one label in each 16x16 block, so
every image holds all 8 regions on the 4x2 map (nearest-downsampling picks one pixel of
each block). Tests that work Eq. 1/2 by hand on those blocks use ``mask_resize="nearest"``
(one-hot cells); the paper's bilinear resize has its own tests.
"""
from __future__ import annotations

import copy
import itertools

import pytest
import torch
import torch.nn.functional as F

from reidnb.losses import MaskTerm, cross_entropy, semantic_diversity_loss, triplet_hard_loss
from reidnb.models import build_model
from reidnb.papers.magnifiernet.model import (
    L_TORSO, NUM_REGIONS, SFB_ORDER, U_TORSO, BranchTerm, MagnifierNet, SDTerm,
    kept_region_pooling, labels_to_masks, magnifiernet_losses, sample_kept_regions,
    semantic_aligned_pooling,
)

N, H, W, NC = 4, 64, 32, 3
PIDS = torch.tensor([0, 0, 1, 1])

# Table 2 rows (use_mask, use_sab, use_sfb, sd) + the ablation branch (Fig. 4)
TABLE2 = [(False, False, False, False), (True, False, False, False),
          (True, True, False, False), (True, False, True, False),
          (True, True, True, False), (True, True, True, True)]


def _parts(seed=0):
    """[N, 64, 32] labels: 16x16 blocks, a per-image permutation of 0..7 over the 4x2 grid."""
    g = torch.Generator().manual_seed(seed)
    grids = torch.stack([torch.randperm(8, generator=g).reshape(4, 2) for _ in range(N)])
    return grids.repeat_interleave(16, 1).repeat_interleave(16, 2)        # [N, 64, 32]


def _images(seed=0):
    return torch.randn(N, 3, H, W, generator=torch.Generator().manual_seed(seed))


_CACHE: dict = {}


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny tensors: one intra-op thread is faster than two on a shared 2-core machine."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _model(**kw):
    """A fresh (deep-copied) ResNet-18 MagnifierNet; each configuration is built once."""
    key = tuple(sorted(kw.items()))
    if key not in _CACHE:
        torch.manual_seed(0)
        _CACHE[key] = MagnifierNet(NC, backbone="resnet18", pretrained=False, **kw)
    return copy.deepcopy(_CACHE[key])


def _batch(x, parts):
    return {"img": x, "pid": PIDS, "parts": parts}


def _total(model, out, batch, sd):
    terms = magnifiernet_losses(model, sd_weight=2e-3 if sd else 0.0)
    return sum(w * t(out, batch) for w, t in terms.values()), terms


@pytest.mark.parametrize("use_mask,use_sab,use_sfb,sd,fusion",
                         [(*row, "gru") for row in TABLE2]
                         + [(True, False, True, False, "ab"), (True, True, True, True, "ab")])
def test_table2_rows_forward_backward(use_mask, use_sab, use_sfb, sd, fusion):
    model = _model(use_mask=use_mask, use_sab=use_sab, use_sfb=use_sfb, fusion=fusion).train()
    x, parts = _images(), _parts()
    out = model(x, parts=parts)
    assert out["logits"].shape == (N, NC) and out["embeddings"].shape == (N, 512)
    assert out["featuremaps"].shape == (N, 512, 4, 2)                  # stride 16 (last stride 1)
    assert ("seg_logits" in out) == use_mask
    assert set(out["branches"]) == ({"sab"} if use_sab else set()) \
        | ({"sfb", "sfb_parts"} if use_sfb else set())
    if use_mask:
        assert out["seg_logits"].shape == (N, NUM_REGIONS, 4, 2)
    if use_sfb:
        assert out["part_features"].shape == (N, 7, 512)
        assert len(out["branches"]["sfb_parts"]["logits"]) == NUM_REGIONS
    # modules of disabled branches are not even built
    names = {n.split(".")[0] for n, _ in model.named_parameters()}
    assert ("seg_head" in names) == use_mask and ("neck_sab" in names) == use_sab
    assert ("gru" in names) == (use_sfb and fusion == "gru")
    assert ("ab_reduce" in names) == (use_sfb and fusion == "ab")

    loss, terms = _total(model, out, _batch(x, parts), sd)
    assert ("sd" in terms) == sd and ("mask" in terms) == use_mask
    assert torch.isfinite(loss)
    loss.backward()
    for name, p in model.named_parameters():
        if not p.requires_grad:
            assert name.endswith("bn.bias") and p.grad is None        # BNNeck: frozen bias
            continue
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name}: non-finite gradient"
        assert p.grad.abs().sum() > 0, f"{name}: all-zero gradient"

    model.eval()
    with torch.no_grad():
        feat = model(x, parts=parts) if not use_mask and (use_sab or use_sfb) else model(x)
    assert feat.shape == (N, 512 * (1 + use_sab + use_sfb)) == (N, model.feat_dim)
    # each branch block is L2-normalised post-BN; the concatenation is not re-normalised
    blocks = feat.split(512, dim=1)
    for b in blocks:
        torch.testing.assert_close(b.norm(dim=1), torch.ones(N))
    g = F.adaptive_avg_pool2d(model(x, return_featuremaps=True), 1).flatten(1)
    torch.testing.assert_close(blocks[0], F.normalize(model.neck_global.bn(g), dim=1))


def test_semantic_aligned_pooling_by_hand():
    # f: 1 image, 2 channels, 2x2 map; region 0 = left column, region 1 = right column
    f = torch.tensor([[[[1., 5.], [3., 2.]],
                       [[7., 0.], [4., 6.]]]])                      # [1, 2, 2, 2]
    masks = torch.tensor([[[[1., 0.], [1., 0.]],
                           [[0., 1.], [0., 1.]]]])                  # [1, 2, 2, 2]
    p = semantic_aligned_pooling(f, masks)                          # [1, 2 regions, 2 ch]
    # region 0: ch0 max(1, 3) = 3, ch1 max(7, 4) = 7; region 1: ch0 max(5, 2) = 5, ch1 max(0, 6) = 6
    torch.testing.assert_close(p, torch.tensor([[[3., 7.], [5., 6.]]]))
    # soft masks scale before the max: region 0 weights 0.5 / 1.0 for the rows
    soft = torch.tensor([[[[0.5, 0.], [1., 0.]], [[0., 0.], [0., 0.]]]])
    torch.testing.assert_close(semantic_aligned_pooling(f, soft),
                               torch.tensor([[[3., 4.], [0., 0.]]]))  # max(.5, 3), max(3.5, 4)
    # SAB (Eq. 2): GMP of the kept regions' sum; 3 regions, keep {0, 2}
    masks3 = torch.tensor([[[[1., 0.], [0., 0.]], [[0., 1.], [0., 0.]],
                            [[0., 0.], [1., 1.]]]])                # [1, 3, 2, 2]
    a = kept_region_pooling(f, masks3, kept=(0, 2))
    # pixels kept: (0,0), (1,0), (1,1) -> ch0 max(1, 3, 2) = 3; ch1 max(7, 4, 6) = 7
    torch.testing.assert_close(a, torch.tensor([[3., 7.]]))
    torch.testing.assert_close(kept_region_pooling(f, masks3, kept=(1,)), torch.tensor([[5., 0.]]))
    with pytest.raises(ValueError, match="semantic_aligned_pooling"):
        semantic_aligned_pooling(f, masks[:, :, :1])


def test_labels_to_masks_nearest_one_hot():
    parts = _parts()
    m = labels_to_masks(parts, (4, 2), mode="nearest")
    assert m.shape == (N, 8, 4, 2)
    torch.testing.assert_close(m.sum(1), torch.ones(N, 4, 2))
    # block (i, j) of the 16x16 grid carries label parts[:, 16 i, 16 j]
    torch.testing.assert_close(m.argmax(1), parts[:, ::16, ::16])
    with pytest.raises(ValueError, match=r"0\.\.7"):
        labels_to_masks(parts + 1, (4, 2))
    with pytest.raises(ValueError, match=r"\[N, H, W\]"):
        labels_to_masks(parts[:, None], (4, 2))
    with pytest.raises(ValueError, match=r"\[N, H, W\]"):
        labels_to_masks(parts.float(), (4, 2))
    with pytest.raises(ValueError, match="resize"):
        labels_to_masks(parts, (4, 2), mode="area")


@pytest.mark.parametrize("k_hat", [2, 4, 6])
def test_random_torso_keeps_half_upper_half_lower(k_hat):
    g = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(300):
        kept = sample_kept_regions("random_torso", k_hat, g)
        assert kept[0] == 0 and kept.count(0) == 1                 # background never dropped
        assert len(kept) == k_hat + 1 and len(set(kept)) == len(kept)
        assert sum(k in U_TORSO for k in kept) == k_hat // 2
        assert sum(k in L_TORSO for k in kept) == k_hat // 2
        seen.add(kept)
    n_u = {2: 4, 4: 6, 6: 4}[k_hat]                                # C(4, k/2)
    n_l = {2: 3, 4: 3, 6: 1}[k_hat]                                # C(3, k/2)
    assert len(seen) == n_u * n_l                                  # every combination occurs


@pytest.mark.parametrize("k_hat", [1, 4, 7])
def test_random_baseline_keeps_k_hat(k_hat):
    g = torch.Generator().manual_seed(1)
    counts = torch.zeros(8)
    for _ in range(300):
        kept = sample_kept_regions("random_baseline", k_hat, g)
        assert kept[0] == 0 and len(kept) == k_hat + 1 and len(set(kept)) == k_hat + 1
        assert all(1 <= k <= 7 for k in kept[1:])
        counts[list(kept)] += 1
    assert counts[0] == 300
    if k_hat < 7:                   # not always torso-balanced: 4 upper + 0 lower etc. occur
        assert (counts[1:] > 0).all() and (counts[1:] < 300).all()


@pytest.mark.parametrize("sampling,k_hat", [("random_torso", 3), ("random_torso", 8),
                                            ("random_torso", 0), ("random_baseline", 0),
                                            ("random_baseline", 8), ("nope", 4)])
def test_bad_sampling_raises(sampling, k_hat):
    with pytest.raises(ValueError, match="sampling|k_hat"):
        sample_kept_regions(sampling, k_hat)
    with pytest.raises(ValueError):
        MagnifierNet(NC, backbone="resnet18", sampling=sampling, k_hat=k_hat)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="fusion"):
        MagnifierNet(NC, backbone="resnet18", fusion="lstm")
    with pytest.raises(ValueError, match="num_classes"):
        MagnifierNet(0, backbone="resnet18")
    model = _model(use_mask=False).eval()
    with pytest.raises(ValueError, match="use_mask=False.*parts"):
        model(_images())
    model = _model().train()
    with pytest.raises(ValueError, match="parts batch"):
        model(_images(), parts=_parts()[:2])


def test_sab_uses_drawn_kept_set_and_own_generator():
    model = _model(use_sfb=False, seed=5, mask_resize="nearest").train()
    x, parts = _images(), _parts()
    g = torch.Generator().manual_seed(5)
    expected = [sample_kept_regions("random_torso", 4, g) for _ in range(3)]
    torch.manual_seed(123)                          # the global RNG plays no part
    drawn = []
    for _ in range(3):
        out = model(x, parts=parts)
        sab = out["branches"]["sab"]
        kept = tuple(sab["kept"].tolist())
        drawn.append(kept)
        # Eq. 2 by hand: max over the pixels whose label is kept
        keep = torch.isin(parts[:, ::16, ::16], torch.tensor(kept)).float()[:, None]  # [N,1,4,2]
        torch.testing.assert_close(sab["embeddings"],
                                   (out["featuremaps"] * keep).amax((2, 3)))
    assert drawn == expected
    model.reset_sampler(5)
    assert model.sample_kept() == expected[0]


def test_eval_sab_keeps_every_region_and_ignores_given_parts():
    model = _model().eval()
    x = _images()
    with torch.no_grad():
        feat = model(x)
        feat_with_parts = model(x, parts=_parts())          # test: predicted masks all the same
        f = model(x, return_featuremaps=True)
        a = f.amax((2, 3))                                  # all regions kept: GMP(F * 1)
    torch.testing.assert_close(feat, feat_with_parts)
    torch.testing.assert_close(feat[:, 512:1024], F.normalize(model.neck_sab.bn(a), dim=1),
                               atol=1e-5, rtol=1e-5)


def test_parts_none_uses_predicted_masks():
    model = _model(test_masks="soft", mask_resize="nearest").eval()
    x = _images()
    with torch.no_grad():
        f = model(x, return_featuremaps=True)
        masks = model.region_masks(f, parts=None)
        torch.testing.assert_close(masks, model.seg_head(f).softmax(1))
        p = semantic_aligned_pooling(f, masks)
        s = model.gru(p[:, list(SFB_ORDER)])[0][:, -1]
        feat = model(x)
    torch.testing.assert_close(feat[:, 1024:], F.normalize(model.neck_sfb.bn(s), dim=1),
                               atol=1e-5, rtol=1e-5)
    # training without parts: predicted masks too (and the one-hot labels when given)
    model.train()
    out = model(x)
    torch.testing.assert_close(out["region_masks"], out["seg_logits"].softmax(1))
    out = model(x, parts=_parts())
    torch.testing.assert_close(out["region_masks"], labels_to_masks(_parts(), (4, 2), mode="nearest"))


def test_gru_order_head_to_foot_then_background():
    assert SFB_ORDER == (1, 2, 3, 4, 5, 6, 7, 0)
    model = _model(use_sab=False).train()
    x, parts = _images(), _parts()
    out = model(x, parts=parts)
    p = out["region_features"]                                     # [N, 8, C] label order
    torch.testing.assert_close(p, semantic_aligned_pooling(out["featuremaps"],
                                                           labels_to_masks(parts, (4, 2), mode="bilinear")))
    torch.testing.assert_close(out["part_features"], p[:, 1:])
    with torch.no_grad():
        ordered = model.gru(p[:, [1, 2, 3, 4, 5, 6, 7, 0]])[0][:, -1]
        bg_first = model.gru(p)[0][:, -1]
        reversed_ = model.gru(p[:, [0, 7, 6, 5, 4, 3, 2, 1]])[0][:, -1]
    sfb = out["branches"]["sfb"]["embeddings"]
    torch.testing.assert_close(sfb, ordered)
    assert not torch.allclose(sfb, bg_first, atol=1e-4)
    assert not torch.allclose(sfb, reversed_, atol=1e-4)
    # per-region supervision in the same order: region i of the list is label SFB_ORDER[i]
    for i, k in enumerate(SFB_ORDER):
        torch.testing.assert_close(out["branches"]["sfb_parts"]["embeddings"][i], p[:, k])


def test_ablation_branch_reduces_and_concatenates():
    model = _model(use_sab=False, fusion="ab").train()
    x, parts = _images(), _parts()
    out = model(x, parts=parts)
    p = out["region_features"]
    assert [m.out_features for m in model.ab_reduce] == [64] * 8  # 512 / 8
    expected = torch.cat([model.ab_reduce[i](p[:, k]) for i, k in enumerate(SFB_ORDER)], 1)
    torch.testing.assert_close(out["branches"]["sfb"]["embeddings"], expected)


def test_loss_terms_by_hand():
    model = _model().train()
    x, parts = _images(), _parts()
    out = model(x, parts=parts)
    batch = _batch(x, parts)

    def ce_tri(logits, emb):
        return cross_entropy(logits, PIDS, label_smoothing=0.1) + triplet_hard_loss(emb, PIDS, 0.3)

    br = out["branches"]
    parts_term = sum(cross_entropy(lg, PIDS, label_smoothing=0.1)
                     for lg in br["sfb_parts"]["logits"]) / 8 \
        + sum(triplet_hard_loss(e, PIDS, 0.3) for e in br["sfb_parts"]["embeddings"]) / 8
    expected = ce_tri(out["logits"], out["embeddings"]) \
        + ce_tri(br["sab"]["logits"], br["sab"]["embeddings"]) \
        + ce_tri(br["sfb"]["logits"], br["sfb"]["embeddings"]) + parts_term
    terms = magnifiernet_losses(model, sd_weight=2e-3)
    assert set(terms) == {f"{loss}_{b}" for loss, b in itertools.product(
        ("ce", "tri"), ("global", "sab", "sfb", "sfb_parts"))} | {"mask", "sd"}
    assert terms["mask"][0] == 2.0 and terms["sd"][0] == 2e-3
    assert all(terms[k][0] == 1.0 for k in terms if k not in ("mask", "sd"))
    split = sum(t(out, batch) for k, (w, t) in terms.items() if k not in ("mask", "sd"))
    torch.testing.assert_close(split, expected)
    torch.testing.assert_close(terms["sd"][1](out, batch),
                               semantic_diversity_loss(out["part_features"]))
    torch.testing.assert_close(terms["mask"][1](out, batch), MaskTerm()(out, batch))
    # SD of features that are all equal is 1, of orthogonal ones 0
    same = {"part_features": torch.ones(2, 7, 5)}
    torch.testing.assert_close(SDTerm()(same, batch), torch.tensor(1.0))
    ortho = {"part_features": torch.eye(7)[None].repeat(2, 1, 1)}
    torch.testing.assert_close(SDTerm()(ortho, batch), torch.tensor(0.0))
    with pytest.raises(KeyError, match="branch 'sab'"):
        BranchTerm("sab")({"logits": out["logits"], "branches": {}}, batch)
    with pytest.raises(ValueError, match="use_sfb"):
        magnifiernet_losses(_model(use_sfb=False), sd_weight=2e-3)


def test_branch_activation_maps():
    model = _model(mask_resize="nearest").eval()
    x, parts = _images(), _parts()
    maps = model.branch_activation_maps(x, parts=parts, kept=(0, 1, 2, 5, 6))
    f = model(x, return_featuremaps=True).detach()
    torch.testing.assert_close(maps["global"], f.pow(2).mean(1))
    lab = parts[:, ::16, ::16]
    keep = torch.isin(lab, torch.tensor([0, 1, 2, 5, 6])).float()
    torch.testing.assert_close(maps["sab"], (f * keep[:, None]).pow(2).mean(1))
    assert torch.equal(maps["parts"], lab)
    assert (maps["sab"] <= maps["global"] + 1e-6).all()
    full = model.branch_activation_maps(x)                         # predicted masks, all kept
    torch.testing.assert_close(full["sab"], full["global"], atol=1e-4, rtol=1e-4)


def test_registry_builds_defaults():
    model = build_model("magnifiernet", NC, backbone="resnet18")
    assert isinstance(model, MagnifierNet)
    assert (model.use_mask, model.use_sab, model.use_sfb, model.fusion) == (True, True, True, "gru")
    assert (model.sampling, model.k_hat, model.backbone.last_stride) == ("random_torso", 4, 1)
    assert model.gru.hidden_size == 512 and model.gru.num_layers == 1
    assert model.feat_dim == 3 * 512


# ------------------------------------------------------- masks: one transform (002 §3.1)
class _FixedLogits(torch.nn.Module):
    """Stands in for the mask head: returns given seg logits whatever the feature map."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits

    def forward(self, f):
        return self.logits


def test_train_and_test_masks_go_through_the_same_transform():
    # the same part map as "label" (training) and as the mask head's "prediction" (test):
    # logits 10 x one-hot of the 4x2 block labels upsample (bilinear) and arg-max back to
    # exactly the 64x32 block map (every image's 8 cells carry 8 distinct labels)
    model = _model()
    assert (model.mask_resize, model.test_masks) == ("bilinear", "binary")
    parts = _parts()
    logits = 10.0 * F.one_hot(parts[:, ::16, ::16], 8).permute(0, 3, 1, 2).float()
    model.seg_head = _FixedLogits(logits)
    assert torch.equal(model.mask_head_labels(logits, (H, W)), parts)
    with torch.no_grad():
        f = model.eval()(_images(), return_featuremaps=True)
        test_masks = model.region_masks(f, None, input_size=(H, W))
        train_masks = model.train().region_masks(f, parts)
        torch.testing.assert_close(test_masks, train_masks, rtol=0, atol=0)
        torch.testing.assert_close(semantic_aligned_pooling(f, test_masks),
                                   semantic_aligned_pooling(f, train_masks), rtol=0, atol=0)
        # and the eval forward pools with them: SFB feature from the train-time masks
        p = semantic_aligned_pooling(f, train_masks)
        s = model.gru(p[:, list(SFB_ORDER)])[0][:, -1]
        feat = model.eval()(_images())
    torch.testing.assert_close(feat[:, 1024:], F.normalize(model.neck_sfb.bn(s), dim=1),
                               atol=1e-5, rtol=1e-5)
    # the bilinear masks of 16x16 blocks on a 4x2 map are soft (neighbours bleed in)
    assert 0 < float(train_masks.amax(1).min()) < 1


def test_bilinear_keeps_a_thin_arm_that_nearest_loses():
    # a 1-px-wide upper arm (label 2) in column 5, rows 10..39 of a 64x32 map -> 4x2 (16x).
    # Antialiased bilinear = triangle filter of half-width 16 px, weights normalised:
    # output column 0 (centre x = 8) weighs columns 0..23 with 1 - |j + .5 - 8| / 16, sum 14,
    # column 5: .84375 -> 0.84375 / 14; output row 1 (centre y = 24) weighs rows 8..39, sum
    # 16, the arm covers all but rows 8 (.03125) and 9 (.09375): 15.875 / 16.
    parts = torch.zeros(1, 64, 32, dtype=torch.long)
    parts[0, 10:40, 5] = 2
    near = labels_to_masks(parts, (4, 2), mode="nearest")
    bil = labels_to_masks(parts, (4, 2), mode="bilinear")
    assert float(near[0, 2].max()) == 0.0                       # nearest: the arm is gone
    assert float(bil[0, 2, 1, 0]) == pytest.approx(0.84375 / 14 * 15.875 / 16, abs=1e-6)
    assert float(bil[0, 2, :, 1].max()) == 0.0                  # never reaches column 1
    torch.testing.assert_close(bil.sum(1), torch.ones(1, 4, 2))  # still a partition of 1
    # pooled: the arm's feature is the arm pixel's activation times its share (GMP, Eq. 1)
    f = torch.zeros(1, 1, 4, 2)
    f[0, 0, 1, 0] = 2.0
    assert float(semantic_aligned_pooling(f, bil)[0, 2, 0]) == pytest.approx(
        2.0 * 0.84375 / 14 * 15.875 / 16, abs=1e-6)
    assert float(semantic_aligned_pooling(f, near)[0, 2, 0]) == 0.0


def test_mask_options_are_checked():
    with pytest.raises(ValueError, match="mask_resize"):
        MagnifierNet(NC, backbone="resnet18", mask_resize="area")
    with pytest.raises(ValueError, match="test_masks"):
        MagnifierNet(NC, backbone="resnet18", test_masks="prob")

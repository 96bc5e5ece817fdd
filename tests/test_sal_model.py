"""Tests for reidnb.papers.sal.model (004 §3.1 network, Eq. 1 attention maps).

ResNet-18 at 64x32 input, pretrained=False, CPU; one ResNet-50 forward for the paper's
channel counts.
"""
from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torchvision.models.resnet import BasicBlock, Bottleneck

from reidnb.papers.sal import model as sal_mod
from reidnb.papers.sal.model import SAL

torch.set_num_threads(min(2, torch.get_num_threads()))

N, H, W, NUM_CLASSES, FEAT_DIM = 2, 64, 32, 5, 32
SWITCHES = list(itertools.product([True, False], repeat=3))  # dilation, multi_level, stage6


def _model(dilation=True, multi_level=True, stage6=None, seed=0, **kw):
    torch.manual_seed(seed)
    kw.setdefault("feat_dim", FEAT_DIM)
    return SAL(NUM_CLASSES, backbone=kw.pop("backbone", "resnet18"), pretrained=False,
               dilation=dilation, multi_level=multi_level, stage6=stage6, **kw)


def _images(n=N, seed=1):
    return torch.randn(n, 3, H, W, generator=torch.Generator().manual_seed(seed))


def _sac(att):
    a4, a5, a6 = att
    return ((a6 - a5).pow(2).sum(1) + (a6 - a4).pow(2).sum(1)).mean()


def test_attention_map_hand_computed():
    # channel 0 = [1, 2], channel 1 = [3, 0]: mean of squares [5, 2], L2 norm sqrt(29)
    f = torch.tensor([[[[1.0, 2.0]], [[3.0, 0.0]]]])  # [1, 2, 1, 2]
    a = sal_mod.attention_map(f)
    expected = torch.tensor([[5.0, 2.0]]) / math.sqrt(29.0)
    torch.testing.assert_close(a, expected)


def test_uses_shared_attention_map_when_present():
    losses = pytest.importorskip("reidnb.losses")
    if not hasattr(losses, "attention_map"):
        pytest.skip("reidnb.losses.attention_map not written yet")
    assert sal_mod.attention_map is losses.attention_map


@pytest.mark.parametrize("dilation,multi_level,stage6", SWITCHES)
def test_every_switch_trains(dilation, multi_level, stage6):
    model = _model(dilation, multi_level, stage6).train()
    out = model(_images())
    c4, c5, c6 = (256, 512, 256)
    fmap_c = (c4 + c5 + (c6 if stage6 else 0)) if multi_level else (c6 if stage6 else c5)
    h, w = (H // 8, W // 8) if dilation else (H // 32, W // 32)
    assert model.feat_channels == fmap_c
    assert out["logits"].shape == (N, NUM_CLASSES)
    assert out["embeddings"].shape == (N, FEAT_DIM)
    assert out["featuremaps"].shape == (N, fmap_c, h, w)
    for key in ("logits", "embeddings", "featuremaps"):
        assert torch.isfinite(out[key]).all(), key
    loss = F.cross_entropy(out["logits"], torch.tensor([0, 1])) + out["embeddings"].pow(2).mean()
    if stage6:
        assert len(out["attention"]) == 3
        for a in out["attention"]:
            assert a.shape == (N, h * w) and a.dtype == torch.float32
            torch.testing.assert_close(a.norm(dim=1), torch.ones(N))
        loss = loss + _sac(out["attention"])
    else:
        assert out["attention"] is None  # no att_s6: SAC (Eq. 2) undefined
    loss.backward()
    assert torch.isfinite(loss)
    for name, p in model.named_parameters():
        assert p.grad is not None, f"no gradient for {name}"
        assert torch.isfinite(p.grad).all(), f"non-finite gradient for {name}"
    # SAC reaches the shallow stage (no stop-gradient, recipes.md §4.6)
    assert model.backbone.layer3[0].conv1.weight.grad.abs().sum() > 0


def test_stage6_defaults_to_multi_level():
    assert _model(multi_level=True).stage6 is not None
    assert _model(multi_level=False).stage6 is None


def test_dilated_stages_stay_at_one_eighth():
    model = _model(dilation=True).eval()
    with torch.no_grad():
        f4, f5, f6 = model.stages(_images())
    assert f4.shape == (N, 256, 8, 4)
    assert f5.shape == (N, 512, 8, 4)
    assert f6.shape == (N, 256, 8, 4)
    assert model.out_stride == 8


def test_plain_stages_at_one_sixteenth_and_thirty_second():
    model = _model(dilation=False).eval()
    with torch.no_grad():
        f4, f5, f6 = model.stages(_images())
    assert f4.shape == (N, 256, 4, 2)
    assert f5.shape == (N, 512, 2, 1)
    assert f6.shape == (N, 256, 2, 1)  # stage6 never down-samples
    assert model.out_stride == 32


def test_stage6_structure_resnet18():
    s6 = _model().stage6
    assert len(s6) == 2 and all(isinstance(b, BasicBlock) for b in s6)
    assert s6[0].conv1.in_channels == 512 and s6[-1].conv2.out_channels == 256
    for b in s6:
        assert b.conv1.dilation == (2, 2) and b.conv2.dilation == (2, 2)
        assert b.conv1.stride == (1, 1)
    assert _model(dilation=False).stage6[0].conv1.dilation == (1, 1)


def test_attention_equals_hand_computed_mean_of_squares():
    model = _model(dilation=True).eval()
    x = _images()
    with torch.no_grad():
        f4, f5, f6 = model.stages(x)
        a4, a5, a6 = model(x, return_attention=True)
    for f, a in ((f4, a4), (f5, a5), (f6, a6)):
        m = (f ** 2).sum(1) / f.shape[1]                          # [N, 8, 4]
        expected = m / m.flatten(1).norm(dim=1).view(N, 1, 1)
        assert a.shape == (N, 8, 4)
        torch.testing.assert_close(a, expected)


def test_non_dilated_a4_is_area_resized_to_stage5():
    model = _model(dilation=False).eval()
    x = _images()
    with torch.no_grad():
        f4, f5, _ = model.stages(x)
        a4, a5, a6 = model(x, return_attention=True)
    m = (f4 ** 2).mean(1)                       # [N, 4, 2] at 1/16
    m = m.view(N, 2, 2, 2).mean(dim=(2, 3))     # 2x2 blocks -> stage5 grid [N, 2] (2x1)
    expected = (m / m.norm(dim=1, keepdim=True)).view(N, 2, 1)
    assert a4.shape == a5.shape == a6.shape == (N, 2, 1)
    torch.testing.assert_close(a4, expected)
    # the concatenated map holds f4 averaged over the same 2x2 blocks
    with torch.no_grad():
        fmap = model(x, return_featuremaps=True)
    torch.testing.assert_close(fmap[:, :256], f4.view(N, 256, 2, 2, 2).mean(dim=(3, 4)).unsqueeze(-1))


def test_eval_feature_and_featuremaps():
    model = _model().eval()
    x = _images(3)
    with torch.no_grad():
        feat = model(x)
        fmap = model(x, return_featuremaps=True)
        f4, f5, f6 = model.stages(x)
    assert feat.shape == (3, FEAT_DIM)
    assert fmap.shape == (3, 1024, 8, 4)
    torch.testing.assert_close(fmap, torch.cat([f4, f5, f6], 1))
    torch.testing.assert_close(feat, model.bn(model.fc(fmap.mean(dim=(2, 3)))))
    model.train()
    assert model(x, return_featuremaps=True).shape == (3, 1024, 8, 4)


def test_training_attention_matches_return_attention():
    model = _model().train()  # batch statistics in both calls
    x = _images()
    with torch.no_grad():
        maps = model(x, return_attention=True)
        att = model(x)["attention"]
    for a, m in zip(att, maps):
        torch.testing.assert_close(a.view(N, 8, 4), m)


def test_bad_inputs_raise():
    model = _model(multi_level=False).eval()
    with pytest.raises(ValueError, match=r"\[N,3,H,W\]"):
        model(torch.zeros(1, 1, H, W))
    with pytest.raises(ValueError, match="stage6"):
        model(_images(), return_attention=True)
    with pytest.raises(ValueError, match="not both"):
        _model().eval()(_images(), return_featuremaps=True, return_attention=True)


def test_resnet50_paper_channels():
    model = _model(backbone="resnet50", feat_dim=1024).eval()
    s6 = model.stage6
    assert len(s6) == 3 and all(isinstance(b, Bottleneck) for b in s6)
    assert s6[0].conv1.in_channels == 2048 and s6[-1].conv3.out_channels == 1024
    assert s6[0].conv2.out_channels == 256 and s6[0].conv2.dilation == (2, 2)
    assert model.stage_channels == (1024, 2048, 1024) and model.feat_channels == 4096
    assert model.fc.in_features == 4096 and model.fc.out_features == 1024
    with torch.no_grad():
        fmap = model(_images(1), return_featuremaps=True)
    assert fmap.shape == (1, 4096, 8, 4)


def test_registered():
    from reidnb.models import build_model
    model = build_model("sal", NUM_CLASSES, backbone="resnet18", pretrained=False,
                        feat_dim=FEAT_DIM)
    assert isinstance(model, SAL) and model.classifier.out_features == NUM_CLASSES

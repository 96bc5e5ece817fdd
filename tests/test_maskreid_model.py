"""Tests of reidnb.papers.maskreid.model (MaskReID and its DGD / -F / -M ablations).

Layer sizes from recipes.md §1.1 (DGD prototxt, 144x56 input); the masked image as in
recipes.md §1.7 (background = 0 pixel before normalisation). Small inputs, CPU only.
"""
from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from reidnb.models import build_model
from reidnb.papers.maskreid.model import IMAGENET_MEAN, IMAGENET_STD, MaskReID

# Normalised value of a black pixel, by hand: -mean / std per RGB channel.
BLACK = (-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225)   # (-2.1179, -2.0357, -1.8044)

ABLATIONS = list(itertools.product((True, False), (True, False)))   # (use_mask, fusion)


def _inputs(n=4, h=64, w=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, h, w, generator=g)
    mask = (torch.rand(n, 1, h, w, generator=g) > 0.4).float()
    return x, mask


def _count(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("backbone", ["dgd", "resnet18"])
@pytest.mark.parametrize("use_mask,fusion", ABLATIONS)
def test_forward_backward_every_parameter_gets_gradient(backbone, use_mask, fusion):
    torch.manual_seed(0)
    model = MaskReID(6, use_mask=use_mask, fusion=fusion, backbone=backbone).train()
    x, mask = _inputs()
    out = model(x, mask=mask)
    assert set(out) == {"logits", "embeddings", "featuremaps", "levels"}
    assert out["logits"].shape == (4, 6)
    assert out["embeddings"].shape == (4, 256)
    c = (384, 768, 1536) if backbone == "dgd" else (128, 256, 512)
    assert [lv.shape for lv in out["levels"]] == [(4, k) for k in c]
    assert out["featuremaps"].shape[:2] == (4, c[-1])
    # classifier sits on ReLU(embeddings); the embedding itself is pre-ReLU (can be < 0)
    torch.testing.assert_close(out["logits"], model.classifier(out["embeddings"].clamp_min(0)))
    assert (out["embeddings"] < 0).any()
    loss = F.cross_entropy(out["logits"], torch.tensor([0, 1, 2, 3])) \
        + out["embeddings"].pow(2).mean()
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"
        assert p.grad.abs().sum() > 0, f"{name} has an all-zero gradient"
    assert torch.isfinite(out["embeddings"]).all() and torch.isfinite(out["logits"]).all()


def test_dgd_spatial_sizes_match_prototxt():
    """144x56 -> pool1 72x28 -> 1b 384x36x14 -> 2b 768x18x7 -> 3b 1536x9x4 (recipes §1.1)."""
    model = MaskReID(5, backbone="dgd").eval()
    seen = {}
    names = ["stream", "mask_stream"] + [f"trunk.inception_{s}" for s in
                                         ("1a", "1b", "2a", "2b", "3a", "3b")]
    mods = dict(model.named_modules())
    hooks = [mods[n].register_forward_hook(
        lambda m, i, o, n=n: seen.__setitem__(n, tuple(o.shape[1:]))) for n in names]
    x, mask = _inputs(n=2, h=144, w=56)
    with torch.no_grad():
        maps = model.forward_maps(x, mask)
    for h in hooks:
        h.remove()
    assert seen == {
        "stream": (32, 72, 28), "mask_stream": (32, 72, 28),
        "trunk.inception_1a": (256, 72, 28), "trunk.inception_1b": (384, 36, 14),
        "trunk.inception_2a": (512, 36, 14), "trunk.inception_2b": (768, 18, 7),
        "trunk.inception_3a": (1024, 18, 7), "trunk.inception_3b": (1536, 9, 4),
    }
    assert maps["shared"].shape == (2, 64, 72, 28)            # two 32-ch streams concatenated
    assert maps["low"].shape == (2, 384, 36, 14)
    assert maps["mid"].shape == (2, 768, 18, 7)
    assert maps["high"].shape == (2, 1536, 9, 4)
    # single stream (DGD / MaskReID-F): inception 1a sees the 32-ch pool1 map, as DGD
    base = MaskReID(5, use_mask=False, fusion=False).eval()
    assert base.trunk.inception_1a.b1x1[0].in_channels == 32
    assert model.trunk.inception_1a.b1x1[0].in_channels == 64


def test_dgd_odd_sizes_keep_branches_aligned():
    """Odd sides are padded in the max-pool branch (prototxt's pad_w at 3b), any size."""
    model = MaskReID(5, backbone="dgd").eval()
    x, mask = _inputs(n=1, h=150, w=60)
    with torch.no_grad():
        maps = model.forward_maps(x, mask)
    assert maps["shared"].shape[-2:] == (75, 30)
    assert maps["low"].shape[-2:] == (38, 15)
    assert maps["mid"].shape[-2:] == (19, 8)
    assert maps["high"].shape[-2:] == (10, 4)


def test_masked_input_values():
    model = MaskReID(3).eval()
    x, _ = _inputs(n=2, h=8, w=4)
    black = torch.tensor(BLACK).view(1, 3, 1, 1).expand(2, 3, 8, 4)
    zeros, ones = torch.zeros(2, 1, 8, 4), torch.ones(2, 1, 8, 4)
    torch.testing.assert_close(model.masked_input(x, zeros), black)
    torch.testing.assert_close(model.masked_input(x, ones), x)
    half = torch.zeros(2, 1, 8, 4)
    half[:, :, :4] = 1                                        # top half is the person
    got = model.masked_input(x, half)
    torch.testing.assert_close(got[:, :, :4], x[:, :, :4])
    torch.testing.assert_close(got[:, :, 4:], black[:, :, 4:])
    # bool masks are accepted and mean the same
    torch.testing.assert_close(model.masked_input(x, half.bool()), got)
    assert IMAGENET_MEAN == (0.485, 0.456, 0.406) and IMAGENET_STD == (0.229, 0.224, 0.225)


@pytest.mark.parametrize("backbone", ["dgd", "resnet18"])
def test_mask_stream_sees_only_foreground(backbone):
    torch.manual_seed(0)
    model = MaskReID(5, backbone=backbone).eval()
    x, _ = _inputs(n=2, h=64, w=32)
    mask = torch.zeros(2, 1, 64, 32)
    mask[:, :, 16:56, 8:24] = 1                               # person box
    x2 = x.clone()
    bg = (mask == 0).expand_as(x)
    x2[bg] = torch.randn(int(bg.sum()))                       # new background only
    with torch.no_grad():
        a, b = model.forward_maps(x, mask), model.forward_maps(x2, mask)
        fa, fb = model(x, mask=mask), model(x2, mask=mask)
    torch.testing.assert_close(a["masked"], b["masked"])      # mask stream: unchanged
    assert not torch.allclose(a["original"], b["original"])   # image stream: changed
    assert not torch.allclose(fa, fb)
    # all-zero mask: the mask stream's input is the black image, whatever x is
    zeros = torch.zeros(2, 1, 64, 32)
    with torch.no_grad():
        z1 = model.forward_maps(x, zeros)["masked"]
        z2 = model.forward_maps(x2, zeros)["masked"]
        black = torch.tensor(BLACK).view(1, 3, 1, 1).expand(2, 3, 64, 32)
        ref = model.mask_stream(black)
    torch.testing.assert_close(z1, ref)
    torch.testing.assert_close(z2, ref)
    # and the foreground does reach it
    x3 = x.clone()
    x3[:, :, 30:40, 10:20] += 1.0
    with torch.no_grad():
        assert not torch.allclose(model.forward_maps(x3, mask)["masked"], a["masked"])


def test_resnet_stream_fusion_starts_as_average():
    """The 1x1 fuse conv is initialised to (orig + masked) / 2: with mask = 1 both streams
    are the same copy of the stem on the same image, so the shared input equals one stream."""
    model = MaskReID(5, backbone="resnet18").eval()
    x, _ = _inputs(n=2, h=64, w=32)
    with torch.no_grad():
        maps = model.forward_maps(x, torch.ones(2, 1, 64, 32))
    assert maps["shared"].shape == (2, 64, 16, 8)
    torch.testing.assert_close(maps["shared"], maps["original"])
    assert maps["low"].shape == (2, 128, 8, 4) and maps["high"].shape == (2, 512, 2, 1)


@pytest.mark.parametrize("use_mask,fusion", ABLATIONS)
def test_eval_feature_is_fused_levels(use_mask, fusion):
    torch.manual_seed(1)
    model = MaskReID(5, use_mask=use_mask, fusion=fusion).train()
    x, mask = _inputs(n=4, h=64, w=32)
    model(x, mask=mask)                                       # move BN running stats
    model.eval()
    with torch.no_grad():
        feat = model(x, mask=mask)
        maps = model.forward_maps(x, mask)
        keys = ("low", "mid", "high") if fusion else ("high",)
        pooled = torch.cat([maps[k].mean(dim=(2, 3)) for k in keys], 1)
        manual = model.bn(model.fc(pooled))
        fmap = model(x, mask=mask, return_featuremaps=True)
    assert feat.shape == (4, 256) and feat.dtype == torch.float32
    assert model.fc.in_features == (384 + 768 + 1536 if fusion else 1536)
    torch.testing.assert_close(feat, manual)
    assert fmap.shape == (4, 1536, 4, 2)
    model.train()
    assert model(x, mask=mask, return_featuremaps=True).shape == (4, 1536, 4, 2)


def test_bad_inputs_raise():
    model = MaskReID(5)
    x, mask = _inputs(n=2, h=32, w=16)
    with pytest.raises(ValueError, match="needs the person mask"):
        model(x)
    with pytest.raises(ValueError, match=r"mask must be \[N, 1, H, W\]"):
        model(x, mask=mask[:, :, :16])
    with pytest.raises(ValueError, match=r"mask values must lie in \[0, 1\]"):
        model(x, mask=mask * 255)
    with pytest.raises(ValueError, match=r"x must be .*\[N, 3, H, W\]"):
        model(x[:, :1], mask=mask)
    with pytest.raises(ValueError, match="unknown backbone"):
        MaskReID(5, backbone="vgg16")
    with pytest.raises(ValueError, match="no pretrained weights"):
        MaskReID(5, backbone="dgd", pretrained=True)
    # without the mask stream a mask is optional (and ignored when given)
    single = MaskReID(5, use_mask=False).eval()
    with torch.no_grad():
        torch.testing.assert_close(single(x), single(x, mask=mask))


def test_parameter_counts():
    """DGD is ~6.7 M parameters without fc8; the ablations add exactly what they should."""
    counts = {(u, f): _count(MaskReID(751, use_mask=u, fusion=f)) for u, f in ABLATIONS}
    fc8 = 256 * 751 + 751
    base = counts[(False, False)] - fc8
    print(f"DGD base without fc8: {base:,} parameters; with fc8(751): {counts[(False, False)]:,}")
    assert 5_000_000 < base < 8_000_000
    # second stream: conv1-3 (3*32*9 + 2*32*32*9 weights + 3*64 BN) + 32 more input
    # channels for the four 1x1 convs of inception 1a (4 * 32 * 64)
    stream = 3 * 32 * 9 + 2 * 32 * 32 * 9 + 3 * 2 * 32
    assert counts[(True, False)] - counts[(False, False)] == stream + 4 * 32 * 64
    # fusion: the FC to 256 takes 384 + 768 more inputs
    assert counts[(False, True)] - counts[(False, False)] == (384 + 768) * 256
    assert counts[(True, True)] - counts[(False, False)] == \
        stream + 4 * 32 * 64 + (384 + 768) * 256


def test_registered_in_model_registry():
    model = build_model("maskreid", 7, use_mask=False, fusion=True)
    assert isinstance(model, MaskReID)
    assert model.classifier.out_features == 7 and not model.use_mask and model.fusion

"""Every registered model the cheap way (timm tests/test_models.py) + the ResNet backbone."""
from __future__ import annotations

import inspect
import warnings

import pytest
import torch
import torchvision.models as tvm

from reidnb.models import backbones
from reidnb.models import ResNetBackbone, build_model, list_models, register_model
from reidnb.papers.bcloss.model import BCLossNet
from reidnb.models.layers import BNNeck

N, H, W, NUM_CLASSES = 4, 64, 32, 5


def _params(ctor) -> dict:
    target = ctor.__init__ if inspect.isclass(ctor) else ctor
    return inspect.signature(target).parameters


def _small_kw(name: str) -> dict:
    """Small, fast, offline settings for whichever keywords the constructor accepts."""
    from reidnb.models import _MODELS
    params = _params(_MODELS[name])
    kw = {}
    if "backbone" in params:
        kw["backbone"] = "resnet18"
    if "pretrained" in params:
        kw["pretrained"] = False
    return kw


def _extra_inputs(model) -> dict:
    """Mask / part labels for models whose forward() takes them (MaskReID, MagnifierNet)."""
    params = inspect.signature(model.forward).parameters
    g = torch.Generator().manual_seed(0)
    extra = {}
    if "mask" in params:
        extra["mask"] = (torch.rand(N, 1, H, W, generator=g) > 0.5).float()
    if "parts" in params:
        extra["parts"] = torch.randint(0, 8, (N, H, W), generator=g)
    return extra


def _tensors(obj):
    if torch.is_tensor(obj):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _tensors(v)
    elif isinstance(obj, (tuple, list)):
        for v in obj:
            yield from _tensors(v)


@pytest.fixture(scope="module")
def images():
    return torch.randn(N, 3, H, W, generator=torch.Generator().manual_seed(0))


def test_registry():
    assert "bcloss" in list_models() and "bnneck" not in list_models()
    assert list_models() == sorted(list_models())
    with pytest.raises(KeyError, match=r"Unknown model: nope\. Must be one of \[.*'bcloss'"):
        build_model("nope", 3)
    with pytest.raises(ValueError, match="already registered"):
        register_model("bcloss")(BNNeck)


@pytest.mark.parametrize("name", list_models())
def test_model_contract(name, images):
    torch.manual_seed(0)
    model = build_model(name, NUM_CLASSES, **_small_kw(name))
    extra = _extra_inputs(model)
    model.train()
    out = model(images, **extra)
    assert isinstance(out, dict), f"{name}: training forward must return a dict"
    assert out["logits"].shape == (N, NUM_CLASSES)
    assert out["embeddings"].dim() == 2 and out["embeddings"].shape[0] == N
    assert out["featuremaps"].dim() == 4 and out["featuremaps"].shape[0] == N
    for v in _tensors(out):
        assert torch.isfinite(v).all(), f"{name}: non-finite output"
    # every parameter that should learn gets a gradient from the training outputs
    loss = sum(v.float().sum() for v in _tensors(out) if v.is_floating_point())
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"{name}: no gradient for {missing[:5]}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    fmap_train = model(images, return_featuremaps=True, **extra)
    assert fmap_train.dim() == 4 and fmap_train.shape[0] == N

    model.eval()
    with torch.no_grad():
        feat = model(images, **extra)
        fmap = model(images, return_featuremaps=True, **extra)
    assert torch.is_tensor(feat) and feat.dim() == 2 and feat.shape[0] == N
    assert torch.isfinite(feat).all()
    assert fmap.shape == fmap_train.shape


def test_bcloss_outputs(images):
    torch.manual_seed(0)
    m = BCLossNet(NUM_CLASSES, backbone="resnet18", dropout=0.9)
    out = m(images)
    # embeddings = GAP of the layer4 map (pool5) before dropout
    assert torch.allclose(out["embeddings"], out["featuremaps"].mean((2, 3)), atol=1e-6)
    assert out["featuremaps"].shape == (N, 512, 2, 1)         # stride 32 at 64x32
    assert m.dropout.p == 0.9 and m.classifier.bias is not None
    # dropout acts only on the classifier input: its output is train-mode random
    torch.manual_seed(1)
    a = m(images)["logits"]
    torch.manual_seed(2)
    b = m(images)["logits"]
    assert not torch.allclose(a, b)
    m.eval()
    with torch.no_grad():
        assert torch.allclose(m(images), m(images, return_featuremaps=True).mean((2, 3)),
                              atol=1e-6)
    with pytest.raises(ValueError, match="dropout"):
        BCLossNet(3, backbone="resnet18", dropout=1.0)


def test_bnneck_layer():
    """The one BNNeck of reidnb.models.layers (BoT): frozen zero BN bias, unit BN weight,
    bias-free N(0, 0.001^2) classifier on the post-BN feature."""
    torch.manual_seed(0)
    m = BNNeck(512, NUM_CLASSES)
    assert not m.bn.bias.requires_grad and m.bn.bias.abs().sum() == 0
    assert m.bn.weight.requires_grad and torch.all(m.bn.weight == 1)
    assert m.classifier.bias is None
    assert 0.0005 < m.classifier.weight.std().item() < 0.002  # N(0, 0.001^2)
    feat = torch.randn(N, 512, generator=torch.Generator().manual_seed(1)) * 3 + 1
    bn_feat, logits = m(feat)
    # training BN: post-BN feature of each channel has batch mean 0
    assert torch.allclose(bn_feat.mean(0), torch.zeros(512), atol=1e-4)
    assert torch.allclose(logits, bn_feat @ m.classifier.weight.t(), atol=1e-5)
    m.eval()
    with torch.no_grad():
        assert torch.allclose(m(feat)[0], m.bn(feat), atol=1e-6)


# ------------------------------------------------------------------ backbone
@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_backbone_strides_and_dilation(name, images):
    x = images[:1]
    base = ResNetBackbone(name)
    ch = 512 if name == "resnet18" else 2048
    assert base.out_channels == ch and base(x).shape == (1, ch, 2, 1) and base.stride == 32
    ls1 = ResNetBackbone(name, last_stride=1)                  # doubles the final map
    assert ls1(x).shape == (1, ch, 4, 2) and ls1.stride == 16
    dil = ResNetBackbone(name, dilation=(2, 4))                # SAL: layer3/4 stay at 1/8
    h = dil.layer2(dil.layer1(dil.stem(x)))
    assert h.shape[-2:] == (8, 4)
    h3 = dil.layer3(h)
    assert h3.shape[-2:] == (8, 4) and dil.layer4(h3).shape[-2:] == (8, 4)
    assert dil.stride == 8
    convs3 = [m for m in dil.layer3.modules()
              if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    assert convs3 and all(c.dilation == (2, 2) and c.padding == (2, 2) for c in convs3)
    convs4 = [m for m in dil.layer4.modules()
              if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    assert all(c.dilation == (4, 4) and c.stride == (1, 1) for c in convs4)
    # same parameters as torchvision's network (so ImageNet weights load unchanged)
    tv = getattr(tvm, name)(weights=None)
    n_tv = sum(p.numel() for k, p in tv.named_parameters() if not k.startswith("fc."))
    assert sum(p.numel() for p in dil.parameters()) == n_tv


def test_backbone_dilation_matches_torchvision_bottleneck(images):
    """Our dilation (2, 4) = torchvision's replace_stride_with_dilation on ResNet-50 except
    that torchvision's first block of a dilated stage keeps the previous dilation (DeepLab
    convention); with those two convs set to 2 and 4 and the same weights, outputs agree."""
    torch.manual_seed(0)
    tv = tvm.resnet50(weights=None, replace_stride_with_dilation=[False, True, True]).eval()
    assert tv.layer3[0].conv2.dilation == (1, 1) and tv.layer4[0].conv2.dilation == (2, 2)
    for conv, d in ((tv.layer3[0].conv2, 2), (tv.layer4[0].conv2, 4)):
        conv.dilation, conv.padding = (d, d), (d, d)
    ours = ResNetBackbone("resnet50", dilation=(2, 4)).eval()
    state = {k: v for k, v in tv.state_dict().items() if not k.startswith("fc.")}
    state = {("stem." + k if k.split(".")[0] in ("conv1", "bn1") else k): v
             for k, v in state.items()}
    ours.load_state_dict(state)
    x = images[:2]
    with torch.no_grad():
        want = tv.layer4(tv.layer3(tv.layer2(tv.layer1(tv.maxpool(tv.relu(tv.bn1(tv.conv1(x))))))))
        assert torch.allclose(ours(x), want, atol=1e-5)


def test_backbone_bad_arguments():
    with pytest.raises(ValueError, match="unknown backbone"):
        ResNetBackbone("resnet7")
    with pytest.raises(ValueError, match="last_stride"):
        ResNetBackbone("resnet18", last_stride=3)
    with pytest.raises(ValueError, match="dilation"):
        ResNetBackbone("resnet18", dilation=(0, 2))
    with pytest.raises(ValueError, match="pretrained"):
        ResNetBackbone("resnet18", pretrained="yes")


@pytest.fixture
def no_weights(monkeypatch, tmp_path):
    """Weights can not be had: empty hub dir and get_state_dict raising (no download)."""
    monkeypatch.delenv("REIDNB_OFFLINE", raising=False)   # the fake loader decides
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    calls = []

    def fail(self, *a, **k):
        calls.append(repr(self))
        raise OSError("<urlopen error [Errno -2] Name or service not known>")

    monkeypatch.setattr(tvm.WeightsEnum, "get_state_dict", fail)
    monkeypatch.setattr(backbones, "_FAILED_LOADS", {})
    return calls, tmp_path


def test_pretrained_true_fails_clearly(no_weights):
    calls, tmp = no_weights
    with pytest.raises(RuntimeError) as err:
        ResNetBackbone("resnet18", pretrained=True)
    msg = str(err.value)
    assert "ResNet18_Weights.IMAGENET1K_V1" in msg and str(tmp) in msg
    assert "Name or service not known" in msg
    assert calls == ["ResNet18_Weights.IMAGENET1K_V1"]
    with pytest.raises(RuntimeError, match="ResNet50_Weights.IMAGENET1K_V1"):
        build_model("bcloss", 3, backbone="resnet50", pretrained=True)


def test_pretrained_auto_falls_back(no_weights, capsys):
    calls, _ = no_weights
    with pytest.warns(RuntimeWarning, match="falling back to random initialisation"):
        b = ResNetBackbone("resnet18", pretrained="auto")
    assert b.pretrained_loaded is False
    assert "ResNet18_Weights.IMAGENET1K_V1" in capsys.readouterr().out
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # tried once per process: no second warning
        m = build_model("bcloss", 3, backbone="resnet18", pretrained="auto")
    assert m.pretrained_loaded is False and capsys.readouterr().out == ""
    assert calls == ["ResNet18_Weights.IMAGENET1K_V1"]
    # an explicit True still tries (and fails loudly)
    with pytest.raises(RuntimeError, match="ResNet18_Weights"):
        ResNetBackbone("resnet18", pretrained=True)


def test_pretrained_loads_given_weights(monkeypatch):
    """When the weights are available (here: a fake state dict) they are loaded."""
    src = tvm.resnet18(weights=None)
    with torch.no_grad():
        src.conv1.weight.fill_(0.5)
    monkeypatch.setattr(tvm.WeightsEnum, "get_state_dict", lambda self, *a, **k: src.state_dict())
    monkeypatch.delenv("REIDNB_OFFLINE", raising=False)
    b = ResNetBackbone("resnet18", pretrained=True, last_stride=1)
    assert b.pretrained_loaded is True
    assert torch.all(b.stem.conv1.weight == 0.5)
    assert torch.equal(b.layer4[0].conv1.weight, src.layer4[0].conv1.weight)


def test_offline_mode_never_calls_the_downloader(monkeypatch, tmp_path):
    """REIDNB_OFFLINE=1 (the test suite's setting): only the hub cache is read."""
    calls = []
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("REIDNB_OFFLINE", "1")
    monkeypatch.setattr(tvm.WeightsEnum, "get_state_dict",
                        lambda self, *a, **k: calls.append(repr(self)) or {})
    with pytest.raises(RuntimeError, match="REIDNB_OFFLINE=1: not downloading"):
        ResNetBackbone("resnet18", pretrained=True)
    assert calls == []

"""Mixed precision as the Trainer runs it on a GPU: bf16 autocast + channels_last against fp32.

The ``gpu``-marked test (skipped without CUDA; run by ``benchmarks/gpu_check.sh``) trains one
step of a randomly initialised torchvision ResNet-50 at 256x128 both ways from the same
weights and batch; the loss must agree within bf16's precision (8 mantissa bits: ~0.4%
relative per rounding) and the classifier's gradient must point the same way (the
whole-network gradient is not compared: bf16 rounding through a randomly initialised deep
net decorrelates the early layers' gradients, cosine 0.93 measured on the CPU twin). The CPU twin runs the
same comparison on a ResNet-18 at 64x32 (bf16 autocast exists on the CPU too), so the
comparison itself is exercised on every machine.
"""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
import torchvision


def _one_step(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, bf16: bool):
    """Loss (float) and the classifier's weight gradient (flattened) of one forward/backward
    in train mode."""
    net.train().zero_grad(set_to_none=True)
    if bf16:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
        logits = net(x)
    loss = F.cross_entropy(logits.float(), y)
    loss.backward()
    return float(loss.detach()), net.fc.weight.grad.float().flatten()


def _compare(arch: str, device: str, size: tuple[int, int], batch: int):
    torch.manual_seed(0)
    net = getattr(torchvision.models, arch)(weights=None, num_classes=16).to(device)
    x = torch.randn(batch, 3, *size, device=device)
    y = torch.arange(batch, device=device) % 16
    l32, g32 = _one_step(copy.deepcopy(net), x, y, bf16=False)
    l16, g16 = _one_step(copy.deepcopy(net), x, y, bf16=True)
    cos = F.cosine_similarity(g32, g16, dim=0).item()
    return l32, l16, cos


@pytest.mark.gpu
def test_bf16_channels_last_resnet50_matches_fp32_on_cuda():
    tf32 = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        l32, l16, cos = _compare("resnet50", "cuda", (256, 128), 16)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
    assert abs(l16 - l32) <= 0.02 * abs(l32), (l32, l16)
    assert cos > 0.99, cos


def test_bf16_autocast_resnet18_matches_fp32_on_cpu():
    l32, l16, cos = _compare("resnet18", "cpu", (64, 32), 8)
    # random init: about ln(16) = 2.77 (measured 3.198; bf16 3.183, fc-gradient cosine 0.9993)
    assert l32 == pytest.approx(2.77, abs=0.7)
    assert abs(l16 - l32) <= 0.02 * abs(l32), (l32, l16)
    assert cos > 0.99, cos

"""This machine's reference training speed: a portable unit for run-time budgets.

:func:`reference_speed` times a plain torchvision ResNet-18 (random init) training step on
random 3 x 64 x 32 images in batches of 64 (cross-entropy, SGD momentum 0.9), warm-up
excluded, and returns images per second. Run times measured on one machine can be carried
to another by the ratio of their reference speeds (``python -m reidnb bench``,
``python benchmarks/train_throughput.py --reference``).
"""
from __future__ import annotations

import time
from typing import Any

import torch
import torch.nn.functional as F

from .utils import resolve_device

__all__ = ["reference_speed", "REFERENCE_SETUP"]

#: What :func:`reference_speed` trains, in words (printed beside the number).
REFERENCE_SETUP = ("torchvision ResNet-18 (random init, 1000 classes), 3x64x32 random images, "
                   "batch 64, cross-entropy, SGD lr 0.01 momentum 0.9, float32 (CPU) / "
                   "bf16 autocast (CUDA)")


def reference_speed(seconds: float = 10.0, *, batch_size: int = 64, height: int = 64,
                    width: int = 32, warmup: int = 2, min_steps: int = 3,
                    device: Any = "auto", threads: int | None = None, seed: int = 0) -> float:
    """Images per second of a plain ResNet-18 training step (forward, backward, SGD update).

    Args:
        seconds: time the steps for at least this long (wall clock, after the warm-up).
        batch_size, height, width: the batch (defaults 64 of 3 x 64 x 32: the reference).
        warmup: untimed steps first (allocator, cuDNN autotune, thread pools).
        min_steps: time at least this many steps whatever ``seconds`` says.
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``...
        threads: torch CPU threads for the measurement (None: leave as set).
        seed: seed of the weights and the random batch.

    Returns:
        images per second of wall time (float), the model's loss read back every step as a
        training loop does. On a shared CPU the number moves with the other load: say so
        next to it.

    Raises:
        ValueError: non-positive sizes or ``seconds``; an unknown or absent device
            (:func:`reidnb.core.utils.resolve_device`).

    Source: torchvision ``resnet18(weights=None)``; the step is the plain PyTorch loop of
    ``benchmarks/train_throughput.py``.
    """
    import torchvision

    if seconds <= 0 or batch_size < 1 or height < 1 or width < 1 or min_steps < 1:
        raise ValueError(f"reference_speed: seconds={seconds}, batch_size={batch_size}, "
                         f"height={height}, width={width}, min_steps={min_steps} must be positive")
    dev = resolve_device(device)
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        gen = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        model = torchvision.models.resnet18(weights=None).to(dev).train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x = torch.randn(batch_size, 3, height, width, generator=gen).to(dev)
        y = torch.randint(0, 1000, (batch_size,), generator=gen).to(dev)
        cuda = dev.type == "cuda"
        if cuda:
            model = model.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)

        def step() -> float:
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
                loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return float(loss.item())

        for _ in range(max(int(warmup), 0)):
            step()
        steps, t0 = 0, time.perf_counter()
        while steps < min_steps or time.perf_counter() - t0 < seconds:
            step()
            steps += 1
        if cuda:
            torch.cuda.synchronize(dev)
        return steps * batch_size / (time.perf_counter() - t0)
    finally:
        torch.set_num_threads(old_threads)

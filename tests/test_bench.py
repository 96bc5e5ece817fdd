"""reidnb.core.bench: the reference speed (img/s of a plain ResNet-18 training step)."""
from __future__ import annotations

import pytest
import torch

from reidnb.core.bench import REFERENCE_SETUP, reference_speed


def test_reference_speed_times_whole_batches_and_restores_threads():
    before = torch.get_num_threads()
    speed = reference_speed(0.01, batch_size=2, height=32, width=16, warmup=0, min_steps=2,
                            device="cpu", threads=1)
    assert isinstance(speed, float) and 0.0 < speed < 1e5
    assert torch.get_num_threads() == before
    assert "ResNet-18" in REFERENCE_SETUP and "batch 64" in REFERENCE_SETUP


def test_reference_speed_refuses_bad_sizes():
    with pytest.raises(ValueError, match="batch_size=0"):
        reference_speed(1.0, batch_size=0)
    with pytest.raises(ValueError, match="seconds=-1"):
        reference_speed(-1)


def test_bench_command_prints_the_reference_speed_with_its_setup(capsys):
    from reidnb.__main__ import main

    assert main(["bench", "--seconds", "0.05", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("reference speed: ") and "img/s" in out and "ResNet-18" in out
    assert float(out.split()[2]) > 0

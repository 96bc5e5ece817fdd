"""reidnb.core.timing: the per-notebook time split (data / train / eval / other)."""
from __future__ import annotations

import json
import types

import pytest
import torch

from reidnb.core import timing
from reidnb.core.engine import Trainer
from reidnb.losses import Term, cross_entropy


def test_ledger_split_other_is_wall_minus_the_phases():
    led = timing.TimeLedger(start=100.0)
    led.add("data", 2.0)
    led.add("train", 10.0)
    led.add("eval", 3.0)
    led.add("train", 5.0)
    s = led.split(now=130.0)
    assert s == {"data": 2.0, "train": 15.0, "eval": 3.0, "other": 10.0, "wall": 30.0}
    assert led.split(now=110.0)["other"] == 0.0          # clamped, never negative
    assert timing.format_split(s).startswith("wall 30 s = data 2 s (7 %) + train 15 s (50 %)")
    with pytest.raises(KeyError, match="unknown phase 'other'"):
        led.add("other", 1.0)
    with pytest.raises(ValueError, match=">= 0"):
        led.add("eval", -1.0)
    led.reset(start=0.0)
    assert led.split(now=1.0) == {"data": 0.0, "train": 0.0, "eval": 0.0, "other": 1.0,
                                  "wall": 1.0}


def test_phase_context_and_write_read(tmp_path):
    led = timing.TimeLedger()
    with timing.phase("eval", led):
        pass
    assert 0.0 <= led.seconds["eval"] < 1.0
    cfg = types.SimpleNamespace(output_dir=str(tmp_path), notebook="07_x", workers=2,
                                device="cpu", profile="quick")
    path = timing.write_split(cfg, ledger=led, extra={"reference_img_s": 300.0})
    assert path == tmp_path / "results" / "07_x.time.json"
    rec = json.loads(path.read_text())
    assert rec["workers"] == 2 and rec["reference_img_s"] == 300.0
    assert set(timing.PHASES) <= set(rec) and rec["wall"] >= rec["eval"]
    (tmp_path / "results" / "08_bad.time.json").write_text("{not json")
    assert list(timing.read_splits(tmp_path)) == ["07_x"]         # the unreadable one left out


def test_trainer_adds_its_waits_and_steps_to_the_ledger():
    """A loader that sleeps 0.05 s per batch: the data phase sees at least those waits."""
    import time

    class Slow:
        def __iter__(self):
            for _ in range(3):
                time.sleep(0.05)
                yield {"img": torch.randn(4, 3, 8, 4), "pid": torch.tensor([0, 0, 1, 1])}

        def __len__(self):
            return 3

    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(96, 2))

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.f = net

        def forward(self, x):
            return {"logits": self.f(x)}

    before = dict(timing.LEDGER.seconds)
    Trainer(Net(), {"ce": (1.0, Term(cross_entropy, key="logits"))}, device="cpu", lr=0.1,
            progress=False).fit(Slow(), epochs=1)
    assert timing.LEDGER.seconds["data"] - before["data"] >= 0.15
    assert timing.LEDGER.seconds["train"] > before["train"]

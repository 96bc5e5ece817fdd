"""Tests of reidnb.experiment: the checkpoint key and the cached train-and-evaluate call."""
from __future__ import annotations

import types

import torch

from reidnb import experiment as exp
from reidnb.config import make_config
from reidnb.data.datasets import Record
from reidnb.losses import Term, cross_entropy


def _ds(pids):
    return types.SimpleNamespace(train=[Record(f"/d/{i:04d}.jpg", p, 0)
                                        for i, p in enumerate(pids)])


SPEC = {"name": "softmax", "model": "bnneck", "lr": 0.01}


def test_run_key_ignores_sweep_and_eval_settings():
    a = make_config("01_bcloss", "smoke", device="cpu", taus=(1.0,), output_dir="/tmp/x")
    b = make_config("01_bcloss", "smoke", device="cpu", taus=(0.5, 1.0, 1.5), eval_flip=True,
                    output_dir="/tmp/y", workers=3)
    ds = _ds([0, 0, 1, 1])
    assert exp.run_key(a, ds, SPEC) == exp.run_key(b, ds, SPEC)
    key = exp.run_key(a, ds, SPEC)
    assert len(key) == 10 and int(key, 16) >= 0


def test_run_key_changes_with_what_training_sees():
    cfg = make_config("01_bcloss", "smoke", device="cpu")
    ds = _ds([0, 0, 1, 1])
    key = exp.run_key(cfg, ds, SPEC)
    assert exp.run_key(cfg, _ds([0, 0, 1]), SPEC) != key            # train subset
    assert exp.run_key(cfg, _ds([0, 1, 1, 1]), SPEC) != key         # relabelled pids
    assert exp.run_key(make_config("01_bcloss", "smoke", device="cpu", seed=1), ds, SPEC) != key
    assert exp.run_key(make_config("01_bcloss", "smoke", device="cpu", height=32), ds,
                       SPEC) != key
    assert exp.run_key(make_config("01_bcloss", "smoke", device="cpu", max_iters=5), ds,
                       SPEC) != key
    assert exp.run_key(cfg, ds, {**SPEC, "lr": 0.02}) != key
    assert exp.run_key(cfg, ds, {**SPEC, "init": "abc"}) != key


def test_train_and_evaluate_reuses_its_checkpoint(tmp_path):
    torch.manual_seed(0)
    cfg = make_config("01_bcloss", "smoke", device="cpu", output_dir=str(tmp_path),
                      max_iters=2)
    ds = exp.load_data(cfg, verbose=False)
    losses = {"ce": (1.0, Term(cross_entropy, key="logits"))}
    kw = dict(name="softmax", model="bnneck", losses=losses, verbose=False,
              evaluate_model=False)
    first = exp.train_and_evaluate(cfg, ds, **kw)
    assert len(first.history) == 2
    ckpts = list((tmp_path / "checkpoints" / "01_bcloss").iterdir())
    assert [c.name for c in ckpts] == [f"softmax-{first.key}"]
    # another sweep list: same key, the finished checkpoint is loaded, nothing retrains
    cfg2 = make_config("01_bcloss", "smoke", device="cpu", output_dir=str(tmp_path),
                       max_iters=2, taus=(0.5,))
    again = exp.train_and_evaluate(cfg2, ds, **kw)
    assert again.key == first.key and len(again.history) == 2
    assert again.train_seconds - first.train_seconds < 0.5 * first.train_seconds
    for p, q in zip(first.model.parameters(), again.model.parameters()):
        assert torch.equal(p, q)
    # a stage 2 from it carries its key: a different start gives a different key
    second = exp.train_and_evaluate(cfg, ds, **{**kw, "name": "stage2"}, init=first)
    fresh = exp.run_key(cfg, ds, {"init": first.key})
    assert second.key != first.key and fresh != exp.run_key(cfg, ds, {"init": "other"})

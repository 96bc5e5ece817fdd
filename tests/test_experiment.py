"""Tests of reidnb.papers.common: the checkpoint key and the cached train-and-evaluate call."""
from __future__ import annotations

import types

import torch

from reidnb.papers import common as exp
from reidnb.core.config import make_config
from reidnb.data.datasets import Record, ReIDDataset
from reidnb.losses import Term, cross_entropy


def _ds(pids):
    return types.SimpleNamespace(train=[Record(f"/d/{i:04d}.jpg", p, 0)
                                        for i, p in enumerate(pids)])


SPEC = {"name": "softmax", "model": "bcloss", "lr": 0.01}


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
    kw = dict(name="softmax", model="bcloss", losses=losses, verbose=False,
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


def _test_split(kind):
    q = [Record(f"/q/{p}_{i}.jpg", p, 0) for p in range(1, 11) for i in range(2)]
    g = [Record(f"/g/{p}_{i}.jpg", p, 1) for p in range(1, 11) for i in range(2)]
    g += [Record(f"/g/d{i}.jpg", 0, 2) for i in range(10)]
    return ReIDDataset(name="toy", root=exp.Path("/toy"), kind=kind, train=[], query=q,
                       gallery=g, num_train_pids=0, num_train_cams=0, multi_query={})


def test_load_data_reduces_only_a_synthetic_test_split(monkeypatch):
    for kind in ("synthetic", "real"):
        monkeypatch.setattr(exp, "load_dataset", lambda *a, **k: _test_split(kind))
        ds = exp.load_data(make_config("02_maskreid", "quick", device="cpu",
                                       max_test_pids=4), verbose=False)
        n_ids = len({r.pid for r in ds.query})
        if kind == "synthetic":   # 4 of 10 ids: 8 queries, their 8 gallery images + d0,d2,..
            assert (n_ids, len(ds.query), len(ds.gallery)) == (4, 8, 8 + 5)
            assert "test subset: 4 of 10" in ds.notes[-1]
        else:                     # a real protocol stays standard
            assert (n_ids, len(ds.query), len(ds.gallery)) == (10, 20, 30)

"""reidnb.papers.common: the training key, one cached train-and-evaluate call, the run
store on a re-run (nothing trained, no features extracted), load_run and load_data."""
from __future__ import annotations

import types
from pathlib import Path

import torch
from torch import nn

from reidnb.core.config import RunConfig
from reidnb.core.stages import Stage
from reidnb.data.datasets import Record, ReIDDataset
from reidnb.losses import Term, cross_entropy
from reidnb.models import register_model
from reidnb.papers import common


@register_model("test_tiny_gap")
class TinyGap(nn.Module):
    """A 2-conv network honouring the model contract (dict in training, [N, D] in eval)."""

    def __init__(self, num_classes: int, backbone: str = "", pretrained=False):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
                                  nn.Conv2d(8, 16, 3, stride=2, padding=1))
        self.classifier = nn.Linear(16, num_classes)

    def forward(self, x, return_featuremaps=False):
        f = self.conv(x)
        if return_featuremaps:
            return f
        emb = f.mean((2, 3))
        if not self.training:
            return emb
        return {"logits": self.classifier(emb), "embeddings": emb, "featuremaps": f}


def _cfg(**kw):
    return RunConfig.make("smoke", notebook="99_common", device="cpu", **kw)


def _ds(pids):
    return types.SimpleNamespace(train=[Record(f"/d/{i:04d}.jpg", p, 0)
                                        for i, p in enumerate(pids)])


SPEC = {"name": "softmax", "model": "test_tiny_gap", "stage": {"lr": 0.01}}


def test_training_key_ignores_sweep_and_eval_settings():
    a = _cfg(output_dir="/tmp/x")
    b = _cfg(output_dir="/tmp/y", eval_flip=True, workers=3, max_test_pids=5)
    ds = _ds([0, 0, 1, 1])
    assert common.training_key(a, ds, SPEC) == common.training_key(b, ds, SPEC)
    key = common.training_key(a, ds, SPEC)
    assert len(key) == 10 and int(key, 16) >= 0


def test_training_key_changes_with_what_training_sees():
    cfg = _cfg()
    ds = _ds([0, 0, 1, 1])
    key = common.training_key(cfg, ds, SPEC)
    assert common.training_key(cfg, _ds([0, 0, 1]), SPEC) != key            # train subset
    assert common.training_key(cfg, _ds([0, 1, 1, 1]), SPEC) != key         # relabelled pids
    assert common.training_key(_cfg(seed=1), ds, SPEC) != key
    assert common.training_key(_cfg(height=32), ds, SPEC) != key
    assert common.training_key(cfg, ds, {**SPEC, "stage": {"lr": 0.02}}) != key
    assert common.training_key(cfg, ds, {**SPEC, "init": "abc"}) != key


def test_train_and_evaluate_then_the_run_store(tmp_path):
    torch.manual_seed(0)
    cfg = _cfg(output_dir=str(tmp_path), max_iters=2)
    ds = common.load_data(cfg, verbose=False)
    stage = Stage.from_epochs("stage 1", 1, len(ds.train), cfg.batch_size, 0.01)
    losses = {"ce": (1.0, Term(cross_entropy, key="logits"))}
    kw = dict(name="softmax", model="test_tiny_gap", losses=losses, stage=stage,
              verbose=False)
    first = common.train_and_evaluate(cfg, ds, **kw)
    assert len(first.history) == 2 and first.source == "trained" and not first.eval_cached
    folder = tmp_path / "checkpoints" / "99_common" / f"softmax-{first.key}"
    assert first.folder == folder
    names = {p.name for p in folder.iterdir()}
    assert {"last.pt", "history.csv", "timing.json", "finished.json", "spec.json"} <= names
    assert len([n for n in names if n.startswith("eval-") and n.endswith(".npz")]) == 1

    # a re-run (another output-irrelevant setting): loaded, not trained, not re-extracted
    cfg2 = _cfg(output_dir=str(tmp_path), max_iters=2, workers=1)
    calls = []
    real = common.evaluate
    common.evaluate = lambda *a, **k: calls.append(1) or real(*a, **k)
    try:
        again = common.train_and_evaluate(cfg2, ds, **kw)
    finally:
        common.evaluate = real
    assert again.key == first.key and again.source == "cache" and again.eval_cached
    assert calls == []                                  # no feature extraction
    assert again.train_seconds == first.train_seconds   # the first run's time, reported again
    assert again.metrics() == first.metrics()
    for p, q in zip(first.model.parameters(), again.model.parameters()):
        assert torch.equal(p, q)

    # another evaluation setting of the same finished run: evaluated now, stored beside
    third = common.train_and_evaluate(cfg2, ds, **{**kw, "rerank": True})
    assert third.source == "cache" and not third.eval_cached
    assert "single-query+re-rank" in third.result.results

    # a stage 2 from it carries its key
    second = common.train_and_evaluate(cfg, ds, **{**kw, "name": "stage2"}, init=first,
                                       evaluate_model=False)
    assert second.key != first.key and second.result is None

    loaded = common.load_run(folder)
    assert loaded.key == first.key and len(loaded.history) == 2
    assert loaded.metrics()["rank1"] == first.metrics()["rank1"]
    for p, q in zip(first.model.parameters(), loaded.model.parameters()):
        assert torch.equal(p, q)


def _test_split(kind):
    q = [Record(f"/q/{p}_{i}.jpg", p, 0) for p in range(1, 11) for i in range(2)]
    g = [Record(f"/g/{p}_{i}.jpg", p, 1) for p in range(1, 11) for i in range(2)]
    g += [Record(f"/g/d{i}.jpg", 0, 2) for i in range(10)]
    return ReIDDataset(name="toy", root=Path("/toy"), kind=kind, train=[], query=q,
                       gallery=g, num_train_pids=0, num_train_cams=0, multi_query={})


def test_load_data_reduces_only_a_synthetic_test_split(monkeypatch):
    for kind in ("synthetic", "real"):
        monkeypatch.setattr(common, "load_dataset", lambda *a, **k: _test_split(kind))
        ds = common.load_data(RunConfig.make("quick", device="cpu", max_test_pids=4),
                              verbose=False)
        n_ids = len({r.pid for r in ds.query})
        if kind == "synthetic":   # 4 of 10 ids: 8 queries, their 8 gallery images + d0,d2,..
            assert (n_ids, len(ds.query), len(ds.gallery)) == (4, 8, 8 + 5)
            assert "test subset: 4 of 10" in ds.notes[-1]
        else:                     # a real protocol stays standard
            assert (n_ids, len(ds.query), len(ds.gallery)) == (10, 20, 30)


def _train_in_child(output_dir, out_queue):
    """Child process: the same run as the parent's sibling; reports how it got it."""
    cfg = _cfg(output_dir=output_dir, max_iters=3)
    ds = common.load_data(cfg, verbose=False)
    stage = Stage.from_epochs("stage 1", 1, len(ds.train), cfg.batch_size, 0.01)
    run = common.train_and_evaluate(cfg, ds, name="race", model="test_tiny_gap",
                                    losses={"ce": (1.0, Term(cross_entropy, key="logits"))},
                                    stage=stage, verbose=False)
    out_queue.put((run.source, run.metrics()["mAP"]))


def test_two_processes_training_the_same_run_train_it_once(tmp_path):
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_train_in_child, args=(str(tmp_path), q)) for _ in range(2)]
    for p in procs:
        p.start()
    got = sorted(q.get(timeout=600) for _ in procs)
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    assert [g[0] for g in got] == ["cache", "trained"]      # one trained, one waited and loaded
    assert got[0][1] == got[1][1]                            # the same finished run
    folder = next((tmp_path / "checkpoints" / "99_common").iterdir())
    from reidnb.core.runs import RunDir
    rd = RunDir(folder.parent, "race", folder.name.rsplit("-", 1)[1])
    assert rd.state() == "finished" and rd.verify() == []


def test_seeds_give_a_seed_group_with_mean_metrics_and_paired_stage2(tmp_path):
    """seeds=2: two runs (cfg.seed, cfg.seed + 1), the first under the plain name; the
    group's metrics are their mean, its seconds their sum; a stage 2 from the group pairs
    seed i with stage-1 seed i."""
    import pytest

    from reidnb.core import intervals
    from reidnb.core.runs import SeedGroup

    cfg = _cfg(output_dir=str(tmp_path), max_iters=2)
    ds = common.load_data(cfg, verbose=False)
    stage = Stage.from_epochs("stage 1", 1, len(ds.train), cfg.batch_size, 0.01)
    losses = {"ce": (1.0, Term(cross_entropy, key="logits"))}
    group = common.train_and_evaluate(cfg, ds, name="g", model="test_tiny_gap", losses=losses,
                                      stage=stage, verbose=False, seeds=2)
    assert isinstance(group, SeedGroup) and len(group.runs) == 2
    a, b = group.runs
    assert a.name == "g" and b.name == "g-seed1" and a.key != b.key
    assert not all(torch.equal(p, q) for p, q in zip(a.model.parameters(),
                                                     b.model.parameters()))
    ma, mb = a.metrics(), b.metrics()
    assert group.metrics() == pytest.approx({k: (ma[k] + mb[k]) / 2 for k in ma})
    assert group.seconds == pytest.approx(a.seconds + b.seconds)
    assert group.model is a.model and group.history is a.history     # the first seed's
    assert intervals.query_data_of(group).seeds == 2
    # seed 0 of a group is the run seeds=1 gives (same key: loaded from the store)
    assert common.train_and_evaluate(cfg, ds, name="g", model="test_tiny_gap", losses=losses,
                                     stage=stage, verbose=False).key == a.key
    s2 = common.train_and_evaluate(cfg, ds, name="s2", model="test_tiny_gap", losses=losses,
                                   stage=stage, init=group, verbose=False)
    assert isinstance(s2, SeedGroup) and [r.name for r in s2.runs] == ["s2", "s2-seed1"]
    specs = [__import__("json").loads((r.folder / "spec.json").read_text()) for r in s2.runs]
    assert [s["init"] for s in specs] == [a.key, b.key]       # stage 2 seed i from seed i
    with pytest.raises(ValueError, match="seeds must be >= 1"):
        common.train_and_evaluate(cfg, ds, name="x", model="test_tiny_gap", losses=losses,
                                  stage=stage, seeds=0)

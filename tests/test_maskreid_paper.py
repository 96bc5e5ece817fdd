"""Tests of reidnb.papers.maskreid (notebook 02_maskreid): config, recipe, stages, tables.

Loss wiring is checked on a 3-sample batch worked by hand (recipes.md §1.2): x0 = (1, 0)
and x1 = (0.6, 0.8) share an identity, x2 = (0, 1) is another one, so S01 = 0.6,
S02 = 0, S12 = 0.8; anchors 0 and 1 have a positive and a negative, anchor 2 none.
The small-scale loaders are tested in tests/test_small_sets.py, their masks in
tests/test_parts.py.
"""
from __future__ import annotations

import os

import dataclasses
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from reidnb.core.compare import compare
from reidnb.core.results import is_published
from reidnb.core.runs import Run
from reidnb.core.stages import lr_factor
from reidnb.data.datasets import Record, ReIDDataset
from reidnb.evaluation import RankResult
from reidnb.evaluation.retrieval import pair_distances
from reidnb.papers import maskreid as mr
from reidnb.papers.maskreid import experiments as ex


torch.set_num_threads(1)

X = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
Y = torch.tensor([0, 0, 1])


def _value(terms, scale: float = 3.0) -> float:
    (name, (weight, term)), = terms.items()
    assert weight == 1.0
    out = {"embeddings": X * scale, "logits": torch.zeros(3, 2)}
    return float(term(out, {"pid": Y}))


# ----------------------------------------------------------------------------- losses
def test_ranking_terms_follow_each_paper_version():
    # 003 Eq. 5, alpha 0.15, lambda 2: anchor 0: log(1 + exp(max(0, -0.45))) + (0.6-1)^2
    # = log 2 + 0.16; anchor 1: log(1 + exp(0.35)) + 0.16.
    eccv = (math.log(2) + 0.16 + math.log1p(math.exp(0.35)) + 0.16) / 2
    assert _value(mr.loss_terms("ranking", "maskreid")) == pytest.approx(eccv, abs=1e-5)
    # 000 Eq. 3, alpha 0.2, lambda 1: anchor 0: exp(-0.4) < 1 -> 0, + 0.16 / 2;
    # anchor 1: log(1 + exp(0.4)) + 0.08.
    icme = (0.08 + math.log1p(math.exp(0.4)) + 0.08) / 2
    assert _value(mr.loss_terms("ranking", "maskreid_icme")) == pytest.approx(icme, abs=1e-5)
    # overrides: lambda 0, alpha 0.5 with the ICME form: anchor 0 exp(-0.1) < 1 -> 0;
    # anchor 1 log(1 + exp(0.7)).
    grid = math.log1p(math.exp(0.7)) / 2
    assert _value(mr.loss_terms("ranking", "maskreid_icme", lam=0, alpha=0.5)) == \
        pytest.approx(grid, abs=1e-5)


def test_triplet_npair_softmax_terms():
    # triplet on unit vectors (the x3 scale must not matter), margin 0.3:
    # anchor 0: relu(sqrt(0.8) - sqrt(2) + 0.3) = 0; anchor 1: sqrt(0.8) - sqrt(0.4) + 0.3.
    trip = (math.sqrt(0.8) - math.sqrt(0.4) + 0.3) / 2
    assert _value(mr.loss_terms("triplet")) == pytest.approx(trip, abs=1e-5)
    # N-pair: anchor 0 log(1 + exp(0 - 0.6)), anchor 1 log(1 + exp(0.8 - 0.6)).
    npair = (math.log1p(math.exp(-0.6)) + math.log1p(math.exp(0.2))) / 2
    assert _value(mr.loss_terms("npair")) == pytest.approx(npair, abs=1e-5)
    # softmax on zero logits over 2 classes: log 2.
    assert _value(mr.loss_terms("softmax")) == pytest.approx(math.log(2), abs=1e-6)


def test_loss_terms_reject_bad_input():
    with pytest.raises(ValueError, match="unknown MaskReID loss"):
        mr.loss_terms("contrastive")
    with pytest.raises(ValueError, match="paper version"):
        mr.loss_terms("ranking", "maskreid_v3")
    with pytest.raises(ValueError, match="alpha"):
        mr.loss_terms("ranking", alpha=-0.1)


def test_mask_input():
    img, mask = torch.zeros(2, 3, 4, 2), torch.ones(2, 1, 4, 2)
    out = mr.mask_input({"img": img, "mask": mask, "pid": torch.zeros(2)})
    assert out["x"] is img and out["mask"] is mask
    with pytest.raises(KeyError, match="load_mask=True"):
        mr.mask_input({"img": img})


# ----------------------------------------------------------------------------- schedule
def test_stage_schedule_paper_and_smoke():
    cfg = mr.Config.make("paper", device="cpu")
    s2 = mr.stage2(cfg, 12936)                     # Market-1501 train, batch 64
    assert (s2.iters, s2.iters_per_epoch, s2.epochs, s2.lr) == (20000, 202, 100, 0.01)
    s1 = mr.stage1(cfg, 12936)
    assert (s1.iters, s1.lr) == (55000, 0.1)
    assert s2.iter_cap == 20000 and s2.batch_size == 64       # ends inside epoch 100
    assert (s1.sampler, s2.sampler, s2.num_pos) == ("random", "anchor", 10)
    assert s1.milestones == s2.milestones == () and s1.warmup_epochs == 0
    # DGD's Caffe solver: poly, power 0.5, in both stages (to 0 at the stage's last step)
    assert (s1.lr_policy, s1.lr_power, s2.lr_policy, s2.lr_power) == ("poly", 0.5, "poly", 0.5)
    kw = s1.scheduler_kw()
    assert (kw["policy"], kw["max_iters"]) == ("poly", 55000)
    assert 0.1 * lr_factor(41250, **kw) == pytest.approx(0.05)   # (1 - 41250/55000)^0.5 = .5
    assert (s1.flip_p, s1.pad, s2.pad) == (0.5, 8, 8)       # DGD mirror + 144x56 crop range
    smoke = mr.Config.make("smoke", device="cpu")
    s = mr.stage2(smoke, 84)
    assert (s.iters, s.epochs) == (4, 1)
    for profile in ("smoke", "quick"):             # constant lr and pad 10: as measured
        q = mr.stage1(mr.Config.make(profile, device="cpu"), 12936)
        assert (q.lr_policy, q.pad) == ("step", 10) and q.milestones == ()
        assert "lr_policy" not in q.key() and "pad" not in q.key()   # run keys unchanged
    with pytest.raises(ValueError, match="lr_policy"):
        mr.stage1(dataclasses.replace(cfg, lr_policy="cosine"), 12936)
    with pytest.raises(ValueError, match="no batch"):
        mr.stage1(cfg, 10)
    with pytest.raises(ValueError, match="iters must be"):
        mr.stage1(dataclasses.replace(cfg, stage1_iters=0), 1000)


def test_describe_recipe_paper_and_quick():
    paper = mr.describe_recipe(mr.Config.make("paper", device="cpu"), 12936)
    assert paper[0] == ("augmentation (train loader): horizontal flip p=0.5; zero-pad 8 px + "
                        "random crop back to the input size; no random erasing")
    assert paper[1] == "lr policy (both stages): Caffe poly, power 0.5"
    assert "poly lr (power 0.5) to 0 at iteration 55000" in paper[2]
    quick = mr.describe_recipe(mr.Config.make("quick", device="cpu"))
    assert "zero-pad 10 px" in quick[0] and "[paper: zero-pad 8 px" in quick[0]
    assert quick[1] == "lr policy (both stages): constant [paper: poly, power 0.5 (DGD solver)]"
    assert len(quick) == 2


def test_grid_cells():
    paper = mr.Config.make("paper", device="cpu")
    cells = mr.grid_cells(paper)
    assert len(cells) == 25 + 10
    assert ("maskreid_icme", 1.0, 0.2) in cells and ("maskreid", 2.0, 0.15) in cells
    assert not [c for c in cells if c[0] == "maskreid" and c[2] == 0.2]
    quick = mr.Config.make("quick", device="cpu")
    assert mr.grid_cells(quick) == [("maskreid_icme", 0.0, 0.2), ("maskreid_icme", 1.0, 0.2)]


def test_stage_wiring(monkeypatch):
    """Stage 1: softmax, random batches, lr 0.1; stage 2: anchor batches, lr 0.01, init."""
    import reidnb.papers.common as exp

    calls = []
    monkeypatch.setattr(exp, "train_and_evaluate", lambda cfg, ds, **kw: calls.append((cfg, kw))
                        or SimpleNamespace(model=SimpleNamespace(num_classes=ds.num_train_pids,
                                                                 use_mask=True, fusion=True)))
    cfg = mr.Config.make("paper", device="cpu")
    ds = SimpleNamespace(train=[None] * 640, num_train_pids=7)
    s1 = mr.train_stage1(cfg, ds, arch="MaskReID-M")
    mr.train_stage2(cfg, ds, s1, loss="ranking", version="maskreid", rerank=True)
    (c1, k1), (c2, k2) = calls
    assert (k1["stage"].sampler, k1["stage"].lr, k1["name"]) == ("random", 0.1, "stage1-MaskReID-M")
    assert k1["model_kw"] == {"backbone": "dgd", "pretrained": False, "use_mask": True,
                              "fusion": False}
    assert list(k1["losses"]) == ["softmax"] and k1["stage"].iters == 55000
    assert k1["stage"].epochs == math.ceil(55000 / 10) and k1["input_fn"] is mr.mask_input
    assert (k2["stage"].sampler, k2["stage"].lr, k2["stage"].num_pos, k2["init"]) == \
        ("anchor", 0.01, 10, s1)
    assert k2["name"] == "stage2-ranking-eccv-lam2-alpha0.15" and k2["stage"].iters == 20000
    assert k2["load_mask"] and k2["rerank"] and list(k2["losses"]) == ["rank"]
    assert c1 is cfg and c2 is cfg


def test_transfer_init_replaces_only_the_classifier():
    from reidnb.models import build_model

    src = build_model("maskreid", 5, backbone="resnet18", pretrained=False)
    assert mr.transfer_init(src, 5) is src
    net = mr.transfer_init(SimpleNamespace(model=src), 9)
    assert net.classifier.out_features == 9
    a, b = src.state_dict(), net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a if not k.startswith("classifier."))
    with pytest.raises(ValueError, match="MaskReID network"):
        mr.transfer_init(torch.nn.Linear(2, 2), 3)


# ----------------------------------------------------------------------------- tables
def _run(name, settings, seconds=10.0):
    res = {s: RankResult(np.full(50, r1 / 100), mAP / 100, 0.0)
           for s, (r1, mAP) in settings.items()}
    return Run(name=name, model=None, history=pd.DataFrame(), result=SimpleNamespace(results=res),
               train_seconds=seconds, eval_seconds=1.0, epochs=2)


FULL = {"single-query": (60.0, 40.0), "multi-query": (70.0, 50.0),
        "single-query+re-rank": (65.0, 55.0), "multi-query+re-rank": (72.0, 60.0)}


def test_rows_market_match_published_rows():
    cfg = mr.Config.make("smoke", device="cpu")        # synthetic -> Market-1501
    losses = {k: _run(k, FULL) for k in ("softmax", "triplet", "npair", "ranking")}
    ranking = {("maskreid_icme", 1.0, 0.2): losses["ranking"],
               ("maskreid_icme", 0.0, 1.0): _run("g", {"single-query": (50.0, 30.0)}),
               ("maskreid", 2.0, 0.15): _run("e", FULL)}
    rows = mr.results_rows(cfg, losses=losses, ranking=ranking,
                            ablation={"DGD": _run("d", {"single-query": (40.0, 20.0)})},
                            stage1_seconds=100.0, note="quick")
    df = pd.DataFrame(rows)
    count = df.groupby(["paper_id", "table"]).size().to_dict()
    assert count == {("maskreid_icme", "Table 2"): 8, ("maskreid_icme", "Table 4"): 2,
                     ("maskreid_icme", "Table 5"): 16, ("maskreid_icme", "Table 6"): 4,
                     ("maskreid", "Table 2"): 16, ("maskreid", "Table 4"): 2}
    assert (df["dataset"] == "Market-1501").all() and (df["dataset_kind"] == "synthetic").all()
    assert set(df.loc[df["table"] == "Table 6", "variant"]) == {"lambda=1,alpha=0.2",
                                                                "lambda=0,alpha=1.0"}
    rr = df[(df["method"] == "MaskReID_rank+re-ranking") & (df["protocol"] == "multi-query")]
    assert rr.set_index("metric")["value"].to_dict() == {"rank1": 72.0, "mAP": 60.0}
    assert df.loc[df["method"] == "Softmax loss", "seconds"].iloc[0] == 111.0
    for paper_id, table in count:
        cmp = compare(df.assign(notebook="02_maskreid"), paper_id, table)
        unmatched = cmp[cmp["status"] == "no published value"]
        assert unmatched.empty == (table != "Table 4" or paper_id != "maskreid_icme"), \
            (paper_id, table, unmatched)


def test_rows_duke_and_small_sets():
    cfg = mr.Config.make("quick", device="cpu", dataset="dukemtmcreid")
    sq = {"single-query": (60.0, 40.0), "single-query+re-rank": (65.0, 55.0)}
    rows = mr.results_rows(cfg, losses={"softmax": _run("s", sq)},
                            ranking={("maskreid_icme", 1.0, 0.2): _run("r", sq)})
    df = pd.DataFrame(rows)
    t3 = df[(df["paper_id"] == "maskreid_icme") & (df["table"] == "Table 3")]
    assert set(t3["method"]) == {"MaskReID", "MaskReID_re-ranking"}
    assert (t3["protocol"] == "").all() and (df["dataset"] == "DukeMTMC-reID").all()
    assert compare(df.assign(notebook="x"), "maskreid", "Table 3").query(
        "method == 'MaskReID_soft' and metric == 'rank1'")["measured"].tolist() == [60.0]
    # small sets: Table 1 of both versions and Table 4, real data
    res = SimpleNamespace(results={"single-query": RankResult(np.full(50, 0.5), 0.4, 0.0)})
    rows = mr.results_rows(cfg, small_sets={"viper": {"MaskReID": res, "MaskReID-M": res}})
    df = pd.DataFrame(rows)
    assert set(zip(df["paper_id"], df["table"], df["method"])) == {
        ("maskreid_icme", "Table 4", "MaskReID"), ("maskreid_icme", "Table 1", "MaskReID"),
        ("maskreid", "Table 1", "MaskReID-MF"), ("maskreid_icme", "Table 4", "MaskReID-M"),
        ("maskreid", "Table 1", "MaskReID-M")}
    assert (df["value"] == 50.0).all() and (df["dataset"] == "VIPeR").all()
    assert (df["dataset_kind"] == "real").all()
    for pid, table in (("maskreid_icme", "Table 1"), ("maskreid", "Table 1")):
        cmp = compare(df.assign(notebook="x"), pid, table)
        assert (cmp["status"] != "no published value").all()


def test_tables_and_published_grid():
    runs = {("maskreid_icme", 0.0, 0.1): _run("a", {"single-query": (10.0, 5.0)}),
            ("maskreid_icme", 1.0, 0.1): _run("b", {"single-query": (20.0, 6.0)}),
            ("maskreid_icme", 1.0, 0.2): _run("c", {"single-query": (30.0, 7.0)}),
            ("maskreid", 2.0, 0.15): _run("d", {"single-query": (40.0, 8.0)})}
    g = mr.grid_table(runs, "maskreid_icme")
    assert g.loc[1.0, 0.2] == 30.0 and g.loc[1.0, 0.1] == 20.0 and np.isnan(g.loc[0.0, 0.2])
    assert mr.grid_table(runs, "maskreid", "mAP").loc[2.0, 0.15] == 8.0
    pub = mr.published_grid("maskreid_icme")
    assert pub.shape == (5, 5) and pub.loc[1.0, 0.2] == 90.44
    assert mr.published_grid("maskreid", "mAP").loc[2.0, 0.15] == 75.30
    lt = mr.loss_table({"x": _run("x", FULL, seconds=120.0)})
    assert lt.loc["x", "multi-query+re-rank mAP"] == 60.0 and lt.loc["x", "train_min"] == 2.0
    ab = mr.ablation_table({"DGD": _run("d", {"single-query": (40.0, 20.0)})})
    assert not ab.loc["DGD", "masked input"] and ab.loc["DGD", "rank1"] == 40.0


def test_pair_distances():
    res = SimpleNamespace(distmat=np.array([[0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8]]),
                          q_pids=np.array([1, 2]), q_camids=np.array([0, 0]),
                          g_pids=np.array([1, 1, 0, -1]), g_camids=np.array([0, 1, 1, 1]))
    pos, neg = pair_distances(res)
    # query 1: g0 same id+cam (left out), g1 match, g2 distractor, g3 junk (left out)
    # query 2: g0, g1, g2 different ids, g3 junk
    np.testing.assert_allclose(pos, [0.2])
    np.testing.assert_allclose(neg, [0.3, 0.5, 0.6, 0.7])


# ----------------------------------------------------------------------------- plan
def test_plan_per_profile_and_dataset():
    paper = mr.make_plan(mr.Config.make("paper", device="cpu"))
    assert paper.reductions == () and paper.losses == mr.LOSSES and len(paper.grid) == 35
    assert paper.ablation == ("DGD", "MaskReID-F", "MaskReID-M") and paper.multi_query
    syn = mr.make_plan(mr.Config.make("quick", device="cpu"))
    assert syn.losses == mr.LOSSES and not syn.multi_query and syn.max_train_pids is None
    assert any("grid" in r for r in syn.reductions)
    assert "profile quick: no multi-query evaluation" in syn.reductions
    real = mr.make_plan(mr.Config.make("quick", device="cpu", dataset="market1501"))
    assert real.losses == ("softmax", "ranking") and real.versions == ("maskreid_icme",)
    assert (real.grid, real.ablation, real.multi_query, real.max_train_pids) == ((), (), False, 300)
    assert sum("real data" in r for r in real.reductions) == 3
    assert not any("of 35 cells" in r or "of 3 variants" in r for r in real.reductions)
    assert "no maskreid ranking run" in real.reductions
    assert sum("multi-query" in r for r in real.reductions) == 1
    assert any("loss comparison: ['softmax', 'ranking']" in r for r in real.reductions)
    # an explicit max_train_pids wins over the profile's reduction
    own = mr.make_plan(mr.Config.make("quick", device="cpu", dataset="market1501",
                                   max_train_pids=50))
    assert own.max_train_pids == 50


def _set(name, n_train, n_test):
    rec = [Record(f"/x/{name}/{i}.png", i % 3, i % 2) for i in range(n_train)]
    test = [Record(f"/x/{name}/t{i}.png", 100 + i, 0) for i in range(n_test)]
    return ReIDDataset(name=name, root=Path("/x") / name, kind="real", train=rec, query=test,
                       gallery=test, num_train_pids=3, num_train_cams=2)


def test_small_scale_runs_wiring(monkeypatch):
    trained, evaluated = [], []
    monkeypatch.setattr(ex, "train_stage1", lambda cfg, ds, arch, **kw: trained.append(
        (ds.name, arch, kw["evaluate_model"])) or SimpleNamespace(arch=arch))
    monkeypatch.setattr(ex, "evaluate_run", lambda cfg, run, ds, protocol: evaluated.append(
        (ds.name, run.arch, protocol)) or protocol)
    sets = {"viper": _set("viper", 6, 3), "cuhk03": _set("cuhk03", 4, 2),
            "shinpuhkan": _set("shinpuhkan", 2, 0)}
    joint, runs, res = mr.small_scale_runs(None, sets, ("MaskReID", "DGD"))
    assert trained == [(joint.name, "MaskReID", False), (joint.name, "DGD", False)]
    assert res == {"viper": {"MaskReID": "market1501", "DGD": "market1501"},
                   "cuhk03": {"MaskReID": "cuhk03", "DGD": "cuhk03"}}     # no shinpuhkan test
    # without small sets under data_root nothing is trained
    cfg = mr.Config.make("quick", device="cpu", data_root="/nonexistent")
    assert mr.run_small_scale(cfg, None, {}, ("MaskReID",), verbose=False) == (None, {}, {})
    assert not trained[2:]


# ----------------------------------------------------------------------------- config
#: The resolved options of each profile before the paper package existed (the notebook's
#: numbers depend on them): literal values of the old 02_maskreid profiles.
OLD_OPTIONS = {
    "smoke": dict(ablation=("DGD",), backbone="resnet18", batch_size=16, epochs=1,
                  eval_flip=False, grid_alphas={"maskreid_icme": (0.2,)}, grid_lambdas=(1.0,),
                  grid_versions=("maskreid_icme",), height=32, losses=("softmax", "ranking"),
                  max_iters=4, max_test_pids=None, max_train_pids=None, multi_query=True,
                  num_pos=3, parser_epochs=1, pretrained=False, rerank=True, small_sets=False,
                  stage1_iters=4, stage1_lr=0.1, stage2_iters=4, stage2_lr=0.01,
                  synthetic_size="smoke", triplet_margin=0.3, width=16, workers=0),
    "quick": dict(ablation=("DGD",), backbone="resnet18", batch_size=32, epochs=6,
                  eval_flip=False, grid_alphas={"maskreid_icme": (0.2,)},
                  grid_lambdas=(0.0, 1.0), grid_versions=("maskreid_icme",), height=64,
                  max_iters=None, max_test_pids=150, max_train_pids=None, multi_query=False,
                  num_pos=5, parser_epochs=2, pretrained="auto",
                  real_reduction={"ablation": (), "grid": False,
                                  "losses": ("softmax", "ranking"), "max_train_pids": 300,
                                  "multi_query": False, "versions": ("maskreid_icme",)},
                  rerank=True, small_sets=True, stage1_iters=100, stage1_lr=0.01,
                  stage2_iters=35, stage2_lr=0.001, synthetic_size="quick", seeds=2,
                  versions=("maskreid_icme",),
                  triplet_margin=0.3, width=32, workers=2),
    "paper": dict(ablation=("DGD", "MaskReID-F", "MaskReID-M"), backbone="dgd", batch_size=64,
                  epochs=None, eval_flip=False,
                  grid_alphas={"maskreid": (0.1, 0.15),
                               "maskreid_icme": (0.1, 0.15, 0.2, 0.5, 1.0)},
                  grid_lambdas=(0.0, 1.0, 2.0, 5.0, 10.0),
                  grid_versions=("maskreid_icme", "maskreid"), height=144, max_iters=None,
                  max_test_pids=None, max_train_pids=None, multi_query=True, num_pos=10,
                  parser_epochs=2, pretrained=False, rerank=True, small_sets=True,
                  stage1_iters=55000, stage1_lr=0.1, stage2_iters=20000, stage2_lr=0.01,
                  synthetic_size="quick", triplet_margin=0.3, width=56, workers=min(8, len(os.sched_getaffinity(0)))),
}
OLD_TOP = {"smoke": "synthetic", "quick": "synthetic", "paper": "market1501"}


@pytest.mark.parametrize("profile", ["smoke", "quick", "paper"])
def test_config_profiles_equal_the_old_ones(profile):
    d = mr.Config.make(profile, device="cpu", output_dir="/tmp/o").to_dict()
    assert d["dataset"] == OLD_TOP[profile] and d["notebook"] == "02_maskreid"
    for key, want in OLD_OPTIONS[profile].items():
        if key == "workers":                       # clamped to the usable CPUs (RunConfig)
            assert d["options"][key] <= want
            continue
        assert d["options"][key] == want, key
    # the losses / versions never set by a profile default to all of them (quick: one
    # version within its budget)
    assert d["options"]["versions"] == (("maskreid_icme",) if profile == "quick"
                                        else ("maskreid_icme", "maskreid"))
    if profile != "smoke":
        assert d["options"]["losses"] == mr.LOSSES


def test_config_deviations_and_parameters():
    assert mr.Config.make("paper", device="cpu").deviations() == []
    quick = {d.name: d for d in mr.Config.make("quick", device="cpu").deviations()}
    assert quick["stage1_lr"].paper == 0.1 and "130 iterations" in quick["stage1_lr"].reason
    assert all(d.reason for d in quick.values()), [n for n, d in quick.items() if not d.reason]
    cfg = mr.Config.make("quick", device="cpu", stage1_iters=7, multi_query=True)
    assert (cfg.stage1_iters, cfg.multi_query) == (7, True)
    with pytest.raises(ValueError, match="unknown setting"):
        mr.Config.make("quick", device="cpu", stage3_iters=1)


# ----------------------------------------------------------------------------- published
def test_published_cells_are_the_papers():
    assert set(mr.PUBLISHED) == set(mr.VARIANTS)
    assert len([k for k in mr.VARIANTS if k.startswith("ranking-")]) == 25 + 10
    for key, cells in mr.PUBLISHED.items():
        v = mr.VARIANTS[key]
        mr.loss_terms(v.loss, v.version, lam=v.lam, alpha=v.alpha)      # builds
        for c in cells:
            printed = all(is_published(c.paper_id, c.table, "Market-1501", s, c.method,
                                       c.variant, False) for s in c.settings)
            # the Table 4 proxy (small-scale table, run on the target set) is never printed
            assert printed == (c.table != "Table 4" or c.paper_id == "maskreid"), (key, c)
            if c.rerank_method:
                assert is_published(c.paper_id, c.table, "Market-1501", "single-query",
                                    c.rerank_method, c.variant, True)
    duke = mr.published_for("DukeMTMC-reID")
    assert [c.table for c in duke["ranking-icme-lam1-alpha0.2"]] == ["Table 3", "Table 6"]
    assert [c.table for c in duke["softmax"]] == ["Table 5", "Table 3"]


def test_rows_of_a_grid_cell_the_papers_did_not_print():
    cfg = mr.Config.make("smoke", device="cpu")
    rows = pd.DataFrame(mr.results_rows(cfg, ranking={
        ("maskreid_icme", 3.0, 2.0): _run("x", {"single-query": (50.0, 30.0)}),
        ("maskreid", 0.0, 1.0): _run("y", {"single-query": (40.0, 20.0)})}))
    assert set(zip(rows["table"], rows["variant"])) == {("Table 6", "lambda=3,alpha=2"),
                                                        ("Table 4", "lambda=0,alpha=1")}
    cmp = compare(rows.assign(notebook="x"), "maskreid_icme", "Table 6")
    assert (cmp.loc[cmp["variant"] == "lambda=3,alpha=2", "status"]
            == "no published value").all()

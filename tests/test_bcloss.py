"""reidnb.bcloss: loss dicts of 001's settings, schedule conversion, table choice, rows.

Expected values are worked by hand from 001 Eqs. 3-6 (recipes.md §2.2) on 2-D features.
"""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from reidnb import bcloss
from reidnb.core.config import make_config
from reidnb.core.results import load_published

# Unit vectors a, b (id 0) and c, d (id 1); squared distances:
# ab 0.8, ac 2, ad 4, bc 0.4, bd 3.2, cd 2.
X = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [-1.0, 0.0]])
Y = torch.tensor([0, 0, 1, 1])


def test_softmax_variant_is_cross_entropy_only():
    losses = bcloss.losses_for("softmax", num_classes=2, feat_dim=2)
    assert list(losses) == ["softmax"]
    w, term = losses["softmax"]
    logits = torch.tensor([[0.0, math.log(3.0)], [0.0, 0.0]])
    out = term({"logits": logits, "embeddings": X[:2]}, {"pid": torch.tensor([1, 0])})
    # -log(3/4) and -log(1/2), averaged
    assert w == 1.0
    assert out.item() == pytest.approx((-math.log(0.75) - math.log(0.5)) / 2, abs=1e-6)


def test_joint_variant_bc_and_center_terms_by_hand():
    losses = bcloss.losses_for("joint", num_classes=2, feat_dim=2, tau=1.0, lam=0.7,
                               center_lr=0.5)
    assert list(losses) == ["softmax", "bc", "center"]
    assert losses["bc"][0] == 0.7 and losses["center"][0] == 0.7
    outputs = {"logits": torch.zeros(4, 2), "embeddings": 3.0 * X}  # not normalised
    batch = {"pid": Y}
    # L_b per anchor 1/2 (pull + max(0, 1 - hardest neg)): a .4, b .7, c 1.3, d 1.0
    assert losses["bc"][1](outputs, batch).item() == pytest.approx(0.85, abs=1e-6)
    center = losses["center"][1]
    center.train()
    # zero centres: 1/2 ||x_i||^2 = 1/2 for unit vectors (normalised before the loss)
    assert center(outputs, batch).item() == pytest.approx(0.5, abs=1e-6)
    # c_0 <- 0 - 0.5 * ((0 - a) + (0 - b)) / (1 + 2) = 0.5 * (1.6, 0.8) / 3
    expected = torch.tensor([[0.8 / 3, 0.4 / 3], [-0.5 / 3, 0.5 / 3]])
    assert torch.allclose(center.fn.centers, expected, atol=1e-6)


def test_joint_margin_changes_only_the_push_term():
    outputs, batch = {"logits": torch.zeros(4, 2), "embeddings": X}, {"pid": Y}
    lb = bcloss.losses_for("joint", 2, 2, tau=1.5)["bc"][1](outputs, batch).item()
    # push: a max(0,1.5-2)=0, b 1.1, c 1.1, d 0 -> (0.8 + 1.9 + 3.1 + 2) / 2 / 4
    assert lb == pytest.approx((0.8 + 1.9 + 3.1 + 2.0) / 8, abs=1e-6)


def test_losses_for_fresh_centres_and_errors():
    a = bcloss.losses_for("joint", 3, 4)["center"][1].fn
    b = bcloss.losses_for("joint", 3, 4)["center"][1].fn
    assert a is not b and a.centers.abs().sum() == 0
    with pytest.raises(ValueError, match="unknown 01_bcloss variant"):
        bcloss.losses_for("triplet", 3, 4)
    with pytest.raises(ValueError, match="tau"):
        bcloss.losses_for("joint", 3, 4, tau=-1.0)
    with pytest.raises(ValueError, match="num_classes"):
        bcloss.losses_for("joint", 0, 4)


def test_published_variant_strings_exist_in_the_csv():
    pub = load_published("bcloss", "Table 1")
    for v in bcloss.VARIANTS:
        method, text, extra = bcloss.published_variant(v)
        assert not extra
        assert ((pub["method"] == method) & (pub["variant"] == text)).sum() == 4
    method, text, extra = bcloss.published_variant("joint", lam=0.5)
    assert extra and "lambda=0.5" in text


def _cfg(**kw):
    base = dict(batch_size=16, epochs=None, max_iters=None, lr=0.01, lr_step_iters=None,
                lr_milestones=())
    base.update(kw)
    return SimpleNamespace(options=base, **base)


def test_schedule_paper_iterations_to_epochs():
    s = bcloss.schedule_for(_cfg(max_iters=50000, lr_step_iters=20000), 12936)
    assert s.iters_per_epoch == 808                 # 12936 // 16
    assert s.epochs == 62                           # ceil(50000 / 808)
    assert s.milestones == (25, 50)                 # 20000/808 = 24.75, 40000/808 = 49.5
    assert s.total_iters == 50000
    assert "20000 -> 20200" in s.text


def test_schedule_quick_epochs_and_smoke_cap():
    s = bcloss.schedule_for(_cfg(epochs=6, lr_milestones=(4,), lr=0.05), 2001)
    assert (s.iters_per_epoch, s.epochs, s.milestones, s.total_iters) == (125, 6, (4,), 750)
    assert s.lr == 0.05
    s = bcloss.schedule_for(_cfg(epochs=1, max_iters=4), 200)
    assert (s.epochs, s.total_iters) == (1, 4)
    with pytest.raises(ValueError, match="no batch of 16"):
        bcloss.schedule_for(_cfg(epochs=1), 15)
    with pytest.raises(ValueError, match="neither epochs nor max_iters"):
        bcloss.schedule_for(_cfg(), 100)


def test_table_for_follows_the_dataset_run():
    assert bcloss.table_for(make_config("01_bcloss", "smoke"))[:2] == ("Table 1", "Market-1501")
    duke = make_config("01_bcloss", "smoke", dataset="dukemtmcreid")
    assert bcloss.table_for(duke) == ("Table 2", "DukeMTMC-reID", ("rank1", "mAP"))
    with pytest.raises(ValueError, match="cuhk03np-labeled"):
        bcloss.table_for(make_config("01_bcloss", "smoke", dataset="cuhk03np-labeled"))


class _FakeRun:
    def __init__(self, r1, mAP, seconds=30.0):
        self.r1, self.mAP, self.seconds, self.train_seconds, self.epochs = r1, mAP, seconds, \
            seconds - 5, 3

    def metrics(self, setting="single-query"):
        return {"rank1": self.r1, "rank5": self.r1 + 10, "rank10": self.r1 + 20,
                "mAP": self.mAP, "mINP": self.mAP / 2}


def test_rows_mean_over_runs_synthetic_table1():
    cfg = make_config("01_bcloss", "smoke")
    groups = {"softmax": [_FakeRun(20, 10), _FakeRun(30, 20)], "joint": [_FakeRun(40, 30)]}
    rows = bcloss.bcloss_rows(cfg, groups, note="1 run at smoke",
                              sweep={1.0: groups["joint"], 0.5: [_FakeRun(35, 25)]})
    df = __import__("pandas").DataFrame(rows)
    assert set(df["table"]) == {"Table 1"} and set(df["dataset_kind"]) == {"synthetic"}
    base = df[df["method"] == "Baseline"].set_index("metric")["value"]
    assert base.to_dict() == {"rank1": 25.0, "rank5": 35.0, "rank10": 45.0, "mAP": 15.0}
    assert df[df["method"] == "Baseline"]["seconds"].iloc[0] == 60.0
    sweep = df[df["variant"].str.endswith("tau=0.5")]
    assert len(sweep) == 4 and sweep.set_index("metric")["value"]["rank1"] == 35.0
    assert not df["variant"].str.endswith("tau=1").any()   # default tau = the Ours row
    assert df["note"].str.contains("synthetic stand-in").all()
    assert df["note"].str.contains("1 run at smoke").all()


def test_rows_duke_table2_has_two_metrics():
    cfg = make_config("01_bcloss", "smoke", dataset="dukemtmcreid")
    rows = bcloss.bcloss_rows(cfg, {"joint": [_FakeRun(70, 50)]})
    assert [(r["table"], r["dataset"], r["metric"]) for r in rows] == [
        ("Table 2", "DukeMTMC-reID", "rank1"), ("Table 2", "DukeMTMC-reID", "mAP")]
    assert {r["dataset_kind"] for r in rows} == {"real"}


def test_metrics_table_means_std_minutes():
    t = bcloss.metrics_table({"softmax": [_FakeRun(20, 10, 60), _FakeRun(30, 20, 60)]})
    row = t.iloc[0]
    assert (row["rank1"], row["rank1_std"], row["mAP"], row["runs"]) == (25.0, 5.0, 15.0, 2)
    assert row["total_min"] == 2.0 and row["train_min"] == pytest.approx(110 / 60, abs=0.01)
    with pytest.raises(ValueError, match="no runs"):
        bcloss.mean_metrics([])


def test_chance_level_by_hand():
    # query pid 1 cam 0; gallery: same pid+cam (junk), pid 1 cam 1 (match), pid 2, pid -1
    res = SimpleNamespace(q_pids=np.array([1]), g_pids=np.array([1, 1, 2, -1]),
                          q_camids=np.array([0]), g_camids=np.array([0, 1, 1, 1]))
    c = bcloss.chance_level(res, draws=50)
    assert c["rank1"] == pytest.approx(50.0)        # 1 match among 2 kept images
    # AP is 1 (match first) or 1/2 (second), each with probability 1/2
    assert 60.0 <= c["mAP"] <= 90.0


def test_sweep_schedule_shorter_and_same():
    main = bcloss.schedule_for(_cfg(epochs=6, lr_milestones=(4,)), 2000)
    assert bcloss.sweep_schedule(_cfg(epochs=6, lr_milestones=(4,)), 2000) == main
    short = bcloss.sweep_schedule(_cfg(epochs=6, lr_milestones=(4,), sweep_epochs=3), 2000)
    assert (short.epochs, short.milestones, short.total_iters) == (3, (), 375)
    assert "shortened to 3 epochs" in short.text


def test_recipe_deviations_paper_profile_is_clean():
    paper = make_config("01_bcloss", "paper")
    sched = bcloss.schedule_for(paper, 12936)
    assert bcloss.recipe_deviations(paper, schedule=sched, sweep=sched,
                                    pretrained_loaded=True) == []
    quick = make_config("01_bcloss", "quick", dropout=0.5, runs=2)
    dev = bcloss.recipe_deviations(quick, schedule=bcloss.schedule_for(quick, 2079),
                                   pretrained_loaded=False)
    assert "dropout 0.5 (paper 0.9)" in dev
    assert "2 run(s) per setting (paper: mean of 5)" in dev
    assert "random initialisation (paper: ImageNet weights)" in dev
    assert any(d.startswith("backbone resnet18") for d in dev)


def test_pick_queries_disagreements_first():
    # 3 queries, gallery of 3; a ranks query 0 right, b ranks query 1 right
    g = np.array([1, 2, 3])
    mk = lambda d: SimpleNamespace(q_pids=np.array([1, 2, 3]), g_pids=g,
                                   q_camids=np.zeros(3, int), g_camids=np.ones(3, int),
                                   distmat=np.array(d, dtype=np.float32))
    a = mk([[0, 1, 1], [0, 1, 1], [0, 0.5, 1]])   # correct: q0
    b = mk([[1, 0, 1], [1, 0, 1], [0, 0.5, 1]])   # correct: q1
    two = bcloss.pick_queries(a, b, n=2)             # first disagreement, then a random one
    assert two[0] == 0 and two[1] in (1, 2)
    assert bcloss.pick_queries(a, b, n=3)[:2] == [0, 1] and len(bcloss.pick_queries(a, b, n=3)) == 3
    other = SimpleNamespace(**{**vars(b), "q_pids": np.array([3, 2, 1])})
    with pytest.raises(ValueError, match="different query sets"):
        bcloss.pick_queries(a, other)

"""reidnb.papers.bcloss: loss dicts of 001's settings, the Stage, table choice, rows, config.

Expected values are worked by hand from 001 Eqs. 3-6 (recipes.md §2.2) on 2-D features.
"""
from __future__ import annotations

import os

import dataclasses
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from reidnb.core.results import load_published
from reidnb.papers import bcloss


def make_config(_notebook, profile, **kw):
    """The 01_bcloss config at ``profile`` on the CPU (the notebook's construction)."""
    return bcloss.Config.make(profile, device="cpu", **kw)

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
                               center_lr=0.5, reduction="mean")
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
    lb = bcloss.losses_for("joint", 2, 2, tau=1.5, reduction="mean")["bc"][1](outputs, batch).item()
    # push: a max(0,1.5-2)=0, b 1.1, c 1.1, d 0 -> (0.8 + 1.9 + 3.1 + 2) / 2 / 4
    assert lb == pytest.approx((0.8 + 1.9 + 3.1 + 2.0) / 8, abs=1e-6)


def test_paper_profile_sums_lb_and_lc_over_the_batch():
    # 001 Eqs. 3-4 sum over the m images: the same anchors as above, summed (m = 4)
    losses = bcloss.losses_for("joint", 2, 2, tau=1.0)             # default: the paper's sum
    outputs, batch = {"logits": torch.zeros(4, 2), "embeddings": 3.0 * X}, {"pid": Y}
    assert losses["bc"][1](outputs, batch).item() == pytest.approx(0.4 + 0.7 + 1.3 + 1.0, abs=1e-5)
    assert losses["center"][1](outputs, batch).item() == pytest.approx(4 * 0.5, abs=1e-6)
    # the config decides: paper -> "sum" in both terms, quick/smoke -> "mean" (a deviation)
    paper, quick = bcloss.Config.make("paper"), bcloss.Config.make("quick")
    assert paper.loss_reduction == "sum" and quick.loss_reduction == "mean"
    built = {}

    def fake_train(cfg, dataset, **kw):
        built[cfg.profile] = kw["losses"]
        return "run"

    ds = SimpleNamespace(train=[None] * 64, num_train_pids=2)
    for cfg in (paper, quick):
        bcloss.experiments.train_and_evaluate, orig = fake_train, bcloss.experiments.train_and_evaluate
        try:
            bcloss.train_variant(dataclasses.replace(cfg, backbone="resnet18"), ds, "joint")
        finally:
            bcloss.experiments.train_and_evaluate = orig
    assert built["paper"]["bc"][1].kw["reduction"] == "sum"
    assert built["paper"]["center"][1].fn.reduction == "sum"
    assert "reduction" not in built["quick"]["bc"][1].kw        # mean: the key of old runs
    assert built["quick"]["center"][1].fn.reduction == "mean"
    assert "loss_reduction" in {d.name for d in quick.deviations()}
    with pytest.raises(ValueError, match="reduction"):
        bcloss.losses_for("joint", 2, 2, reduction="max")


def test_describe_recipe_states_the_augmentation_the_loader_gets():
    paper, quick = bcloss.Config.make("paper"), bcloss.Config.make("quick")
    st = bcloss.main_stage(paper, 12936)
    assert (st.flip_p, st.pad) == (0.5, 0)                        # mirror only (recipes §2.5)
    assert bcloss.main_stage(quick, 12936).pad == 10
    assert bcloss.describe_recipe(paper)[:2] == [
        "augmentation (train loader): horizontal flip p=0.5; no pad + crop; no random erasing",
        "L_b and L_c: sum over the batch (001 Eqs. 3-4 as printed)"]
    q = bcloss.describe_recipe(quick, 12936)
    assert "zero-pad 10 px + random crop back to the input size [paper: no pad + crop]" in q[0]
    assert q[1] == "L_b and L_c: mean over the batch [paper: sum, Eqs. 3-4]"
    assert q[2].startswith("001: 808 iterations")       # quick: 1 epoch of 12936 at 16


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
    for v in bcloss.VARIANTS:
        cells = bcloss.PUBLISHED[v]
        assert [c.table for c in cells] == ["Table 1", "Table 2"]
        for c in cells:
            pub = load_published("bcloss", c.table)
            assert ((pub["method"] == c.method) & (pub["variant"] == c.variant)).sum() \
                == len(c.metrics) == {"Table 1": 4, "Table 2": 2}[c.table]
    # lambda other than 1: the joint variant names it and matches no published row
    cells = bcloss.table_cells(make_config("01_bcloss", "smoke", lam=0.5),
                               {"joint": [object()]})
    (cell,) = cells["joint"]
    assert "lambda=0.5" in cell.variant and "lambda=1" not in cell.variant


def _cfg(**kw):
    """A config stating its own schedule (paper profile defaults: 16 images, lr 0.01)."""
    base = dict(epochs=None, max_iters=None, lr_step_iters=None, lr_milestones=())
    base.update(kw)
    return dataclasses.replace(make_config("01_bcloss", "paper"), **base)


def test_schedule_paper_iterations_to_epochs():
    s = bcloss.main_stage(make_config("01_bcloss", "paper"), 12936)
    assert s.iters_per_epoch == 808                 # 12936 // 16
    assert s.epochs == 62                           # ceil(50000 / 808)
    assert s.milestones == (25, 50)                 # 20000/808 = 24.75, 40000/808 = 49.5
    assert s.iters == 50000
    assert (s.lr, s.batch_size, s.sampler, s.optimizer) == (0.01, 16, "random", "sgd")
    assert "20000 -> run at 20200" in s.describe()


def test_schedule_quick_epochs_and_smoke_cap():
    s = bcloss.main_stage(_cfg(epochs=6, lr_milestones=(4,), lr=0.05), 2001)
    assert (s.iters_per_epoch, s.epochs, s.milestones, s.iters) == (125, 6, (4,), 750)
    assert s.lr == 0.05
    s = bcloss.main_stage(_cfg(epochs=1, max_iters=4), 200)
    assert (s.epochs, s.iters) == (1, 4)
    with pytest.raises(ValueError, match="no batch of 16"):
        bcloss.main_stage(_cfg(epochs=1), 15)
    with pytest.raises(ValueError, match="neither epochs nor max_iters"):
        bcloss.main_stage(_cfg(), 100)


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
    rows = bcloss.measured_rows(cfg, groups, note="1 run at smoke",
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
    rows = bcloss.measured_rows(cfg, {"joint": [_FakeRun(70, 50)]})
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


def test_sweep_stage_shorter_and_same():
    main = bcloss.main_stage(_cfg(epochs=6, lr_milestones=(4,)), 2000)
    assert bcloss.sweep_stage(_cfg(epochs=6, lr_milestones=(4,)), 2000) == main
    short = bcloss.sweep_stage(_cfg(epochs=6, lr_milestones=(4,), sweep_epochs=3), 2000)
    assert (short.epochs, short.milestones, short.iters) == (3, (), 375)
    assert short != main and "tau sweep" in short.describe()


def test_deviations_paper_profile_is_clean():
    paper = make_config("01_bcloss", "paper")
    stage = bcloss.main_stage(paper, 12936)
    assert paper.deviations() == []
    assert bcloss.run_deviations(paper, stage=stage, pretrained_loaded=True) == []
    quick = make_config("01_bcloss", "quick", dropout=0.5, runs=2)
    dev = {d.name: d for d in quick.deviations()}
    assert (dev["dropout"].value, dev["dropout"].paper) == (0.5, 0.9)
    assert "at chance" in dev["dropout"].reason
    assert (dev["runs"].value, dev["runs"].paper) == (2, 5)
    assert (dev["backbone"].value, dev["backbone"].paper) == ("resnet18", "resnet50")
    assert all(d.reason for d in quick.deviations()), "every quick deviation has a reason"
    extra = bcloss.run_deviations(quick, stage=bcloss.main_stage(quick, 2079),
                                  pretrained_loaded=False)
    assert "random initialisation (paper: ImageNet weights)" in extra
    assert extra[1].startswith("129 iterations")      # 1 x (2079 // 16)
    note = bcloss.row_note(quick, extra)
    assert "dropout 0.5 (paper 0.9)" in note and "runs 2 (paper 5)" in note


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


# The old profiles of 01_bcloss (before the paper package): Config.make must resolve to them.
OLD_OPTIONS = {
    "smoke": dict(backbone="resnet18", batch_size=16, center_lr=0.5, dropout=0.9, epochs=1,
                  eval_flip=False, height=64, lam=1.0, lr=0.01, lr_milestones=(),
                  lr_step_iters=None, max_iters=4, max_test_pids=None, max_train_pids=None,
                  pretrained=False, runs=1, sweep_epochs=None, synthetic_size="smoke",
                  tau=1.0, taus=(1.0, 1.5), width=32, workers=0),
    "quick": dict(backbone="resnet18", batch_size=16, center_lr=0.5, dropout=0.5, epochs=1,
                  eval_flip=False, height=64, lam=1.0, lr=0.01, lr_milestones=(),
                  lr_step_iters=None, max_iters=None, max_test_pids=150, max_train_pids=None,
                  pretrained="auto", runs=2, sweep_epochs=None, synthetic_size="quick",
                  tau=1.0, taus=(1.0,), width=32, workers=2),
    "paper": dict(backbone="resnet50", batch_size=16, center_lr=0.5, dropout=0.9,
                  epochs=None, eval_flip=False, height=256, lam=1.0, lr=0.01,
                  lr_step_iters=20000, max_iters=50000, max_test_pids=None,
                  max_train_pids=None, pretrained=True, runs=5, sweep_epochs=None,
                  synthetic_size="quick", tau=1.0, taus=(0.5, 1.0, 1.5), width=128,
                  workers=min(8, len(os.sched_getaffinity(0)))),
}
OLD_DATASET = {"smoke": "synthetic", "quick": "synthetic", "paper": "market1501"}


@pytest.mark.parametrize("profile", sorted(OLD_OPTIONS))
def test_config_equals_the_old_profiles(profile):
    d = make_config("01_bcloss", profile, output_dir="/tmp/o").to_dict()
    assert d["dataset"] == OLD_DATASET[profile] and d["notebook"] == "01_bcloss"
    got = {k: d["options"][k] for k in OLD_OPTIONS[profile]}
    assert got == OLD_OPTIONS[profile]


@pytest.mark.parametrize("profile,n,want", [
    # (profile, train images, (iters, iters/epoch, epochs, milestones)) as the old
    # schedule_for gave them: synthetic smoke / quick sets, Market-1501, DukeMTMC-reID.
    ("smoke", 84, (4, 5, 1, ())),
    ("quick", 2079, (129, 129, 1, ())),
    ("paper", 12936, (50000, 808, 62, (25, 50))),
    ("paper", 16522, (50000, 1032, 49, (19, 39))),
])
def test_stage_equals_the_old_schedule(profile, n, want):
    s = bcloss.main_stage(make_config("01_bcloss", profile), n)
    assert (s.iters, s.iters_per_epoch, s.epochs, s.milestones) == want
    assert bcloss.sweep_stage(make_config("01_bcloss", profile), n) == s


def test_stage_loader_builds_the_stages_augmentation():
    from reidnb.data.datasets import Record
    from reidnb.papers import common

    paper = bcloss.Config.make("paper", device="cpu", workers=0)
    ds = SimpleNamespace(train=[Record(f"/nonexistent/{i}.jpg", i % 4, 0) for i in range(32)],
                         num_train_pids=4)
    stage = bcloss.main_stage(paper, 32)
    assert stage.pad == 0
    tf = repr(common.stage_loader(paper, ds, stage).dataset.transform)
    assert "RandomHorizontalFlip" in tf and "Pad" not in tf and "RandomCrop" not in tf

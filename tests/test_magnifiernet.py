"""Tests of reidnb.papers.magnifiernet (notebook 04_magnifiernet): config, variants,
stages, plan, tables and result rows, figure helpers, and its viz functions.

CPU only and small: hand-made configs, distance matrices and stand-in runs; one tiny
ResNet-18 MagnifierNet (64x32 images) for the figure helpers.
"""
from __future__ import annotations

import os

import dataclasses
import types
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from reidnb.core.results import RESULT_COLUMNS  # noqa: E402
from reidnb.data.datasets import Record, ReIDDataset, subset_test  # noqa: E402
from reidnb.evaluation import RankResult  # noqa: E402
from reidnb.evaluation.retrieval import pick_top1_queries, top1_matches  # noqa: E402
from reidnb.papers import magnifiernet as mn  # noqa: E402


def _cfg(profile="quick", tmp_path=None, **kw):
    return mn.Config.make(profile, device="cpu",
                          output_dir=str(tmp_path) if tmp_path else "/tmp/reidnb_test_mn", **kw)


# ------------------------------------------------------------------------ config
#: The old resolved options of 04_magnifiernet (reidnb/config.py NOTEBOOK_PROFILES before the
#: move to reidnb.papers): paper profile, and what smoke / quick change.
CLASS = {"backbone": "resnet50", "batch_size": 64, "epochs": None, "eval_flip": False,
         "fig4": True, "height": 384, "k_hat": 4, "k_hats": (2, 4, 6), "mask_weight": 2.0,
         "max_iters": None, "max_test_pids": None, "max_train_pids": None,
         "n_figure_images": 6, "num_instances": 4, "parts_source": "auto", "pretrained": True,
         "random_erasing": 0.5, "real_quick": None, "rerank": True, "sampling": "random_torso",
         "samplings": ("random_torso", "random_baseline"), "sd_control": True,
         "sd_weight": 0.002, "stage1_epochs": 460, "stage1_iters": None, "stage1_lr": 0.00035,
         "stage1_milestones": (150, 300), "stage2_epochs": 40, "stage2_iters": None,
         "stage2_lr": 0.001, "synthetic_size": "quick",
         "table2_rows": ("G", "G+M", "G+M+SAB", "G+M+SFB", "G+M+SAB+SFB", "G+M+SAB+SFB+SD"),
         "warmup_epochs": 10, "width": 192,
         "workers": min(8, len(os.sched_getaffinity(0)))}   # clamped to the usable CPUs
# the paper profile on its default dataset, Market-1501: 002 publishes only Table 1 there
PAPER = {**CLASS, "table2_rows": ("G+M+SAB+SFB+SD",), "fig4": False, "k_hats": (),
         "sd_control": False}
SMOKE = {**CLASS, "backbone": "resnet18", "batch_size": 16, "epochs": 1, "height": 64,
         "k_hats": (4,), "max_iters": 4, "n_figure_images": 3, "parts_source": "labels",
         "pretrained": False, "samplings": ("random_torso",), "sd_control": False,
         "stage1_epochs": 1, "stage1_milestones": (), "stage2_epochs": 1,
         "synthetic_size": "smoke", "table2_rows": ("G", "G+M+SAB+SFB", "G+M+SAB+SFB+SD"),
         "warmup_epochs": 0, "width": 32, "workers": 0}
QUICK = {**CLASS, "backbone": "resnet18", "batch_size": 32, "epochs": 6, "height": 64,
         "k_hats": (), "max_test_pids": 100, "n_figure_images": 4, "parts_source": "labels",
         "pretrained": "auto", "random_erasing": 0.0,
         "real_quick": {"fig4": False, "k_hats": (), "sd_control": False,
                        "table2_rows": ("G", "G+M+SAB+SFB+SD")},
         "stage1_epochs": 1, "stage1_iters": 30, "stage1_lr": 0.001, "stage1_milestones": (),
         "stage2_epochs": 1, "stage2_iters": 10, "stage2_lr": 3.5e-05, "seeds": 2,
         "table2_rows": ("G", "G+M+SAB", "G+M+SAB+SFB", "G+M+SAB+SFB+SD"),
         "warmup_epochs": 0, "width": 32, "workers": 2}


def _tuples(v):
    if isinstance(v, (list, tuple)):
        return tuple(_tuples(x) for x in v)
    if isinstance(v, dict):
        return {k: _tuples(x) for k, x in v.items()}
    return v


@pytest.mark.parametrize("profile,expected", [("paper", PAPER), ("smoke", SMOKE),
                                              ("quick", QUICK)])
def test_config_equals_the_old_profiles(profile, expected):
    cfg = mn.Config.make(profile, device="cpu", output_dir="/tmp/o")
    d = cfg.to_dict()
    assert d["notebook"] == "04_magnifiernet"
    assert d["dataset"] == ("market1501" if profile == "paper" else "synthetic")
    options = _tuples(d["options"])
    assert {k: options[k] for k in expected} == expected


def test_config_deviations_and_unknown_settings():
    assert mn.Config.make("paper", device="cpu").deviations() == []
    dev = {d.name: d for d in _cfg("quick").deviations()}
    assert (dev["backbone"].value, dev["backbone"].paper) == ("resnet18", "resnet50")
    assert (dev["random_erasing"].value, dev["random_erasing"].paper) == (0.0, 0.5)
    assert dev["stage1_iters"].value == 30 and dev["stage1_iters"].reason
    assert all(d.reason for d in dev.values()), [d.name for d in dev.values() if not d.reason]
    assert all(d.reason for d in _cfg("smoke").deviations())
    with pytest.raises(ValueError, match="unknown setting"):
        _cfg("quick", stage3_iters=4)
    explicit = _cfg("quick", table2_rows=["G"], fig4=False, k_hats=[2])
    assert (explicit.table2_rows, explicit.fig4, explicit.k_hats) == (("G",), False, (2,))


# ------------------------------------------------------------------------ variants
def test_model_kw_switches_per_table2_row():
    assert mn.model_kw("G") == dict(use_mask=False, use_sab=False, use_sfb=False)
    assert mn.model_kw("G+M") == dict(use_mask=True, use_sab=False, use_sfb=False)
    # SAB rows carry the sampler; SFB rows the fusion; neither leaks into the other
    # rows that pool with masks spell out the mask transform (002 §3.1)
    assert mn.model_kw("G+M+SAB", k_hat=2, seed=3) == dict(
        use_mask=True, use_sab=True, use_sfb=False, sampling="random_torso", k_hat=2, seed=3,
        mask_resize="bilinear", test_masks="binary")
    assert mn.model_kw("G+M+SFB", fusion="ab", k_hat=6, mask_resize="nearest") == dict(
        use_mask=True, use_sab=False, use_sfb=True, fusion="ab", mask_resize="nearest",
        test_masks="binary")
    assert mn.VARIANTS["G+M+SAB+SFB+SD"].network == "G+M+SAB+SFB"
    assert mn.VARIANTS["G+M+SAB+SFB+SD"].sd and not mn.VARIANTS["G+M+SAB+SFB"].sd
    assert [mn.VARIANTS[r].label for r in mn.TABLE2_ROWS] == [
        "G", "+M", "+SAB", "+SFB", "+SAB+SFB", "+SD"]


@pytest.mark.parametrize("kw", [dict(fusion="lstm"), dict(sampling="random"),
                                dict(k_hat=3), dict(k_hat=8, sampling="random_baseline")])
def test_model_kw_rejects_bad_options(kw):
    with pytest.raises(ValueError):
        mn.model_kw("G+M+SAB+SFB", **kw)


def test_unknown_row_lists_the_rows():
    with pytest.raises(ValueError, match="G\\+M\\+SAB"):
        mn.variant("G+SAB")


def test_parts_input_and_missing_parts():
    b = {"img": torch.zeros(2, 3, 8, 4), "parts": torch.zeros(2, 8, 4, dtype=torch.long),
         "pid": torch.tensor([0, 1])}
    out = mn.parts_input(b)
    assert set(out) == {"x", "parts"} and out["x"] is b["img"] and out["parts"] is b["parts"]
    assert mn.image_input(b) is b["img"]
    with pytest.raises(KeyError, match="load_parts=True"):
        mn.parts_input({"img": b["img"]})


def test_loss_terms_per_variant():
    cfg = _cfg()
    g = mn.variant_losses(mn.model_kw("G"), cfg, 0.0)
    assert sorted(g) == ["ce_global", "tri_global"]
    full = mn.variant_losses(mn.model_kw("G+M+SAB+SFB"), cfg, 2e-3)
    assert sorted(full) == sorted(["ce_global", "tri_global", "ce_sab", "tri_sab", "ce_sfb",
                                   "tri_sfb", "ce_sfb_parts", "tri_sfb_parts", "mask", "sd"])
    assert full["mask"][0] == 2.0 and full["sd"][0] == 2e-3


# ------------------------------------------------------------------------ schedule
def test_stage_paper_recipe():
    cfg = _cfg("paper")
    s1 = mn.stage(cfg, 1, 12936)               # Market-1501: 12936 // 64 = 202 batches
    assert (s1.iters_per_epoch, s1.epochs, s1.iters) == (202, 460, 460 * 202)
    assert s1.milestones == (150, 300) and s1.warmup_epochs == 10
    assert s1.lr == 3.5e-4 and mn.sd_weight(cfg, 1) == 0.0
    assert (s1.optimizer, s1.sampler, s1.num_instances, s1.batch_size, s1.weight_decay) == (
        "adam", "pk", 4, 64, 5e-4)
    s2 = mn.stage(cfg, 2, 12936)
    assert (s2.epochs, s2.iters, s2.lr, mn.sd_weight(cfg, 2)) == (40, 40 * 202, 1e-3, 2e-3)
    assert s2.milestones == () and s2.warmup_epochs == 0
    assert mn.sd_weight(cfg, 2, sd=False) == 0.0          # the stage-2 control
    assert s1.iter_cap is None                  # whole epochs: nothing to cap
    assert "P x K = 16 x 4" in s1.describe(12936)
    lines = mn.describe_stages(cfg, 12936)
    assert lines[0].endswith("no SD loss") and lines[1].endswith("SD loss gamma 0.002")


def test_stage_quick_and_smoke_caps():
    cfg = _cfg("quick")
    s1 = mn.stage(cfg, 1, 2079)                # 2079 // 32 = 64 batches, cut to 30
    assert (s1.iters_per_epoch, s1.epochs, s1.iters) == (64, 1, 30)
    assert abs(s1.iters / s1.iters_per_epoch - 30 / 64) < 1e-12
    assert s1.iter_cap == 30
    assert (mn.stage(cfg, 2, 2079).iters, mn.stage(cfg, 2, 2079).lr) == (10, 3.5e-5)
    smoke = _cfg("smoke")
    s = mn.stage(smoke, 2, 100)                # 100 // 16 = 6 batches, max_iters 4
    assert (s.epochs, s.iters) == (1, 4) and "max_iters" in s.describe(100)
    with pytest.raises(ValueError, match="no batch"):
        mn.stage(cfg, 1, 31)
    with pytest.raises(ValueError):
        mn.stage(cfg, 3, 2079)


# ------------------------------------------------------------------------ plan
def test_plan_shares_stage1_runs():
    cfg = _cfg("quick", k_hats=[4])        # with the Fig. 5 point
    plan = mn.make_plan(cfg)
    specs = plan.stage1_specs()
    assert [s.key for s in specs] == ["G", "G+M+SAB", "G+M+SAB+SFB", "G+M+SAB+SFB|ab",
                                      "G+M+SAB+SFB|random_baseline k4"]
    assert all(s.evaluate for s in specs)
    ab = specs[3]
    assert (ab.network, ab.fusion) == ("G+M+SAB+SFB", "ab")
    assert plan.needs_stage2
    assert any("Table 2 rows left out" in r for r in plan.reductions)


def test_plan_stage1_full_not_evaluated_when_only_stage2_needs_it():
    plan = mn.Plan(table2_rows=("G", "G+M+SAB+SFB+SD"), fig4=False, k_hats=(),
                   samplings=mn.SAMPLINGS)
    specs = plan.stage1_specs()
    assert [(s.key, s.evaluate) for s in specs] == [("G", True), ("G+M+SAB+SFB", False)]
    # a later need for evaluation wins
    plan = dataclasses.replace(plan, fig4=True)
    assert [(s.key, s.evaluate) for s in plan.stage1_specs()] == [
        ("G", True), ("G+M+SAB+SFB", True), ("G+M+SAB+SFB|ab", True)]


def test_sweep_points_keep_torso_even():
    plan = mn.Plan(table2_rows=(), fig4=False, k_hats=(2, 3, 4, 7), samplings=mn.SAMPLINGS,
                   rerank=False)
    assert plan.sweep_points() == [("random_torso", 2), ("random_torso", 4),
                                   ("random_baseline", 2), ("random_baseline", 3),
                                   ("random_baseline", 4), ("random_baseline", 7)]
    assert not plan.needs_stage2


def test_make_plan_real_quick_reduction_and_explicit_values():
    cfg = _cfg("quick", dataset="market1501")
    plan = mn.make_plan(cfg)
    assert plan.table2_rows == ("G", "G+M+SAB+SFB+SD") and not plan.fig4 and plan.k_hats == ()
    plan = mn.make_plan(cfg, table2_rows=["G", "G+M+SAB"], fig4=None)
    assert plan.table2_rows == ("G", "G+M+SAB") and not plan.fig4
    # synthetic quick: the profile's own choice
    assert mn.make_plan(_cfg("quick")).fig4
    with pytest.raises(ValueError, match="unknown MagnifierNet"):
        mn.make_plan(_cfg("quick"), table2_rows=["G", "SAB"])


# ------------------------------------------------------------------------ retrieval
def _res(dm, qp, gp, qc, gc):
    return types.SimpleNamespace(distmat=np.asarray(dm, dtype=np.float32),
                                 q_pids=np.asarray(qp), g_pids=np.asarray(gp),
                                 q_camids=np.asarray(qc), g_camids=np.asarray(gc),
                                 q_paths=[], g_paths=[])


def test_top1_matches_skip_junk_and_same_camera():
    # gallery: 0 = pid 1 cam 0, 1 = junk, 2 = pid 2 cam 1, 3 = pid 1 cam 1, 4 = distractor
    gp, gc = [1, -1, 2, 1, 0], [0, 1, 1, 1, 2]
    dm = [[0.1, 0.2, 0.3, 0.4, 0.5],      # q0 pid 1 cam 0: skip g0 (same cam), g1 junk -> g2 wrong
          [0.9, 0.9, 0.5, 0.5, 0.9],      # q1 pid 2 cam 0: tie g2/g3 -> gallery order -> g2 right
          [0.5, 0.1, 0.9, 0.9, 0.2]]      # q2 pid 1 cam 1: g1 junk, g4 distractor first -> wrong
    idx, ok = top1_matches(_res(dm, [1, 2, 1], gp, [0, 0, 1], gc))
    assert idx.tolist() == [2, 2, 4] and ok.tolist() == [False, True, False]
    # only junk left -> -1
    idx, ok = top1_matches(_res([[0.1, 0.2]], [1], [1, -1], [0], [0, 0]))
    assert idx.tolist() == [-1] and ok.tolist() == [False]
    with pytest.raises(ValueError):
        top1_matches(_res([[0.1]], [1, 2], [1], [0, 0], [1]))


def test_pick_top1_queries_prefers_baseline_wrong_improved_right():
    gp, gc = [1, 2, 3], [1, 1, 1]
    qp, qc = [1, 2, 3], [0, 0, 0]
    a = _res([[0.1, 0.2, 0.3], [0.1, 0.2, 0.3], [0.3, 0.2, 0.1]], qp, gp, qc, gc)  # ok: T F T
    b = _res([[0.1, 0.2, 0.3], [0.2, 0.1, 0.3], [0.1, 0.2, 0.3]], qp, gp, qc, gc)  # ok: T T F
    assert pick_top1_queries(a, b, 1) == [1]
    assert pick_top1_queries(a, b, 2) == [1, 0]
    assert pick_top1_queries(a, b, 3) == [1, 0, 2]


# ------------------------------------------------------------------------ tables / rows
def _run(name, r1, mAP, *, rerank=None, iters=30, seconds=10.0):
    cmc = np.full(50, 1.0)
    cmc[0] = r1 / 100
    results = {"single-query": RankResult(cmc, mAP / 100, 0.1)}
    if rerank:
        cmc2 = np.full(50, 1.0)
        cmc2[0] = rerank[0] / 100
        results["single-query+re-rank"] = RankResult(cmc2, rerank[1] / 100, 0.1)
    from reidnb.papers.common import Run

    return Run(name=name, model=None, history=pd.DataFrame({"iter": range(iters)}),
               result=types.SimpleNamespace(results=results), train_seconds=seconds,
               eval_seconds=1.0, epochs=1)


def test_table_dataset_mapping():
    assert mn.table_dataset(_cfg(), "Table 1") == ("Market-1501", False)
    assert mn.table_dataset(_cfg(), "Table 2") == ("DukeMTMC-reID", False)
    assert mn.table_dataset(_cfg(dataset="market1501"), "Table 2") == ("Market-1501", True)
    assert mn.table_dataset(_cfg(dataset="dukemtmcreid"), "Table 2") == ("DukeMTMC-reID", False)
    assert mn.table_dataset(_cfg(dataset="cuhk03np-detected"), "Table 1") == ("CUHK03-D", False)
    with pytest.raises(ValueError):
        mn.table_dataset(_cfg(), "Table 3")


def test_rows_tables_and_figure_frames(tmp_path):
    cfg = _cfg("quick", tmp_path, k_hats=[4])
    plan = mn.make_plan(cfg)
    runs = {"G": _run("G", 50, 40), "G+M+SAB": _run("G+M+SAB", 55, 44),
            "G+M+SAB+SFB": _run("G+M+SAB+SFB", 60, 48, seconds=20.0),
            "G+M+SAB+SFB|ab": _run("ab", 58, 45),
            "G+M+SAB+SFB|random_baseline k4": _run("rb", 57, 46),
            "G+M+SAB+SFB+SD": _run("sd", 62, 50, rerank=(70, 65), iters=10)}
    t2 = mn.table2_frame(runs, plan)
    assert t2["row"].tolist() == ["G", "+SAB", "+SAB+SFB", "+SD"]
    assert np.allclose(t2["d_rank1"], [0, 5, 10, 12]) and np.allclose(t2["d_mAP"], [0, 4, 8, 10])
    assert t2.loc[3, "paper Duke rank1"] == 90.0 and t2.loc[0, "paper CUHK03-L mAP"] == 67.4
    # with the stage-2 control (same iterations, no SD) a last row separates SD from training
    t2c = mn.table2_frame({**runs, mn.SD_CONTROL: _run("ctl", 61, 49, seconds=5.0)}, plan)
    assert t2c["row"].tolist()[-1] == "control: stage 2 without SD" and len(t2c) == 5
    assert (t2c.iloc[-1]["d_rank1"], t2c.iloc[-1]["d_mAP"], t2c.iloc[-1]["seconds"]) == (11, 9, 6)
    assert np.isnan(t2c.iloc[-1]["paper Duke rank1"])
    t1 = mn.table1_frame(cfg, runs["G+M+SAB+SFB+SD"])
    assert t1["measured"].round(6).tolist() == [62, 50, 70, 65]
    assert t1["published"].tolist() == [95.8, 89.6, 96.5, 95.1]
    f4 = mn.fig4_frame(runs)
    assert f4.set_index(["branch", "metric"])["value"].round(6).to_dict() == {
        ("SFB", "rank1"): 60, ("SFB", "mAP"): 48, ("AB", "rank1"): 58, ("AB", "mAP"): 45}
    f5 = mn.fig5_frame(runs, plan)
    assert f5[["sampling", "k_hat"]].values.tolist() == [["random_torso", 4],
                                                         ["random_baseline", 4]]
    assert np.allclose(f5["rank1"], [60, 57]) and np.allclose(f5["mAP"], [48, 46])

    rows = mn.measured_rows(cfg, runs, plan, iters_per_epoch=64, note="quick")
    df = pd.DataFrame(rows)
    assert list(df.columns) == list(RESULT_COLUMNS)
    t2r = df[df["table"] == "Table 2"]
    assert set(t2r["dataset"]) == {"DukeMTMC-reID"} and len(t2r) == 8
    sd = t2r[(t2r["variant"] == "G+M+SAB+SFB+SD") & (t2r["metric"] == "rank1")].iloc[0]
    assert abs(sd["value"] - 62) < 1e-9
    assert abs(sd["epochs"] - 40 / 64) < 1e-3           # 10 stage-2 + 30 stage-1 iterations
    assert abs(sd["seconds"] - (11.0 + 20.0)) < 1e-9    # its own run + stage-1 training
    t1r = df[df["table"] == "Table 1"]
    assert t1r[["reranking", "metric"]].values.tolist() == [[0, "rank1"], [0, "mAP"],
                                                            [1, "rank1"], [1, "mAP"]]
    assert set(t1r["dataset"]) == {"Market-1501"} and (df["dataset_kind"] == "synthetic").all()
    assert df["note"].str.contains("synthetic stand-in").all()


def test_rows_real_market_table2_is_extra(tmp_path):
    cfg = _cfg("quick", tmp_path, dataset="market1501")
    plan = mn.make_plan(cfg)
    runs = {"G": _run("G", 50, 40), "G+M+SAB+SFB": _run("s1", 1, 1),
            "G+M+SAB+SFB+SD": _run("sd", 62, 50, rerank=(70, 65))}
    df = pd.DataFrame(mn.measured_rows(cfg, runs, plan, iters_per_epoch=202))
    assert set(df["dataset"]) == {"Market-1501"} and set(df["dataset_kind"]) == {"real"}
    # the stage-1 network is not a measured row (not in plan.table2_rows)
    assert sorted(set(df["variant"])) == ["G", "G+M+SAB+SFB+SD"]


# ------------------------------------------------------------------------ test subset
def _toy_dataset(kind="synthetic"):
    q = [Record(f"/q/{p}_{i}.jpg", p, 0) for p in (1, 2, 3, 4) for i in range(2)]
    g = [Record(f"/g/{p}_{i}.jpg", p, 1) for p in (1, 2, 3, 4) for i in range(3)]
    g += [Record(f"/g/d{i}.jpg", 0, 2) for i in range(6)] + [Record("/g/j.jpg", -1, 2)]
    return ReIDDataset(name="toy", root=Path("/toy"), kind=kind, train=[], query=q, gallery=g,
                       num_train_pids=0, num_train_cams=0, multi_query={0: [q[0]]})


def test_subset_test_keeps_ids_and_a_share_of_distractors():
    ds = _toy_dataset()
    sub = subset_test(ds, 2, seed=0)
    kept = {r.pid for r in sub.query}
    assert len(kept) == 2 and len(sub.query) == 4
    assert {r.pid for r in sub.gallery if r.pid > 0} == kept
    # 4 ids -> 2: every 2nd of the 7 distractor/junk images in file order: d0, d2, d4, j
    assert [r.path for r in sub.gallery if r.pid <= 0] == ["/g/d0.jpg", "/g/d2.jpg",
                                                           "/g/d4.jpg", "/g/j.jpg"]
    assert all(sub.query[i].pid in kept for i in sub.multi_query)
    assert "test subset: 2 of 4" in sub.notes[-1]
    assert subset_test(ds, 2, seed=0).query == sub.query            # deterministic
    assert subset_test(ds, None) is ds and subset_test(ds, 10) is ds
    with pytest.raises(ValueError, match="real dataset"):
        subset_test(_toy_dataset("real"), 2)
    with pytest.raises(ValueError):
        subset_test(ds, 0)


# ------------------------------------------------------------------------ figures
@pytest.fixture(scope="module")
def tiny_net():
    from reidnb.models import build_model

    torch.manual_seed(0)
    return build_model("magnifiernet", 3, backbone="resnet18", pretrained=False).eval()


def test_activation_maps_and_predicted_parts(tiny_net):
    from reidnb.models import build_model

    x = torch.randn(2, 3, 64, 32, generator=torch.Generator().manual_seed(1))
    maps = mn.activation_maps({"full": tiny_net}, x)
    a = maps["full"]
    assert a.shape == (2, 64, 32) and a.dtype == np.float32
    assert np.allclose(a.reshape(2, -1).min(1), 0) and np.allclose(a.reshape(2, -1).max(1), 1)
    p = mn.predicted_parts(tiny_net, x)
    assert p.shape == (2, 64, 32) and p.min() >= 0 and p.max() <= 7
    # nearest upsampling of a 4x2 map: constant 16x16 blocks
    assert (p[:, :16, :16] == p[:, :1, :1]).all()
    assert not tiny_net.training
    g = build_model("magnifiernet", 3, backbone="resnet18", pretrained=False, use_mask=False,
                    use_sab=False, use_sfb=False)
    with pytest.raises(ValueError, match="no mask module"):
        mn.predicted_parts(g, x)


def test_viz_functions_draw_and_check_inputs():
    import matplotlib.pyplot as plt

    from reidnb import viz

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (2, 16, 8, 3), dtype=np.uint8)
    parts = rng.integers(0, 8, (2, 16, 8))
    fig = viz.plot_part_predictions(rgb, parts, parts, titles=["a", "b"])
    assert len(fig.axes) == 6
    assert len(viz.plot_part_predictions(rgb, None, parts).axes) == 4
    with pytest.raises(ValueError):
        viz.plot_part_predictions(rgb, parts[:1], parts)
    maps = {"G": rng.random((2, 16, 8)), "full": rng.random((2, 16, 8))}
    assert len(viz.plot_activation_overlays(rgb, maps).axes) == 6
    with pytest.raises(ValueError, match="expected"):
        viz.plot_activation_overlays(rgb, {"G": rng.random((2, 8, 8))})
    one = {"rgb": rgb[0], "correct": True, "dist": 0.5, "query_map": maps["G"][0],
           "match_map": maps["G"][1]}
    fig = viz.plot_top1_pairs(rgb[:1], [[one, dict(one, correct=False)]])
    assert len(fig.axes) == 5
    assert fig.axes[2].spines["top"].get_edgecolor()[:3] == matplotlib.colors.to_rgb("tab:green")
    assert fig.axes[4].spines["top"].get_edgecolor()[:3] == matplotlib.colors.to_rgb("tab:red")
    with pytest.raises(ValueError):
        viz.plot_top1_pairs(rgb, [[one, one]])
    f4 = pd.DataFrame({"branch": ["SFB", "SFB", "AB", "AB"], "metric": ["rank1", "mAP"] * 2,
                       "value": [60, 48, 58, 45]})
    viz.plot_fusion_comparison(f4)
    with pytest.raises(ValueError):
        viz.plot_fusion_comparison(f4.iloc[:0])
    f5 = pd.DataFrame({"sampling": ["random_torso", "random_baseline"], "k_hat": [4, 4],
                       "rank1": [60, 57], "mAP": [48, 46]})
    fig = viz.plot_k_hat_sweep(f5)
    assert [len(ax.lines) for ax in fig.axes] == [2, 2]
    with pytest.raises(ValueError):
        viz.plot_k_hat_sweep(f5.drop(columns="mAP"))
    plt.close("all")


def test_deviations_empty_at_paper_profile():
    assert _cfg("paper").deviations() == []
    dev = [str(d) for d in _cfg("quick").deviations()]
    assert any(d.startswith("backbone = 'resnet18' (paper: 'resnet50')") for d in dev)
    assert any(d.startswith("random_erasing = 0.0 (paper: 0.5)") for d in dev)
    assert any(d.startswith("stage1_iters = 30 (paper: None)") for d in dev)


def test_describe_recipe_reads_the_loader_values():
    paper = mn.Config.make("paper")
    lines = mn.describe_recipe(paper)
    assert lines[0] == ("augmentation (train loader): horizontal flip p=0.5; zero-pad 10 px + "
                        "random crop back to the input size; random erasing p=0.5")
    assert "bilinear-resized" in lines[1] and "binary" in lines[1] and "[paper" not in lines[1]
    st = mn.stage(paper, 1, 640)
    assert (st.flip_p, st.pad) == (0.5, 10)                  # what the loader is built from
    quick = mn.Config.make("quick")
    assert "no random erasing [paper: random erasing p=0.5]" in mn.describe_recipe(quick)[0]
    odd = dataclasses.replace(paper, pad=0, mask_resize="nearest")
    lines = mn.describe_recipe(odd, 640)
    assert "no pad + crop [paper: zero-pad 10 px" in lines[0]
    assert lines[1].endswith("[paper: bilinear / binary]") and len(lines) == 4
    for profile in ("paper", "quick", "smoke"):
        cfg = mn.Config.make(profile)
        assert (cfg.mask_resize, cfg.test_masks) == ("bilinear", "binary")


def test_seed_groups_in_tables_rows_and_the_sd_control_interval(tmp_path):
    """Headline runs as SeedGroups (quick: 2 seeds): Table 2 shows the seed means, the rows
    record 2 seeds, and +SD vs its control gets an interval and verdict."""
    from reidnb.core.runs import SeedGroup

    cfg = _cfg("quick", tmp_path)
    plan = mn.make_plan(cfg)

    def group(name, r1s, maps, **kw):
        return SeedGroup(tuple(_run(f"{name}{i}", r, m, **kw) for i, (r, m)
                               in enumerate(zip(r1s, maps))))

    runs = {"G": group("G", (50, 52), (40, 42)), "G+M+SAB": _run("G+M+SAB", 55, 44),
            "G+M+SAB+SFB": group("full", (60, 62), (48, 50), seconds=20.0),
            "G+M+SAB+SFB+SD": group("sd", (62, 64), (50, 52), rerank=(70, 65), iters=10),
            mn.SD_CONTROL: group("ctl", (61, 61), (49, 49), iters=10)}
    t2 = mn.table2_frame(runs, plan)
    assert t2.loc[0, "rank1"] == 51 and t2.loc[2, "d_rank1"] == 10        # seed means
    rows = pd.DataFrame(mn.measured_rows(cfg, runs, plan, iters_per_epoch=64))
    g = rows[(rows["variant"] == "G") & (rows["metric"] == "rank1")].iloc[0]
    assert g["seeds"] == 2 and g["value"] == 51
    sd = rows[(rows["variant"] == "G+M+SAB+SFB+SD") & (rows["table"] == "Table 2")
              & (rows["metric"] == "rank1")].iloc[0]
    assert abs(sd["epochs"] - 40 / 64) < 1e-3 and sd["seeds"] == 2
    frame = mn.sd_control_frame(runs)            # no per-query arrays in these fake runs
    assert frame["metric"].tolist() == ["rank1", "mAP"]
    assert np.allclose(frame["paper_delta"], [90.0 - 88.6, 80.7 - 79.6])   # Duke Table 2
    assert np.allclose(frame["measured_delta"], [2.0, 2.0])
    assert set(frame["verdict"]) == {"inconclusive (no per-query data)"}
    assert set(frame["seeds"]) == {"2 vs 2"}

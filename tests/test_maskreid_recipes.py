"""Tests of reidnb.maskreid_recipes (notebook 02_maskreid helpers).

Loss wiring is checked on a 3-sample batch worked by hand (recipes.md §1.2): x0 = (1, 0)
and x1 = (0.6, 0.8) share an identity, x2 = (0, 1) is another one, so S01 = 0.6,
S02 = 0, S12 = 0.8; anchors 0 and 1 have a positive and a negative, anchor 2 none.
The small-scale loaders run on generated folder trees in torchreid's layouts.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from reidnb import maskreid_recipes as mr
from reidnb.core.config import make_config
from reidnb.evaluation import RankResult
from reidnb.papers.common import Run
from reidnb.core.results import compare

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
    cfg = make_config("02_maskreid", "paper", device="cpu")
    s2 = mr.stage_schedule(cfg, 2, 12936)          # Market-1501 train, batch 64
    assert (s2.iters, s2.iters_per_epoch, s2.epochs, s2.lr) == (20000, 202, 100, 0.01)
    s1 = mr.stage_schedule(cfg, 1, 12936)
    assert (s1.iters, s1.lr) == (55000, 0.1)
    assert mr.stage_config(cfg, s2).max_iters == 20000
    assert mr.stage_config(cfg, s2).batch_size == 64          # everything else kept
    smoke = make_config("02_maskreid", "smoke", device="cpu")
    s = mr.stage_schedule(smoke, 2, 84)
    assert (s.iters, s.epochs) == (4, 1)
    with pytest.raises(ValueError, match="no batch"):
        mr.stage_schedule(cfg, 1, 10)
    with pytest.raises(ValueError, match="stage must be"):
        mr.stage_schedule(cfg, 3, 1000)


def test_grid_cells():
    paper = make_config("02_maskreid", "paper", device="cpu")
    cells = mr.grid_cells(paper)
    assert len(cells) == 25 + 10
    assert ("maskreid_icme", 1.0, 0.2) in cells and ("maskreid", 2.0, 0.15) in cells
    assert not [c for c in cells if c[0] == "maskreid" and c[2] == 0.2]
    quick = make_config("02_maskreid", "quick", device="cpu")
    assert mr.grid_cells(quick) == [("maskreid_icme", 0.0, 0.2), ("maskreid_icme", 1.0, 0.2)]


def test_stage_wiring(monkeypatch):
    """Stage 1: softmax, random batches, lr 0.1; stage 2: anchor batches, lr 0.01, init."""
    import reidnb.papers.common as exp

    calls = []
    monkeypatch.setattr(exp, "train_and_evaluate", lambda cfg, ds, **kw: calls.append((cfg, kw))
                        or SimpleNamespace(model=SimpleNamespace(num_classes=ds.num_train_pids,
                                                                 use_mask=True, fusion=True)))
    cfg = make_config("02_maskreid", "paper", device="cpu")
    ds = SimpleNamespace(train=[None] * 640, num_train_pids=7)
    s1 = mr.train_stage1(cfg, ds, arch="MaskReID-M")
    mr.train_stage2(cfg, ds, s1, loss="ranking", version="maskreid", rerank=True)
    (c1, k1), (c2, k2) = calls
    assert (k1["sampler"], k1["lr"], k1["name"]) == ("random", 0.1, "stage1-MaskReID-M")
    assert k1["model_kw"] == {"backbone": "dgd", "pretrained": False, "use_mask": True,
                              "fusion": False}
    assert list(k1["losses"]) == ["softmax"] and c1.max_iters == 55000
    assert k1["epochs"] == math.ceil(55000 / 10) and k1["input_fn"] is mr.mask_input
    assert (k2["sampler"], k2["lr"], k2["num_pos"], k2["init"]) == ("anchor", 0.01, 10, s1)
    assert k2["name"] == "stage2-ranking-eccv-lam2-alpha0.15" and c2.max_iters == 20000
    assert k2["load_mask"] and k2["rerank"] and list(k2["losses"]) == ["rank"]


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
    res = {s: RankResult(np.full(50, r1 / 100), mAP / 100, 0.0) for s, (r1, mAP) in settings.items()}
    return Run(name=name, model=None, history=pd.DataFrame(), result=SimpleNamespace(results=res),
               train_seconds=seconds, eval_seconds=1.0, epochs=2)


FULL = {"single-query": (60.0, 40.0), "multi-query": (70.0, 50.0),
        "single-query+re-rank": (65.0, 55.0), "multi-query+re-rank": (72.0, 60.0)}


def test_rows_market_match_published_rows():
    cfg = make_config("02_maskreid", "smoke", device="cpu")        # synthetic -> Market-1501
    losses = {k: _run(k, FULL) for k in ("softmax", "triplet", "npair", "ranking")}
    ranking = {("maskreid_icme", 1.0, 0.2): losses["ranking"],
               ("maskreid_icme", 0.0, 1.0): _run("g", {"single-query": (50.0, 30.0)}),
               ("maskreid", 2.0, 0.15): _run("e", FULL)}
    rows = mr.maskreid_rows(cfg, losses=losses, ranking=ranking,
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
    cfg = make_config("02_maskreid", "quick", device="cpu", dataset="dukemtmcreid")
    sq = {"single-query": (60.0, 40.0), "single-query+re-rank": (65.0, 55.0)}
    rows = mr.maskreid_rows(cfg, losses={"softmax": _run("s", sq)},
                            ranking={("maskreid_icme", 1.0, 0.2): _run("r", sq)})
    df = pd.DataFrame(rows)
    t3 = df[(df["paper_id"] == "maskreid_icme") & (df["table"] == "Table 3")]
    assert set(t3["method"]) == {"MaskReID", "MaskReID_re-ranking"}
    assert (t3["protocol"] == "").all() and (df["dataset"] == "DukeMTMC-reID").all()
    assert compare(df.assign(notebook="x"), "maskreid", "Table 3").query(
        "method == 'MaskReID_soft' and metric == 'rank1'")["measured"].tolist() == [60.0]
    # small sets: Table 1 of both versions and Table 4, real data
    res = SimpleNamespace(results={"single-query": RankResult(np.full(50, 0.5), 0.4, 0.0)})
    rows = mr.maskreid_rows(cfg, small_sets={"viper": {"MaskReID": res, "MaskReID-M": res}})
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
    pos, neg = mr.pair_distances(res)
    # query 1: g0 same id+cam (left out), g1 match, g2 distractor, g3 junk (left out)
    # query 2: g0, g1, g2 different ids, g3 junk
    np.testing.assert_allclose(pos, [0.2])
    np.testing.assert_allclose(neg, [0.3, 0.5, 0.6, 0.7])


# ----------------------------------------------------------------------------- small sets
def _img(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 8), (10, 20, 30)).save(path)


def _tree(root: Path) -> None:
    for i in range(6):                                            # VIPeR: 6 ids x 2 cams
        _img(root / "viper/VIPeR/cam_a" / f"{i:03d}_45.bmp")
        _img(root / "viper/VIPeR/cam_b" / f"{i:03d}_90.bmp")
    for p in range(1, 206):                                       # PRID: 200 shared + 5
        if p <= 200:
            _img(root / "prid2011/prid_2011/single_shot/cam_a" / f"person_{p:04d}.png")
        _img(root / "prid2011/prid_2011/single_shot/cam_b" / f"person_{p:04d}.png")
    for p in range(1, 7):                                         # iLIDS: 6 ids x 4
        for k in range(1, 5):
            _img(root / "ilids/i-LIDS_Pedestrian/Persons" / f"{p:04d}{k:03d}.jpg")
    for p in range(1, 5):                                         # CUHK01: 4 ids x 4 views
        for k in range(1, 5):
            _img(root / "cuhk01/campus" / f"{p:04d}{k:03d}.png")
    for p in (1, 2, 3, 4):                                        # 3DPeS: 4 ids x 2 views
        for v in (1, 2):
            _img(root / "3dpes/RGB" / f"{p}_{v}_FRAME_{10 * v}_RGB.bmp")
    for n in ("1_001_1_01.png", "1_001_2_06.png", "1_002_1_01.png", "1_002_2_06.png",
              "1_003_1_01.png", "1_003_2_06.png"):                # CUHK03 (torchreid output)
        _img(root / "cuhk03/images_labeled" / n)
    split = {"train": [["/elsewhere/images_labeled/1_001_1_01.png", 0, 0],
                       ["/elsewhere/images_labeled/1_001_2_06.png", 0, 1]],
             "query": [[f"/x/images_labeled/1_00{p}_{v}_0{1 if v == 1 else 6}.png", p - 2, v - 1]
                       for p in (2, 3) for v in (1, 2)]}
    split["gallery"] = split["query"]
    (root / "cuhk03/splits_classic_labeled.json").write_text(json.dumps([split]))
    for p in (1, 2):                                              # Shinpuhkan: train only
        _img(root / "shinpuhkan/images" / f"{p:03d}_0{p}_0001.jpg")


@pytest.fixture(scope="module")
def small_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("small_sets")
    _tree(root)
    return root


def test_small_set_layouts(small_root):
    sets = mr.find_small_sets(small_root, seed=1, verbose=False)
    assert sorted(sets) == sorted(mr.SMALL_SETS)
    v = sets["viper"]
    assert (v.num_train_pids, len(v.train), len(v.query), len(v.gallery)) == (3, 6, 3, 3)
    assert {r.camid for r in v.query} == {0} and {r.camid for r in v.gallery} == {1}
    assert {r.pid for r in v.query} == {r.pid for r in v.gallery}
    p = sets["prid"]
    assert (len(p.train), len(p.query), len(p.gallery)) == (200, 100, 105)
    assert {r.pid for r in p.query} < {r.pid for r in p.gallery}
    assert not {r.path for r in p.train} & {r.path for r in p.query}
    i = sets["ilids"]
    assert (i.num_train_pids, len(i.train), len(i.query), len(i.gallery)) == (3, 12, 3, 3)
    assert all(q.pid == g.pid and q.camid != g.camid for q, g in zip(i.query, i.gallery))
    c = sets["cuhk01"]
    assert (c.num_train_pids, len(c.train), len(c.query), len(c.gallery)) == (2, 8, 4, 4)
    assert {Path(r.path).name[4:7] for r in c.query} == {"001", "002"}
    d = sets["3dpes"]
    assert (d.num_train_pids, len(d.query), len(d.gallery)) == (2, 2, 2)
    c3 = sets["cuhk03"]
    assert Path(c3.train[0].path) == small_root / "cuhk03/images_labeled/1_001_1_01.png"
    assert len(c3.query) == len(c3.gallery) == 4
    assert len(sets["shinpuhkan"].train) == 2 and not sets["shinpuhkan"].query
    # the same seed gives the same split; the train split of a torchreid file is followed
    assert [r.path for r in mr.load_small_set("viper", small_root, seed=1).train] == \
        [r.path for r in v.train]
    names = sorted(Path(r.path).name for r in v.train if r.camid == 0)
    (small_root / "viper/splits.json").write_text(json.dumps(
        [{"train": [[f"/other/cam_a/{n}", 0, 0] for n in names[:1]]}]))
    try:
        assert len(mr.load_small_set("viper", small_root).train) == 2
    finally:
        (small_root / "viper/splits.json").unlink()


def test_joint_train_set(small_root):
    sets = {n: mr.load_small_set(n, small_root) for n in ("viper", "ilids", "shinpuhkan")}
    j = mr.joint_train_set(sets)
    assert j.num_train_pids == 3 + 3 + 2 and len(j.train) == 6 + 12 + 2
    assert sorted({r.pid for r in j.train}) == list(range(8))
    by_root = {}
    for r in j.train:
        by_root.setdefault(Path(r.path).parts[len(small_root.parts)], set()).add(r.pid)
    assert by_root["viper"] == {0, 1, 2} and by_root["shinpuhkan"] == {6, 7}
    assert not j.query and not j.gallery
    with pytest.raises(ValueError, match="no small-scale set"):
        mr.joint_train_set({})


def test_small_set_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="cam_a"):
        mr.load_small_set("viper", tmp_path)
    _img(tmp_path / "cuhk01/campus/abc.png")
    with pytest.raises(ValueError, match="PPPPIII.png"):
        mr.load_small_set("cuhk01", tmp_path)
    (tmp_path / "cuhk03").mkdir()
    with pytest.raises(FileNotFoundError, match="splits_classic_labeled.json"):
        mr.load_small_set("cuhk03", tmp_path)
    with pytest.raises(KeyError, match="unknown small-scale set"):
        mr.load_small_set("grid", tmp_path)
    assert mr.find_small_sets(tmp_path / "nothing", verbose=False) == {}


def test_plan_per_profile_and_dataset():
    paper = mr.make_plan(make_config("02_maskreid", "paper", device="cpu"))
    assert paper.reductions == () and paper.losses == mr.LOSSES and len(paper.grid) == 35
    assert paper.ablation == ("DGD", "MaskReID-F", "MaskReID-M") and paper.multi_query
    syn = mr.make_plan(make_config("02_maskreid", "quick", device="cpu"))
    assert syn.losses == mr.LOSSES and not syn.multi_query and syn.max_train_pids is None
    assert any("grid" in r for r in syn.reductions)
    assert "profile quick: no multi-query evaluation" in syn.reductions
    real = mr.make_plan(make_config("02_maskreid", "quick", device="cpu", dataset="market1501"))
    assert real.losses == ("softmax", "ranking") and real.versions == ("maskreid_icme",)
    assert (real.grid, real.ablation, real.multi_query, real.max_train_pids) == ((), (), False, 300)
    assert sum("real data" in r for r in real.reductions) == 3
    assert not any("of 35 cells" in r or "of 3 variants" in r for r in real.reductions)
    assert "no maskreid ranking run" in real.reductions
    assert sum("multi-query" in r for r in real.reductions) == 1
    assert any("loss comparison: ['softmax', 'ranking']" in r for r in real.reductions)
    # an explicit max_train_pids wins over the profile's reduction
    own = mr.make_plan(make_config("02_maskreid", "quick", device="cpu", dataset="market1501",
                                   max_train_pids=50))
    assert own.max_train_pids == 50


def test_small_scale_runs_wiring(monkeypatch, small_root):
    trained, evaluated = [], []
    monkeypatch.setattr(mr, "train_stage1", lambda cfg, ds, arch, **kw: trained.append(
        (ds.name, arch, kw["evaluate_model"])) or SimpleNamespace(arch=arch))
    monkeypatch.setattr(mr, "evaluate_run", lambda cfg, run, ds, protocol: evaluated.append(
        (ds.name, run.arch, protocol)) or protocol)
    sets = {n: mr.load_small_set(n, small_root) for n in ("viper", "cuhk03", "shinpuhkan")}
    joint, runs, res = mr.small_scale_runs(None, sets, ("MaskReID", "DGD"))
    assert trained == [(joint.name, "MaskReID", False), (joint.name, "DGD", False)]
    assert res == {"viper": {"MaskReID": "market1501", "DGD": "market1501"},
                   "cuhk03": {"MaskReID": "cuhk03", "DGD": "cuhk03"}}     # no shinpuhkan test
    with pytest.raises(FileNotFoundError, match="parser"):
        mr.attach_small_set_masks(sets, None)

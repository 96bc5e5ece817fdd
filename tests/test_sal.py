"""Tests for reidnb.papers.sal (notebook 03_sal: 004 Tables 1-4, Fig. 3) and the SAL plot
in reidnb.viz. No re-ID training: the two-stage driver is checked with a recording stand-in
for train_and_evaluate; losses, stages, tables and the attention statistics with hand-worked
values; the CIFAR-100 run on an in-memory stand-in (trained, then loaded from the store)."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import sys

import numpy as np
import pytest
import torch
from PIL import Image

from reidnb.core.results import RESULT_COLUMNS, load_published
from reidnb.data.datasets import Record, ReIDDataset, subset_test
from reidnb.data.samplers import RandomIdentitySampler
from reidnb.papers import sal as sr
from reidnb.papers.sal import experiments as ex

make_config = sr.Config.make

torch.set_num_threads(min(2, torch.get_num_threads()))


# --------------------------------------------------------------------------- settings
def test_table1_variants_are_the_published_rows():
    pub = load_published("sal", "Table 1")
    assert set(pub["variant"]) == {s.variant for s in sr.TABLE1.values()}
    for s in sr.TABLE1.values():
        assert set(pub.loc[pub["variant"] == s.variant, "metric"]) == {"rank1", "mAP"}


def test_components_spell_the_variant_except_the_unknown_setting():
    for s in sr.TABLE1.values():
        if s.id == "4":
            assert s.uncertain.startswith("UNCERTAIN")
            assert s.model_kw == {"dilation": False, "multi_level": True, "stage6": True}
            continue
        assert s.variant == f"setting {s.id}: {s.components}"
        assert not s.uncertain
    assert sr.TABLE1["1"].model_kw == {"dilation": False, "multi_level": False, "stage6": False}
    assert sr.TABLE1["8"].model_kw == {"dilation": True, "multi_level": True, "stage6": True}


@pytest.mark.parametrize("sid,stage1,stage2", [
    ("1", {"ce"}, {"ce"}),
    ("2", {"quad"}, {"quad"}),
    ("3", {"ce"}, {"ce", "quad"}),
    ("3(T)", {"ce"}, {"ce", "trip"}),
    ("4", {"ce", "sac"}, {"ce", "quad", "sac"}),
    ("5", {"ce"}, {"ce", "quad"}),
    ("6", {"ce", "sac"}, {"ce", "sac"}),
    ("7", {"quad", "sac"}, {"quad", "sac"}),
    ("8", {"ce", "sac"}, {"ce", "quad", "sac"}),
])
def test_loss_terms_per_stage(sid, stage1, stage2):
    s = sr.TABLE1[sid]
    assert set(sr.loss_terms(s, 1)) == stage1
    assert set(sr.loss_terms(s, 2)) == stage2
    assert all(w == 1.0 for w, _ in sr.loss_terms(s, 2).values())  # Eq. 6: weights 1
    with pytest.raises(ValueError, match="stage"):
        sr.loss_terms(s, 3)


def test_metric_terms_use_the_papers_margins():
    # 1-D embeddings x = [0, 2, 3, 4], ids [0, 0, 1, 2]; valid anchors 0 and 1.
    # anchor 0: d_ij = 2, nearest negative k = x3 (d 3), h = x4 (d_kh 1):
    #   quad = max(0, 2-3+0.5) + max(0, 2-1+0.2) = 0 + 1.2; triplet(0.5) = 0
    # anchor 1: d_ij = 2, k = x3 (d 1), h = x4 (d_kh 1): quad = 1.5 + 1.2 = 2.7;
    #   triplet(0.5) = 1.5  ->  means: quad 1.95, triplet 0.75 (0.65 with BoT's 0.3)
    out = {"embeddings": torch.tensor([[0.0], [2.0], [3.0], [4.0]])}
    batch = {"pid": torch.tensor([0, 0, 1, 2])}
    _, quad = sr.loss_terms(sr.TABLE1["3"], 2)["quad"]
    _, trip = sr.loss_terms(sr.TABLE1["3(T)"], 2)["trip"]
    assert float(quad(out, batch)) == pytest.approx(1.95)
    assert float(trip(out, batch)) == pytest.approx(0.75)


def test_stage1_sharing_groups():
    tags = {sid: sr.stage1_tag(s) for sid, s in sr.TABLE1.items()}
    assert tags["1"] == tags["3"] == tags["3(T)"] == "stage1-plain-ce"
    assert tags["6"] == tags["8"] == "stage1-dil-multi-ce+sac"
    assert tags["5"] == "stage1-dil-multi-ce"
    assert len({tags[i] for i in ("1", "2", "4", "5", "7", "8")}) == 6


def test_select_settings_keeps_table_order_and_refuses_unknown():
    assert [s.id for s in sr.select_settings("3(T), 1")] == ["1", "3(T)"]
    assert [s.id for s in sr.select_settings(None)] == list(sr.TABLE1)
    assert [s.id for s in sr.select_settings(["8", "5"])] == ["5", "8"]
    with pytest.raises(ValueError, match="3T"):
        sr.select_settings("1,3T")


def _train_records(n_ids=20, per_id=8):
    """Training records (paths never opened): ``n_ids`` identities x ``per_id`` images."""
    return [Record(f"t{p}_{i}.jpg", p, i % 2) for p in range(n_ids) for i in range(per_id)]


def test_milestones_and_paper_stages(tmp_path):
    from reidnb.core.stages import step_milestones

    assert step_milestones(150, 50) == (50, 100)
    assert step_milestones(100, 50) == (50,)
    assert step_milestones(100, 100) == ()
    assert step_milestones(3, 0) == ()
    ds = dataclasses.replace(_dataset(tmp_path), train=_train_records(), num_train_pids=20)
    s1, s2 = sr.stages(make_config("paper"), ds, sr.TABLE1["8"])
    assert (s1.epochs, s1.lr, s1.milestones, s1.batch_size, s1.sampler) == \
        (150, 0.1, (50, 100), 128, "random")
    assert (s2.epochs, s2.lr, s2.milestones, s2.batch_size, s2.num_instances, s2.sampler) == \
        (100, 1e-4, (50,), 72, 4, "pk")
    # 160 images: 1 random batch of 128 per epoch; P x K epoch = (20 ids x 2 chunks) // 18
    # = 2 batches (not 160 // 72): the milestones are epochs of that loader
    assert (s1.iters_per_epoch, s1.iters, s1.milestone_iters) == (1, 150, [50, 100])
    assert (s2.iters_per_epoch, s2.iters, s2.milestone_iters) == (2, 200, [100])
    assert s2.iters_per_epoch * 72 == len(RandomIdentitySampler([r.pid for r in ds.train], 72, 4))
    s1q, _ = sr.stages(make_config("paper"), ds, sr.TABLE1["2"])   # no softmax: P x K
    assert (s1q.sampler, s1q.batch_size, s1q.iters_per_epoch) == ("pk", 72, 2)
    smoke = sr.stages(make_config("smoke"), ds, sr.TABLE1["8"])     # max_iters 4 caps both
    assert [(s.iters, s.epochs, s.lr, s.milestones) for s in smoke] == \
        [(4, 1, 0.01, ()), (4, 1, 0.01, ())]


def test_run_note_lists_every_departure_from_the_paper(tmp_path):
    ds = _dataset(tmp_path, kind="real")
    paper = make_config("paper", device="cpu")
    assert sr.run_note(paper, ds) == "" and paper.deviations() == []
    quick = make_config("quick", device="cpu")
    sub = subset_test(_dataset(tmp_path), 2)
    out = sr.run_note(quick, sub).split("; ")
    assert "backbone='resnet18' (paper: 'resnet50')" in out
    assert "settings='1,3,3(T),5,8' (paper: 'all')" in out
    assert "stage2_lr=0.001 (paper: 0.0001)" in out and "stage2_p=8 (paper: 18)" in out
    assert "stage2_step=0 (paper: 50)" in out
    assert not any(o.startswith(("cifar_", "dataset=", "attention_images")) for o in out)
    assert out[-1].startswith("test subset: 2 of 4")
    reasons = {d.name: d.reason for d in quick.deviations()}
    assert "diverge" in reasons["stage1_lr"] and "8.8 min" in reasons["synthetic_max_train_pids"]
    assert all(reasons.values())                            # every deviation has its reason


# --------------------------------------------------------------------------- driver
def _fake_run(name, rank1=50.0, mAP=40.0, rr=None, seconds=10.0, epochs=1):
    results = {"single-query": None}
    if rr is not None:
        results["single-query+re-rank"] = None
    metrics = {"single-query": dict(rank1=rank1, mAP=mAP, rank5=0, rank10=0, mINP=0),
               "single-query+re-rank": dict(rank1=(rr or (0, 0))[0], mAP=(rr or (0, 0))[1],
                                            rank5=0, rank10=0, mINP=0)}

    def get(setting="single-query"):      # Run.metrics: KeyError when not evaluated
        if setting not in results:
            raise KeyError(setting)
        return metrics[setting]
    return SimpleNamespace(name=name, train_seconds=seconds, seconds=seconds + 1,
                           eval_seconds=1.0, epochs=epochs, key=name,
                           result=SimpleNamespace(results=results), metrics=get)


def test_run_table1_two_stages_and_shared_stage1(monkeypatch, tmp_path):
    calls = []

    def fake_train(cfg, ds, *, name, stage, **kw):
        calls.append(dict(name=name, stage=stage, sampler=stage.sampler,
                          batch_size=stage.batch_size, num_instances=stage.num_instances,
                          lr=stage.lr, epochs=stage.epochs, milestones=stage.milestones, **kw))
        return _fake_run(name)

    monkeypatch.setattr(ex, "train_and_evaluate", fake_train)
    cfg = make_config("paper", device="cpu")
    ds = dataclasses.replace(_dataset(tmp_path), train=_train_records(), num_train_pids=20)
    runs = sr.run_table1(cfg, ds, sr.select_settings("1,2,3,3(T),8"), verbose=False)
    names = [c["name"] for c in calls]
    assert names == ["stage1-plain-ce", "setting 1", "stage1-plain-quad", "setting 2",
                     "setting 3", "setting 3(T)", "stage1-dil-multi-ce+sac", "setting 8"]
    by = {c["name"]: c for c in calls}
    s1 = by["stage1-plain-ce"]
    assert (s1["sampler"], s1["batch_size"], s1["lr"], s1["epochs"], s1["milestones"],
            s1["evaluate_model"]) == ("random", 128, 0.1, 150, (50, 100), False)
    assert by["stage1-plain-quad"]["sampler"] == "pk"           # no softmax: P x K
    for sid in ("1", "2", "3", "3(T)", "8"):
        c = by[f"setting {sid}"]
        assert (c["sampler"], c["batch_size"], c["num_instances"], c["lr"], c["epochs"],
                c["milestones"]) == ("pk", 72, 4, 1e-4, 100, (50,))
        assert c["init"] is runs[sid].stage1
        assert c["rerank"] is (sid == "8")
        assert c["model_kw"] == dict(sr.TABLE1[sid].model_kw, pretrained=False)
    assert runs["3"].stage1 is runs["1"].stage1 and runs["3"].stage1_reused
    assert not runs["1"].stage1_reused
    assert runs["8"].seconds == 10.0 + 11.0 and runs["8"].epochs == 2


def _stub_setting_run(sid, rank1, mAP, rr=None):
    return sr.SettingRun(sr.TABLE1[sid], _fake_run("stage1"), _fake_run(sid, rank1, mAP, rr))


def test_tables_directions_and_rows():
    runs = {"1": _stub_setting_run("1", 60.0, 40.0), "3": _stub_setting_run("3", 70.0, 45.0),
            "3(T)": _stub_setting_run("3(T)", 72.0, 44.0),
            "5": _stub_setting_run("5", 80.0, 50.0),
            "8": _stub_setting_run("8", 78.0, 55.0, rr=(79.0, 66.0))}
    t1 = sr.table1_frame(runs)
    assert list(t1["setting"]) == ["1", "3", "3(T)", "5", "8"]
    assert t1.loc[t1.setting == "8", "paper_mAP"].item() == 81.6
    d = sr.directions_frame(runs).set_index(["comparison", "metric"])
    # paper: setting 8 vs 5 mAP 81.6 - 78.4 = +3.2; measured 55 - 50 = +5 -> agrees
    assert d.loc[("SAC vs no SAC", "mAP"), "paper_delta"] == pytest.approx(3.2)
    assert d.loc[("SAC vs no SAC", "mAP"), "measured_delta"] == pytest.approx(5.0)
    assert d.loc[("SAC vs no SAC", "mAP"), "agrees"]
    # rank-1: paper +2.3, measured -2 -> disagrees; quadruplet vs triplet rank-1 +3.0 vs -2
    assert not d.loc[("SAC vs no SAC", "rank1"), "agrees"]
    assert d.loc[("quadruplet vs triplet", "rank1"), "paper_delta"] == pytest.approx(3.0)
    assert ("joint vs quadruplet only", "mAP") not in d.index  # setting 2 not measured

    cfg = make_config("smoke", device="cpu")
    rows = sr.reid_rows(cfg, runs)
    assert all(list(r) == list(RESULT_COLUMNS) for r in rows)
    assert [r["variant"] for r in rows if r["table"] == "Table 1"] == \
        [sr.TABLE1[s].variant for s in runs for _ in ("rank1", "mAP")]
    assert {r["protocol"] for r in rows} == {"single-query"}
    t2 = [(r["method"], r["reranking"], r["metric"], r["value"]) for r in rows
          if r["table"] == "Table 2"]
    assert t2 == [("Ours", 0, "rank1", 78.0), ("Ours", 0, "mAP", 55.0),
                  ("Ours+re-rank", 1, "rank1", 79.0), ("Ours+re-rank", 1, "mAP", 66.0)]
    assert {r["dataset_kind"] for r in rows} == {"synthetic"}
    assert {r["dataset"] for r in rows} == {"Market-1501"}
    assert sr.full_model_table(dataclasses.replace(cfg, dataset="dukemtmcreid")) == \
        ("Table 3", "DukeMTMC-reID", "")
    assert sr.full_model_table(dataclasses.replace(cfg, dataset="cuhk03np-labeled")) is None
    # DukeMTMC-reID: Table 1 rows under that dataset (the paper printed none), the full
    # model in Table 3 (protocol ""), no Table 2 rows
    duke = sr.reid_rows(dataclasses.replace(cfg, dataset="dukemtmcreid"), runs)
    assert {(r["table"], r["dataset"], r["protocol"]) for r in duke} == \
        {("Table 1", "DukeMTMC-reID", "single-query"), ("Table 3", "DukeMTMC-reID", "")}
    assert len(duke) == len(rows)
    cuhk = sr.reid_rows(dataclasses.replace(cfg, dataset="cuhk03np-labeled"), runs)
    assert {r["table"] for r in cuhk} == {"Table 1"}


# --------------------------------------------------------------------------- data
def _write_img(path: Path, colour) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 32), colour).save(path)
    return str(path)


def _dataset(tmp_path, kind="synthetic", n_ids=4):
    q = [Record(_write_img(tmp_path / f"q{p}_{c}.png", (10 * p, 0, 0)), p, c)
         for p in range(1, n_ids + 1) for c in (0, 1)]
    g = [Record(str(tmp_path / f"g{p}.png"), p, 2) for p in range(1, n_ids + 1)]
    g += [Record(str(tmp_path / f"d{i}.png"), 0, 3) for i in range(4)]
    g += [Record(str(tmp_path / f"j{i}.png"), -1, 3) for i in range(2)]
    mq = {i: [r, r] for i, r in enumerate(q)}
    return ReIDDataset(name="synthetic" if kind == "synthetic" else "market1501",
                       root=tmp_path, kind=kind, train=[], query=q, gallery=g,
                       num_train_pids=0, num_train_cams=0, multi_query=mq)


def test_subset_test_keeps_whole_identities_and_reindexes_multi_query(tmp_path):
    ds = _dataset(tmp_path)
    sub = subset_test(ds, 2, seed=0)
    kept = {r.pid for r in sub.query}
    assert len(kept) == 2 and len(sub.query) == 4
    assert {r.pid for r in sub.gallery if r.pid > 0} == kept
    # half the identities -> every 2nd of the 6 distractor/junk images
    assert sum(r.pid <= 0 for r in sub.gallery) == 3
    assert sorted(sub.multi_query) == [0, 1, 2, 3]
    assert all(sub.multi_query[i][0] is sub.query[i] for i in range(4))
    assert "test subset" in sub.notes[-1]
    assert subset_test(ds, None) is ds and subset_test(ds, 10) is ds
    with pytest.raises(ValueError, match="real dataset"):
        subset_test(_dataset(tmp_path, kind="real"), 2)


def test_load_sal_data_applies_the_profile_reductions(tmp_path, monkeypatch):
    import reidnb.papers.common as ex

    real = _dataset(tmp_path, kind="real")
    real = dataclasses.replace(real, train=[Record(f"t{p}_{i}.jpg", p, 0) for p in range(10)
                                            for i in range(2)], num_train_pids=10)
    monkeypatch.setattr(ex, "load_data", lambda cfg, verbose=True: real)
    cfg = make_config("quick", device="cpu", dataset="market1501",
                      real_max_train_pids=3)
    ds = sr.load_sal_data(cfg, verbose=False)
    assert ds.num_train_pids == 3 and len(ds.train) == 6
    assert len(ds.query) == len(real.query)                 # real test split untouched
    cfg = make_config("quick", device="cpu", dataset="market1501",
                      real_max_train_pids=3, max_train_pids=5)
    assert sr.load_sal_data(cfg, verbose=False) is real     # explicit max_train_pids wins
    syn = _dataset(tmp_path)
    monkeypatch.setattr(ex, "load_data", lambda cfg, verbose=True: syn)
    syn = dataclasses.replace(syn, train=real.train, num_train_pids=10)
    cfg = make_config("quick", device="cpu", real_max_train_pids=3,
                      synthetic_max_train_pids=None)
    ds = sr.load_sal_data(cfg, verbose=False)
    assert ds.train == syn.train and ds.query == syn.query  # test subset: load_data's job
    cfg = make_config("quick", device="cpu", real_max_train_pids=3,
                      synthetic_max_train_pids=4)
    assert sr.load_sal_data(cfg, verbose=False).num_train_pids == 4


# --------------------------------------------------------------------------- Fig. 3
class _FixedAttention(torch.nn.Module):
    """Stand-in model with 1x3 attention maps a4 = [3,0,4]/5, a5 = [0,1,0], a6 = [1,0,0]."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, return_attention=False):
        assert return_attention and not self.training
        n = x.shape[0]
        maps = ([0.6, 0.0, 0.8], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0])
        return tuple(torch.tensor([[m]]).repeat(n, 1, 1) for m in maps)


def test_attention_agreement_hand_worked(tmp_path):
    ds = _dataset(tmp_path)
    cfg = make_config("smoke", device="cpu")
    out = sr.attention_agreement(_FixedAttention(), cfg, ds, batch_size=3)
    # cos(a4,a6) = 0.6, cos(a5,a6) = 0; Eq. 2 = ||a6-a5||^2 + ||a6-a4||^2 = 2 + 0.8 = 2.8
    # centred: a6 -> [2,-1,-1]/3, a5 -> [-1,2,-1]/3: corr = (-2-2+1)/6 = -0.5;
    # a4 -> [1.4/3 + 0.6 - 0.6 ...]: a4 - mean(a4) = [0.6-1.4/3, -1.4/3, 0.8-1.4/3]
    c4 = np.array([0.6, 0.0, 0.8]) - 1.4 / 3
    c6 = np.array([2.0, -1.0, -1.0]) / 3
    corr46 = float(c4 @ c6 / np.linalg.norm(c4) / np.linalg.norm(c6))
    assert out == pytest.approx({"cos_s4_s6": 0.6, "cos_s5_s6": 0.0, "corr_s4_s6": corr46,
                                 "corr_s5_s6": -0.5, "sac": 2.8})
    assert 4 - 2 * 0.6 - 2 * 0.0 == pytest.approx(2.8)   # Eq. 2 identity with unit maps


def test_sample_query_images_and_real_attention_maps(tmp_path):
    from reidnb.models import build_model

    ds = _dataset(tmp_path)
    cfg = make_config("smoke", device="cpu")     # 64 x 32
    imgs, recs = sr.sample_query_images(cfg, ds, n=3)
    assert imgs.shape == (3, 3, 64, 32) and len({r.pid for r in recs}) == 3
    with pytest.raises(ValueError, match="fewer than n=9"):
        sr.sample_query_images(cfg, ds, n=9)
    torch.manual_seed(0)
    model = build_model("sal", 5, backbone="resnet18", pretrained=False, feat_dim=16).train()
    maps = sr.attention_maps(model, imgs)
    assert model.training                                   # mode restored
    assert [m.shape for m in maps] == [(3, 8, 4)] * 3       # dilated: 1/8 of 64 x 32
    for m in maps:
        np.testing.assert_allclose(np.linalg.norm(m.reshape(3, -1), axis=1), 1.0, rtol=1e-5)


def test_plot_attention_overlays_layout_and_errors():
    import matplotlib
    matplotlib.use("Agg")
    from reidnb.viz import plot_attention_overlays

    imgs = torch.zeros(2, 3, 16, 8)
    maps = tuple(torch.rand(2, 4, 2) for _ in range(3))
    fig = plot_attention_overlays(imgs, {"without SAC": maps, "with SAC": maps},
                                  titles=["id 1", "id 2"])
    assert len(fig.axes) == 2 * (1 + 3 * 2)
    assert "(e) stage4" in fig.axes[4].get_title()          # Fig. 3 (e): with SAC, stage4
    with pytest.raises(ValueError, match="N=2"):
        plot_attention_overlays(imgs, {"a": (torch.rand(3, 4, 2),)})
    with pytest.raises(ValueError, match="empty"):
        plot_attention_overlays(imgs, {})
    import matplotlib.pyplot as plt
    plt.close("all")


# --------------------------------------------------------------------------- Table 4
class _Logits(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.classifier = torch.nn.Identity()

    def forward(self, x):
        return x


def test_classification_error_hand_worked():
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.0, 0.0, 1.0], [5.0, 0.0, 1.0]])
    loader = [{"img": logits[:2], "pid": torch.tensor([0, 1])},
              {"img": logits[2:], "pid": torch.tensor([2, 2])}]   # last one wrong
    assert sr.classification_error(_Logits(), loader, "cpu") == pytest.approx(25.0)
    with pytest.raises(ValueError, match="no images"):
        sr.classification_error(_Logits(), [], "cpu")


def test_run_cifar100_refuses_an_unknown_method(tmp_path):
    # locating / never downloading CIFAR-100: tests/test_cifar100.py (reidnb.data)
    cfg = make_config("quick", device="cpu", data_root=str(tmp_path))
    with pytest.raises(KeyError, match="ResNet50"):
        sr.run_cifar100(cfg, tmp_path, "ResNet18 (Soft)")


def test_table4_rows_are_real_cifar_rows_whatever_the_reid_dataset():
    cfg = make_config("quick", device="cpu")      # synthetic re-ID run
    res = [sr.CifarRun(method="ResNet50 (Soft+DIL+SAC)", variant="ResNet50, softmax + DIL + SAC",
                       backbone="resnet18", error_rate=61.5, train_seconds=29.0,
                       eval_seconds=1.0, epochs=1, n_train=5000, n_test=2000)]
    rows = sr.table4_rows(cfg, res)
    assert len(rows) == 1
    r = rows[0]
    assert (r["dataset"], r["dataset_kind"], r["metric"], r["value"], r["backbone"],
            r["image_size"]) == ("CIFAR-100", "real", "error_rate", 61.5, "resnet18", "32x32")
    assert "5000 of 50000" in r["note"] and r["seconds"] == 30.0 and r["protocol"] == ""
    assert r["method"] == "ResNet50 (Soft+DIL+SAC)"
    frame = sr.table4_frame(res)
    assert frame["paper_error_rate"].tolist() == [21.75]


class _FakeCIFAR(torch.utils.data.Dataset):
    """In-memory stand-in for torchvision's CIFAR100: 32x32 PIL images, 100 classes."""

    def __init__(self, root, train=True, download=False):
        assert not download
        rng = np.random.default_rng(0 if train else 1)
        self.images = [Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8))
                       for _ in range(80)]
        self.labels = [i % 100 for i in range(80)]

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i], self.labels[i]


def test_run_cifar100_trains_and_tests_on_the_subsets(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules["reidnb.papers.sal.cifar"], "open_cifar100",
                        lambda root, train=True: _FakeCIFAR(root, train))
    cfg = make_config("smoke", device="cpu", output_dir=str(tmp_path),
                      cifar_train_subset=32, cifar_test_subset=24, max_iters=2)
    out = sr.run_cifar100(cfg, tmp_path, "ResNet50 (Soft+DIL+SAC)", verbose=False)
    assert (out.backbone, out.n_train, out.n_test) == ("resnet18", 32, 24)
    assert 0.0 <= out.error_rate <= 100.0
    # 24 test images: the error rate is a multiple of 100/24
    assert (out.error_rate * 24 / 100) == pytest.approx(round(out.error_rate * 24 / 100))
    ckpts = list((tmp_path / "checkpoints" / "03_sal").glob("cifar-*/last.pt"))
    assert len(ckpts) == 1
    rows = sr.table4_rows(cfg, [out])
    assert rows[0]["variant"] == "ResNet50, softmax + DIL + SAC"
    # the run store: history, timing, saved test predictions, finished marker
    folder = ckpts[0].parent
    assert out.source == "trained" and out.folder == folder
    assert {"history.csv", "timing.json", "finished.json"} <= {p.name for p in folder.iterdir()}
    assert len(list(folder.glob("eval-*.npz"))) == 1
    assert sr.cifar_stage(cfg, 32).iters == 2                 # 32 // 16 = 2 batches, cap 2
    again = sr.run_cifar100(cfg, tmp_path, "ResNet50 (Soft+DIL+SAC)", verbose=False)
    assert again.source == "cache" and again.error_rate == out.error_rate
    assert again.train_seconds == pytest.approx(out.train_seconds)
    assert again.eval_seconds == pytest.approx(out.eval_seconds)


def test_table4_rows_share_one_head_and_differ_only_in_dil_and_sac():
    # every Table 4 network classifies from GAP(stage5) -> FC -> BN -> classifier; the
    # SAC row adds the dilated stage4/5 (no parameters) and stage6, which only feeds att_s6
    from reidnb.papers.sal.cifar import HEAD, cifar_model

    assert HEAD == "stage5"
    nets = {m: cifar_model(m, "resnet18") for m in ("ResNet50 (Soft)", "ResNet50 (Soft+DIL+SAC)")}
    soft, sac = nets["ResNet50 (Soft)"], nets["ResNet50 (Soft+DIL+SAC)"]
    shapes = {m: {k: tuple(v.shape) for k, v in n.state_dict().items()} for m, n in nets.items()}
    head = {k: v for k, v in shapes["ResNet50 (Soft)"].items() if not k.startswith("backbone.")}
    assert head == {k: v for k, v in shapes["ResNet50 (Soft+DIL+SAC)"].items()
                    if not k.startswith(("backbone.", "stage6."))}
    assert head["fc.weight"] == (1024, 512) and head["classifier.weight"] == (100, 1024)
    extra = set(shapes["ResNet50 (Soft+DIL+SAC)"]) - set(shapes["ResNet50 (Soft)"])
    assert extra and all(k.startswith("stage6.") for k in extra)   # the only added module
    assert (soft.dilation, sac.dilation, soft.stage6, sac.stage6 is not None) == (False, True, None, True)
    # the feature is stage5's output in both: GAP of the feature map == GAP of stage5
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for net in nets.values():
            net.eval()
            f4, f5, f6 = net.stages(x)
            assert torch.equal(net(x, return_featuremaps=True), f5)
        sac.train()
        out = sac(x)
        assert out["attention"] is not None and len(out["attention"]) == 3   # att_s6 for SAC
    assert soft.train()(x)["attention"] is None


def test_sal_describe_recipe_states_augmentation_and_the_invented_cifar_schedule():
    cfg = sr.Config.make("paper")
    lines = ex.describe_recipe(cfg)
    assert lines[0] == ("augmentation (re-ID train loader): horizontal flip p=0.5; zero-pad 10 px "
                        "+ random crop back to the input size; no random erasing")
    assert "schedule invented here" in lines[1] and "30 epoch(s), SGD lr 0.01 x0.1 every 10" in lines[1]
    assert "schedule invented here" in " ".join(sr.cifar_stage(cfg, 50000).notes)
    odd = ex.describe_recipe(dataclasses.replace(cfg, pad=0))
    assert "no pad + crop [paper profile: zero-pad 10 px" in odd[0]

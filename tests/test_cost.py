"""Cost before training (issue 13): planned trainings per paper, images seen, hour estimates,
the throughput tables and the GPU readiness script (syntax and step list only)."""
from __future__ import annotations

import subprocess
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
from torch import nn

from reidnb.core import cost
from reidnb.papers import bcloss, magnifiernet, maskreid, sal

ROOT = Path(__file__).resolve().parents[1]


def market_like() -> SimpleNamespace:
    """12,936 train records of 751 identities, as Market-1501's train split: 169 identities
    with 18 images, 582 with 17 (169 * 18 + 582 * 17 = 12,936). Every identity gives
    4 chunks of K = 4, so the P x K sampler epoch holds 751 * 4 = 3004 chunks."""
    pids = [p for p in range(751) for _ in range(18 if p < 169 else 17)]
    assert len(pids) == 12936
    return SimpleNamespace(train=[SimpleNamespace(pid=p, camid=1, path="") for p in pids],
                           num_train_pids=751)


def cpu_table(**kw) -> pd.DataFrame:
    row = dict(device_kind="cpu", device_name="test cpu", backbone="resnet50", height=256,
               width=128, precision="fp32", batch_size=16, img_per_s=2.0, measured="2026-01-01",
               source="test", notes="")
    row.update(kw)
    return pd.DataFrame([row])


def images(rows) -> int:
    return sum(r["iterations"] * r["batch_size"] for r in rows)


# ------------------------------------------------------------------------ per paper
def test_magnifiernet_paper_stage1_on_market_sized_set():
    cfg = magnifiernet.Config.make("paper", device="cpu")
    # the whole of 002's plan (Table 2, Fig. 4, Fig. 5, + the SD control), whatever subset the
    # paper plan of the dataset picks
    plan = magnifiernet.make_plan(cfg, table2_rows=magnifiernet.TABLE2_ROWS, fig4=True,
                                  k_hats=[2, 4, 6], sd_control=True, rerank=True)
    rows = magnifiernet.planned_trainings(cfg, market_like(), plan)
    # sampler epoch: (3004 chunks // P=16) = 187 batches of 64 -> 11,968 images, 187 iters
    s1 = [r for r in rows if r["stage"].startswith("stage 1")]
    assert {r["iterations"] for r in s1} == {460 * 187} == {86020}
    assert s1[0]["batch_size"] == 64 and s1[0]["iterations"] * 64 == 5_505_280
    # every stage-1 network once: 5 Table 2 networks + AB + 5 more sweep points (k4 torso shared)
    assert len(s1) == 11 and len({r["variant"] for r in s1}) == 11
    s2 = [r for r in rows if r["stage"].startswith("stage 2")]
    assert [r["variant"] for r in s2] == [magnifiernet.FULL, magnifiernet.SD_CONTROL]
    assert {r["iterations"] for r in s2} == {40 * 187}
    assert (rows[0]["height"], rows[0]["width"], rows[0]["backbone"]) == (384, 192, "resnet50")


def test_magnifiernet_plan_subset_and_dry_run_cap():
    cfg = magnifiernet.Config.make("paper", device="cpu", max_iters=50, batch_size=16)
    plan = magnifiernet.make_plan(cfg, table2_rows=["G"], fig4=False, k_hats=[], rerank=True,
                                  sd_control=True)
    rows = magnifiernet.planned_trainings(cfg, market_like(), plan)
    # "G" only, but stage 2 (Table 1 with re-ranking) still needs G+M+SAB+SFB, + the control
    assert [r["variant"] for r in rows] == ["G", "G+M+SAB+SFB", magnifiernet.FULL,
                                            magnifiernet.SD_CONTROL]
    assert images(rows) == 4 * 50 * 16


def test_bcloss_paper_runs_and_tau_reuse():
    cfg = bcloss.Config.make("paper", device="cpu", runs=2, taus=(1.0, 1.5))
    rows = bcloss.planned_trainings(cfg, 12936)
    # softmax x2, joint tau 1 x2 (shared with the sweep), tau 1.5 x2; 50,000 x 16 each
    assert [r["variant"] for r in rows] == ["softmax-seed0", "softmax-seed1", "joint-tau1-seed0",
                                            "joint-tau1-seed1", "joint-tau1.5-seed0",
                                            "joint-tau1.5-seed1"]
    assert images(rows) == 6 * 50000 * 16 == 4_800_000
    # a shorter sweep is not the main stage: both sweep margins are trained (808 iters/epoch)
    cfg = bcloss.Config.make("paper", device="cpu", runs=1, taus=(1.0, 1.5), sweep_epochs=3)
    rows = bcloss.planned_trainings(cfg, 12936)
    assert [r["iterations"] for r in rows] == [50000, 50000, 3 * (12936 // 16), 3 * 808]


def test_maskreid_paper_counts_shared_stage1_once():
    cfg = maskreid.Config.make("paper", device="cpu")
    rows = maskreid.planned_trainings(cfg, 12936)
    s1 = [r for r in rows if r["stage"].startswith("stage 1")]
    s2 = [r for r in rows if r["stage"].startswith("stage 2")]
    assert [r["variant"] for r in s1] == ["stage1-MaskReID", "stage1-DGD", "stage1-MaskReID-F",
                                          "stage1-MaskReID-M"]
    # 4 losses + the 003 ranking run + 25 + 10 grid cells less the 2 already trained
    assert len(s2) == 4 + 1 + 33 and len({r["variant"] for r in s2}) == 38
    assert images(rows) == 4 * 55000 * 64 + 38 * 20000 * 64 == 62_720_000
    assert (rows[0]["backbone"], rows[0]["height"], rows[0]["width"]) == ("dgd", 144, 56)


def test_sal_settings_share_stage1_and_cifar_rows():
    cfg = sal.Config.make("paper", device="cpu", settings="1,3,3(T)")
    rows = sal.planned_trainings(cfg, market_like(), cifar=False)
    assert [r["variant"] for r in rows] == ["stage1-plain-ce", "setting 1", "setting 3",
                                            "setting 3(T)"]
    # stage 1: 12,936 // 128 = 101 iters x 150 epochs; stage 2: P x K 18 x 4, 3004 // 18 = 166
    assert rows[0]["iterations"] == 101 * 150 and rows[0]["batch_size"] == 128
    assert {r["iterations"] for r in rows[1:]} == {166 * 100} and rows[1]["batch_size"] == 72
    full = sal.planned_trainings(cfg, market_like())
    cifar = full[4:]
    assert [r["backbone"] for r in cifar] == ["resnet50", "resnet50", "resnet101"]
    assert {(r["iterations"], r["batch_size"], r["height"]) for r in cifar} == {(50000 // 128 * 30, 128, 224)}


# ------------------------------------------------------------------------ estimates
def test_scaling_by_pixel_count_and_exact_row():
    table = cpu_table(device_kind="cuda", device_name="GPU", img_per_s=1000.0)
    plan = [dict(variant="v", stage="s", iterations=62500, batch_size=16, backbone="resnet50",
                 height=384, width=192)]
    frame = cost.cost_frame(plan, table)
    # 1,000,000 images at 1000 x (256*128)/(384*192) = 444.4 img/s -> 2250 s = 0.625 h
    assert frame["images seen"].iloc[0] == 1_000_000
    assert frame["est. h cuda GPU fp32"].iloc[0] == pytest.approx(0.625)
    assert any("scaled from the 256x128 row" in n for n in frame.attrs["notes"])
    exact = pd.concat([table, cpu_table(device_kind="cuda", device_name="GPU", height=384,
                                        width=192, img_per_s=500.0)])
    frame = cost.cost_frame(plan, exact)
    assert frame["est. h cuda GPU fp32"].iloc[0] == pytest.approx(1e6 / 500 / 3600)
    assert not frame.attrs["notes"]


def test_format_cost_no_gpu_row_message_and_totals():
    cfg = bcloss.Config.make("paper", device="cpu", runs=1, taus=(1.0,))
    text = bcloss.format_cost(cfg, 12936, table=cpu_table())
    assert cost.NO_GPU_ROW in text
    assert "TOTAL: 1,600,000 images seen" in text
    # 1.6M images at 2 img/s = 800,000 s = 222.2 h
    assert "TOTAL est. h cpu test cpu fp32: 222 h (9.3 d)" in text
    gpu = pd.concat([cpu_table(), cpu_table(device_kind="cuda", device_name="G", img_per_s=800.0)])
    text = bcloss.format_cost(cfg, 12936, table=gpu)
    assert cost.NO_GPU_ROW not in text and "TOTAL est. h cuda G fp32: 0.56 h" in text


def test_missing_backbone_row_is_na():
    plan = [dict(variant="v", stage="s", iterations=1, batch_size=1, backbone="dgd", height=144,
                 width=56)]
    frame = cost.cost_frame(plan, cpu_table())
    assert frame.iloc[0, -1] != frame.iloc[0, -1]          # NaN
    assert "no cpu row for dgd" in frame.attrs["notes"]
    with pytest.raises(ValueError, match="lacks"):
        cost.cost_frame([dict(variant="v")], cpu_table())


# ------------------------------------------------------------------------ tables
def test_shipped_table_is_measured_cpu_only():
    t = cost.read_throughput([cost.shipped_table_path()])
    assert len(t) >= 3 and set(t.device_kind) == {"cpu"}
    assert t.source.str.startswith("python benchmarks/train_throughput.py").all()
    assert t.notes.str.contains("load").all() and (t.img_per_s > 0).all()   # the machine state is stated
    assert {("resnet50", 256, 128), ("resnet50", 384, 192), ("dgd", 144, 56)} <= set(
        zip(t.backbone, t.height, t.width))


def test_user_table_append_and_read(tmp_path, monkeypatch):
    user = tmp_path / "tp.csv"
    monkeypatch.setenv("REIDNB_THROUGHPUT", str(user))
    assert cost.user_table_path() == user
    row = cpu_table(device_kind="cuda", device_name="H", img_per_s=900.0).iloc[0].to_dict()
    cost.append_throughput([row])
    cost.append_throughput([row])
    t = cost.read_throughput()
    assert (t.table == str(user)).sum() == 2 and (t.device_kind == "cuda").sum() == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("device_kind,img_per_s\ncpu,1\n")
    with pytest.raises(ValueError, match=r"bad\.csv.*missing columns"):
        cost.read_throughput([bad])
    bad.write_text(user.read_text().replace("900.0", "-1"))
    with pytest.raises(ValueError, match=r"img_per_s.*data row\(s\) \[1, 2\]"):
        cost.read_throughput([bad])


def test_num_train_images_and_stand_in():
    assert cost.num_train_images(7) == 7 and cost.num_train_images(market_like()) == 12936
    with pytest.raises(TypeError, match="number of training images"):
        cost.num_train_images("x")
    ds = cost.uniform_train_set(10, 4)
    assert len(ds.train) == 8 and ds.num_train_pids == 2


def test_measure_img_per_s_counts_steps():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5))
    r = cost.measure_img_per_s(net, 16, 8, 4, num_classes=5, iters=3, warmup=1)
    assert r["steps"] == 3 and r["img_per_s"] == pytest.approx(12 / r["seconds"])
    w0 = net[3].weight.detach().clone()
    cost.measure_img_per_s(net, 16, 8, 4, num_classes=5, iters=1, warmup=0)
    assert not torch.equal(w0, net[3].weight)               # it trains (SGD step)
    with pytest.raises(ValueError, match="precision"):
        cost.measure_img_per_s(net, 16, 8, 4, precision="fp16")


# ------------------------------------------------------------------------ gpu_check.sh
def test_gpu_check_script_syntax_and_steps():
    script = ROOT / "benchmarks" / "gpu_check.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    out = subprocess.run(["bash", str(script), "--list"], check=True, capture_output=True,
                         text=True).stdout
    assert "pytest -q -m gpu" in out
    assert "--backbone resnet50 --height 256 --width 128" in out and "--precision both" in out
    assert "--append user" in out
    assert "torchrun --standalone --nproc_per_node=1 benchmarks/ddp_smoke.py" in out
    assert out.count("--profile paper --dataset synthetic") == 4
    assert out.count("-p max_iters=50") == 4
    dry = subprocess.run(["bash", str(script), "--cpu-dry", "--list"], check=True,
                         capture_output=True, text=True).stdout
    assert "--device cpu" in dry and "--append user" not in dry
    bad = subprocess.run(["bash", str(script), "--nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown option --nope" in bad.stderr

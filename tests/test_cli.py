"""``python -m reidnb train | features`` (issue 14): variant list, parameter validation, a CLI
smoke run that the notebook's own call then loads (cache hit, nothing trained), feature
export evaluated by ``reidnb.evaluation``, ``reidnb.load_run``, the batch split over ranks,
and a 2-process gloo ``torchrun`` run equal to the 1-process run with the same global batch.
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import reidnb
from reidnb.__main__ import main
from reidnb.core.distributed import SplitBatchSampler
from reidnb.evaluation import FEATURE_KEYS, evaluate_feature_file
from reidnb.papers import bcloss, magnifiernet, maskreid, sal
from reidnb.papers.common import load_data

ROOT = Path(__file__).resolve().parents[1]


def test_list_names_every_variant_of_every_paper(capsys):
    assert main(["train", "--list"]) == 0
    out = capsys.readouterr().out
    lines = {ln[2:].split("  ")[0] for ln in out.splitlines() if ln.startswith("  ")}
    expected = (set(bcloss.VARIANTS) | {"joint-tau0.5", "joint-tau1", "joint-tau1.5"}
                | set(maskreid.VARIANTS) | set(sal.VARIANTS)
                | {f"cifar:{m}" for m in sal.CIFAR_METHODS}
                | set(magnifiernet.VARIANTS) | {magnifiernet.SD_CONTROL, "G+M+SAB+SFB|ab"}
                | {f"G+M+SAB+SFB|{s} k{k}" for s in magnifiernet.SAMPLINGS for k in (2, 6)})
    assert expected <= lines, sorted(expected - lines)
    # each variant names the published row it feeds
    assert re.search(r"\n  ranking-eccv-lam2-alpha0.15 +maskreid Table 2: MaskReID_rank", out)
    assert "bcloss (notebook 01_bcloss, 5 variants)" in out


@pytest.mark.parametrize("argv, needle", [
    (["train", "bcloss", "softmax", "--profile", "smoke", "-p", "bogus=1"], "unknown setting(s) ['bogus']"),
    (["train", "bcloss", "softmax", "--profile", "smoke", "-p", "seed=1.7"], "seed"),
    (["train", "bcloss", "nope", "--profile", "smoke"], "unknown variant 'nope'"),
    (["train", "nopaper", "x"], "unknown paper 'nopaper'"),
    (["train", "bcloss", "softmax", "--dataset", "mars"], "unknown dataset 'mars'"),
])
def test_bad_input_is_refused_before_training(argv, needle, capsys, tmp_path):
    assert main(argv + ["--output-dir", str(tmp_path)]) == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "checkpoints").exists()


def test_split_batch_sampler_gives_each_rank_its_slice():
    batches = [[0, 1, 2, 3, 4, 5, 6, 7], [8, 9, 10, 11, 12, 13, 14, 15]]
    s = SplitBatchSampler(batches, 2, num_instances=2)
    assert list(s) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15]]
    assert len(s) == 4 and list(SplitBatchSampler(batches, 1)) == batches
    with pytest.raises(ValueError, match="not divisible by the world size 3"):
        list(SplitBatchSampler(batches, 3))
    with pytest.raises(ValueError, match="not whole identities"):
        list(SplitBatchSampler(batches, 2, num_instances=8))


def test_cli_run_is_a_cache_hit_for_the_notebook_then_exports_features(tmp_path, capsys):
    out = str(tmp_path)
    assert main(["train", "bcloss", "softmax", "--profile", "smoke", "--output-dir", out,
                 "--device", "cpu"]) == 0
    log = capsys.readouterr().out
    assert "[softmax-seed0] trained 1 epochs (4 iterations" in log
    # the notebook's cells 2, 4 and 6 (01_bcloss): same config, data, stage and call
    cfg = bcloss.Config.make("smoke", output_dir=out, device="cpu")
    ds = load_data(cfg, verbose=False)
    runs = bcloss.train_variant(cfg, ds, "softmax", runs=cfg.runs,
                                stage=bcloss.main_stage(cfg, len(ds.train)))
    log = capsys.readouterr().out
    assert [r.source for r in runs] == ["cache"] and runs[0].eval_cached
    assert "loaded finished from the run store; trained by 'python -m reidnb train bcloss" in log
    assert "trained 1 epochs" not in log                       # nothing trained

    # reidnb.load_run: the same run and saved evaluation; an untrained variant is refused
    loaded = reidnb.load_run("bcloss", "softmax", output_dir=out, profile="smoke", device="cpu")
    assert loaded[0].folder == runs[0].folder
    assert loaded[0].metrics() == runs[0].metrics()
    with pytest.raises(FileNotFoundError, match="not a finished run"):
        reidnb.load_run("bcloss", "joint", output_dir=out, profile="smoke", device="cpu")

    # features export -> npz evaluated by reidnb.evaluation = the run's saved evaluation
    npz = tmp_path / "feats.npz"
    assert main(["features", str(runs[0].folder), "--dataset", "synthetic",
                 "--synthetic-size", "smoke", "--device", "cpu", "--out", str(npz)]) == 0
    with np.load(npz) as z:
        assert set(FEATURE_KEYS) <= set(z.files)
        assert z["qf"].shape == (len(ds.query), 512) and z["gf"].shape == (len(ds.gallery), 512)
        assert list(z["g_pids"]) == [r.pid for r in ds.gallery]
        assert list(z["q_paths"]) == [r.path for r in ds.query]
    saved = runs[0].result.results["single-query"]
    mine = evaluate_feature_file(npz).results["single-query"]
    assert mine.mAP == pytest.approx(saved.mAP, abs=1e-6)
    assert np.allclose(mine.cmc, saved.cmc)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_processes_match_one_with_the_same_global_batch(tmp_path):
    """2 ranks x 4 images vs 1 process x 8 (P x K = 4 x 2), 18 SGD steps, no BN / dropout /
    augmentation: the same weights up to float rounding (DDP averages the two half-batch
    gradients in another summation order): max |difference| < 1e-5, against a change
    from the initial weights of > 1e-2."""
    worker = str(ROOT / "tests" / "ddp_worker.py")
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    one, two = tmp_path / "one.pt", tmp_path / "two.pt"
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                          f"--master_port={_free_port()}", worker, str(two)], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        import ddp_worker
    finally:
        sys.path.pop(0)
    ddp_worker.main(str(one))                    # 1 process, in this one (no WORLD_SIZE)
    a, b = torch.load(one, weights_only=True), torch.load(two, weights_only=True)
    assert (a["world_size"], b["world_size"]) == (1, 2)
    assert (a["per_rank_batch"], b["per_rank_batch"]) == (8, 4)
    assert a["iterations"] == b["iterations"] == 18
    diff = max((a["model"][k] - b["model"][k]).abs().max().item() for k in a["model"])
    assert diff < 1e-5
    torch.manual_seed(0)
    init = ddp_worker.Net().state_dict()
    moved = max((a["model"][k] - init[k]).abs().max().item() for k in init)
    assert moved > 1e-2


def test_torchrun_cli_run_is_written_once_by_rank0_and_loaded_by_the_notebook(tmp_path):
    """``torchrun --nproc_per_node=2 -m reidnb train bcloss softmax --profile smoke``: the
    paper's batch of 16 split 8 + 8, rank 0 alone writes the run (one history with the 4
    iterations, one evaluation, finished.json naming 2 processes), the notebook's call
    loads it."""
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                          f"--master_port={_free_port()}", "-m", "reidnb", "train", "bcloss",
                          "softmax", "--profile", "smoke", "--output-dir", str(tmp_path),
                          "--device", "cpu"], env=env, cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "global batch = per-rank batch x world size = 8 x 2 = 16" in res.stdout
    assert res.stdout.count("[softmax-seed0] trained 1 epochs (4 iterations") == 1
    (folder,) = (tmp_path / "checkpoints" / "01_bcloss").iterdir()
    record = json.loads((folder / "finished.json").read_text())
    assert record["origin"]["world_size"] == 2 and record["iterations"] == 4
    assert len(list(folder.glob("eval-*.npz"))) == 1
    assert len(pd.read_csv(folder / "history.csv")) == 4

    cfg = bcloss.Config.make("smoke", output_dir=str(tmp_path), device="cpu")
    ds = load_data(cfg, verbose=False)
    (run,) = bcloss.train_variant(cfg, ds, "softmax", stage=bcloss.main_stage(cfg, len(ds.train)),
                                  verbose=False)
    assert run.source == "cache" and run.eval_cached and run.folder == folder

"""Run store (RunDir), generic published rows (Cell/published_rows), Trainer callbacks."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from reidnb.core.callbacks import Callback, HistoryCSV, TensorBoardLogger
from reidnb.core.config import RunConfig
from reidnb.core.engine import Trainer
from reidnb.core.results import Cell, published_rows
from reidnb.core.runs import Run, RunBusyError, RunCacheError, RunDir, run_key, safe_name


def test_run_key_is_order_free_and_short():
    assert run_key({"a": 1, "b": [1, 2]}) == run_key({"b": [1, 2], "a": 1})
    assert run_key({"a": 1}) != run_key({"a": 2})
    assert len(run_key({"a": 1})) == 10
    assert safe_name("setting 3(T)/x") == "setting_3_T__x"


def test_rundir_round_trips_timing_history_eval_and_finished(tmp_path):
    d = RunDir(tmp_path, "setting 8", "abc123")
    assert d.path == tmp_path / "setting_8-abc123"
    assert d.train_seconds() == 0.0 and d.finished() is None and d.read_history() is None
    d.set_train_seconds(12.5)
    assert d.train_seconds() == 12.5
    hist = pd.DataFrame({"iter": [0, 1], "loss": [2.0, 1.5]})
    d.write_history(hist)
    pd.testing.assert_frame_equal(d.read_history(), hist)
    arrays = {"qf": np.arange(6, dtype=np.float32).reshape(2, 3), "paths": np.array(["a", "b"])}
    d.save_eval("k1", arrays, seconds=3.25)
    got, secs = d.load_eval("k1")
    assert secs == 3.25 and set(got) == {"qf", "paths"}
    np.testing.assert_array_equal(got["qf"], arrays["qf"])
    assert list(got["paths"]) == ["a", "b"]
    assert d.load_eval("other") is None
    d.mark_finished(epochs=3)
    rec = d.finished()
    assert {k: rec[k] for k in ("name", "key", "epochs")} == {
        "name": "setting 8", "key": "abc123", "epochs": 3}
    assert set(rec["files"]) == {"timing.json", "history.csv", "eval-k1.npz"}
    assert d.verify() == [] and d.state() == "finished"
    with open(d.eval_path("k1"), "r+b") as fh:       # a truncated evaluation is noticed
        fh.truncate(10)
    assert d.verify() == ["eval-k1.npz (changed or truncated)"]


def test_rundir_names_corrupt_files(tmp_path):
    d = RunDir(tmp_path, "r", "k")
    d.path.mkdir(parents=True)
    (d.path / "timing.json").write_text("{not json")
    with pytest.raises(RunCacheError, match="timing.json is unreadable.*delete it"):
        d.train_seconds()
    d.eval_path("e").write_bytes(b"garbage")
    with pytest.raises(RunCacheError, match="eval-e.npz is unreadable"):
        d.load_eval("e")


@dataclasses.dataclass
class FakeRun:
    """Run-like: metrics per evaluated setting, seconds, epochs."""

    values: dict
    seconds: float = 10.0
    epochs: int = 2

    def metrics(self, setting):
        if setting not in self.values:
            raise KeyError(setting)
        r1, mAP = self.values[setting]
        return {"rank1": r1, "rank5": 0.0, "rank10": 0.0, "mAP": mAP, "mINP": 0.0}


def test_published_rows_fill_printed_cells_and_mark_extras():
    cfg = RunConfig.make("paper", device="cpu", output_dir="/tmp/x",
                         dataset="market1501")
    published = {
        "softmax": (Cell("bcloss", "Table 1", "Baseline", "ResNet50, softmax only"),),
        "joint": (Cell("bcloss", "Table 1", "Ours",
                       "ResNet50, softmax + batch-contrastive loss (lambda=1)",
                       rerank_method="Ours+re-rank", note="tau=1"),),
    }
    runs = {"softmax": FakeRun({"single-query": (50.0, 30.0)}),
            "joint": FakeRun({"single-query": (60.0, 40.0),
                              "single-query+re-rank": (70.0, 55.0)}),
            "unpublished": FakeRun({"single-query": (1.0, 1.0)})}
    rows = published_rows(cfg, published, runs, note="reduced", extra_seconds={"joint": 5.0})
    frame = pd.DataFrame(rows)
    # 2 metrics x (softmax SQ, joint SQ, joint SQ+re-rank); the unpublished key is skipped
    assert len(frame) == 6
    sm = frame[(frame.method == "Baseline") & (frame.metric == "rank1")].iloc[0]
    assert sm.value == 50.0 and sm.dataset == "Market-1501" and sm.reranking == 0
    assert sm.note == "reduced" and sm.seconds == 10.0
    joint = frame[(frame.method == "Ours") & (frame.metric == "mAP")].iloc[0]
    assert joint.value == 40.0 and joint.seconds == 15.0 and joint.note == "tau=1; reduced"
    rr = frame[frame.method == "Ours+re-rank"]
    assert set(rr.metric) == {"rank1", "mAP"} and set(rr.reranking) == {1}
    # 001 printed no re-ranked row: written, but as an extra (not compared)
    assert "Ours+re-rank" not in set(frame.method[frame.reranking == 0])


def test_published_rows_name_the_run_dataset():
    cfg = RunConfig.make("paper", device="cpu", output_dir="/tmp/x", dataset="dukemtmcreid")
    run = {"softmax": FakeRun({"single-query": (40.0, 20.0)})}
    bc = published_rows(cfg, {"softmax": (Cell("bcloss", "Table 2", "Baseline",
                                               "ResNet50, softmax only"),)}, run)
    assert {r["dataset"] for r in bc} == {"DukeMTMC-reID"}
    assert {r["protocol"] for r in bc} == {"single-query"}  # 001's CSV names it
    mr = published_rows(cfg, {"softmax": (Cell("maskreid", "Table 3", "MaskReID_soft",
                                               "softmax loss"),)}, run)
    assert {r["protocol"] for r in mr} == {""}            # 003 prints no protocol for Duke


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return {"logits": self.fc(x), "embeddings": x}


def _loader(n=12, bs=4):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    y = torch.arange(n) % 3
    return torch.utils.data.DataLoader(
        [{"img": x[i], "pid": y[i]} for i in range(n)], batch_size=bs, shuffle=False)


def test_callbacks_see_every_step_and_epoch(tmp_path):
    seen = {"steps": [], "epochs": 0}

    class Spy(Callback):
        def on_step(self, trainer, row):
            seen["steps"].append((int(row["iter"]), float(row["loss"])))

        def on_epoch_end(self, trainer):
            seen["epochs"] += 1

    ce = lambda out, batch: nn.functional.cross_entropy(out["logits"], batch["pid"])  # noqa: E731
    csv = tmp_path / "h.csv"
    t = Trainer(_Net(), {"ce": (1.0, ce)}, device="cpu", lr=0.1, progress=False,
                callbacks=[Spy(), HistoryCSV(csv)])
    hist = t.fit(_loader(), epochs=2)
    assert [s[0] for s in seen["steps"]] == list(range(6)) and seen["epochs"] == 2
    assert [round(v, 6) for _, v in seen["steps"]] == [round(v, 6) for v in hist["loss"]]
    written = pd.read_csv(csv)
    assert list(written["iter"]) == list(range(6))
    np.testing.assert_allclose(written["loss_ce"], hist["loss_ce"], rtol=1e-6)


def test_tensorboard_logger_when_installed(tmp_path):
    if not TensorBoardLogger.available():
        pytest.skip("tensorboard is not installed (optional)")
    ce = lambda out, batch: nn.functional.cross_entropy(out["logits"], batch["pid"])  # noqa: E731
    t = Trainer(_Net(), {"ce": (1.0, ce)}, device="cpu", lr=0.1, progress=False,
                callbacks=[TensorBoardLogger(tmp_path / "tb", every=1)])
    t.fit(_loader(), epochs=1)
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))


def test_run_metrics_and_seconds():
    class R:
        results = {"single-query": type("RR", (), {"cmc": np.linspace(0.5, 1, 50), "mAP": 0.25,
                                                    "mINP": 0.1})()}

    run = Run("x", None, pd.DataFrame(), R(), 3.0, 1.5, 2)
    m = run.metrics()
    assert m["rank1"] == 50.0 and m["mAP"] == 25.0 and run.seconds == 4.5
    with pytest.raises(KeyError, match="setting 'multi-query' not evaluated"):
        run.metrics("multi-query")


def test_atomic_writes_follow_the_umask(tmp_path):
    import os

    from reidnb.core.utils import atomic_write_text

    old = os.umask(0o022)
    try:
        p = atomic_write_text(tmp_path / "index.html", "new")
        assert (p.stat().st_mode & 0o777) == 0o644 and p.read_text() == "new"
        os.umask(0o077)
        q = atomic_write_text(tmp_path / "private.csv", "x")
        assert (q.stat().st_mode & 0o777) == 0o600
    finally:
        os.umask(old)
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def _hold(path, seconds, started):
    """Child process: claim the run, say so, hold it ``seconds``."""
    import time as _t

    from reidnb.core.runs import RunDir as _RD

    with _RD(path, "race", "k").claim():
        started.set()
        _t.sleep(seconds)
        (Path(path) / "race-k" / "done.txt").write_text("first")


def test_two_processes_racing_on_one_run(tmp_path):
    import multiprocessing as mp
    import time

    ctx = mp.get_context("spawn")
    started = ctx.Event()
    child = ctx.Process(target=_hold, args=(str(tmp_path), 2.0, started))
    child.start()
    try:
        assert started.wait(60)
        d = RunDir(tmp_path, "race", "k")
        assert d.state() == "training"
        with pytest.raises(RunBusyError, match=f"pid {child.pid}"):
            with d.claim(wait=False):
                pass
        t0 = time.perf_counter()
        with d.claim():                          # waits for the child, then holds it
            assert (d.path / "done.txt").read_text() == "first"
        assert time.perf_counter() - t0 > 0.3
    finally:
        child.join(60)
    assert child.exitcode == 0 and d.state() == "new"


def test_the_lock_of_a_killed_process_is_taken_over(tmp_path):
    import multiprocessing as mp
    import os
    import signal

    ctx = mp.get_context("spawn")
    started = ctx.Event()
    child = ctx.Process(target=_hold, args=(str(tmp_path), 60.0, started))
    child.start()
    assert started.wait(60)
    os.kill(child.pid, signal.SIGKILL)
    child.join(30)
    d = RunDir(tmp_path, "race", "k")
    assert d.state() == "new"                   # the OS released the dead holder's lock
    with d.claim(wait=False):
        assert d.holder()["pid"] == os.getpid()
    assert d.holder() is None


def test_a_failed_attempt_is_recorded_then_cleared(tmp_path):
    d = RunDir(tmp_path, "r", "k")
    with pytest.raises(FloatingPointError):
        with d.claim():
            raise FloatingPointError("loss is nan")
    assert d.state() == "failed"
    assert "loss is nan" in (d.path / "failed.json").read_text()
    with d.claim():
        pass
    assert d.state() == "new" and not (d.path / "failed.json").exists()

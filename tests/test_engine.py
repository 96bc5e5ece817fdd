"""Tests of reidnb.core.engine: the one Trainer (fit, resume, NaN, checkpoints, DDP, schedule).

A tiny conv net of our own and in-memory random dict batches (no dataset, no other
module of the package); every test runs in a few seconds on a 2-core CPU.
"""
from __future__ import annotations

import math
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from reidnb.core.engine import (CheckpointError, ShardedBatchSampler, Trainer, distance_stats,
                           epochs_to_iters, lr_factor)

NUM_CLASSES = 4


class TinyNet(nn.Module):
    """2-layer conv net obeying the model contract (dict in training, [N, D] in eval)."""

    def __init__(self, width: int = 8, dim: int = 16, dropout: float = 0.2, extra: bool = False):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, padding=1)
        self.bn = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, dim, 3, stride=2, padding=1)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(dim, NUM_CLASSES)
        if extra:
            self.head = nn.Linear(dim, dim)

    def forward(self, x, return_featuremaps=False):
        f = self.conv2(F.relu(self.bn(self.conv1(x))))     # [N, dim, h, w]
        if return_featuremaps:
            return f
        emb = f.mean((2, 3))                                # [N, dim]
        if not self.training:
            return emb
        return {"logits": self.fc(self.drop(emb)), "embeddings": emb, "featuremaps": f}


class DictData(Dataset):
    """``n`` random 3x8x4 images whose mean depends on the identity (learnable)."""

    def __init__(self, n: int = 32, seed: int = 0, distinct: bool = False):
        g = torch.Generator().manual_seed(seed)
        self.pids = (torch.arange(n) if distinct else torch.arange(n) % NUM_CLASSES)
        proto = torch.randn(NUM_CLASSES if not distinct else n, 3, 8, 4, generator=g)
        self.imgs = proto[self.pids] + 0.5 * torch.randn(n, 3, 8, 4, generator=g)

    def __len__(self):
        return len(self.pids)

    def __getitem__(self, i):
        return {"img": self.imgs[i], "pid": self.pids[i], "camid": torch.tensor(0),
                "index": i, "path": f"img_{i}.jpg"}


class CE(nn.Module):
    def forward(self, out, batch):
        return F.cross_entropy(out["logits"], batch["pid"])


class Centres(nn.Module):
    """Centre loss with a buffer updated in forward (as CenterLoss): state to checkpoint."""

    def __init__(self, n: int = NUM_CLASSES, d: int = 16, alpha: float = 0.5):
        super().__init__()
        self.alpha = alpha
        self.register_buffer("centers", torch.zeros(n, d))

    def forward(self, out, batch):
        x, y = out["embeddings"], batch["pid"]
        loss = 0.5 * ((x - self.centers[y]) ** 2).sum(1).mean()
        if self.training:
            with torch.no_grad():
                for c in y.unique():
                    self.centers[c] += self.alpha * (x[y == c].mean(0) - self.centers[c])
        return loss


class ScaledCE(nn.Module):
    """Cross-entropy with a learnable logit scale: a term parameter that must be trained."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(1.0))

    def forward(self, out, batch):
        return F.cross_entropy(out["logits"] * self.scale, batch["pid"])


def make_loader(n=32, batch_size=8, shuffle=True, **kw):
    return DataLoader(DictData(n, **kw), batch_size=batch_size, shuffle=shuffle)


def make_trainer(model=None, losses=None, **kw):
    if model is None:
        torch.manual_seed(0)
        model = TinyNet()
    if losses is None:
        losses = {"ce": (1.0, CE()), "centre": (0.05, Centres()), "sce": (0.5, ScaledCE())}
    kw.setdefault("lr", 0.05)
    return Trainer(model, losses, device="cpu", progress=False, **kw)


def all_state(tr: Trainer) -> dict[str, torch.Tensor]:
    return {**{f"model.{k}": v for k, v in tr.model.state_dict().items()},
            **{f"losses.{k}": v for k, v in tr.loss_terms.state_dict().items()}}


# ----------------------------------------------------------------------------- fitting

def test_fit_lowers_loss_and_history_columns():
    tr = make_trainer()
    scale0 = tr.loss_terms["sce"].scale.item()
    h = tr.fit(make_loader(), epochs=4)
    assert list(h.columns) == ["iter", "epoch", "loss", "loss_ce", "loss_centre", "loss_sce",
                               "lr", "img_per_s", "d_intra", "d_inter_min", "d_inter_mean"]
    assert len(h) == 4 * 4 and h["iter"].tolist() == list(range(16))
    assert h["epoch"].tolist() == [e for e in range(4) for _ in range(4)]
    first, last = h[h.epoch == 0]["loss"].mean(), h[h.epoch == 3]["loss"].mean()
    assert last < 0.5 * first, (first, last)
    # total = weighted sum of the unweighted term columns
    assert h["loss"].to_numpy() == pytest.approx(
        (h.loss_ce + 0.05 * h.loss_centre + 0.5 * h.loss_sce).to_numpy(), rel=1e-5)
    # the term parameter joined the optimiser
    assert tr.loss_terms["sce"].scale.item() != scale0
    assert (h["img_per_s"] > 0).all()
    assert tr.epoch == 4 and tr.iteration == 16


def test_max_iters_stops_mid_epoch():
    tr = make_trainer()
    h = tr.fit(make_loader(), max_iters=6)      # 4 batches per epoch
    assert len(h) == 6 and tr.epoch == 1 and tr.epoch_iter == 2
    h = tr.fit(make_loader(), max_iters=6)      # already there: nothing more
    assert len(h) == 6


# ------------------------------------------------------------------------------ resume

def test_resume_equals_uninterrupted(tmp_path):
    ref = make_trainer()
    h_ref = ref.fit(make_loader(), epochs=3)

    first = make_trainer(checkpoint_dir=tmp_path)
    first.fit(make_loader(), epochs=1)          # "interrupted" after epoch 1
    del first
    torch.manual_seed(123)                      # a differently initialised model
    resumed = make_trainer(model=TinyNet(), checkpoint_dir=tmp_path, resume=True)
    assert resumed.epoch == 1 and resumed.iteration == 4
    h_res = resumed.fit(make_loader(), epochs=3)

    a, b = all_state(ref), all_state(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    cols = [c for c in h_ref.columns if c != "img_per_s"]
    assert h_ref[cols].equals(h_res[cols])


def test_resume_inside_epoch_keeps_batch_order(tmp_path):
    """A max_iters stop mid-epoch resumes with the remaining batches of that epoch
    (exact here: no dropout, so the only randomness is the shuffle order)."""
    def trainer(**kw):
        torch.manual_seed(0)
        return make_trainer(model=TinyNet(dropout=0.0), **kw)

    ref = trainer()
    ref.fit(make_loader(), epochs=2)
    part = trainer(checkpoint_dir=tmp_path)
    part.fit(make_loader(), max_iters=5)        # epoch 1, one batch in
    rest = trainer(checkpoint_dir=tmp_path, resume=True)
    assert (rest.epoch, rest.epoch_iter, rest.iteration) == (1, 1, 5)
    h = rest.fit(make_loader(), epochs=2)
    assert h["iter"].tolist() == list(range(8))
    for k, v in all_state(ref).items():
        assert torch.equal(v, all_state(rest)[k]), k


# ------------------------------------------------------------------------- NaN / inf

class NaNAfter(nn.Module):
    """Returns NaN from its ``n``-th call on (0-based)."""

    def __init__(self, n: int):
        super().__init__()
        self.n, self.calls = n, 0

    def forward(self, out, batch):
        self.calls += 1
        v = out["logits"].mean() * 0
        return v + float("nan") if self.calls > self.n else v


def test_nan_raises_and_keeps_last_good_checkpoint(tmp_path):
    tr = make_trainer(losses={"ce": (1.0, CE()), "bad": (1.0, NaNAfter(5))},
                      checkpoint_dir=tmp_path)
    tr.fit(make_loader(), epochs=1)             # iterations 0..3, checkpoint epoch 1
    ckpt = tmp_path / "last.pt"
    good = ckpt.read_bytes()
    with pytest.raises(FloatingPointError, match=r"\['bad'\].*iteration 5 \(epoch 1"):
        tr.fit(make_loader(), epochs=3)
    assert ckpt.read_bytes() == good
    saved = torch.load(ckpt, weights_only=True)
    assert saved["epoch"] == 1 and saved["iteration"] == 4
    assert len(tr.history) == 5                  # the bad iteration was not recorded
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no temp left


# ----------------------------------------------------------------------- checkpoints

def test_checkpoint_is_plain_and_other_model_refused(tmp_path):
    tr = make_trainer(checkpoint_dir=tmp_path)
    tr.fit(make_loader(), epochs=1)
    ck = torch.load(tmp_path / "last.pt", weights_only=True)
    assert ck["meta"]["model_class"] == "TinyNet" and ck["meta"]["version"] == 1
    assert ck["epoch"] == 1 and len(ck["history"]["loss"]) == 4
    assert "losses" in ck and "centre.centers" in ck["losses"]

    with pytest.raises(CheckpointError, match=r"conv1\.weight.*\(8, 3, 3, 3\) vs \(6, 3, 3, 3\)"):
        make_trainer(model=TinyNet(width=6), checkpoint_dir=tmp_path, resume=True)
    with pytest.raises(CheckpointError, match=r"missing from the checkpoint: \['head\.bias', "
                                               r"'head\.weight'\]"):
        make_trainer(model=TinyNet(extra=True), checkpoint_dir=tmp_path, resume=True)
    with pytest.raises(CheckpointError, match=r"meta\.terms"):
        make_trainer(losses={"ce": (1.0, CE())}, checkpoint_dir=tmp_path, resume=True)


def test_older_layout_refused(tmp_path):
    torch.save({"model": TinyNet().state_dict(), "epoch": 3}, tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match=r"missing top-level keys \['meta', 'optimizer'"):
        make_trainer(checkpoint_dir=tmp_path, resume=True)


def test_resume_without_dir_or_file():
    with pytest.raises(ValueError, match="checkpoint_dir"):
        make_trainer(resume=True)


# ------------------------------------------------------------------ distance statistics

def test_distance_stats_by_hand():
    # unit vectors at 0, 60 (pid 0) and 180, 270 degrees (pid 1), scaled arbitrarily
    ang = torch.tensor([0.0, 60.0, 180.0, 270.0]) * math.pi / 180
    x = torch.stack([ang.cos(), ang.sin()], 1) * torch.tensor([[2.0], [0.5], [3.0], [1.0]])
    pids = torch.tensor([0, 0, 1, 1])
    chord = lambda deg: 2 * math.sin(math.radians(deg) / 2)  # noqa: E731
    s = distance_stats(x, pids)
    assert s["d_intra"] == pytest.approx((chord(60) + chord(90)) / 2, abs=1e-6)
    inter = [chord(180), chord(90), chord(120), chord(150)]
    assert s["d_inter_min"] == pytest.approx(min(inter), abs=1e-6)   # sqrt(2)
    assert s["d_inter_mean"] == pytest.approx(sum(inter) / 4, abs=1e-6)
    no_pos = distance_stats(x, torch.tensor([0, 1, 2, 3]))
    assert all(math.isnan(v) for v in no_pos.values())
    one_id = distance_stats(x[:2], torch.tensor([5, 5]))
    assert one_id["d_intra"] == pytest.approx(chord(60), abs=1e-6)
    assert math.isnan(one_id["d_inter_min"]) and math.isnan(one_id["d_inter_mean"])


def test_history_distance_columns():
    tr = make_trainer(losses={"ce": (1.0, CE())})
    h = tr.fit(make_loader(batch_size=8), epochs=1)    # 4 ids x 2 per batch on average
    pos = h.dropna(subset=["d_intra"])
    assert len(pos) > 0
    assert ((pos.d_inter_min <= pos.d_inter_mean) & (pos.d_inter_mean <= 2)).all()
    assert (pos.d_intra >= 0).all()
    # every pid distinct: no positive pair, so no statistics
    tr2 = make_trainer(losses={"ce": (1.0, lambda out, b: out["logits"].pow(2).mean())})
    h2 = tr2.fit(make_loader(n=16, batch_size=8, distinct=True), epochs=1)
    assert h2[["d_intra", "d_inter_min", "d_inter_mean"]].isna().all().all()


def test_distance_columns_match_the_batch():
    """The logged statistics are those of the batch's embeddings (eval-free model)."""
    seen = []

    def record(out, batch):
        seen.append(distance_stats(out["embeddings"], batch["pid"]))
        return F.cross_entropy(out["logits"], batch["pid"])

    tr = make_trainer(losses={"ce": (1.0, record)})
    h = tr.fit(make_loader(shuffle=False), epochs=1)
    for i, s in enumerate(seen):
        for k, v in s.items():
            assert h.loc[i, k] == pytest.approx(v, abs=1e-6)


# ------------------------------------------------------------------------ lr schedule

def test_lr_schedule_by_hand():
    assert epochs_to_iters([2, 3], 4) == [8, 12] and epochs_to_iters(5, 10) == 50
    f = lambda i: lr_factor(i, warmup_iters=10, milestones=(20, 30), gamma=0.1)  # noqa: E731
    assert [f(0), f(5), f(10), f(19), f(20), f(29), f(30)] == pytest.approx(
        [0.01, 0.505, 1.0, 1.0, 0.1, 0.1, 0.01])
    tr = make_trainer(losses={"ce": (1.0, CE())}, lr=0.1, warmup_iters=4, milestones=[6])
    h = tr.fit(make_loader(), epochs=2)                 # 8 iterations
    assert h["lr"].tolist() == pytest.approx(
        [0.001, 0.02575, 0.0505, 0.07525, 0.1, 0.1, 0.01, 0.01])
    assert tr.optimizer.param_groups[0]["lr"] == pytest.approx(0.01)


# -------------------------------------------------------------------- bad input errors

def test_bad_inputs_raise_clearly():
    with pytest.raises(TypeError, match=r"losses\['ce'\] must be a \(weight, term\) pair"):
        Trainer(TinyNet(), {"ce": CE()}, lr=0.1, device="cpu")
    with pytest.raises(ValueError, match="identifier"):
        Trainer(TinyNet(), {"c e": (1.0, CE())}, lr=0.1, device="cpu")
    with pytest.raises(ValueError, match="'sgd' or 'adam'"):
        Trainer(TinyNet(), {"ce": (1.0, CE())}, lr=0.1, device="cpu", optimizer="lbfgs")
    tr = make_trainer(losses={"ce": (1.0, CE())})
    with pytest.raises(TypeError, match="must be dicts"):
        tr.fit([(torch.zeros(2, 3, 8, 4), torch.zeros(2, dtype=torch.long))], epochs=1)
    with pytest.raises(ValueError, match="epochs=, max_iters="):
        tr.fit(make_loader())


def test_input_fn_and_plain_iterable():
    """input_fn returning a dict calls model(**d); any iterable of dict batches works."""
    class TwoInput(TinyNet):
        def forward(self, x, mask=None, return_featuremaps=False):
            return super().forward(x * mask, return_featuremaps)

    batches = [{"img": torch.randn(4, 3, 8, 4), "mask": torch.ones(4, 3, 8, 4),
                "pid": torch.tensor([0, 0, 1, 1])} for _ in range(3)]
    tr = make_trainer(model=TwoInput(), losses={"ce": (1.0, CE())}, optimizer="adam",
                      lr=1e-3, input_fn=lambda b: {"x": b["img"], "mask": b["mask"]})
    h = tr.fit(batches, epochs=2)
    assert len(h) == 6 and h["loss"].notna().all()


def test_sharded_batch_sampler():
    batches = [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    assert list(ShardedBatchSampler(batches, 0, 2)) == [[0, 1], [4, 5]]
    assert list(ShardedBatchSampler(batches, 1, 2)) == [[2, 3], [6, 7]]
    assert list(ShardedBatchSampler(batches, 0, 2, skip=1)) == [[4, 5]]
    assert len(ShardedBatchSampler(batches, 1, 2)) == 2
    assert list(ShardedBatchSampler(batches, 0, 1, skip=3)) == [[6, 7], [8, 9]]


# ------------------------------------------------------------------------------ DDP

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world),
                      RANK=str(rank), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    torch.manual_seed(rank)          # different initial weights: DDP must broadcast rank 0's
    seen: list[int] = []

    def ce(out, batch):
        seen.extend(batch["index"].tolist())
        return F.cross_entropy(out["logits"], batch["pid"])

    tr = Trainer(TinyNet(), {"ce": (1.0, ce), "centre": (0.1, Centres())}, device="cpu",
                 lr=0.05, progress=False, checkpoint_dir=os.path.join(out_dir, "ck"))
    h = tr.fit(make_loader(n=32, batch_size=4), epochs=1)      # 8 batches -> 4 per rank
    torch.save({"state": all_state(tr), "seen": seen, "n": len(h)},
               os.path.join(out_dir, f"rank{rank}.pt"))
    dist.destroy_process_group()


def test_ddp_two_process_gloo_keeps_replicas_identical(tmp_path):
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert r0["n"] == r1["n"] == 4
    assert not set(r0["seen"]) & set(r1["seen"])                # disjoint shards
    assert sorted(r0["seen"] + r1["seen"]) == list(range(32))   # the whole epoch
    for k, v in r0["state"].items():
        assert torch.equal(v, r1["state"][k]), k
    assert (tmp_path / "ck" / "last.pt").exists()


# ------------------------------------------------------------------------------- GPU

@pytest.mark.gpu
def test_cuda_amp_channels_last():
    torch.manual_seed(0)
    model = TinyNet()
    tr = Trainer(model, {"ce": (1.0, CE()), "centre": (0.05, Centres())}, lr=0.05,
                 device="cuda", progress=False)
    assert tr.amp_dtype in (torch.bfloat16, torch.float16)
    assert (tr.scaler is not None) == (tr.amp_dtype is torch.float16)
    assert model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    dtypes = []
    model.conv2.register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
    h = tr.fit(make_loader(), epochs=3)
    assert dtypes[0] == tr.amp_dtype
    assert h["loss"].notna().all()
    assert h[h.epoch == 2]["loss"].mean() < h[h.epoch == 0]["loss"].mean()


# ------------------------------------------------------------- viz: training section

def _hist(n=30, seed=0):
    import numpy as np
    import pandas as pd
    rng = np.random.default_rng(seed)
    d = {"iter": np.arange(n), "epoch": np.arange(n) // 10, "loss": np.linspace(2, 1, n),
         "loss_ce": np.linspace(2, 1, n), "lr": np.full(n, 0.1), "img_per_s": np.ones(n),
         "d_intra": rng.uniform(0.2, 0.4, n), "d_inter_min": rng.uniform(0.3, 0.5, n),
         "d_inter_mean": rng.uniform(0.9, 1.1, n)}
    d["d_intra"][::3] = np.nan                   # batches without a positive pair
    return pd.DataFrame(d)


def test_plot_distance_and_loss_curves():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from reidnb.viz import plot_distance_curves, plot_loss_curves

    h = _hist()
    fig = plot_distance_curves({"softmax": h, "softmax + B-C": _hist(seed=1)}, smooth=2)
    ax0, ax1 = fig.axes[:2]
    assert ax0.get_shared_y_axes().joined(ax0, ax1)
    line = ax0.get_lines()[0]                     # d_intra rolling mean (window 2)
    kept = h.dropna(subset=["d_intra"])
    assert np.allclose(line.get_xdata(), kept["iter"])
    v = kept["d_intra"].to_numpy()
    assert np.allclose(line.get_ydata(), np.r_[v[0], (v[1:] + v[:-1]) / 2])
    assert [ln.get_label() for ln in ax0.get_lines()] == [
        "intra-class", "minimum inter-class", "mean inter-class"]
    plt.close(fig)
    with pytest.raises(KeyError, match="'bad'.*d_inter_min"):
        plot_distance_curves({"bad": h.drop(columns=["d_inter_min"])})
    fig = plot_loss_curves({"a": h, "b": h.assign(loss_tri=1.0)})
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == [
        "total (weighted sum)", "ce", "tri"]
    plt.close(fig)


def test_plot_ranked_list_colours_and_junk():
    import types

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.colors as mcolors
    import matplotlib.pyplot as plt
    import numpy as np
    from reidnb.viz import plot_ranked_list

    # gallery sorted by distance: g1 (pid 7, cam 0 = query cam: junk), g3 (pid 7 cam 2:
    # correct), g0 (pid 0 distractor: wrong), g4 (pid -1: junk), g2 (pid 7, cam 1: correct)
    res = types.SimpleNamespace(
        distmat=np.array([[0.3, 0.1, 0.9, 0.2, 0.5]], dtype=np.float32),
        q_pids=np.array([7]), q_camids=np.array([0]), q_paths=["q.jpg"],
        g_pids=np.array([0, 7, 7, 7, -1]), g_camids=np.array([1, 0, 1, 2, 3]),
        g_paths=[f"g{i}.jpg" for i in range(5)])
    loaded = []

    def load(path):
        loaded.append(path)
        return np.zeros((8, 4, 3), dtype=np.uint8)

    def colours(fig):
        return [mcolors.to_hex(ax.spines["top"].get_edgecolor()) for ax in fig.axes
                if ax.axison]

    green, red, grey = (mcolors.to_hex(c) for c in ("tab:green", "tab:red", "0.6"))
    fig = plot_ranked_list(res, [0], topk=4, load_image=load)
    assert loaded == ["q.jpg", "g3.jpg", "g0.jpg", "g2.jpg"]
    assert colours(fig)[1:] == [green, red, green]          # 4th slot empty
    plt.close(fig)
    loaded.clear()
    fig = plot_ranked_list(res, [0], topk=4, load_image=load, show_junk=True)
    assert loaded == ["q.jpg", "g1.jpg", "g3.jpg", "g0.jpg", "g4.jpg"]
    assert colours(fig)[1:] == [grey, green, red, grey]
    plt.close(fig)
    with pytest.raises(ValueError, match=r"query indices \[3\]"):
        plot_ranked_list(res, [3], load_image=load)

"""Helpers of notebook ``01_bcloss``: the batch-contrastive-loss paper (001) as code.

Paper 001, "Discriminative feature representation for person re-identification by
batch-contrastive loss" (recipes.md §2). Two settings are compared on one network
(``build_model("bcloss")``: ResNet conv1 ... pool5 -> dropout -> FC, §2.1 / Fig. 2):

* ``"softmax"`` — the baseline of §3.3: softmax cross-entropy only (Eqs. 1-2).
* ``"joint"`` — §2.2 Eq. 9: L = L_s + lambda (L_b + L_c), with the batch-contrastive loss
  L_b (Eq. 3, hardest negative of the batch, margin tau on *squared* distances) and the
  centre loss L_c (Eqs. 4-6) both on the L2-normalised pool5 feature *before* dropout
  (recipes.md §2.5), lambda = 1, centre learning rate 0.5.

Batches are 16 random images (no identity sampling, §2.3); SGD, lr 0.01 x 0.1 every 20k
iterations, 50k iterations (§3.2). :func:`schedule_for` turns that iteration recipe (or a
profile's epoch recipe) into the epochs / milestones that
:func:`reidnb.papers.common.train_and_evaluate` takes; :func:`train_variant` runs one setting
over ``runs`` seeds (001 reports the mean of 5 runs, §3.4); :func:`bcloss_rows` writes the
measured cells of Table 1 (Market-1501, rank-1/5/10 + mAP) or Table 2 (DukeMTMC-reID,
rank-1 + mAP), the table being decided by the dataset actually run (the synthetic set stands
in for Market-1501 and is labelled synthetic).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from torch import nn

from .losses import CenterLoss, Term, batch_contrastive_loss, cross_entropy
from .models.backbones import RESNET_SPECS

__all__ = ["VARIANTS", "PUBLISHED", "TABLES", "losses_for", "Schedule", "schedule_for",
           "feat_dim_of", "table_for", "train_variant", "mean_metrics", "metrics_table",
           "tau_sweep", "chance_level", "bcloss_rows", "published_variant",
           "PAPER_RECIPE", "sweep_schedule", "recipe_deviations", "pick_queries"]

#: The two settings of 001 Tables 1-2.
VARIANTS: tuple[str, ...] = ("softmax", "joint")

#: variant -> (method, variant) strings of the published rows (paper_results.csv, verbatim).
PUBLISHED: dict[str, tuple[str, str]] = {
    "softmax": ("Baseline", "ResNet50, softmax only"),
    "joint": ("Ours", "ResNet50, softmax + batch-contrastive loss (lambda=1)"),
}

#: loader dataset name -> (table, the paper's dataset name, metrics printed in that table).
TABLES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "market1501": ("Table 1", "Market-1501", ("rank1", "rank5", "rank10", "mAP")),
    "dukemtmcreid": ("Table 2", "DukeMTMC-reID", ("rank1", "mAP")),
}


def losses_for(variant: str, num_classes: int, feat_dim: int, *, tau: float = 1.0,
               lam: float = 1.0, center_lr: float = 0.5) -> dict[str, tuple[float, nn.Module]]:
    """The Trainer's loss dict ``{name: (weight, term)}`` of one 001 setting.

    Args:
        variant: ``"softmax"`` (baseline, §3.3) or ``"joint"`` (Eq. 9).
        num_classes: training identities (centres of the centre loss).
        feat_dim: pool5 channels (2048 for ResNet-50, 512 for ResNet-18).
        tau: margin of L_b on the squared distance of unit vectors (recipes.md §2.5: 1.0).
        lam: lambda of Eq. 9, the weight of both L_b and L_c (001 §3.2: 1).
        center_lr: eta of the centre update (Eq. 6; Wen et al. 2016 / BoT: 0.5).

    Returns:
        ``{"softmax": (1, CE on logits)}``, plus for ``"joint"``
        ``"bc": (lam, L_b on normalised embeddings)`` and
        ``"center": (lam, L_c on normalised embeddings)``. A fresh ``CenterLoss`` (centres
        at zero) every call, so runs never share centres.

    Raises:
        ValueError: unknown variant, non-positive num_classes/feat_dim, negative tau, lam
            or center_lr.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown 01_bcloss variant {variant!r}; expected one of {VARIANTS}")
    if num_classes < 1 or feat_dim < 1:
        raise ValueError(f"num_classes and feat_dim must be >= 1, got {num_classes}, {feat_dim}")
    for name, v in (("tau", tau), ("lam", lam), ("center_lr", center_lr)):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
    losses: dict[str, tuple[float, nn.Module]] = {
        "softmax": (1.0, Term(cross_entropy, key="logits"))}
    if variant == "joint":
        losses["bc"] = (float(lam), Term(batch_contrastive_loss, normalize=True, tau=float(tau)))
        losses["center"] = (float(lam), Term(CenterLoss(num_classes, feat_dim, center_lr),
                                             normalize=True))
    return losses


def published_variant(variant: str, lam: float = 1.0) -> tuple[str, str, bool]:
    """(method, variant string, extra) naming the published row a measurement reproduces.

    ``extra`` is True when ``lam`` is not the paper's 1 (the variant string then says the
    lambda used and matches no published row).
    """
    if variant not in PUBLISHED:
        raise ValueError(f"unknown 01_bcloss variant {variant!r}; expected one of {VARIANTS}")
    method, text = PUBLISHED[variant]
    if variant == "joint" and float(lam) != 1.0:
        return method, text.replace("lambda=1", f"lambda={lam:g}"), True
    return method, text, False


def feat_dim_of(backbone: str) -> int:
    """pool5 channels of a ResNet name (``RESNET_SPECS``); KeyError lists the known ones."""
    if backbone not in RESNET_SPECS:
        raise KeyError(f"unknown backbone {backbone!r}; expected one of {sorted(RESNET_SPECS)}")
    return int(RESNET_SPECS[backbone][2])


@dataclasses.dataclass(frozen=True)
class Schedule:
    """A training schedule in the units :func:`train_and_evaluate` takes.

    Attributes:
        epochs: epochs to train (the last one may be cut by ``max_iters``).
        milestones: lr x gamma after these epochs (epochs, ints).
        iters_per_epoch: optimiser steps per epoch (train images // batch size).
        total_iters: optimiser steps actually run (``min(epochs x ipe, max_iters)``).
        lr: base learning rate.
        text: one line saying the recipe and its conversion (printed by the notebook).
    """

    epochs: int
    milestones: tuple[int, ...]
    iters_per_epoch: int
    total_iters: int
    lr: float
    text: str


def schedule_for(cfg: Any, num_train_images: int) -> Schedule:
    """The profile's schedule for ``num_train_images`` images in batches of ``cfg.batch_size``.

    Two ways to state it in the config (``NOTEBOOK_PROFILES["01_bcloss"]``):

    * iterations (001 §3.2, profile paper): ``epochs=None``, ``max_iters`` (50000) and
      ``lr_step_iters`` (20000): epochs = ceil(max_iters / ipe); a lr step every
      ``lr_step_iters`` iterations, rounded to the nearest epoch boundary (the Trainer
      steps at epoch multiples of ``len(loader)``); the rounding is reported in ``text``.
    * epochs (quick): ``epochs`` and ``lr_milestones`` (epochs); ``max_iters`` only caps
      the run (smoke: 4 iterations).

    Raises:
        ValueError: fewer training images than one batch, or neither ``epochs`` nor
            ``max_iters`` in the config.
    """
    bs = int(cfg.batch_size)
    ipe = int(num_train_images) // bs
    if ipe < 1:
        raise ValueError(f"{num_train_images} training images give no batch of {bs} "
                         "(drop_last); lower batch_size")
    max_iters = _opt(cfg, "max_iters")
    lr = float(_opt(cfg, "lr", 0.01))
    step_iters = _opt(cfg, "lr_step_iters")
    if _opt(cfg, "epochs") is None:
        if not max_iters:
            raise ValueError("01_bcloss schedule: the config sets neither epochs nor max_iters")
        epochs = math.ceil(max_iters / ipe)
    else:
        epochs = int(cfg.epochs)
    if step_iters:
        limit = max_iters or epochs * ipe
        wanted = list(range(int(step_iters), int(limit), int(step_iters)))
        milestones = tuple(sorted({max(1, round(w / ipe)) for w in wanted}))
        steps = ", ".join(f"{w} -> {m * ipe}" for w, m in zip(wanted, milestones))
        conv = f"; lr x0.1 every {step_iters} iterations at epochs {list(milestones)} " \
               f"(iterations wanted -> run: {steps})"
    else:
        milestones = tuple(int(m) for m in (_opt(cfg, "lr_milestones") or ()))
        conv = f"; lr x0.1 at epochs {list(milestones)}" if milestones else "; constant lr"
    total = epochs * ipe if not max_iters else min(epochs * ipe, int(max_iters))
    text = (f"{num_train_images} train images / batch {bs} = {ipe} iterations per epoch; "
            f"{epochs} epochs = {total} iterations (lr {lr:g}{conv})")
    return Schedule(epochs, milestones, ipe, total, lr, text)


def _opt(cfg: Any, name: str, default: Any = None) -> Any:
    options = getattr(cfg, "options", None)
    if options is not None:
        return options.get(name, default)
    return getattr(cfg, name, default)


def table_for(cfg: Any) -> tuple[str, str, tuple[str, ...]]:
    """(table, paper dataset name, metrics) that the run's dataset fills.

    Real Market-1501 -> Table 1 (rank-1/5/10, mAP); real DukeMTMC-reID -> Table 2
    (rank-1, mAP); the synthetic set stands in for Market-1501 (Table 1; the rows are
    labelled synthetic by :func:`reidnb.core.results.result_rows`).

    Raises:
        ValueError: a dataset 001 does not report (CUHK03-NP).
    """
    name = "market1501" if cfg.dataset_kind == "synthetic" else str(cfg.dataset)
    if name not in TABLES:
        raise ValueError(f"001 reports Market-1501 (Table 1) and DukeMTMC-reID (Table 2) only; "
                         f"dataset {cfg.dataset!r} has no table (use market1501, dukemtmcreid "
                         "or synthetic)")
    return TABLES[name]


def train_variant(cfg: Any, dataset: Any, variant: str, *, runs: int = 1,
                  tau: float | None = None, lam: float | None = None,
                  center_lr: float | None = None, dropout: float | None = None,
                  schedule: Schedule | None = None, name: str | None = None,
                  verbose: bool = True) -> list:
    """Train and evaluate one 001 setting over ``runs`` seeds (cfg.seed, cfg.seed + 1, ...).

    Every run: ``build_model("bcloss", dropout=...)`` with the config's backbone and
    pretrained choice, random batches of ``cfg.batch_size`` (sampler ``"random"``), SGD
    with momentum 0.9 and weight decay 5e-4, the schedule of :func:`schedule_for`, then the
    single-query evaluation. Runs are cached by :func:`train_and_evaluate` (checkpoint hash).

    Args:
        cfg: the notebook's RunConfig; ``tau``, ``lam``, ``center_lr``, ``dropout`` default
            to the config's options of the same name.
        dataset: from :func:`reidnb.papers.common.load_data` (the same for every seed).
        variant: ``"softmax"`` or ``"joint"``.
        runs: seeds to average (001: 5).
        schedule: default ``schedule_for(cfg, len(dataset.train))``.
        name: run label prefix (default the variant, plus ``-tau<tau>`` for joint).

    Returns:
        list of :class:`reidnb.papers.common.Run`, one per seed.

    Raises:
        ValueError: runs < 1 or an unknown variant.
    """
    from .papers.common import train_and_evaluate

    if int(runs) < 1:
        raise ValueError(f"runs must be >= 1, got {runs!r}")
    tau = float(_opt(cfg, "tau", 1.0) if tau is None else tau)
    lam = float(_opt(cfg, "lam", 1.0) if lam is None else lam)
    center_lr = float(_opt(cfg, "center_lr", 0.5) if center_lr is None else center_lr)
    dropout = float(_opt(cfg, "dropout", 0.9) if dropout is None else dropout)
    sched = schedule or schedule_for(cfg, len(dataset.train))
    label = name or (variant if variant == "softmax" else f"{variant}-tau{tau:g}")
    feat_dim = feat_dim_of(cfg.backbone)
    out = []
    for r in range(int(runs)):
        cfg_r = dataclasses.replace(cfg, seed=int(cfg.seed) + r)
        losses = losses_for(variant, dataset.num_train_pids, feat_dim, tau=tau, lam=lam,
                            center_lr=center_lr)
        out.append(train_and_evaluate(
            cfg_r, dataset, name=f"{label}-seed{cfg_r.seed}", model="bcloss", losses=losses,
            model_kw={"dropout": dropout}, sampler="random", batch_size=cfg.batch_size,
            lr=sched.lr, epochs=sched.epochs, milestones=sched.milestones, verbose=verbose))
    return out


def mean_metrics(runs: Sequence, setting: str = "single-query") -> dict[str, float]:
    """Mean over runs of ``Run.metrics(setting)`` (percent): rank1, rank5, rank10, mAP, mINP.

    Raises:
        ValueError: no runs.
    """
    if not runs:
        raise ValueError("mean_metrics: no runs")
    frame = pd.DataFrame([r.metrics(setting) for r in runs])
    return {k: float(v) for k, v in frame.mean().items()}


def metrics_table(groups: Mapping[str, Sequence], setting: str = "single-query") -> pd.DataFrame:
    """One line per setting: mean (and std over seeds) of rank-1/5/10, mAP, mINP (percent),
    ``runs``, ``train_min`` and ``total_min`` (minutes summed over the runs)."""
    rows = []
    for label, runs in groups.items():
        frame = pd.DataFrame([r.metrics(setting) for r in runs])
        row: dict[str, Any] = {"setting": label, "runs": len(runs)}
        for k in ("rank1", "rank5", "rank10", "mAP", "mINP"):
            row[k] = float(frame[k].mean())
        for k in ("rank1", "mAP"):
            row[f"{k}_std"] = float(frame[k].std(ddof=0))
        row["train_min"] = sum(r.train_seconds for r in runs) / 60.0
        row["total_min"] = sum(r.seconds for r in runs) / 60.0
        rows.append(row)
    return pd.DataFrame(rows).round(2)


def tau_sweep(cfg: Any, dataset: Any, taus: Sequence[float], *, runs: int = 1,
              reuse: Mapping[float, Sequence] | None = None,
              schedule: Schedule | None = None, verbose: bool = True) -> dict[float, list]:
    """Joint training for each margin tau (recipes.md §2.5: 001 does not give tau).

    Args:
        taus: margins on the squared distance (paper sweep {0.5, 1.0, 1.5}).
        reuse: tau -> runs already trained with the same schedule (e.g. the main joint
            runs at the default tau); those are not trained again.
        schedule: default :func:`schedule_for` of the config (the quick profile may pass a
            shorter one; the notebook prints it).

    Returns:
        tau -> list of Run.
    """
    reuse = dict(reuse or {})
    out: dict[float, list] = {}
    for tau in taus:
        tau = float(tau)
        out[tau] = list(reuse[tau]) if tau in reuse else train_variant(
            cfg, dataset, "joint", runs=runs, tau=tau, schedule=schedule, verbose=verbose)
    return out


def chance_level(result: Any, *, draws: int = 3, seed: int = 0) -> dict[str, float]:
    """What a random ranking scores on this query/gallery split (percent).

    ``rank1`` is exact: the mean over valid queries of (true matches / kept gallery) after
    the Market-1501 junk removal (same pid and camera, pid -1). ``mAP`` is the mean over
    ``draws`` random distance matrices evaluated with :func:`evaluate_rank`.

    Args:
        result: an :class:`reidnb.evaluation.EvalResult` (its pids and camids are used).
    """
    from .evaluation import evaluate_rank

    qp, gp = np.asarray(result.q_pids), np.asarray(result.g_pids)
    qc, gc = np.asarray(result.q_camids), np.asarray(result.g_camids)
    junk = ((qp[:, None] == gp[None, :]) & (qc[:, None] == gc[None, :])) | (gp[None, :] == -1)
    match = (qp[:, None] == gp[None, :]) & ~junk                  # [Q, G]
    kept = (~junk).sum(1)
    ok = match.any(1)
    rank1 = float((match.sum(1)[ok] / kept[ok]).mean()) if ok.any() else float("nan")
    rng = np.random.default_rng(seed)
    maps = [evaluate_rank(rng.random((len(qp), len(gp))).astype(np.float32), qp, gp, qc, gc,
                          max_rank=10).mAP for _ in range(int(draws))]
    return {"rank1": 100.0 * rank1, "mAP": 100.0 * float(np.mean(maps))}


def bcloss_rows(cfg: Any, groups: Mapping[str, Sequence], *, lam: float | None = None,
                note: str = "", sweep: Mapping[float, Sequence] | None = None,
                default_tau: float | None = None) -> list[dict[str, Any]]:
    """Results rows (:func:`reidnb.core.results.result_rows`) of the measured table cells.

    Args:
        cfg: the notebook's RunConfig (profile, backbone, size, dataset kind are recorded).
        groups: ``{"softmax": runs, "joint": runs}`` (either may be missing); the value of
            a cell is the mean over the runs, ``seconds`` their summed train + eval time.
        lam: lambda of the joint runs (default ``cfg.lam``); not 1 -> an ``extra`` row.
        note: reductions of the profile (train-id subset, fewer runs ...), appended to
            ``"mean of N runs"``.
        sweep: tau -> runs of :func:`tau_sweep`; every tau except ``default_tau`` (already
            the ``Ours`` row) is written as an extra row (variant ``"..., tau=<tau>"``).

    Returns:
        list of row dicts for :func:`reidnb.core.results.write_results`.
    """
    from .core.results import result_rows

    lam = float(_opt(cfg, "lam", 1.0) if lam is None else lam)
    default_tau = float(_opt(cfg, "tau", 1.0) if default_tau is None else default_tau)
    table, dataset, metric_names = table_for(cfg)
    epochs_run = _opt(cfg, "epochs")
    rows: list[dict[str, Any]] = []

    def add(runs, method, variant, extra, what):
        m = mean_metrics(runs)
        text = f"{what}mean of {len(runs)} run(s)" + (f"; {note}" if note else "")
        rows.extend(result_rows(
            cfg, paper_id="bcloss", table=table, dataset=dataset, protocol="single-query",
            method=method, variant=variant, metrics={k: m[k] for k in metric_names},
            reranking=False, seconds=sum(r.seconds for r in runs),
            epochs=runs[0].epochs if runs[0].epochs is not None else epochs_run,
            note=text, extra=extra))

    for variant in VARIANTS:
        if variant in groups and groups[variant]:
            method, text, extra = published_variant(variant, lam)
            what = f"tau={default_tau:g}; " if variant == "joint" else ""
            add(groups[variant], method, text, extra, what)
    for tau, runs in (sweep or {}).items():
        if float(tau) == default_tau or not runs:
            continue
        method, text, _ = published_variant("joint", lam)
        add(runs, method, f"{text}, tau={float(tau):g}", True,
            f"tau sweep (001 gives no tau); tau={float(tau):g}; ")
    return rows


#: 001's own recipe (§3.2; recipes.md §2.5 defaults for tau and the centre lr), the
#: reference of :func:`recipe_deviations`. Iterations at batch 16.
PAPER_RECIPE: dict[str, Any] = dict(
    backbone="resnet50", pretrained=True, height=256, width=128, batch_size=16,
    max_iters=50000, lr_step_iters=20000, lr=0.01, dropout=0.9, lam=1.0, tau=1.0,
    center_lr=0.5, runs=5, taus=(0.5, 1.0, 1.5))


def sweep_schedule(cfg: Any, num_train_images: int) -> Schedule:
    """Schedule of the tau sweep: the main one, or ``cfg.sweep_epochs`` epochs when the
    profile shortens the sweep (quick); milestones past the end are dropped."""
    main = schedule_for(cfg, num_train_images)
    epochs = _opt(cfg, "sweep_epochs")
    if epochs is None or int(epochs) == main.epochs:
        return main
    epochs = int(epochs)
    total = epochs * main.iters_per_epoch
    max_iters = _opt(cfg, "max_iters")
    if max_iters:
        total = min(total, int(max_iters))
    milestones = tuple(m for m in main.milestones if m < epochs)
    text = (f"tau sweep shortened to {epochs} epochs = {total} iterations "
            f"(main runs: {main.epochs} epochs); lr {main.lr:g}"
            + (f", x0.1 at epochs {list(milestones)}" if milestones else ", constant"))
    return Schedule(epochs, milestones, main.iters_per_epoch, total, main.lr, text)


def recipe_deviations(cfg: Any, *, schedule: Schedule | None = None,
                      sweep: Schedule | None = None, dataset: Any = None,
                      pretrained_loaded: bool | None = None) -> list[str]:
    """Every way this run differs from 001's recipe (:data:`PAPER_RECIPE`), one phrase each.

    Args:
        cfg: the notebook's RunConfig.
        schedule, sweep: the main and tau-sweep schedules (iterations compared with 50k).
        dataset: the loaded dataset (its ``notes`` carry a train-id subset).
        pretrained_loaded: whether ImageNet weights were really loaded (the model says).

    Returns:
        list of strings such as ``"dropout 0.5 (paper 0.9)"``; empty for the paper recipe.
    """
    p = PAPER_RECIPE
    out = []
    for key in ("backbone", "batch_size", "lr", "dropout", "lam", "center_lr"):
        v = _opt(cfg, key, p[key])
        if v != p[key]:
            out.append(f"{key} {v} (paper {p[key]})")
    if (_opt(cfg, "height"), _opt(cfg, "width")) != (p["height"], p["width"]):
        out.append(f"image {_opt(cfg, 'height')}x{_opt(cfg, 'width')} "
                   f"(paper {p['height']}x{p['width']})")
    if pretrained_loaded is False or (pretrained_loaded is None and not _opt(cfg, "pretrained")):
        out.append("random initialisation (paper: ImageNet weights)")
    if schedule is not None and (schedule.total_iters != p["max_iters"]
                                 or _opt(cfg, "lr_step_iters") != p["lr_step_iters"]):
        out.append(f"{schedule.total_iters} iterations, lr steps at epochs "
                   f"{list(schedule.milestones)} (paper {p['max_iters']} iterations, "
                   f"x0.1 every {p['lr_step_iters']})")
    if float(_opt(cfg, "tau", p["tau"])) != p["tau"]:
        out.append(f"tau {_opt(cfg, 'tau')} (default {p['tau']}; 001 gives none)")
    runs = int(_opt(cfg, "runs", 1) or 1)
    if runs != p["runs"]:
        out.append(f"{runs} run(s) per setting (paper: mean of {p['runs']})")
    taus = tuple(float(t) for t in (_opt(cfg, "taus") or ()))
    if taus != p["taus"]:
        out.append(f"tau sweep {list(taus)} (full sweep {list(p['taus'])})")
    if sweep is not None and schedule is not None and sweep != schedule:
        out.append(f"tau sweep {sweep.epochs} epochs (main {schedule.epochs})")
    for note in getattr(dataset, "notes", ()) or ():
        if "subset" in note:
            out.append(note)
    return out


def pick_queries(a: Any, b: Any, n: int = 4, seed: int = 0) -> list[int]:
    """Queries to show in ranked lists of two results of the same split.

    The first ``n - 1`` query indices whose rank-1 correctness differs between ``a`` and
    ``b`` (in query order), then random other queries (NumPy ``default_rng(seed)``) up to
    ``n``. Junk (same pid and camera, pid -1) is skipped as in the Market-1501 protocol.

    Raises:
        ValueError: the two results have different queries.
    """
    if len(a.q_pids) != len(b.q_pids) or not np.array_equal(a.q_pids, b.q_pids):
        raise ValueError("pick_queries: the two results have different query sets")

    def top1_ok(r):
        d = np.asarray(r.distmat, dtype=np.float64).copy()
        junk = ((r.q_pids[:, None] == r.g_pids[None, :])
                & (r.q_camids[:, None] == r.g_camids[None, :])) | (r.g_pids[None, :] == -1)
        d[junk] = np.inf
        return r.g_pids[d.argmin(1)] == r.q_pids

    differ = np.flatnonzero(top1_ok(a) != top1_ok(b))[: max(0, n - 1)].tolist()
    rest = [i for i in range(len(a.q_pids)) if i not in set(differ)]
    rng = np.random.default_rng(seed)
    extra = rng.choice(rest, size=min(n - len(differ), len(rest)), replace=False).tolist()
    return [int(i) for i in differ + sorted(extra)]

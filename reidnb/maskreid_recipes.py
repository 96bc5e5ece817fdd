"""Helpers of notebook ``02_maskreid``: the MaskReID papers (000 ICME, 003 long) as code.

L. Qi, J. Huo, L. Wang, Y. Shi, Y. Gao, "A mask based deep ranking neural network for person
retrieval" (ICME 2019, paper id ``maskreid_icme``, seed 000) and "MaskReID: a mask based deep
ranking neural network for person re-identification" (long version, ``maskreid``, seed 003);
recipe in ``papers/recipes.md`` §1. The network is :class:`reidnb.models.maskreid.MaskReID`.

The two versions differ in the final ranking loss and its hyper-parameters
(:data:`VERSIONS`): 000 Eq. 3 (``form="icme"``, lambda 1, alpha 0.2) against 003 Eq. 5
(``form="eccv"``, lambda 2, alpha 0.15). Every ranking run here is labelled with the
version whose loss it used, and its rows go to that paper's tables only.

Two-stage schedule (000 §3.2, recipes.md §1.4):

* **stage 1** -- softmax cross-entropy, lr 0.1 (:func:`train_stage1`). The papers train it
  jointly on the small-scale sets (VIPeR, PRID, 3DPeS, iLIDS, CUHK01, CUHK03, Shinpuhkan;
  :func:`find_small_sets` / :func:`joint_train_set`); without them the stage-1 network is
  trained on the target training set instead (printed by the notebook).
* **stage 2** -- one loss (softmax, batch-hard triplet, N-pair or the ranking loss) from the
  stage-1 weights, lr 0.01, the P/N anchor batches of 000 §3.2 (:func:`train_stage2`).
  Every stage-2 variant starts from the *same* stage-1 run (one checkpoint).

Stage lengths are iterations, as in the paper (55k / 20k); :func:`stage_schedule` turns
them into the epochs + iteration cap that :func:`reidnb.papers.common.train_and_evaluate`
takes. The component ablation (000 Table 4) trains each network variant with the stage-1
recipe (:data:`ARCHS`), as the paper does (softmax on the small-scale sets).

:func:`maskreid_rows` turns the runs into results rows of both papers' tables (which table
is decided by the dataset actually run; the synthetic set stands in for Market-1501 and is
labelled synthetic). The small-scale loaders follow torchreid's folder layouts (and DGD's
raw 3DPeS / Shinpuhkan layouts), see :data:`SMALL_SETS`.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from .papers.common import batches_per_epoch
from .losses import Term, cross_entropy, npair_loss, ranking_loss, triplet_hard_loss

__all__ = [
    "PaperVersion", "VERSIONS", "LOSSES", "ARCHS", "loss_terms", "mask_input",
    "StageSchedule", "stage_schedule", "stage_config", "train_stage1", "train_stage2",
    "transfer_init", "evaluate_run", "Plan", "make_plan", "grid_cells", "ranking_name", "loss_table",
    "grid_table", "ablation_table", "published_grid", "pair_distances", "maskreid_rows", "pretrained_status",
    "SMALL_SETS", "TABLE1_NAMES", "load_small_set", "find_small_sets", "joint_train_set",
    "attach_small_set_masks", "small_scale_runs", "small_scale_table",
]


# =========================================================================== recipe
@dataclasses.dataclass(frozen=True)
class PaperVersion:
    """One version of the MaskReID paper: its ranking-loss form and chosen lambda/alpha.

    Attributes:
        paper_id: ``paper_results.csv`` id (``maskreid_icme`` = 000, ``maskreid`` = 003).
        form: ``form`` of :func:`reidnb.losses.ranking_loss` (``"icme"``: Eq. 3 of 000,
            ``[exp(.)]_{1+}``; ``"eccv"``: Eq. 5 of 003, ``exp([.]_+)``).
        lam, alpha: lambda (weight of the positive pull term) and the margin alpha
            (000 §3.5: 1 / 0.2; 003 §4.4: 2 / 0.15).
        label: short human-readable label.
    """

    paper_id: str
    form: str
    lam: float
    alpha: float
    label: str


#: The two paper versions (recipes.md §1.6).
VERSIONS: dict[str, PaperVersion] = {
    "maskreid_icme": PaperVersion("maskreid_icme", "icme", 1.0, 0.2,
                                  "000 ICME (Eq. 3, lambda=1, alpha=0.2)"),
    "maskreid": PaperVersion("maskreid", "eccv", 2.0, 0.15,
                             "003 long (Eq. 5, lambda=2, alpha=0.15)"),
}

#: Losses compared in 000 Table 5 (and 003 Table 2: softmax, triplet, ranking).
LOSSES: tuple[str, ...] = ("softmax", "triplet", "npair", "ranking")

#: 000 Table 4 network variants -> MaskReID options (003 Table 1 calls the full one
#: MaskReID-MF). "DGD" is the base network: one stream, feature from the last level only.
ARCHS: dict[str, dict[str, bool]] = {
    "DGD": {"use_mask": False, "fusion": False},
    "MaskReID-F": {"use_mask": False, "fusion": True},
    "MaskReID-M": {"use_mask": True, "fusion": False},
    "MaskReID": {"use_mask": True, "fusion": True},
}


def _opt(cfg: Any, name: str, default: Any = None) -> Any:
    options = getattr(cfg, "options", None)
    if options is not None:
        return options.get(name, default)
    return getattr(cfg, name, default)


def loss_terms(loss: str, version: str = "maskreid_icme", *, lam: float | None = None,
               alpha: float | None = None,
               triplet_margin: float = 0.3) -> dict[str, tuple[float, nn.Module]]:
    """The Trainer's loss dict ``{name: (weight, term)}`` of one MaskReID loss setting.

    Args:
        loss: ``"softmax"`` (cross-entropy on the logits; stage 1 and the softmax row),
            ``"triplet"`` (batch-hard triplet on the L2-normalised 256-d feature, margin
            ``triplet_margin`` in distance units; 000 §3.4 "online hard mining", margin not
            given: recipes.md §1.7 default 0.3), ``"npair"`` (000 Eq. 1 / 003 Eq. 3) or
            ``"ranking"`` (000 Eq. 3 or 003 Eq. 5, by ``version``).
        version: key of :data:`VERSIONS`; picks the ranking-loss form and the default
            lambda/alpha.
        lam, alpha: override the version's lambda / alpha (the lambda x alpha grid).

    Returns:
        one entry: ``{"softmax"|"triplet"|"npair"|"rank": (1.0, Term(...))}``. The metric
        losses read ``outputs["embeddings"]`` (N-pair and ranking normalise inside).

    Raises:
        ValueError: unknown loss or version; negative lambda, alpha or margin.
    """
    if loss not in LOSSES:
        raise ValueError(f"unknown MaskReID loss {loss!r}; expected one of {LOSSES}")
    if version not in VERSIONS:
        raise ValueError(f"unknown MaskReID paper version {version!r}; expected one of "
                         f"{sorted(VERSIONS)}")
    v = VERSIONS[version]
    lam = v.lam if lam is None else float(lam)
    alpha = v.alpha if alpha is None else float(alpha)
    for name, val in (("lam", lam), ("alpha", alpha), ("triplet_margin", triplet_margin)):
        if not (math.isfinite(val) and val >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {val!r}")
    if loss == "softmax":
        return {"softmax": (1.0, Term(cross_entropy, key="logits"))}
    if loss == "triplet":
        return {"triplet": (1.0, Term(triplet_hard_loss, normalize=True,
                                      margin=float(triplet_margin)))}
    if loss == "npair":
        return {"npair": (1.0, Term(npair_loss))}
    return {"rank": (1.0, Term(ranking_loss, margin=alpha, lam=lam, form=v.form))}


def mask_input(batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Model inputs of a batch: ``{"x": img [N, 3, H, W], "mask": mask [N, 1, H, W]}``.

    Passed as ``input_fn`` to the Trainer and the evaluation, so ``MaskReID.forward(x,
    mask=...)`` gets the person mask (ignored by the variants without the mask stream).

    Raises:
        KeyError: the batch has no ``mask`` (the dataset was loaded without
            ``load_mask=True`` or its records have no mask; see ``reidnb.masks``).
    """
    if "mask" not in batch:
        raise KeyError("MaskReID batch has no 'mask': load the data with load_mask=True and "
                       "give every record a mask (reidnb.masks.attach_masks for real data)")
    return {"x": batch["img"], "mask": batch["mask"]}


# =========================================================================== schedule
@dataclasses.dataclass(frozen=True)
class StageSchedule:
    """One training stage in the units of :func:`reidnb.papers.common.train_and_evaluate`.

    Attributes:
        stage: 1 or 2.
        iters: optimiser steps to run (the profile's, capped by ``cfg.max_iters``).
        epochs: epochs that cover them (the last one is cut by ``iters``).
        iters_per_epoch: train images // batch size.
        lr: learning rate (constant within the stage).
        text: one printable line with the conversion.
    """

    stage: int
    iters: int
    epochs: int
    iters_per_epoch: int
    lr: float
    text: str


def stage_schedule(cfg: Any, stage: int, num_train_images: int) -> StageSchedule:
    """The profile's schedule of stage ``stage`` for ``num_train_images`` training images.

    Reads ``cfg.stage{1,2}_iters`` (000 §3.2: 55,000 and 20,000) and ``cfg.stage{1,2}_lr``
    (0.1 and 0.01, recipes.md §1.7), the batch size ``cfg.batch_size`` (64) and the smoke
    cap ``cfg.max_iters``. The lr is constant within a stage (the papers give no policy).

    Raises:
        ValueError: stage not 1/2, a missing/non-positive iteration count, or fewer
            training images than one batch.
    """
    if stage not in (1, 2):
        raise ValueError(f"stage must be 1 or 2, got {stage!r}")
    bs = int(cfg.batch_size)
    ipe = batches_per_epoch(num_train_images, bs)
    want = _opt(cfg, f"stage{stage}_iters")
    if not want or int(want) < 1:
        raise ValueError(f"02_maskreid: the profile sets no stage{stage}_iters (>= 1)")
    iters = int(want)
    cap = _opt(cfg, "max_iters")
    capped = bool(cap) and int(cap) < iters
    if capped:
        iters = int(cap)
    lr = float(_opt(cfg, f"stage{stage}_lr", 0.1 if stage == 1 else 0.01))
    epochs = math.ceil(iters / ipe)
    text = (f"stage {stage}: {iters} iterations of batch {bs} (= {iters / ipe:.2f} epochs of "
            f"{num_train_images} images, {ipe} iterations each), lr {lr:g} constant"
            + (f" (capped from {want} by max_iters)" if capped else ""))
    return StageSchedule(stage, iters, epochs, ipe, lr, text)


def stage_config(cfg: Any, schedule: StageSchedule) -> Any:
    """``cfg`` with ``max_iters`` = the stage's iterations (train_and_evaluate stops there).

    The returned config differs from ``cfg`` only in that option, so the run's checkpoint
    hash also records the stage length.
    """
    return dataclasses.replace(cfg, options=MappingProxyType(
        {**dict(cfg.options), "max_iters": int(schedule.iters)}))


def _model_kw(cfg: Any, arch: str) -> dict[str, Any]:
    if arch not in ARCHS:
        raise ValueError(f"unknown MaskReID variant {arch!r}; expected one of {list(ARCHS)}")
    return {"backbone": cfg.backbone, "pretrained": cfg.pretrained, **ARCHS[arch]}


def pretrained_status(cfg: Any) -> str:
    """Say whether the profile's backbone starts from ImageNet weights (printed by the notebook).

    DGD has none (000 pre-trains it on the small-scale sets instead); a ResNet with
    ``pretrained="auto"`` is built once here to see whether torchvision's weights load.
    """
    if cfg.backbone == "dgd" or not cfg.pretrained:
        return f"backbone {cfg.backbone}: random initialisation (no ImageNet weights used)"
    from .models.backbones import ResNetBackbone

    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = ResNetBackbone(cfg.backbone, pretrained=cfg.pretrained).pretrained_loaded
    return (f"backbone {cfg.backbone}: ImageNet weights "
            + ("loaded" if loaded else "NOT available -> random initialisation"))


def train_stage1(cfg: Any, dataset: Any, *, arch: str = "MaskReID",
                 schedule: StageSchedule | None = None, evaluate_model: bool = True,
                 multi_query: bool = False, verbose: bool = True):
    """Stage 1: one network variant trained with softmax cross-entropy (000 §3.2).

    Random batches of ``cfg.batch_size``, SGD momentum 0.9, weight decay 5e-4, constant
    ``cfg.stage1_lr``; masks loaded for every record (:func:`mask_input`). Cached by
    :func:`reidnb.papers.common.train_and_evaluate` (checkpoint hash).

    Args:
        cfg: the notebook's RunConfig.
        dataset: target set (or :func:`joint_train_set` output with ``evaluate_model=False``).
        arch: key of :data:`ARCHS` (000 Table 4 variant).
        schedule: default :func:`stage_schedule` (cfg, 1, len(dataset.train)).
        evaluate_model: evaluate on ``dataset``'s query/gallery (single query, plus
            multi-query when asked).

    Returns:
        :class:`reidnb.papers.common.Run` named ``stage1-<arch>``.
    """
    from .papers.common import train_and_evaluate

    sched = schedule or stage_schedule(cfg, 1, len(dataset.train))
    return train_and_evaluate(
        stage_config(cfg, sched), dataset, name=f"stage1-{arch}", model="maskreid",
        losses=loss_terms("softmax"), model_kw=_model_kw(cfg, arch), sampler="random",
        batch_size=cfg.batch_size, lr=sched.lr, epochs=sched.epochs, load_mask=True,
        input_fn=mask_input, multi_query=multi_query, evaluate_model=evaluate_model,
        verbose=verbose)


def ranking_name(version: str, lam: float | None = None, alpha: float | None = None) -> str:
    """Run label of a ranking-loss run: ``ranking-<form>-lam<l>-alpha<a>``."""
    v = VERSIONS[version]
    lam = v.lam if lam is None else float(lam)
    alpha = v.alpha if alpha is None else float(alpha)
    return f"ranking-{v.form}-lam{lam:g}-alpha{alpha:g}"


def transfer_init(init: Any, num_classes: int) -> nn.Module:
    """A stage-1 network re-headed for ``num_classes`` identities (stage 1 on other sets).

    Copies every weight of ``init`` (a Run or a MaskReID module) except the identity
    classifier fc8, which is freshly initialised (N(0, 0.001)) with ``num_classes`` outputs,
    as when 000 fine-tunes the small-scale model on Market-1501.

    Raises:
        ValueError: ``init`` is not a MaskReID network.
    """
    from .models import build_model
    from .models.maskreid import MaskReID

    src = getattr(init, "model", init)
    if not isinstance(src, MaskReID):
        raise ValueError(f"transfer_init needs a MaskReID network, got {type(src).__name__}")
    if src.num_classes == num_classes:
        return src
    net = build_model("maskreid", num_classes, backbone=src.backbone_name,
                      use_mask=src.use_mask, fusion=src.fusion, pretrained=False,
                      feat_dim=src.feat_dim)
    state = {k: v for k, v in src.state_dict().items() if not k.startswith("classifier.")}
    missing, unexpected = net.load_state_dict(state, strict=False)
    bad = [k for k in missing if not k.startswith("classifier.")] + list(unexpected)
    if bad:
        raise ValueError(f"transfer_init: stage-1 weights do not fit the network: {bad[:5]}")
    return net


def train_stage2(cfg: Any, dataset: Any, init: Any, *, loss: str,
                 version: str = "maskreid_icme", lam: float | None = None,
                 alpha: float | None = None, schedule: StageSchedule | None = None,
                 multi_query: bool = False, rerank: bool = False, verbose: bool = True):
    """Stage 2: ``loss`` from the stage-1 weights ``init`` on ``dataset`` (000 §3.2).

    P/N anchor batches (one identity with ``cfg.num_pos`` images + ``batch - P`` other
    identities, one image each; :class:`reidnb.data.samplers.AnchorRankingSampler`) for
    every loss, so the loss comparison sees identical batches; SGD momentum 0.9, weight
    decay 5e-4, constant ``cfg.stage2_lr`` (recipes.md §1.7). When ``init`` was trained on
    other identities (joint small-scale stage 1) its classifier is replaced
    (:func:`transfer_init`).

    Args:
        loss, version, lam, alpha: see :func:`loss_terms`.
        multi_query, rerank: extra evaluation settings.

    Returns:
        :class:`reidnb.papers.common.Run` named after the loss (``softmax``, ``triplet``,
        ``npair``) or :func:`ranking_name`.
    """
    from .papers.common import train_and_evaluate

    sched = schedule or stage_schedule(cfg, 2, len(dataset.train))
    name = ranking_name(version, lam, alpha) if loss == "ranking" else loss
    src = getattr(init, "model", init)
    start = init if getattr(src, "num_classes", None) == dataset.num_train_pids \
        else transfer_init(init, dataset.num_train_pids)
    arch = next((a for a, kw in ARCHS.items()
                 if kw == {"use_mask": src.use_mask, "fusion": src.fusion}), "MaskReID")
    return train_and_evaluate(
        stage_config(cfg, sched), dataset, name=f"stage2-{name}", model="maskreid",
        losses=loss_terms(loss, version, lam=lam, alpha=alpha,
                          triplet_margin=float(_opt(cfg, "triplet_margin", 0.3))),
        model_kw=_model_kw(cfg, arch),
        sampler="anchor", batch_size=cfg.batch_size, num_pos=int(_opt(cfg, "num_pos", 10)),
        lr=sched.lr, epochs=sched.epochs, init=start, load_mask=True, input_fn=mask_input,
        multi_query=multi_query, rerank=rerank, verbose=verbose)


def evaluate_run(cfg: Any, run: Any, dataset: Any, *, protocol: str = "market1501",
                 rerank: bool = False):
    """Evaluate a trained run on another dataset's query/gallery (small-scale sets).

    Returns:
        :class:`reidnb.evaluation.EvalResult` (single query; ``protocol="cuhk03"`` for the
        classic CUHK03 split).
    """
    from .evaluation import evaluate
    from .papers.common import test_transform

    return evaluate(run.model.eval(), dataset, test_transform(cfg), device=cfg.device,
                    batch_size=128, workers=cfg.workers, flip=cfg.eval_flip, rerank=rerank,
                    input_fn=mask_input, load_mask=True, protocol=protocol)


def grid_cells(cfg: Any) -> list[tuple[str, float, float]]:
    """The lambda x alpha cells to run: ``[(version, lam, alpha), ...]``.

    ``cfg.grid_lambdas`` x ``cfg.grid_alphas`` for each version in ``cfg.grid_versions``
    (000 Table 6: lambda {0, 1, 2, 5, 10} x alpha {0.1, 0.15, 0.2, 0.5, 1.0} with the ICME
    loss; 003 Table 4: the same lambdas x alpha {0.1, 0.15} with the long-version loss).
    ``cfg.grid_alphas`` may be a mapping version -> alphas.
    """
    lams = [float(v) for v in (_opt(cfg, "grid_lambdas") or ())]
    alphas = _opt(cfg, "grid_alphas") or ()
    cells = []
    for version in _opt(cfg, "grid_versions") or ():
        if version not in VERSIONS:
            raise ValueError(f"grid_versions: unknown version {version!r}; expected "
                             f"{sorted(VERSIONS)}")
        a_list = alphas.get(version, ()) if isinstance(alphas, Mapping) else alphas
        cells += [(version, lam, float(a)) for lam in lams for a in a_list]
    return cells


@dataclasses.dataclass(frozen=True)
class Plan:
    """What the notebook runs under its profile and dataset (printed beside the numbers).

    Attributes:
        losses: stage-2 losses of the loss comparison (000 Table 5 / 003 Table 2).
        versions: paper versions whose default ranking run is trained (their Tables 2/3).
        grid: ``(version, lam, alpha)`` cells of the lambda x alpha grid.
        ablation: 000 Table 4 variants trained besides the full network.
        multi_query, rerank: evaluation settings.
        max_train_pids: training identities kept (None = all).
        reductions: one line per reduction of the paper recipe (printed and recorded).
    """

    losses: tuple[str, ...]
    versions: tuple[str, ...]
    grid: tuple[tuple[str, float, float], ...]
    ablation: tuple[str, ...]
    multi_query: bool
    rerank: bool
    max_train_pids: int | None
    reductions: tuple[str, ...]


def make_plan(cfg: Any) -> Plan:
    """The variants to run: the profile's, reduced for real data at ``quick``.

    The profile option ``real_reduction`` (quick profile) applies on a real dataset only:
    fewer losses, no grid / ablation, no multi-query (the gt_bbox masks would be 25k more
    parser predictions on the CPU), a train-id subset; each reduction is listed in
    ``reductions``. The smoke / quick synthetic and paper runs take the profile as it is.
    """
    losses = tuple(_opt(cfg, "losses") or LOSSES)
    versions = tuple(_opt(cfg, "versions") or VERSIONS)
    grid = tuple(grid_cells(cfg))
    ablation = tuple(_opt(cfg, "ablation") or ())
    multi_query = bool(_opt(cfg, "multi_query", True))
    rerank = bool(_opt(cfg, "rerank", True))
    max_pids = _opt(cfg, "max_train_pids")
    red: list[str] = []
    real = _opt(cfg, "real_reduction") if cfg.dataset_kind == "real" else None
    if cfg.profile != "paper":
        red.append(f"profile {cfg.profile}: backbone {cfg.backbone} at {cfg.height}x{cfg.width}, "
                   f"batch {cfg.batch_size} (P/N {_opt(cfg, 'num_pos')}/"
                   f"{cfg.batch_size - int(_opt(cfg, 'num_pos', 10))}), stage 1 "
                   f"{_opt(cfg, 'stage1_iters')} + stage 2 {_opt(cfg, 'stage2_iters')} "
                   f"iterations at lr {_opt(cfg, 'stage1_lr')} / {_opt(cfg, 'stage2_lr')} "
                   "(paper: DGD at 144x56, batch 64 with P/N 10/54, 55k + 20k iterations at "
                   "lr 0.1 / 0.01)")
    if real:
        if "losses" in real:
            losses = tuple(real["losses"])
        if "versions" in real:
            versions = tuple(real["versions"])
        if real.get("grid") is False:
            grid = ()
            red.append(f"real data at {cfg.profile}: no lambda x alpha grid")
        if "ablation" in real:
            ablation = tuple(real["ablation"])
            red.append(f"real data at {cfg.profile}: component ablation "
                       f"{list(ablation) or 'skipped'}")
        if real.get("multi_query") is False and multi_query:
            multi_query = False
            red.append(f"real data at {cfg.profile}: no multi-query evaluation")
        if max_pids is None and real.get("max_train_pids"):
            max_pids = int(real["max_train_pids"])
            red.append(f"real data at {cfg.profile}: {max_pids} training identities "
                       "(query/gallery complete)")
    if not multi_query and not any("multi-query" in r for r in red):
        red.append(f"profile {cfg.profile}: no multi-query evaluation")
    for v in (v for v in VERSIONS if v not in versions):
        red.append(f"no {v} ranking run")
    if len(losses) < len(LOSSES):
        red.append(f"loss comparison: {list(losses)} of {list(LOSSES)}")
    n_paper = 25 + 10
    if grid and len(grid) < n_paper:
        red.append(f"lambda x alpha grid: {len(grid)} of {n_paper} cells")
    if ablation and len(ablation) < 3:
        red.append(f"component ablation: {len(ablation)} of 3 variants besides the full net")
    if not losses or any(loss not in LOSSES for loss in losses):
        raise ValueError(f"losses must be a non-empty subset of {LOSSES}, got {losses}")
    return Plan(losses, versions, grid, ablation, multi_query, rerank, max_pids, tuple(red))


# =========================================================================== tables
def _metrics(run: Any, setting: str) -> dict[str, float] | None:
    if run is None or run.result is None or setting not in run.result.results:
        return None
    return run.metrics(setting)


def loss_table(runs: Mapping[str, Any]) -> pd.DataFrame:
    """Rank-1 / mAP (percent) of each run for every evaluated setting, plus minutes.

    Args:
        runs: label -> Run (e.g. the stage-2 loss comparison).

    Returns:
        one row per label; columns ``<setting> rank1`` / ``<setting> mAP`` for
        single-query, multi-query and their re-ranked versions where evaluated,
        ``train_min`` and ``eval_min``.
    """
    rows = []
    for label, run in runs.items():
        row: dict[str, Any] = {"run": label}
        for setting in ("single-query", "multi-query", "single-query+re-rank",
                        "multi-query+re-rank"):
            m = _metrics(run, setting)
            if m is not None:
                row[f"{setting} rank1"] = m["rank1"]
                row[f"{setting} mAP"] = m["mAP"]
        row["train_min"] = run.train_seconds / 60.0
        row["eval_min"] = run.eval_seconds / 60.0
        rows.append(row)
    return pd.DataFrame(rows).set_index("run").round(2)


def grid_table(runs: Mapping[tuple[str, float, float], Any], version: str,
               metric: str = "rank1") -> pd.DataFrame:
    """lambda (rows) x alpha (columns) of one version's ranking runs (single query, percent).

    Args:
        runs: ``(version, lam, alpha) -> Run``.
        metric: ``"rank1"`` or ``"mAP"``.
    """
    cells = [(lam, alpha, run.metrics("single-query")[metric])
             for (v, lam, alpha), run in runs.items() if v == version]
    if not cells:
        return pd.DataFrame()
    df = pd.DataFrame(cells, columns=["lambda", "alpha", metric])
    return df.pivot(index="lambda", columns="alpha", values=metric).round(2)


def ablation_table(runs: Mapping[str, Any], published: pd.DataFrame | None = None
                   ) -> pd.DataFrame:
    """000 Table 4 proxy: rank-1 / mAP (single query, percent) per network variant.

    Args:
        runs: arch (key of :data:`ARCHS`) -> Run.
        published: optional ``load_published("maskreid_icme", "Table 4")``; adds the
            published mean rank-1 over the six small-scale sets as a reference column.
    """
    rows = []
    for arch, run in runs.items():
        m = run.metrics("single-query")
        row = {"variant": arch, "masked input": ARCHS[arch]["use_mask"],
               "fusion": ARCHS[arch]["fusion"], "rank1": m["rank1"], "mAP": m["mAP"],
               "train_min": run.train_seconds / 60.0}
        if published is not None:
            sel = published[published["method"] == arch]
            row["published mean rank1 (6 small sets)"] = float(sel["value"].mean()) \
                if len(sel) else float("nan")
        rows.append(row)
    return pd.DataFrame(rows).set_index("variant").round(2)


def published_grid(version: str, metric: str = "rank1") -> pd.DataFrame:
    """The published lambda x alpha grid of one version (000 Table 6 / 003 Table 4), percent."""
    from .core.results import load_published

    table = "Table 6" if version == "maskreid_icme" else "Table 4"
    pub = load_published(version, table)
    pub = pub[pub["metric"] == metric]
    cells = []
    for variant, value in zip(pub["variant"], pub["value"]):
        m = re.fullmatch(r"lambda=([\d.]+),alpha=([\d.]+)", str(variant))
        if m:
            cells.append((float(m.group(1)), float(m.group(2)), float(value)))
    df = pd.DataFrame(cells, columns=["lambda", "alpha", metric])
    return df.pivot(index="lambda", columns="alpha", values=metric)


def pair_distances(result: Any) -> tuple[np.ndarray, np.ndarray]:
    """Single-query distances of true-match and of different-identity pairs.

    Market-1501 protocol (as :func:`reidnb.evaluation.evaluate_rank`): gallery images of
    pid -1 (junk) and of the query's own identity *and* camera are left out; distractors
    (pid 0) count as different identities.

    Args:
        result: :class:`reidnb.evaluation.EvalResult` (``distmat`` [Q, G], pids, camids).

    Returns:
        ``(pos, neg)``: float32 1-D arrays of the distances of the kept same-identity
        and different-identity pairs.
    """
    d = np.asarray(result.distmat, dtype=np.float32)                    # [Q, G]
    qp, gp = np.asarray(result.q_pids)[:, None], np.asarray(result.g_pids)[None, :]
    qc, gc = np.asarray(result.q_camids)[:, None], np.asarray(result.g_camids)[None, :]
    keep = (gp != -1) & ~((qp == gp) & (qc == gc))                      # [Q, G]
    same = qp == gp
    return d[keep & same], d[keep & ~same]


# --------------------------------------------------------------------------- results rows
#: (paper_id, loss) -> (method, variant) of the published loss-comparison rows.
_LOSS_ROWS: dict[tuple[str, str], tuple[str, str]] = {
    ("maskreid_icme", "softmax"): ("Softmax loss", "MaskReID network + softmax loss"),
    ("maskreid_icme", "triplet"): ("Triplet loss",
                                   "MaskReID network + triplet loss (online hard mining)"),
    ("maskreid_icme", "npair"): ("N-pair loss", "MaskReID network + N-pair loss"),
    ("maskreid_icme", "ranking"): ("Ranking loss",
                                   "MaskReID network + ranking loss, lambda=1, alpha=0.2"),
    ("maskreid", "softmax"): ("MaskReID_soft", "softmax loss"),
    ("maskreid", "triplet"): ("MaskReID_trip", "triplet loss (online hard mining)"),
    ("maskreid", "ranking"): ("MaskReID_rank", "ranking loss, lambda=2, alpha=0.15"),
}
#: 000 Table 4 / 003 Table 1 variant strings (ours: the DGD row is a re-implementation).
_ARCH_ROWS: dict[str, str] = {
    "DGD": "base network (single stream, last level only; DGD-like)",
    "MaskReID-F": "multi-level fusion, no masked input",
    "MaskReID-M": "masked input, no multi-level fusion",
    "MaskReID": "masked input + multi-level fusion",
}
#: 000 Table 1 / 003 Table 1 dataset names of the small-scale sets (CSV spelling).
TABLE1_NAMES: dict[str, str] = {"viper": "VIPeR", "prid": "PRID", "3dpes": "3DPeS",
                                "ilids": "iLIDS", "cuhk01": "CUHK01", "cuhk03": "CUHK03"}


def _published_variant(pub: pd.DataFrame, method: str, lam: float, alpha: float) -> str | None:
    """The CSV's own ``lambda=..,alpha=..`` string of a grid cell (``alpha=1.0`` stays)."""
    for v in pub.loc[pub["method"] == method, "variant"].unique():
        m = re.fullmatch(r"lambda=([\d.]+),alpha=([\d.]+)", str(v))
        if m and math.isclose(float(m.group(1)), lam) and math.isclose(float(m.group(2)), alpha):
            return str(v)
    return None


def maskreid_rows(cfg: Any, *, losses: Mapping[str, Any] | None = None,
                  ranking: Mapping[tuple[str, float, float], Any] | None = None,
                  ablation: Mapping[str, Any] | None = None,
                  small_sets: Mapping[str, Mapping[str, Any]] | None = None,
                  stage1_seconds: float = 0.0, note: str = "") -> list[dict[str, Any]]:
    """Results rows (:func:`reidnb.core.results.result_rows`) of every measured table cell.

    Which table a run fills is decided by the dataset run (synthetic = Market-1501
    stand-in, labelled synthetic by ``result_rows``):

    * Market-1501: 000 Table 5 (softmax / triplet / N-pair / ranking(ICME), SQ + MQ) and
      Table 2 (ranking(ICME) +- re-ranking); 003 Table 2 (softmax / triplet /
      ranking(long) +- re-ranking); 000 Table 6 and 003 Table 4 (grid cells of their own
      loss form, single query). DukeMTMC-reID: 000 Table 3 and 003 Table 3 (no MQ).
      A cell the paper did not print for this dataset is written with ``extra=True``.
    * ``ablation``: 000 Table 4 network variants evaluated on the target set -- a
      Market-1501 proxy of a small-scale table, always ``extra`` (not comparable).
    * ``small_sets``: ``{set name: {arch: EvalResult}}`` -> 000 Table 1/4 and 003 Table 1
      rank-1 (only when the small-scale sets were present; real data).

    Args:
        losses: loss (key of :data:`LOSSES`, ranking = the ICME default) -> stage-2 Run.
        ranking: ``(version, lam, alpha) -> Run`` (defaults and grid cells).
        ablation: arch -> stage-1 Run.
        stage1_seconds: seconds of the shared stage-1 run, added to each stage-2 row.
        note: profile reductions, appended to every row's note.

    Returns:
        list of row dicts for :func:`reidnb.core.results.write_results`.
    """
    from .core.results import DATASET_NAMES, load_published, result_rows

    dataset = "Market-1501" if cfg.dataset_kind == "synthetic" \
        else DATASET_NAMES.get(str(cfg.dataset), str(cfg.dataset))
    proto_of = {"single-query": "single-query", "multi-query": "multi-query"}
    if dataset != "Market-1501":
        proto_of = {"single-query": ""}          # Duke / CUHK03: the papers give no protocol
    rows: list[dict[str, Any]] = []

    def add(run, paper_id, table, method, variant, *, rerank_method=None, metrics=("rank1", "mAP"),
            what="", protocols=None, secs_extra=stage1_seconds):
        pub = load_published(paper_id, table)
        for setting, protocol in (protocols or proto_of).items():
            for rr in (False, True):
                if rr and rerank_method is None:
                    continue
                m = _metrics(run, setting + ("+re-rank" if rr else ""))
                if m is None:
                    continue
                meth = rerank_method if rr else method
                hit = pub[(pub["dataset"] == dataset) & (pub["method"] == meth)
                          & (pub["variant"] == variant) & (pub["reranking"] == int(rr))
                          & (pub["protocol"].replace("", "single-query")
                             == (protocol or "single-query"))]
                text = "; ".join(s for s in (what, f"stage 2 from a shared stage-1 run "
                                             f"({stage1_seconds:.0f} s, counted in seconds)"
                                             if secs_extra else "", note) if s)
                rows.extend(result_rows(
                    cfg, paper_id=paper_id, table=table, dataset=dataset, protocol=protocol,
                    method=meth, variant=variant, metrics={k: m[k] for k in metrics},
                    reranking=rr, seconds=run.seconds + secs_extra, epochs=run.epochs,
                    note=text, extra=hit.empty))

    duke = dataset == "DukeMTMC-reID"
    for loss, run in (losses or {}).items():
        for paper_id in VERSIONS:
            if (paper_id, loss) not in _LOSS_ROWS or (paper_id, loss) == ("maskreid", "ranking"):
                continue                        # 003's ranking row is its own (long-form) run
            method, variant = _LOSS_ROWS[(paper_id, loss)]
            table = "Table 5" if paper_id == "maskreid_icme" else ("Table 3" if duke
                                                                   else "Table 2")
            add(run, paper_id, table, method, variant)
    for (version, lam, alpha), run in (ranking or {}).items():
        v = VERSIONS[version]
        default = math.isclose(lam, v.lam) and math.isclose(alpha, v.alpha)
        what = f"ranking loss form {v.form} ({version})"
        if default and version == "maskreid_icme":
            add(run, "maskreid_icme", "Table 3" if duke else "Table 2", "MaskReID",
                "ranking loss, lambda=1, alpha=0.2", rerank_method="MaskReID_re-ranking",
                what=what)
        if default and version == "maskreid":
            add(run, "maskreid", "Table 3" if duke else "Table 2", "MaskReID_rank",
                "ranking loss, lambda=2, alpha=0.15", rerank_method="MaskReID_rank+re-ranking",
                what=what)
        table = "Table 6" if version == "maskreid_icme" else "Table 4"
        method = "MaskReID" if version == "maskreid_icme" else "MaskReID_rank"
        pub = load_published(version, table)
        variant = _published_variant(pub, method, lam, alpha) or f"lambda={lam:g},alpha={alpha:g}"
        add(run, version, table, method, variant, what=what,
            protocols={"single-query": "" if duke else "single-query"})
    for arch, run in (ablation or {}).items():
        add(run, "maskreid_icme", "Table 4", arch, _ARCH_ROWS[arch],
            what=f"{dataset} proxy of the small-scale Table 4 (stage-1 softmax); not comparable "
                 "with the published small-set numbers",
            protocols={"single-query": "" if duke else "single-query"}, secs_extra=0.0)
    for set_name, results in (small_sets or {}).items():
        ds_name = TABLE1_NAMES[set_name]
        for arch, res in results.items():
            r1 = {"rank1": 100.0 * float(res.results["single-query"].cmc[0])}
            cells = [("maskreid_icme", "Table 4", arch, _ARCH_ROWS[arch])]
            if arch == "MaskReID":
                cells += [("maskreid_icme", "Table 1", "MaskReID",
                           "masked input + multi-level fusion; softmax; joint training on all "
                           "small-scale sets + CUHK03"),
                          ("maskreid", "Table 1", "MaskReID-MF",
                           "masked input + multi-level fusion; softmax")]
            if arch == "MaskReID-M":
                cells += [("maskreid", "Table 1", "MaskReID-M",
                           "masked input, no multi-level fusion; softmax")]
            for paper_id, table, method, variant in cells:
                pub = load_published(paper_id, table)
                hit = pub[(pub["dataset"] == ds_name) & (pub["method"] == method)
                          & (pub["variant"] == variant)]
                rows.extend(result_rows(
                    _Named(cfg, ds_name), paper_id=paper_id, table=table, dataset=ds_name,
                    protocol="", method=method, variant=variant, metrics=r1, reranking=False,
                    seconds=0.0, note="; ".join(s for s in ("joint small-scale stage 1", note)
                                                if s), extra=hit.empty))
    return rows


class _Named:
    """A config view whose ``dataset`` is a small-scale set (for result_rows' check)."""

    def __init__(self, cfg: Any, dataset: str):
        self._cfg, self.dataset = cfg, dataset

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cfg, name)


# =========================================================================== small sets
#: Small-scale sets of 000 Table 1 / DGD's joint (JSTL) training set: name -> (folder under
#: data_root, what the folder must hold). Layouts as torchreid (``viper``, ``prid``,
#: ``ilids``, ``cuhk01``, ``cuhk03`` classic after torchreid's own preprocessing) and
#: the raw 3DPeS / Shinpuhkan folders as DGD's ``data/format_*.py`` read them.
SMALL_SETS: dict[str, tuple[str, str]] = {
    "viper": ("viper", "VIPeR/cam_a/*.bmp and VIPeR/cam_b/*.bmp (632 + 632)"),
    "prid": ("prid2011", "prid_2011/single_shot/cam_a/person_NNNN.png and cam_b/"),
    "3dpes": ("3dpes", "RGB/<pid>_<view>_*.bmp"),
    "ilids": ("ilids", "i-LIDS_Pedestrian/Persons/PPPPIII.jpg (476 images, 119 ids)"),
    "cuhk01": ("cuhk01", "campus/PPPPIII.png (971 ids x 4)"),
    "cuhk03": ("cuhk03", "images_labeled/*.png + splits_classic_labeled.json (torchreid)"),
    "shinpuhkan": ("shinpuhkan", "images/PPP_CC_*.jpg (train only)"),
}


def _dataset(name: str, root: Path, train, query, gallery, notes) -> Any:
    from .data.datasets import ReIDDataset

    pids = sorted({r.pid for r in train})
    relabel = {p: i for i, p in enumerate(pids)}
    train = [dataclasses.replace(r, pid=relabel[r.pid]) for r in train]
    return ReIDDataset(name=name, root=root, kind="real", train=train, query=query,
                       gallery=gallery, num_train_pids=len(pids),
                       num_train_cams=len({r.camid for r in train}), notes=tuple(notes))


def _glob(folder: Path, pattern: str, what: str) -> list[Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} not found; expected {what}")
    files = sorted(folder.glob(pattern))
    if not files:
        raise FileNotFoundError(f"{folder} holds no {pattern} files; expected {what}")
    return files


def _split_json(path: Path) -> Any | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not a readable torchreid split file ({e})") from e


def _two_camera_set(name, root, cam_a, cam_b, split, seed, notes, pid_of=None):
    """VIPeR / CUHK01 style: half of the ids train, camera a = query, camera b = gallery."""
    from .data.datasets import Record

    items = [(str(p), pid_of(p) if pid_of else i, 0) for i, p in enumerate(cam_a[0])] + \
            [(str(p), pid_of(p) if pid_of else i, 1) for i, p in enumerate(cam_b[0])]
    if split is not None:
        train_names = {os.path.basename(t[0]) for t in split["train"]}
        notes.append(f"split 0 of {cam_a[1]}")
        train_pids = {pid for path, pid, _ in items if os.path.basename(path) in train_names}
    else:
        pids = sorted({pid for _, pid, _ in items})
        rng = np.random.default_rng(seed)
        train_pids = set(rng.permutation(pids)[:len(pids) // 2].tolist())
        notes.append(f"no torchreid split file: seeded half/half split (seed {seed})")
    train = [Record(p, pid, cam) for p, pid, cam in items if pid in train_pids]
    query = [Record(p, pid, cam) for p, pid, cam in items if pid not in train_pids and cam == 0]
    gallery = [Record(p, pid, cam) for p, pid, cam in items if pid not in train_pids and cam == 1]
    return _dataset(name, root, train, query, gallery, notes)


def load_small_set(name: str, data_root: str | os.PathLike, *, seed: int = 0) -> Any:
    """Load one small-scale set (000 Table 1) as a :class:`ReIDDataset` (kind ``"real"``).

    Split: torchreid's ``splits*.json`` beside the data (split 0) when present, else a
    seeded split by the same rule (the folder is never written): VIPeR / CUHK01 half of
    the ids for training, camera A query and camera B gallery (CUHK01: views 1-2 = A,
    3-4 = B); PRID 2011 single shot 100 of the 200 shared ids for training, query = cam_a
    of the other 100, gallery = their cam_b images + cam_b ids 201-749; iLIDS half of the
    119 ids, one random query and one gallery image per test id; 3DPeS (DGD) 100 test
    ids, each id's views split in half into camera 0 (query) and 1 (gallery); CUHK03
    classic split 0 of torchreid's ``splits_classic_labeled.json`` (query = gallery =
    test images; evaluate with ``protocol="cuhk03"``); Shinpuhkan train only.

    Args:
        name: key of :data:`SMALL_SETS`.
        data_root: folder holding ``<SMALL_SETS[name][0]>/``.
        seed: seed of the split when no split file exists.

    Raises:
        KeyError: unknown name. FileNotFoundError: the folder or its images are missing
        (the message names the path and the expected layout). ValueError: an unreadable
        split file or file names that do not follow the layout.
    """
    from .data.datasets import Record

    if name not in SMALL_SETS:
        raise KeyError(f"unknown small-scale set {name!r}; expected one of {list(SMALL_SETS)}")
    root = Path(data_root) / SMALL_SETS[name][0]
    what = SMALL_SETS[name][1]
    notes: list[str] = []
    rng = np.random.default_rng(seed)
    if name == "viper":
        a = _glob(root / "VIPeR" / "cam_a", "*.bmp", what)
        b = _glob(root / "VIPeR" / "cam_b", "*.bmp", what)
        if len(a) != len(b):
            raise ValueError(f"{root}/VIPeR: cam_a has {len(a)} images, cam_b {len(b)}; "
                             "expected one per identity in each")
        splits = _split_json(root / "splits.json")
        return _two_camera_set(name, root, (a, "splits.json"), (b, ""),
                               splits[0] if splits else None, seed, notes)
    if name == "cuhk01":
        files = _glob(root / "campus", "*.png", what)

        def parse(p: Path) -> tuple[int, int]:
            if not re.fullmatch(r"\d{7}\.png", p.name):
                raise ValueError(f"{p}: expected a CUHK01 name PPPPIII.png")
            return int(p.name[:4]) - 1, (int(p.name[4:7]) - 1) // 2
        a = [p for p in files if parse(p)[1] == 0]
        b = [p for p in files if parse(p)[1] == 1]
        splits = _split_json(root / "splits.json")
        return _two_camera_set(name, root, (a, "splits.json"), (b, ""),
                               splits[0] if splits else None, seed, notes,
                               pid_of=lambda p: parse(Path(p))[0])
    if name == "prid":
        base = root / "prid_2011" / "single_shot"
        a = {p.name for p in _glob(base / "cam_a", "person_*.png", what)}
        b = {p.name for p in _glob(base / "cam_b", "person_*.png", what)}
        splits = _split_json(root / "splits_single_shot.json")
        if splits:
            train_ids = [int(p) for p in splits[0]["train"]]
            notes.append("split 0 of splits_single_shot.json")
        else:
            train_ids = sorted(rng.choice(np.arange(1, 201), 100, replace=False).tolist())
            notes.append(f"no torchreid split file: seeded 100/100 split (seed {seed})")
        test_ids = [p for p in range(1, 201) if p not in set(train_ids)]
        fn = "person_{:04d}.png".format
        need = [fn(p) for p in range(1, 201)]
        lacking = [n for n in need if n not in a or n not in b]
        if lacking:
            raise FileNotFoundError(f"{base}: {len(lacking)} of the 200 shared ids lack an "
                                    f"image in cam_a or cam_b, e.g. {lacking[0]}")
        train = [Record(str(base / c / fn(p)), p, i) for p in train_ids
                 for i, c in enumerate(("cam_a", "cam_b"))]
        query = [Record(str(base / "cam_a" / fn(p)), p, 0) for p in test_ids]
        gallery = [Record(str(base / "cam_b" / fn(p)), p, 1) for p in test_ids] + \
                  [Record(str(base / "cam_b" / n), int(n[7:11]), 1) for n in sorted(b)
                   if int(n[7:11]) > 200]
        return _dataset(name, root, train, query, gallery, notes)
    if name == "ilids":
        folder = root / "i-LIDS_Pedestrian" / "Persons"
        files = {p.name: p for p in _glob(folder, "*.jpg", what)}
        by_pid: dict[int, list[str]] = {}
        for n in sorted(files):
            if not re.fullmatch(r"\d{7}\.jpg", n):
                raise ValueError(f"{folder / n}: expected an iLIDS name PPPPIII.jpg")
            by_pid.setdefault(int(n[:4]), []).append(n)
        splits = _split_json(root / "splits.json")
        if splits:
            tr, q, g = splits[0]["train"], splits[0]["query"], splits[0]["gallery"]
            notes.append("split 0 of splits.json")
        else:
            pids = sorted(by_pid)
            order = rng.permutation(pids).tolist()
            train_pids, test_pids = order[:len(pids) // 2], order[len(pids) // 2:]
            tr = [n for p in train_pids for n in by_pid[p]]
            q, g = [], []
            for p in sorted(test_pids):
                two = rng.choice(by_pid[p], 2, replace=False).tolist()
                q.append(two[0])
                g.append(two[1])
            notes.append(f"no torchreid split file: seeded half/half split (seed {seed})")

        def rec(n: str) -> Any:
            if n not in files:
                raise FileNotFoundError(f"{folder / n} (listed in the split) not found")
            return Record(str(files[n]), int(n[:4]), int(n[4:7]) - 1)
        return _dataset(name, root, [rec(n) for n in tr], [rec(n) for n in q],
                        [rec(n) for n in g], notes)
    if name == "3dpes":
        files = _glob(root / "RGB", "*.bmp", what)
        views: dict[int, dict[str, list[Path]]] = {}
        for p in files:
            parts = p.name.split("_")
            if len(parts) < 3 or not parts[0].isdigit():
                raise ValueError(f"{p}: expected a 3DPeS name <pid>_<view>_..._RGB.bmp")
            views.setdefault(int(parts[0]), {}).setdefault(parts[1], []).append(p)
        pids = sorted(views)
        test = set(rng.permutation(pids)[:min(100, len(pids) // 2)].tolist())
        notes.append(f"DGD rule: {len(test)} test ids, views split in half into two "
                     f"cameras (seed {seed})")
        train, query, gallery = [], [], []
        for p in pids:
            vids = sorted(views[p])
            vids = [vids[i] for i in rng.permutation(len(vids))]
            half = max(1, len(vids) // 2)
            for cam, group in ((0, vids[:half]), (1, vids[half:])):
                for v in group:
                    for f in views[p][v]:
                        r = Record(str(f), p, cam)
                        (train if p not in test else query if cam == 0 else gallery).append(r)
        return _dataset(name, root, train, query, gallery, notes)
    if name == "cuhk03":
        splits = _split_json(root / "splits_classic_labeled.json")
        if not splits:
            raise FileNotFoundError(f"{root}/splits_classic_labeled.json not found; expected "
                                    f"{what} (run torchreid's CUHK03 preprocessing once: it "
                                    "reads cuhk-03.mat with h5py)")
        folder = root / "images_labeled"

        def recs(items) -> list:
            out = []
            for path, pid, cam in items:
                f = folder / os.path.basename(path)
                if not f.is_file():
                    raise FileNotFoundError(f"{f} (listed in splits_classic_labeled.json) "
                                            "not found")
                out.append(Record(str(f), int(pid), int(cam)))
            return out
        notes.append("classic split 0 of splits_classic_labeled.json; evaluate with "
                     "protocol='cuhk03'")
        return _dataset(name, root, recs(splits[0]["train"]), recs(splits[0]["query"]),
                        recs(splits[0]["gallery"]), notes)
    # shinpuhkan
    files = _glob(root / "images", "*.jpg", what)
    train = []
    for p in files:
        if not re.match(r"\d{3}_\d{2}", p.name):
            raise ValueError(f"{p}: expected a Shinpuhkan name PPP_CC_....jpg")
        train.append(Record(str(p), int(p.name[:3]), int(p.name[4:6]) - 1))
    return _dataset(name, root, train, [], [], ["train only (DGD: all 24 ids for training)"])


def find_small_sets(data_root: str | os.PathLike | None, *, seed: int = 0,
                    verbose: bool = True) -> dict[str, Any]:
    """Every small-scale set whose folder exists under ``data_root``: name -> dataset.

    A folder that exists but does not follow its layout raises (the message says what was
    expected); absent folders are listed when ``verbose``.
    """
    found: dict[str, Any] = {}
    if data_root is None:
        return found
    for name, (folder, what) in SMALL_SETS.items():
        if (Path(data_root) / folder).is_dir():
            found[name] = load_small_set(name, data_root, seed=seed)
            if verbose:
                ds = found[name]
                print(f"{name}: {len(ds.train)} train images / {ds.num_train_pids} ids, "
                      f"{len(ds.query)} query, {len(ds.gallery)} gallery ({'; '.join(ds.notes)})")
    if verbose:
        missing = [f"{SMALL_SETS[n][0]}/ ({SMALL_SETS[n][1]})" for n in SMALL_SETS
                   if n not in found]
        if missing:
            print(f"small-scale sets not found under {data_root}: " + ", ".join(missing))
    return found


def joint_train_set(sets: Mapping[str, Any]) -> Any:
    """DGD's joint (JSTL) training set: the training splits of ``sets`` with disjoint labels.

    Identities are offset per set (set order), cameras likewise, so no two sets share a
    label; query and gallery are empty (each set is evaluated on its own).

    Raises:
        ValueError: no set, or a set with an empty training split.
    """
    from .data.datasets import ReIDDataset

    if not sets:
        raise ValueError("joint_train_set: no small-scale set given")
    train, pid0, cam0, notes = [], 0, 0, []
    for name, ds in sets.items():
        if not ds.train:
            raise ValueError(f"joint_train_set: {name} has no training images")
        train += [dataclasses.replace(r, pid=r.pid + pid0, camid=r.camid + cam0)
                  for r in ds.train]
        notes.append(f"{name}: ids {pid0}..{pid0 + ds.num_train_pids - 1}")
        pid0 += ds.num_train_pids
        cam0 += max(r.camid for r in ds.train) + 1
    roots = [Path(ds.root) for ds in sets.values()]
    return ReIDDataset(name="jstl(" + "+".join(sets) + ")", root=Path(os.path.commonpath(roots)),
                       kind="real", train=train, query=[], gallery=[], num_train_pids=pid0,
                       num_train_cams=cam0, notes=tuple(notes))


def attach_small_set_masks(sets: Mapping[str, Any], parser_checkpoint: str | os.PathLike | None,
                           *, device: str = "auto", seed: int = 0,
                           verbose: bool = True) -> dict[str, Any]:
    """Person masks for the small-scale sets from the target set's light parser.

    The small sets have no parsing labels, so their masks come from the parser that
    :func:`reidnb.masks.attach_masks` trained on Market-1501's labels (``parser.pt`` in its
    cache root), cached under ``data/cache/masks/<set>``.

    Raises:
        FileNotFoundError: no parser checkpoint (e.g. the target set is synthetic: its exact
            masks need no parser); the message says how to get one.
    """
    from .masks import attach_masks

    if parser_checkpoint is None or not Path(parser_checkpoint).is_file():
        raise FileNotFoundError(
            f"no mask parser checkpoint ({parser_checkpoint}): the small-scale sets need the "
            "light parser trained on Market-1501's parsing labels; run this notebook once with "
            "dataset='market1501' (reidnb.masks.attach_masks writes parser.pt)")
    out = {}
    for name, ds in sets.items():
        splits = tuple(s for s in ("train", "query", "gallery") if getattr(ds, s))
        out[name], _ = attach_masks(ds, parser_checkpoint=parser_checkpoint, splits=splits,
                                    device=device, seed=seed, verbose=verbose)
    return out


def small_scale_runs(cfg: Any, sets: Mapping[str, Any], archs: Sequence[str], *,
                     verbose: bool = True) -> tuple[Any, dict[str, Any], dict[str, dict]]:
    """000 Tables 1 and 4 on the small-scale sets: joint stage-1 training, per-set rank-1.

    Every network variant in ``archs`` is trained with the stage-1 recipe on
    :func:`joint_train_set` (DGD's JSTL set), then evaluated on each set that has a test
    split (CUHK03 with ``protocol="cuhk03"``, the others with the Market-1501 rule, which on
    these camera-separated splits is plain single-shot CMC).

    Returns:
        ``(joint set, {arch: Run}, {set name: {arch: EvalResult}})``.
    """
    joint = joint_train_set(sets)
    runs = {arch: train_stage1(cfg, joint, arch=arch, evaluate_model=False, verbose=verbose)
            for arch in archs}
    results = {name: {arch: evaluate_run(cfg, run, ds, protocol="cuhk03" if name == "cuhk03"
                                         else "market1501") for arch, run in runs.items()}
               for name, ds in sets.items() if ds.query and ds.gallery}
    return joint, runs, results


def small_scale_table(results: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Rank-1 (percent) per variant (rows) and small-scale set (columns, Table 1 names),
    with the published 000 Table 4 value beside each measured one."""
    from .core.results import load_published

    pub = load_published("maskreid_icme", "Table 4")
    rows: dict[str, dict[str, float]] = {}
    for name, by_arch in results.items():
        col = TABLE1_NAMES.get(name, name)
        for arch, res in by_arch.items():
            row = rows.setdefault(arch, {})
            row[f"{col}"] = round(100.0 * float(res.results["single-query"].cmc[0]), 2)
            hit = pub[(pub["dataset"] == col) & (pub["method"] == arch)]
            row[f"{col} (paper)"] = float(hit["value"].iloc[0]) if len(hit) else float("nan")
    return pd.DataFrame.from_dict(rows, orient="index")

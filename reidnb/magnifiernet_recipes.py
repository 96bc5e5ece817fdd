"""Helpers of notebook ``04_magnifiernet``: the MagnifierNet paper (002) as code.

Y. Lan et al., "MagnifierNet: Towards Semantic Adversary and Fusion for Person
Re-identification" (BMVC 2020; paper id ``magnifiernet``, seed text 002); recipe in
``papers/recipes.md`` §3. The network and its loss terms are
:class:`reidnb.models.magnifiernet.MagnifierNet` and
:func:`reidnb.models.magnifiernet.magnifiernet_losses`; this module turns the paper's
experiments into runs of :func:`reidnb.papers.common.train_and_evaluate`:

* **Table 2** (component ablation): each row is a set of model switches
  (:data:`VARIANTS`, :func:`model_kw`). ``G+M+SAB+SFB+SD`` is not a separate network: it
  is stage 2 (SD loss added, gamma = 2e-3) started from the ``G+M+SAB+SFB`` stage-1 run.
* **Two-stage schedule** (002 §4.1, recipes.md §3.3): stage 1 trains everything except
  the SD loss (paper: 460 epochs, BoT Adam 3.5e-4, warm-up 10 epochs, x0.1 at epochs
  150 / 300); stage 2 adds SD for 40 epochs at lr 1e-3 from stage 1's weights
  (``init=``). :func:`stage_plan` reads the profile; short profiles give iteration counts.
* **Fig. 4**: SFB (GRU fusion) against the ablation branch AB (``fusion="ab"``), both
  ``G+M+SAB+SFB`` without SD.
* **Fig. 5**: the SAB's K-hat sweep, Random-torso against Random-baseline sampling, on
  ``G+M+SAB+SFB`` without SD (K-hat even: Random-torso keeps K-hat/2 regions per torso
  half).
* **Table 1**: the full model, with and without k-reciprocal re-ranking, on the dataset
  the notebook runs.

Every stage-1 training needed by the three experiments is listed once
(:meth:`Plan.stage1_specs`): the ``G+M+SAB+SFB`` run with Random-torso K-hat = 4 is
Table 2's row, Fig. 4's SFB bar, Fig. 5's Random-torso point at 4 and stage 2's start.

Results rows (:func:`magnifiernet_rows`) follow ``reidnb.core.results``: Table 1 rows name the
dataset run (the synthetic set stands in for Market-1501); the published Table 2 has only
CUHK03-L and DukeMTMC-reID columns, so a synthetic run stands in for DukeMTMC-reID (so
that 05_summary can read its ablation directions, flagged "synthetic: not comparable") and
a real run on another dataset (Market-1501, CUHK03-D) is recorded with ``extra=True``
(:func:`table_dataset`).
"""
from __future__ import annotations

import dataclasses
import math
from types import MappingProxyType
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from .papers.common import batches_per_epoch

__all__ = [
    "Variant", "VARIANTS", "TABLE2_ROWS", "STAGE1_FULL", "FULL", "SD_CONTROL", "SAMPLINGS",
    "variant",
    "model_kw", "parts_input", "image_input", "Stage", "stage_plan", "stage_config",
    "PAPER_RECIPE", "recipe_deviations", "RunSpec", "Plan", "make_plan", "prepare_parts",
    "train_stage1", "train_stage2", "run_stage1_all", "pretrained_status",
    "top1_matches", "pick_top1_queries", "table_dataset", "table1_frame", "table2_frame",
    "fig4_frame", "fig5_frame", "magnifiernet_rows", "figure_batch", "activation_maps",
    "predicted_parts", "top1_panel",
]


# =========================================================================== variants
@dataclasses.dataclass(frozen=True)
class Variant:
    """One row of 002 Table 2: which parts of MagnifierNet are on.

    Attributes:
        name: the row's ``variant`` string in ``paper_results.csv`` (``"G+M+SAB"``).
        label: the row as Table 2 prints its increment (``"+SAB"``).
        use_mask, use_sab, use_sfb: model switches (M, SAB, SFB).
        sd: the row adds the SD loss, i.e. it is stage 2 of the ``G+M+SAB+SFB`` network.
    """

    name: str
    label: str
    use_mask: bool
    use_sab: bool
    use_sfb: bool
    sd: bool = False

    @property
    def network(self) -> str:
        """Name of the stage-1 network this row is trained as (``+SD`` -> without SD)."""
        return self.name.removesuffix("+SD")


#: The rows of 002 Table 2, in the paper's order.
VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("G", "G", False, False, False),
    Variant("G+M", "+M", True, False, False),
    Variant("G+M+SAB", "+SAB", True, True, False),
    Variant("G+M+SFB", "+SFB", True, False, True),
    Variant("G+M+SAB+SFB", "+SAB+SFB", True, True, True),
    Variant("G+M+SAB+SFB+SD", "+SD", True, True, True, sd=True),
)}
TABLE2_ROWS: tuple[str, ...] = tuple(VARIANTS)
#: The stage-1 network of the full model, and the full model (Table 1 row "Ours").
STAGE1_FULL, FULL = "G+M+SAB+SFB", "G+M+SAB+SFB+SD"
#: run key of the stage-2 control trained without SD (``Plan.sd_control``).
SD_CONTROL = f"{STAGE1_FULL}|stage2 no SD"
#: SAB region sampling strategies (002 §3.2); the first is the paper's.
SAMPLINGS: tuple[str, ...] = ("random_torso", "random_baseline")


def variant(name: str) -> Variant:
    """The :class:`Variant` of a Table 2 row name.

    Raises:
        ValueError: unknown name (the message lists :data:`TABLE2_ROWS`).
    """
    if name not in VARIANTS:
        raise ValueError(f"unknown MagnifierNet Table 2 row {name!r}; expected one of "
                         f"{list(TABLE2_ROWS)}")
    return VARIANTS[name]


def model_kw(name: str, *, fusion: str = "gru", sampling: str = "random_torso",
             k_hat: int = 4, seed: int = 0) -> dict[str, Any]:
    """Options of ``build_model("magnifiernet", ...)`` for a Table 2 row.

    ``fusion``, ``sampling`` and ``k_hat`` only matter where the row has SFB / SAB; they
    are left out otherwise, so equal networks get equal options (and one checkpoint).

    Returns:
        dict with ``use_mask``, ``use_sab``, ``use_sfb`` and, when used, ``fusion``,
        ``sampling``, ``k_hat``, ``seed`` (the SAB sampler's generator seed).

    Raises:
        ValueError: unknown row, fusion, sampling, or a K-hat the sampling cannot keep.
    """
    v = variant(name)
    if fusion not in ("gru", "ab"):
        raise ValueError(f"fusion must be 'gru' (SFB) or 'ab' (ablation branch), got {fusion!r}")
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
    kw: dict[str, Any] = dict(use_mask=v.use_mask, use_sab=v.use_sab, use_sfb=v.use_sfb)
    if v.use_sfb:
        kw["fusion"] = fusion
    if v.use_sab:
        from .models.magnifiernet import _check_sampling

        _check_sampling(sampling, int(k_hat))
        kw.update(sampling=sampling, k_hat=int(k_hat), seed=int(seed))
    return kw


def parts_input(batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Training inputs of a batch: ``{"x": img [N, 3, H, W], "parts": int64 [N, H, W]}``.

    ``input_fn`` of the Trainer: ``MagnifierNet.forward(x, parts=...)`` pools the SAB/SFB
    region features with the pseudo labels during training (recipes.md §3.6).

    Raises:
        KeyError: the batch has no ``parts`` (load with ``load_parts=True`` and give every
            training record a part map: :func:`prepare_parts`).
    """
    if "parts" not in batch:
        raise KeyError("MagnifierNet batch has no 'parts': load the training data with "
                       "load_parts=True and give every training record a part map "
                       "(reidnb.magnifiernet_recipes.prepare_parts / reidnb.masks.attach_masks)")
    return {"x": batch["img"], "parts": batch["parts"]}


def image_input(batch: Mapping[str, Any]) -> torch.Tensor:
    """Test inputs: the image only (predicted masks at test time, recipes.md §3.6)."""
    return batch["img"]


# =========================================================================== schedule
def _opt(cfg: Any, name: str, default: Any = None) -> Any:
    options = getattr(cfg, "options", None)
    if options is not None:
        return options.get(name, default)
    return getattr(cfg, name, default)


@dataclasses.dataclass(frozen=True)
class Stage:
    """One training stage in the units of :func:`reidnb.papers.common.train_and_evaluate`.

    Attributes:
        stage: 1 or 2.
        epochs: epochs passed to ``train_and_evaluate`` (the last one may be cut by
            ``iters``).
        iters: optimiser steps (``epochs * iters_per_epoch`` unless the profile gives
            fewer, or the smoke cap ``max_iters``).
        iters_per_epoch: training images // batch size.
        lr: base learning rate (Adam).
        milestones: epochs at which the lr is multiplied by 0.1.
        warmup_epochs: linear warm-up from 0.01 x lr (BoT).
        sd_weight: gamma of the SD loss (0 in stage 1).
        text: one printable line.
    """

    stage: int
    epochs: int
    iters: int
    iters_per_epoch: int
    lr: float
    milestones: tuple[int, ...]
    warmup_epochs: int
    sd_weight: float
    text: str

    @property
    def fraction(self) -> float:
        """Epochs actually trained (iters / iters_per_epoch)."""
        return self.iters / self.iters_per_epoch


def stage_plan(cfg: Any, stage: int, num_train_images: int) -> Stage:
    """The profile's schedule for stage ``stage`` (002 §4.1, recipes.md §3.3).

    Options read: ``stage{1,2}_epochs``, ``stage{1,2}_iters`` (optional cap in
    iterations, for the quick profile), ``stage{1,2}_lr`` (3.5e-4 / 1e-3),
    ``stage1_milestones`` (150, 300), ``warmup_epochs`` (10, stage 1 only), ``sd_weight``
    (gamma = 2e-3, stage 2 only), ``batch_size`` (P x K = 64) and the smoke cap
    ``max_iters``.

    Raises:
        ValueError: stage not 1/2, a missing or non-positive length, or fewer training
            images than one batch.
    """
    if stage not in (1, 2):
        raise ValueError(f"stage must be 1 or 2, got {stage!r}")
    bs = int(cfg.batch_size)
    ipe = batches_per_epoch(num_train_images, bs)
    epochs = _opt(cfg, f"stage{stage}_epochs")
    if epochs is None or int(epochs) < 1:
        raise ValueError(f"04_magnifiernet: the profile sets no stage{stage}_epochs (>= 1)")
    epochs = int(epochs)
    iters, notes = epochs * ipe, []
    cap = _opt(cfg, f"stage{stage}_iters")
    if cap and int(cap) < iters:
        iters = int(cap)
        epochs = math.ceil(iters / ipe)
        notes.append(f"shortened to {iters} iterations by the profile")
    smoke = _opt(cfg, "max_iters")
    if smoke and int(smoke) < iters:
        iters = int(smoke)
        epochs = math.ceil(iters / ipe)
        notes.append(f"capped at {iters} iterations by max_iters")
    lr = float(_opt(cfg, f"stage{stage}_lr", 3.5e-4 if stage == 1 else 1e-3))
    milestones = tuple(int(m) for m in (_opt(cfg, "stage1_milestones", ()) or ())) \
        if stage == 1 else ()
    warmup = int(_opt(cfg, "warmup_epochs", 0) or 0) if stage == 1 else 0
    sd = float(_opt(cfg, "sd_weight", 2e-3)) if stage == 2 else 0.0
    k = int(_opt(cfg, "num_instances", 4))
    text = (f"stage {stage}: {iters} iterations of P x K = {bs // k} x {k} "
            f"(= {iters / ipe:.2f} epochs of {num_train_images} images), Adam lr {lr:g}"
            + (f", warm-up {warmup} epochs" if warmup else "")
            + (f", x0.1 at epochs {list(milestones)}" if milestones else "")
            + (f", SD loss gamma {sd:g}" if sd else ", no SD loss")
            + (f" ({'; '.join(notes)})" if notes else ""))
    return Stage(stage, epochs, iters, ipe, lr, milestones, warmup, sd, text)


def stage_config(cfg: Any, stage: Stage) -> Any:
    """``cfg`` with ``max_iters`` = the stage's iterations (train_and_evaluate stops there)
    when the stage is shorter than its whole epochs; otherwise ``cfg`` unchanged."""
    if stage.iters == stage.epochs * stage.iters_per_epoch and not _opt(cfg, "max_iters"):
        return cfg
    return dataclasses.replace(cfg, options=MappingProxyType(
        {**dict(cfg.options), "max_iters": int(stage.iters)}))


# =========================================================================== plan
@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One stage-1 training: a Table 2 network with its fusion and SAB sampling.

    ``key`` names the run (checkpoint folder, tables): the row name, plus ``|ab`` for the
    ablation branch and ``|<sampling> k<K>`` when the SAB sampling is not the default.
    """

    key: str
    network: str
    fusion: str = "gru"
    sampling: str = "random_torso"
    k_hat: int = 4
    evaluate: bool = True


@dataclasses.dataclass(frozen=True)
class Plan:
    """What the notebook trains at this profile (and what it leaves out).

    Attributes:
        table2_rows: Table 2 rows measured (names of :data:`VARIANTS`).
        fig4: train the ablation branch AB for Fig. 4.
        k_hats: K-hat values of the Fig. 5 sweep (empty: no sweep).
        samplings: strategies of the sweep.
        k_hat, sampling: the SAB default (002: Random-torso, K-hat = 4).
        rerank: evaluate the full model also with k-reciprocal re-ranking (Table 1).
        sd_control: also train stage 2 *without* SD (same extra iterations) to separate
            the SD loss from the longer training.
        reductions: printable lines, one per profile reduction.
    """

    table2_rows: tuple[str, ...]
    fig4: bool
    k_hats: tuple[int, ...]
    samplings: tuple[str, ...]
    k_hat: int = 4
    sampling: str = "random_torso"
    rerank: bool = True
    sd_control: bool = False
    reductions: tuple[str, ...] = ()

    @property
    def needs_stage2(self) -> bool:
        """Stage 2 (+SD) is trained when Table 2 or Table 1 asks for the full model."""
        return FULL in self.table2_rows or self.rerank

    def sweep_points(self) -> list[tuple[str, int]]:
        """(sampling, K-hat) of Fig. 5; Random-torso only for even K-hat in 2..6."""
        pts = []
        for s in self.samplings:
            for k in self.k_hats:
                if s == "random_torso" and (k % 2 or not 2 <= k <= 6):
                    continue
                pts.append((s, int(k)))
        return pts

    def stage1_specs(self) -> list[RunSpec]:
        """Every stage-1 training needed, each once, in a fixed order.

        The ``G+M+SAB+SFB`` network (default fusion and sampling) is trained whenever
        stage 2, Fig. 4 or Fig. 5 needs it; it is evaluated only when Table 2, Fig. 4 or
        Fig. 5 report it (stage 2 alone needs only its weights).
        """
        specs: dict[str, RunSpec] = {}

        def add(network, fusion="gru", sampling=self.sampling, k_hat=self.k_hat, evaluate=True):
            default = fusion == "gru" and sampling == self.sampling and k_hat == self.k_hat
            v = VARIANTS[network]
            key = network + ("" if fusion == "gru" else "|ab") + (
                "" if default or not v.use_sab or fusion != "gru" else f"|{sampling} k{k_hat}")
            old = specs.get(key)
            specs[key] = RunSpec(key, network, fusion, sampling, k_hat,
                                 evaluate or (old.evaluate if old else False))

        for row in self.table2_rows:
            v = variant(row)
            if not v.sd:
                add(row)
        if self.needs_stage2:
            add(STAGE1_FULL, evaluate=STAGE1_FULL in self.table2_rows)
        if self.fig4:
            add(STAGE1_FULL)
            add(STAGE1_FULL, fusion="ab")
        for s, k in self.sweep_points():
            add(STAGE1_FULL, sampling=s, k_hat=k)
        return list(specs.values())

    def describe(self) -> str:
        lines = [f"Table 2 rows: {', '.join(self.table2_rows) or 'none'}",
                 f"Fig. 4 (SFB vs AB): {'yes' if self.fig4 else 'no'}",
                 f"Fig. 5 (K-hat sweep): {self.sweep_points() or 'no'}",
                 f"SAB default: {self.sampling}, K-hat = {self.k_hat}",
                 f"Table 1 with re-ranking: {'yes' if self.rerank else 'no'}",
                 f"stage-1 trainings: {[s.key for s in self.stage1_specs()]}"
                 + (" + stage 2 (+SD)" if self.needs_stage2 else "")
                 + (" + stage 2 without SD (control)" if self.sd_control else "")]
        lines += [f"REDUCED: {r}" for r in self.reductions]
        return "\n".join(lines)


def make_plan(cfg: Any, **explicit: Any) -> Plan:
    """The profile's :class:`Plan`, with the quick profile's real-data reduction.

    Options read: ``table2_rows``, ``fig4``, ``k_hats``, ``samplings``, ``k_hat``,
    ``sampling``, ``rerank``, ``sd_control``. At the quick profile on a real dataset the
    entries of ``cfg.real_quick`` (fewer variants: every evaluation on the full
    Market-1501 query + gallery costs minutes on a CPU) replace them, except those the
    user set explicitly: pass the notebook's parameters as ``explicit`` (a value of None
    means "not set").

    Every reduction against the paper's plan (all six Table 2 rows, Fig. 4, K-hat sweep
    2/4/6 for both strategies) is listed in ``plan.reductions``.

    Raises:
        ValueError: unknown Table 2 row or sampling.
    """
    opts = {k: _opt(cfg, k) for k in ("table2_rows", "fig4", "k_hats", "samplings", "k_hat",
                                      "sampling", "rerank", "sd_control")}
    reductions: list[str] = []
    real_quick = _opt(cfg, "real_quick") or {}
    if getattr(cfg, "dataset_kind", "synthetic") == "real" and cfg.profile == "quick":
        for k, v in dict(real_quick).items():
            if explicit.get(k) is None and k in opts:
                opts[k] = v
    for k, v in explicit.items():
        if v is not None and k in opts:
            opts[k] = v
    rows = tuple(opts["table2_rows"] if opts["table2_rows"] is not None else TABLE2_ROWS)
    for r in rows:
        variant(r)
    samplings = tuple(opts["samplings"] if opts["samplings"] is not None else SAMPLINGS)
    for s in samplings:
        if s not in SAMPLINGS:
            raise ValueError(f"unknown SAB sampling {s!r}; expected one of {SAMPLINGS}")
    k_hats = tuple(int(k) for k in (opts["k_hats"] if opts["k_hats"] is not None else (2, 4, 6)))
    fig4 = True if opts["fig4"] is None else bool(opts["fig4"])
    plan = Plan(table2_rows=tuple(r for r in TABLE2_ROWS if r in rows), fig4=fig4,
                k_hats=k_hats, samplings=samplings, k_hat=int(opts["k_hat"] or 4),
                sampling=str(opts["sampling"] or "random_torso"),
                rerank=True if opts["rerank"] is None else bool(opts["rerank"]),
                sd_control=bool(opts["sd_control"]))
    missing = [r for r in TABLE2_ROWS if r not in plan.table2_rows]
    if missing:
        reductions.append(f"Table 2 rows left out at profile {cfg.profile}: {missing}")
    if not plan.fig4:
        reductions.append("Fig. 4 (SFB vs AB) not trained")
    if not plan.sweep_points():
        reductions.append("Fig. 5 (K-hat sweep) not trained")
    elif set(plan.k_hats) != {2, 4, 6} or set(plan.samplings) != set(SAMPLINGS):
        reductions.append(f"Fig. 5 sweep reduced to K-hat {list(plan.k_hats)} x "
                          f"{list(plan.samplings)} (paper: 2, 4, 6 x both strategies)")
    return dataclasses.replace(plan, reductions=tuple(reductions))


#: The paper's recipe (002 §4.1, recipes.md §3.3) that :func:`recipe_deviations` checks.
PAPER_RECIPE: dict[str, Any] = dict(
    backbone="resnet50", pretrained=True, height=384, width=192, batch_size=64,
    num_instances=4, stage1_epochs=460, stage2_epochs=40, stage1_lr=3.5e-4,
    stage1_milestones=(150, 300), warmup_epochs=10, stage2_lr=1e-3, sd_weight=2e-3,
    mask_weight=2.0, random_erasing=0.5)


def recipe_deviations(cfg: Any) -> list[str]:
    """Every setting of ``cfg`` that differs from the paper's recipe (:data:`PAPER_RECIPE`)
    plus the iteration caps, one printable line each; empty at the paper profile."""
    out = []
    for k, want in PAPER_RECIPE.items():
        have = _opt(cfg, k)
        if isinstance(want, tuple):
            have = tuple(have or ())
        if have != want:
            out.append(f"{k} = {have!r} (paper: {want!r})")
    for st in (1, 2):
        cap = _opt(cfg, f"stage{st}_iters")
        if cap:
            out.append(f"stage {st} capped at {cap} iterations")
    if _opt(cfg, "max_iters"):
        out.append(f"every run capped at max_iters = {_opt(cfg, 'max_iters')}")
    return out


# =========================================================================== data
def prepare_parts(cfg: Any, dataset: Any, *, source: str | None = None,
                  verbose: bool = True) -> tuple[Any, dict[str, Any]]:
    """Give every training record a part map (MagnifierNet's pseudo labels, §4.1).

    Only the training split needs part maps: at test time the mask head predicts them.

    * synthetic set: its exact part maps (the records already carry them).
    * real data, ``source="labels"``: training images without a parsing label are
      dropped (Market-1501: 586 of 12,936 have none; the count is printed and stored in
      ``info["dropped"]``), the rest get their label-derived maps
      (:func:`reidnb.masks.attach_masks` with ``source="labels"``).
    * real data, ``source="auto"`` (or another ``attach_masks`` source): every training
      image is served, unlabelled ones by the light parser (trained if none is cached).

    ``source`` None takes ``cfg.parts_source`` (default ``"auto"``).

    Returns:
        ``(dataset, info)``: the dataset with part maps on its training records (identities
        relabelled 0..n-1 again if whole identities were dropped) and ``info`` (from
        ``attach_masks`` plus ``dropped``).

    Raises:
        ValueError / RuntimeError: from ``attach_masks`` when a source cannot serve images.
    """
    import os
    from pathlib import Path

    src = source or _opt(cfg, "parts_source", "auto") or "auto"
    if dataset.kind == "synthetic" and all(r.parts for r in dataset.train):
        if verbose:
            print(f"part maps: the synthetic set's exact maps for all {len(dataset.train)} "
                  "training images")
        return dataset, {"source": "synthetic", "dropped": 0}
    from .masks import LABEL_DIR_SUFFIX, attach_masks

    dropped = 0
    if src == "labels":
        root = Path(dataset.root)
        listed: dict[Path, set[str]] = {}
        keep = []
        for r in dataset.train:
            p = Path(r.path)
            folder = root / (p.parent.name + LABEL_DIR_SUFFIX)
            if folder not in listed:
                listed[folder] = set(os.listdir(folder)) if folder.is_dir() else set()
            if p.stem + ".png" in listed[folder]:
                keep.append(r)
        dropped = len(dataset.train) - len(keep)
        if not keep:
            raise ValueError(f"prepare_parts: no training image of {dataset.name} has a parsing "
                             f"label under {root}/<split>{LABEL_DIR_SUFFIX}/; use source='auto'")
        if dropped:
            pids = sorted({r.pid for r in keep})
            relabel = {p: i for i, p in enumerate(pids)}
            keep = [dataclasses.replace(r, pid=relabel[r.pid]) for r in keep]
            dataset = dataclasses.replace(dataset, train=keep, num_train_pids=len(pids))
            if verbose:
                print(f"part maps: dropped {dropped} training images without a parsing label "
                      f"(REDUCED; {len(keep)} images of {len(pids)} identities kept)")
    out, info = attach_masks(dataset, source=src, splits=("train",),
                             workers=int(_opt(cfg, "workers", 0) or 0), device=cfg.device,
                             seed=cfg.seed, verbose=verbose)
    info["dropped"] = dropped
    return out, info


# =========================================================================== training
def _losses(model_kw_: Mapping[str, Any], cfg: Any, sd_weight: float):
    """Loss terms for a network with these switches (a throw-away model gives the keys)."""
    from .models.magnifiernet import magnifiernet_losses

    class _Sw:  # magnifiernet_losses reads only the switches
        use_mask = bool(model_kw_.get("use_mask", True))
        use_sab = bool(model_kw_.get("use_sab", True))
        use_sfb = bool(model_kw_.get("use_sfb", True))

    return magnifiernet_losses(_Sw(), sd_weight=sd_weight,
                               mask_weight=float(_opt(cfg, "mask_weight", 2.0)))


def _train(cfg, dataset, *, name, kw, stage: Stage, init=None, evaluate_model=True,
           rerank=False, verbose=True):
    from .papers.common import train_and_evaluate

    return train_and_evaluate(
        stage_config(cfg, stage), dataset, name=name, model="magnifiernet",
        losses=_losses(kw, cfg, stage.sd_weight), model_kw=kw, sampler="pk",
        batch_size=int(cfg.batch_size), num_instances=int(_opt(cfg, "num_instances", 4)),
        optimizer="adam", lr=stage.lr, weight_decay=5e-4, epochs=stage.epochs,
        milestones=stage.milestones, warmup_epochs=stage.warmup_epochs, init=init,
        load_parts=True, random_erasing=float(_opt(cfg, "random_erasing", 0.5)),
        input_fn=parts_input, eval_input_fn=image_input, rerank=rerank,
        evaluate_model=evaluate_model, verbose=verbose)


def train_stage1(cfg: Any, dataset: Any, spec: RunSpec, *, verbose: bool = True):
    """Stage 1 of one network: every loss except SD (002 §4.1; :func:`stage_plan`).

    BoT recipe: P x K batches (``cfg.batch_size`` / ``cfg.num_instances``), Adam, weight
    decay 5e-4, random erasing ``cfg.random_erasing``; part maps in training
    (:func:`parts_input`), images only at test. Cached by checkpoint hash.

    Returns:
        :class:`reidnb.papers.common.Run` named ``spec.key`` (not evaluated when
        ``spec.evaluate`` is False: ``run.result`` is None).
    """
    kw = model_kw(spec.network, fusion=spec.fusion, sampling=spec.sampling, k_hat=spec.k_hat,
                  seed=cfg.seed)
    return _train(cfg, dataset, name=spec.key, kw=kw,
                  stage=stage_plan(cfg, 1, len(dataset.train)),
                  evaluate_model=spec.evaluate, verbose=verbose)


def train_stage2(cfg: Any, dataset: Any, init: Any, *, sd: bool = True, rerank: bool = False,
                 k_hat: int = 4, sampling: str = "random_torso", verbose: bool = True):
    """Stage 2: the ``G+M+SAB+SFB`` network from stage 1's weights ``init`` with the SD loss
    (gamma = ``cfg.sd_weight``) added (002 §4.1). ``sd=False`` trains the same stage
    without SD (a control for the extra iterations; not in the paper).

    Returns:
        :class:`reidnb.papers.common.Run` named ``G+M+SAB+SFB+SD`` (or
        ``G+M+SAB+SFB|stage2 no SD``), evaluated (plus re-ranking when ``rerank``).
    """
    st = stage_plan(cfg, 2, len(dataset.train))
    if not sd:
        st = dataclasses.replace(st, sd_weight=0.0, text=st.text.replace(
            f", SD loss gamma {st.sd_weight:g}", ", no SD loss (control)"))
    kw = model_kw(STAGE1_FULL, sampling=sampling, k_hat=k_hat, seed=cfg.seed)
    return _train(cfg, dataset, name=FULL if sd else f"{STAGE1_FULL}|stage2 no SD", kw=kw,
                  stage=st, init=init, rerank=rerank, verbose=verbose)


def run_stage1_all(cfg: Any, dataset: Any, plan: Plan, *, verbose: bool = True) -> dict:
    """Train (or load from cache) every stage-1 run of the plan; ``{spec.key: Run}``."""
    return {s.key: train_stage1(cfg, dataset, s, verbose=verbose) for s in plan.stage1_specs()}


def pretrained_status(run: Any) -> str:
    """Whether a run's backbone started from ImageNet weights (printed by the notebook)."""
    model = getattr(run, "model", run)
    loaded = bool(getattr(model, "pretrained_loaded", False))
    bb = getattr(getattr(model, "backbone", None), "name", "backbone")
    return (f"{bb}: ImageNet weights " + ("loaded" if loaded else
            "NOT available -> random initialisation (numbers are from-scratch numbers)"))


# =========================================================================== retrieval
def top1_matches(result: Any, distmat: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-1 gallery match per query under the Market-1501 protocol.

    Gallery images of the query's identity *and* camera, and junk (pid -1), are skipped,
    as ``evaluate_rank`` does; ties keep gallery order (stable sort).

    Args:
        result: an ``EvalResult`` (``distmat``, ``q_pids``, ``g_pids``, ``q_camids``,
            ``g_camids``).
        distmat: distances to rank by (default ``result.distmat``).

    Returns:
        ``(index, correct)``: int64 [Q] gallery index of the top-1 (-1 when nothing is
        left) and bool [Q] whether it has the query's identity.
    """
    dm = np.asarray(result.distmat if distmat is None else distmat)
    qp, gp = np.asarray(result.q_pids), np.asarray(result.g_pids)
    qc, gc = np.asarray(result.q_camids), np.asarray(result.g_camids)
    if dm.shape != (len(qp), len(gp)):
        raise ValueError(f"top1_matches: distmat {dm.shape} != ({len(qp)}, {len(gp)})")
    idx = np.full(len(qp), -1, dtype=np.int64)
    ok = np.zeros(len(qp), dtype=bool)
    for i in range(len(qp)):
        order = np.argsort(dm[i], kind="stable")
        valid = ~(((gp[order] == qp[i]) & (gc[order] == qc[i])) | (gp[order] == -1))
        if valid.any():
            j = int(order[np.argmax(valid)])
            idx[i], ok[i] = j, bool(gp[j] == qp[i])
    return idx, ok


def pick_top1_queries(baseline: Any, improved: Any, n: int = 2) -> list[int]:
    """Queries for a Fig. 3-style panel: the baseline's top-1 is wrong and the improved
    model's is right (002 Fig. 3), lowest query index first; topped up with queries both
    get right, then any, when there are fewer than ``n``."""
    _, ok_a = top1_matches(baseline)
    _, ok_b = top1_matches(improved)
    order = [np.flatnonzero(~ok_a & ok_b), np.flatnonzero(ok_a & ok_b),
             np.arange(len(ok_a))]
    out: list[int] = []
    for group in order:
        for q in group:
            if len(out) == n:
                return out
            if int(q) not in out:
                out.append(int(q))
    return out


# =========================================================================== tables
def table_dataset(cfg: Any, table: str) -> tuple[str, bool]:
    """(dataset name for ``result_rows``, ``extra``) of a Table 1 / Table 2 row.

    Table 1 has all four benchmarks: a real run names its own, the synthetic set stands in
    for Market-1501. Table 2 was published on CUHK03-L and DukeMTMC-reID only: the
    synthetic set stands in for DukeMTMC-reID (documented mapping, so the ablation
    directions can be compared); a real run on Market-1501 or CUHK03-D is ``extra``.

    Raises:
        ValueError: unknown table.
    """
    from .core.results import DATASET_NAMES

    if table not in ("Table 1", "Table 2"):
        raise ValueError(f"magnifiernet has Table 1 and Table 2, got {table!r}")
    if cfg.dataset_kind == "synthetic":
        return ("Market-1501" if table == "Table 1" else "DukeMTMC-reID"), False
    name = DATASET_NAMES.get(cfg.dataset, cfg.dataset)
    if table == "Table 2":
        return name, name not in ("CUHK03-L", "DukeMTMC-reID")
    return name, False


def _m(run: Any, setting: str = "single-query") -> dict[str, float] | None:
    if run is None or getattr(run, "result", None) is None \
            or setting not in run.result.results:
        return None
    return run.metrics(setting)


def _table2_runs(runs: Mapping[str, Any], plan: Plan) -> dict[str, Any]:
    return {row: runs.get(row) for row in plan.table2_rows}


def table2_frame(runs: Mapping[str, Any], plan: Plan) -> pd.DataFrame:
    """Table 2: measured rank-1 / mAP per row, the change over ``G``, and the published
    CUHK03-L and DukeMTMC-reID values beside them (percent).

    Args:
        runs: run key -> Run (stage-1 keys and ``G+M+SAB+SFB+SD``).
    """
    from .core.results import load_published

    pub = load_published("magnifiernet", "Table 2")
    rows = []
    base = _m(runs.get("G"))
    for name, run in _table2_runs(runs, plan).items():
        m = _m(run)
        row = {"row": VARIANTS[name].label, "variant": name,
               "rank1": np.nan if m is None else m["rank1"],
               "mAP": np.nan if m is None else m["mAP"]}
        row["d_rank1"] = row["rank1"] - base["rank1"] if base and m else np.nan
        row["d_mAP"] = row["mAP"] - base["mAP"] if base and m else np.nan
        for ds, short in (("CUHK03-L", "CUHK03-L"), ("DukeMTMC-reID", "Duke")):
            for metric in ("rank1", "mAP"):
                v = pub[(pub["dataset"] == ds) & (pub["variant"] == name)
                        & (pub["metric"] == metric)]["value"]
                row[f"paper {short} {metric}"] = float(v.iloc[0]) if len(v) else np.nan
        row["seconds"] = float(run.seconds) if run is not None else np.nan
        rows.append(row)
    ctrl = _m(runs.get(SD_CONTROL))      # same stage 2 without SD (plan.sd_control)
    if ctrl is not None:
        rows.append({"row": "control: stage 2 without SD",
                     "variant": f"{STAGE1_FULL} (stage 2, no SD)",
                     "rank1": ctrl["rank1"], "mAP": ctrl["mAP"],
                     "d_rank1": ctrl["rank1"] - base["rank1"] if base else np.nan,
                     "d_mAP": ctrl["mAP"] - base["mAP"] if base else np.nan,
                     "seconds": float(runs[SD_CONTROL].seconds)})
    return pd.DataFrame(rows)


def table1_frame(cfg: Any, full: Any) -> pd.DataFrame:
    """Table 1: the full model's rank-1 / mAP with and without re-ranking, beside the
    published MagnifierNet row ("Ours") of the dataset it stands for."""
    from .core.results import load_published

    ds, _ = table_dataset(cfg, "Table 1")
    pub = load_published("magnifiernet", "Table 1")
    pub = pub[(pub["method"] == "Ours") & (pub["dataset"] == ds)]
    rows = []
    for rr, setting in ((0, "single-query"), (1, "single-query+re-rank")):
        m = _m(full, setting)
        if m is None:
            continue
        for metric in ("rank1", "mAP"):
            p = pub[(pub["reranking"] == rr) & (pub["metric"] == metric)]["value"]
            rows.append({"dataset": ds + (" (synthetic stand-in)" if cfg.dataset_kind ==
                                          "synthetic" else ""),
                         "re-ranking": bool(rr), "metric": metric, "measured": m[metric],
                         "published": float(p.iloc[0]) if len(p) else np.nan})
    return pd.DataFrame(rows)


def fig4_frame(runs: Mapping[str, Any]) -> pd.DataFrame:
    """Fig. 4: SFB (GRU fusion) vs the ablation branch AB, both ``G+M+SAB+SFB`` without SD.

    Returns long format: branch (``SFB``/``AB``), metric (``rank1``/``mAP``), value (%).
    Empty when either run is missing.
    """
    sfb, ab = _m(runs.get(STAGE1_FULL)), _m(runs.get(f"{STAGE1_FULL}|ab"))
    if sfb is None or ab is None:
        return pd.DataFrame(columns=["branch", "metric", "value"])
    return pd.DataFrame([{"branch": b, "metric": k, "value": m[k]}
                         for b, m in (("SFB", sfb), ("AB", ab)) for k in ("rank1", "mAP")])


def fig5_frame(runs: Mapping[str, Any], plan: Plan) -> pd.DataFrame:
    """Fig. 5: rank-1 / mAP of ``G+M+SAB+SFB`` (no SD) per SAB sampling and K-hat.

    Returns columns sampling, k_hat, rank1, mAP (percent), one row per measured point.
    """
    rows = []
    for s, k in plan.sweep_points():
        default = s == plan.sampling and k == plan.k_hat
        key = STAGE1_FULL if default else f"{STAGE1_FULL}|{s} k{k}"
        m = _m(runs.get(key))
        if m is not None:
            rows.append({"sampling": s, "k_hat": k, "rank1": m["rank1"], "mAP": m["mAP"]})
    return pd.DataFrame(rows, columns=["sampling", "k_hat", "rank1", "mAP"])


def magnifiernet_rows(cfg: Any, runs: Mapping[str, Any], plan: Plan, *,
                      iters_per_epoch: int, note: str = "") -> list[dict[str, Any]]:
    """Results rows (``reidnb.core.results.result_rows``) of every measured table cell.

    * Table 2: one setting per measured row (rank-1, mAP), dataset from
      :func:`table_dataset`; ``seconds`` = that run's training + evaluation (the +SD row:
      stage 2 plus its stage-1 run).
    * Table 1: the full model (``G+M+SAB+SFB+SD``) as ``Ours``, without and (if
      evaluated) with re-ranking.
    * The stage-2 control without SD (``sd_control``) as an extra Table 2 setting.

    ``epochs`` of a row = iterations trained / ``iters_per_epoch`` (the +SD row adds its
    stage-1 iterations). ``note`` (e.g. the profile's reductions) is appended to every
    row's note.
    """
    from .core.results import result_rows

    out: list[dict[str, Any]] = []
    ds2, extra2 = table_dataset(cfg, "Table 2")
    full = runs.get(FULL)
    stage1 = runs.get(STAGE1_FULL)

    def secs(key, run):
        s = float(run.seconds)
        if key in (FULL, f"{STAGE1_FULL}|stage2 no SD") and stage1 is not None:
            s += float(stage1.train_seconds)
        return s

    def epochs(key, run):
        it = len(run.history)
        if key in (FULL, f"{STAGE1_FULL}|stage2 no SD") and stage1 is not None:
            it += len(stage1.history)
        return round(it / max(int(iters_per_epoch), 1), 3)

    for name in plan.table2_rows:
        run = runs.get(name)
        m = _m(run)
        if m is None:
            continue
        extra_note = "stage 2 (+SD) from the G+M+SAB+SFB stage-1 run" if name == FULL else ""
        out += result_rows(cfg, paper_id="magnifiernet", table="Table 2", dataset=ds2,
                           protocol="", method="Ours", variant=name,
                           metrics={"rank1": m["rank1"], "mAP": m["mAP"]}, reranking=False,
                           seconds=secs(name, run), epochs=epochs(name, run),
                           note="; ".join(s for s in (extra_note, note) if s), extra=extra2)
    ctrl_key = f"{STAGE1_FULL}|stage2 no SD"
    ctrl = _m(runs.get(ctrl_key))
    if ctrl is not None:
        out += result_rows(cfg, paper_id="magnifiernet", table="Table 2", dataset=ds2,
                           protocol="", method="Ours", variant="G+M+SAB+SFB, stage 2 without SD",
                           metrics={"rank1": ctrl["rank1"], "mAP": ctrl["mAP"]},
                           reranking=False, seconds=secs(ctrl_key, runs[ctrl_key]),
                           epochs=epochs(ctrl_key, runs[ctrl_key]),
                           note="; ".join(s for s in ("control: stage 2 iterations without the "
                                                      "SD loss (not in the paper)", note) if s),
                           extra=True)
    ds1, _ = table_dataset(cfg, "Table 1")
    for rr, setting in ((False, "single-query"), (True, "single-query+re-rank")):
        m = _m(full, setting)
        if m is None:
            continue
        out += result_rows(cfg, paper_id="magnifiernet", table="Table 1", dataset=ds1,
                           protocol="", method="Ours", variant=FULL,
                           metrics={"rank1": m["rank1"], "mAP": m["mAP"]}, reranking=rr,
                           seconds=secs(FULL, full), epochs=epochs(FULL, full), note=note)
    return out


# =========================================================================== figures
def figure_batch(cfg: Any, records: Sequence[Any], n: int = 6, *, seed: int = 0
                 ) -> dict[str, Any]:
    """A few test-size images for the figures, with their part maps when the records have
    them.

    Picks ``n`` records spread over the list (deterministic for ``seed``), resized to
    ``cfg.height x cfg.width``.

    Returns:
        dict ``x`` float32 [n, 3, H, W] (normalised), ``rgb`` uint8 [n, H, W, 3],
        ``parts`` int64 [n, H, W] or None, ``records``.

    Raises:
        ValueError: no records.
    """
    from .data.datasets import ImageDataset
    from .data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_transforms

    if not records:
        raise ValueError("figure_batch: no records to draw from")
    rng = np.random.default_rng(seed)
    pick = sorted(rng.choice(len(records), size=min(n, len(records)), replace=False).tolist())
    recs = [records[i] for i in pick]
    has_parts = all(getattr(r, "parts", None) for r in recs)
    data = ImageDataset(recs, build_transforms(cfg.height, cfg.width, is_train=False),
                        load_parts=has_parts)
    items = [data[i] for i in range(len(recs))]
    x = torch.stack([it["img"] for it in items])
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    rgb = ((x * std + mean).clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
    parts = torch.stack([it["parts"] for it in items]) if has_parts else None
    return {"x": x, "rgb": rgb, "parts": parts, "records": recs}


@torch.no_grad()
def activation_maps(models: Mapping[str, Any], x: torch.Tensor) -> dict[str, np.ndarray]:
    """Backbone activation per model (Fig. 2-style saliency: mean over channels of F^2,
    as ``MagnifierNet.branch_activation_maps``), upsampled to the image and scaled to
    [0, 1] per image.

    Args:
        models: name -> MagnifierNet (or a Run); evaluated in eval mode on the CPU copy of
            ``x``'s device.
        x: float32 [N, 3, H, W].

    Returns:
        name -> float32 [N, H, W] in [0, 1].
    """
    out = {}
    for name, m in models.items():
        net = getattr(m, "model", m)
        was = net.training
        net.eval()
        dev = next(net.parameters()).device
        a = net.branch_activation_maps(x.to(dev))["global"].float().cpu()
        net.train(was)
        a = torch.nn.functional.interpolate(a[:, None], size=x.shape[-2:], mode="bilinear",
                                            align_corners=False)[:, 0]
        lo = a.flatten(1).min(1).values.view(-1, 1, 1)
        hi = a.flatten(1).max(1).values.view(-1, 1, 1)
        out[name] = ((a - lo) / (hi - lo).clamp_min(1e-12)).numpy()
    return out


@torch.no_grad()
def predicted_parts(model: Any, x: torch.Tensor) -> np.ndarray:
    """The mask module's part map (argmax of the 8 region masks at feature resolution,
    nearest-upsampled to the image): int64 [N, H, W] in 0..7.

    Raises:
        ValueError: the model has no mask module (``use_mask=False``).
    """
    net = getattr(model, "model", model)
    if not getattr(net, "use_mask", False):
        raise ValueError("predicted_parts: this MagnifierNet has no mask module (use_mask=False)")
    was = net.training
    net.eval()
    dev = next(net.parameters()).device
    f = net.backbone(x.to(dev))
    p = net.seg_head(f).argmax(1).float().cpu()
    net.train(was)
    return torch.nn.functional.interpolate(p[:, None], size=x.shape[-2:],
                                           mode="nearest")[:, 0].long().numpy()


def top1_panel(cfg: Any, baseline: Any, improved: Any, n: int = 2) -> dict[str, Any]:
    """Data of a Fig. 3-style panel (``viz.plot_top1_pairs``): ``n`` queries where the
    baseline's top-1 is wrong and the improved model's right (:func:`pick_top1_queries`),
    their top-1 gallery images under both models and each model's activation maps.

    Args:
        baseline, improved: evaluated Runs of the same dataset (same query/gallery order).

    Returns:
        dict ``query_rgb`` uint8 [n, H, W, 3], ``rows`` (per query two dicts: ``rgb``,
        ``correct``, ``dist``, ``query_map``, ``match_map``), ``queries`` (indices),
        ``names`` (run names).

    Raises:
        ValueError: a run without evaluation, or runs evaluated on different queries.
    """
    from .data.datasets import Record

    ra, rb = baseline.result, improved.result
    if ra is None or rb is None:
        raise ValueError("top1_panel: both runs must be evaluated")
    if list(ra.q_paths) != list(rb.q_paths) or list(ra.g_paths) != list(rb.g_paths):
        raise ValueError("top1_panel: the runs were evaluated on different query/gallery sets")
    queries = pick_top1_queries(ra, rb, n)
    idx_a, ok_a = top1_matches(ra)
    idx_b, ok_b = top1_matches(rb)

    def batch(paths):
        recs = [Record(path=p, pid=0, camid=0) for p in paths]
        return figure_batch(cfg, recs, n=len(recs))

    qb = batch([ra.q_paths[q] for q in queries])
    # figure_batch sorts its random pick: with n = len it keeps the given order
    rows = []
    maps_q = activation_maps({"a": baseline, "b": improved}, qb["x"])
    for j, q in enumerate(queries):
        pair = []
        for key, run, res, idx, ok in (("a", baseline, ra, idx_a, ok_a),
                                       ("b", improved, rb, idx_b, ok_b)):
            g = int(idx[q])
            gb = batch([res.g_paths[g]])
            m = activation_maps({key: run}, gb["x"])[key][0]
            pair.append({"rgb": gb["rgb"][0], "correct": bool(ok[q]),
                         "dist": float(res.distmat[q, g]), "query_map": maps_q[key][j],
                         "match_map": m})
        rows.append(pair)
    return {"query_rgb": qb["rgb"], "rows": rows, "queries": queries,
            "names": (baseline.name, improved.name)}

"""What 001 trains: the two settings as data, their loss terms, the Stage, the training runs.

Paper 001 compares two settings on one network (``build_model("bcloss")``, §2.1):

* ``"softmax"``: the baseline of §3.3, softmax cross-entropy only (Eqs. 1-2);
* ``"joint"``: Eq. 9, L = L_s + lambda (L_b + L_c), with the batch-contrastive loss L_b
  (Eq. 3: hardest negative of the batch, margin tau on *squared* distances) and the centre
  loss L_c (Eqs. 4-6), both on the L2-normalised pool5 feature before dropout (recipes.md
  §2.5).

One stage: random batches of 16 images (no identity sampling, §2.3), SGD momentum 0.9,
weight decay 5e-4, lr 0.01 x 0.1 every 20k iterations, 50k iterations (§3.2).
:func:`main_stage` builds that :class:`~reidnb.core.stages.Stage` from the config
(iterations at the paper profile, epochs at smoke / quick); :func:`train_variant` runs one
setting over several seeds through :func:`reidnb.papers.common.train_and_evaluate`.
"""
from __future__ import annotations

import dataclasses
import math
from types import MappingProxyType
from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from ...core.runs import Run
from ...core.stages import Stage
from ...data.datasets import ReIDDataset
from ...losses import CenterLoss, Term, batch_contrastive_loss, cross_entropy
from ...models.backbones import RESNET_SPECS
from ..common import stage_iters, train_and_evaluate
from .config import BCLossConfig

__all__ = ["MODEL", "VARIANTS", "losses_for", "feat_dim_of", "main_stage", "sweep_stage",
           "train_variant", "tau_sweep", "run_deviations", "describe_recipe"]

#: Registry name of 001's network (:class:`reidnb.papers.bcloss.model.BCLossNet`).
MODEL = "bcloss"

#: Table row -> loss terms (names of :func:`losses_for`'s dict). Model options are the same
#: for both rows (``dropout=cfg.dropout``); so is the stage (:func:`main_stage`).
VARIANTS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "softmax": ("softmax",),                    # 001 §3.3 baseline: L_s (Eqs. 1-2)
    "joint": ("softmax", "bc", "center"),       # 001 Eq. 9: L_s + lambda (L_b + L_c)
})


def losses_for(variant: str, num_classes: int, feat_dim: int, *, tau: float = 1.0,
               lam: float = 1.0, center_lr: float = 0.5,
               reduction: str = "sum") -> dict[str, tuple[float, nn.Module]]:
    """The Trainer's loss dict ``{name: (weight, term)}`` of one 001 setting.

    Args:
        variant: ``"softmax"`` (baseline, §3.3) or ``"joint"`` (Eq. 9).
        num_classes: training identities (centres of the centre loss).
        feat_dim: pool5 channels (2048 for ResNet-50, 512 for ResNet-18).
        tau: margin of L_b on the squared distance of unit vectors (recipes.md §2.5: 1.0).
        lam: lambda of Eq. 9, the weight of both L_b and L_c (001 §3.2: 1).
        center_lr: eta of the centre update (Eq. 6; Wen et al. 2016 / BoT: 0.5).
        reduction: ``"sum"`` (Eqs. 3-4 as printed: over the m batch images) or ``"mean"``,
            for both L_b and L_c. ``"mean"`` is passed to neither term (their default), so
            its runs keep the run keys they had before the option existed.

    Returns:
        ``{"softmax": (1, CE on logits)}``, plus for ``"joint"``
        ``"bc": (lam, L_b on normalised embeddings)`` and
        ``"center": (lam, L_c on normalised embeddings)``. A fresh ``CenterLoss`` (centres
        at zero) every call, so runs never share centres.

    Raises:
        ValueError: unknown variant, non-positive num_classes/feat_dim, negative tau, lam
            or center_lr, unknown reduction.
    """
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    red = {"reduction": reduction} if reduction != "mean" else {}
    if variant not in VARIANTS:
        raise ValueError(f"unknown 01_bcloss variant {variant!r}; expected one of "
                         f"{tuple(VARIANTS)}")
    if num_classes < 1 or feat_dim < 1:
        raise ValueError(f"num_classes and feat_dim must be >= 1, got {num_classes}, {feat_dim}")
    for name, v in (("tau", tau), ("lam", lam), ("center_lr", center_lr)):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
    wanted = VARIANTS[variant]
    losses: dict[str, tuple[float, nn.Module]] = {
        "softmax": (1.0, Term(cross_entropy, key="logits"))}
    if "bc" in wanted:
        losses["bc"] = (float(lam), Term(batch_contrastive_loss, normalize=True, tau=float(tau),
                                         **red))
    if "center" in wanted:
        losses["center"] = (float(lam), Term(CenterLoss(num_classes, feat_dim, center_lr, **red),
                                             normalize=True))
    return losses


def feat_dim_of(backbone: str) -> int:
    """pool5 channels of a ResNet name (``RESNET_SPECS``).

    Raises:
        KeyError: unknown backbone (lists the known ones).
    """
    if backbone not in RESNET_SPECS:
        raise KeyError(f"unknown backbone {backbone!r}; expected one of {sorted(RESNET_SPECS)}")
    return int(RESNET_SPECS[backbone][2])


def main_stage(cfg: BCLossConfig, num_train_images: int) -> Stage:
    """The stage of both settings for ``num_train_images`` images in batches of
    ``cfg.batch_size``.

    * ``cfg.epochs`` None (paper): ``cfg.max_iters`` iterations (50k), lr x0.1 every
      ``cfg.lr_step_iters`` (20k) rounded to the nearest epoch boundary
      (:meth:`Stage.from_iters`; 001 §3.2).
    * ``cfg.epochs`` set (smoke, quick): that many epochs (:meth:`Stage.from_epochs`),
      ``cfg.max_iters`` only caps the run (smoke: 4), lr x0.1 at ``cfg.lr_milestones``, or,
      when ``cfg.lr_step_iters`` is set, every ``lr_step_iters`` iterations up to
      ``max_iters`` (else the epochs' iterations), rounded to epochs as above.

    Raises:
        ValueError: fewer training images than one batch, or neither ``epochs`` nor
            ``max_iters`` in the config.
    """
    n, bs = int(num_train_images), int(cfg.batch_size)
    if cfg.epochs is None:
        if not cfg.max_iters:
            raise ValueError("01_bcloss schedule: the config sets neither epochs nor max_iters")
        return Stage.from_iters("001", int(cfg.max_iters), n, bs, cfg.lr,
                                step_iters=cfg.lr_step_iters, **_augment(cfg))
    milestones = tuple(int(m) for m in cfg.lr_milestones)
    if cfg.lr_step_iters:
        length = Stage.from_epochs("001", int(cfg.epochs), n, bs, cfg.lr).iters
        milestones = Stage.from_iters("001", int(cfg.max_iters or length), n, bs, cfg.lr,
                                      step_iters=cfg.lr_step_iters).milestones
    return Stage.from_epochs("001", int(cfg.epochs), n, bs, cfg.lr, max_iters=cfg.max_iters,
                             milestones=milestones, **_augment(cfg))


def _augment(cfg: BCLossConfig) -> dict[str, Any]:
    """The train loader's flip and pad + crop, as :class:`Stage` fields."""
    return {"flip_p": float(cfg.flip_p), "pad": int(cfg.pad)}


def sweep_stage(cfg: BCLossConfig, num_train_images: int) -> Stage:
    """Stage of the tau sweep: :func:`main_stage`, or ``cfg.sweep_epochs`` epochs when the
    profile shortens the sweep (milestones past its end dropped; ``max_iters`` still caps).
    """
    main = main_stage(cfg, num_train_images)
    if cfg.sweep_epochs is None or int(cfg.sweep_epochs) == main.epochs:
        return main
    epochs = int(cfg.sweep_epochs)
    return Stage.from_epochs("001 tau sweep", epochs, num_train_images, main.batch_size,
                             main.lr, max_iters=cfg.max_iters,
                             milestones=tuple(m for m in main.milestones if m < epochs),
                             **_augment(cfg))


def train_variant(cfg: BCLossConfig, dataset: ReIDDataset, variant: str, *, runs: int = 1,
                  tau: float | None = None, stage: Stage | None = None,
                  name: str | None = None, verbose: bool = True) -> list[Run]:
    """Train and evaluate one 001 setting over ``runs`` seeds (cfg.seed, cfg.seed + 1, ...).

    Every run: ``build_model("bcloss", dropout=cfg.dropout)`` with the config's backbone
    and pretrained choice, the losses of :func:`losses_for` (``cfg.lam``,
    ``cfg.center_lr``), the ``stage`` (default :func:`main_stage`), then the single-query
    evaluation. Finished runs are loaded from the run store (``Run.source == "cache"``).

    Args:
        dataset: from :func:`reidnb.papers.common.load_data` (the same for every seed).
        variant: ``"softmax"`` or ``"joint"``.
        runs: seeds to average (001: 5).
        tau: margin of L_b (default ``cfg.tau``).
        name: run label prefix (default the variant, plus ``-tau<tau>`` for joint).

    Returns:
        list of :class:`~reidnb.core.runs.Run`, one per seed.

    Raises:
        ValueError: runs < 1 or an unknown variant.
    """
    if int(runs) < 1:
        raise ValueError(f"runs must be >= 1, got {runs!r}")
    tau = float(cfg.tau if tau is None else tau)
    stage = stage or main_stage(cfg, len(dataset.train))
    label = name or (variant if variant == "softmax" else f"{variant}-tau{tau:g}")
    feat_dim = feat_dim_of(cfg.backbone)
    out = []
    for r in range(int(runs)):
        cfg_r = dataclasses.replace(cfg, seed=int(cfg.seed) + r)
        losses = losses_for(variant, dataset.num_train_pids, feat_dim, tau=tau, lam=cfg.lam,
                            center_lr=cfg.center_lr, reduction=cfg.loss_reduction)
        out.append(train_and_evaluate(
            cfg_r, dataset, name=f"{label}-seed{cfg_r.seed}", model=MODEL, losses=losses,
            stage=stage, model_kw={"dropout": float(cfg.dropout)}, verbose=verbose))
    return out


def tau_sweep(cfg: BCLossConfig, dataset: ReIDDataset, taus: Sequence[float], *,
              runs: int = 1, reuse: Mapping[float, Sequence[Run]] | None = None,
              stage: Stage | None = None, verbose: bool = True) -> dict[float, list[Run]]:
    """Joint training for each margin tau (recipes.md §2.5; 001 does not give tau).

    Args:
        taus: margins on the squared distance (paper sweep {0.5, 1.0, 1.5}).
        reuse: tau -> runs already trained with the same stage (e.g. the main joint runs
            at ``cfg.tau``); those are not trained again.
        stage: default :func:`sweep_stage`.

    Returns:
        tau -> list of Run.
    """
    reuse = dict(reuse or {})
    stage = stage or sweep_stage(cfg, len(dataset.train))
    out: dict[float, list[Run]] = {}
    for tau in taus:
        tau = float(tau)
        out[tau] = list(reuse[tau]) if tau in reuse else train_variant(
            cfg, dataset, "joint", runs=runs, tau=tau, stage=stage, verbose=verbose)
    return out


def run_deviations(cfg: BCLossConfig, *, stage: Stage | None = None,
                   dataset: Any = None, pretrained_loaded: bool | None = None) -> list[str]:
    """Differences from 001 that no config field shows, one phrase each (for the notebook).

    * ``"random initialisation (paper: ImageNet weights)"`` when the model says the
      ImageNet weights were not loaded (``pretrained="auto"`` offline);
    * the iterations actually run when they are not 001's 50k with x0.1 every 20k;
    * the dataset's subset notes (train-identity or synthetic test subsets).

    Args:
        stage: the main stage (:func:`main_stage`); ``cfg.max_iters`` caps it as in
            :func:`reidnb.papers.common.train_and_evaluate`.
        dataset: the loaded dataset (its ``notes``).
        pretrained_loaded: ``model.pretrained_loaded`` of a trained run.
    """
    paper = BCLossConfig.paper_defaults()
    out = []
    if pretrained_loaded is False or (pretrained_loaded is None and not cfg.pretrained):
        out.append("random initialisation (paper: ImageNet weights)")
    if stage is not None:
        iters = stage_iters(cfg, stage)
        if iters != paper["max_iters"] or cfg.lr_step_iters != paper["lr_step_iters"]:
            out.append(f"{iters} iterations, lr steps at epochs {list(stage.milestones)} "
                       f"(paper {paper['max_iters']} iterations, x0.1 every "
                       f"{paper['lr_step_iters']})")
    out += [n for n in (getattr(dataset, "notes", ()) or ()) if "subset" in n]
    return out


def describe_recipe(cfg: BCLossConfig, num_train_images: int | None = None) -> list[str]:
    """The recipe this config trains, printable lines: the train loader's augmentation (read
    off :func:`main_stage`'s ``flip_p`` / ``pad``, what the loader is built from; no random
    erasing: :func:`train_variant` passes none), the reduction of L_b and L_c, and with
    ``num_train_images`` the stage. A value that differs from 001's (recipes.md §2.5: mirror
    only; Eqs. 3-4 sums) ends in ``[paper: ...]``.
    """
    paper = BCLossConfig.paper_defaults()
    n = int(num_train_images) if num_train_images else int(cfg.batch_size)
    have = main_stage(cfg, n).augmentation()
    want = main_stage(dataclasses.replace(cfg, flip_p=paper["flip_p"], pad=paper["pad"]),
                      n).augmentation()
    aug = [a if a == b else f"{a} [paper: {b}]" for a, b in zip(have, want)] + ["no random erasing"]
    red = (f"L_b and L_c: {cfg.loss_reduction} over the batch"
           + (" (001 Eqs. 3-4 as printed)" if cfg.loss_reduction == "sum" else
              f" [paper: {paper['loss_reduction']}, Eqs. 3-4]"))
    out = ["augmentation (train loader): " + "; ".join(aug), red]
    if num_train_images:
        out.append(main_stage(cfg, int(num_train_images)).describe(int(num_train_images)))
    return out

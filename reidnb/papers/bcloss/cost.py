"""What notebook ``01_bcloss`` trains at a config, and its cost before training (issue 13).

:func:`planned_trainings` enumerates the notebook's trainings exactly as its cells run them:
``cfg.runs`` seeds of the softmax baseline and of joint training at ``cfg.tau``
(:func:`.experiments.main_stage`), then the tau sweep over ``cfg.taus``
(:func:`.experiments.sweep_stage`), where the joint runs at ``cfg.tau`` are reused when the
sweep's stage equals the main one (notebook cell "tau sweep"). :func:`format_cost` prints
them with images seen and estimated device hours (:mod:`reidnb.core.cost`).
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from ...core import cost
from ..common import stage_iters
from .config import BCLossConfig
from .experiments import feat_dim_of, main_stage, sweep_stage

__all__ = ["planned_trainings", "format_cost"]



def planned_trainings(cfg: BCLossConfig, dataset_or_num_train_images: Any,
                      plan: Any = None) -> list[dict]:
    """Every training ``01_bcloss`` runs at ``cfg``, each once, in the notebook's order.

    Args:
        cfg: the notebook's config (``runs``, ``taus``, ``tau``, schedule, ``max_iters``).
        dataset_or_num_train_images: the loaded dataset (``ds``) or ``len(ds.train)``.
        plan: unused (001 has no plan object; the signature is shared by the papers).

    Returns:
        list of dicts ``variant`` (run name, e.g. ``"joint-tau1-seed0"``), ``stage``,
        ``iterations`` (optimiser steps after ``cfg.max_iters``), ``batch_size``,
        ``backbone``, ``height``, ``width`` (pixels). Paper profile, 5 seeds, taus
        {0.5, 1, 1.5}: 20 runs of 50,000 x 16 images (the joint runs at tau 1 are shared).

    Raises:
        ValueError: fewer training images than one batch (:func:`main_stage`).
    """
    feat_dim_of(cfg.backbone)          # unknown backbone -> KeyError before any arithmetic
    n = cost.num_train_images(dataset_or_num_train_images)
    main, sweep = main_stage(cfg, n), sweep_stage(cfg, n)
    base = dict(backbone=cfg.backbone, height=int(cfg.height), width=int(cfg.width))

    def runs(label: str, stage, what: str) -> list[dict]:
        return [dict(variant=f"{label}-seed{int(cfg.seed) + r}", stage=what,
                     iterations=stage_iters(cfg, stage), batch_size=int(stage.batch_size), **base)
                for r in range(int(cfg.runs))]

    out = runs("softmax", main, "001 (softmax baseline)")
    out += runs(f"joint-tau{float(cfg.tau):g}", main, "001 (joint, Eq. 9)")
    same = sweep == main
    for tau in dict.fromkeys(float(t) for t in cfg.taus):
        if same and tau == float(cfg.tau):
            continue                   # the notebook reuses the main joint runs
        out += runs(f"joint-tau{tau:g}", sweep, "tau sweep (not in 001)")
    return out


def format_cost(cfg: BCLossConfig, dataset_or_num_train_images: Any, plan: Any = None, *,
                table: pd.DataFrame | None = None) -> str:
    """Printable cost of :func:`planned_trainings` (:func:`reidnb.core.cost.format_cost`):
    per run the iterations, batch, images seen and estimated hours per measured device,
    the totals, and the GPU-row message when no GPU was measured."""
    rows = planned_trainings(cfg, dataset_or_num_train_images, plan)
    head = (f"01_bcloss cost at profile {cfg.profile} ({cfg.dataset}, {cfg.backbone} "
            f"{cfg.height}x{cfg.width}), before training:")
    return head + "\n" + cost.format_cost(cost.cost_frame(rows, table))

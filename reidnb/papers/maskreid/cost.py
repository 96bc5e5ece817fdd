"""What notebook ``02_maskreid`` trains at a config, and its cost before training (issue 13).

:func:`planned_trainings` follows the notebook's cells with the plan of
:func:`.experiments.make_plan`:

* stage 1 (:func:`.experiments.stage1`, softmax) of the full network and of every ablation
  variant of ``plan.ablation``: on the joint small-scale set when ``run_small_scale`` finds
  one under ``data_root``, else on the target set; the stage is given in iterations, so the
  images seen are the same either way;
* stage 2 (:func:`.experiments.stage2`) from that stage-1 run: one run per loss of
  ``plan.losses`` (``ranking`` = the 000 loss), the 003 ranking run when ``"maskreid"`` is
  in ``plan.versions``, and each lambda x alpha cell of ``plan.grid`` not already trained
  by those two (the notebook's ``ranking`` dict: one stage-1 run feeds every stage-2 run).
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from ...core import cost
from ..common import stage_iters
from .config import MaskReIDConfig
from .experiments import Plan, make_plan, seeds_for, stage1, stage2
from .recipe import ranking_name

__all__ = ["planned_trainings", "format_cost"]



def planned_trainings(cfg: MaskReIDConfig, dataset_or_num_train_images: Any,
                      plan: Plan | None = None) -> list[dict]:
    """Every training ``02_maskreid`` runs at ``cfg``, each once, in the notebook's order.

    Args:
        cfg: the notebook's config.
        dataset_or_num_train_images: the target set after ``load_target`` (``ds``) or its
            number of training images (only checked against one batch: both stages are
            given in iterations).
        plan: the notebook's ``plan`` (default :func:`make_plan` (cfg)).

    Returns:
        list of dicts ``variant`` (run name: ``stage1-<arch>``, ``stage2-<loss>``,
        ``stage2-<ranking_name>``), ``stage``, ``iterations``, ``batch_size``, ``backbone``,
        ``height``, ``width``, ``note``. Paper profile, 000 + 003 plans: 4 stage-1 runs of
        55,000 x 64 images, then 4 losses + the 003 ranking run + the grid cells left
        (25 + 10 - 2 = 33) of 20,000 x 64.

    Raises:
        ValueError: fewer training images than one batch, a bad plan (:func:`make_plan`).
    """
    plan = plan if plan is not None else make_plan(cfg)
    n = cost.num_train_images(dataset_or_num_train_images)
    s1, s2 = stage1(cfg, n), stage2(cfg, n)
    base = dict(backbone=cfg.backbone, height=int(cfg.height), width=int(cfg.width))
    where = ("stage 1 runs on the joint small-scale set when found under data_root, else on "
             "the target set (same iterations)")
    out = [dict(variant=f"stage1-{arch}", stage="stage 1 (softmax)", iterations=stage_iters(cfg, s1),
                batch_size=int(s1.batch_size), note=where, **base)
           for arch in dict.fromkeys(("MaskReID", *plan.ablation))]

    def s2_run(name: str, what: str) -> dict:
        return dict(variant=f"stage2-{name}", stage=what, iterations=stage_iters(cfg, s2),
                    batch_size=int(s2.batch_size), **base)

    trained: set[tuple[str, float, float]] = set()
    for loss in plan.losses:
        name = ranking_name("maskreid_icme", None, None) if loss == "ranking" else loss
        for i in range(seeds_for(cfg, loss)):      # the headline comparison's extra seeds
            out.append(s2_run(name + (f"-seed{int(cfg.seed) + i}" if i else ""),
                              f"stage 2 ({loss})"))
    if "ranking" in plan.losses:
        trained.add(("maskreid_icme", 1.0, 0.2))
    if "maskreid" in plan.versions:
        out.append(s2_run(ranking_name("maskreid", None, None), "stage 2 (ranking, 003)"))
        trained.add(("maskreid", 2.0, 0.15))
    for version, lam, alpha in plan.grid:
        key = (version, float(lam), float(alpha))
        if key not in trained:
            trained.add(key)
            out.append(s2_run(ranking_name(version, lam, alpha), "stage 2 (lambda x alpha grid)"))
    return out


def format_cost(cfg: MaskReIDConfig, dataset_or_num_train_images: Any, plan: Plan | None = None, *,
                table: pd.DataFrame | None = None) -> str:
    """Printable cost of :func:`planned_trainings` (:func:`reidnb.core.cost.format_cost`)."""
    rows = planned_trainings(cfg, dataset_or_num_train_images, plan)
    head = (f"02_maskreid cost at profile {cfg.profile} ({cfg.dataset}, {cfg.backbone} "
            f"{cfg.height}x{cfg.width}), before training:")
    return head + "\n" + cost.format_cost(cost.cost_frame(rows, table))

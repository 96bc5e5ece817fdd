"""What notebook ``04_magnifiernet`` trains at a config, and its cost before training (issue 13).

:func:`planned_trainings` follows :func:`.experiments.train_plan`: each stage-1 network of
:meth:`.experiments.Plan.stage1_specs` once (the ``G+M+SAB+SFB`` run serves Table 2, Fig. 4,
Fig. 5 and stage 2), then stage 2 (+SD) when the plan needs it and the stage-2 control
without SD when ``plan.sd_control``; the stages are :func:`.experiments.stage` on the P x K
sampler's epoch (:func:`.experiments.stage_images`).
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from ...core import cost
from ..common import stage_iters
from .config import MagnifierNetConfig
from .experiments import (FULL, HEADLINE_RUNS, SD_CONTROL, STAGE1_FULL, Plan, make_plan, stage,
                          stage_images)

__all__ = ["planned_trainings", "format_cost"]



def planned_trainings(cfg: MagnifierNetConfig, dataset_or_num_train_images: Any,
                      plan: Plan | None = None) -> list[dict]:
    """Every training ``04_magnifiernet`` runs at ``cfg``, each once, in the notebook's order.

    Args:
        cfg: the notebook's config.
        dataset_or_num_train_images: the set after ``prepare_parts`` (``ds``): the stages'
            epochs are epochs of its P x K sampler; an int ``n`` stands for ``n`` images with
            K per identity (:func:`reidnb.core.cost.uniform_train_set`).
        plan: the notebook's ``plan`` (default :func:`make_plan` (cfg)).

    Returns:
        list of dicts ``variant`` (run key), ``stage``, ``iterations``, ``batch_size``,
        ``backbone``, ``height``, ``width``, ``note``. Paper profile: stage 1 is 460 epochs x
        (sampler epoch // 64) iterations of 64 images; stage 2 40 epochs.

    Raises:
        ValueError: fewer identities / images than one P x K batch, a bad plan.
    """
    plan = plan if plan is not None else make_plan(cfg)
    ds = cost.uniform_train_set(dataset_or_num_train_images, int(cfg.num_instances))
    n = stage_images(cfg, ds)
    s1, s2 = stage(cfg, 1, n), stage(cfg, 2, n)
    base = dict(backbone=cfg.backbone, height=int(cfg.height), width=int(cfg.width),
                note=f"MagnifierNet: {cfg.backbone} with last stride 1 plus the SAB / SFB / mask "
                     "branches costs more per image than the plain backbone")
    seeds = int(getattr(cfg, "seeds", 1))

    def runs(key: str, n: int) -> list[str]:   # the headline comparison's extra seeds
        return [key + (f"-seed{int(cfg.seed) + i}" if i else "") for i in range(n)]

    out = [dict(variant=v, stage="stage 1 (no SD)", iterations=stage_iters(cfg, s1),
                batch_size=int(s1.batch_size), **base) for spec in plan.stage1_specs()
           for v in runs(spec.key, seeds if spec.key in HEADLINE_RUNS else 1)]
    n2 = seeds if STAGE1_FULL in HEADLINE_RUNS else 1     # one stage 2 per stage-1 seed
    if plan.needs_stage2:
        out += [dict(variant=v, stage="stage 2 (+SD)", iterations=stage_iters(cfg, s2),
                     batch_size=int(s2.batch_size), **base) for v in runs(FULL, n2)]
    if plan.sd_control:
        out += [dict(variant=v, stage="stage 2 (no SD, control)", iterations=stage_iters(cfg, s2),
                     batch_size=int(s2.batch_size), **base) for v in runs(SD_CONTROL, n2)]
    return out


def format_cost(cfg: MagnifierNetConfig, dataset_or_num_train_images: Any,
                plan: Plan | None = None, *, table: pd.DataFrame | None = None) -> str:
    """Printable cost of :func:`planned_trainings` (:func:`reidnb.core.cost.format_cost`)."""
    rows = planned_trainings(cfg, dataset_or_num_train_images, plan)
    head = (f"04_magnifiernet cost at profile {cfg.profile} ({cfg.dataset}, {cfg.backbone} "
            f"{cfg.height}x{cfg.width}), before training:")
    return head + "\n" + cost.format_cost(cost.cost_frame(rows, table))

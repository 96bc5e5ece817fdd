"""What notebook ``03_sal`` trains at a config, and its cost before training (issue 13).

:func:`planned_trainings` follows the notebook: for each Table 1 setting of
:func:`.experiments.select_settings` (``cfg.settings``) the two stages of
:func:`.experiments.stages`, where settings with the same stage-1 recipe
(:func:`.experiments.stage1_tag`) share one stage-1 run (``run_table1``'s cache); then the
CIFAR-100 Table 4 rows ``cfg.cifar_methods`` (:func:`.cifar.cifar_stage`), which the notebook
trains only when CIFAR-100 is found (or ``cifar_download`` at the paper profile).
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from ...core import cost
from ..common import stage_iters
from .cifar import CIFAR_METHODS, cifar_stage
from .config import SALConfig
from .experiments import HEADLINE_SETTINGS, loss_terms, select_settings, stage1_tag, stages

__all__ = ["planned_trainings", "format_cost", "CIFAR_TRAIN_IMAGES"]

#: Images in the CIFAR-100 training split.
CIFAR_TRAIN_IMAGES = 50000



def planned_trainings(cfg: SALConfig, dataset_or_num_train_images: Any, plan: Any = None, *,
                      cifar: bool = True) -> list[dict]:
    """Every training ``03_sal`` runs at ``cfg``, each once, in the notebook's order.

    Args:
        cfg: the notebook's config (``settings``, both stages, ``cifar_*``, ``max_iters``).
        dataset_or_num_train_images: the set from ``load_sal_data`` (``ds``): stage 2's
            P x K epochs are epochs of its sampler; an int ``n`` stands for ``n`` images
            with K per identity (:func:`reidnb.core.cost.uniform_train_set`).
        plan: unused (the settings come from ``cfg.settings``).
        cifar: include the Table 4 rows (the notebook skips them when CIFAR-100 is absent).

    Returns:
        list of dicts ``variant`` (``stage1-...`` tag, ``setting <id>``, ``cifar-<method>``),
        ``stage``, ``iterations``, ``batch_size``, ``backbone``, ``height``, ``width``,
        ``note``.

    Raises:
        ValueError: unknown setting ids, fewer images than one batch (``Stage``).
    """
    ds = cost.uniform_train_set(dataset_or_num_train_images, int(cfg.stage2_k))
    base = dict(backbone=cfg.backbone, height=int(cfg.height), width=int(cfg.width))
    out, seen = [], set()
    for s in select_settings(cfg.settings):
        s1, s2 = stages(cfg, ds, s)
        arch = ("dilated " if s.dilation else "") + ("multi-level " if s.multi_level else "")
        note = f"settings with DIL run {cfg.backbone} dilated (stage4/5 at 1/8): more per image"
        tag = stage1_tag(s)
        if tag not in seen:
            seen.add(tag)
            batches = "random batches" if s1.sampler == "random" else "P x K"
            out.append(dict(variant=tag, stage=f"stage 1 ({arch}{'+'.join(loss_terms(s, 1))}, {batches})",
                            iterations=stage_iters(cfg, s1), batch_size=int(s1.batch_size),
                            note=note if s.dilation else None, **base))
        n_seeds = int(cfg.seeds) if s.id in HEADLINE_SETTINGS else 1
        out += [dict(variant=f"setting {s.id}" + (f"-seed{int(cfg.seed) + i}" if i else ""),
                     stage="stage 2 (Eq. 6, P x K)", iterations=stage_iters(cfg, s2),
                     batch_size=int(s2.batch_size), note=note if s.dilation else None, **base)
                for i in range(n_seeds)]
    if cifar:
        n = min(CIFAR_TRAIN_IMAGES, int(cfg.cifar_train_subset or CIFAR_TRAIN_IMAGES))
        st = cifar_stage(cfg, n)
        size = int(cfg.cifar_size)
        for m in cfg.cifar_methods:
            depth = CIFAR_METHODS[m][1]
            out.append(dict(variant=f"cifar-{m}", stage="Table 4 (CIFAR-100)",
                            iterations=stage_iters(cfg, st), batch_size=int(st.batch_size),
                            backbone=depth if cfg.profile == "paper" else cfg.backbone,
                            height=size, width=size,
                            note="Table 4 rows run only when CIFAR-100 is found under data_root "
                                 "(or cifar_download=True at the paper profile)"))
    return out


def format_cost(cfg: SALConfig, dataset_or_num_train_images: Any, plan: Any = None, *,
                cifar: bool = True, table: pd.DataFrame | None = None) -> str:
    """Printable cost of :func:`planned_trainings` (:func:`reidnb.core.cost.format_cost`)."""
    rows = planned_trainings(cfg, dataset_or_num_train_images, plan, cifar=cifar)
    head = (f"03_sal cost at profile {cfg.profile} ({cfg.dataset}, {cfg.backbone} "
            f"{cfg.height}x{cfg.width}), before training:")
    return head + "\n" + cost.format_cost(cost.cost_frame(rows, table))

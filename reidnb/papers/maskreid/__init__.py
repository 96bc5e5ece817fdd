"""MaskReID (both versions): the paper package of notebook ``02_maskreid``.

Papers:

* **000** (``paper_id="maskreid_icme"``): L. Qi, J. Huo, L. Wang, Y. Shi, Y. Gao, "A mask
  based deep ranking neural network for person retrieval", IEEE ICME 2019. Ranking loss
  Eq. 3 (lambda 1, alpha 0.2).
* **003** (``paper_id="maskreid"``): the same authors, "MaskReID: a mask based deep ranking
  neural network for person re-identification", long version (arXiv 2018). Ranking loss
  Eq. 5 (lambda 2, alpha 0.15).

Recipe: ``papers/recipes.md`` §1. Reproduced: the two-stream network with masked input and
the skipped fusing layer (:mod:`.model`), the two-stage training (softmax, then one loss
from the stage-1 weights with P/N anchor batches; :mod:`.experiments`), the loss
comparison, both ranking losses with +/- re-ranking, the lambda x alpha grids and the
component ablation (a proxy on the target set); the small-scale Table 1 only when those
sets are found under ``data_root`` (:mod:`.small_scale`).

Table -> notebook cell (``notebooks/02_maskreid.ipynb``):

=========================  ==========================================================
000 / 003 Table 1          "Table 1 (000 / 003): small-scale sets" (:func:`run_small_scale`)
000 Table 4                "Table 4 (000): ... proxy on the target set" (:func:`ablation_table`)
000 Table 5, 003 Table 2   "Table 5 (000) / Table 2 (003): loss functions" (:func:`loss_table`)
000 Tables 2-3, 003 2-3    same cell (ranking runs, +/- re-ranking; Duke -> Tables 3)
000 Table 6, 003 Table 4   "Table 6 (000) / Table 4 (003): lambda x alpha grid"
all tables                 "Results: measured vs published" (:func:`results_rows`)
=========================  ==========================================================

Use: ``from reidnb.papers import maskreid as paper``; ``cfg = paper.Config.make(profile)``.
"""
from __future__ import annotations

from . import model  # noqa: F401  (registers the "maskreid" network)
from .config import LOSSES, MaskReIDConfig
from .cost import format_cost, planned_trainings
from .experiments import (HEADLINE_LOSSES, VARIANTS, Plan, Variant, describe_recipe,
                          evaluate_run, grid_cells, load_target, make_plan, model_kw,
                          pretrained_status, seeds_for, stage1, stage2, train_stage1,
                          train_stage2, transfer_init)
from .model import MaskReID
from .recipe import ARCHS, VERSIONS, PaperVersion, loss_terms, mask_input, ranking_name
from .small_scale import run_small_scale, small_scale_runs
from .tables import (PUBLISHED, SMALL_SCALE, TABLE1_NAMES, ablation_table, grid_table,
                     loss_table, published_for, published_grid, ranking_cells, results_rows,
                     small_scale_rows, small_scale_table)

#: The notebook's config class.
Config = MaskReIDConfig

__all__ = [
    "Config", "MaskReIDConfig", "MaskReID", "VARIANTS", "Variant", "PUBLISHED", "SMALL_SCALE",
    "TABLE1_NAMES", "LOSSES", "VERSIONS", "ARCHS", "PaperVersion", "loss_terms", "mask_input",
    "ranking_name", "stage1", "stage2", "describe_recipe", "model_kw", "pretrained_status", "train_stage1",
    "train_stage2", "transfer_init", "evaluate_run", "grid_cells", "Plan", "make_plan",
    "load_target", "run_small_scale", "small_scale_runs", "published_for", "ranking_cells",
    "results_rows", "small_scale_rows", "loss_table", "grid_table", "ablation_table",
    "published_grid", "small_scale_table",
]
__all__ += ["planned_trainings", "format_cost"]   # cost before training (issue 13)
__all__ += ["HEADLINE_LOSSES", "seeds_for"]         # seeds of the headline comparison

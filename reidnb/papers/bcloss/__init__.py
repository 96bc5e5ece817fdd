"""Paper 001, the batch-contrastive loss, as the code behind notebook ``01_bcloss``.

Guopeng Zhang and Jinhua Xu, "Discriminative Feature Representation for Person
Re-identification by Batch-contrastive Loss", Asian Conference on Machine Learning (ACML,
PMLR 95), 2018 (``papers/001_51c9a57035e4dd54.txt``; recipe in ``papers/recipes.md`` §2).

Reproduced: the softmax baseline (§3.3) against joint training with
L = L_s + lambda (L_b + L_c) (Eq. 9) on ResNet -> pool5 -> dropout -> FC (§2.1, Fig. 2),
random batches of 16, SGD lr 0.01 x 0.1 every 20k of 50k iterations (§3.2), each number
the mean over seeds (§3.4); plus a tau sweep, which the paper does not have (it gives no
margin; recipes.md §2.5).

=====================================  ==========================================  ==============
paper                                  notebook ``01_bcloss`` cell                 code
=====================================  ==========================================  ==============
Table 1 (Market-1501, rank-1/5/10 +    "Baseline: softmax only", "Joint            experiments,
mAP), Table 2 (DukeMTMC-reID, rank-1   training", "Measured: baseline vs joint",   tables
+ mAP); the dataset run picks one      "Results file and the published table"
Fig. 1 (intra / min inter / mean       "001 Fig. 1: distances over iterations"     reidnb.viz
inter-class distance over iterations)
tau sweep (not in 001)                 "tau sweep (not in the paper)"              experiments
ranked lists (illustration)            "Ranked lists: baseline vs joint"           reidnb.viz
=====================================  ==========================================  ==============

Use::

    from reidnb.papers import bcloss as paper
    cfg = paper.Config.make("quick")
    runs = paper.train_variant(cfg, ds, "joint", runs=cfg.runs)

``chance_level`` and ``pick_queries`` are :mod:`reidnb.evaluation.retrieval`'s, re-exported
for the notebook.
"""
from __future__ import annotations

from ...evaluation.retrieval import chance_level, pick_queries
from . import model  # noqa: F401  (registers the network "bcloss")
from .config import BCLossConfig
from .cost import format_cost, planned_trainings
from .experiments import (MODEL, VARIANTS, describe_recipe, feat_dim_of, losses_for, main_stage,
                          run_deviations, sweep_stage, tau_sweep, train_variant)
from .model import BCLossNet
from .tables import (PUBLISHED, TABLES, SeedMean, mean_metrics, measured_rows, metrics_table,
                     row_note, table_cells, table_for)

#: The notebook's config class (``paper.Config.make(profile, ...)``).
Config = BCLossConfig

__all__ = ["Config", "BCLossConfig", "BCLossNet", "MODEL", "VARIANTS", "PUBLISHED", "TABLES",
           "losses_for", "feat_dim_of", "main_stage", "sweep_stage", "train_variant",
           "tau_sweep", "run_deviations", "describe_recipe", "table_for", "SeedMean", "mean_metrics",
           "metrics_table", "table_cells", "measured_rows", "row_note", "chance_level", "pick_queries"]
__all__ += ["planned_trainings", "format_cost"]   # cost before training (issue 13)

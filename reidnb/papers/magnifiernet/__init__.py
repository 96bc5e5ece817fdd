"""Paper 002, MagnifierNet, as the code behind notebook ``04_magnifiernet``.

Yushi Lan, Yuan Liu, Xinchi Zhou, Maoqing Tian, Xuesen Zhang, Shuai Yi, Hongsheng Li,
"MagnifierNet: Towards Semantic Adversary and Fusion for Person Re-identification",
British Machine Vision Conference (BMVC) 2020 (``papers/002_dc6d212beb62a05a.txt``; recipe
in ``papers/recipes.md`` §3).

Reproduced: the BoT global branch G (reid-strong-baseline, ResNet last stride 1) with the
mask module M (pseudo part labels), the semantic adversarial branch SAB (Random-torso
region occlusion), the semantic fusion branch SFB (GRU over the 8 region features) and
the semantic diversity loss SD (Eq. 3), trained in two stages (stage 1 without SD,
stage 2 adds SD from stage 1's weights; §4.1); the component ablation, the full model with
and without re-ranking, SFB against the ablation branch AB and the K-hat sweep.

=====================================  ==========================================  ==============
paper                                  notebook ``04_magnifiernet`` cell           code
=====================================  ==========================================  ==============
§3.1 mask module M                     "Mask module M: predicted part masks ..."   figures
Table 2 (component ablation; CUHK03-L  "Training", "Table 2 - component ablation", experiments,
and DukeMTMC-reID; rows G .. +SD)      "Distance curves"                           tables
Table 1 (full model +- re-ranking,     "Table 1 - the full model with and without  experiments,
four datasets, "Ours")                 re-ranking"                                 tables
Fig. 2 / Fig. 3 (activations, top-1    "Fig. 2 / Fig. 3 - activations per          figures,
baseline vs +SAB)                      variant, top-1 retrieval"                   reidnb.viz
Fig. 4 (SFB vs AB)                     "Fig. 4 - SFB vs the ablation branch AB"    tables
Fig. 5 (K-hat, Random-torso vs         "Fig. 5 - K-hat sweep"                      tables
Random-baseline)
results CSV / comparison               "Results file and the comparison ..."       tables
=====================================  ==========================================  ==============

Use::

    from reidnb.papers import magnifiernet as paper
    cfg = paper.Config.make("quick")
    plan = paper.make_plan(cfg)
    runs = paper.train_plan(cfg, ds, plan)
    rows = paper.measured_rows(cfg, runs, plan, iters_per_epoch=len(ds.train) // cfg.batch_size)
"""
from __future__ import annotations

from . import model  # noqa: F401  (registers the network "magnifiernet")
from .config import MagnifierNetConfig
from .cost import format_cost, planned_trainings
from .experiments import (FULL, SAMPLINGS, SD_CONTROL, STAGE1_FULL, TABLE2_ROWS, VARIANTS,
                          Plan, RunSpec, Variant, describe_recipe, describe_stages, image_input,
                          make_plan, stage_images,
                          model_kw, parts_input, pretrained_status, sd_weight, stage,
                          train_plan, train_stage1, train_stage2, variant, variant_losses)
from .figures import activation_maps, figure_batch, predicted_parts, top1_panel
from .model import MagnifierNet, magnifiernet_losses
from .parts import prepare_parts
from .tables import (PUBLISHED, fig4_frame, fig5_frame, measured_rows, sd_control_frame,
                     table1_frame, table2_frame, table_dataset)

#: The notebook's config class (``paper.Config.make(profile, ...)``).
Config = MagnifierNetConfig

__all__ = [
    "Config", "MagnifierNetConfig", "MagnifierNet", "magnifiernet_losses", "Variant",
    "VARIANTS", "TABLE2_ROWS", "STAGE1_FULL", "FULL", "SD_CONTROL", "SAMPLINGS", "PUBLISHED",
    "variant", "model_kw", "variant_losses", "parts_input", "image_input", "stage",
    "sd_weight", "stage_images", "describe_stages", "describe_recipe", "RunSpec", "Plan", "make_plan", "train_stage1",
    "train_stage2", "train_plan", "pretrained_status", "prepare_parts", "table_dataset",
    "table1_frame", "table2_frame", "fig4_frame", "fig5_frame", "measured_rows",
    "figure_batch", "activation_maps", "predicted_parts", "top1_panel",
]
__all__ += ["planned_trainings", "format_cost"]   # cost before training (issue 13)
__all__ += ["sd_control_frame"]                    # +SD vs its control, with its interval

"""Self-attention learning (SAL, paper 004): the package behind notebook ``03_sal``.

Citation: "Self-attention Learning for Person Re-identification", BMVC 2018 submission
#613 (anonymous review copy; the authors are not in the text). Full text:
``shared/papers/004_b882ee1f7a201246.txt``; recipe: ``shared/papers/recipes.md`` §4.

What is reproduced, and where in ``notebooks/03_sal.ipynb``:

=====================  ===============================================  ==================
paper                  what runs                                        notebook section
=====================  ===============================================  ==================
Table 1 (Market-1501)  the settings the profile selects                 "Table 1",
                       (:data:`VARIANTS`), two-stage :func:`stages`     "comparisons §4.3"
Tables 2 / 3           setting 8 (full model) +/- k-reciprocal          "Tables 2 / 3"
                       re-ranking; the dataset picks the table
Fig. 3                 stage4/5/6 attention maps without / with SAC     "Fig. 3"
                       and their measured agreement
Table 4 (CIFAR-100)    the SAL head on CIFAR-100, only when the data    "Table 4"
                       is on disk (:func:`run_cifar100`)
=====================  ===============================================  ==================

Modules: :mod:`.config` (:class:`SALConfig`: the paper's recipe as defaults, profile
overrides with their reasons), :mod:`.model` (the network, registered as ``"sal"``),
:mod:`.experiments` (Table 1 as data, stages, training), :mod:`.cifar` (Table 4),
:mod:`.tables` (:data:`PUBLISHED`, measured-vs-paper tables, results rows),
:mod:`.figures` (Fig. 3 maps and statistics).

Usage: ``from reidnb.papers import sal as paper``; ``cfg = paper.Config.make("quick")``.
"""
from __future__ import annotations

from . import model  # noqa: F401  (registers build_model("sal", ...))
from .cifar import (CIFAR_METHODS, CifarRun, cifar_stage, classification_error,
                    prepare_cifar100, run_cifar100)
from .config import SALConfig
from .cost import format_cost, planned_trainings
from .experiments import (DIRECTIONS, QUADRUPLET_MARGINS, TABLE1, Setting, SettingRun,
                          describe_recipe, epoch_images, fig3_runs, load_sal_data, loss_terms, run_note,
                          run_setting, run_table1, select_settings, settings_frame,
                          stage1_tag, stages)
from .figures import attention_agreement, attention_maps, sample_query_images
from .model import SAL
from .tables import (FULL_MODEL, PUBLISHED, directions_frame, full_model_frame,
                     full_model_table, published_for, reid_rows, table1_frame, table4_frame,
                     table4_rows)

#: The notebook's config class (``paper.Config.make(profile, **params)``).
Config = SALConfig
#: The paper's variants: Table 1 setting id -> :class:`Setting` (model switches, losses).
VARIANTS = TABLE1

__all__ = [
    "Config", "SALConfig", "VARIANTS", "PUBLISHED", "FULL_MODEL", "SAL", "TABLE1",
    "DIRECTIONS", "QUADRUPLET_MARGINS", "Setting", "SettingRun", "select_settings",
    "loss_terms", "stage1_tag", "epoch_images", "stages", "run_setting", "run_table1",
    "load_sal_data", "run_note", "settings_frame", "fig3_runs", "describe_recipe",
    "CIFAR_METHODS", "CifarRun",
    "cifar_stage", "classification_error", "run_cifar100", "prepare_cifar100",
    "full_model_table",
    "published_for", "reid_rows", "table4_rows", "table1_frame", "directions_frame",
    "full_model_frame", "table4_frame", "sample_query_images", "attention_maps",
    "attention_agreement",
]
__all__ += ["planned_trainings", "format_cost"]   # cost before training (issue 13)

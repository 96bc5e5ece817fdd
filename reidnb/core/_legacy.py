"""TEMPORARY: the pre-layout notebook profiles, served as config classes until every paper
package defines its own config (reidnb/papers/<paper>/config.py). Deleted at the end of
the layout change."""
from __future__ import annotations

import dataclasses
from typing import Any

from .config import RunConfig

NOTEBOOK_PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "00_data": {"smoke": {}, "quick": {}, "paper": {}},
    # 04_magnifiernet (recipes.md §3; reidnb/magnifiernet_recipes.py): BoT recipe (Adam,
    # P x K, random erasing 0.5); stage 1 without SD, stage 2 adds SD (gamma 2e-3) from
    # stage 1's weights. quick: ResNet-18 at 128x64, stages cut to 25 + 8 iterations at
    # lr 1e-3 without random erasing (from random init BoT's 3.5e-4 + erasing barely moves
    # in that many steps: measured R1 7.9% vs 33% after 40 steps); stage 2 at the recipes.md
    # fallback lr 3.5e-5 (the paper's 1e-3 with a fresh Adam dropped R1 28.0 -> 21.5);
    # Table 2 reduced to G / +SAB / +SAB+SFB / +SD, with the stage-2 control without SD
    # (sd_control: +SD also means 8 more iterations; measured without the control, synthetic:
    # +SFB 28.0/19.8 -> +SD 32.6/23.4 rank-1/mAP), Fig. 5 at K-hat 4 only, synthetic test
    # subset of 100 ids; on real data (real_quick) only G and the full model, part maps
    # from the parsing labels.
    "04_magnifiernet": {
        "smoke": dict(batch_size=16, num_instances=4, stage1_epochs=1, stage2_epochs=1,
                      stage1_iters=None, stage2_iters=None, stage1_lr=3.5e-4,
                      stage1_milestones=(), warmup_epochs=0, stage2_lr=1e-3, sd_weight=2e-3,
                      mask_weight=2.0, random_erasing=0.5,
                      table2_rows=("G", "G+M+SAB+SFB", "G+M+SAB+SFB+SD"), fig4=True,
                      k_hats=(4,), samplings=("random_torso",), k_hat=4,
                      sampling="random_torso", rerank=True, sd_control=False,
                      parts_source="labels", n_figure_images=3, max_test_pids=None,
                      real_quick=None),
        "quick": dict(height=128, width=64, batch_size=32, num_instances=4, stage1_epochs=1,
                      stage2_epochs=1, stage1_iters=25, stage2_iters=8, stage1_lr=1e-3,
                      stage1_milestones=(), warmup_epochs=0, stage2_lr=3.5e-5, sd_weight=2e-3,
                      mask_weight=2.0, random_erasing=0.0,
                      table2_rows=("G", "G+M+SAB", "G+M+SAB+SFB", "G+M+SAB+SFB+SD"),
                      fig4=True, k_hats=(4,), samplings=("random_torso", "random_baseline"),
                      k_hat=4, sampling="random_torso", rerank=True, sd_control=True,
                      parts_source="labels", n_figure_images=4, max_test_pids=100,
                      real_quick=dict(table2_rows=("G", "G+M+SAB+SFB+SD"), fig4=False,
                                      k_hats=(), sd_control=False)),
        "paper": dict(backbone="resnet50", pretrained=True, height=384, width=192,
                      batch_size=64, num_instances=4, stage1_epochs=460, stage2_epochs=40,
                      stage1_iters=None, stage2_iters=None, stage1_lr=3.5e-4,
                      stage1_milestones=(150, 300), warmup_epochs=10, stage2_lr=1e-3,
                      sd_weight=2e-3, mask_weight=2.0, random_erasing=0.5,
                      table2_rows=("G", "G+M", "G+M+SAB", "G+M+SFB", "G+M+SAB+SFB",
                                   "G+M+SAB+SFB+SD"),
                      fig4=True, k_hats=(2, 4, 6), samplings=("random_torso", "random_baseline"),
                      k_hat=4, sampling="random_torso", rerank=True, sd_control=True,
                      parts_source="auto", n_figure_images=6, max_test_pids=None,
                      real_quick=None),
    },
    "05_summary": {"smoke": {}, "quick": {}, "paper": {}},
}


_CACHE: dict[str, type] = {}


def legacy_config_class(notebook: str) -> type | None:
    """A dynamic RunConfig subclass for an old notebook id, or None."""
    if notebook not in NOTEBOOK_PROFILES:
        return None
    if notebook in _CACHE:
        return _CACHE[notebook]
    profs = NOTEBOOK_PROFILES[notebook]
    base = {f.name for f in dataclasses.fields(RunConfig)}
    keys: list[str] = []
    for p in ("paper", "quick", "smoke"):
        keys += [k for k in profs.get(p, {}) if k not in keys and k not in base]
    extra = {"00_data": ["n_montage"]}.get(notebook, [])
    keys += [k for k in extra if k not in keys]
    paper = profs.get("paper", {})
    fields = []
    for k in keys:
        d = paper.get(k)
        if isinstance(d, (dict, list)):
            fields.append((k, Any, dataclasses.field(default_factory=lambda d=d: d)))
        else:
            fields.append((k, Any, dataclasses.field(default=d)))
    fields.append(("notebook", str, dataclasses.field(default=notebook)))
    fields += [(k, Any, dataclasses.field(default=v)) for k, v in paper.items() if k in base]
    ns = {"PROFILES": {p: dict(v) for p, v in profs.items() if p != "paper"}}
    cls = dataclasses.make_dataclass(f"Legacy_{notebook}", fields, bases=(RunConfig,),
                                     frozen=True, namespace=ns)
    _CACHE[notebook] = cls
    return cls

"""Settings of notebook ``01_bcloss``: one frozen config whose defaults are 001's recipe.

The defaults are paper 001's own settings (§3.2; recipes.md §2.5 where 001 is silent), so
:meth:`reidnb.core.config.RunConfig.deviations` lists every way a smoke or quick run
differs from the paper, with the measured reasons of :attr:`BCLossConfig.REASONS`.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from ...core.config import RunConfig

__all__ = ["BCLossConfig"]


@dataclasses.dataclass(frozen=True)
class BCLossConfig(RunConfig):
    """Every setting of ``01_bcloss`` (paper 001, batch-contrastive loss); defaults = 001.

    Attributes (besides :class:`~reidnb.core.config.RunConfig`'s):
        batch_size: 16 random images per step (001 §3.2; no identity sampling, §2.3).
        epochs: None: the length is given in iterations (``max_iters``); an int states it
            in epochs instead (smoke, quick).
        max_iters: 50,000 optimiser steps (001 §3.2); also the global cap of the run.
        lr: base SGD learning rate (001 §3.2: 0.01).
        lr_step_iters: lr x 0.1 every this many iterations (001 §3.2: 20k; rounded to the
            nearest epoch boundary), None: use ``lr_milestones``.
        lr_milestones: lr x 0.1 after these epochs when ``lr_step_iters`` is None.
        dropout: dropout rate on pool5 (001 §3.2: 0.9).
        tau: margin of L_b on the squared distance of unit vectors (001 gives none;
            recipes.md §2.5: 1.0).
        lam: lambda of Eq. 9, weight of L_b and L_c (001 §3.2: 1).
        center_lr: centre learning rate eta of Eq. 6 (recipes.md §2.5: 0.5).
        loss_reduction: ``"sum"`` over the m batch images as Eqs. 3-4 print L_b and L_c
            (recipes.md §2.5), or ``"mean"`` (m times lighter).
        flip_p, pad: horizontal-flip probability and pad + random-crop pixels of the train
            loader (recipes.md §2.5: Caffe ``mirror`` only; 001 names no augmentation).
        runs: seeds averaged per setting (001 §3.4: mean of 5 runs).
        taus: margins of the tau sweep (recipes.md §2.5: {0.5, 1.0, 1.5}; not in 001).
        sweep_epochs: epochs of each sweep run (None: the main schedule).
    """

    notebook: str = "01_bcloss"
    dataset: str = "market1501"            # 001 Table 1 (Table 2: dukemtmcreid)
    backbone: str = "resnet50"             # 001 §2.1, Fig. 2
    pretrained: bool | str = True          # 001 §3.2: ImageNet initialisation
    height: int = 256                      # 001 §3.2: 256 x 128 inputs
    width: int = 128
    batch_size: int = 16                   # 001 §3.2
    epochs: int | None = None              # 001 §3.2 states iterations, not epochs
    max_iters: int | None = 50000          # 001 §3.2: 50k iterations
    lr: float = 0.01                       # 001 §3.2
    lr_step_iters: int | None = 20000      # 001 §3.2: x0.1 every 20k iterations
    lr_milestones: tuple[int, ...] = ()    # epochs; used when lr_step_iters is None
    dropout: float = 0.9                   # 001 §3.2
    tau: float = 1.0                       # recipes.md §2.5 (001 gives no margin)
    lam: float = 1.0                       # 001 §3.2, Eq. 9
    center_lr: float = 0.5                 # recipes.md §2.5 (Wen et al. 2016; BoT)
    loss_reduction: str = "sum"            # 001 Eqs. 3-4: sums over the m batch images
    flip_p: float = 0.5                    # recipes.md §2.5: random mirror (Caffe)
    pad: int = 0                           # recipes.md §2.5: no pad + crop
    runs: int = 5                          # 001 §3.4: mean of 5 runs
    taus: tuple[float, ...] = (0.5, 1.0, 1.5)   # recipes.md §2.5 sweep (not in 001)
    sweep_epochs: int | None = None        # the sweep uses the main schedule

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": dict(batch_size=16, lr_step_iters=None, runs=1, taus=(1.0, 1.5),
                      loss_reduction="mean", pad=10),
        "quick": dict(batch_size=16, height=64, width=32, epochs=1, lr_step_iters=None,
                      dropout=0.5, runs=2, taus=(1.0,), loss_reduction="mean", pad=10),
    }
    REASONS: ClassVar[dict[str, str]] = {
        "dataset": "the embedded synthetic set stands in for Market-1501 (real data not "
                   "shipped); its numbers are not comparable",
        "synthetic_size": "smoke: the smallest synthetic set (every code path in seconds)",
        "backbone": "ResNet-18 instead of ResNet-50: the CPU budget of the small profiles",
        "pretrained": "no ImageNet download offline ('auto' tries once, else random init)",
        "smoke:pretrained": "smoke never downloads weights",
        "height": "smaller images for the CPU budget",
        "width": "smaller images for the CPU budget",
        "quick:height": "64x32, not 128x64: 128x64 x 2 epochs cost about 64x32 x 4.5 epochs "
                        "and reached rank-1 5.4/11.1% softmax/joint vs 12.2/19.8% for 64x32 "
                        "x 4 epochs (synthetic v1.1)",
        "quick:width": "64x32, see height",
        "epochs": "stated in epochs of the small synthetic set instead of 50k iterations",
        "max_iters": "smoke: 4 iterations (every code path in seconds)",
        "quick:max_iters": "the epochs decide the length (50k iterations do not fit a CPU)",
        "lr_step_iters": "no lr step within the short run",
        "dropout": "0.5, not 0.9: from random init dropout 0.9 left the softmax at chance "
                   "(loss ~ln(300) after 6 epochs, rank-1 1.3%)",
        "runs": "one seed per setting (the CPU budget); 001 averages 5 runs",
        "quick:runs": "two seeds per setting, so the softmax vs softmax + B-C interval covers "
                      "seed-to-seed spread (the 20-minute budget at 65 img/s); 001 averages 5",
        "quick:epochs": "one epoch of the training set per run (synthetic: 129 iterations of "
                        "16), so 2 seeds x 2 settings fit the quick budget (the workbook in 20 "
                        "min at 65 img/s), instead of 50k iterations",
        "taus": "smoke: two margins to exercise the sweep",
        "quick:taus": "no tau sweep (reidnb's addition, 001 gives no tau; measured on "
                      "synthetic v1.1 at this profile: tau 0.5 12.9/11.4 vs tau 1.0 "
                      "12.3/11.2 rank-1/mAP; ~1 min a value)",
        "max_test_pids": "quick: synthetic test on 150 identities (evaluating on the CPU "
                         "costs about as much as training)",
        "loss_reduction": "the batch mean of L_b and L_c that the quick numbers, lr and dropout "
                          "were measured with (the sum weights them 16x more: effective lambda 16)",
        "pad": "pad 10 + random crop, as the quick numbers were measured (001 / recipes.md: "
               "mirror only)",
    }

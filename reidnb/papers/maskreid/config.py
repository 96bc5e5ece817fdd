"""The settings of notebook ``02_maskreid``: one frozen config whose defaults ARE MaskReID's recipe.

Defaults follow 000 §3.2 / 003 §4.2 and ``papers/recipes.md`` §1 (the DGD network at 144x56,
batch 64 with P/N anchor batches 10/54, stage 1 softmax 55k iterations at lr 0.1, stage 2
20k at lr 0.01, the full lambda x alpha grids of 000 Table 6 / 003 Table 4, the 000 Table 4
component ablation, multi-query and re-ranking evaluation). ``PROFILES`` holds the smoke and
quick overrides and ``REASONS`` the measured reason of each, so
:meth:`reidnb.core.config.RunConfig.deviations` lists every way a run differs from the paper.
"""
from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import Any, ClassVar, Mapping

from ...core.config import SEEDS_REASON, RunConfig

__all__ = ["MaskReIDConfig", "LOSSES", "PAPER_VERSIONS", "PAPER_GRID_LAMBDAS",
           "PAPER_GRID_ALPHAS", "ARCH_NAMES"]

#: Losses compared in 000 Table 5 (and 003 Table 2: softmax, triplet, ranking).
LOSSES: tuple[str, ...] = ("softmax", "triplet", "npair", "ranking")
#: Paper ids of the two versions: 000 (ICME, Eq. 3) and 003 (long, Eq. 5).
PAPER_VERSIONS: tuple[str, ...] = ("maskreid_icme", "maskreid")
#: lambda values of 000 Table 6 and 003 Table 4.
PAPER_GRID_LAMBDAS: tuple[float, ...] = (0.0, 1.0, 2.0, 5.0, 10.0)
#: alpha values per version: 000 Table 6 and 003 Table 4.
PAPER_GRID_ALPHAS: Mapping[str, tuple[float, ...]] = MappingProxyType(
    {"maskreid_icme": (0.1, 0.15, 0.2, 0.5, 1.0), "maskreid": (0.1, 0.15)})
#: 000 Table 4 network variants (the full network is the stage-1 run itself).
ARCH_NAMES: tuple[str, ...] = ("DGD", "MaskReID-F", "MaskReID-M", "MaskReID")


@dataclasses.dataclass(frozen=True)
class MaskReIDConfig(RunConfig):
    """Every setting of ``02_maskreid``; the defaults are the papers' recipe (paper profile).

    Attributes (besides :class:`~reidnb.core.config.RunConfig`'s):
        num_pos: P of the P/N anchor batches (N = batch_size - num_pos), 000 §3.2.
        stage1_iters, stage2_iters: optimiser steps of stage 1 (softmax) and of each
            stage-2 variant, 000 §3.2.
        stage1_lr, stage2_lr: base learning rates of the stages (recipes.md §1.4/§1.7).
        lr_policy, lr_power: the lr schedule of both stages: ``"poly"``, Caffe's
            lr = base * (1 - iter / iters) ^ lr_power, as DGD's solver (Xiao et al. 2016,
            ``models/dgd/jstl_solver.prototxt``: poly, power 0.5; recipes.md §1.7), or
            ``"constant"``.
        flip_p, pad: the train loader's mirror probability and pad + random crop (px).
            DGD's data layer (``jstl_trainval.prototxt``: ``mirror: true``, random
            ``crop_height: 144 crop_width: 56`` of images resized to 160x64 by
            ``scripts/make_dbs.sh``): mirror 0.5, and a random 144x56 crop, i.e. up to 16 px
            of vertical and 8 px of horizontal translation. reidnb resizes to 144x56 and
            pads symmetrically, so pad 8 gives the same 16-px vertical range (horizontal
            16 px, twice DGD's).
        triplet_margin: margin of the batch-hard triplet baseline, distance units
            (recipes.md §1.7; the paper gives none).
        losses: stage-2 losses of the loss comparison (000 Table 5 / 003 Table 2).
        versions: paper versions whose default ranking run is trained (their Tables 2/3).
        grid_versions, grid_lambdas, grid_alphas: the lambda x alpha grid per version
            (``grid_alphas``: version -> alphas).
        ablation: 000 Table 4 variants trained besides the full network.
        multi_query, rerank: Market-1501 multi-query and k-reciprocal re-ranking evaluation.
        parser_epochs: epochs of the light mask parser (real data, no exact masks).
        small_sets: look for the small-scale sets of 000 Table 1 under ``data_root``.
        real_reduction: quick profile only, applied on a real dataset: fewer variants and a
            train-id subset (keys losses, versions, grid, ablation, multi_query,
            max_train_pids); None at the paper profile.
        seeds: seeds of the headline comparison (stage 2 of softmax, triplet and the
            ranking loss, from one shared stage-1 network): each of its variants is trained
            with ``seed``, ``seed + 1``, ... and its interval covers seed-to-seed spread
            (:class:`reidnb.core.runs.SeedGroup`); the paper reports one run.
    """

    notebook: str = "02_maskreid"
    backbone: str = "dgd"                 # 000 §2.1: DGD network (Xiao et al. 2016)
    pretrained: bool | str = False        # DGD has no ImageNet weights (000 §3.2: stage 1)
    height: int = 144                     # DGD prototxt crop 144x56 (recipes.md §1.1)
    width: int = 56
    batch_size: int = 64                  # 000 §3.2: P/N = 10/54
    num_pos: int = 10                     # 000 §3.2
    stage1_iters: int = 55000             # 000 §3.2
    stage2_iters: int = 20000             # 000 §3.2
    stage1_lr: float = 0.1                # 000 §3.2
    stage2_lr: float = 0.01               # recipes.md §1.7 (one tenth of stage 1)
    lr_policy: str = "poly"               # recipes.md §1.7: DGD solver, Caffe poly
    lr_power: float = 0.5                 # DGD solver: power 0.5
    flip_p: float = 0.5                   # DGD data layer: mirror
    pad: int = 8                          # DGD: random 144x56 crop of 160x64 (see above)
    triplet_margin: float = 0.3           # recipes.md §1.7 (000 §3.4 gives none)
    losses: tuple[str, ...] = LOSSES      # 000 Table 5
    versions: tuple[str, ...] = PAPER_VERSIONS             # 000 / 003 Tables 2-3
    grid_versions: tuple[str, ...] = PAPER_VERSIONS        # 000 Table 6, 003 Table 4
    grid_lambdas: tuple[float, ...] = PAPER_GRID_LAMBDAS
    grid_alphas: Mapping[str, tuple[float, ...]] = dataclasses.field(
        default_factory=lambda: dict(PAPER_GRID_ALPHAS))     # plain dict: saved as JSON
    ablation: tuple[str, ...] = ("DGD", "MaskReID-F", "MaskReID-M")   # 000 Table 4
    multi_query: bool = True              # 000 §3.1: Market-1501 single and multiple query
    rerank: bool = True                   # 000 Tables 2-3: k-reciprocal re-ranking
    parser_epochs: int = 2
    small_sets: bool = True               # 000 §3.2: stage 1 on the small-scale sets
    real_reduction: Mapping[str, Any] | None = None
    seeds: int = 1                        # one run per variant (the paper's)

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": dict(height=32, width=16, batch_size=16, num_pos=3, stage1_iters=4,
                      stage2_iters=4, stage1_lr=0.1, stage2_lr=0.01, lr_policy="constant",
                      pad=10,
                      losses=("softmax", "ranking"), grid_versions=("maskreid_icme",),
                      grid_lambdas=(1.0,), grid_alphas={"maskreid_icme": (0.2,)},
                      ablation=("DGD",), multi_query=True, rerank=True, parser_epochs=1,
                      small_sets=False),
        "quick": dict(height=64, width=32, batch_size=32, num_pos=5, stage1_iters=100,
                      stage2_iters=35, seeds=2, versions=("maskreid_icme",), stage1_lr=0.01,
                      stage2_lr=0.001, lr_policy="constant",
                      pad=10,
                      grid_versions=("maskreid_icme",), grid_lambdas=(0.0, 1.0),
                      grid_alphas={"maskreid_icme": (0.2,)}, ablation=("DGD",),
                      multi_query=False, rerank=True, parser_epochs=2, small_sets=True,
                      real_reduction=dict(
                          losses=("softmax", "ranking"), versions=("maskreid_icme",),
                          grid=False, ablation=(), multi_query=False, max_train_pids=300)),
    }
    #: 000/003 publish on DukeMTMC-reID only the final model (Table 3 of both versions): the
    #: ranking run of each version; the loss comparison, grid and ablation run on Market-1501.
    PAPER_DATASET_DEFAULTS: ClassVar[dict[str, dict[str, Any]]] = {
        "dukemtmcreid": dict(losses=("ranking",), grid_versions=(), ablation=())}
    DRY_RUN_DEFAULTS: ClassVar[dict[str, tuple[Any, str]]] = {
        "grid_lambdas": ((1.0,), "one lambda x alpha cell per version (the other cells train the "
                                 "same code with other numbers)"),
        "grid_alphas": ({"maskreid_icme": (0.2,), "maskreid": (0.15,)},
                        "one lambda x alpha cell per version (the other cells train the same code "
                        "with other numbers)")}
    REASONS: ClassVar[dict[str, str]] = {
        "quick:seeds": SEEDS_REASON,
        "quick:versions": "003's own ranking run (lambda 2, alpha 0.15) left out of the quick "
                          "budget: the same code as 000's with other weights",
        "dataset": "the embedded synthetic set (Market-1501 stand-in) unless a real one is given",
        "synthetic_size": "smoke: the smallest synthetic set (every code path in seconds)",
        "backbone": "ResNet-18 two-stream variant: the DGD network is ~4x slower per image on "
                    "the CPU",
        "pretrained": "no ImageNet weights offline (auto: try once, else random init)",
        "quick:height": "64x32 to fit the 2-core CPU budget of the quick profile",
        "quick:width": "64x32 to fit the 2-core CPU budget of the quick profile",
        "smoke:height": "32x16: every code path in seconds",
        "smoke:width": "32x16: every code path in seconds",
        "batch_size": "smaller batches on the CPU (P/N scaled with num_pos)",
        "num_pos": "P scaled with the batch (quick P/N 5/27, smoke 3/13)",
        "epochs": "not used by this notebook: its stages are given in iterations",
        "max_iters": "smoke: every stage capped at 4 iterations",
        "max_test_pids": "synthetic test split on 150 of its identities (evaluation costs as "
                         "much as training on the CPU)",
        "stage1_iters": "short stages on the CPU",
        "stage2_iters": "short stages on the CPU",
        "quick:stage1_lr": "0.01, not 0.1, from random init: synthetic rank-1 after 130 "
                           "iterations 15% at 64x32 with lr 0.01; at 32x16 9% / 6% / 4% with lr "
                           "0.01 / 0.03 / 0.1",
        "quick:stage2_lr": "0.001, the paper's stage-2 / stage-1 ratio of 1/10 (measured, "
                           "synthetic, 60 stage-2 iterations, rank-1/mAP: lr 0.001 softmax "
                           "14.1/9.6, triplet 16.8/10.2, ranking 14.8/10.2; lr 0.01 for 30 "
                           "iterations softmax 13.8/9.0, triplet 13.2/7.0, ranking 7.5/4.8: the "
                           "metric losses fall apart)",
        "losses": "smoke: two losses",
        "lr_policy": "constant lr, as the quick lr values above were measured (poly, power 0.5, "
                     "runs those short stages at 2/3 of the mean lr and ends them at 0)",
        "pad": "pad 10 + random crop, as the quick numbers were measured (DGD's crop range: "
               "pad 8)",
        "grid_versions": "a reduced lambda x alpha grid (2 cells at quick, 1 at smoke)",
        "grid_lambdas": "a reduced lambda x alpha grid (2 cells at quick, 1 at smoke)",
        "grid_alphas": "a reduced lambda x alpha grid (2 cells at quick, 1 at smoke)",
        "ablation": "one Table-4 variant besides the full network",
        "multi_query": "quick: no multi-query evaluation (it doubles each evaluation)",
        "parser_epochs": "smoke: one parser epoch",
        "small_sets": "smoke: the small-scale sets are never looked for",
        "real_reduction": "on real data at quick: fewer variants and a train-id subset "
                          "(printed in the plan's reductions)",
    }

    @classmethod
    def scale_batch_scheme(cls, batch_size: int, merged: Mapping[str, Any]) -> dict[str, Any]:
        """Anchor batches scaled to ``batch_size`` with the paper's P/N ratio 10/54
        (at least 2 positives and 2 others): a dry run's ``batch_size=8`` gives P/N 2/6.

        Raises:
            ValueError: ``batch_size`` below 4.
        """
        super().scale_batch_scheme(batch_size, merged)
        if batch_size < 4:
            raise ValueError(f"{cls.__name__}: batch_size={batch_size}: an anchor batch needs "
                             "2 positives and 2 others (>= 4)")
        paper = cls.paper_defaults()
        num_pos = round(batch_size * paper["num_pos"] / paper["batch_size"])
        return {"num_pos": min(max(2, num_pos), batch_size - 2)}

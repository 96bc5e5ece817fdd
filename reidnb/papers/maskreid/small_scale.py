"""000 Table 1 / 003 Table 1 (and 000 Table 4): the small-scale sets, joint stage-1 training.

The papers train stage 1 jointly on VIPeR, PRID, 3DPeS, iLIDS, CUHK01, CUHK03 and
Shinpuhkan (DGD's JSTL set; 000 §3.2) and report rank-1 on each small set. The workbook
does not ship these sets: :func:`run_small_scale` looks for them under ``data_root``
(:func:`reidnb.data.datasets.small_sets.find_small_sets`), gives them person masks from the
target set's parser (:func:`reidnb.data.parts.attach_small_set_masks`) and trains each
network variant on their joint training set (:func:`small_scale_runs`).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from ...data.datasets.small_sets import find_small_sets, joint_train_set
from ...data.parts import attach_small_set_masks
from . import experiments as ex
from .config import MaskReIDConfig

__all__ = ["small_scale_runs", "run_small_scale"]


def small_scale_runs(cfg: MaskReIDConfig, sets: Mapping[str, Any], archs: Sequence[str], *,
                     verbose: bool = True) -> tuple[Any, dict[str, Any], dict[str, dict]]:
    """000 Tables 1 and 4 on the small-scale sets: joint stage-1 training, per-set rank-1.

    Every network variant in ``archs`` is trained with the stage-1 recipe on
    :func:`~reidnb.data.datasets.small_sets.joint_train_set` (DGD's JSTL set), then
    evaluated on each set that has a test split (CUHK03 with ``protocol="cuhk03"``, the
    others with the Market-1501 rule, which on these camera-separated splits is plain
    single-shot CMC).

    Returns:
        ``(joint set, {arch: Run}, {set name: {arch: EvalResult}})``.

    Raises:
        ValueError: no set, or a set without training images (joint_train_set).
    """
    joint = joint_train_set(sets)
    runs = {arch: ex.train_stage1(cfg, joint, arch=arch, evaluate_model=False, verbose=verbose)
            for arch in archs}
    results = {name: {arch: ex.evaluate_run(cfg, run, ds, protocol="cuhk03" if name == "cuhk03"
                                            else "market1501") for arch, run in runs.items()}
               for name, ds in sets.items() if ds.query and ds.gallery}
    return joint, runs, results


def run_small_scale(cfg: MaskReIDConfig, target: Any, mask_info: Mapping[str, Any],
                    archs: Sequence[str], *,
                    verbose: bool = True) -> tuple[Any, dict[str, Any], dict[str, dict]]:
    """Find the small-scale sets under ``cfg.data_root`` and run :func:`small_scale_runs`.

    Args:
        target: the target set (with masks); a real one is the source of a parser when
            its run wrote no ``parser.pt`` (its masks all came from labels). A synthetic
            target is never one: its parser would not transfer to real images.
        mask_info: the target set's ``attach_masks`` info (its ``cache_root`` holds the
            parser that masks the small sets).
        archs: the variants (the full network first, then the plan's ablation).

    Returns:
        ``(None, {}, {})`` when ``cfg.small_sets`` is off or no set is found; else as
        :func:`small_scale_runs`.

    Raises:
        FileNotFoundError, RuntimeError: sets found but no parser can be had (see
            :func:`reidnb.data.parts.attach_small_set_masks`).
    """
    sets = find_small_sets(cfg.data_root, seed=cfg.seed, verbose=verbose) \
        if cfg.small_sets else {}
    if not sets:
        return None, {}, {}
    sets = attach_small_set_masks(sets, (mask_info.get("parser") or {}).get("path"),
                                  parser_source=target if target.kind == "real" else None,
                                  parser_options={"max_iters": cfg.max_iters or None},
                                  device=cfg.device, seed=cfg.seed,
                                  verbose=verbose)
    return small_scale_runs(cfg, sets, archs, verbose=verbose)

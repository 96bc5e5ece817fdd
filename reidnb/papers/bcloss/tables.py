"""001's published cells and the measured tables: Table 1 (Market-1501), Table 2 (Duke).

:data:`PUBLISHED` names the rows of 001 Tables 1-2 that the two settings reproduce
(strings verbatim from ``reidnb/resources/paper_results.csv``); the dataset actually run
decides the table (:func:`table_for`). Every published number is the mean of 5 runs
(001 §3.4), so a measured cell is the mean over seeds (:class:`SeedMean`), written by
:func:`reidnb.core.results.published_rows` (:func:`measured_rows`), with the tau-sweep
margins as extra rows (001 gives no tau).
"""
from __future__ import annotations

import dataclasses
from types import MappingProxyType
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from ...core.results import Cell, published_rows
from ...core.runs import SeedGroup

__all__ = ["PUBLISHED", "TABLES", "table_for", "SeedMean", "mean_metrics", "metrics_table",
           "table_cells", "measured_rows", "row_note"]

_T1 = ("rank1", "rank5", "rank10", "mAP")        # 001 Table 1 prints rank-1/5/10 and mAP
_SOFTMAX = ("Baseline", "ResNet50, softmax only")
_JOINT = ("Ours", "ResNet50, softmax + batch-contrastive loss (lambda=1)")

#: variant -> the published cells it fills: Table 1 (Market-1501, single query, rank-1/5/
#: 10 + mAP) and Table 2 (DukeMTMC-reID, rank-1 + mAP); mean of 5 runs (001 §3.4).
PUBLISHED: Mapping[str, tuple[Cell, ...]] = MappingProxyType({
    "softmax": (Cell("bcloss", "Table 1", *_SOFTMAX, metrics=_T1),
                Cell("bcloss", "Table 2", *_SOFTMAX)),
    "joint": (Cell("bcloss", "Table 1", *_JOINT, metrics=_T1),
              Cell("bcloss", "Table 2", *_JOINT)),
})

#: loader dataset name -> (table, the paper's dataset name, metrics printed in that table).
TABLES: Mapping[str, tuple[str, str, tuple[str, ...]]] = MappingProxyType({
    "market1501": ("Table 1", "Market-1501", _T1),
    "dukemtmcreid": ("Table 2", "DukeMTMC-reID", ("rank1", "mAP")),
})


def table_for(cfg: Any) -> tuple[str, str, tuple[str, ...]]:
    """(table, paper dataset name, metrics) that the run's dataset fills.

    Real Market-1501 -> Table 1 (rank-1/5/10, mAP); real DukeMTMC-reID -> Table 2
    (rank-1, mAP); the synthetic set stands in for Market-1501 (Table 1; the rows are
    labelled synthetic by :func:`reidnb.core.results.result_rows`).

    Raises:
        ValueError: a dataset 001 does not report (CUHK03-NP).
    """
    name = "market1501" if cfg.dataset_kind == "synthetic" else str(cfg.dataset)
    if name not in TABLES:
        raise ValueError(f"001 reports Market-1501 (Table 1) and DukeMTMC-reID (Table 2) only; "
                         f"dataset {cfg.dataset!r} has no table (use market1501, dukemtmcreid "
                         "or synthetic)")
    return TABLES[name]


def mean_metrics(runs: Sequence, setting: str = "single-query") -> dict[str, float]:
    """Mean over runs of ``Run.metrics(setting)`` (percent): rank1, rank5, rank10, mAP, mINP.

    Raises:
        ValueError: no runs.
    """
    if not runs:
        raise ValueError("mean_metrics: no runs")
    frame = pd.DataFrame([r.metrics(setting) for r in runs])
    return {k: float(v) for k, v in frame.mean().items()}


#: The runs of one setting over several seeds seen as one run (001 §3.4: mean of 5):
#: :class:`reidnb.core.runs.SeedGroup` (metrics averaged, seconds summed).
SeedMean = SeedGroup


def metrics_table(groups: Mapping[str, Sequence], setting: str = "single-query") -> pd.DataFrame:
    """One line per setting: mean (and std over seeds) of rank-1/5/10, mAP, mINP (percent),
    ``runs``, ``train_min`` and ``total_min`` (minutes summed over the runs)."""
    rows = []
    for label, runs in groups.items():
        frame = pd.DataFrame([r.metrics(setting) for r in runs])
        row: dict[str, Any] = {"setting": label, "runs": len(runs)}
        for k in ("rank1", "rank5", "rank10", "mAP", "mINP"):
            row[k] = float(frame[k].mean())
        for k in ("rank1", "mAP"):
            row[f"{k}_std"] = float(frame[k].std(ddof=0))
        row["train_min"] = sum(r.train_seconds for r in runs) / 60.0
        row["total_min"] = sum(r.seconds for r in runs) / 60.0
        rows.append(row)
    return pd.DataFrame(rows).round(2)


def table_cells(cfg: Any, groups: Mapping[str, Sequence],
                sweep: Mapping[float, Sequence] | None = None) -> dict[str, tuple[Cell, ...]]:
    """The cells this run fills: :data:`PUBLISHED` restricted to :func:`table_for`'s table.

    ``cfg.lam`` other than 1 renames the joint variant (``lambda=<lam>``, no published row:
    extra); each tau of ``sweep`` other than ``cfg.tau`` gets a cell ``"tau=<tau>"`` with
    the joint variant plus ``", tau=<tau>"`` (extra). Notes say the tau and the number of
    runs averaged (``groups`` / ``sweep`` values).
    """
    table = table_for(cfg)[0]
    lam, tau = float(cfg.lam), float(cfg.tau)

    def cell(variant: str, note: str, suffix: str = "") -> tuple[Cell, ...]:
        out = []
        for c in PUBLISHED[variant]:
            if c.table != table:
                continue
            text = c.variant.replace("lambda=1", f"lambda={lam:g}") if lam != 1.0 else c.variant
            out.append(dataclasses.replace(c, variant=text + suffix, note=note))
        return tuple(out)

    cells: dict[str, tuple[Cell, ...]] = {}
    for v, runs in groups.items():
        what = f"tau={tau:g}; " if v == "joint" else ""
        cells[v] = cell(v, f"{what}mean of {len(runs)} run(s)")
    for t, runs in (sweep or {}).items():
        if float(t) != tau and runs:
            cells[f"tau={float(t):g}"] = cell(
                "joint", f"tau sweep (001 gives no tau); tau={float(t):g}; mean of "
                         f"{len(runs)} run(s)", suffix=f", tau={float(t):g}")
    return cells


def measured_rows(cfg: Any, groups: Mapping[str, Sequence], *, note: str = "",
                  sweep: Mapping[float, Sequence] | None = None) -> list[dict[str, Any]]:
    """Results rows (:func:`reidnb.core.results.published_rows`) of the measured cells.

    Args:
        cfg: the notebook's config (profile, backbone, size, dataset kind are recorded).
        groups: ``{"softmax": runs, "joint": runs}`` (either may be missing); a cell's value
            is the mean over the runs (:class:`SeedMean`), its seconds their summed
            training + evaluation time.
        note: reductions of the profile, appended to ``"mean of N run(s)"``.
        sweep: tau -> runs of the tau sweep; every tau except ``cfg.tau`` (already the
            ``Ours`` row) is an extra row (variant ``"..., tau=<tau>"``).

    Returns:
        list of row dicts for :func:`reidnb.core.results.write_results`.
    """
    groups = {v: groups[v] for v in PUBLISHED if groups.get(v)}    # table order
    cells = table_cells(cfg, groups, sweep)
    runs = {v: SeedMean(tuple(r)) for v, r in groups.items()}
    runs.update({k: SeedMean(tuple(sweep[t])) for t in (sweep or {})
                 for k in [f"tau={float(t):g}"] if k in cells})
    return published_rows(cfg, cells, runs, note=note)


def row_note(cfg: Any, extra: Sequence[str] = ()) -> str:
    """The ``note`` of this run's rows: every config deviation from 001
    (``cfg.deviations()``, as ``"name value (paper value)"``) and the ``extra`` phrases of
    :func:`reidnb.papers.bcloss.experiments.run_deviations`, joined by ``"; "``."""
    parts = [f"{d.name} {d.value!r} (paper {d.paper!r})" for d in cfg.deviations()]
    return "; ".join([*parts, *extra])

"""The published cells 004 reports (:data:`PUBLISHED`), the measured tables beside them and
the results rows.

* :data:`PUBLISHED` - Table 1 (Market-1501 ablation, one cell per setting), Tables 2 / 3
  (the full model, setting 8, +/- re-ranking on Market-1501 / DukeMTMC-reID) and Table 4
  (CIFAR-100 error rate per network); :func:`published_for` keeps the cells a run on
  ``cfg.dataset`` fills. Rows go through :func:`reidnb.core.results.published_rows`.
* :func:`table1_frame`, :func:`directions_frame`, :func:`full_model_frame`,
  :func:`table4_frame` - measured numbers beside the published ones.
"""
from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from ...core.compare import pair_verdicts
from ...core.results import Cell, load_published, published_rows
from .cifar import CIFAR_METHODS, CifarRun
from .experiments import DIRECTIONS, TABLE1, SettingRun

__all__ = ["PUBLISHED", "FULL_MODEL", "full_model_table", "published_for", "reid_rows",
           "table4_rows", "table1_frame", "directions_frame", "full_model_frame",
           "table4_frame"]

#: The full model of 004 (Tables 2 and 3 print it as "Ours"): Table 1 setting 8.
FULL_MODEL = "8"


def _full_model_cell(table: str) -> Cell:
    return Cell("sal", table, "Ours", TABLE1[FULL_MODEL].variant, rerank_method="Ours+re-rank")


#: variant key (Table 1 setting id, Table 4 method) -> the published cells it fills.
PUBLISHED: Mapping[str, tuple[Cell, ...]] = MappingProxyType({
    **{sid: (Cell("sal", "Table 1", "Ours", s.variant, note=s.uncertain),)
       + ((_full_model_cell("Table 2"), _full_model_cell("Table 3"))
          if sid == FULL_MODEL else ())
       for sid, s in TABLE1.items()},
    **{m: (Cell("sal", "Table 4", m, v[0], metrics=("error_rate",)),)
       for m, v in CIFAR_METHODS.items()},
})


def full_model_table(cfg: Any) -> tuple[str, str, str] | None:
    """Which published table the full model (setting 8) reproduces on ``cfg.dataset``.

    Returns ``("Table 2", "Market-1501", "single-query")`` for Market-1501 and the
    synthetic stand-in, ``("Table 3", "DukeMTMC-reID", "")`` for DukeMTMC-reID, None for
    other datasets (the paper reports neither).
    """
    if cfg.dataset in ("synthetic", "market1501"):
        return "Table 2", "Market-1501", "single-query"
    if cfg.dataset == "dukemtmcreid":
        return "Table 3", "DukeMTMC-reID", ""
    return None


def published_for(cfg: Any) -> dict[str, tuple[Cell, ...]]:
    """:data:`PUBLISHED` restricted to the re-ID tables a run on ``cfg.dataset`` fills:
    Table 1 on any dataset (rows on a dataset other than Market-1501 are recorded as
    extra) and the full model's Table 2 or 3 (:func:`full_model_table`)."""
    which = full_model_table(cfg)
    tables = {"Table 1"} | ({which[0]} if which else set())
    return {k: tuple(c for c in cells if c.table in tables) for k, cells in PUBLISHED.items()}


def reid_rows(cfg: Any, runs: Mapping[str, SettingRun], *, note: str = ""
              ) -> list[dict[str, Any]]:
    """Results rows (rank1, mAP) of every measured Table 1 setting, then the full model's
    Table 2 / 3 rows (``Ours`` and, when evaluated with re-ranking, ``Ours+re-rank``).

    Table 1 is a Market-1501 table: on Market-1501 (or the synthetic stand-in) the rows
    match the published ones; on another real dataset they are recorded with
    ``extra=True`` under that dataset. ``note`` goes into every row (setting 4's guess
    is noted on its own rows).
    """
    return published_rows(cfg, published_for(cfg), runs, note=note)


def table4_rows(cfg: Any, results: Iterable[CifarRun], *, note: str = ""
                ) -> list[dict[str, Any]]:
    """Results rows (``error_rate``) of the measured Table 4 networks.

    CIFAR-100 is a real dataset whatever ``cfg.dataset`` the notebook ran re-ID on, so
    the rows are built from a copy of ``cfg`` with ``dataset="CIFAR-100"`` and the
    CIFAR backbone and image size; a subset of either split is noted on the row.
    """
    rows = []
    for r in results:
        ccfg = dataclasses.replace(cfg, dataset="CIFAR-100", backbone=r.backbone,
                                   height=int(cfg.cifar_size), width=int(cfg.cifar_size))
        sub = (f"{r.n_train} of 50000 training and {r.n_test} of 10000 test images"
               if r.n_train < 50000 or r.n_test < 10000 else "")
        rows += published_rows(ccfg, PUBLISHED, {r.method: r}, dataset="CIFAR-100",
                               note="; ".join(x for x in (sub, note) if x))
    return rows


# --------------------------------------------------------------------------- frames
def _published_table1(dataset: str = "Market-1501") -> dict[tuple[str, str], float]:
    pub = load_published("sal", "Table 1")
    pub = pub[pub["dataset"] == dataset]
    return {(v, m): float(x) for v, m, x in zip(pub["variant"], pub["metric"], pub["value"])}


def table1_frame(runs: Mapping[str, SettingRun]) -> pd.DataFrame:
    """Measured Table 1 beside the published Market-1501 numbers (percent).

    Columns: setting, components, stage1 (run name, ``(shared)`` when reused), rank1,
    mAP, paper_rank1, paper_mAP, minutes (the setting's own training + evaluation time).
    """
    pub = _published_table1()
    rows = []
    for sid, r in runs.items():
        m = r.metrics()
        s = r.setting
        rows.append(dict(
            setting=sid, components=s.components + (" (guess)" if s.uncertain else ""),
            stage1=r.stage1.name + (" (shared)" if r.stage1_reused else ""),
            rank1=m["rank1"], mAP=m["mAP"], paper_rank1=pub.get((s.variant, "rank1")),
            paper_mAP=pub.get((s.variant, "mAP")), minutes=r.seconds / 60))
    return pd.DataFrame(rows)


def directions_frame(runs: Mapping[str, SettingRun]) -> pd.DataFrame:
    """The §4.3 comparisons (:data:`~reidnb.papers.sal.experiments.DIRECTIONS`) whose two
    settings were both measured.

    One row per comparison and metric (rank1, mAP): comparison, compared, reference,
    metric, paper_delta and measured_delta (compared minus reference, percent points),
    agrees (same sign; None when the paper's delta is 0), and the 95 % paired-bootstrap
    interval ci_low / ci_high, seeds and verdict of
    :func:`reidnb.core.compare.pair_verdicts` (reproduced / contradicted / inconclusive).
    """
    pub = _published_table1()
    rows = []
    for name, a, b in DIRECTIONS:
        if a not in runs or b not in runs:
            continue
        ma, mb = runs[a].metrics(), runs[b].metrics()
        dps = {metric: pub[(TABLE1[a].variant, metric)] - pub[(TABLE1[b].variant, metric)]
               for metric in ("rank1", "mAP")}
        ivs = pair_verdicts(runs[a], runs[b], dps)
        for metric, dp in dps.items():
            dm = ma[metric] - mb[metric]
            rows.append(dict(comparison=name, compared=a, reference=b, metric=metric,
                             paper_delta=dp, measured_delta=dm,
                             agrees=None if dp == 0 else bool(np.sign(dp) == np.sign(dm)),
                             **ivs[metric]))
    return pd.DataFrame(rows, columns=["comparison", "compared", "reference", "metric",
                                       "paper_delta", "measured_delta", "agrees", "ci_low",
                                       "ci_high", "seeds", "verdict"])


def full_model_frame(cfg: Any, run: SettingRun) -> pd.DataFrame:
    """The full model (setting 8) with and without re-ranking beside the published row of
    Table 2 (Market-1501) / Table 3 (DukeMTMC-reID): table, method, rank1, mAP,
    paper_rank1, paper_mAP (percent). Empty when :func:`full_model_table` is None."""
    which = full_model_table(cfg)
    cols = ["table", "method", "rank1", "mAP", "paper_rank1", "paper_mAP"]
    if which is None:
        return pd.DataFrame(columns=cols)
    table, dataset, _ = which
    pub = load_published("sal", table)
    rows = []
    for method, key in (("Ours", "single-query"), ("Ours+re-rank", "single-query+re-rank")):
        if run.stage2.result is None or key not in run.stage2.result.results:
            continue
        m = run.metrics(key)
        p = pub[(pub["method"] == method) & (pub["dataset"] == dataset)]
        val = dict(zip(p["metric"], p["value"]))
        rows.append(dict(table=f"{table} ({dataset})", method=method, rank1=m["rank1"],
                         mAP=m["mAP"], paper_rank1=val.get("rank1"), paper_mAP=val.get("mAP")))
    return pd.DataFrame(rows, columns=cols)


def table4_frame(results: Sequence[CifarRun]) -> pd.DataFrame:
    """Measured Table 4 beside the paper: method, variant, backbone, error_rate (percent),
    seconds, epochs, n_train, n_test, paper_error_rate."""
    pub = load_published("sal", "Table 4").set_index("method")["value"]
    frame = pd.DataFrame([r.as_row() for r in results])
    return frame.assign(paper_error_rate=frame["method"].map(pub)) if len(frame) else frame

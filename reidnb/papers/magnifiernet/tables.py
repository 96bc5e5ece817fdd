"""MagnifierNet's published cells and measured tables: Table 1, Table 2, Fig. 4, Fig. 5.

:data:`PUBLISHED` names the rows of 002 that the runs fill (strings verbatim from
``reidnb/resources/paper_results.csv``): Table 1's "Ours" (the full model, with and
without re-ranking, on any of its four datasets) and Table 2's six component rows, plus
the stage-2 control without SD (not in the paper: written as an extra row). Table 2 was
published on CUHK03-L and DukeMTMC-reID only, so the synthetic set stands in for
DukeMTMC-reID there and for Market-1501 in Table 1 (:func:`table_dataset`). Fig. 4 / Fig. 5
print no numbers: they are frames for the plots only.
"""
from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ...core.compare import pair_verdicts
from ...core.results import DATASET_NAMES, Cell, load_published, published_rows
from ...core.runs import SeedGroup
from .experiments import FULL, SD_CONTROL, STAGE1_FULL, TABLE2_ROWS, VARIANTS, Plan

__all__ = ["PUBLISHED", "table_dataset", "table1_frame", "table2_frame", "fig4_frame",
           "fig5_frame", "measured_rows", "sd_control_frame"]

_STAGE2_NOTE = "stage 2 (+SD) from the G+M+SAB+SFB stage-1 run"
_CONTROL_NOTE = "control: stage 2 iterations without the SD loss (not in the paper)"

#: run key -> the published cells it fills (002 Table 1 "Ours" = the full model, '*' rows
#: with re-ranking; Table 2 one row per component set; the control is not in the paper).
PUBLISHED: Mapping[str, tuple[Cell, ...]] = MappingProxyType({
    **{row: (Cell("magnifiernet", "Table 2", "Ours", row,
                  note=_STAGE2_NOTE if row == FULL else ""),)
       for row in TABLE2_ROWS},
    FULL: (Cell("magnifiernet", "Table 2", "Ours", FULL, note=_STAGE2_NOTE),
           Cell("magnifiernet", "Table 1", "Ours", FULL, rerank_method="Ours")),
    SD_CONTROL: (Cell("magnifiernet", "Table 2", "Ours", "G+M+SAB+SFB, stage 2 without SD",
                      note=_CONTROL_NOTE),),
})


def table_dataset(cfg: Any, table: str) -> tuple[str, bool]:
    """(paper dataset name, ``extra``) of a Table 1 / Table 2 row of this run.

    Table 1 has all four benchmarks: a real run names its own, the synthetic set stands in
    for Market-1501. Table 2 was published on CUHK03-L and DukeMTMC-reID only: the
    synthetic set stands in for DukeMTMC-reID (so that its ablation directions can be
    compared); a real run on Market-1501 or CUHK03-D is ``extra``.

    Raises:
        ValueError: unknown table.
    """
    if table not in ("Table 1", "Table 2"):
        raise ValueError(f"magnifiernet has Table 1 and Table 2, got {table!r}")
    if cfg.dataset_kind == "synthetic":
        return ("Market-1501" if table == "Table 1" else "DukeMTMC-reID"), False
    name = DATASET_NAMES.get(cfg.dataset, cfg.dataset)
    if table == "Table 2":
        return name, name not in ("CUHK03-L", "DukeMTMC-reID")
    return name, False


def _m(run: Any, setting: str = "single-query") -> dict[str, float] | None:
    if run is None or getattr(run, "result", None) is None \
            or setting not in run.result.results:
        return None
    return run.metrics(setting)


def table2_frame(runs: Mapping[str, Any], plan: Plan) -> pd.DataFrame:
    """Table 2: measured rank-1 / mAP per row, the change over ``G``, and the published
    CUHK03-L and DukeMTMC-reID values beside them (percent); the stage-2 control without
    SD (when run) as a last row.

    Args:
        runs: run key -> Run (stage-1 keys, ``G+M+SAB+SFB+SD``, :data:`SD_CONTROL`).
    """
    pub = load_published("magnifiernet", "Table 2")
    rows = []
    base = _m(runs.get("G"))
    for name in plan.table2_rows:
        run = runs.get(name)
        m = _m(run)
        row = {"row": VARIANTS[name].label, "variant": name,
               "rank1": np.nan if m is None else m["rank1"],
               "mAP": np.nan if m is None else m["mAP"]}
        row["d_rank1"] = row["rank1"] - base["rank1"] if base and m else np.nan
        row["d_mAP"] = row["mAP"] - base["mAP"] if base and m else np.nan
        for ds, short in (("CUHK03-L", "CUHK03-L"), ("DukeMTMC-reID", "Duke")):
            for metric in ("rank1", "mAP"):
                v = pub[(pub["dataset"] == ds) & (pub["variant"] == name)
                        & (pub["metric"] == metric)]["value"]
                row[f"paper {short} {metric}"] = float(v.iloc[0]) if len(v) else np.nan
        row["seconds"] = float(run.seconds) if run is not None else np.nan
        rows.append(row)
    ctrl = _m(runs.get(SD_CONTROL))      # same stage 2 without SD (plan.sd_control)
    if ctrl is not None:
        rows.append({"row": "control: stage 2 without SD",
                     "variant": f"{STAGE1_FULL} (stage 2, no SD)",
                     "rank1": ctrl["rank1"], "mAP": ctrl["mAP"],
                     "d_rank1": ctrl["rank1"] - base["rank1"] if base else np.nan,
                     "d_mAP": ctrl["mAP"] - base["mAP"] if base else np.nan,
                     "seconds": float(runs[SD_CONTROL].seconds)})
    return pd.DataFrame(rows)


def sd_control_frame(runs: Mapping[str, Any]) -> pd.DataFrame:
    """The SD loss against its control: stage 2 with SD minus the same stage 2 without it
    (same init, same iterations), with the 95 % interval and verdict of
    :func:`reidnb.core.compare.pair_verdicts` (bootstrap over queries, and over seeds when
    both were trained with several). The paper's direction is its Table 2 step from
    ``G+M+SAB+SFB`` to ``+SD`` (DukeMTMC-reID, which the synthetic set stands in for):
    002 adds
    SD in extra stage-2 epochs and prints no control, so this is the cleaner test of the
    same claim.

    Returns:
        one row per metric (rank1, mAP): comparison, metric, paper_delta (percent points),
        measured_delta, ci_low, ci_high, seeds, verdict; empty without both runs.
    """
    cols = ["comparison", "metric", "paper_delta", "measured_delta", "ci_low", "ci_high",
            "seeds", "verdict"]
    a, b = runs.get(FULL), runs.get(SD_CONTROL)
    if _m(a) is None or _m(b) is None:
        return pd.DataFrame(columns=cols)
    pub = load_published("magnifiernet", "Table 2")
    deltas = {}
    for metric in ("rank1", "mAP"):
        for ds in ("DukeMTMC-reID", "CUHK03-L"):
            v = {row: pub[(pub["dataset"] == ds) & (pub["variant"] == row)
                          & (pub["metric"] == metric)]["value"] for row in (FULL, STAGE1_FULL)}
            if all(len(x) for x in v.values()):
                deltas[metric] = float(v[FULL].iloc[0]) - float(v[STAGE1_FULL].iloc[0])
                break
    ivs = pair_verdicts(a, b, deltas)
    ma, mb = _m(a), _m(b)
    return pd.DataFrame([dict(comparison="+SD vs stage 2 without SD (control)", metric=m,
                              paper_delta=dp, measured_delta=ma[m] - mb[m], **ivs[m])
                         for m, dp in deltas.items()], columns=cols)


def table1_frame(cfg: Any, full: Any) -> pd.DataFrame:
    """Table 1: the full model's rank-1 / mAP with and without re-ranking, beside the
    published MagnifierNet row ("Ours") of the dataset it stands for (percent)."""
    ds, _ = table_dataset(cfg, "Table 1")
    pub = load_published("magnifiernet", "Table 1")
    pub = pub[(pub["method"] == "Ours") & (pub["dataset"] == ds)]
    rows = []
    for rr, setting in ((0, "single-query"), (1, "single-query+re-rank")):
        m = _m(full, setting)
        if m is None:
            continue
        for metric in ("rank1", "mAP"):
            p = pub[(pub["reranking"] == rr) & (pub["metric"] == metric)]["value"]
            rows.append({"dataset": ds + (" (synthetic stand-in)" if cfg.dataset_kind ==
                                          "synthetic" else ""),
                         "re-ranking": bool(rr), "metric": metric, "measured": m[metric],
                         "published": float(p.iloc[0]) if len(p) else np.nan})
    return pd.DataFrame(rows)


def fig4_frame(runs: Mapping[str, Any]) -> pd.DataFrame:
    """Fig. 4: SFB (GRU fusion) vs the ablation branch AB, both ``G+M+SAB+SFB`` without SD.

    Returns long format: branch (``SFB``/``AB``), metric (``rank1``/``mAP``), value (%).
    Empty when either run is missing.
    """
    sfb, ab = _m(runs.get(STAGE1_FULL)), _m(runs.get(f"{STAGE1_FULL}|ab"))
    if sfb is None or ab is None:
        return pd.DataFrame(columns=["branch", "metric", "value"])
    return pd.DataFrame([{"branch": b, "metric": k, "value": m[k]}
                         for b, m in (("SFB", sfb), ("AB", ab)) for k in ("rank1", "mAP")])


def fig5_frame(runs: Mapping[str, Any], plan: Plan) -> pd.DataFrame:
    """Fig. 5: rank-1 / mAP of ``G+M+SAB+SFB`` (no SD) per SAB sampling and K-hat.

    Returns columns sampling, k_hat, rank1, mAP (percent), one row per measured point.
    """
    rows = []
    for s, k in plan.sweep_points():
        default = s == plan.sampling and k == plan.k_hat
        m = _m(runs.get(STAGE1_FULL if default else f"{STAGE1_FULL}|{s} k{k}"))
        if m is not None:
            rows.append({"sampling": s, "k_hat": k, "rank1": m["rank1"], "mAP": m["mAP"]})
    return pd.DataFrame(rows, columns=["sampling", "k_hat", "rank1", "mAP"])


def measured_rows(cfg: Any, runs: Mapping[str, Any], plan: Plan, *, iters_per_epoch: int,
                 note: str = "") -> list[dict[str, Any]]:
    """Results rows of every measured cell (:func:`reidnb.core.results.published_rows`).

    * Table 2: the plan's measured rows, then the stage-2 control (extra), on the dataset
      of :func:`table_dataset` (a real dataset the table lacks is written as extra rows).
    * Table 1: the full model as ``Ours``, without and (if evaluated) with re-ranking.

    A row's ``epochs`` is iterations trained / ``iters_per_epoch`` (3 decimals) and, for
    stage 2 and its control, includes the stage-1 run's iterations; their ``seconds`` add
    the stage-1 run's training time. ``note`` (e.g. the profile's reductions) is appended
    to every row's note. ``protocol`` stays ``""`` as in the paper, which names none.
    """
    stage1 = runs.get(STAGE1_FULL)
    ipe = max(int(iters_per_epoch), 1)
    extra_s: dict[str, float] = {}

    def counted(key: str) -> Any:
        run, it = runs[key], len(runs[key].history)
        if key in (FULL, SD_CONTROL) and stage1 is not None:
            it += len(stage1.history)
            extra_s[key] = float(stage1.train_seconds)
        if isinstance(run, SeedGroup):      # every seed trained the same iterations
            return SeedGroup(tuple(dataclasses.replace(r, epochs=round(it / ipe, 3))
                                   for r in run.runs))
        return dataclasses.replace(run, epochs=round(it / ipe, 3))

    def rows_of(table: str, keys) -> list[dict[str, Any]]:
        cells = {k: tuple(c for c in PUBLISHED[k] if c.table == table) for k in keys}
        return published_rows(cfg, cells, {k: counted(k) for k in keys},
                              dataset=table_dataset(cfg, table)[0], note=note,
                              extra_seconds=extra_s)

    t2 = [k for k in (*plan.table2_rows, SD_CONTROL) if k in runs]
    out = rows_of("Table 2", t2) + rows_of("Table 1", [FULL] if FULL in runs else [])
    return [dict(r, protocol="") for r in out]

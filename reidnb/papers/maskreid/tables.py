"""MaskReID's published cells (``PUBLISHED``), its results rows and its measured table frames.

``PUBLISHED`` maps each run key to the published cells it fills (Market-1501; the synthetic
set stands in for it): the loss comparison (000 Table 5, 003 Table 2), the default ranking
run of each version (000 Table 2, 003 Table 2, with their re-ranking rows), the
lambda x alpha grids (000 Table 6, 003 Table 4) and the component ablation (000 Table 4,
a proxy on the target set: never a published cell). On DukeMTMC-reID the Table 2 cells
become Table 3 (:func:`published_for`). :data:`SMALL_SCALE` maps the variants evaluated on
the small-scale sets to 000 Tables 1/4 and 003 Table 1. :func:`results_rows` turns runs
into rows through :func:`reidnb.core.results.published_rows`.
"""
from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Mapping

import pandas as pd

from ...core.results import DATASET_NAMES, Cell, load_published, published_rows
from ...core.runs import Run
from .config import PAPER_GRID_ALPHAS, PAPER_GRID_LAMBDAS
from .recipe import ARCHS, VERSIONS, ranking_name

__all__ = ["PUBLISHED", "SMALL_SCALE", "TABLE1_NAMES", "ARCH_VARIANTS", "published_for",
           "ranking_cells", "results_rows", "small_scale_rows", "loss_table", "grid_table",
           "ablation_table", "published_grid", "small_scale_table"]

_SQ_MQ = ("single-query", "multi-query")
_SQ = ("single-query",)
#: version -> (table, method) of its lambda x alpha grid.
_GRID: dict[str, tuple[str, str]] = {"maskreid_icme": ("Table 6", "MaskReID"),
                                     "maskreid": ("Table 4", "MaskReID_rank")}

#: 000 Table 4 / 003 Table 1 variant strings (ours: the DGD row is a re-implementation).
ARCH_VARIANTS: dict[str, str] = {
    "DGD": "base network (single stream, last level only; DGD-like)",
    "MaskReID-F": "multi-level fusion, no masked input",
    "MaskReID-M": "masked input, no multi-level fusion",
    "MaskReID": "masked input + multi-level fusion",
}
#: 000 Table 1 / 003 Table 1 dataset names of the small-scale sets (CSV spelling).
TABLE1_NAMES: dict[str, str] = {"viper": "VIPeR", "prid": "PRID", "3dpes": "3DPeS",
                                "ilids": "iLIDS", "cuhk01": "CUHK01", "cuhk03": "CUHK03"}


def _grid_variant(version: str, lam: float, alpha: float) -> str:
    """The CSV's own ``lambda=..,alpha=..`` string of a grid cell (000 Table 6 / 003 Table 4
    print ``alpha=1.0``); a cell the paper did not print: ``lambda=%g,alpha=%g``."""
    table, method = _GRID[version]
    pub = load_published(version, table)
    for v in pub.loc[pub["method"] == method, "variant"].unique():
        m = re.fullmatch(r"lambda=([\d.]+),alpha=([\d.]+)", str(v))
        if m and math.isclose(float(m.group(1)), lam) and math.isclose(float(m.group(2)), alpha):
            return str(v)
    return f"lambda={lam:g},alpha={alpha:g}"


def ranking_cells(version: str, lam: float, alpha: float) -> tuple[Cell, ...]:
    """The cells of one ranking-loss run (key :func:`~.recipe.ranking_name`).

    The version's default (000 §3.5: lambda 1, alpha 0.2; 003 §4.4: 2, 0.15) fills its
    Table 2 (single and multi query, +/- re-ranking); every run fills its grid cell (000
    Table 6 / 003 Table 4, single query).

    Raises:
        KeyError: unknown version.
    """
    v = VERSIONS[version]
    what = f"ranking loss form {v.form} ({version})"
    cells = []
    if math.isclose(lam, v.lam) and math.isclose(alpha, v.alpha):
        cells.append(
            Cell("maskreid_icme", "Table 2", "MaskReID", "ranking loss, lambda=1, alpha=0.2",
                 settings=_SQ_MQ, rerank_method="MaskReID_re-ranking", note=what)
            if version == "maskreid_icme" else
            Cell("maskreid", "Table 2", "MaskReID_rank", "ranking loss, lambda=2, alpha=0.15",
                 settings=_SQ_MQ, rerank_method="MaskReID_rank+re-ranking", note=what))
    table, method = _GRID[version]
    cells.append(Cell(version, table, method, _grid_variant(version, lam, alpha),
                      settings=_SQ, note=what))
    return tuple(cells)


def _published() -> dict[str, tuple[Cell, ...]]:
    out: dict[str, tuple[Cell, ...]] = {
        # 000 Table 5 and 003 Table 2: the loss comparison (003's ranking row is its own
        # long-form run, below)
        "softmax": (Cell("maskreid_icme", "Table 5", "Softmax loss",
                         "MaskReID network + softmax loss", settings=_SQ_MQ),
                    Cell("maskreid", "Table 2", "MaskReID_soft", "softmax loss",
                         settings=_SQ_MQ)),
        "triplet": (Cell("maskreid_icme", "Table 5", "Triplet loss",
                         "MaskReID network + triplet loss (online hard mining)", settings=_SQ_MQ),
                    Cell("maskreid", "Table 2", "MaskReID_trip",
                         "triplet loss (online hard mining)", settings=_SQ_MQ)),
        "npair": (Cell("maskreid_icme", "Table 5", "N-pair loss",
                       "MaskReID network + N-pair loss", settings=_SQ_MQ),),
        "ranking": (Cell("maskreid_icme", "Table 5", "Ranking loss",
                         "MaskReID network + ranking loss, lambda=1, alpha=0.2",
                         settings=_SQ_MQ),),
    }
    # 000 Table 6 (25 cells) and 003 Table 4 (10 cells); the defaults add their Table 2
    for version, alphas in PAPER_GRID_ALPHAS.items():
        for lam in PAPER_GRID_LAMBDAS:
            for alpha in alphas:
                out[ranking_name(version, lam, alpha)] = ranking_cells(version, lam, alpha)
    # 000 Table 4 proxy: each variant's stage-1 run on the target set (never published)
    for arch in ARCHS:
        out[f"stage1-{arch}"] = (Cell("maskreid_icme", "Table 4", arch, ARCH_VARIANTS[arch],
                                      settings=_SQ),)
    return out


#: run key -> published cells it fills (Market-1501): loss names, ranking_name(...),
#: ``stage1-<arch>`` (the 000 Table 4 proxy).
PUBLISHED: dict[str, tuple[Cell, ...]] = _published()

#: variant -> cells of the small-scale sets (rank-1 only; 000 Tables 1/4, 003 Table 1).
SMALL_SCALE: dict[str, tuple[Cell, ...]] = {
    arch: (Cell("maskreid_icme", "Table 4", arch, ARCH_VARIANTS[arch], metrics=("rank1",),
                settings=_SQ, note="joint small-scale stage 1"),)
    + {"MaskReID": (Cell("maskreid_icme", "Table 1", "MaskReID",
                         "masked input + multi-level fusion; softmax; joint training on all "
                         "small-scale sets + CUHK03", metrics=("rank1",), settings=_SQ,
                         note="joint small-scale stage 1"),
                    Cell("maskreid", "Table 1", "MaskReID-MF",
                         "masked input + multi-level fusion; softmax", metrics=("rank1",),
                         settings=_SQ, note="joint small-scale stage 1")),
       "MaskReID-M": (Cell("maskreid", "Table 1", "MaskReID-M",
                           "masked input, no multi-level fusion; softmax", metrics=("rank1",),
                           settings=_SQ, note="joint small-scale stage 1"),)}.get(arch, ())
    for arch in ARCHS}


def published_for(dataset: str, published: Mapping[str, tuple[Cell, ...]] | None = None
                  ) -> dict[str, tuple[Cell, ...]]:
    """``published`` (default :data:`PUBLISHED`) for a dataset: on DukeMTMC-reID the
    Table 2 cells of both versions are their Table 3 (000 Table 3 / 003 Table 3); every
    other dataset uses the map as is."""
    published = PUBLISHED if published is None else published
    if dataset != "DukeMTMC-reID":
        return dict(published)
    return {k: tuple(dataclasses.replace(c, table="Table 3") if c.table == "Table 2" else c
                     for c in cells) for k, cells in published.items()}


def _no_protocol(rows: list[dict[str, Any]], dataset: str) -> list[dict[str, Any]]:
    """The papers name a protocol (single/multi query) on Market-1501 only: elsewhere the
    single-query rows carry protocol '' (as the published DukeMTMC-reID rows)."""
    if dataset != "Market-1501":
        for r in rows:
            if r["protocol"] == "single-query":
                r["protocol"] = ""
    return rows


def results_rows(cfg: Any, *, losses: Mapping[str, Any] | None = None,
                 ranking: Mapping[tuple[str, float, float], Any] | None = None,
                 ablation: Mapping[str, Any] | None = None,
                 small_sets: Mapping[str, Mapping[str, Any]] | None = None,
                 stage1_seconds: float = 0.0, note: str = "") -> list[dict[str, Any]]:
    """Results rows of every measured cell (:func:`reidnb.core.results.published_rows`).

    Which table a run fills is decided by the dataset run (synthetic = Market-1501
    stand-in, labelled synthetic): Market-1501 -> 000 Tables 2/5/6, 003 Tables 2/4;
    DukeMTMC-reID -> Table 3 instead of Table 2 (:func:`published_for`). A cell the paper
    did not print for this dataset is written with ``extra=True``.

    Args:
        losses: loss (``softmax``, ``triplet``, ``npair``, ``ranking`` = the ICME default)
            -> stage-2 Run (percent metrics through ``Run.metrics``).
        ranking: ``(version, lam, alpha) -> Run`` (defaults and grid cells).
        ablation: arch -> stage-1 Run (000 Table 4 proxy on the target set, not comparable).
        small_sets: ``{set name: {arch: EvalResult}}`` -> :func:`small_scale_rows`.
        stage1_seconds: seconds of the shared stage-1 run, added to each stage-2 row.
        note: profile reductions, appended to every row's note.

    Returns:
        list of row dicts for :func:`reidnb.core.results.write_results`.
    """
    dataset = "Market-1501" if cfg.dataset_kind == "synthetic" \
        else DATASET_NAMES.get(str(cfg.dataset), str(cfg.dataset))
    ranking = {ranking_name(*key): (key, run) for key, run in (ranking or {}).items()}
    published = published_for(dataset, {**PUBLISHED, **{     # + cells the papers did not print
        name: ranking_cells(*key) for name, (key, _) in ranking.items() if name not in PUBLISHED}})
    stage2 = {**(losses or {}), **{name: run for name, (_, run) in ranking.items()}}
    shared = (f"stage 2 from a shared stage-1 run ({stage1_seconds:.0f} s, counted in seconds)"
              if stage1_seconds else "")
    rows = published_rows(cfg, published, stage2, dataset=dataset,
                          note="; ".join(s for s in (shared, note) if s),
                          extra_seconds={k: stage1_seconds for k in stage2})
    proxy = (f"{dataset} proxy of the small-scale Table 4 (stage-1 softmax); not comparable "
             "with the published small-set numbers")
    rows += published_rows(cfg, published,
                           {f"stage1-{arch}": run for arch, run in (ablation or {}).items()},
                           dataset=dataset, note="; ".join(s for s in (proxy, note) if s))
    return _no_protocol(rows, dataset) + small_scale_rows(cfg, small_sets or {}, note=note)


def small_scale_rows(cfg: Any, small_sets: Mapping[str, Mapping[str, Any]], *,
                     note: str = "") -> list[dict[str, Any]]:
    """Rank-1 rows of the small-scale sets (000 Tables 1/4, 003 Table 1; :data:`SMALL_SCALE`).

    Each row's dataset is the small set (:data:`TABLE1_NAMES`), protocol ''.

    Args:
        small_sets: ``{set name: {arch: EvalResult}}`` (:func:`~.small_scale.small_scale_runs`).
    """
    rows: list[dict[str, Any]] = []
    for set_name, results in small_sets.items():
        name = TABLE1_NAMES[set_name]
        runs = {arch: Run(name=arch, model=None, history=pd.DataFrame(), result=res,
                          train_seconds=0.0, eval_seconds=0.0, epochs=None)
                for arch, res in results.items()}
        rows += published_rows(dataclasses.replace(cfg, dataset=name), SMALL_SCALE, runs,
                               dataset=name, note=note)
    return rows


# =========================================================================== frames
def _metrics(run: Any, setting: str) -> dict[str, float] | None:
    if run is None or run.result is None or setting not in run.result.results:
        return None
    return run.metrics(setting)


def loss_table(runs: Mapping[str, Any]) -> pd.DataFrame:
    """Rank-1 / mAP (percent) of each run for every evaluated setting, plus minutes.

    Args:
        runs: label -> Run (e.g. the stage-2 loss comparison).

    Returns:
        one row per label; columns ``<setting> rank1`` / ``<setting> mAP`` for
        single-query, multi-query and their re-ranked versions where evaluated,
        ``train_min`` and ``eval_min``.
    """
    rows = []
    for label, run in runs.items():
        row: dict[str, Any] = {"run": label}
        for setting in ("single-query", "multi-query", "single-query+re-rank",
                        "multi-query+re-rank"):
            m = _metrics(run, setting)
            if m is not None:
                row[f"{setting} rank1"] = m["rank1"]
                row[f"{setting} mAP"] = m["mAP"]
        row["train_min"] = run.train_seconds / 60.0
        row["eval_min"] = run.eval_seconds / 60.0
        rows.append(row)
    return pd.DataFrame(rows).set_index("run").round(2)


def grid_table(runs: Mapping[tuple[str, float, float], Any], version: str,
               metric: str = "rank1") -> pd.DataFrame:
    """lambda (rows) x alpha (columns) of one version's ranking runs (single query, percent).

    Args:
        runs: ``(version, lam, alpha) -> Run``.
        metric: ``"rank1"`` or ``"mAP"``.
    """
    cells = [(lam, alpha, run.metrics("single-query")[metric])
             for (v, lam, alpha), run in runs.items() if v == version]
    if not cells:
        return pd.DataFrame()
    df = pd.DataFrame(cells, columns=["lambda", "alpha", metric])
    return df.pivot(index="lambda", columns="alpha", values=metric).round(2)


def ablation_table(runs: Mapping[str, Any], published: pd.DataFrame | None = None
                   ) -> pd.DataFrame:
    """000 Table 4 proxy: rank-1 / mAP (single query, percent) per network variant.

    Args:
        runs: arch (key of :data:`~.recipe.ARCHS`) -> Run.
        published: optional ``load_published("maskreid_icme", "Table 4")``; adds the
            published mean rank-1 over the six small-scale sets as a reference column.
    """
    rows = []
    for arch, run in runs.items():
        m = run.metrics("single-query")
        row = {"variant": arch, "masked input": ARCHS[arch]["use_mask"],
               "fusion": ARCHS[arch]["fusion"], "rank1": m["rank1"], "mAP": m["mAP"],
               "train_min": run.train_seconds / 60.0}
        if published is not None:
            sel = published[published["method"] == arch]
            row["published mean rank1 (6 small sets)"] = float(sel["value"].mean()) \
                if len(sel) else float("nan")
        rows.append(row)
    return pd.DataFrame(rows).set_index("variant").round(2)


def published_grid(version: str, metric: str = "rank1") -> pd.DataFrame:
    """The published lambda x alpha grid of one version (000 Table 6 / 003 Table 4), percent."""
    table = "Table 6" if version == "maskreid_icme" else "Table 4"
    pub = load_published(version, table)
    pub = pub[pub["metric"] == metric]
    cells = []
    for variant, value in zip(pub["variant"], pub["value"]):
        m = re.fullmatch(r"lambda=([\d.]+),alpha=([\d.]+)", str(variant))
        if m:
            cells.append((float(m.group(1)), float(m.group(2)), float(value)))
    df = pd.DataFrame(cells, columns=["lambda", "alpha", metric])
    return df.pivot(index="lambda", columns="alpha", values=metric)


def small_scale_table(results: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Rank-1 (percent) per variant (rows) and small-scale set (columns, Table 1 names),
    with the published 000 Table 4 value beside each measured one."""
    pub = load_published("maskreid_icme", "Table 4")
    rows: dict[str, dict[str, float]] = {}
    for name, by_arch in results.items():
        col = TABLE1_NAMES.get(name, name)
        for arch, res in by_arch.items():
            row = rows.setdefault(arch, {})
            row[f"{col}"] = round(100.0 * float(res.results["single-query"].cmc[0]), 2)
            hit = pub[(pub["dataset"] == col) & (pub["method"] == arch)]
            row[f"{col} (paper)"] = float(hit["value"].iloc[0]) if len(hit) else float("nan")
    return pd.DataFrame.from_dict(rows, orient="index")

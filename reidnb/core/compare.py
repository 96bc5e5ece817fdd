"""Measured next to published: side-by-side tables and the ablation directions.

:func:`compare` puts a notebook's measured cells beside the paper's printed ones for one
table; :func:`summary_tables` / :func:`compare_all` do it for every table; and
:func:`ablation_directions` / :func:`ablation_statements` say whether each ablation the
paper prints (a setting against its table's baseline) goes the same way in the
measurements. ``05_summary`` and the per-notebook cells call these.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from . import intervals as _iv
from .results import (COMPARE_COLUMNS, OPTIONAL_COLUMNS, PAPER_IDS, RESULT_COLUMNS, TABLE_NOTEBOOKS,
                      _LOWER_IS_BETTER, _MATCH, _join, _label, _norm_protocol, _rr, load_published)

__all__ = ["compare", "summary_tables", "compare_all", "tables_not_run", "style_comparison",
           "ablation_directions", "ablation_statements", "DIRECTION_COLUMNS", "directions_table",
           "verdict_counts", "pair_verdicts"]

# --------------------------------------------------------------------------- comparison
def compare(measured: pd.DataFrame, paper_id: str, table: str, *,
            include_others: bool = False) -> pd.DataFrame:
    """Published vs measured, side by side, for one published table.

    Rows match on (dataset, protocol, method, variant, metric, reranking) with an empty
    protocol equal to ``"single-query"`` (module docstring). Several measurements of one
    cell with the same profile and dataset_kind are averaged (``runs`` counts them);
    measurements of one cell on real and synthetic data stay separate rows.

    Args:
        measured: frame with :data:`RESULT_COLUMNS` (e.g. :func:`read_results`); rows of
            other papers/tables are ignored.
        paper_id, table: the published table.
        include_others: also list the compared methods of other papers (never measured).

    Returns:
        DataFrame with :data:`COMPARE_COLUMNS`, in the paper's row order, then measured
        rows that match no published row (``status="no published value"``). ``seeds`` is
        the seeds summed over the averaged rows (NaN: unknown), ``eval_file`` their
        per-query files joined by ``";"`` (``""``: none). ``published``,
        ``measured`` and ``delta = measured - published`` are percent (NaN when missing).
        ``status``: ``"not run"`` (published, not measured), ``"real"`` (comparable),
        ``"synthetic: not comparable"`` (measured on the generated set, only the direction
        of an ablation can be read from it) or ``"no published value"``.

    Raises:
        ValueError: unknown paper/table, or ``measured`` lacks columns.
    """
    pub = load_published(paper_id, table)
    if not include_others:
        pub = pub[pub["is_ours"] == 1]
    pub = pub.assign(_protocol=pub["protocol"].map(_norm_protocol),
                     _order=np.arange(len(pub)))
    missing = [c for c in RESULT_COLUMNS if c not in measured.columns and c not in OPTIONAL_COLUMNS]
    if missing:
        raise ValueError(f"compare: measured frame lacks columns {missing}")
    m = measured[(measured["paper_id"] == paper_id) & (measured["table"] == table)]
    m = m.assign(**{c: m[c] if c in m.columns else v for c, v in OPTIONAL_COLUMNS.items()})
    m = m.assign(seeds=pd.to_numeric(m["seeds"], errors="coerce"),
                 eval_file=m["eval_file"].fillna("").astype(str))
    m = m.assign(protocol=m["protocol"].fillna("").astype(str),
                 reranking=m["reranking"].astype(int), value=m["value"].astype(float))
    m = m.assign(_protocol=m["protocol"].map(_norm_protocol))
    pub = pub.rename(columns={"value": "published"})
    if len(m):
        agg = (m.groupby([*_MATCH, "profile", "dataset_kind"], sort=False, dropna=False)
               .agg(measured=("value", "mean"), runs=("value", "size"),
                    m_protocol=("protocol", "first"), seeds=("seeds", "sum"),
                    n_seeds=("seeds", "count"),
                    eval_file=("eval_file", lambda x: ";".join(dict.fromkeys(f for f in x if f))))
               .reset_index())
        agg["seeds"] = agg["seeds"].where(agg.pop("n_seeds") > 0)
        merged = pub.merge(agg, on=list(_MATCH), how="outer", indicator=True)
    else:
        merged = pub.assign(profile="", dataset_kind="", measured=np.nan, runs=0,
                            m_protocol="", _merge="both", seeds=np.nan, eval_file="")
    merged["protocol"] = merged["protocol"].where(merged["_merge"] != "right_only",
                                                  merged["m_protocol"])
    merged["paper_id"], merged["table"] = paper_id, table
    merged["_order"] = merged["_order"].fillna(len(pub) + 1e6)
    merged["is_ours"] = merged["is_ours"].fillna(1).astype(int)
    merged["published"] = merged["published"].astype(float)
    merged["measured"] = merged["measured"].astype(float)
    merged["delta"] = merged["measured"] - merged["published"]
    merged["runs"] = merged["runs"].fillna(0).astype(int)
    merged["reranking"] = merged["reranking"].astype(int)
    merged["seeds"] = merged["seeds"].astype(float)
    for c in ("profile", "dataset_kind", "protocol", "eval_file"):
        merged[c] = merged[c].fillna("").astype(str)
    merged["status"] = np.select(
        [merged["measured"].isna(), merged["published"].isna(),
         merged["dataset_kind"].str.contains("synthetic")],
        ["not run", "no published value", "synthetic: not comparable"], default="real")
    merged = merged.sort_values(["_order", "dataset_kind"], kind="stable")
    return merged[list(COMPARE_COLUMNS)].reset_index(drop=True)


def _tables() -> list[tuple[str, str]]:
    pub = load_published()
    return list(dict.fromkeys(zip(pub["paper_id"], pub["table"])))


def summary_tables(measured: pd.DataFrame) -> list[tuple[str, str, pd.DataFrame]]:
    """(paper_id, table, :func:`compare` frame) for every published table that has at
    least one measured row, in paper order (:data:`PAPER_IDS`) then table order."""
    out = []
    have = set(zip(measured["paper_id"], measured["table"])) if len(measured) else set()
    for pid in PAPER_IDS:
        for p, t in _tables():
            if p == pid and (p, t) in have:
                out.append((p, t, compare(measured, p, t)))
    return out


def compare_all(measured: pd.DataFrame) -> pd.DataFrame:
    """All :func:`summary_tables` frames stacked (empty with :data:`COMPARE_COLUMNS` if none)."""
    frames = [df for _, _, df in summary_tables(measured)]
    if not frames:
        return pd.DataFrame(columns=list(COMPARE_COLUMNS))
    return pd.concat(frames, ignore_index=True)


def tables_not_run(measured: pd.DataFrame) -> pd.DataFrame:
    """Published tables with no measured row: paper_id, table, paper's own rows, and the
    notebook meant to reproduce it (:data:`TABLE_NOTEBOOKS`)."""
    have = set(zip(measured["paper_id"], measured["table"])) if len(measured) else set()
    pub = load_published()
    out = []
    for pid in PAPER_IDS:
        for p, t in _tables():
            if p == pid and (p, t) not in have:
                own = pub[(pub["paper_id"] == p) & (pub["table"] == t) & (pub["is_ours"] == 1)]
                out.append(dict(paper_id=p, table=t, own_rows=len(own),
                                datasets=", ".join(dict.fromkeys(own["dataset"])),
                                reproduced_by=TABLE_NOTEBOOKS.get((p, t), "")))
    return pd.DataFrame(out, columns=["paper_id", "table", "own_rows", "datasets",
                                      "reproduced_by"])


def style_comparison(cmp: pd.DataFrame, caption: str | None = None):
    """A pandas Styler of a :func:`compare` frame for notebooks and HTML reports.

    Numbers with two decimals, ``"not run"`` for missing measurements, synthetic rows in
    grey italics with the status spelled out; needs jinja2 (installed with nbconvert).
    """
    show = cmp.drop(columns=["paper_id", "table", "is_ours", "eval_file"], errors="ignore")
    synthetic = show["status"].eq("synthetic: not comparable")

    def _row_style(row):
        style = "color: #888; font-style: italic" if synthetic.loc[row.name] else ""
        return [style] * len(row)

    sty = (show.style.format({"published": "{:.2f}", "measured": "{:.2f}", "delta": "{:+.2f}"},
                             na_rep="—")
           .apply(_row_style, axis=1).hide(axis="index"))
    cap = caption or ""
    if synthetic.any():
        cap += (" — grey rows were measured on the synthetic set: not comparable with the "
                "published numbers (only ablation directions mean something)")
    return sty.set_caption(cap.strip(" —")) if cap else sty


# --------------------------------------------------------------------------- ablations


#: Columns of :func:`ablation_directions`.
DIRECTION_COLUMNS: tuple[str, ...] = (
    "paper_id", "table", "dataset", "protocol", "metric", "dataset_kind", "profile",
    "reference", "compared", "published_delta", "measured_delta", "published_direction",
    "measured_direction", "agrees", "ci_low", "ci_high", "seeds", "verdict", "interval_method")


def ablation_directions(cmp: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0,
                        level: float = 0.95) -> pd.DataFrame:
    """Each published ablation direction with the measured difference, its interval and a verdict.

    Within one published table, dataset, protocol, metric, dataset_kind and profile, the
    paper's own rows that were measured are compared with a reference: the first of them
    in the paper's row order (the baseline as printed, e.g. bcloss ``Baseline``, SAL
    setting 1, MagnifierNet ``G``, MaskReID without re-ranking). ``better`` means a higher
    rank-k/mAP or a lower error rate.

    The interval of ``measured_delta`` comes from the per-query files of both rows
    (``eval_file``; :func:`reidnb.core.intervals.seed_query_bootstrap`: paired bootstrap
    over queries, with one seed per variant, else bootstrap over seeds and queries;
    ``n_boot`` resamples, generator ``seed``, coverage ``level``). rank1, rank5, rank10,
    mAP and mINP have per-query values; other metrics (error rates), rows of older CSVs and
    runs without per-query arrays get ``verdict = "inconclusive (no per-query data)"`` and
    NaN bounds.

    Args:
        cmp: :func:`compare` or :func:`compare_all` output.

    Returns:
        one row per (compared setting, metric), columns :data:`DIRECTION_COLUMNS`:
        reference, compared (labels), published_delta and measured_delta (compared minus
        reference, percent points), published/measured_direction (``better``/``worse``/
        ``equal``), agrees (sign only; None when the paper printed equal numbers), ci_low /
        ci_high (percent points), seeds (``"<compared> vs <reference>"``), verdict
        (``reproduced`` / ``contradicted`` / ``inconclusive`` /
        ``inconclusive (no per-query data)``, :func:`reidnb.core.intervals.verdict`) and
        interval_method.

    Raises:
        ValueError: a per-query file that exists but cannot be read, or two rows whose
            query sets differ (the message names them).
    """
    cols = list(DIRECTION_COLUMNS)
    ok = cmp[cmp["published"].notna() & cmp["measured"].notna() & cmp["is_ours"].eq(1)]
    ok = ok.assign(_protocol=ok["protocol"].map(_norm_protocol))
    if "eval_file" not in ok.columns:
        ok = ok.assign(eval_file="", seeds=np.nan)
    cache: dict[str, _iv.QueryData | None] = {}
    out = []
    keys = ["paper_id", "table", "dataset", "_protocol", "metric", "dataset_kind", "profile"]
    for key, g in ok.groupby(keys, sort=False):
        if len(g) < 2:
            continue
        k = dict(zip(keys, key))
        ref = g.iloc[0]
        sign = -1.0 if k["metric"] in _LOWER_IS_BETTER else 1.0
        for _, r in g.iloc[1:].iterrows():
            dp = float(r["published"] - ref["published"])
            dm = float(r["measured"] - ref["measured"])
            pdir, mdir = _direction(sign * dp), _direction(sign * dm)
            iv = _interval(r, ref, k["metric"], cache, n_boot=n_boot, seed=seed, level=level)
            out.append(dict(
                paper_id=k["paper_id"], table=k["table"], dataset=k["dataset"],
                protocol=ref["protocol"], metric=k["metric"], dataset_kind=k["dataset_kind"],
                profile=k["profile"],
                reference=_label(ref["method"], ref["variant"]) + _rr(ref["reranking"]),
                compared=_label(r["method"], r["variant"]) + _rr(r["reranking"]),
                published_delta=dp, measured_delta=dm, published_direction=pdir,
                measured_direction=mdir, agrees=None if pdir == "equal" else pdir == mdir,
                ci_low=np.nan if iv is None else iv.low, ci_high=np.nan if iv is None else iv.high,
                seeds=f"{_seeds(r)} vs {_seeds(ref)}", verdict=_iv.verdict(dp, iv),
                interval_method="" if iv is None else
                f"{iv.method}; {iv.n_boot} resamples, {iv.n_queries} queries, "
                f"{100 * iv.level:g}%"))
    return pd.DataFrame(out, columns=cols)


def _seeds(row: pd.Series) -> str:
    v = row.get("seeds", np.nan)
    return "?" if v is None or (isinstance(v, float) and math.isnan(v)) else str(int(v))


def _query_data(files: str, cache: dict) -> _iv.QueryData | None:
    """The seeds of every per-query file of ``files`` (``";"``-joined), None if any lacks."""
    if files not in cache:
        parts = [_iv.load_query_file(f) for f in str(files).split(";")] if files else [None]
        cache[files] = None if any(p is None for p in parts) else _iv.QueryData.concat(parts)
    return cache[files]


def _interval(row: pd.Series, ref: pd.Series, metric: str, cache: dict,
              **kw) -> _iv.Interval | None:
    if metric not in _iv.METRIC_FIELDS:
        return None
    a = _query_data(str(row.get("eval_file", "") or ""), cache)
    b = _query_data(str(ref.get("eval_file", "") or ""), cache)
    try:
        pair = _iv.pair_intervals(a, b, **kw)
    except ValueError as e:
        raise ValueError(f"{row['eval_file']} vs {ref['eval_file']}: {e}") from e
    return None if pair is None else pair.get(metric)


def pair_verdicts(a: object, b: object, paper_deltas: dict[str, float], *,
                  setting: str = "single-query", n_boot: int = 1000, seed: int = 0,
                  level: float = 0.95) -> dict[str, dict]:
    """Interval and verdict of run ``a`` minus run ``b`` for each metric the paper compares:
    the columns :func:`ablation_directions` adds, for a paper's own direction tables that
    pair runs directly (SAL §4.3 comparisons, a control run the paper did not print).

    Args:
        a, b: runs or seed groups (:func:`reidnb.core.intervals.query_data_of`: ``Run``,
            an object with ``runs``, or with ``stage2``).
        paper_deltas: metric (``rank1``, ``rank5``, ``rank10``, ``mAP``, ``mINP``) -> published
            difference a minus b in percent points (its sign is the paper's direction).
        setting: evaluation setting. n_boot, seed, level: as
            :func:`reidnb.core.intervals.seed_query_bootstrap`.

    Returns:
        metric -> ``{"ci_low", "ci_high"`` (percent points, NaN without per-query data),
        ``"seeds"`` (``"<a> vs <b>"``), ``"verdict"}``.

    Raises:
        ValueError: the two runs were evaluated on different query sets.
    """
    qa, qb = _iv.query_data_of(a, setting), _iv.query_data_of(b, setting)
    pair = _iv.pair_intervals(qa, qb, n_boot=n_boot, seed=seed, level=level)
    seeds = f"{len(_iv._seed_runs(a))} vs {len(_iv._seed_runs(b))}"
    out = {}
    for metric, dp in paper_deltas.items():
        iv = pair.get(metric) if pair is not None else None
        out[metric] = dict(ci_low=np.nan if iv is None else iv.low,
                           ci_high=np.nan if iv is None else iv.high, seeds=seeds,
                           verdict=_iv.verdict(dp, iv))
    return out


def verdict_counts(directions: pd.DataFrame) -> dict[str, int]:
    """Verdicts of :func:`ablation_directions` counted: keys ``reproduced``,
    ``contradicted``, ``inconclusive`` and ``no per-query data`` (all present, 0 if none)."""
    out = {"reproduced": 0, "contradicted": 0, "inconclusive": 0, "no per-query data": 0}
    for v in directions.get("verdict", pd.Series(dtype=str)):
        out["no per-query data" if v == _iv.NO_DATA else v] += 1
    return out


def directions_table(directions: pd.DataFrame, paper_id: str | None = None) -> pd.DataFrame:
    """The verdict table of 05_summary (and the notebooks): one line per compared pair.

    Args:
        directions: :func:`ablation_directions` output.
        paper_id: keep one paper (None: all).

    Returns:
        columns paper_id, comparison (``"<table>, <dataset>[ <protocol>], <metric>:
        <compared> vs <reference>"``), dataset_kind, paper_delta, measured_delta (percent
        points), interval (``"[low, high]"`` or ``"—"``), seeds, verdict; in the order of
        ``directions``.
    """
    d = directions if paper_id is None else directions[directions["paper_id"] == paper_id]
    cols = ["paper_id", "comparison", "dataset_kind", "paper_delta", "measured_delta", "interval",
            "seeds", "verdict"]
    rows = []
    for r in d.itertuples():
        where = f"{r.table}, {r.dataset}" + (f" {r.protocol}" if r.protocol else "")
        rows.append(dict(
            paper_id=r.paper_id, comparison=f"{where}, {r.metric}: {r.compared} vs {r.reference}",
            dataset_kind=r.dataset_kind, paper_delta=round(float(r.published_delta), 2),
            measured_delta=round(float(r.measured_delta), 2),
            interval="—" if math.isnan(r.ci_low) else f"[{r.ci_low:+.2f}, {r.ci_high:+.2f}]",
            seeds=r.seeds, verdict=r.verdict))
    return pd.DataFrame(rows, columns=cols)


def _direction(d: float, tol: float = 1e-9) -> str:
    return "better" if d > tol else "worse" if d < -tol else "equal"


def ablation_statements(measured: pd.DataFrame) -> dict[str, str]:
    """A short Markdown statement per paper (:data:`PAPER_IDS`): verdict counts of its
    published ablation directions (:func:`ablation_directions`) and one line per pair; also
    says when a paper was not run at all.

    Args:
        measured: :func:`read_results` output.

    Returns:
        paper_id -> Markdown text.
    """
    cmp = compare_all(measured)
    dirs = ablation_directions(cmp) if len(cmp) else ablation_directions(
        pd.DataFrame(columns=list(COMPARE_COLUMNS)))
    pub = load_published()
    out: dict[str, str] = {}
    for pid in PAPER_IDS:
        title = pub.loc[pub["paper_id"] == pid, "paper"].iloc[0]
        head = f"**{pid}** ({title}): "
        got = cmp[(cmp["paper_id"] == pid) & cmp["measured"].notna()]
        if got.empty:
            out[pid] = head + "not run (no measured rows)."
            continue
        d = dirs[dirs["paper_id"] == pid]
        decided = d[d["published_direction"] != "equal"]
        if decided.empty:
            out[pid] = head + (f"{len(got)} measured cells, but no ablation pair (needs two of "
                               "the paper's own settings of one table measured alike).")
            continue
        n = verdict_counts(decided)
        kinds = _join(decided["dataset_kind"])
        lines = [head + f"{n['reproduced']} of {len(decided)} published ablation directions "
                 f"reproduced, {n['contradicted']} contradicted, {n['inconclusive']} "
                 f"inconclusive, {n['no per-query data']} without per-query data"
                 + (" — on synthetic data: directions only, magnitudes are not comparable."
                    if "synthetic" in kinds else " (real data).")]
        for (table, dataset, proto, ref, comp), g in decided.groupby(
                ["table", "dataset", "protocol", "reference", "compared"], sort=False):
            parts = [f"{r.metric} {r.published_delta:+.2f}/{r.measured_delta:+.2f}"
                     + ("" if math.isnan(r.ci_low) else f" [{r.ci_low:+.2f}, {r.ci_high:+.2f}]")
                     + f" {r.verdict}" for r in g.itertuples()]
            where = f"{table}, {dataset}" + (f" {proto}" if proto else "")
            lines.append(f"- {where}: {comp} vs {ref}: " + "; ".join(parts)
                         + " (published/measured change, 95% interval, verdict)")
        out[pid] = "\n".join(lines)
    return out

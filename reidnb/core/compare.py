"""Measured next to published: side-by-side tables and the ablation directions.

:func:`compare` puts a notebook's measured cells beside the paper's printed ones for one
table; :func:`summary_tables` / :func:`compare_all` do it for every table; and
:func:`ablation_directions` / :func:`ablation_statements` say whether each ablation the
paper prints (a setting against its table's baseline) goes the same way in the
measurements. ``05_summary`` and the per-notebook cells call these.
"""
from __future__ import annotations



import numpy as np
import pandas as pd

from .results import (COMPARE_COLUMNS, PAPER_IDS, RESULT_COLUMNS, TABLE_NOTEBOOKS, _LOWER_IS_BETTER,
                      _MATCH, _join, _label, _norm_protocol, _rr, load_published)

__all__ = ["compare", "summary_tables", "compare_all", "tables_not_run", "style_comparison",
           "ablation_directions", "ablation_statements"]

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
        rows that match no published row (``status="no published value"``). ``published``,
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
    missing = [c for c in RESULT_COLUMNS if c not in measured.columns]
    if missing:
        raise ValueError(f"compare: measured frame lacks columns {missing}")
    m = measured[(measured["paper_id"] == paper_id) & (measured["table"] == table)]
    m = m.assign(protocol=m["protocol"].fillna("").astype(str),
                 reranking=m["reranking"].astype(int), value=m["value"].astype(float))
    m = m.assign(_protocol=m["protocol"].map(_norm_protocol))
    pub = pub.rename(columns={"value": "published"})
    if len(m):
        agg = (m.groupby([*_MATCH, "profile", "dataset_kind"], sort=False, dropna=False)
               .agg(measured=("value", "mean"), runs=("value", "size"),
                    m_protocol=("protocol", "first"))
               .reset_index())
        merged = pub.merge(agg, on=list(_MATCH), how="outer", indicator=True)
    else:
        merged = pub.assign(profile="", dataset_kind="", measured=np.nan, runs=0,
                            m_protocol="", _merge="both")
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
    for c in ("profile", "dataset_kind", "protocol"):
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
    show = cmp.drop(columns=["paper_id", "table", "is_ours"], errors="ignore")
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


def ablation_directions(cmp: pd.DataFrame) -> pd.DataFrame:
    """Does each measured ablation go the same way (better/worse) as the paper's?

    Within one published table, dataset, protocol, metric, dataset_kind and profile, the
    paper's own rows that were measured are compared with a reference: the first of them
    in the paper's row order (the baseline as printed, e.g. bcloss ``Baseline``, SAL
    setting 1, MagnifierNet ``G``, MaskReID without re-ranking). ``better`` means a higher
    rank-k/mAP or a lower error rate.

    Args:
        cmp: :func:`compare` or :func:`compare_all` output.

    Returns:
        one row per (compared setting, metric): paper_id, table, dataset, protocol, metric,
        dataset_kind, profile, reference, compared, published_delta, measured_delta
        (compared minus reference, percent points), published_direction,
        measured_direction (``better``/``worse``/``equal``), agrees (True/False; None when
        the paper printed equal numbers).
    """
    cols = ["paper_id", "table", "dataset", "protocol", "metric", "dataset_kind", "profile",
            "reference", "compared", "published_delta", "measured_delta",
            "published_direction", "measured_direction", "agrees"]
    ok = cmp[cmp["published"].notna() & cmp["measured"].notna() & cmp["is_ours"].eq(1)]
    ok = ok.assign(_protocol=ok["protocol"].map(_norm_protocol))
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
            out.append(dict(
                paper_id=k["paper_id"], table=k["table"], dataset=k["dataset"],
                protocol=ref["protocol"], metric=k["metric"], dataset_kind=k["dataset_kind"],
                profile=k["profile"],
                reference=_label(ref["method"], ref["variant"]) + _rr(ref["reranking"]),
                compared=_label(r["method"], r["variant"]) + _rr(r["reranking"]),
                published_delta=dp, measured_delta=dm, published_direction=pdir,
                measured_direction=mdir, agrees=None if pdir == "equal" else pdir == mdir))
    return pd.DataFrame(out, columns=cols)




def _direction(d: float, tol: float = 1e-9) -> str:
    return "better" if d > tol else "worse" if d < -tol else "equal"


def ablation_statements(measured: pd.DataFrame) -> dict[str, str]:
    """A short Markdown statement per paper (:data:`PAPER_IDS`) of which published ablation
    directions the measurements reproduce; also says when a paper was not run at all.

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
        decided = d[d["agrees"].notna()]
        if decided.empty:
            out[pid] = head + (f"{len(got)} measured cells, but no ablation pair (needs two of "
                               "the paper's own settings of one table measured alike).")
            continue
        n_ok = int(decided["agrees"].astype(bool).sum())
        kinds = _join(decided["dataset_kind"])
        lines = [head + f"{n_ok} of {len(decided)} published ablation directions reproduced"
                 + (" — on synthetic data: directions only, magnitudes are not comparable."
                    if "synthetic" in kinds else " (real data).")]
        for (table, dataset, proto, ref, comp), g in decided.groupby(
                ["table", "dataset", "protocol", "reference", "compared"], sort=False):
            parts = [f"{r.metric} {r.published_delta:+.2f}/{r.measured_delta:+.2f} "
                     f"{'✓' if r.agrees else '✗'}" for r in g.itertuples()]
            where = f"{table}, {dataset}" + (f" {proto}" if proto else "")
            lines.append(f"- {where}: {comp} vs {ref}: " + "; ".join(parts)
                         + " (published/measured change)")
        out[pid] = "\n".join(lines)
    return out

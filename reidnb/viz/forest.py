"""Forest plot of every compared pair: measured difference with its interval, published one beside.

Takes the frame of :func:`reidnb.core.compare.ablation_directions` (one row per published
ablation direction: ``measured_delta`` with ``ci_low``/``ci_high`` from the paired
bootstrap of :mod:`reidnb.core.intervals`, ``published_delta``, ``verdict``) and returns a
matplotlib Figure (05_summary).
"""
from __future__ import annotations

import math

import pandas as pd

__all__ = ["plot_forest", "VERDICT_COLORS"]

#: Colour of each verdict (the point and its interval).
VERDICT_COLORS: dict[str, str] = {"reproduced": "#2e7d32", "contradicted": "#c62828",
                                  "inconclusive": "#757575",
                                  "inconclusive (no per-query data)": "#bdbdbd"}


def _short(text: str, n: int = 70) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def plot_forest(directions: pd.DataFrame, *, title: str | None = None, max_rows: int = 60):
    """One line per compared pair: measured Δ (dot) with its 95 % interval (bar), published Δ
    (open diamond), a dashed line at 0.

    Args:
        directions: :func:`reidnb.core.compare.ablation_directions` output (columns
            paper_id, table, metric, compared, reference, published_delta, measured_delta,
            ci_low, ci_high, verdict, dataset_kind); Δ in percent points, compared minus
            reference.
        title: figure title (default names the interval and the synthetic caveat).
        max_rows: draw at most this many pairs (the rest are counted in the title).

    Returns:
        matplotlib Figure; rows without an interval (no per-query data) show the point
        only, in light grey. Colours: :data:`VERDICT_COLORS`. An empty frame gives a figure
        that says so.

    Raises:
        ValueError: ``directions`` lacks one of the columns above (named).
    """
    import matplotlib.pyplot as plt

    need = ["paper_id", "table", "metric", "compared", "reference", "published_delta",
            "measured_delta", "ci_low", "ci_high", "verdict"]
    missing = [c for c in need if c not in directions.columns]
    if missing:
        raise ValueError(f"plot_forest: directions lacks columns {missing} (expected the "
                         "output of reidnb.core.compare.ablation_directions)")
    d = directions.iloc[:max_rows]
    if d.empty:
        fig, ax = plt.subplots(figsize=(6, 1.5))
        ax.text(0.5, 0.5, "no compared pairs yet", ha="center", va="center")
        ax.set_axis_off()
        return fig
    n = len(d)
    fig, ax = plt.subplots(figsize=(10, 1.0 + 0.45 * n))
    ys = list(range(n))[::-1]
    labels = []
    seen = set()
    for y, r in zip(ys, d.itertuples()):
        colour = VERDICT_COLORS.get(r.verdict, "#000000")
        lo, hi = float(r.ci_low), float(r.ci_high)
        if not (math.isnan(lo) or math.isnan(hi)):
            ax.plot([lo, hi], [y, y], color=colour, lw=2, solid_capstyle="butt")
        lab = r.verdict if r.verdict not in seen else None
        seen.add(r.verdict)
        ax.plot([r.measured_delta], [y], "o", color=colour, ms=5, label=lab)
        ax.plot([r.published_delta], [y], "D", mfc="none", mec="#1565c0", ms=6,
                label="published Δ" if y == ys[0] else None)
        kind = " · synthetic" if "synthetic" in str(getattr(r, "dataset_kind", "")) else ""
        labels.append(f"{r.paper_id} {r.table} · {r.metric}{kind}\n"
                      + _short(f"{r.compared} vs {r.reference}", 80))
    ax.axvline(0.0, color="#000000", lw=0.8, ls="--")
    ax.set_yticks(ys)
    ax.set_yticklabels(labels, fontsize=7)
    ax.set_xlabel("Δ = compared − reference (percent points)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    more = f" ({len(directions) - n} more not drawn)" if len(directions) > n else ""
    ax.set_title(title or ("Measured Δ with 95% bootstrap interval; ◇ published Δ" + more),
                 fontsize=9)
    fig.tight_layout()
    return fig

"""Figures of the workbook: distance curves, ranked lists, attention overlays, montages.

Every function takes data (DataFrames, arrays, records) and returns a matplotlib Figure;
notebooks only call these. Sections below are grouped by the part of the workbook that
first needed them.
"""
from __future__ import annotations

import matplotlib.pyplot as plt  # noqa: F401  (used by the sections below)
import numpy as np  # noqa: F401


# =========================================================================== 05_summary
# (section owned by the results/report helper: measured vs published)

def plot_measured_vs_published(cmp, *, ax=None, title=None):
    """Scatter of measured against published numbers, one point per compared table cell.

    Args:
        cmp: :func:`reidnb.results.compare_all` (or ``compare``) output; rows with both a
            published and a measured value are drawn (percent, 0..100 on both axes).
        ax: matplotlib Axes to draw into (a new 6x6 inch figure when None).
        title: axes title (default says how many cells and which data kinds).

    Colour = paper (``paper_id``), marker = ``dataset_kind`` (filled circle real, cross
    synthetic), dashed diagonal = "measured equals published". Synthetic points are not
    comparable with the papers: the legend says so. With nothing to draw, the axes carry a
    "no measured results yet" note instead of points.

    Returns:
        the matplotlib Figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 6))
    else:
        fig = ax.figure
    pts = cmp[cmp["published"].notna() & cmp["measured"].notna()] if len(cmp) else cmp
    ax.plot([0, 100], [0, 100], ls="--", color="0.5", lw=1, zorder=0)
    ax.set(xlim=(0, 100), ylim=(0, 100), xlabel="published (%)", ylabel="measured (%)",
           aspect="equal")
    if len(pts) == 0:
        ax.text(50, 50, "no measured results yet\n(run notebooks 01-04 first)",
                ha="center", va="center", color="0.4")
        ax.set_title(title or "measured vs published")
        return fig
    papers = list(dict.fromkeys(pts["paper_id"]))
    colours = {p: plt.get_cmap("tab10")(i % 10) for i, p in enumerate(papers)}
    markers = {"real": "o", "synthetic": "x"}
    for (paper, kind), g in pts.groupby(["paper_id", "dataset_kind"], sort=False):
        ax.scatter(g["published"], g["measured"], color=colours[paper],
                   marker=markers.get(kind, "s"), s=36, alpha=0.85)
    handles = [Line2D([], [], ls="", marker="o", color=colours[p], label=p) for p in papers]
    for kind in dict.fromkeys(pts["dataset_kind"]):
        label = "synthetic (not comparable)" if kind == "synthetic" else str(kind)
        handles.append(Line2D([], [], ls="", marker=markers.get(kind, "s"), color="0.3",
                              label=label))
    ax.legend(handles=handles, loc="upper left", fontsize="small", frameon=False)
    kinds = ", ".join(dict.fromkeys(pts["dataset_kind"]))
    ax.set_title(title or f"measured vs published: {len(pts)} cells ({kinds})")
    return fig

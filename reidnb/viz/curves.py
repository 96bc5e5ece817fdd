"""Line and scatter figures: training distance / loss curves, measured vs published numbers.

Every function takes data (Trainer history DataFrames, comparison tables) and returns a
matplotlib Figure.
"""
from __future__ import annotations

__all__ = ["plot_measured_vs_published", "plot_distance_curves", "plot_loss_curves"]


def plot_measured_vs_published(cmp, *, ax=None, title=None):
    """Scatter of measured against published numbers, one point per compared table cell.

    Args:
        cmp: :func:`reidnb.core.results.compare_all` (or ``compare``) output; rows with both a
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


_DIST_CURVES = (("d_intra", "intra-class", "tab:blue"),
                ("d_inter_min", "minimum inter-class", "tab:orange"),
                ("d_inter_mean", "mean inter-class", "tab:green"))


def _as_histories(histories):
    """A single DataFrame -> {"run": df}; a mapping is checked to be non-empty."""
    import pandas as pd

    if isinstance(histories, pd.DataFrame):
        return {"run": histories}
    if not histories:
        raise ValueError("histories must be a DataFrame or a non-empty mapping "
                         "{run name: Trainer history}")
    return dict(histories)


def _rolling(series, smooth: int):
    return series.rolling(max(1, int(smooth)), min_periods=1).mean()


def plot_distance_curves(histories, smooth: int = 20, *, raw: bool = True):
    """Intra- vs inter-class distance over training, one panel per run (001 Fig. 1 (a)/(b)).

    Args:
        histories: ``{run name: Trainer.history}`` (or one history DataFrame). Uses the
            columns ``iter``, ``d_intra``, ``d_inter_min``, ``d_inter_mean`` (distances of
            L2-normalised embeddings, in [0, 2]; see ``reidnb.core.engine.distance_stats``).
        smooth: rolling-mean window, in logged batches (only batches holding a positive
            pair have statistics, as in 001 §1).
        raw: also draw the per-batch values as faint dots (the paper plots dots).

    Colours follow 001 Fig. 1: blue intra-class, orange minimum inter-class, green mean
    (average) inter-class distance. Panels share the y axis, so runs compare directly
    (001: under softmax alone the orange and blue dots overlap; with the B-C loss the
    minimum inter-class distance separates above the intra-class distance).

    Returns:
        matplotlib Figure.

    Raises:
        KeyError: a history lacks one of the columns (named with the run).
    """
    import matplotlib.pyplot as plt

    runs = _as_histories(histories)
    need = ["iter"] + [c for c, _, _ in _DIST_CURVES]
    for name, h in runs.items():
        missing = [c for c in need if c not in h.columns]
        if missing:
            raise KeyError(f"history of run {name!r} lacks columns {missing} "
                           "(expected a reidnb.core.engine.Trainer history)")
    fig, axes = plt.subplots(1, len(runs), figsize=(4.5 * len(runs), 3.6), sharey=True,
                             squeeze=False)
    for i, (ax, (name, h)) in enumerate(zip(axes[0], runs.items())):
        h = h.dropna(subset=["d_intra"])
        if len(h) == 0:
            ax.text(0.5, 0.5, "no batch with a positive pair", ha="center", va="center",
                    transform=ax.transAxes, color="0.4")
        for col, label, colour in _DIST_CURVES:
            if len(h) == 0:
                continue
            if raw:
                ax.scatter(h["iter"], h[col], s=4, color=colour, alpha=0.25, lw=0)
            ax.plot(h["iter"], _rolling(h[col], smooth), color=colour, lw=1.6, label=label)
        letter = f"({chr(ord('a') + i)}) " if len(runs) > 1 else ""
        ax.set_title(f"{letter}{name}")
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("distance (L2-normalised)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if not handles:
        for ax in axes[0]:
            handles, labels = ax.get_legend_handles_labels()
            if handles:
                break
    if handles:
        axes[0, -1].legend(handles, labels, fontsize="small", loc="best")
    fig.suptitle(f"batch distances (rolling mean over {smooth} batches with positive pairs)",
                 fontsize="medium")
    fig.tight_layout()
    return fig


def plot_loss_curves(histories, smooth: int = 20, *, raw: bool = True, logy: bool = False):
    """Loss curves of one or more Trainer runs: a panel for the total and one per term.

    Args:
        histories: ``{run name: Trainer.history}`` (or one DataFrame); columns ``iter``,
            ``loss`` and any ``loss_<term>`` (unweighted term values).
        smooth: rolling-mean window in iterations. raw: faint per-iteration lines too.
        logy: logarithmic y axes.

    Each run keeps one colour in every panel; a term missing from a run is left out of
    that panel. Returns the matplotlib Figure.

    Raises:
        KeyError: a history has no ``iter`` or ``loss`` column.
    """
    import matplotlib.pyplot as plt

    runs = _as_histories(histories)
    cols = ["loss"]
    for name, h in runs.items():
        missing = [c for c in ("iter", "loss") if c not in h.columns]
        if missing:
            raise KeyError(f"history of run {name!r} lacks columns {missing}")
        cols += [c for c in h.columns if c.startswith("loss_") and c not in cols]
    n = len(cols)
    ncol = min(n, 3)
    nrow = -(-n // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.5 * ncol, 3.2 * nrow), squeeze=False)
    colours = {name: plt.get_cmap("tab10")(i % 10) for i, name in enumerate(runs)}
    for ax, col in zip(axes.flat, cols):
        for name, h in runs.items():
            if col not in h.columns:
                continue
            if raw:
                ax.plot(h["iter"], h[col], color=colours[name], alpha=0.2, lw=0.7)
            ax.plot(h["iter"], _rolling(h[col], smooth), color=colours[name], lw=1.6,
                    label=name)
        ax.set_title("total (weighted sum)" if col == "loss" else col[len("loss_"):])
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
        if logy:
            ax.set_yscale("log")
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    if len(runs) > 1:
        axes[0, 0].legend(fontsize="small")
    fig.tight_layout()
    return fig

"""Figures of result tables: lambda x alpha heat maps, fusion-branch bars, K-hat sweeps.

Each takes the DataFrame a recipe module builds (``grid_table``: MaskReID 000 Table 6 /
003 Table 4; ``fig4_frame`` / ``fig5_frame``: MagnifierNet 002 Figs. 4 and 5) and returns
a matplotlib Figure.
"""
from __future__ import annotations

import numpy as np

__all__ = ["plot_grid_heatmaps", "plot_fusion_comparison", "plot_k_hat_sweep"]


def plot_grid_heatmaps(tables, *, title=None, fmt: str = "{:.1f}"):
    """lambda x alpha heatmaps side by side (000 Table 6 / 003 Table 4; measured vs published).

    Args:
        tables: ``{panel title: DataFrame}`` with lambda as the index and alpha as the
            columns (:func:`reidnb.papers.maskreid.grid_table`); NaN cells stay blank.
        fmt: cell text format.

    Returns:
        matplotlib Figure. Each panel has its own colour scale (synthetic and published
        numbers live on different scales; read the pattern, not the colours across panels).

    Raises:
        ValueError: no non-empty table.
    """
    import matplotlib.pyplot as plt

    items = [(k, v) for k, v in tables.items() if v is not None and len(v)]
    if not items:
        raise ValueError("plot_grid_heatmaps: no non-empty table")
    fig, axes = plt.subplots(1, len(items), figsize=(3.2 * len(items) + 0.5, 3.0),
                             squeeze=False)
    for ax, (label, df) in zip(axes[0], items):
        vals = df.to_numpy(dtype=float)
        ax.imshow(np.ma.masked_invalid(vals), cmap="viridis", aspect="auto")
        ax.set_xticks(range(df.shape[1]), [f"{a:g}" for a in df.columns])
        ax.set_yticks(range(df.shape[0]), [f"{lam:g}" for lam in df.index])
        ax.set_xlabel("alpha")
        ax.set_ylabel("lambda")
        for i in range(vals.shape[0]):
            for j in range(vals.shape[1]):
                if np.isfinite(vals[i, j]):
                    ax.text(j, i, fmt.format(vals[i, j]), ha="center", va="center",
                            fontsize="x-small", color="w")
        ax.set_title(label, fontsize="small")
    if title:
        fig.suptitle(title, fontsize="medium")
    fig.tight_layout()
    return fig


def plot_fusion_comparison(frame, *, title=None):
    """Fig. 4: SFB (GRU fusion) vs the ablation branch AB, rank-1 and mAP bars.

    Args:
        frame: long DataFrame with columns branch, metric, value (percent)
            (``reidnb.papers.magnifiernet.fig4_frame``).

    Raises:
        ValueError: empty frame or missing columns.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    need = {"branch", "metric", "value"}
    if frame is None or len(frame) == 0 or not need <= set(frame.columns):
        raise ValueError(f"plot_fusion_comparison: need a non-empty frame with columns {need}")
    fig, ax = plt.subplots(figsize=(4.2, 3))
    sns.barplot(data=frame, x="metric", y="value", hue="branch", ax=ax)
    for c in ax.containers:
        ax.bar_label(c, fmt="%.1f", fontsize="x-small")
    ax.set_ylabel("%")
    ax.set_xlabel("")
    ax.set_title(title or "SFB vs ablation branch AB (G+M+SAB+SFB, no SD)", fontsize="small")
    fig.tight_layout()
    return fig


def plot_k_hat_sweep(frame, *, metrics=("mAP", "rank1"), title=None):
    """Fig. 5: rank-1 / mAP against the number of kept regions K-hat, one line per SAB
    sampling strategy (Random-torso vs Random-baseline).

    Args:
        frame: DataFrame with columns sampling, k_hat and the metrics (percent)
            (``reidnb.papers.magnifiernet.fig5_frame``).

    Raises:
        ValueError: empty frame or missing columns.
    """
    import matplotlib.pyplot as plt

    need = {"sampling", "k_hat", *metrics}
    if frame is None or len(frame) == 0 or not need <= set(frame.columns):
        raise ValueError(f"plot_k_hat_sweep: need a non-empty frame with columns {need}")
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.4 * len(metrics), 2.9), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for s, g in frame.groupby("sampling", sort=False):
            g = g.sort_values("k_hat")
            ax.plot(g["k_hat"], g[metric], marker="o", label=s.replace("_", "-"))
        ax.set_xlabel("K-hat (regions kept by SAB)")
        ax.set_ylabel(f"{metric} (%)")
        ax.set_xticks(sorted(frame["k_hat"].unique()))
        ax.legend(fontsize="x-small", frameon=False)
    fig.suptitle(title or "SAB region sampling: Random-torso vs Random-baseline "
                 "(G+M+SAB+SFB, no SD)", fontsize="small")
    fig.tight_layout()
    return fig

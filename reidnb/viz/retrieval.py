"""Retrieval figures: ranked lists, top-1 pairs of two models, pair-distance histograms.

The Market-1501 junk rule and the true-match / different-identity split come from
:mod:`reidnb.evaluation.retrieval` (``junk_mask``, ``pair_distances``), so a figure shows
exactly what :func:`reidnb.evaluation.evaluate_rank` scores.
"""
from __future__ import annotations

import numpy as np

from reidnb.evaluation.retrieval import junk_mask, pair_distances

__all__ = ["plot_ranked_list", "plot_top1_pairs", "plot_pair_distance_hist"]


def _default_load_image(path):
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (FileNotFoundError, OSError) as e:
        raise FileNotFoundError(f"plot_ranked_list: cannot read image {path!r}: {e}") from e


def plot_ranked_list(eval_result, query_indices, topk: int = 10, load_image=None, *,
                     show_junk: bool = False, distmat=None):
    """Query images and their top-k gallery matches, bordered by correctness.

    Args:
        eval_result: an ``EvalResult`` (attributes ``distmat`` [Q, G], ``q_paths``,
            ``g_paths``, ``q_pids``, ``g_pids``, ``q_camids``, ``g_camids``).
        query_indices: indices into the query set, one row each.
        topk: gallery images per row.
        load_image: ``path -> HxWx3 array`` (default: PIL, RGB).
        show_junk: draw the gallery images the Market-1501 protocol removes (same pid and
            same camera as the query, or pid -1) with a grey border; by default they are
            skipped, as ``evaluate_rank`` skips them.
        distmat: distances to rank by (default ``eval_result.distmat``; e.g. pass
            ``eval_result.distmat_rerank``).

    Borders: green = same identity (a correct match), red = another identity (the
    distractor pid 0 included), grey = junk. Ties keep gallery order (stable sort, as
    ``evaluate_rank``). Each thumbnail is titled with its rank and distance.

    Returns:
        matplotlib Figure.

    Raises:
        ValueError: shapes that disagree, a query index out of range, or no image paths.
        FileNotFoundError: an image that cannot be read (named).
    """
    import matplotlib.pyplot as plt

    dm = np.asarray(eval_result.distmat if distmat is None else distmat)
    q_pids, g_pids = np.asarray(eval_result.q_pids), np.asarray(eval_result.g_pids)
    q_cams, g_cams = np.asarray(eval_result.q_camids), np.asarray(eval_result.g_camids)
    q_paths, g_paths = list(eval_result.q_paths), list(eval_result.g_paths)
    Q, G = len(q_pids), len(g_pids)
    if dm.shape != (Q, G):
        raise ValueError(f"plot_ranked_list: distmat is {dm.shape}, expected ({Q}, {G}) "
                         "from q_pids / g_pids")
    if len(q_paths) != Q or len(g_paths) != G:
        raise ValueError(f"plot_ranked_list: need an image path per query and gallery item; "
                         f"got {len(q_paths)} query paths for {Q} queries and "
                         f"{len(g_paths)} gallery paths for {G} gallery items")
    query_indices = [int(i) for i in np.atleast_1d(query_indices)]
    bad = [i for i in query_indices if not 0 <= i < Q]
    if bad or not query_indices:
        raise ValueError(f"plot_ranked_list: query indices {bad or query_indices} not in "
                         f"[0, {Q})")
    if topk < 1:
        raise ValueError(f"topk must be >= 1, got {topk}")
    load = load_image or _default_load_image

    fig, axes = plt.subplots(len(query_indices), topk + 1,
                             figsize=(1.05 * (topk + 1), 2.3 * len(query_indices)),
                             squeeze=False)

    def show(ax, path, colour, title):
        ax.imshow(load(path))
        ax.set_xticks([])
        ax.set_yticks([])
        for s in ax.spines.values():
            s.set_edgecolor(colour)
            s.set_linewidth(4)
        ax.set_title(title, fontsize=7)

    for row, qi in zip(axes, query_indices):
        show(row[0], q_paths[qi], "black", f"query {qi}\npid {q_pids[qi]} c{q_cams[qi]}")
        order = np.argsort(dm[qi], kind="stable")
        junk = junk_mask(q_pids[qi:qi + 1], g_pids, q_cams[qi:qi + 1], g_cams)[0, order]
        shown, rank = 0, 0
        for gi, is_junk in zip(order, junk):
            if shown == topk:
                break
            if is_junk and not show_junk:
                continue
            if is_junk:
                colour, label = "0.6", "junk"
            else:
                rank += 1
                colour = "tab:green" if g_pids[gi] == q_pids[qi] else "tab:red"
                label = f"#{rank}"
            show(row[1 + shown], g_paths[gi], colour, f"{label} {dm[qi, gi]:.2f}")
            shown += 1
        for ax in row[1 + shown:]:
            ax.axis("off")
    fig.suptitle("ranked lists: green = same identity, red = other identity"
                 + (", grey = junk (not scored)" if show_junk else
                    " (junk and same-camera matches skipped)"), fontsize=8)
    fig.tight_layout()
    return fig


def plot_pair_distance_hist(results, *, bins: int = 40, title=None):
    """Test-set distances of matching vs non-matching query-gallery pairs, one panel per run.

    The distance curves of the loss comparison at test time: for each run the histogram
    (density) of the single-query distances (L2-normalised features, Euclidean, in [0, 2])
    of true-match pairs and of different-identity pairs, as
    :func:`reidnb.evaluation.retrieval.pair_distances` splits them (Market-1501 protocol:
    same identity and camera and pid -1 are left out). The ranking loss should pull the
    positives towards 0 (its lambda term pushes S -> 1) and leave a gap to the negatives.

    Args:
        results: ``{run label: EvalResult}`` (e.g. ``run.result`` of each stage-2 loss).
        bins: histogram bins over [0, 2].
        title: figure title.

    Returns:
        matplotlib Figure.

    Raises:
        ValueError: ``results`` is empty.
    """
    import matplotlib.pyplot as plt

    items = list(results.items())
    if not items:
        raise ValueError("plot_pair_distance_hist: no results to draw")
    fig, axes = plt.subplots(1, len(items), figsize=(3.4 * len(items), 2.9), sharey=True,
                             squeeze=False)
    edges = np.linspace(0.0, 2.0, bins + 1)
    for ax, (label, res) in zip(axes[0], items):
        pos, neg = pair_distances(res)
        ax.hist(neg, bins=edges, density=True, alpha=0.55, color="tab:orange",
                label=f"different id ({len(neg)})")
        ax.hist(pos, bins=edges, density=True, alpha=0.65, color="tab:blue",
                label=f"same id ({len(pos)})")
        ax.set_title(f"{label}\nmean {pos.mean():.2f} vs {neg.mean():.2f}", fontsize="small")
        ax.set_xlabel("query-gallery distance")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("density")
    axes[0, -1].legend(fontsize="x-small", loc="upper left")
    fig.suptitle(title or "test-set pair distances (single query)", fontsize="medium")
    fig.tight_layout()
    return fig


def plot_top1_pairs(query_rgb, rows, *, names=("baseline", "+SAB"), alpha: float = 0.45,
                    title=None):
    """Fig. 3-style panel: each query with the top-1 match of two models and their
    activation maps, bordered green (same identity) or red (another identity).

    Args:
        query_rgb: uint8 [Q, H, W, 3] query images.
        rows: per query a list of two dicts (one per model) with ``rgb`` uint8 [H, W, 3]
            (the top-1 gallery image), ``correct`` bool, ``query_map`` and ``match_map``
            float [H, W] in [0, 1] (activation maps of the query and of the match under
            that model), ``dist`` float.
        names: the two models' names.

    Returns:
        matplotlib Figure with Q rows x 5 columns: query; model A's map on the query, A's
        top-1 with its map; model B's map on the query, B's top-1 with its map.

    Raises:
        ValueError: counts that disagree.
    """
    import matplotlib.pyplot as plt

    query_rgb = np.asarray(query_rgb)
    if len(rows) != len(query_rgb) or not len(rows) or any(len(r) != 2 for r in rows):
        raise ValueError(f"plot_top1_pairs: {len(query_rgb)} queries and {len(rows)} rows; "
                         "expected one row of two models per query")
    fig, axes = plt.subplots(len(rows), 5, figsize=(7.5, 2.5 * len(rows)), squeeze=False)
    for i, pair in enumerate(rows):
        axes[i, 0].imshow(query_rgb[i])
        axes[i, 0].set_title("query", fontsize=7)
        for k, (name, r) in enumerate(zip(names, pair)):
            qa, ma = axes[i, 1 + 2 * k], axes[i, 2 + 2 * k]
            qa.imshow(query_rgb[i])
            qa.imshow(r["query_map"], cmap="jet", alpha=alpha, vmin=0, vmax=1)
            qa.set_title(f"{name}\non the query", fontsize=7)
            ma.imshow(r["rgb"])
            ma.imshow(r["match_map"], cmap="jet", alpha=alpha, vmin=0, vmax=1)
            ma.set_title(f"{name}\ntop-1, d = {r['dist']:.2f}", fontsize=7)
            for s in ma.spines.values():
                s.set_edgecolor("tab:green" if r["correct"] else "tab:red")
                s.set_linewidth(4)
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(title or "top-1 retrieval: green = same identity, red = another identity",
                 fontsize="small")
    fig.tight_layout()
    return fig

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


# ============================================================================= training
# (section owned by the engine helper: Trainer histories and ranked lists)

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
        junk = ((g_pids[order] == q_pids[qi]) & (g_cams[order] == q_cams[qi])) \
            | (g_pids[order] == -1)
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


# =========================================================================== 02_maskreid
# (section owned by the 02_maskreid helper: masked inputs, pair distances, lambda x alpha)

def plot_mask_triplets(records, n: int = 6, *, title=None):
    """Images, person masks and masked images side by side (MaskReID input, 000 Fig. 2).

    Args:
        records: :class:`reidnb.data.datasets.Record` s with a ``mask`` path (the
            synthetic set's exact masks or ``reidnb.masks.attach_masks`` output); the
            first ``n`` are drawn, one column each.
        n: columns.
        title: figure title.

    Rows: the image; the 0/255 mask (white = person); the masked image, background set to
    black as the network's mask stream sees it (before normalisation, recipes.md §1.7).

    Returns:
        matplotlib Figure.

    Raises:
        ValueError: no records, or a record without a mask (names its image).
    """
    import matplotlib.pyplot as plt
    from PIL import Image

    recs = list(records)[:n]
    if not recs:
        raise ValueError("plot_mask_triplets: no records to draw")
    fig, axes = plt.subplots(3, len(recs), figsize=(1.25 * len(recs) + 0.6, 5.2),
                             squeeze=False)
    for j, r in enumerate(recs):
        if not getattr(r, "mask", None):
            raise ValueError(f"plot_mask_triplets: {r.path} has no mask; attach masks first "
                             "(reidnb.masks.attach_masks)")
        img = np.asarray(Image.open(r.path).convert("RGB"))                  # [H, W, 3]
        mask = Image.open(r.mask).convert("L").resize(img.shape[1::-1], Image.NEAREST)
        m = (np.asarray(mask) > 127)                                          # [H, W] bool
        for i, (pic, cmap) in enumerate(((img, None), (m, "gray"),
                                         (img * m[..., None].astype(img.dtype), None))):
            ax = axes[i, j]
            ax.imshow(pic, cmap=cmap, vmin=0, vmax=1 if cmap else None)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0, j].set_title(f"id {r.pid}, cam {r.camid + 1}", fontsize="x-small")
    for i, label in enumerate(("image", "mask", "masked image")):
        axes[i, 0].set_ylabel(label, fontsize="small")
    if title:
        fig.suptitle(title, fontsize="medium")
    fig.tight_layout()
    return fig


def plot_pair_distance_hist(results, *, bins: int = 40, title=None):
    """Test-set distances of matching vs non-matching query-gallery pairs, one panel per run.

    The distance curves of the loss comparison at test time: for each run the histogram
    (density) of the single-query distances (L2-normalised features, Euclidean, in [0, 2])
    of true-match pairs and of different-identity pairs, as
    :func:`reidnb.maskreid_recipes.pair_distances` splits them (Market-1501 protocol: same
    identity and camera and pid -1 are left out). The ranking loss should pull the
    positives towards 0 (its lambda term pushes S -> 1) and leave a gap to the negatives.

    Args:
        results: ``{run label: EvalResult}`` (e.g. ``run.result`` of each stage-2 loss).
        bins: histogram bins over [0, 2].
        title: figure title.

    Returns:
        matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    from reidnb.maskreid_recipes import pair_distances

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


def plot_grid_heatmaps(tables, *, title=None, fmt: str = "{:.1f}"):
    """lambda x alpha heatmaps side by side (000 Table 6 / 003 Table 4; measured vs published).

    Args:
        tables: ``{panel title: DataFrame}`` with lambda as the index and alpha as the
            columns (:func:`reidnb.maskreid_recipes.grid_table`); NaN cells stay blank.
        fmt: cell text format.

    Returns:
        matplotlib Figure. Each panel has its own colour scale (synthetic and published
        numbers live on different scales; read the pattern, not the colours across panels).
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


# ================================================================================= 03_sal
# (section owned by the SAL notebook helper: 004 Fig. 3 attention overlays)

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _to_rgb(images, denormalize: bool):
    """[N,3,H,W] tensor/array (ImageNet-normalised when ``denormalize``) -> float [N,H,W,3]
    in [0, 1]; [N,H,W,3] uint8 arrays are scaled to [0, 1]."""
    import numpy as np

    x = images.detach().cpu().numpy() if hasattr(images, "detach") else np.asarray(images)
    if x.ndim != 4:
        raise ValueError(f"images must be [N,3,H,W] or [N,H,W,3], got shape {x.shape}")
    if x.shape[1] == 3 and x.shape[-1] != 3:
        x = x.transpose(0, 2, 3, 1)
        if denormalize:
            x = x * np.asarray(_IMAGENET_STD) + np.asarray(_IMAGENET_MEAN)
    elif x.dtype == np.uint8:
        x = x / 255.0
    return np.clip(x.astype(np.float32), 0.0, 1.0)


def _upsample(m, height: int, width: int):
    """One [h, w] map -> [height, width] (bilinear), scaled to [0, 1] by its own max."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    t = torch.as_tensor(np.asarray(m, dtype=np.float32))[None, None]
    up = F.interpolate(t, size=(height, width), mode="bilinear", align_corners=False)[0, 0]
    up = up.clamp_min(0).numpy()
    top = float(up.max())
    return up / top if top > 0 else up


def plot_attention_overlays(images, maps_by_run, *, stage_names=("stage4", "stage5", "stage6"),
                            alpha: float = 0.5, cmap: str = "jet", denormalize: bool = True,
                            titles=None):
    """Attention maps of the same images from several trained networks (004 Fig. 3).

    Layout as the paper's figure: one row per image; column (a) the image, then for each
    run one column per stage map overlaid on the image (Fig. 3 (b-d) without SAC,
    (e-g) with SAC when ``maps_by_run`` is ``{"without SAC": ..., "with SAC": ...}``).

    Args:
        images: float [N,3,H,W] (torch or numpy; ImageNet-normalised as the models' input
            when ``denormalize``) or uint8/float [N,H,W,3] in display range.
        maps_by_run: ``{run label: (a4, a5, a6)}``, each map [N,h,w] (torch or numpy; e.g.
            ``SAL.forward(x, return_attention=True)``); any number of maps per run, all
            runs the same count. Each map is upsampled bilinearly to H x W and scaled by
            its own maximum (Eq. 1 maps are L2-normalised, so only the shape matters).
        stage_names: column labels of the maps of a run.
        alpha: opacity of the heat map over the image. cmap: matplotlib colormap name.
        titles: optional row labels (e.g. identity ids), one per image.

    Returns:
        matplotlib Figure.

    Raises:
        ValueError: empty ``maps_by_run``, or maps whose count/number of images do not
            match the images or each other.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    rgb = _to_rgb(images, denormalize)
    n, height, width = rgb.shape[:3]
    if not maps_by_run:
        raise ValueError("maps_by_run is empty; expected {run label: (a4, a5, a6)}")
    runs = {k: [m.detach().cpu().numpy() if hasattr(m, "detach") else np.asarray(m)
                for m in v] for k, v in maps_by_run.items()}
    n_maps = {len(v) for v in runs.values()}
    if len(n_maps) != 1:
        raise ValueError(f"every run needs the same number of maps, got "
                         f"{ {k: len(v) for k, v in runs.items()} }")
    k = n_maps.pop()
    for name, maps in runs.items():
        bad = [m.shape for m in maps if m.ndim != 3 or m.shape[0] != n]
        if bad:
            raise ValueError(f"run {name!r}: maps must be [N={n}, h, w], got {bad}")
    if titles is not None and len(titles) != n:
        raise ValueError(f"titles has {len(titles)} entries for {n} images")
    ncol = 1 + k * len(runs)
    fig, axes = plt.subplots(n, ncol, figsize=(1.35 * ncol, 2.2 * n), squeeze=False)
    letters = "abcdefghijklmnopqrstuvwxyz"
    for i in range(n):
        axes[i, 0].imshow(rgb[i])
        if titles is not None:
            axes[i, 0].set_ylabel(str(titles[i]), fontsize="small")
        col = 1
        for maps in runs.values():
            for m in maps:
                axes[i, col].imshow(rgb[i])
                axes[i, col].imshow(_upsample(m[i], height, width), cmap=cmap, alpha=alpha,
                                    vmin=0, vmax=1)
                col += 1
    axes[0, 0].set_title("(a) image", fontsize="x-small")
    col = 1
    for name, maps in runs.items():
        for j in range(k):
            label = stage_names[j] if j < len(stage_names) else f"map {j + 1}"
            run = str(name).replace(" (", "\n(")    # "with SAC (setting 8)" on two lines
            axes[0, col].set_title(f"({letters[col % 26]}) {label}\n{run}", fontsize="x-small")
            col += 1
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


# ================================================================================ data
# (section owned by the data helper: 00_data tour -- montages, ids per camera, sizes)

#: RGB colour per part label 0..7 (reidnb.data.synthetic.PART_NAMES order).
PART_COLORS = np.array([[0, 0, 0], [230, 60, 60], [80, 200, 80], [60, 90, 230],
                        [245, 210, 50], [220, 70, 220], [60, 210, 220], [250, 250, 250]],
                       dtype=np.uint8)
PART_LABELS = ("background", "head", "upper arm", "lower arm", "chest", "upper leg",
               "lower leg", "foot")


def plot_montage(records, n: int = 8, show_mask: bool = True, show_parts: bool = True,
                 seed: int = 0):
    """A montage of ``n`` random records: images, then their masks and part maps.

    Args:
        records: sequence of :class:`reidnb.data.datasets.Record` (``path``, ``pid``,
            ``camid``, optional ``mask`` / ``parts`` PNG paths).
        n: images to show (fewer if ``records`` is shorter).
        show_mask: add a row of foreground masks (0/255 PNGs).
        show_parts: add a row of part maps (labels 0..7) coloured with
            :data:`PART_COLORS`, with a legend.
        seed: picks the records (``np.random.default_rng(seed)``).

    Returns:
        matplotlib Figure with 1-3 rows of ``n`` axes; titles ``pid / c<camid+1>``.

    Raises:
        ValueError: no records, or a row is asked for and a chosen record has no
            ``mask`` / ``parts`` path (real data: pass ``show_mask=False,
            show_parts=False``, or attach maps with reidnb.masks first).
    """
    from matplotlib.patches import Patch
    from PIL import Image

    records = list(records)
    if not records:
        raise ValueError("plot_montage: no records to show")
    rng = np.random.default_rng(seed)
    pick = [records[i] for i in sorted(rng.choice(len(records), min(n, len(records)),
                                                  replace=False))]
    rows = ["img"]
    for want, attr in ((show_mask, "mask"), (show_parts, "parts")):
        if not want:
            continue
        missing = [r.path for r in pick if not getattr(r, attr, None)]
        if missing:
            raise ValueError(f"plot_montage: show_{attr}=True but {len(missing)} record(s) "
                             f"have no {attr} path (e.g. {missing[0]}); pass "
                             f"show_{attr}=False or attach maps (reidnb.masks) first")
        rows.append(attr)
    fig, axes = plt.subplots(len(rows), len(pick), figsize=(1.1 * len(pick), 2.2 * len(rows)),
                             squeeze=False)
    for j, r in enumerate(pick):
        for i, kind in enumerate(rows):
            ax = axes[i, j]
            if kind == "img":
                ax.imshow(Image.open(r.path).convert("RGB"))
                ax.set_title(f"{r.pid} / c{r.camid + 1}", fontsize="small")
            elif kind == "mask":
                ax.imshow(np.asarray(Image.open(r.mask)), cmap="gray", vmin=0, vmax=255)
            else:
                lab = np.asarray(Image.open(r.parts))
                if lab.max() > 7:
                    raise ValueError(f"plot_montage: {r.parts} has label {lab.max()}; "
                                     "expected part labels 0..7")
                ax.imshow(PART_COLORS[lab])
            ax.set_xticks([])
            ax.set_yticks([])
        for i, kind in enumerate(rows):
            axes[i, 0].set_ylabel({"img": "image", "mask": "mask", "parts": "parts"}[kind])
    if "parts" in rows:
        handles = [Patch(facecolor=PART_COLORS[k] / 255, edgecolor="grey", label=f"{k} {name}")
                   for k, name in enumerate(PART_LABELS)]
        fig.legend(handles=handles, loc="lower center", ncol=4, fontsize="small",
                   frameon=False)
        fig.tight_layout(rect=(0, 0.08, 1, 1))
    else:
        fig.tight_layout()
    return fig


def plot_ids_per_camera(dataset):
    """Identities seen by each camera, per split (bars), as Market-1501 Table/Fig. of
    Zheng et al. 2015 (dataset statistics).

    Args:
        dataset: :class:`reidnb.data.datasets.ReIDDataset` (``train``, ``query``,
            ``gallery`` record lists; camid 0-based). Gallery pids 0 (distractors) and -1
            (junk) are not identities and are left out.

    Returns:
        matplotlib Figure: x = camera ``c1..cN``, y = number of distinct identities,
        hue = split.
    """
    import pandas as pd
    import seaborn as sns

    rows = []
    for split in ("train", "query", "gallery"):
        seen = {(r.pid, r.camid) for r in getattr(dataset, split) if r.pid > 0 or split == "train"}
        for pid, camid in seen:
            rows.append((split, f"c{camid + 1}", pid))
    if not rows:
        raise ValueError(f"plot_ids_per_camera: {dataset!r} has no records")
    df = pd.DataFrame(rows, columns=["split", "camera", "pid"])
    counts = (df.groupby(["split", "camera"])["pid"].nunique().rename("identities")
              .reset_index())
    fig, ax = plt.subplots(figsize=(7, 3.2))
    sns.barplot(data=counts, x="camera", y="identities", hue="split",
                hue_order=["train", "query", "gallery"],
                order=sorted(counts["camera"].unique(), key=lambda c: int(c[1:])), ax=ax)
    ax.set_title(f"{dataset.name}: identities per camera")
    fig.tight_layout()
    return fig


def plot_image_sizes(records, *, max_images: int = 2000, seed: int = 0):
    """Histograms of image height and width (pixels) over (a sample of) ``records``.

    Only the image headers are read (PIL opens lazily). ``max_images`` records are
    sampled with ``np.random.default_rng(seed)`` when there are more.

    Returns:
        matplotlib Figure with two axes (height, width); the title gives the count and
        the most common size.
    """
    from collections import Counter

    from PIL import Image

    records = list(records)
    if not records:
        raise ValueError("plot_image_sizes: no records")
    if len(records) > max_images:
        idx = np.random.default_rng(seed).choice(len(records), max_images, replace=False)
        records = [records[i] for i in sorted(idx)]
    sizes = []
    for r in records:
        with Image.open(r.path) as im:
            sizes.append(im.size)                       # (W, H)
    w = np.array([s[0] for s in sizes])
    h = np.array([s[1] for s in sizes])
    fig, axes = plt.subplots(1, 2, figsize=(7, 2.8))
    for ax, v, name in ((axes[0], h, "height"), (axes[1], w, "width")):
        lo, hi = int(v.min()), int(v.max())
        ax.hist(v, bins=np.arange(lo, hi + 2) - 0.5 if hi - lo < 60 else 40)
        ax.set_xlabel(f"{name} (pixels)")
        ax.set_ylabel("images")
    (cw, ch), k = Counter(sizes).most_common(1)[0]
    fig.suptitle(f"{len(sizes)} images; most common {ch}x{cw} (H x W), {k} of them",
                 fontsize="medium")
    fig.tight_layout()
    return fig


# ======================================================================= 04_magnifiernet
# (section owned by the 04_magnifiernet helper: part masks, activation overlays, top-1
# retrieval, SFB vs AB, K-hat sweep; data gathering in reidnb/magnifiernet_recipes.py)

def _mn_part_legend(fig):
    from matplotlib.patches import Patch

    from .masks import PART_COLORS, PART_NAMES

    handles = [Patch(color=np.asarray(c) / 255.0, label=n)
               for c, n in zip(PART_COLORS, PART_NAMES)]
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize="x-small",
               frameon=False)


def plot_part_predictions(rgb, pseudo, predicted, *, titles=None, title=None):
    """Images, their pseudo part labels and the mask module's prediction (002 §3.1, M).

    Args:
        rgb: uint8 [N, H, W, 3] images.
        pseudo: int [N, H, W] part labels 0..7 used as training targets, or None (real
            query/gallery images have none).
        predicted: int [N, H', W'] predicted labels 0..7 (``magnifiernet_recipes.
            predicted_parts``: argmax at feature resolution, upsampled to the image).
        titles: optional caption per image.

    Returns:
        matplotlib Figure: one column per image, rows image / pseudo label / prediction,
        with the part colour legend (``reidnb.masks.PART_COLORS``).

    Raises:
        ValueError: the arrays disagree in their number of images.
    """
    import matplotlib.pyplot as plt

    from .masks import colorize_parts

    rgb = np.asarray(rgb)
    predicted = np.asarray(predicted)
    n = len(rgb)
    if len(predicted) != n or (pseudo is not None and len(pseudo) != n) or n == 0:
        raise ValueError(f"plot_part_predictions: {n} images, "
                         f"{None if pseudo is None else len(pseudo)} pseudo labels and "
                         f"{len(predicted)} predictions; expected equal, non-zero counts")
    rows = [("image", rgb)] + ([("pseudo label", pseudo)] if pseudo is not None else []) \
        + [("predicted (M)", predicted)]
    fig, axes = plt.subplots(len(rows), n, figsize=(1.1 * n + 0.6, 2.1 * len(rows) + 0.5),
                             squeeze=False)
    for r, (name, data) in enumerate(rows):
        for i in range(n):
            ax = axes[r, i]
            img = data[i] if name == "image" else colorize_parts(np.asarray(data[i]))
            ax.imshow(img, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_ylabel(name, fontsize="small")
            if r == 0 and titles is not None:
                ax.set_title(str(titles[i]), fontsize=7)
    _mn_part_legend(fig)
    fig.suptitle(title or "pseudo part labels vs the mask module's prediction "
                 "(at feature resolution)", fontsize="small")
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


def plot_activation_overlays(rgb, maps, *, alpha: float = 0.5, cmap: str = "jet",
                             title=None):
    """Fig. 2-style activation overlays: one column per model, one row per image.

    Args:
        rgb: uint8 [N, H, W, 3] images.
        maps: ordered mapping name -> float [N, H, W] in [0, 1] (e.g.
            ``magnifiernet_recipes.activation_maps``: backbone activation mean_c F^2).
        alpha: overlay opacity.

    Returns:
        matplotlib Figure.

    Raises:
        ValueError: no maps, or a map whose shape is not [N, H, W] of the images.
    """
    import matplotlib.pyplot as plt

    rgb = np.asarray(rgb)
    if not maps:
        raise ValueError("plot_activation_overlays: no activation maps")
    for name, m in maps.items():
        if np.asarray(m).shape != rgb.shape[:3]:
            raise ValueError(f"plot_activation_overlays: map {name!r} is "
                             f"{np.asarray(m).shape}, expected {rgb.shape[:3]} (N, H, W)")
    n, cols = len(rgb), 1 + len(maps)
    fig, axes = plt.subplots(n, cols, figsize=(1.25 * cols + 0.4, 2.2 * n), squeeze=False)
    for i in range(n):
        axes[i, 0].imshow(rgb[i])
        for j, (name, m) in enumerate(maps.items(), start=1):
            axes[i, j].imshow(rgb[i])
            axes[i, j].imshow(np.asarray(m[i]), cmap=cmap, alpha=alpha, vmin=0, vmax=1)
            if i == 0:
                axes[i, j].set_title(name, fontsize=7)
        if i == 0:
            axes[i, 0].set_title("image", fontsize=7)
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(title or "backbone activation (mean over channels of F², per image "
                 "scaled to [0, 1])", fontsize="small")
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


def plot_fusion_comparison(frame, *, title=None):
    """Fig. 4: SFB (GRU fusion) vs the ablation branch AB, rank-1 and mAP bars.

    Args:
        frame: long DataFrame with columns branch, metric, value (percent)
            (``magnifiernet_recipes.fig4_frame``).

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
            (``magnifiernet_recipes.fig5_frame``).

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

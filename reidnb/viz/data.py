"""Dataset figures: image montages, identities per camera, image sizes, masks and part maps.

Part maps are coloured with the package's one colour table (``PART_COLORS``,
``colorize_parts`` of :mod:`reidnb.data.parts`); nothing here defines colours.
"""
from __future__ import annotations

import numpy as np

from reidnb.data.parts import PART_COLORS, PART_NAMES, colorize_parts

__all__ = ["plot_mask_triplets", "plot_montage", "plot_ids_per_camera", "plot_image_sizes",
           "plot_part_predictions"]


def _part_legend(fig, fontsize: str = "small") -> None:
    """Legend of the part colours (``k name`` per label 0..7) below the axes of ``fig``."""
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=np.asarray(c) / 255.0, edgecolor="grey", label=f"{k} {name}")
               for k, (c, name) in enumerate(zip(PART_COLORS, PART_NAMES))]
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=fontsize, frameon=False)


def plot_mask_triplets(records, n: int = 6, *, title=None):
    """Images, person masks and masked images side by side (MaskReID input, 000 Fig. 2).

    Args:
        records: :class:`reidnb.data.datasets.Record` s with a ``mask`` path (the
            synthetic set's exact masks or ``reidnb.data.parts.attach_masks`` output); the
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
                             "(reidnb.data.parts.attach_masks)")
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


def plot_montage(records, n: int = 8, show_mask: bool = True, show_parts: bool = True,
                 seed: int = 0):
    """A montage of ``n`` random records: images, then their masks and part maps.

    Args:
        records: sequence of :class:`reidnb.data.datasets.Record` (``path``, ``pid``,
            ``camid``, optional ``mask`` / ``parts`` PNG paths).
        n: images to show (fewer if ``records`` is shorter).
        show_mask: add a row of foreground masks (0/255 PNGs).
        show_parts: add a row of part maps (labels 0..7) coloured with
            ``reidnb.data.parts.PART_COLORS``, with a legend.
        seed: picks the records (``np.random.default_rng(seed)``).

    Returns:
        matplotlib Figure with 1-3 rows of ``n`` axes; titles ``pid / c<camid+1>``.

    Raises:
        ValueError: no records, or a row is asked for and a chosen record has no
            ``mask`` / ``parts`` path (real data: pass ``show_mask=False,
            show_parts=False``, or attach maps with reidnb.data.parts first).
    """
    import matplotlib.pyplot as plt
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
                             f"show_{attr}=False or attach maps (reidnb.data.parts) first")
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
                ax.imshow(colorize_parts(lab))
            ax.set_xticks([])
            ax.set_yticks([])
        for i, kind in enumerate(rows):
            axes[i, 0].set_ylabel({"img": "image", "mask": "mask", "parts": "parts"}[kind])
    if "parts" in rows:
        _part_legend(fig)
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
    import matplotlib.pyplot as plt
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

    import matplotlib.pyplot as plt
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


def plot_part_predictions(rgb, pseudo, predicted, *, titles=None, title=None):
    """Images, their pseudo part labels and the mask module's prediction (002 §3.1, M).

    Args:
        rgb: uint8 [N, H, W, 3] images.
        pseudo: int [N, H, W] part labels 0..7 used as training targets, or None (real
            query/gallery images have none).
        predicted: int [N, H', W'] predicted labels 0..7 (``reidnb.papers.magnifiernet.
            predicted_parts``: argmax at feature resolution, upsampled to the image).
        titles: optional caption per image.

    Returns:
        matplotlib Figure: one column per image, rows image / pseudo label / prediction,
        with the part colour legend (``reidnb.data.parts.PART_COLORS``).

    Raises:
        ValueError: the arrays disagree in their number of images.
    """
    import matplotlib.pyplot as plt

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
    _part_legend(fig, "x-small")
    fig.suptitle(title or "pseudo part labels vs the mask module's prediction "
                 "(at feature resolution)", fontsize="small")
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig

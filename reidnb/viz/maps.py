"""Spatial maps over images: the one heat-map overlay figure and the activation maps of a model.

:func:`plot_overlays` draws any maps (SAL's stage attention maps, 004 Fig. 3; MagnifierNet's
backbone activation, 002 Fig. 2) over their images; :func:`plot_attention_overlays` and
:func:`plot_activation_overlays` are its two notebook-facing forms. :func:`activation_maps`
computes a model's map through the model contract ``model(x, return_featuremaps=True)``
with :func:`reidnb.losses.attention_map` (004 Eq. 1: mean over channels of F^2,
L2-normalised).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from reidnb.data.transforms import denormalize as _denormalize
from reidnb.losses import attention_map

__all__ = ["plot_overlays", "plot_attention_overlays", "plot_activation_overlays",
           "activation_maps"]

_LETTERS = "abcdefghijklmnopqrstuvwxyz"


@torch.no_grad()
def activation_maps(model: torch.nn.Module, x: torch.Tensor, **inputs: Any) -> np.ndarray:
    """Spatial activation of a model's last feature map, one map per image.

    ``a = mean_C F^2`` over the channels of ``F = model(x, return_featuremaps=True)``
    [N, C, h, w] (the reidnb model contract, ``reidnb/models/__init__.py``), each map
    L2-normalised over its h*w positions: :func:`reidnb.losses.attention_map`, SAL's
    Eq. 1 (004), and the Fig. 2 activation of MagnifierNet (002) before its per-image
    [0, 1] scaling. The model runs in eval mode without gradient on the device of its
    parameters; its training flag is restored.

    Args:
        model: a reidnb model (or anything with that ``forward`` keyword).
        x: float [N, 3, H, W], normalised as the model's input.
        **inputs: extra keyword inputs of the model (e.g. ``mask=`` for MaskReID,
            ``parts=`` for MagnifierNet), moved to the same device.

    Returns:
        float32 NumPy [N, h, w] (feature-map resolution), each map of unit L2 norm (an
        all-zero map stays zero). Draw with :func:`plot_overlays` (it upsamples).

    Raises:
        TypeError: the model does not return a [N, C, h, w] tensor for
            ``return_featuremaps=True``.
    """
    dev = next((p.device for p in model.parameters()), x.device)
    was = model.training
    model.eval()
    try:
        kw = {k: (v.to(dev) if isinstance(v, torch.Tensor) else v) for k, v in inputs.items()}
        f = model(x.to(dev), return_featuremaps=True, **kw)
    finally:
        model.train(was)
    if not isinstance(f, torch.Tensor) or f.ndim != 4:
        what = f"shape {tuple(f.shape)}" if isinstance(f, torch.Tensor) else type(f).__name__
        raise TypeError(f"activation_maps: {type(model).__name__}(x, return_featuremaps=True) "
                        f"must return a [N, C, h, w] tensor, got {what}")
    n, _, h, w = f.shape
    return attention_map(f.float()).view(n, h, w).cpu().numpy().astype(np.float32)


def _to_rgb(images: Any, denormalize: bool) -> np.ndarray:
    """[N,3,H,W] tensor/array (ImageNet-normalised when ``denormalize``, undone with
    :func:`reidnb.data.transforms.denormalize`) -> float32 [N,H,W,3] in [0, 1];
    [N,H,W,3] uint8 arrays are scaled to [0, 1], float ones clipped."""
    x = images.detach().cpu().numpy() if hasattr(images, "detach") else np.asarray(images)
    if x.ndim != 4:
        raise ValueError(f"images must be [N,3,H,W] or [N,H,W,3], got shape {x.shape}")
    if x.shape[1] == 3 and x.shape[-1] != 3:
        if denormalize:
            x = _denormalize(torch.from_numpy(np.asarray(x, dtype=np.float64))).numpy()
        x = x.transpose(0, 2, 3, 1)
    elif x.dtype == np.uint8:
        x = x / 255.0
    return np.clip(x.astype(np.float32), 0.0, 1.0)


def _upsample(m: Any, height: int, width: int, rescale: bool = True) -> np.ndarray:
    """One [h, w] map -> float32 [height, width] (bilinear; the identity at equal size);
    with ``rescale`` negative values are cut and the map divided by its own max."""
    t = torch.as_tensor(np.asarray(m, dtype=np.float32))[None, None]
    up = F.interpolate(t, size=(height, width), mode="bilinear", align_corners=False)[0, 0]
    if not rescale:
        return up.numpy()
    up = up.clamp_min(0).numpy()
    top = float(up.max())
    return up / top if top > 0 else up


def _as_maps(v: Any) -> list[np.ndarray]:
    """One map stack [N, h, w] or a sequence of them -> list of NumPy arrays."""
    items = [v] if hasattr(v, "ndim") else list(v)
    return [m.detach().cpu().numpy() if hasattr(m, "detach") else np.asarray(m)
            for m in items]


def plot_overlays(images: Any, maps: Mapping[str, Any], *,
                  map_names: Sequence[str] | None = None, row_labels: Sequence | None = None,
                  alpha: float = 0.5, cmap: str = "jet", denormalize: bool = True,
                  rescale: bool = True, lettered: bool = True, title: str | None = None):
    """Heat maps of several runs over the same images: one row per image.

    Column (a) is the image; then, for each run of ``maps`` in order, one column per map
    of that run, the map upsampled bilinearly to the image (:func:`_upsample`) and drawn
    with ``cmap`` at opacity ``alpha`` on the value range [0, 1]. The one overlay figure
    of the workbook: SAL attention (004 Fig. 3, three stage maps per run) and MagnifierNet
    activation (002 Fig. 2, one map per model).

    Args:
        images: float [N,3,H,W] (torch or NumPy; ImageNet-normalised as the models' input
            when ``denormalize``) or uint8 / float [N,H,W,3] in display range.
        maps: ``{run label: maps}`` where ``maps`` is one [N,h,w] map stack or a sequence
            of them (torch or NumPy; any h, w), every run the same count.
        map_names: labels of the maps of a run (e.g. ``("stage4", "stage5", "stage6")``);
            default none for a single map, ``map j`` otherwise.
        row_labels: optional y label per image (e.g. identity ids).
        rescale: divide each upsampled map by its own maximum (negative values cut):
            right for L2-normalised maps, whose scale means nothing (004 Eq. 1). False
            draws the values as given (maps already in [0, 1]).
        lettered: column titles ``(a) image``, ``(b) ...`` as in the papers' figures.
        title: figure title (none by default).

    Returns:
        matplotlib Figure with N x (1 + maps per run x runs) axes.

    Raises:
        ValueError: empty ``maps``; runs with different map counts; a map that is not
            [N, h, w]; ``row_labels`` of another length; images not 4-D.
    """
    import matplotlib.pyplot as plt

    rgb = _to_rgb(images, denormalize)
    n, height, width = rgb.shape[:3]
    if not maps:
        raise ValueError("maps is empty; expected {run label: map [N,h,w] or (maps...)}")
    runs = {k: _as_maps(v) for k, v in maps.items()}
    n_maps = {len(v) for v in runs.values()}
    if len(n_maps) != 1:
        raise ValueError(f"every run needs the same number of maps, got "
                         f"{ {k: len(v) for k, v in runs.items()} }")
    k = n_maps.pop()
    for name, ms in runs.items():
        bad = [m.shape for m in ms if m.ndim != 3 or m.shape[0] != n]
        if bad:
            raise ValueError(f"run {name!r}: maps must be [N={n}, h, w], got {bad}")
    if row_labels is not None and len(row_labels) != n:
        raise ValueError(f"row_labels has {len(row_labels)} entries for {n} images")
    ncol = 1 + k * len(runs)
    fig, axes = plt.subplots(n, ncol, figsize=(1.35 * ncol, 2.2 * n), squeeze=False)
    for i in range(n):
        axes[i, 0].imshow(rgb[i])
        if row_labels is not None:
            axes[i, 0].set_ylabel(str(row_labels[i]), fontsize="small")
        col = 1
        for ms in runs.values():
            for m in ms:
                axes[i, col].imshow(rgb[i])
                axes[i, col].imshow(_upsample(m[i], height, width, rescale), cmap=cmap,
                                    alpha=alpha, vmin=0, vmax=1)
                col += 1
    axes[0, 0].set_title("(a) image" if lettered else "image", fontsize="x-small")
    col = 1
    for name, ms in runs.items():
        run = str(name).replace(" (", "\n(")        # "with SAC (setting 8)" on two lines
        for j in range(k):
            if map_names is not None and j < len(map_names):
                label = f"{map_names[j]}\n{run}"
            else:
                label = run if k == 1 else f"map {j + 1}\n{run}"
            prefix = f"({_LETTERS[col % 26]}) " if lettered else ""
            axes[0, col].set_title(prefix + label, fontsize="x-small")
            col += 1
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize="small")
    fig.tight_layout()
    return fig


def plot_attention_overlays(images, maps_by_run, *, stage_names=("stage4", "stage5", "stage6"),
                            alpha: float = 0.5, cmap: str = "jet", denormalize: bool = True,
                            titles=None):
    """Attention maps of the same images from several trained networks (004 Fig. 3).

    Layout as the paper's figure: one row per image; column (a) the image, then for each
    run one column per stage map overlaid on the image (Fig. 3 (b-d) without SAC,
    (e-g) with SAC when ``maps_by_run`` is ``{"without SAC": ..., "with SAC": ...}``).
    :func:`plot_overlays` with ``rescale=True``, lettered titles.

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
    return plot_overlays(images, maps_by_run, map_names=stage_names, row_labels=titles,
                         alpha=alpha, cmap=cmap, denormalize=denormalize, rescale=True,
                         lettered=True)


def plot_activation_overlays(rgb, maps, *, alpha: float = 0.5, cmap: str = "jet",
                             title=None):
    """Fig. 2-style activation overlays (002): one column per model, one row per image.

    :func:`plot_overlays` with one map per model, drawn as given (no rescaling).

    Args:
        rgb: uint8 [N, H, W, 3] images.
        maps: ordered mapping name -> float [N, H, W] in [0, 1] at the images' size (e.g.
            ``reidnb.papers.magnifiernet.activation_maps``: backbone activation mean_c F^2).
        alpha: overlay opacity.

    Returns:
        matplotlib Figure.

    Raises:
        ValueError: no maps, or a map whose shape is not [N, H, W] of the images.
    """
    rgb = np.asarray(rgb)
    if not maps:
        raise ValueError("plot_activation_overlays: no activation maps")
    for name, m in maps.items():
        if np.asarray(m).shape != rgb.shape[:3]:
            raise ValueError(f"plot_activation_overlays: map {name!r} is "
                             f"{np.asarray(m).shape}, expected {rgb.shape[:3]} (N, H, W)")
    return plot_overlays(rgb, {k: np.asarray(v) for k, v in maps.items()}, alpha=alpha,
                         cmap=cmap, denormalize=False, rescale=False, lettered=False,
                         title=title or "backbone activation (mean over channels of F², "
                                        "per image scaled to [0, 1])")

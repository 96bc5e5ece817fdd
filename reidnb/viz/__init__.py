"""Figures of the workbook: every function takes data and returns a matplotlib Figure.

Notebooks only call these (``from reidnb import viz; viz.plot_x(...)``). Re-exports:

- :mod:`.curves`: distance and loss curves over training, measured vs published numbers.
- :mod:`.retrieval`: ranked lists, top-1 pairs of two models, pair-distance histograms.
- :mod:`.maps`: the heat-map overlay (:func:`plot_overlays`; its SAL and MagnifierNet forms
  :func:`plot_attention_overlays`, :func:`plot_activation_overlays`) and
  :func:`activation_maps` of a model.
- :mod:`.data`: montages, identities per camera, image sizes, mask triplets, part maps.
- :mod:`.tables`: lambda x alpha heat maps, fusion-branch bars, K-hat sweeps.
- :mod:`.forest`: :func:`plot_forest`, every compared pair's measured difference with its
  interval beside the published one.
- :func:`save_figure`: every notebook saves ``<output_dir>/figures/<notebook>/<name>.png``.

viz sits above data, models, losses and evaluation and below the paper layer: nothing here
imports ``reidnb.papers`` or a recipe module.
"""
from __future__ import annotations

from .curves import plot_distance_curves, plot_loss_curves, plot_measured_vs_published
from .forest import plot_forest
from .data import (plot_ids_per_camera, plot_image_sizes, plot_mask_triplets, plot_montage,
                   plot_part_predictions)
from .maps import (activation_maps, plot_activation_overlays, plot_attention_overlays,
                   plot_overlays)
from .retrieval import plot_pair_distance_hist, plot_ranked_list, plot_top1_pairs
from .save import save_figure
from .tables import plot_fusion_comparison, plot_grid_heatmaps, plot_k_hat_sweep

__all__ = [
    "plot_measured_vs_published", "plot_distance_curves", "plot_loss_curves",
    "plot_ranked_list", "plot_top1_pairs", "plot_pair_distance_hist",
    "plot_overlays", "plot_attention_overlays", "plot_activation_overlays",
    "activation_maps",
    "plot_mask_triplets", "plot_montage", "plot_ids_per_camera", "plot_image_sizes",
    "plot_part_predictions",
    "plot_grid_heatmaps", "plot_fusion_comparison", "plot_k_hat_sweep", "save_figure",
    "plot_forest",
]

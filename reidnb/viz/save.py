"""Where every notebook's figures go: ``<output_dir>/figures/<notebook>/<name>.png``."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.utils import atomic_path

__all__ = ["save_figure"]


def save_figure(fig: Any, cfg: Any, name: str, *, dpi: int = 120) -> Path:
    """Save a matplotlib figure as ``<cfg.output_dir>/figures/<cfg.notebook>/<name>.png``.

    Written atomically (a reader never sees half a PNG); ``bbox_inches="tight"``.

    Args:
        fig: a ``matplotlib.figure.Figure``. cfg: the notebook's config (``output_dir``,
            ``notebook``). name: file stem, e.g. ``"distance_curves"``. dpi: dots per inch.

    Returns:
        the path written.

    Raises:
        ValueError: an empty name or one with a path separator.
    """
    if not name or "/" in name or "\\" in name:
        raise ValueError(f"save_figure: name must be a plain file stem, got {name!r}")
    path = Path(cfg.output_dir) / "figures" / cfg.notebook / f"{name}.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    return path

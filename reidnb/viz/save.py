"""Where every notebook's figures go: ``<output_dir>/figures/<notebook>/<name>.png``."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.utils import atomic_path

__all__ = ["save_figure"]


def save_figure(fig: Any, cfg: Any, name: str, *, dpi: int = 120, show: bool = True) -> Path:
    """Save a matplotlib figure as ``<cfg.output_dir>/figures/<cfg.notebook>/<name>.png``.

    Written atomically (a reader never sees half a PNG); ``bbox_inches="tight"``. Inside a
    notebook (IPython) with ``show``, the saved PNG is displayed and the figure closed, so
    the inline backend does not draw it a second time (figures are most of the cost of
    re-rendering a notebook whose runs are all in the run store).

    Args:
        fig: a ``matplotlib.figure.Figure``, or None (nothing drawn: the path is returned
            and nothing is written). cfg: the notebook's config (``output_dir``,
            ``notebook``). name: file stem, e.g. ``"distance_curves"``. dpi: dots per inch.
        show: display the saved PNG in a notebook (no effect outside IPython).

    Returns:
        the path written.

    Raises:
        ValueError: an empty name or one with a path separator.
    """
    if not name or "/" in name or "\\" in name:
        raise ValueError(f"save_figure: name must be a plain file stem, got {name!r}")
    path = Path(cfg.output_dir) / "figures" / cfg.notebook / f"{name}.png"
    if fig is None:
        return path
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    if show and _in_ipython():
        import matplotlib.pyplot as plt
        from IPython.display import Image, display

        display(Image(filename=str(path)))
        plt.close(fig)
    return path


def _in_ipython() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return get_ipython() is not None

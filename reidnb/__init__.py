"""reidnb: a notebook-driven reproduction workbook for deep person re-identification.

Papers reproduced (see ``notebooks/`` and DESIGN.md): MaskReID (ICME short and long
versions), the batch-contrastive loss, MagnifierNet and self-attention learning (SAL).

``reidnb.load_run(paper, variant, output_dir=..., profile="paper", **params)`` gives a
finished variant from the run store (trained by ``python -m reidnb train`` or a notebook)
without training; it is resolved lazily, so ``import reidnb`` stays light.
"""
import importlib as _importlib
from typing import Any as _Any

__version__ = "0.1.0"
__all__ = ["load_run", "__version__"]


def __getattr__(name: str) -> _Any:
    """Lazy top-level names: ``load_run`` is the paper layer's (``papers/cli.py``
    :func:`load_run`: a finished variant's Run(s); FileNotFoundError when not trained)."""
    if name == "load_run":
        return _importlib.import_module(".papers.cli", __name__).load_run
    raise AttributeError(f"module 'reidnb' has no attribute {name!r}")

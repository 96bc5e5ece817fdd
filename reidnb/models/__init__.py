"""Networks of the workbook, built by name: ``build_model(name, num_classes, **kw)``.

A model file registers its constructors with ``@register_model("name")`` (as timm's
``_registry.py``); unknown names fail loudly as in torchreid's ``models/__init__.py``.

Model contract (DESIGN.md, notes/contracts.md):
* training mode: ``forward(x) -> dict`` with at least ``logits`` [N, num_classes],
  ``embeddings`` [N, D] (feature for the metric losses, not normalised) and
  ``featuremaps`` [N, C, h, w];
* eval mode: ``forward(x) -> Tensor [N, D]`` test feature (not normalised);
* ``forward(x, return_featuremaps=True) -> Tensor [N, C, h, w]`` in either mode;
* extra inputs (masks, part labels) as keyword arguments.

The papers' networks live in their own packages (``reidnb/papers/<paper>/model.py``) and
register themselves when the paper package (e.g. ``reidnb.papers.sal``) is imported;
``reidnb.papers.import_all()`` imports all four. ``build_model`` names the registered
ones when a name is unknown.
"""
from __future__ import annotations

from typing import Callable

import torch.nn as nn

__all__ = ["register_model", "build_model", "list_models", "ResNetBackbone"]

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str) -> Callable:
    """Decorator registering a model class or factory ``fn(num_classes, **kw)`` under ``name``.

    Re-registering the same definition (module re-import, ``importlib.reload``) replaces
    it; a different definition under a taken name raises ValueError.
    """
    def decorator(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        old = _MODELS.get(name)
        if old is not None and (old.__module__, old.__qualname__) != (fn.__module__, fn.__qualname__):
            raise ValueError(f"model name {name!r} is already registered by "
                             f"{old.__module__}.{old.__qualname__}")
        _MODELS[name] = fn
        return fn
    return decorator


def list_models() -> list[str]:
    """Sorted names of all registered models."""
    return sorted(_MODELS)


def build_model(name: str, num_classes: int, **kw) -> nn.Module:
    """Build the registered model ``name`` with ``num_classes`` identities.

    Raises:
        KeyError: ``name`` is not registered (the message lists the known names).
    """
    if name not in _MODELS:
        raise KeyError(f"Unknown model: {name}. Must be one of {list_models()} (a paper's "
                       "network is registered when its package is imported, e.g. "
                       "reidnb.papers.sal)")
    return _MODELS[name](num_classes, **kw)


from .backbones import ResNetBackbone  # noqa: E402

"""The Trainer's checkpoint format: layout, validation messages and RNG state.

``last.pt`` holds tensors and plain data only (``torch.load(weights_only=True)``); a file
of another model, other loss terms or an older layout is refused with
:class:`CheckpointError` naming the mismatched keys (DESIGN.md "Engine").
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "CHECKPOINT_KEYS", "CheckpointError",
           "read_checkpoint", "state_diff", "rng_state", "set_rng_state"]

#: Layout of ``last.pt``; bump when the keys below change (older files are refused).
CHECKPOINT_FORMAT = "reidnb.engine.Trainer"  # the layout id, stable across module moves
CHECKPOINT_VERSION = 1
CHECKPOINT_KEYS = ("meta", "model", "optimizer", "scheduler", "scaler", "losses", "epoch",
                   "epoch_iter", "iteration", "rng", "history")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be resumed by this Trainer (other model or older layout)."""


def _short(keys: Sequence[str], n: int = 8) -> str:
    keys = list(keys)
    more = f" ... ({len(keys) - n} more)" if len(keys) > n else ""
    return "[" + ", ".join(repr(k) for k in keys[:n]) + "]" + more


def state_diff(prefix: str, expected: Mapping[str, torch.Tensor],
                found: Mapping[str, Any]) -> list[str]:
    """Problems between a state dict this trainer expects and one in a checkpoint."""
    problems = []
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    shapes = [f"{k} {tuple(found[k].shape)} vs {tuple(expected[k].shape)}"
              for k in expected if k in found and torch.is_tensor(found[k])
              and torch.is_tensor(expected[k]) and found[k].shape != expected[k].shape]
    if missing:
        problems.append(f"{prefix} keys missing from the checkpoint: {_short(missing)}")
    if unexpected:
        problems.append(f"{prefix} keys in the checkpoint but not in this trainer: "
                        f"{_short(unexpected)}")
    if shapes:
        problems.append(f"{prefix} shape mismatches (checkpoint vs trainer): {_short(shapes)}")
    return problems


def rng_state() -> dict:
    """Python, NumPy and torch RNG states as tensors / plain data (weights_only-safe)."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    version, py_state, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
        "numpy": {"keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(gauss)},
        "python": {"version": int(version), "state": torch.tensor(py_state, dtype=torch.int64),
                   "gauss": py_gauss},
    }


def set_rng_state(state: Mapping) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() \
            and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["state"].tolist()), p["gauss"]))


def read_checkpoint(path: Path, *, model_class: str, terms: Sequence[str], optimizer: str,
                    model_state: Mapping[str, torch.Tensor],
                    loss_state: Mapping[str, torch.Tensor]) -> Mapping[str, Any]:
    """Load ``last.pt`` (``weights_only=True``) and check it fits the trainer described.

    Args:
        path: the checkpoint. model_class, terms, optimizer: the trainer's model class
            name, loss-term names and optimiser name. model_state, loss_state: its state
            dicts (keys and shapes are compared).

    Returns:
        the checkpoint dict (layout :data:`CHECKPOINT_KEYS`).

    Raises:
        CheckpointError: unreadable file, other layout/version (names the missing or
            unexpected top-level keys), other model class, or model / loss-term state keys
            or shapes that differ (names them), other term names or optimiser.
    """
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - re-raised with the path
        why = str(e).splitlines()[0] if str(e) else "empty file"
        raise CheckpointError(f"cannot load checkpoint {path} with weights_only=True "
                              f"({type(e).__name__}: {why}). "
                              "It is the run's resumable state: delete it to train the run "
                              "from the start (or its whole run folder)") from None
    if not isinstance(ck, Mapping):
        raise CheckpointError(f"{path}: expected a dict with keys {list(CHECKPOINT_KEYS)}, "
                              f"got {type(ck).__name__}")
    missing = [k for k in CHECKPOINT_KEYS if k not in ck]
    unexpected = sorted(set(ck) - set(CHECKPOINT_KEYS))
    meta = ck.get("meta") if isinstance(ck.get("meta"), Mapping) else {}
    if missing or unexpected or meta.get("format") != CHECKPOINT_FORMAT \
            or meta.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path} is not a reidnb Trainer checkpoint of layout version "
            f"{CHECKPOINT_VERSION} (found meta.format={meta.get('format')!r}, "
            f"meta.version={meta.get('version')!r}); missing top-level keys {missing}, "
            f"unexpected keys {unexpected}. Delete it or start with resume=False.")
    problems = []
    if meta.get("model_class") != model_class:
        problems.append(f"meta.model_class: checkpoint {meta.get('model_class')!r}, "
                        f"trainer {model_class!r}")
    if list(meta.get("terms", [])) != list(terms):
        problems.append(f"meta.terms: checkpoint {meta.get('terms')}, trainer "
                        f"{list(terms)}")
    if meta.get("optimizer") != optimizer:
        problems.append(f"meta.optimizer: checkpoint {meta.get('optimizer')!r}, trainer "
                        f"{optimizer!r}")
    problems += state_diff("model", model_state, ck["model"])
    problems += state_diff("losses", loss_state, ck["losses"])
    if problems:
        raise CheckpointError(f"checkpoint {path} does not match this trainer: "
                              + "; ".join(problems))
    return ck

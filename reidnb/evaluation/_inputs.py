"""Input checks and index helpers shared by the evaluation modules (private).

Id arrays become int64 NumPy vectors, distance matrices floating torch tensors (no copy for
NumPy float32/64), non-finite distances are located and named, and :func:`_segments`
expands (start, length) pairs into one index vector (used by the sparse rank counting
and the sparse re-ranking).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch


def _as_ids(x: Any, name: str) -> np.ndarray:
    """Ids (``pids`` / ``camids``) as a contiguous int64 [N] array; ValueError if not 1-D,
    TypeError if not integer (bool accepted)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one id per image), got shape {a.shape}")
    if a.size and not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.bool_)):
        raise TypeError(f"{name} must hold integers, got dtype {a.dtype}")
    return np.ascontiguousarray(a, dtype=np.int64)


def _as_dist(x: Any, name: str) -> torch.Tensor:
    """A distance matrix as a floating torch tensor (no copy for numpy float32/64)."""
    if isinstance(x, torch.Tensor):
        t = x.detach()
    else:
        a = np.asarray(x)
        if a.dtype == np.float16 or not np.issubdtype(a.dtype, np.floating):
            if not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
                raise TypeError(f"{name} must be numeric, got dtype {a.dtype}")
            a = a.astype(np.float64 if np.issubdtype(a.dtype, np.integer) else np.float32)
        if any(st < 0 for st in a.strides):                 # e.g. a[:, ::-1]
            a = np.ascontiguousarray(a)
        t = torch.from_numpy(a)
    if not t.is_floating_point():
        t = t.double()
    elif t.dtype in (torch.float16, torch.bfloat16):
        t = t.float()
    if t.ndim != 2:
        raise ValueError(f"{name} must be a 2-D matrix, got shape {tuple(t.shape)}")
    return t


def _check_finite_rows(t: torch.Tensor, name: str, rows: int = 1024, offset: int = 0) -> None:
    """ValueError naming the first non-finite entry of ``t`` (row index shifted by
    ``offset``), checked ``rows`` rows at a time."""
    for r0 in range(0, t.shape[0], rows):
        blk = t[r0:r0 + rows]
        if not bool(torch.isfinite(blk).all()):
            bad = (~torch.isfinite(blk)).nonzero()[0].tolist()
            raise ValueError(f"{name} holds a non-finite value (NaN or inf) at "
                             f"[{bad[0] + r0 + offset}, {bad[1]}]; distances must be finite")


def _segments(starts: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Concatenation of ``arange(s, s + l)`` for each (s, l), as one int64 tensor."""
    total = int(lengths.sum())
    if total == 0:
        return torch.zeros(0, dtype=torch.long, device=starts.device)
    offs = torch.cumsum(lengths, 0) - lengths
    return (torch.arange(total, device=starts.device)
            + (starts - offs).repeat_interleave(lengths))


"""Where a notebook's time goes: waiting for training batches, training steps, evaluation.

One process-wide ledger (:data:`LEDGER`) per Python process, i.e. per notebook kernel. The
:class:`~reidnb.core.engine.Trainer` adds the seconds it waits for the next training batch
(``data``: decoding, augmentation, collation, the copy to the device) and the seconds of its
optimiser steps (``train``: forward, loss, backward, update); the paper code adds the
seconds of every evaluation (``eval``: feature extraction, distances, CMC/mAP, re-ranking).
:func:`write_split` closes a notebook: ``other`` is the wall time since the ledger started
(the first import of this module, i.e. the notebook's imports) minus the three, i.e.
dataset loading, mask preparation, figures, tables and kernel work in between.

With DataLoader workers (``workers > 0``) decoding runs in other processes: ``data`` is then
only the time the main process *waits*; on a 2-core machine the workers also slow the
steps down, which shows up in ``train``. Compare splits at the same ``workers``.
"""
from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Any, Iterator

__all__ = ["PHASES", "TimeLedger", "LEDGER", "phase", "write_split", "read_splits",
           "format_split"]

#: The phases of the ledger, in print order (``other`` is derived: wall minus the rest).
PHASES: tuple[str, ...] = ("data", "train", "eval", "other")


class TimeLedger:
    """Seconds per phase (``data``, ``train``, ``eval``) plus the wall time since ``start``.

    Args:
        start: ``time.perf_counter()`` value the wall time is counted from (default: now).

    Example::

        ledger.add("eval", 3.2)
        ledger.split()   # {'data': 0.0, 'train': 0.0, 'eval': 3.2, 'other': ..., 'wall': ...}
    """

    def __init__(self, start: float | None = None):
        self.reset(start)

    def reset(self, start: float | None = None) -> None:
        """Zero every phase and restart the wall clock (at ``start``, default now)."""
        self.start = time.perf_counter() if start is None else float(start)
        self.seconds = {p: 0.0 for p in PHASES if p != "other"}

    def add(self, name: str, seconds: float) -> None:
        """Add ``seconds`` (float, >= 0) to phase ``name``.

        Raises:
            KeyError: ``name`` is not ``data``, ``train`` or ``eval``.
            ValueError: negative seconds.
        """
        if name not in self.seconds:
            raise KeyError(f"unknown phase {name!r}; expected one of {sorted(self.seconds)}")
        if seconds < 0:
            raise ValueError(f"phase {name!r}: seconds must be >= 0, got {seconds}")
        self.seconds[name] += float(seconds)

    def split(self, now: float | None = None) -> dict[str, float]:
        """``{data, train, eval, other, wall}`` in seconds; ``other`` = wall - the rest
        (clamped at 0)."""
        wall = (time.perf_counter() if now is None else now) - self.start
        out = dict(self.seconds)
        out["other"] = max(wall - sum(self.seconds.values()), 0.0)
        out["wall"] = wall
        return out


#: The ledger of this process (one notebook kernel, one CLI training, one test session).
LEDGER = TimeLedger()


@contextlib.contextmanager
def phase(name: str, ledger: TimeLedger | None = None) -> Iterator[None]:
    """Time the ``with`` block into ``name`` of ``ledger`` (default :data:`LEDGER`)."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        (ledger or LEDGER).add(name, time.perf_counter() - t0)


def format_split(split: dict[str, float]) -> str:
    """One line: ``wall 312 s = data 20 s (6 %) + train 250 s (80 %) + ...``."""
    wall = max(split.get("wall", 0.0), 1e-9)
    parts = [f"{p} {split.get(p, 0.0):.0f} s ({100 * split.get(p, 0.0) / wall:.0f} %)"
             for p in PHASES]
    return f"wall {split.get('wall', 0.0):.0f} s = " + " + ".join(parts)


def write_split(cfg: Any, *, ledger: TimeLedger | None = None,
                extra: dict[str, Any] | None = None) -> Path:
    """Write the notebook's time split to ``<cfg.output_dir>/results/<cfg.notebook>.time.json``
    (atomically) and return the path.

    The file holds the seconds of :data:`PHASES` and ``wall`` plus ``workers``, ``device``,
    ``profile`` and ``extra`` (e.g. the reference speed). ``python -m reidnb report`` shows
    it per notebook in ``index.html``.

    Raises:
        OSError: the results folder cannot be written.
    """
    from .utils import atomic_write_text

    split = (ledger or LEDGER).split()
    record = {**{k: round(v, 2) for k, v in split.items()},
              "workers": getattr(cfg, "workers", None), "device": str(getattr(cfg, "device", "")),
              "profile": getattr(cfg, "profile", None), **(extra or {})}
    path = Path(cfg.output_dir) / "results" / f"{cfg.notebook}.time.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(record, indent=1))
    return path


def read_splits(output_dir: str | Path) -> dict[str, dict[str, Any]]:
    """``{notebook: split record}`` of every ``results/*.time.json`` under ``output_dir``;
    an unreadable file is left out (the report shows no split for it)."""
    out: dict[str, dict[str, Any]] = {}
    for p in sorted((Path(output_dir) / "results").glob("*.time.json")):
        try:
            out[p.name.removesuffix(".time.json")] = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
    return out

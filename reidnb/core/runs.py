"""The run store: one folder per trained variant, keyed by what defines its training.

A *run* is one trained (and usually evaluated) variant of a paper's experiment. Its folder
``<output_dir>/checkpoints/<notebook>/<name>-<key>/`` holds:

* ``last.pt``      the Trainer's checkpoint (weights, optimiser, history; resumable);
* ``timing.json``  training wall time summed over sessions (seconds);
* ``history.csv``  one row per iteration: loss terms, lr, img/s, batch distance statistics;
* ``eval-<k>.npz`` a saved evaluation (features, distances, CMC, per-query AP) for one set
  of evaluation settings ``k``, so a finished run re-renders without extracting features;
* ``finished.json`` written last, when training is complete: name, key, epochs, seconds
  and the SHA-256 of every file of the run (a manifest: a run whose files changed or are
  truncated is not read as finished);
* ``.lock`` / ``holder.json`` while a process trains it (:meth:`RunDir.claim`): a second
  process asking for the same run waits (or is refused, naming the holder) and never
  trains it twice or reads it half done; the lock is an OS file lock (``filelock``), so
  the lock of a killed process is released by the OS and taken over;
* ``failed.json`` when the last attempt raised (what, when), until the next attempt.

The key (:func:`run_key`) is a SHA-1 of everything that determines the trained weights and
nothing else, so changing a sweep list or an evaluation flag reuses finished runs, and a
notebook re-run costs seconds. This module knows no model, dataset or evaluation class (it
sits below them): evaluations are stored as plain arrays (``EvalResult.to_arrays``).
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import socket
import time
from pathlib import Path
from typing import Any, Iterator, Mapping

import filelock

import numpy as np
import pandas as pd

from .utils import atomic_path, atomic_write_text, read_npz

__all__ = ["Run", "SeedGroup", "RunDir", "RunCacheError", "RunBusyError", "run_key", "safe_name"]


class RunCacheError(RuntimeError):
    """A file of the run store cannot be read; the message names it and what to do."""


class RunBusyError(RuntimeError):
    """Another process holds the run (it is training it); the message names the holder."""


_MANIFEST_SKIP = {"finished.json", "holder.json", "failed.json", ".lock"}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def run_key(ident: Mapping[str, Any]) -> str:
    """10 hex digits of the SHA-1 of ``ident`` as sorted JSON (``repr`` for other objects)."""
    text = json.dumps(ident, sort_keys=True, default=repr)
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def safe_name(name: str) -> str:
    """``name`` with every character but letters, digits and ``-_.`` replaced by ``_``."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


@dataclasses.dataclass
class Run:
    """A trained and evaluated variant.

    Attributes:
        name: label used in tables and plots.
        model: the trained model (eval mode, on the run's device).
        history: per-iteration training history (:attr:`reidnb.core.engine.Trainer.history`).
        result: evaluation (``reidnb.evaluation.EvalResult``) or None when not evaluated.
        train_seconds: wall time of training (seconds; summed over sessions).
        eval_seconds: wall time of the evaluation (seconds; when the evaluation was loaded
            from the store, the time it took when it was computed).
        epochs: epochs trained.
        key: the run key (:func:`run_key`); a stage-2 run started from this one includes
            it in its own key.
        folder: the run's folder in the store (None: not stored).
        source: ``"trained"`` (trained in this session), ``"resumed"`` (continued from a
            checkpoint) or ``"cache"`` (finished before; nothing trained now).
        eval_cached: True when ``result`` was loaded from the store, not recomputed.
    """

    name: str
    model: Any
    history: pd.DataFrame
    result: Any
    train_seconds: float
    eval_seconds: float
    epochs: int | None
    key: str = ""
    folder: Path | None = None
    source: str = "trained"
    eval_cached: bool = False

    @property
    def seconds(self) -> float:
        """Training + evaluation wall time (seconds)."""
        return self.train_seconds + self.eval_seconds

    def evaluated(self) -> list[str]:
        """Evaluation settings this run has (e.g. ``["single-query", ...]``)."""
        return [] if self.result is None else list(self.result.results)

    def metrics(self, setting: str = "single-query") -> dict[str, float]:
        """``rank1, rank5, rank10, mAP, mINP`` in percent for one evaluation setting.

        Raises:
            KeyError: the setting was not evaluated (lists those that were).
        """
        if self.result is None or setting not in self.result.results:
            raise KeyError(f"run {self.name!r}: setting {setting!r} not evaluated; have "
                           f"{sorted(self.evaluated())}")
        r = self.result.results[setting]
        return {"rank1": 100 * float(r.cmc[0]), "rank5": 100 * float(r.cmc[4]),
                "rank10": 100 * float(r.cmc[9]), "mAP": 100 * float(r.mAP),
                "mINP": 100 * float(r.mINP)}


@dataclasses.dataclass(frozen=True)
class SeedGroup:
    """One variant trained with several seeds, seen as one run.

    ``metrics(setting)`` is the mean over the seeds of ``Run.metrics`` (percent);
    ``train_seconds``, ``eval_seconds`` and ``seconds`` are summed over the seeds; every
    other attribute (``model``, ``history``, ``result``, ``name``, ``key``, ...) is the
    first seed's, so figures and per-run code keep working on one model. The per-query
    intervals (:mod:`reidnb.core.intervals`) read every seed through ``runs``.

    Attributes:
        runs: the seeds' runs (:class:`Run` or alike), first seed first.

    Raises:
        ValueError: (at construction) no runs.
    """

    runs: tuple

    def __post_init__(self) -> None:
        if not self.runs:
            raise ValueError("SeedGroup needs at least one run")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.runs[0], name)

    def metrics(self, setting: str = "single-query") -> dict[str, float]:
        """Mean over the seeds of each metric (percent).

        Raises:
            KeyError: a seed lacks the setting (from ``Run.metrics``).
        """
        per = [r.metrics(setting) for r in self.runs]
        return {k: float(np.mean([m[k] for m in per])) for k in per[0]}

    @property
    def train_seconds(self) -> float:
        return float(sum(r.train_seconds for r in self.runs))

    @property
    def eval_seconds(self) -> float:
        return float(sum(r.eval_seconds for r in self.runs))

    @property
    def seconds(self) -> float:
        """Training + evaluation wall time summed over the seeds (seconds)."""
        return float(sum(r.seconds for r in self.runs))


class RunDir:
    """The folder of one run in the store (see the module docstring for its files).

    Args:
        root: ``<output_dir>/checkpoints/<notebook>``.
        name: the run's label (made file-safe). key: its :func:`run_key`.
    """

    def __init__(self, root: str | Path, name: str, key: str):
        self.name, self.key = name, key
        self.path = Path(root) / f"{safe_name(name)}-{key}"

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @property
    def checkpoint(self) -> Path:
        return self.path / "last.pt"

    # ------------------------------------------------------------------------ timing
    def _read_json(self, path: Path) -> dict:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise RunCacheError(f"run store file {path} is unreadable ({type(e).__name__}: {e}); "
                                "it is a cache: delete it (or the run folder) and re-run") from e
        if not isinstance(data, dict):
            raise RunCacheError(f"run store file {path}: expected a JSON object, got "
                                f"{type(data).__name__}; delete it and re-run")
        return data

    def train_seconds(self) -> float:
        """Training seconds recorded so far (0 when none)."""
        path = self.path / "timing.json"
        return float(self._read_json(path).get("train_seconds", 0.0)) if path.exists() else 0.0

    def set_train_seconds(self, seconds: float) -> None:
        atomic_write_text(self.path / "timing.json",
                          json.dumps({"train_seconds": float(seconds)}))

    # ----------------------------------------------------------------------- history
    def write_history(self, history: pd.DataFrame) -> Path:
        """Write the per-iteration history as ``history.csv`` (atomically)."""
        buf = io.StringIO()
        history.to_csv(buf, index=False)
        return atomic_write_text(self.path / "history.csv", buf.getvalue())

    def read_history(self) -> pd.DataFrame | None:
        """``history.csv`` as a DataFrame, or None when absent."""
        path = self.path / "history.csv"
        if not path.exists():
            return None
        try:
            return pd.read_csv(path)
        except (OSError, ValueError) as e:
            raise RunCacheError(f"{path} is unreadable ({e}); delete it and re-run") from e

    # ------------------------------------------------------------------- evaluations
    def eval_path(self, eval_key: str) -> Path:
        return self.path / f"eval-{eval_key}.npz"

    def save_eval(self, eval_key: str, arrays: Mapping[str, np.ndarray], seconds: float) -> Path:
        """Store an evaluation (plain arrays) with the seconds it took, atomically."""
        path = self.eval_path(eval_key)
        payload = dict(arrays)
        payload["__eval_seconds__"] = np.asarray(float(seconds))
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **payload)
        return path

    def load_eval(self, eval_key: str) -> tuple[dict[str, np.ndarray], float] | None:
        """(arrays, seconds) of a stored evaluation, or None when there is none.

        Raises:
            RunCacheError: the file exists but cannot be read (names it: safe to delete).
        """
        path = self.eval_path(eval_key)
        if not path.exists():
            return None
        try:
            arrays = read_npz(path, "saved evaluation", "it is a cache: delete it and re-run")
        except ValueError as e:
            raise RunCacheError(str(e)) from e
        seconds = float(arrays.pop("__eval_seconds__", np.asarray(0.0)))
        return arrays, seconds

    # --------------------------------------------------------------------- lifecycle
    def _files(self) -> list[Path]:
        return sorted(p for p in self.path.rglob("*") if p.is_file()
                      and p.name not in _MANIFEST_SKIP and not p.name.endswith(".tmp"))

    def mark_finished(self, **meta: Any) -> Path:
        """Write ``finished.json``: name, key, ``meta`` and the SHA-256 of every file of the
        run (relative path -> digest). Call it again after adding a file (an evaluation)."""
        files = {str(p.relative_to(self.path)): _sha256(p) for p in self._files()}
        old = self._read_json(self.path / "finished.json") \
            if (self.path / "finished.json").exists() else {}
        record = {**{k: v for k, v in old.items() if k != "files"}, "name": self.name,
                  "key": self.key, **meta, "files": files}
        return atomic_write_text(self.path / "finished.json",
                                 json.dumps(record, indent=2, default=str))

    def finished(self) -> dict | None:
        """The ``finished.json`` record, or None while the run is not finished."""
        path = self.path / "finished.json"
        return self._read_json(path) if path.exists() else None

    def verify(self) -> list[str]:
        """Files of a finished run that are missing or differ from the manifest ([] = whole).

        Raises:
            RunCacheError: the run is not finished.
        """
        record = self.finished()
        if record is None:
            raise RunCacheError(f"{self.path} is not a finished run (no finished.json)")
        bad = []
        for rel, digest in (record.get("files") or {}).items():
            p = self.path / rel
            if not p.is_file():
                bad.append(f"{rel} (missing)")
            elif _sha256(p) != digest:
                bad.append(f"{rel} (changed or truncated)")
        return bad

    def holder(self) -> dict | None:
        """Who holds the run (host, pid, since), as written by :meth:`claim`, or None."""
        path = self.path / "holder.json"
        try:
            return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
        except (OSError, ValueError):
            return None

    def state(self) -> str:
        """``"training"`` (another process holds the lock), ``"finished"``, ``"failed"``
        (the last attempt raised), or ``"new"`` (nothing, or an interrupted attempt)."""
        if self.path.exists():
            lock = filelock.FileLock(str(self.path / ".lock"))
            try:
                lock.acquire(timeout=0)
            except filelock.Timeout:
                return "training"
            lock.release()
        if self.finished() is not None:
            return "finished"
        return "failed" if (self.path / "failed.json").exists() else "new"

    @contextlib.contextmanager
    def claim(self, *, wait: bool = True, timeout: float | None = None) -> Iterator["RunDir"]:
        """Hold the run while training or evaluating it: an exclusive OS file lock.

        A second process (or thread) claiming the same run waits until the first is done
        (then finds it finished) or, with ``wait=False`` / after ``timeout`` seconds, is
        refused with :class:`RunBusyError` naming the holder. The OS releases the lock of a
        killed process, so a stale lock is taken over at once. An exception inside the block
        writes ``failed.json`` (type, message, time) and is re-raised.

        Raises:
            RunBusyError: the run is held by another process and waiting was not allowed
                or timed out.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(str(self.path / ".lock"))
        try:
            lock.acquire(timeout=(0 if not wait else (-1 if timeout is None else timeout)))
        except filelock.Timeout:
            h = self.holder() or {}
            raise RunBusyError(
                f"run {self.path} is being trained by host {h.get('host', '?')} pid "
                f"{h.get('pid', '?')} since {h.get('since', '?')}; wait for it, or stop that "
                "process (its lock is released when it ends)") from None
        try:
            atomic_write_text(self.path / "holder.json", json.dumps(
                {"host": socket.gethostname(), "pid": os.getpid(),
                 "since": time.strftime("%Y-%m-%d %H:%M:%S")}))
            try:
                yield self
            except BaseException as e:
                atomic_write_text(self.path / "failed.json", json.dumps(
                    {"error": type(e).__name__, "message": str(e)[:2000],
                     "when": time.strftime("%Y-%m-%d %H:%M:%S")}))
                raise
            (self.path / "failed.json").unlink(missing_ok=True)
        finally:
            (self.path / "holder.json").unlink(missing_ok=True)
            lock.release()

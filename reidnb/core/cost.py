"""Training cost before training: images seen and estimated device time from MEASURED img/s.

A notebook at the paper profile trains for days on a GPU; before it starts it prints, per
trained variant, the optimiser steps, the batch, the images seen (steps x batch) and the
estimated hours on every device for which a measured throughput row exists, plus the total
(:func:`cost_frame`, :func:`format_cost`). Each paper's ``cost.py`` lists what its notebook
trains (``planned_trainings``); this module only does the arithmetic.

Throughput tables (:data:`THROUGHPUT_COLUMNS`, one row per measurement; only measured rows,
never guesses):

* the shipped table ``reidnb/resources/throughput.csv`` (:func:`shipped_table_path`);
* a user-local table (:func:`user_table_path`: ``$REIDNB_THROUGHPUT``, else
  ``$XDG_CACHE_HOME/reidnb/throughput.csv``, else ``~/.cache/reidnb/throughput.csv``) to which
  ``benchmarks/gpu_check.sh`` appends the rows it measures on the user's GPU
  (:func:`append_throughput`).

Estimate (:func:`estimate_img_per_s`): for a training of backbone B at H x W, the rows of the
same device (kind, name, precision) and backbone; the row at H x W if there is one, else the
one nearest in pixel count, its img/s scaled by pixel count (``img/s x h0 w0 / (H W)``: convolution
cost grows with the pixels), which the output says. Batch size and data loading are not
modelled (rows are measured on in-memory random batches, :func:`measure_img_per_s`).
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .utils import atomic_path

__all__ = ["THROUGHPUT_COLUMNS", "PLAN_KEYS", "NO_GPU_ROW", "shipped_table_path",
           "user_table_path", "read_throughput", "append_throughput", "estimate_img_per_s",
           "cost_frame", "format_cost", "num_train_images", "uniform_train_set",
           "measure_img_per_s"]

#: Columns of a throughput table, in order.
THROUGHPUT_COLUMNS: tuple[str, ...] = ("device_kind", "device_name", "backbone", "height", "width",
                                       "precision", "batch_size", "img_per_s", "measured",
                                       "source", "notes")
#: Keys of one planned training (a paper's ``planned_trainings`` item); ``note`` optional.
PLAN_KEYS: tuple[str, ...] = ("variant", "stage", "iterations", "batch_size", "backbone",
                              "height", "width")
#: Printed when no table has a GPU (``cuda``) row.
NO_GPU_ROW = ("GPU time: no measured GPU row — run benchmarks/gpu_check.sh on your GPU "
              "(it appends one)")


def shipped_table_path() -> Path:
    """``reidnb/resources/throughput.csv``: the rows measured by the project (package data)."""
    return Path(__file__).resolve().parents[1] / "resources" / "throughput.csv"


def user_table_path() -> Path:
    """The user-local table ``gpu_check.sh`` appends to: ``$REIDNB_THROUGHPUT`` if set, else
    ``$XDG_CACHE_HOME/reidnb/throughput.csv`` (default ``~/.cache/reidnb/throughput.csv``)."""
    env = os.environ.get("REIDNB_THROUGHPUT")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "reidnb" / "throughput.csv"


def _read_one(path: Path) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, dtype={"device_name": str, "source": str, "notes": str,
                                      "measured": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ValueError(f"throughput table {path}: not a readable CSV ({e}); expected the "
                         f"columns {list(THROUGHPUT_COLUMNS)}") from e
    missing = [c for c in THROUGHPUT_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"throughput table {path}: missing columns {missing}; expected "
                         f"{list(THROUGHPUT_COLUMNS)}")
    df = df[list(THROUGHPUT_COLUMNS)].copy()
    for c in ("height", "width", "batch_size", "img_per_s"):
        num = pd.to_numeric(df[c], errors="coerce")
        bad = df.index[num.isna() | (num <= 0)].tolist()
        if bad:
            raise ValueError(f"throughput table {path}: column {c!r} must hold numbers > 0; "
                             f"bad value(s) {df.loc[bad, c].tolist()} in data row(s) "
                             f"{[i + 1 for i in bad]}")
        df[c] = num
    df[["height", "width", "batch_size"]] = df[["height", "width", "batch_size"]].astype(int)
    df["table"] = str(path)
    return df.fillna({"notes": "", "source": "", "measured": "", "device_name": ""})


def read_throughput(paths: Sequence[str | os.PathLike] | None = None) -> pd.DataFrame:
    """Every measured throughput row: the shipped table, then the user-local one (if present).

    Args:
        paths: tables to read instead (missing files are skipped).

    Returns:
        DataFrame with :data:`THROUGHPUT_COLUMNS` plus ``table`` (the file it came from);
        ``img_per_s`` float (training images per second), ``height``/``width`` pixels.

    Raises:
        ValueError: a table that is no CSV, lacks a column or holds a non-positive number
            (the message names the file, the column and the data rows).
    """
    files = [Path(p) for p in paths] if paths is not None else [shipped_table_path(),
                                                                  user_table_path()]
    frames = [_read_one(p) for p in files if p.is_file()]
    if not frames:
        return pd.DataFrame(columns=[*THROUGHPUT_COLUMNS, "table"])
    return pd.concat(frames, ignore_index=True)


def append_throughput(rows: Iterable[Mapping[str, Any]], path: str | os.PathLike | None = None) -> Path:
    """Append measured rows to a throughput table (default :func:`user_table_path`), atomically.

    Raises:
        ValueError: a row lacks one of :data:`THROUGHPUT_COLUMNS` or the existing file is bad.
    """
    path = Path(path) if path is not None else user_table_path()
    new = pd.DataFrame(list(rows))
    missing = [c for c in THROUGHPUT_COLUMNS if c not in new.columns]
    if missing:
        raise ValueError(f"append_throughput({path}): rows lack {missing}")
    old = _read_one(path)[list(THROUGHPUT_COLUMNS)] if path.is_file() else None
    out = new[list(THROUGHPUT_COLUMNS)] if old is None else pd.concat(
        [old, new[list(THROUGHPUT_COLUMNS)]], ignore_index=True)
    with atomic_path(path) as tmp:
        out.to_csv(tmp, index=False)
    return path


# ----------------------------------------------------------------------------- estimate
def _device_label(kind: str, name: str, precision: str) -> str:
    return f"{kind} {name} {precision}".replace("  ", " ").strip()


def estimate_img_per_s(table: pd.DataFrame, device: tuple[str, str, str], backbone: str,
                       height: int, width: int) -> tuple[float, str]:
    """Training img/s of ``backbone`` at ``height`` x ``width`` on ``device``.

    Args:
        device: ``(device_kind, device_name, precision)`` of the rows to use.

    Returns:
        ``(img/s, note)``: NaN and ``"no row"`` when the device has no row of this backbone;
        the exact-size row (latest if several) with note ``""``; else the row nearest in
        pixel count scaled by ``h0 * w0 / (height * width)``, with a note saying so.
    """
    kind, name, prec = device
    rows = table[(table.device_kind == kind) & (table.device_name == name)
                 & (table.precision == prec) & (table.backbone == backbone)]
    if rows.empty:
        return math.nan, f"no {kind} row for {backbone}"
    exact = rows[(rows.height == int(height)) & (rows.width == int(width))]
    if not exact.empty:
        return float(exact.img_per_s.iloc[-1]), ""
    px = int(height) * int(width)
    pick = rows.iloc[(rows.height * rows.width - px).abs().argsort(kind="stable").iloc[0]]
    factor = int(pick.height) * int(pick.width) / px
    return (float(pick.img_per_s) * factor,
            f"{backbone} {height}x{width} on {_device_label(kind, name, prec)}: scaled from the "
            f"{int(pick.height)}x{int(pick.width)} row by pixel count (img/s x {factor:.3g})")


def cost_frame(rows: Sequence[Mapping[str, Any]], table: pd.DataFrame | None = None) -> pd.DataFrame:
    """Images seen and estimated hours of each planned training on each measured device.

    Args:
        rows: planned trainings, dicts with :data:`PLAN_KEYS` (``iterations`` optimiser
            steps, ``batch_size`` images per step, ``height``/``width`` pixels) and an
            optional ``note``.
        table: throughput rows (default :func:`read_throughput`).

    Returns:
        DataFrame with ``variant, stage, backbone, size, iterations, batch, images seen``
        (int) and one float column ``"est. h <device kind> <name> <precision>"`` per device
        of the table (NaN: no row for that backbone). ``frame.attrs["notes"]``: every
        scaling or missing row, printable; ``frame.attrs["devices"]``: ``{column: (kind,
        name, precision)}``.

    Raises:
        ValueError: a row lacks a key of :data:`PLAN_KEYS` or has a non-positive count.
    """
    table = read_throughput() if table is None else table
    devices = list(dict.fromkeys(zip(table.device_kind, table.device_name, table.precision)))
    cols = {f"est. h {_device_label(*d)}": d for d in devices}
    out, notes = [], []
    for i, r in enumerate(rows):
        missing = [k for k in PLAN_KEYS if k not in r]
        if missing:
            raise ValueError(f"planned training {i} ({r.get('variant')!r}) lacks {missing}")
        it, bs = int(r["iterations"]), int(r["batch_size"])
        if it < 1 or bs < 1:
            raise ValueError(f"planned training {r['variant']!r}: iterations and batch_size must "
                             f"be >= 1, got {it} and {bs}")
        row = {"variant": r["variant"], "stage": r["stage"], "backbone": r["backbone"],
               "size": f"{int(r['height'])}x{int(r['width'])}", "iterations": it, "batch": bs,
               "images seen": it * bs}
        for col, dev in cols.items():
            ips, note = estimate_img_per_s(table, dev, r["backbone"], r["height"], r["width"])
            row[col] = it * bs / ips / 3600.0 if ips == ips else math.nan
            if note and note not in notes:
                notes.append(note)
        if r.get("note") and r["note"] not in notes:
            notes.append(str(r["note"]))
        out.append(row)
    frame = pd.DataFrame(out, columns=["variant", "stage", "backbone", "size", "iterations",
                                       "batch", "images seen", *cols])
    frame.attrs["notes"] = notes
    frame.attrs["devices"] = cols
    return frame


def _hours(h: float) -> str:
    if h != h:
        return "n/a"
    return f"{h:.2f} h" if h < 48 else f"{h:.0f} h ({h / 24:.1f} d)"


def format_cost(frame: pd.DataFrame) -> str:
    """Printable cost table of :func:`cost_frame` with the total per device and the notes.

    Says :data:`NO_GPU_ROW` when no device of the frame is a GPU (``cuda``); images seen and
    the CPU-measured time are printed either way.
    """
    devices = frame.attrs.get("devices", {})
    shown = frame.copy()
    for col in devices:
        shown[col] = shown[col].map(_hours)
    shown["images seen"] = shown["images seen"].map(lambda v: f"{v:,}")
    lines = [f"{len(frame)} training(s) planned", shown.to_string(index=False)]
    total = int(frame["images seen"].sum()) if len(frame) else 0
    lines.append(f"TOTAL: {total:,} images seen")
    for col in devices:
        vals = frame[col]
        part = " (some trainings have no row: partial)" if vals.isna().any() and vals.notna().any() else ""
        lines.append(f"TOTAL {col}: {_hours(float(vals.sum(min_count=1)))}{part}")
    if not any(kind == "cuda" for kind, _, _ in devices.values()):
        lines.append(NO_GPU_ROW)
    lines += [f"note: {n}" for n in frame.attrs.get("notes", [])]
    lines.append("note: estimates are the backbone's measured training img/s on in-memory "
                 "batches (no data loading, no evaluation); heads, second streams, dilation "
                 "and extra branches cost more")
    return "\n".join(lines)


# ------------------------------------------------------------------------------- inputs
def num_train_images(dataset_or_n: Any) -> int:
    """``len(dataset.train)`` of a loaded dataset, or the int itself.

    Raises:
        TypeError: neither an int nor an object with ``train``.
    """
    if isinstance(dataset_or_n, (int,)) and not isinstance(dataset_or_n, bool):
        return int(dataset_or_n)
    if hasattr(dataset_or_n, "train"):
        return len(dataset_or_n.train)
    raise TypeError(f"expected a dataset (with .train) or a number of training images, got "
                    f"{type(dataset_or_n).__name__}")


def uniform_train_set(dataset_or_n: Any, num_instances: int = 4) -> Any:
    """A dataset as given, or for an int ``n`` a stand-in whose ``train`` holds ``n`` records
    of ``n // K`` identities with K images each (``pid``, ``camid``, ``path`` ""): the P x K
    sampler epoch of such a set is about ``n`` images (a real set's is a little smaller)."""
    if hasattr(dataset_or_n, "train"):
        return dataset_or_n
    n, k = num_train_images(dataset_or_n), max(1, int(num_instances))
    recs = [SimpleNamespace(pid=i // k, camid=i % 2, path="") for i in range(n // k * k)]
    return SimpleNamespace(train=recs, num_train_pids=n // k, name=f"{n} images (uniform stand-in)")


# ---------------------------------------------------------------------------- measuring
def measure_img_per_s(model: nn.Module, height: int, width: int, batch_size: int, *,
                      device: str | torch.device = "cpu", precision: str = "fp32",
                      num_classes: int = 751, iters: int = 5, warmup: int = 2,
                      max_seconds: float | None = None) -> dict[str, float]:
    """Training throughput of ``model`` on random in-memory batches.

    One step: forward of float [B, 3, H, W] (``model(x)``: a tensor of logits or a dict
    with ``logits``), cross-entropy against random labels in ``[0, num_classes)``,
    backward, SGD step (momentum 0.9). ``precision``: ``"fp32"`` or ``"bf16+channels_last"``
    (bf16 autocast, model and input in channels_last; as the Trainer on CUDA).

    Args:
        iters: timed steps (stopped early after ``max_seconds`` of timed steps).
        warmup: untimed steps first (cuDNN autotune, allocator).

    Returns:
        ``{"img_per_s", "seconds", "steps"}`` (wall time; CUDA synchronised).

    Raises:
        ValueError: unknown precision, or a model without logits.
    """
    if precision not in ("fp32", "bf16+channels_last"):
        raise ValueError(f"precision must be 'fp32' or 'bf16+channels_last', got {precision!r}")
    device = torch.device(device)
    cl = precision != "fp32"
    model = model.to(device).train()
    if cl:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch_size, 3, height, width, generator=g).to(device)
    if cl:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, num_classes, (batch_size,), generator=g).to(device)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cl):
            out = model(x)
        logits = out["logits"] if isinstance(out, Mapping) else out
        if not torch.is_tensor(logits):
            raise ValueError("measure_img_per_s: the model returned no logits tensor")
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        step()
    sync()
    t0, steps = time.perf_counter(), 0
    while steps < iters:
        step()
        steps += 1
        if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
            break
    sync()
    dt = time.perf_counter() - t0
    return {"img_per_s": steps * batch_size / dt, "seconds": dt, "steps": steps}

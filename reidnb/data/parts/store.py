"""The PNG cache of masks and part maps: one folder per mask source, atomic writes.

Layout (``cache_root``; default :func:`default_cache_root`)::

    <cache_root>/<source>/masks/<split folder>/<stem>.png    0/255 foreground
    <cache_root>/<source>/parts/<split folder>/<stem>.png    uint8 0..7
    <cache_root>/<source>/meta.json                          what wrote them

Files are written to a temporary name and renamed, so an interrupted run leaves no
half-written PNG; files already there are reused unless ``meta.json`` says another mapping
version or another parser wrote them (:class:`_Store`).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ...core.utils import atomic_write_text

__all__ = ["default_cache_root", "has_exact_maps"]


def _save_png(arr: np.ndarray, path: Path) -> None:
    """Write a uint8 [H, W] array as a single-channel PNG: to ``.<name>.<pid>.tmp`` in the
    same folder, then renamed over ``path`` (atomic on POSIX; cheaper than
    ``utils.atomic_path``'s mkstemp for tens of thousands of small files)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        Image.fromarray(np.ascontiguousarray(arr, dtype=np.uint8)).save(
            tmp, format="PNG", compress_level=1)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _stem_png(path: str) -> str:
    return Path(path).stem + ".png"


def _split_dir(path: str) -> str:
    return Path(path).parent.name


class _Store:
    """One source's cache folder: ``<root>/<source>/{masks,parts}/<split>/<stem>.png``.

    ``meta`` (plain JSON data) says what writes the files (source, mapping version or
    parser id); a ``meta.json`` on disk that differs makes the cached files untrusted
    (recomputed). Folder listings are cached, so ``cached`` costs no stat per file.
    """

    def __init__(self, root: Path, source: str, meta: dict[str, Any], verbose: bool):
        self.base = root / source
        self.meta = meta
        self.trusted = True
        mfile = self.base / "meta.json"
        if mfile.is_file():
            try:
                old = json.loads(mfile.read_text())
            except ValueError:
                old = None
            if old != meta:
                self.trusted = False
                if verbose:
                    print(f"masks: {mfile} was written by {old}, now {meta}: recomputing "
                          "instead of reusing its cached files")
        self._listed: dict[Path, set[str]] = {}

    def paths(self, img_path: str) -> tuple[Path, Path]:
        """(mask PNG, part-map PNG) paths of an image in this store."""
        d, n = _split_dir(img_path), _stem_png(img_path)
        return self.base / "masks" / d / n, self.base / "parts" / d / n

    def _have(self, folder: Path) -> set[str]:
        if folder not in self._listed:
            self._listed[folder] = set(os.listdir(folder)) if folder.is_dir() else set()
        return self._listed[folder]

    def cached(self, img_path: str, need_parts: bool = True) -> bool:
        """True when the image's mask (and part map, if ``need_parts``) can be reused."""
        if not self.trusted:
            return False
        m, p = self.paths(img_path)
        return m.name in self._have(m.parent) and (not need_parts or p.name in self._have(p.parent))

    def write(self, img_path: str, mask: np.ndarray, parts: np.ndarray | None) -> None:
        """Write mask uint8 [H, W] {0, 255} and part map uint8 [H, W] 0..7 (or None)."""
        m, p = self.paths(img_path)
        _save_png(mask, m)
        self._have(m.parent).add(m.name)
        if parts is not None:
            _save_png(parts, p)
            self._have(p.parent).add(p.name)

    def commit(self) -> None:
        """Write ``meta.json`` (atomically): the files now belong to this ``meta``."""
        self.base.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.base / "meta.json", json.dumps(self.meta, sort_keys=True))
        self.trusted = True


def default_cache_root(dataset) -> Path:
    """Where a dataset's mask cache goes by default: the synthetic set's own folder, else
    ``PROJECT_ROOT/data/cache/masks/<dataset.name>`` (real dataset folders may be
    read-only, e.g. ``shared/data``)."""
    if dataset.kind == "synthetic":
        return Path(dataset.root)
    from ...core.config import PROJECT_ROOT

    return PROJECT_ROOT / "data" / "cache" / "masks" / dataset.name


def has_exact_maps(r) -> bool:
    """True when a record already points at an existing mask and part-map file (the
    synthetic set's exact maps)."""
    return r.mask is not None and r.parts is not None and os.path.isfile(r.mask) \
        and os.path.isfile(r.parts)

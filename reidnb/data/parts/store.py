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

import hashlib

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ...core.utils import atomic_write_text

__all__ = ["default_cache_root", "has_exact_maps", "check_cached_png"]


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
    (recomputed). Folder listings are cached, so ``cached`` costs no stat per file; each
    file it reports as reusable is checked once (:func:`check_cached_png`): a bad one is
    not reused when :attr:`repair` (listed in :attr:`repaired`), else a ValueError names it.
    """

    def __init__(self, root: Path, source: str, meta: dict[str, Any], verbose: bool, *,
                 repair: bool = True):
        self.base = root / source
        self.repair = bool(repair)   # recompute bad cached files, or refuse them
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
        self.repaired: list[str] = []

    def paths(self, img_path: str) -> tuple[Path, Path]:
        """(mask PNG, part-map PNG) paths of an image in this store."""
        d, n = _split_dir(img_path), _stem_png(img_path)
        return self.base / "masks" / d / n, self.base / "parts" / d / n

    def _have(self, folder: Path) -> set[str]:
        if folder not in self._listed:
            self._listed[folder] = set(os.listdir(folder)) if folder.is_dir() else set()
        return self._listed[folder]

    def cached(self, img_path: str, need_parts: bool = True) -> bool:
        """True when the image's mask (and part map, if ``need_parts``) can be reused.

        Raises:
            ValueError: a cached file is bad and :attr:`repair` is False (names it).
        """
        if not self.trusted:
            return False
        m, p = self.paths(img_path)
        listed = m.name in self._have(m.parent) and (not need_parts or p.name in self._have(p.parent))
        if not listed:
            return False
        for path, kind in ((m, "mask"), (p, "parts")) if need_parts else ((m, "mask"),):
            problem = check_cached_png(path, kind, img_path)
            if problem:
                if not self.repair:
                    raise ValueError(f"{problem}. It is a cache file: delete it (or pass "
                                     "repair=True) and it is recomputed")
                self.repaired.append(problem)
                self._have(path.parent).discard(path.name)
                return False
        return True

    def cached_parts(self, img_path: str) -> bool:
        """True when the image's part map is in the store and usable (a mask-only entry of
        the ``torchvision`` source has none).

        Raises:
            ValueError: the cached part map is bad and :attr:`repair` is False.
        """
        if not self.trusted:
            return False
        p = self.paths(img_path)[1]
        if p.name not in self._have(p.parent):
            return False
        problem = check_cached_png(p, "parts", img_path)
        if problem:
            if not self.repair:
                raise ValueError(f"{problem}. It is a cache file: delete it (or pass "
                                 "repair=True) and it is recomputed")
            self.repaired.append(problem)
            self._have(p.parent).discard(p.name)
            return False
        return True

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


def check_cached_png(path: Path, kind: str, img_path: str) -> str:
    """"" when a cached PNG is usable for ``img_path``, else what is wrong with it.

    Usable: decodable, single channel (mode ``L``), the size of its image, and labels in
    range (``kind="mask"``: 0/255; ``"parts"``: 0..7).
    """
    try:
        with Image.open(path) as im:
            im.load()
            mode, size = im.mode, im.size
            arr = np.asarray(im)
    except Exception as e:  # noqa: BLE001 - truncated, empty, not a PNG
        return f"cached {kind} {path} is unreadable ({type(e).__name__})"
    if mode != "L":
        return f"cached {kind} {path} has mode {mode}, expected single-channel L"
    try:
        with Image.open(img_path) as im:
            want = im.size
    except OSError:
        want = size
    if size != want:
        return f"cached {kind} {path} is {size[0]}x{size[1]}, its image {img_path} {want[0]}x{want[1]}"
    bad = (~np.isin(arr, (0, 255))).any() if kind == "mask" else (arr > 7).any()
    if bad:
        return f"cached {kind} {path} holds labels outside {'0/255' if kind == 'mask' else '0..7'}"
    return ""


#: Environment variable: the base folder of the mask caches (default ``PROJECT_ROOT/data/cache``);
#: the test suite points it at a temporary folder.
CACHE_ENV = "REIDNB_CACHE_DIR"


def cache_base() -> Path:
    """``$REIDNB_CACHE_DIR`` or ``PROJECT_ROOT/data/cache``: where mask caches and shared
    parsers live."""
    from ...core.config import PROJECT_ROOT

    env = os.environ.get(CACHE_ENV, "").strip()
    return Path(env).expanduser() if env else PROJECT_ROOT / "data" / "cache"


def default_cache_root(dataset) -> Path:
    """Where a dataset's mask cache goes by default: the synthetic set's own folder, else
    ``<cache_base()>/masks/<dataset.name>-<8 hex of the dataset folder's path>`` (real
    dataset folders may be read-only, e.g. ``shared/data``; two copies of one dataset, e.g.
    a generated fixture and the real download, never share cached maps)."""
    if dataset.kind == "synthetic":
        return Path(dataset.root)
    root = str(Path(dataset.root).expanduser().resolve())
    return cache_base() / "masks" / f"{dataset.name}-{hashlib.sha1(root.encode()).hexdigest()[:8]}"


def has_exact_maps(r) -> bool:
    """True when a record already points at an existing mask and part-map file (the
    synthetic set's exact maps)."""
    return r.mask is not None and r.parts is not None and os.path.isfile(r.mask) \
        and os.path.isfile(r.parts)

"""Where masks can come from: labelled sets (own or a sibling), the shared parser, errors.

- :func:`find_label_set`: the set whose part maps train the light parser: the dataset's
  own training split (exact synthetic maps or LIP labels in ``*_parsing_pgt/``), else a
  labelled sibling under the same data root (e.g. ``<data_root>/market1501/`` with its
  ``bounding_box_train_parsing_pgt/`` beside ``<data_root>/DukeMTMC-reID/``), else an
  explicit ``parser_source`` dataset;
- :func:`get_parser` / :func:`obtain_parser`: a parser per label set, trained once and
  kept in a shared folder keyed by that set (``<parser_root>/<set>-<hash of its label
  folder>-<arch>/parser.pt`` + ``source.json`` naming what it was trained on), so Duke,
  CUHK03 and the small-scale sets reuse the one Market-1501 parser;
- :class:`NoMaskSourceError` and :func:`no_source_message`: the error naming the dataset,
  the split and every way to provide masks.

Default ``parser_root``: ``<cache_root>/../parsers`` when a ``cache_root`` is given, else
``<cache_base()>/masks/parsers``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import torch.nn as nn

from ...core.utils import atomic_write_text
from .labels import LABEL_DIR_SUFFIX, MAPPING_VERSION, label_path, masks_from_parts, \
    read_label_parts
from .parser import load_parser, save_parser, train_parser
from .store import _Store, cache_base, default_cache_root, has_exact_maps

__all__ = ["LabelSet", "NoMaskSourceError", "find_label_set", "parser_root_for",
           "get_parser", "obtain_parser", "no_source_message"]

#: How many folders above a dataset's root are searched for a labelled sibling set.
SEARCH_PARENTS = 3


class NoMaskSourceError(FileNotFoundError, RuntimeError):
    """No mask source can serve some images (a FileNotFoundError and a RuntimeError, so
    callers of either older error keep working); the message names every way out."""


@dataclasses.dataclass
class LabelSet:
    """A training split whose part maps can train the parser.

    Attributes:
        name: dataset name (``market1501``, ``synthetic`` ...).
        root: the dataset folder; ``label_dir``: its label folder (``..._parsing_pgt``
            or the synthetic set's ``parts/``), the key of the shared parser.
        dataset: the loaded :class:`~reidnb.data.datasets.ReIDDataset`.
        label_root: folder holding its ``*_parsing_pgt`` folders.
        own: True when it is the dataset being served itself.
    """

    name: str
    root: Path
    label_dir: Path
    dataset: Any
    label_root: Path
    own: bool


def _has_train_labels(dataset, label_root: Path) -> bool:
    """True when some training record has exact maps or a LIP label file."""
    if any(has_exact_maps(r) for r in dataset.train[:50]):
        return True
    if not dataset.train:
        return False
    folder = label_path(dataset.train[0].path, label_root).parent
    return folder.is_dir() and any(n.endswith(".png") for n in os.listdir(folder))


def _label_dir(dataset, label_root: Path) -> Path:
    if dataset.train and has_exact_maps(dataset.train[0]):
        return Path(dataset.train[0].parts).parent
    return label_path(dataset.train[0].path, label_root).parent


def _siblings(root: Path) -> list[tuple[str, Path]]:
    """Labelled real sets (``bounding_box_train_parsing_pgt/`` with PNGs) found under the
    up to :data:`SEARCH_PARENTS` folders above ``root``, Market-1501 first."""
    from ..datasets.reid_sets import _SPECS, REID_SET_NAMES, _find_root

    root = Path(root).resolve()
    found: list[tuple[str, Path]] = []
    for anc in list(root.parents)[:SEARCH_PARENTS]:
        if anc == anc.parent:                     # never search from the filesystem root
            break
        for name in REID_SET_NAMES:
            try:
                cand = _find_root(_SPECS[name], anc)
            except (FileNotFoundError, OSError):
                continue
            lab = cand / ("bounding_box_train" + LABEL_DIR_SUFFIX)
            if cand != root and cand not in [f for _, f in found] and lab.is_dir() \
                    and any(n.endswith(".png") for n in os.listdir(lab)):
                found.append((name, cand))
    return found


def find_label_set(dataset, *, label_root: str | os.PathLike | None = None,
                   parser_source: Any = None, search: bool = True) -> LabelSet | None:
    """The set to train a parser on for ``dataset``, first that applies: its own training
    split (exact maps or LIP labels under ``label_root``, default its root), the explicit
    ``parser_source`` dataset, a labelled sibling under the folders above its root
    (``search``). None when there is none.

    Raises:
        OSError: from listing folders (unreadable data root).
    """
    from ..datasets import load_dataset

    lr = Path(label_root) if label_root is not None else Path(dataset.root)
    if _has_train_labels(dataset, lr):
        return LabelSet(dataset.name, Path(dataset.root), _label_dir(dataset, lr), dataset, lr,
                        True)
    if parser_source is not None and _has_train_labels(parser_source, Path(parser_source.root)):
        ps = parser_source
        return LabelSet(ps.name, Path(ps.root), _label_dir(ps, Path(ps.root)), ps,
                        Path(ps.root), False)
    if search:
        for name, root in _siblings(Path(dataset.root)):
            ds = load_dataset(name, root, verbose=False)
            return LabelSet(name, root, _label_dir(ds, root), ds, root, False)
    return None


def parser_root_for(cache_root: str | os.PathLike | None,
                    parser_root: str | os.PathLike | None = None) -> Path:
    """The shared parser folder: ``parser_root`` if given, else ``<cache_root>/../parsers``
    when ``cache_root`` is given, else ``<cache_base()>/masks/parsers``."""
    if parser_root is not None:
        return Path(parser_root)
    if cache_root is not None:
        return Path(cache_root).resolve().parent / "parsers"
    return cache_base() / "masks" / "parsers"


def _parser_dir(parser_root: Path, ls: LabelSet, arch: str) -> Path:
    h = hashlib.sha1(str(ls.label_dir.resolve()).encode()).hexdigest()[:10]
    return parser_root / f"{ls.name}-{h}-{arch}"


def _training_records(ls: LabelSet, store: _Store) -> list:
    """The label set's training records with part maps: exact maps, else LIP labels
    converted into ``store`` (never query/gallery images)."""
    recs = []
    for r in ls.dataset.train:
        if has_exact_maps(r):
            recs.append(r)
            continue
        lab = label_path(r.path, ls.label_root)
        if lab.is_file():
            if not store.cached(r.path):
                parts = read_label_parts(r.path, lab)
                store.write(r.path, masks_from_parts(parts), parts)
            m, p = store.paths(r.path)
            recs.append(dataclasses.replace(r, mask=str(m), parts=str(p)))
    store.commit()
    return [r for r in recs if r.parts is not None]


def _load(ckpt: Path, device, verbose: bool, why: str,
          default_source: str = "unknown") -> tuple[nn.Module, dict[str, Any]]:
    """:func:`load_parser` plus ``trained_on`` (from the report, ``source.json`` beside
    it, else ``default_source``), printed when ``verbose``."""
    model, pinfo = load_parser(ckpt, device=device)
    src = ckpt.parent / "source.json"
    if "trained_on" not in pinfo and src.is_file():
        try:
            pinfo.update({k: v for k, v in json.loads(src.read_text()).items()
                          if k in ("trained_on", "label_dir")})
        except ValueError:
            pass
    pinfo.setdefault("trained_on", default_source)
    if verbose:
        print(f"masks: using parser {ckpt} ({why}; trained on {pinfo['trained_on']} labels, "
              f"id {pinfo['parser_id']}, held-out mIoU {pinfo.get('miou', math.nan):.3f})")
    return model, {**pinfo, "trained_now": False}


def get_parser(dataset, root: Path, parser_checkpoint, label_root, label_store: _Store, *,
               parser_root: Path, parser_source: Any = None, epochs: int, max_images,
               batch_size: int, arch: str, class_weights, max_iters, workers: int, device,
               seed: int, verbose: bool) -> tuple[nn.Module | None, dict[str, Any] | None]:
    """The parser for ``dataset``, first that applies: ``parser_checkpoint`` (must exist),
    ``<root>/parser.pt`` (a local one from an older version or put there by hand), the
    shared parser of :func:`find_label_set`'s set (trained now on its part maps and saved
    there when missing). ``(None, None)`` when there is none and no label set with at
    least 2 images. ``label_store`` converts the dataset's own labels (a sibling's go to
    its parser folder).

    Raises:
        FileNotFoundError: ``parser_checkpoint`` names a missing file.
    """
    if parser_checkpoint is not None:
        ckpt = Path(parser_checkpoint)
        if not ckpt.is_file():
            raise FileNotFoundError(f"parser_checkpoint {ckpt} does not exist")
        return _load(ckpt, device, verbose, "parser_checkpoint")
    if (root / "parser.pt").is_file():
        # older versions trained it there on the dataset's own labels
        return _load(root / "parser.pt", device, verbose, "in the cache root", dataset.name)
    ls = find_label_set(dataset, label_root=label_root, parser_source=parser_source)
    if ls is None:
        return None, None
    pdir = _parser_dir(parser_root, ls, arch)
    if (pdir / "parser.pt").is_file():
        return _load(pdir / "parser.pt", device, verbose, "shared")
    store = label_store if ls.own else _Store(pdir, "labels", {"source": "labels",
                                                               "mapping": MAPPING_VERSION},
                                              verbose)
    recs = _training_records(ls, store)
    if len(recs) < 2:
        return None, None
    if verbose:
        print(f"masks: training a parser for {dataset.name} on {ls.name} labels "
              f"({len(recs)} images, {ls.label_dir})", flush=True)
    model, report = train_parser(recs, epochs=epochs, batch_size=batch_size, device=device,
                                 seed=seed, max_images=max_images, arch=arch,
                                 class_weights=class_weights, max_iters=max_iters,
                                 workers=workers, verbose=verbose)
    report.update(trained_on=ls.name, label_dir=str(ls.label_dir))
    save_parser(model, pdir / "parser.pt", report, arch=arch)
    atomic_write_text(pdir / "source.json", json.dumps(
        {"trained_on": ls.name, "label_dir": str(ls.label_dir), "dataset_root": str(ls.root),
         "n_images": len(recs), "epochs": epochs, "max_images": max_images,
         "max_iters": max_iters, "arch": arch, "seed": seed}, indent=1))
    model, pinfo = load_parser(pdir / "parser.pt", device=device)
    if verbose:
        print(f"masks: saved parser to {pdir / 'parser.pt'} (id {pinfo['parser_id']})")
    return model, {**pinfo, "trained_now": True}


def obtain_parser(dataset, *, cache_root: str | os.PathLike | None = None,
                  parser_checkpoint: str | os.PathLike | None = None,
                  label_root: str | os.PathLike | None = None,
                  parser_root: str | os.PathLike | None = None, parser_source: Any = None,
                  epochs: int = 2, max_images: int | None = 5000, batch_size: int = 32,
                  arch: str = "tiny", class_weights: str | None = "sqrt_inv",
                  max_iters: int | None = None, workers: int = 0, device: str = "auto",
                  seed: int = 0, verbose: bool = True) -> tuple[nn.Module, dict[str, Any]]:
    """The part parser :func:`~reidnb.data.parts.attach_masks` would use for ``dataset``.

    :func:`get_parser`: ``parser_checkpoint``, else ``<cache_root>/parser.pt``, else the
    shared parser of the label set (own labels or exact maps, ``parser_source``, or a
    labelled sibling under the folders above the dataset), trained now if missing
    (:func:`~reidnb.data.parts.parser.train_parser`; settings as the ``parser_*``
    arguments of ``attach_masks``).

    Args:
        dataset: a :class:`~reidnb.data.datasets.ReIDDataset`.
        cache_root: default :func:`~reidnb.data.parts.store.default_cache_root`.
        label_root: folder holding the ``*_parsing_pgt`` folders (default the dataset root).
        parser_root: the shared parser folder (:func:`parser_root_for`).
        parser_source: a dataset with labels to train on when ``dataset`` has none.

    Returns:
        ``(model in eval mode, info)``: the stored report (held-out ``miou`` ...) plus
        ``parser_id``, ``arch``, ``path``, ``trained_on`` and ``trained_now``.

    Raises:
        FileNotFoundError: ``parser_checkpoint`` names a missing file.
        RuntimeError: no checkpoint and no label set (the message names the folders).
    """
    root = Path(cache_root) if cache_root is not None else default_cache_root(dataset)
    lr = Path(label_root) if label_root is not None else Path(dataset.root)
    store = _Store(root, "labels", {"source": "labels", "mapping": MAPPING_VERSION}, verbose)
    model, info = get_parser(dataset, root, parser_checkpoint, lr, store,
                             parser_root=parser_root_for(cache_root, parser_root),
                             parser_source=parser_source, epochs=epochs,
                             max_images=max_images, batch_size=batch_size, arch=arch,
                             class_weights=class_weights, max_iters=max_iters,
                             workers=workers, device=device, seed=seed, verbose=verbose)
    if model is None:
        raise RuntimeError(
            f"no part parser for {dataset.name}: no checkpoint {root / 'parser.pt'}, fewer "
            f"than 2 training images with exact maps or a LIP label in "
            f"{lr}/<split folder>{LABEL_DIR_SUFFIX}/, and no labelled Market-1501 (with "
            f"bounding_box_train{LABEL_DIR_SUFFIX}/) in the {SEARCH_PARENTS} folders above "
            f"{dataset.root}")
    return model, info


def no_source_message(dataset, split: str, n: int, example: str, label_root: Path,
                      torchvision_note: str) -> str:
    """The text of :class:`NoMaskSourceError`: the dataset, the split, and every way to
    provide masks (a parsing folder, a labelled Market-1501 under the data root, a parser
    checkpoint, torchvision's weights in the torch cache)."""
    folder = label_path(example, label_root).parent
    above = Path(dataset.root).resolve().parent
    return (
        f"masks: no source for {n} images of {dataset.name} split {split!r} (e.g. {example}). "
        "Provide masks one of these ways: "
        f"(1) put a folder of LIP parsing labels (<stem>.png, ids 0..19) at {folder}; "
        f"(2) put a labelled Market-1501 (with bounding_box_train{LABEL_DIR_SUFFIX}/) under "
        f"the data root, e.g. {above / 'market1501'}, so a light parser is trained on it "
        "(or pass parser_source= a labelled dataset, or parser_checkpoint= a parser.pt); "
        f"(3) allow the torchvision download (source 'torchvision', download=True) or "
        f"pre-download the weights to the torch cache: {torchvision_note}")

"""Masks and part maps for every record of a dataset: the source chain and its PNG cache.

:func:`attach_masks` gives every record a ``mask`` and ``parts`` path from the first
source that can serve it (``source="auto"``):

1. ``synthetic``: the synthetic set's exact maps (``Record.mask`` / ``Record.parts`` already
   set by :func:`reidnb.data.datasets.load_dataset`); nothing is written.
2. ``labels``: human-parsing labels with the LIP ids (SCHP pseudo labels; Market-1501 ships
   them for 12,350 of its 12,936 training images in ``bounding_box_train_parsing_pgt/``),
   turned into part maps by :func:`~reidnb.data.parts.labels.lip_to_parts`.
3. ``parser``: the light segmentation network of :mod:`.parser`, trained on the
   label-derived part maps (:func:`~reidnb.data.parts.parser.train_parser`) and run on
   every image without labels (query, gallery, unlabelled training images). Checkpoint
   ``parser.pt`` under the cache root, reused by the next run (:func:`obtain_parser`).
4. ``fcn``: torchvision's FCN-ResNet101 person class (VOC 15), the MaskReID paper's FCN
   choice (:mod:`.fcn`), when its weights can be loaded (no download here: the failure is
   printed and the other sources are used). Masks only, so such records get
   ``parts=None``.

The PNGs live in the cache of :mod:`.store` (``<cache_root>/<source>/...``, default
``PROJECT_ROOT/data/cache/masks/<dataset name>``; the synthetic set's own folder for it);
the parser checkpoint is ``<cache_root>/parser.pt``.
:func:`attach_small_set_masks` serves the small-scale sets of MaskReID Table 1 (no labels)
with a Market-1501 parser.

Measured before the parser moved to the Trainer (Market-1501, shared 2-core CPU, load ~9,
``num_threads=1``; defaults): 12,350 labels converted in ~90 s (I/O bound); 23,686 images
(586 unlabelled train + query + gallery) labelled in 235 s (101 img/s, decoding and PNG
writing included); a second run reuses everything in ~8 s.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import torch
import torch.nn as nn

from . import fcn
from .labels import LABEL_DIR_SUFFIX, MAPPING_VERSION, label_path, masks_from_parts, \
    read_label_parts
from .parser import load_parser, predict_parts, save_parser, train_parser
from .store import _Store, default_cache_root, has_exact_maps

__all__ = ["SOURCES", "attach_masks", "obtain_parser", "attach_small_set_masks"]

#: Mask sources in the order ``source="auto"`` tries them.
SOURCES = ("synthetic", "labels", "parser", "fcn")


def attach_masks(dataset, *, source: str = "auto", cache_root: str | os.PathLike | None = None,
                 splits: Sequence[str] = ("train", "query", "gallery"),
                 multi_query: bool = False, label_root: str | os.PathLike | None = None,
                 parser_epochs: int = 2, parser_max_images: int | None = 5000,
                 parser_batch_size: int = 32, parser_arch: str = "tiny",
                 parser_class_weights: str | None = "sqrt_inv",
                 parser_checkpoint: str | os.PathLike | None = None,
                 parser_max_iters: int | None = None, fcn_name: str = "fcn_resnet101",
                 batch_size: int = 128, workers: int = 0, device: str = "auto",
                 num_threads: int | None = None, seed: int = 0, repair: bool = True,
                 verbose: bool = True) -> tuple[Any, dict[str, Any]]:
    """Give every record of ``splits`` a foreground-mask and part-map path (PNG).

    Sources, tried per image in this order with ``source="auto"`` (module docstring):
    ``synthetic`` (the record's own exact maps) -> ``labels`` (a LIP parsing label in
    ``<label_root>/<split folder>_parsing_pgt/<stem>.png``, via :func:`lip_to_parts`) ->
    ``parser`` (``<cache_root>/parser.pt`` or ``parser_checkpoint`` if present, else trained
    now on the label-derived maps of the training split with :func:`train_parser`) ->
    ``fcn`` (torchvision FCN person masks, VOC class 15; ``parts=None``).
    A named source uses that source for every image of ``splits`` and raises when it
    cannot serve one; ``source="fcn"`` whose weights do not load prints why and falls back
    to the ``auto`` order (without FCN).

    Args:
        dataset: a :class:`reidnb.data.datasets.ReIDDataset` (not modified).
        source: ``"auto"``, ``"synthetic"``, ``"labels"``, ``"parser"`` or ``"fcn"``.
        cache_root: where PNGs and ``parser.pt`` go; default the synthetic set's own
            folder, else ``PROJECT_ROOT/data/cache/masks/<dataset.name>`` (the dataset
            folder may be read-only, e.g. ``shared/data``).
        splits: which record lists to serve (``train``, ``query``, ``gallery``).
        multi_query: also serve the ``gt_bbox`` records of ``dataset.multi_query``
            (Market-1501: 25k more images; off by default).
        label_root: folder holding the ``*_parsing_pgt`` label folders (default the
            dataset root).
        parser_epochs, parser_max_images, parser_batch_size, parser_arch,
        parser_class_weights, parser_max_iters: :func:`train_parser` settings when a
            parser must be trained (defaults: the quick budget, 2 x 5,000 images, about
            4-5 min on a busy 2-core CPU with 1 thread).
        parser_checkpoint: an existing ``parser.pt`` to use instead (e.g. the Market
            parser for a dataset without labels).
        fcn_name: torchvision model for the ``fcn`` source (``fcn_resnet50``,
            ``fcn_resnet101``, ``deeplabv3_resnet101``...).
        batch_size, workers: inference batch size and DataLoader workers.
        num_threads: torch CPU threads while this runs (restored after); ``None`` leaves
            the setting alone. On a CPU shared by several busy processes 1 thread can be
            many times faster than 2 (OpenMP threads wait for each other).
        repair: cached PNGs are checked before reuse (decodable, single channel, the
            image's size, labels in range: masks 0/255, parts 0..7); a bad one is
            recomputed when ``repair`` (and counted in ``info["repaired"]``), else a
            ValueError names it as a safe-to-delete cache file.
        device, seed, verbose: as usual; ``verbose`` prints counts, skips and timings.

    Returns:
        ``(new dataset, info)``. ``info``: ``cache_root``; ``splits`` = {split: Counter of
        source -> images, plus ``cached`` (reused files) and ``written``}; ``parser`` = the
        parser report (held-out ``miou``, ``per_class_iou``, ``pixel_acc``, timings) or
        None; ``parser_trained`` (bool); ``predict_img_per_s``; ``seconds``.

    Raises:
        ValueError: unknown ``source``/split; a named source that cannot serve an image
            (message gives the count and an example); a label PNG whose size differs from
            its image (names both paths and sizes) or with ids outside 0..19 (names it).
        RuntimeError: ``auto`` finds no source for some images (no labels, no parser
            checkpoint, no FCN weights).
    """
    args = dict(locals())
    with _torch_threads(num_threads):
        return _attach(**args)


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """Set torch's CPU thread count to ``n`` for the block (``None``: leave it)."""
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _attach(dataset, *, source, cache_root, splits, multi_query, label_root, parser_epochs,
            parser_max_images, parser_batch_size, parser_arch, parser_class_weights,
            parser_checkpoint, parser_max_iters, fcn_name, batch_size, workers, device,
            num_threads, seed, repair, verbose):
    """:func:`attach_masks` without the thread setting (same arguments)."""
    if source not in ("auto",) + SOURCES:
        raise ValueError(f"unknown mask source {source!r}; expected 'auto' or one of {SOURCES}")
    for s in splits:
        if s not in ("train", "query", "gallery"):
            raise ValueError(f"unknown split {s!r}; expected train, query or gallery")
    t_start = time.perf_counter()
    root = Path(cache_root) if cache_root is not None else default_cache_root(dataset)
    label_root = Path(label_root) if label_root is not None else Path(dataset.root)
    say = print if verbose else (lambda *a, **k: None)
    say(f"masks: {dataset.name} ({dataset.kind}); source {source!r}; cache {root}")

    # Every record to serve, as (list name, position).
    lists: dict[str, list] = {s: list(getattr(dataset, s)) for s in splits}
    if multi_query and dataset.multi_query:
        seen: dict[str, Any] = {}
        for group in dataset.multi_query.values():
            for r in group:
                seen.setdefault(r.path, r)
        lists["gt_bbox"] = list(seen.values())
    info: dict[str, Any] = {"cache_root": str(root), "source": source,
                            "splits": {s: Counter() for s in lists}, "parser": None,
                            "parser_trained": False, "predict_img_per_s": None}

    allowed = list(SOURCES) if source == "auto" else [source]
    fcn_model = None
    if source == "fcn":
        fcn_model = fcn._try_load_fcn(fcn_name)
        if fcn_model is None:
            allowed = ["synthetic", "labels", "parser"]
            info["source"] = "auto (fcn unavailable)"

    # --- 1. synthetic / 2. labels: decide per record what serves it.
    plan: dict[str, list[str | None]] = {}
    label_files: dict[str, Path] = {}
    listed: dict[Path, set[str]] = {}
    for s, recs in lists.items():
        choice: list[str | None] = []
        for r in recs:
            c = None
            if "synthetic" in allowed and has_exact_maps(r):
                c = "synthetic"
            elif "labels" in allowed:
                lab = label_path(r.path, label_root)
                if lab.parent not in listed:
                    listed[lab.parent] = (set(os.listdir(lab.parent)) if lab.parent.is_dir()
                                          else set())
                if lab.name in listed[lab.parent]:
                    c = "labels"
                    label_files[r.path] = lab
            choice.append(c)
        plan[s] = choice

    label_store = _Store(root, "labels", {"source": "labels", "mapping": MAPPING_VERSION},
                         verbose, repair=repair)
    stores = [label_store]
    new: dict[str, list] = {s: list(recs) for s, recs in lists.items()}

    def serve_labels():
        n_done = 0
        t0 = time.perf_counter()
        for s, recs in lists.items():
            for i, r in enumerate(recs):
                if plan[s][i] != "labels":
                    continue
                if label_store.cached(r.path):
                    info["splits"][s]["cached"] += 1
                else:
                    parts = read_label_parts(r.path, label_files[r.path])
                    label_store.write(r.path, masks_from_parts(parts), parts)
                    info["splits"][s]["written"] += 1
                    n_done += 1
                m, p = label_store.paths(r.path)
                new[s][i] = dataclasses.replace(r, mask=str(m), parts=str(p))
                info["splits"][s]["labels"] += 1
        label_store.commit()
        if n_done:
            say(f"masks: converted {n_done} LIP label maps in {time.perf_counter() - t0:.1f} s")

    for s, recs in lists.items():
        for i, r in enumerate(recs):
            if plan[s][i] == "synthetic":
                info["splits"][s]["synthetic"] += 1
    if any(c == "labels" for ch in plan.values() for c in ch):
        serve_labels()

    todo = {s: [i for i, c in enumerate(plan[s]) if c is None] for s in lists}
    n_todo = sum(len(v) for v in todo.values())

    # --- 3. parser
    if n_todo and "parser" in allowed:
        model, pinfo = _get_parser(dataset, root, parser_checkpoint, label_root,
                                   label_store, epochs=parser_epochs,
                                   max_images=parser_max_images,
                                   batch_size=parser_batch_size, arch=parser_arch,
                                   class_weights=parser_class_weights,
                                   max_iters=parser_max_iters, workers=workers,
                                   device=device, seed=seed, verbose=verbose)
        if model is not None:
            info["parser"], info["parser_trained"] = pinfo, pinfo.get("trained_now", False)
            store = _Store(root, "parser", {"source": "parser",
                                            "parser_id": pinfo["parser_id"]}, verbose,
                           repair=repair)
            stores.append(store)
            _serve_predicted(lists, todo, new, store, info, "parser",
                             lambda paths: predict_parts(model, paths, batch_size=batch_size,
                                                         device=device, workers=workers),
                             with_parts=True, say=say)
            todo = {s: [] for s in lists}
            n_todo = 0

    # --- 4. FCN
    if n_todo and "fcn" in allowed:
        if fcn_model is None:
            fcn_model = fcn._try_load_fcn(fcn_name)
        if fcn_model is not None:
            store = _Store(root, "fcn", {"source": "fcn", "model": fcn_name}, verbose,
                           repair=repair)
            stores.append(store)
            _serve_predicted(lists, todo, new, store, info, "fcn",
                             lambda paths: fcn.predict_fcn_masks(fcn_model, paths,
                                                             device=device),
                             with_parts=False, say=say)
            todo = {s: [] for s in lists}
            n_todo = 0

    if n_todo:
        s = next(k for k, v in todo.items() if v)
        example = lists[s][todo[s][0]].path
        what = {"synthetic": "the record has no exact mask/parts files",
                "labels": f"no LIP label in {label_root}/<split>{LABEL_DIR_SUFFIX}/",
                "parser": "no parser checkpoint and no labelled training images to train one",
                "fcn": "FCN weights unavailable"}
        if source == "auto":
            raise RuntimeError(
                f"masks: no source for {n_todo} images (e.g. {example}): no exact maps, no "
                f"parsing labels, no parser checkpoint (pass parser_checkpoint=) and no FCN "
                "weights")
        raise ValueError(f"masks: source {source!r} cannot serve {n_todo} images of "
                         f"{[k for k, v in todo.items() if v]} (e.g. {example}): "
                         f"{what.get(source, '')}; use source='auto' or restrict splits=")

    out = dataclasses.replace(dataset, **{s: new[s] for s in splits})
    if "gt_bbox" in new:
        by_path = {r.path: r for r in new["gt_bbox"]}
        out.multi_query = {q: [by_path[r.path] for r in g]
                           for q, g in dataset.multi_query.items()}
    info["splits"] = {s: dict(c) for s, c in info["splits"].items()}
    info["repaired"] = [p for st in stores for p in st.repaired]
    info["seconds"] = round(time.perf_counter() - t_start, 2)
    if verbose:
        for s, c in info["splits"].items():
            used = ", ".join(f"{k} {v}" for k, v in c.items() if k in SOURCES)
            say(f"masks: {s}: {len(new[s])} images ({used}); reused {c.get('cached', 0)} "
                f"cached, wrote {c.get('written', 0)}")
        if info["parser"]:
            say(f"masks: parser held-out mIoU {info['parser'].get('miou', math.nan):.3f}")
        if info["repaired"]:
            say(f"masks: {len(info['repaired'])} bad cached PNG(s) recomputed, e.g. "
                f"{info['repaired'][0]}")
        say(f"masks: done in {info['seconds']:.1f} s")
    return out, info


def _serve_predicted(lists, todo, new, store: _Store, info, name: str, predict,
                     with_parts: bool, say) -> None:
    """Reuse cached predictions, predict the rest in batches, write them, update records."""
    need: list[tuple[str, int]] = []
    for s, idxs in todo.items():
        for i in idxs:
            r = lists[s][i]
            info["splits"][s][name] += 1
            if store.cached(r.path, need_parts=with_parts):
                info["splits"][s]["cached"] += 1
            else:
                need.append((s, i))
            m, p = store.paths(r.path)
            new[s][i] = dataclasses.replace(r, mask=str(m), parts=str(p) if with_parts else None)
    if need:
        from collections import deque
        from concurrent.futures import ThreadPoolExecutor

        paths = [lists[s][i].path for s, i in need]
        say(f"masks: {name}: labelling {len(paths)} images ...", flush=True)
        t0 = last = time.perf_counter()
        pending: deque = deque()
        # PNG encoding and file writes (zlib and I/O release the GIL) overlap the forward
        # passes in two threads; errors surface through the futures.
        with ThreadPoolExecutor(max_workers=2) as pool:
            for n, (k, arr) in enumerate(predict(paths), 1):
                s = need[k][0]
                mask, parts = (masks_from_parts(arr), arr) if with_parts else (arr, None)
                pending.append(pool.submit(store.write, paths[k], mask, parts))
                while len(pending) > 512:
                    pending.popleft().result()
                info["splits"][s]["written"] += 1
                now = time.perf_counter()
                if now - last > 60:
                    say(f"  {n}/{len(paths)} images, {n / (now - t0):.0f} img/s", flush=True)
                    last = now
            while pending:
                pending.popleft().result()
        dt = time.perf_counter() - t0
        info["predict_img_per_s"] = round(len(paths) / max(dt, 1e-9), 1)
        say(f"masks: {name}: labelled {len(paths)} images in {dt:.1f} s "
            f"({info['predict_img_per_s']} img/s, decoding and PNG writing included)")
    store.commit()


def _get_parser(dataset, root: Path, parser_checkpoint, label_root, label_store, *,
                epochs, max_images, batch_size, arch, class_weights, max_iters, workers,
                device, seed, verbose):
    """The parser to use: an explicit checkpoint, ``<root>/parser.pt``, or one trained now
    on the training split's label-derived (or exact synthetic) part maps and saved to
    ``<root>/parser.pt``. ``(None, None)`` when there is no checkpoint and fewer than 2
    such images.

    Raises:
        FileNotFoundError: ``parser_checkpoint`` names a missing file.
    """
    for ckpt in ([Path(parser_checkpoint)] if parser_checkpoint else []) + [root / "parser.pt"]:
        if ckpt.is_file():
            model, pinfo = load_parser(ckpt, device=device)
            if verbose:
                print(f"masks: using parser {ckpt} (id {pinfo['parser_id']}, held-out mIoU "
                      f"{pinfo.get('miou', math.nan):.3f} when trained)")
            return model, {**pinfo, "trained_now": False}
        if parser_checkpoint and ckpt == Path(parser_checkpoint):
            raise FileNotFoundError(f"parser_checkpoint {ckpt} does not exist")
    # Training data: the training split's exact synthetic maps, else its LIP labels
    # (converted into the label cache if not there yet); never query/gallery images.
    recs = []
    for r in dataset.train:
        if has_exact_maps(r):
            recs.append(r)
            continue
        lab = label_path(r.path, label_root)
        if lab.is_file():
            if not label_store.cached(r.path):
                parts = read_label_parts(r.path, lab)
                label_store.write(r.path, masks_from_parts(parts), parts)
            m, p = label_store.paths(r.path)
            recs.append(dataclasses.replace(r, mask=str(m), parts=str(p)))
    label_store.commit()
    recs = [r for r in recs if r.parts is not None]
    if len(recs) < 2:
        return None, None
    model, report = train_parser(recs, epochs=epochs, batch_size=batch_size, device=device,
                                 seed=seed, max_images=max_images, arch=arch,
                                 class_weights=class_weights,
                                 max_iters=max_iters, workers=workers, verbose=verbose)
    save_parser(model, root / "parser.pt", report, arch=arch)
    model, pinfo = load_parser(root / "parser.pt", device=device)
    if verbose:
        print(f"masks: saved parser to {root / 'parser.pt'} (id {pinfo['parser_id']})")
    return model, {**pinfo, "trained_now": True}


def obtain_parser(dataset, *, cache_root: str | os.PathLike | None = None,
                  parser_checkpoint: str | os.PathLike | None = None,
                  label_root: str | os.PathLike | None = None, epochs: int = 2,
                  max_images: int | None = 5000, batch_size: int = 32, arch: str = "tiny",
                  class_weights: str | None = "sqrt_inv", max_iters: int | None = None,
                  workers: int = 0, device: str = "auto", seed: int = 0,
                  verbose: bool = True) -> tuple[nn.Module, dict[str, Any]]:
    """The part parser :func:`attach_masks` would use for ``dataset``, obtained the same way.

    ``parser_checkpoint`` if given, else ``<cache_root>/parser.pt`` if it exists, else a
    parser trained now (:func:`~reidnb.data.parts.parser.train_parser`, settings as the
    ``parser_*`` arguments of :func:`attach_masks`) on the training split's exact maps
    (synthetic) or LIP labels (``<label_root>/<split folder>_parsing_pgt/``, converted
    into the label cache on the way) and saved to ``<cache_root>/parser.pt``.

    Args:
        dataset: a :class:`~reidnb.data.datasets.ReIDDataset` (its training split is used).
        cache_root: default :func:`~reidnb.data.parts.store.default_cache_root`.
        label_root: folder holding the ``*_parsing_pgt`` folders (default the dataset root).

    Returns:
        ``(model in eval mode, info)``: info = the parser's stored report (held-out
        ``miou`` ...) plus ``parser_id``, ``arch``, ``path`` and ``trained_now``.

    Raises:
        FileNotFoundError: ``parser_checkpoint`` names a missing file.
        RuntimeError: no checkpoint and fewer than 2 training images with labels or exact
            maps (the message names the folders looked in).
    """
    root = Path(cache_root) if cache_root is not None else default_cache_root(dataset)
    label_root = Path(label_root) if label_root is not None else Path(dataset.root)
    store = _Store(root, "labels", {"source": "labels", "mapping": MAPPING_VERSION}, verbose)
    model, info = _get_parser(dataset, root, parser_checkpoint, label_root, store,
                              epochs=epochs, max_images=max_images, batch_size=batch_size,
                              arch=arch, class_weights=class_weights, max_iters=max_iters,
                              workers=workers, device=device, seed=seed, verbose=verbose)
    if model is None:
        raise RuntimeError(
            f"no part parser for {dataset.name}: no checkpoint {root / 'parser.pt'} and fewer "
            f"than 2 training images with exact maps or a LIP label in "
            f"{label_root}/<split folder>{LABEL_DIR_SUFFIX}/ to train one")
    return model, info


def attach_small_set_masks(sets: Mapping[str, Any],
                           parser_checkpoint: str | os.PathLike | None = None, *,
                           parser_source: Any = None,
                           parser_options: Mapping[str, Any] | None = None,
                           device: str = "auto", seed: int = 0,
                           verbose: bool = True) -> dict[str, Any]:
    """Person masks and part maps for the small-scale sets of MaskReID Table 1.

    The small sets (:mod:`reidnb.data.datasets.small_sets`) have no parsing labels, so
    every image is labelled by a light parser trained on another set (cached under
    ``PROJECT_ROOT/data/cache/masks/<set>``). The parser, first that applies:

    1. ``parser_checkpoint``, when that file exists (e.g. the ``parser.pt`` that
       :func:`attach_masks` wrote in Market-1501's cache root);
    2. ``parser_source``: a dataset whose training split has LIP parsing labels
       (Market-1501's ``bounding_box_train_parsing_pgt/``) or exact maps (the synthetic
       set): :func:`obtain_parser` on it, i.e. its ``parser.pt`` if present, else one
       trained now and saved. The folder is that of ``parser_checkpoint`` when one was
       named (so the named file exists afterwards), else the source's default cache root.
       This covers a target run whose masks all came from labels or exact maps, which
       writes no ``parser.pt``.

    Args:
        sets: name -> :class:`~reidnb.data.datasets.ReIDDataset` (not modified).
        parser_checkpoint: path of a ``parser.pt`` (may not exist when ``parser_source``
            is given).
        parser_source: the dataset to obtain a parser from (see above).
        parser_options: keyword arguments of :func:`obtain_parser` (``epochs``,
            ``max_images``, ``batch_size``, ...) for a parser trained now.
        device, seed, verbose: as :func:`attach_masks`.

    Returns:
        name -> the dataset with every record's ``mask`` and ``parts`` set.

    Raises:
        FileNotFoundError: neither a checkpoint nor a source; the message names every way
            to provide the masks (a checkpoint, a source dataset, the FCN source).
        RuntimeError: ``parser_source`` has too few labelled training images.
    """
    ckpt = Path(parser_checkpoint) if parser_checkpoint is not None else None
    if ckpt is None or not ckpt.is_file():
        if parser_source is None:
            state = "was not given" if ckpt is None else f"{ckpt} does not exist"
            raise FileNotFoundError(
                f"no mask parser for the small-scale sets (parser_checkpoint {state}). "
                "Provide their masks one of these ways: (1) parser_checkpoint= an existing "
                "parser.pt (reidnb.data.parts.attach_masks writes <cache_root>/parser.pt "
                "when it trains one, e.g. for Market-1501's query and gallery); "
                "(2) parser_source= a dataset with parsing labels (Market-1501 with "
                f"bounding_box_train{LABEL_DIR_SUFFIX}/) or exact maps (the synthetic set), "
                "from which a parser is trained now (reidnb.data.parts.obtain_parser); "
                "(3) attach_masks(<set>, source='fcn') per set when torchvision's FCN "
                "weights are in the torch hub cache.")
        _, info = obtain_parser(parser_source, cache_root=None if ckpt is None else ckpt.parent,
                                device=device, seed=seed, verbose=verbose,
                                **dict(parser_options or {}))
        ckpt = Path(info["path"])
    out = {}
    for name, ds in sets.items():
        splits = tuple(s for s in ("train", "query", "gallery") if getattr(ds, s))
        out[name], _ = attach_masks(ds, parser_checkpoint=ckpt, splits=splits,
                                    device=device, seed=seed, verbose=verbose)
    return out

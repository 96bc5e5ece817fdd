"""Masks and part maps for every record of a dataset: the source chain and its PNG cache.

:func:`attach_masks` gives every record a ``mask`` and ``parts`` path from the first
source that can serve it (``source="auto"``):

1. ``synthetic``: the synthetic set's exact maps (``Record.mask`` / ``Record.parts`` already
   set by :func:`reidnb.data.datasets.load_dataset`); nothing is written.
2. ``labels``: human-parsing labels with the LIP ids (SCHP pseudo labels; Market-1501 ships
   them for 12,350 of its 12,936 training images in ``bounding_box_train_parsing_pgt/``),
   turned into part maps by :func:`~reidnb.data.parts.labels.lip_to_parts`.
3. ``parser``: the light segmentation network of :mod:`.parser`, trained on the part maps
   of whichever labelled set there is (:mod:`.sources`: the dataset's own labels or exact
   maps, ``parser_source``, or a labelled sibling such as ``<data_root>/market1501/``
   beside ``<data_root>/DukeMTMC-reID/``), once, and kept in a shared folder keyed by
   that set, so every dataset and the small-scale sets reuse it.
4. ``torchvision``: pretrained torchvision models, downloaded into the torch cache on
   first use (``download=True``): the person mask from a segmentation model (``fcn_name``,
   FCN-ResNet101 by default, the MaskReID papers' choice; VOC class 15) and the 7 parts
   from keypoint R-CNN keypoints (:mod:`.pose`: each foreground pixel to its nearest limb
   segment). An image with no person detected gets its mask only (``parts=None``; counted
   and printed). ``source="fcn"`` is the mask-only form (no keypoint model).

Which source served how many images is printed per split, e.g. ``dukemtmcreid train:
parser (trained on market1501 labels) 16522``. No source left: a
:class:`~reidnb.data.parts.sources.NoMaskSourceError` naming the dataset, the split and
every way to provide masks.

The PNGs live in the cache of :mod:`.store` (``<cache_root>/<source>/...``, default
``<cache_base()>/masks/<dataset name>-<path hash>``; the synthetic set's own folder for it).
:func:`attach_small_set_masks` serves the small-scale sets of MaskReID Table 1 through
the same chain.

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

from . import fcn, pose
from .labels import LABEL_DIR_SUFFIX, MAPPING_VERSION, label_path, masks_from_parts, \
    read_label_parts
from .parser import predict_parts
from .sources import NoMaskSourceError, get_parser, no_source_message, parser_root_for
from .store import _Store, default_cache_root, has_exact_maps

__all__ = ["SOURCES", "attach_masks", "attach_small_set_masks"]

#: Mask sources in the order ``source="auto"`` tries them (``"fcn"``: also accepted, the
#: mask-only form of ``"torchvision"``).
SOURCES = ("synthetic", "labels", "parser", "torchvision")


def attach_masks(dataset, *, source: str = "auto", cache_root: str | os.PathLike | None = None,
                 splits: Sequence[str] = ("train", "query", "gallery"),
                 multi_query: bool = False, label_root: str | os.PathLike | None = None,
                 parser_epochs: int = 2, parser_max_images: int | None = 5000,
                 parser_batch_size: int = 32, parser_arch: str = "tiny",
                 parser_class_weights: str | None = "sqrt_inv",
                 parser_checkpoint: str | os.PathLike | None = None,
                 parser_max_iters: int | None = None, parser_source: Any = None,
                 parser_root: str | os.PathLike | None = None,
                 fcn_name: str = "fcn_resnet101", keypoint_model: str | None = pose.KEYPOINT_MODEL,
                 keypoint_min_size: int = 512, download: bool = True,
                 batch_size: int = 128, workers: int = 0, device: str = "auto",
                 num_threads: int | None = None, seed: int = 0, repair: bool = True,
                 verbose: bool = True) -> tuple[Any, dict[str, Any]]:
    """Give every record of ``splits`` a foreground-mask and part-map path (PNG).

    Sources, tried per image in this order with ``source="auto"`` (module docstring):
    ``synthetic`` -> ``labels`` (``<label_root>/<split folder>_parsing_pgt/<stem>.png``) ->
    ``parser`` (:func:`~reidnb.data.parts.sources.get_parser`: ``parser_checkpoint``,
    ``<cache_root>/parser.pt``, or the shared parser of the labelled set, trained now if
    missing) -> ``torchvision`` (segmentation mask + keypoint R-CNN parts). A named source
    serves every image of ``splits`` and raises when it cannot; ``"torchvision"`` /
    ``"fcn"`` whose weights do not load print why and fall back to the ``auto`` order.

    Args:
        dataset: a :class:`reidnb.data.datasets.ReIDDataset` (not modified).
        source: ``"auto"``, one of :data:`SOURCES`, or ``"fcn"`` (torchvision masks only).
        cache_root: where PNGs go; default the synthetic set's own folder, else
            ``<cache_base()>/masks/<dataset.name>-<path hash>``.
        splits: which record lists to serve (``train``, ``query``, ``gallery``).
        multi_query: also serve the ``gt_bbox`` records of ``dataset.multi_query``.
        label_root: folder holding the ``*_parsing_pgt`` label folders (default the
            dataset root).
        parser_epochs, parser_max_images, parser_batch_size, parser_arch,
        parser_class_weights, parser_max_iters: :func:`train_parser` settings when a
            parser must be trained (defaults: 2 x 5,000 images).
        parser_checkpoint: an existing ``parser.pt`` to use (missing file: ValueError for
            ``source="parser"``, else a printed note and the chain goes on).
        parser_source: a dataset with labels to train the parser on when ``dataset`` has
            none (else a labelled sibling is searched for, :mod:`.sources`).
        parser_root: the shared parser folder (default
            :func:`~reidnb.data.parts.sources.parser_root_for`).
        fcn_name: torchvision segmentation model (``fcn_resnet50``, ``fcn_resnet101``,
            ``deeplabv3_resnet101`` ...). keypoint_model: torchvision keypoint model
            (None: masks only). keypoint_min_size: its input's shorter side in pixels.
        download: let torchvision download missing weights into the torch cache; False
            uses only weights already there.
        batch_size, workers: inference batch size and DataLoader workers.
        num_threads: torch CPU threads while this runs (restored after).
        repair: cached PNGs are checked before reuse; a bad one is recomputed (listed in
            ``info["repaired"]``), else a ValueError names it as a cache file.
        device, seed, verbose: as usual; ``verbose`` prints the chain per split.

    Returns:
        ``(new dataset, info)``. ``info``: ``cache_root``; ``splits`` = {split: Counter of
        source -> images, plus ``cached``, ``written`` and ``mask_only`` (torchvision found
        no person)}; ``chain`` = {split: the printed line}; ``parser`` = the parser report
        (held-out ``miou`` ..., ``trained_on``, ``path``) or None; ``parser_trained``;
        ``predict_img_per_s``; ``seconds``; ``repaired``.

    Raises:
        ValueError: unknown ``source``/split; a named source that cannot serve an image; a
            label PNG whose size differs from its image or with ids outside 0..19.
        NoMaskSourceError (a RuntimeError and FileNotFoundError): ``auto`` finds no source
            for some images; names the dataset, split and every way to provide masks.
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


def _load_weights(name: str, loader, download: bool, what: str):
    """``loader(name)``, or None after printing why not and where the weights go."""
    path = pose.weights_file(name)
    try:
        if not download and not Path(path).is_file():
            raise FileNotFoundError(f"{path} is not there and download=False")
        return loader(name)
    except Exception as e:  # URLError, OSError, RuntimeError (hash mismatch), ...
        print(f"masks: torchvision {name} weights could not be loaded ({type(e).__name__}: "
              f"{e}). Put the weights file at {path} (the torch hub cache) or allow the "
              f"download; {what}")
        return None


def _attach(dataset, *, source, cache_root, splits, multi_query, label_root, parser_epochs,
            parser_max_images, parser_batch_size, parser_arch, parser_class_weights,
            parser_checkpoint, parser_max_iters, parser_source, parser_root, fcn_name,
            keypoint_model, keypoint_min_size, download, batch_size, workers, device,
            num_threads, seed, repair, verbose):
    """:func:`attach_masks` without the thread setting (same arguments)."""
    if source not in ("auto", "fcn") + SOURCES:
        raise ValueError(f"unknown mask source {source!r}; expected 'auto', 'fcn' or one of "
                         f"{SOURCES}")
    for s in splits:
        if s not in ("train", "query", "gallery"):
            raise ValueError(f"unknown split {s!r}; expected train, query or gallery")
    t_start = time.perf_counter()
    root = Path(cache_root) if cache_root is not None else default_cache_root(dataset)
    label_root = Path(label_root) if label_root is not None else Path(dataset.root)
    say = print if verbose else (lambda *a, **k: None)
    say(f"masks: {dataset.name} ({dataset.kind}); source {source!r}; cache {root}")
    tv_name = "fcn" if source == "fcn" else "torchvision"
    kp_name = None if source == "fcn" else keypoint_model
    if parser_checkpoint is not None and not Path(parser_checkpoint).is_file() \
            and source != "parser":
        say(f"masks: parser_checkpoint {parser_checkpoint} does not exist; trying the other "
            "parser sources")
        parser_checkpoint = None

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

    allowed = list(SOURCES) if source == "auto" else \
        ["torchvision"] if source == "fcn" else [source]
    tv_models = None
    if source in ("fcn", "torchvision"):
        tv_models = _torchvision_models(fcn_name, kp_name, download)
        if tv_models is None:
            allowed = ["synthetic", "labels", "parser"]
            info["source"] = f"auto ({source} unavailable)"

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
    n_done, t0 = 0, time.perf_counter()
    for s, recs in lists.items():
        for i, r in enumerate(recs):
            if plan[s][i] == "synthetic":
                info["splits"][s]["synthetic"] += 1
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
    if label_files:
        label_store.commit()
    if n_done:
        say(f"masks: converted {n_done} LIP label maps in {time.perf_counter() - t0:.1f} s")

    todo = {s: [i for i, c in enumerate(plan[s]) if c is None] for s in lists}
    n_todo = sum(len(v) for v in todo.values())

    # --- 3. parser
    if n_todo and "parser" in allowed:
        model, pinfo = get_parser(
            dataset, root, parser_checkpoint, label_root, label_store,
            parser_root=parser_root_for(cache_root, parser_root), parser_source=parser_source,
            epochs=parser_epochs, max_images=parser_max_images, batch_size=parser_batch_size,
            arch=parser_arch, class_weights=parser_class_weights, max_iters=parser_max_iters,
            workers=workers, device=device, seed=seed, verbose=verbose)
        if model is not None:
            info["parser"], info["parser_trained"] = pinfo, pinfo.get("trained_now", False)
            store = _Store(root, "parser", {"source": "parser",
                                            "parser_id": pinfo["parser_id"]}, verbose,
                           repair=repair)
            stores.append(store)
            _serve_predicted(lists, todo, new, store, info, "parser",
                             lambda paths: ((k, masks_from_parts(a), a) for k, a in predict_parts(
                                 model, paths, batch_size=batch_size, device=device,
                                 workers=workers)),
                             say=say)
            todo, n_todo = {s: [] for s in lists}, 0

    # --- 4. torchvision: segmentation mask + keypoint parts
    tv_note = ""
    if n_todo and "torchvision" in allowed:
        if tv_models is None:
            tv_models = _torchvision_models(fcn_name, kp_name, download)
        if tv_models is not None:
            seg, kp = tv_models
            store = _Store(root, tv_name, {"source": "fcn", "model": fcn_name} if tv_name == "fcn"
                           else {"source": "torchvision", "model": fcn_name,
                                 "keypoints": kp_name if kp is not None else None,
                                 "geometry": pose.GEOMETRY_VERSION}, verbose, repair=repair)
            stores.append(store)
            _serve_predicted(lists, todo, new, store, info, tv_name,
                             lambda paths: pose.predict_pose_parts(
                                 seg, kp, paths, device=device, kp_min_size=keypoint_min_size),
                             say=say, parts="none" if tv_name == "fcn" else "optional")
            todo, n_todo = {s: [] for s in lists}, 0
        else:
            tv_note = (f"segmentation weights {pose.weights_file(fcn_name)}"
                       + (f", keypoint weights {pose.weights_file(kp_name)}" if kp_name else ""))

    if n_todo:
        s = next(k for k, v in todo.items() if v)
        example = lists[s][todo[s][0]].path
        if source == "auto":
            raise NoMaskSourceError(no_source_message(
                dataset, s, len(todo[s]), example, label_root, tv_note or
                f"segmentation weights {pose.weights_file(fcn_name)}, keypoint weights "
                f"{pose.weights_file(kp_name or pose.KEYPOINT_MODEL)}"))
        what = {"synthetic": "the record has no exact mask/parts files",
                "labels": f"no LIP label in {label_root}/<split>{LABEL_DIR_SUFFIX}/",
                "parser": "no parser checkpoint and no labelled set (own, parser_source or "
                          "a sibling under the data root) to train one"}
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
    info["chain"] = {s: _chain_line(dataset.name, s, c, info["parser"], fcn_name, kp_name)
                     for s, c in info["splits"].items()}
    if verbose:
        for s, c in info["splits"].items():
            say(f"masks: {info['chain'][s]}; reused {c.get('cached', 0)} cached, wrote "
                f"{c.get('written', 0)}")
        if info["parser"]:
            say(f"masks: parser held-out mIoU {info['parser'].get('miou', math.nan):.3f}")
        if info["repaired"]:
            say(f"masks: {len(info['repaired'])} bad cached PNG(s) recomputed, e.g. "
                f"{info['repaired'][0]}")
        say(f"masks: done in {info['seconds']:.1f} s")
    return out, info


def _torchvision_models(fcn_name: str, kp_name: str | None, download: bool):
    """(segmentation model, keypoint model or None), or None when the segmentation
    weights do not load (printed)."""
    seg = _load_weights(fcn_name, fcn._load_fcn, download, "this source is skipped")
    if seg is None:
        return None
    kp = None
    if kp_name is not None:
        kp = _load_weights(kp_name, pose._load_keypoint_model, download,
                           "masks only (parts=None) from this source")
    return seg, kp


def _chain_line(name: str, split: str, c: Mapping[str, int], pinfo, fcn_name: str,
                kp_name: str | None) -> str:
    """``"<dataset> <split>: <source> <n>, ..."`` in chain order."""
    label = {"synthetic": "synthetic exact maps", "labels": "parsing labels",
             "parser": f"parser (trained on {(pinfo or {}).get('trained_on', 'unknown')} labels)",
             "torchvision": f"torchvision ({fcn_name} mask + {kp_name} parts)",
             "fcn": f"torchvision ({fcn_name} mask only)"}
    used = [f"{label[k]} {c[k]}" for k in ("synthetic", "labels", "parser", "torchvision", "fcn")
            if c.get(k)]
    if c.get("mask_only"):
        used.append(f"of which mask only (no person detected) {c['mask_only']}")
    return f"{name} {split}: " + (", ".join(used) or "no images")


def _serve_predicted(lists, todo, new, store: _Store, info, name: str, predict, say,
                     parts: str = "required") -> None:
    """Reuse cached predictions, predict the rest in batches, write them, update records.

    ``predict(paths)`` yields ``(index, mask uint8 {0,255}, parts uint8 or None)``.
    ``parts``: ``"required"`` (parser), ``"optional"`` (torchvision: a record without a
    part map keeps ``parts=None`` and is counted in ``mask_only``) or ``"none"`` (masks
    only: ``fcn``).
    """
    parts_optional = parts != "required"
    need: list[tuple[str, int]] = []
    for s, idxs in todo.items():
        for i in idxs:
            r = lists[s][i]
            info["splits"][s][name] += 1
            m, p = store.paths(r.path)
            if store.cached(r.path, need_parts=not parts_optional):
                info["splits"][s]["cached"] += 1
                has_parts = parts == "required" or (parts == "optional"
                                                    and store.cached_parts(r.path))
                if parts == "optional" and not has_parts:
                    info["splits"][s]["mask_only"] += 1
                new[s][i] = dataclasses.replace(r, mask=str(m),
                                                parts=str(p) if has_parts else None)
            else:
                need.append((s, i))
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
            for n, (k, mask, pmap) in enumerate(predict(paths), 1):
                s, i = need[k]
                pending.append(pool.submit(store.write, paths[k], mask, pmap))
                while len(pending) > 512:
                    pending.popleft().result()
                info["splits"][s]["written"] += 1
                if pmap is None and parts == "optional":
                    info["splits"][s]["mask_only"] += 1
                m, p = store.paths(paths[k])
                new[s][i] = dataclasses.replace(lists[s][i], mask=str(m),
                                                parts=None if pmap is None else str(p))
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
        n_mo = sum(c.get("mask_only", 0) for c in info["splits"].values())
        if parts == "optional" and n_mo:
            say(f"masks: {name}: {n_mo} images with no person detected (or no keypoint "
                "model): mask only, parts=None")
    store.commit()


_PARSER_KEYS = ("epochs", "max_images", "batch_size", "arch", "class_weights", "max_iters")


def attach_small_set_masks(sets: Mapping[str, Any],
                           parser_checkpoint: str | os.PathLike | None = None, *,
                           parser_source: Any = None,
                           parser_options: Mapping[str, Any] | None = None,
                           device: str = "auto", seed: int = 0, verbose: bool = True,
                           **attach_options: Any) -> dict[str, Any]:
    """Person masks and part maps for the small-scale sets of MaskReID Table 1.

    The small sets (:mod:`reidnb.data.datasets.small_sets`) have no parsing labels; each
    goes through :func:`attach_masks`' chain (cached under
    ``<cache_base()>/masks/<set>-<path hash>``): the parser from ``parser_checkpoint`` when
    that file exists, else the shared parser of ``parser_source``'s labels (e.g. the
    target Market-1501 run's set), else of a labelled set found beside the small set's
    folder (:mod:`.sources`), trained once and reused by every set; else torchvision's
    pretrained models. No particular ``parser.pt`` is required.

    Args:
        sets: name -> :class:`~reidnb.data.datasets.ReIDDataset` (not modified).
        parser_checkpoint: a ``parser.pt`` to use when it exists (a missing one is noted
            and the chain goes on).
        parser_source: a dataset with labels (or exact maps) to train the parser on.
        parser_options: :func:`~reidnb.data.parts.sources.obtain_parser`-style settings
            (``epochs``, ``max_images``, ``batch_size``, ``max_iters``, ``arch``,
            ``class_weights``) for a parser trained now.
        device, seed, verbose: as :func:`attach_masks`; ``attach_options``: more
            :func:`attach_masks` keywords (``download``, ``parser_root``, ``cache_root``
            is not allowed: each set has its own).

    Returns:
        name -> the dataset with every record's ``mask`` (and, where a source gives
        parts, ``parts``) set.

    Raises:
        NoMaskSourceError (a FileNotFoundError and RuntimeError): no source for a set;
            the message names every way to provide the masks.
    """
    opts = {(f"parser_{k}" if k in _PARSER_KEYS else k): v
            for k, v in dict(parser_options or {}).items()}
    out = {}
    for name, ds in sets.items():
        splits = tuple(s for s in ("train", "query", "gallery") if getattr(ds, s))
        out[name], _ = attach_masks(ds, parser_checkpoint=parser_checkpoint, splits=splits,
                                    parser_source=parser_source, device=device, seed=seed,
                                    verbose=verbose, **opts, **attach_options)
    return out

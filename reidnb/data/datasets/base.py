"""Dataset core types: the record, the train/query/gallery dataset, subsets and images.

What every dataset loader of :mod:`reidnb.data.datasets` returns and what the training and
evaluation code consumes:

- :class:`Record`: one image (path, pid, 0-based camid, optional mask / part-map paths);
- :class:`ReIDDataset`: train/query/gallery record lists plus counts and notes, with
  measured-versus-published statistics;
- :func:`subset_train` / :func:`subset_test`: seeded identity subsets (quick profiles);
- :class:`ImageDataset`: the torch Dataset that decodes images, masks and part maps;
- the Market-1501 naming constants shared by the loaders (:data:`SPLIT_DIRS`, ...).

Conventions follow torchreid (``data/datasets/image/market1501.py``, ``ImageDataset``):
train pids relabelled 0..n-1, query/gallery pids original, camid 0-based.
"""
from __future__ import annotations

import dataclasses
import math
import re
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from PIL import Image

__all__ = ["Record", "ReIDDataset", "STAT_QUANTITIES", "SPLIT_DIRS", "MULTI_QUERY_DIR",
           "PID_CAM_PATTERN", "IMAGE_EXTENSIONS", "subset_train", "subset_test",
           "ImageDataset"]

#: The pid/camid groups shared by all three real naming schemes (DESIGN.md "Data").
PID_CAM_PATTERN = re.compile(r"([-\d]+)_c(\d+)")

#: Extensions treated as images; a file with another extension (``Thumbs.db``,
#: ``readme.txt``, ...) is not part of the protocol: it is counted and reported as skipped.
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff",
                              ".webp"})

#: The split folders of the Market-1501 layout (also Duke, CUHK03-NP and synthetic).
SPLIT_DIRS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
MULTI_QUERY_DIR = "gt_bbox"


@dataclasses.dataclass(frozen=True)
class Record:
    """One image of a re-ID dataset.

    Attributes:
        path: absolute path of the image file.
        pid: identity. Train: relabelled 0..num_train_pids-1. Query/gallery: the original
            pid from the file name (0 = distractor, -1 = junk).
        camid: 0-based camera index (file ``c1`` -> 0), as torchreid.
        mask: path of a single-channel PNG foreground mask (0/255), or None.
        parts: path of a single-channel PNG part-label map (uint8 0..7), or None.
    """

    path: str
    pid: int
    camid: int
    mask: str | None = None
    parts: str | None = None



#: Row order of :meth:`ReIDDataset.stats`.
STAT_QUANTITIES = (
    "train ids", "train images", "train cameras", "query ids", "query images",
    "gallery ids", "gallery images", "gallery junk (pid -1)", "gallery distractors (pid 0)",
    "gt_bbox images", "queries with a multi-query group",
)


@dataclasses.dataclass
class ReIDDataset:
    """Train/query/gallery record lists of one dataset (DESIGN.md "Data").

    Attributes:
        name: ``load_dataset`` name, e.g. ``"market1501"``.
        root: the folder holding ``bounding_box_train/`` etc.
        kind: ``"real"`` or ``"synthetic"``.
        train: records with pids relabelled 0..num_train_pids-1 (junk removed).
        query: records with original pids (junk removed).
        gallery: records with original pids (junk -1 and distractors 0 kept).
        num_train_pids: number of train identities.
        num_train_cams: number of distinct cameras in train.
        multi_query: ``{query index: [gt_bbox records of the same pid and camid]}``
            (Market-1501 and synthetic; ``{}`` otherwise or without ``gt_bbox/``).
        published: the published counts, keyed like :data:`STAT_QUANTITIES` (synthetic:
            the counts its generator declares in ``meta.json``, a self-check).
        notes: what was skipped or changed on the way (printed by :meth:`summary`).
        num_gt_bbox: number of ``gt_bbox/`` images listed (multi-query source; 0 if none).
    """

    name: str
    root: Path
    kind: str
    train: list[Record]
    query: list[Record]
    gallery: list[Record]
    num_train_pids: int
    num_train_cams: int
    multi_query: dict[int, list[Record]] = dataclasses.field(default_factory=dict)
    published: Mapping[str, float] = dataclasses.field(default_factory=dict)
    notes: tuple[str, ...] = ()
    num_gt_bbox: int = 0

    def pids(self, split: str = "train") -> list[int]:
        """The pid of every record of ``split`` (``train``/``query``/``gallery``), in order;
        what :class:`~reidnb.data.samplers.RandomIdentitySampler` takes."""
        return [r.pid for r in self._split(split)]

    def _split(self, split: str) -> list[Record]:
        if split not in SPLIT_DIRS:
            raise KeyError(f"unknown split {split!r}; expected one of {sorted(SPLIT_DIRS)}")
        return getattr(self, split)

    def measured(self) -> dict[str, int]:
        """The counts of :data:`STAT_QUANTITIES` measured on the loaded records."""
        g_pids = Counter(r.pid for r in self.gallery)
        out = {
            "train ids": len({r.pid for r in self.train}),
            "train images": len(self.train),
            "train cameras": len({r.camid for r in self.train}),
            "query ids": len({r.pid for r in self.query}),
            "query images": len(self.query),
            "gallery ids": len([p for p in g_pids if p > 0]),
            "gallery images": len(self.gallery),
            "gallery junk (pid -1)": g_pids.get(-1, 0),
            "gallery distractors (pid 0)": g_pids.get(0, 0),
        }
        if self.multi_query:
            out["gt_bbox images"] = self.num_gt_bbox
            out["queries with a multi-query group"] = sum(1 for g in self.multi_query.values() if g)
        return out

    def stats(self):
        """Measured versus published counts.

        Returns:
            pandas.DataFrame with columns ``quantity`` (str), ``measured`` (int) and
            ``published`` (float, NaN where the dataset's authors give no number; for the
            synthetic set, what its generator declares in ``meta.json``), one row
            per quantity of :data:`STAT_QUANTITIES` that applies. ``gt_bbox images``
            counts the ``gt_bbox/`` files listed (multi-query datasets only).
        """
        import pandas as pd

        measured = self.measured()
        rows = [(q, measured[q], float(self.published.get(q, math.nan)))
                for q in STAT_QUANTITIES if q in measured]
        return pd.DataFrame(rows, columns=["quantity", "measured", "published"])

    def summary(self) -> str:
        """A printable table of :meth:`stats` with a match mark per row, plus the notes."""
        df = self.stats()
        ref = "declared" if self.kind == "synthetic" else "published"
        lines = [f"{self.name} ({self.kind}) at {self.root}",
                 f"  {'quantity':<34}{'measured':>10}{ref:>11}"]
        mismatches = []
        for q, m, p in df.itertuples(index=False):
            if math.isnan(p):
                mark, ptxt = "", "-"
            else:
                ok = int(p) == int(m)
                mark, ptxt = ("ok" if ok else "MISMATCH"), f"{int(p):,}"
                if not ok:
                    mismatches.append(q)
            lines.append(f"  {q:<34}{int(m):>10,}{ptxt:>11}  {mark}")
        if mismatches:
            lines.append(f"  differs from the {ref} numbers: " + ", ".join(mismatches))
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def __repr__(self) -> str:  # the record lists are far too long for the default repr
        return (f"ReIDDataset(name={self.name!r}, kind={self.kind!r}, root='{self.root}', "
                f"train={len(self.train)}, query={len(self.query)}, "
                f"gallery={len(self.gallery)}, num_train_pids={self.num_train_pids}, "
                f"num_train_cams={self.num_train_cams}, multi_query={len(self.multi_query)})")


def subset_train(dataset: ReIDDataset, max_pids: int | None, seed: int = 0) -> ReIDDataset:
    """Keep ``max_pids`` random training identities (relabelled 0..max_pids-1).

    Query and gallery are unchanged, so the test protocol stays standard; the reduction is
    recorded in ``notes`` and shows in :meth:`ReIDDataset.summary`. The choice is a pure
    function of (``seed``, the train pids).

    Args:
        dataset: a loaded dataset (not modified).
        max_pids: how many identities to keep; ``None`` or ``>= num_train_pids`` returns
            ``dataset`` itself.
        seed: random seed of the choice.

    Returns:
        a new :class:`ReIDDataset` (same query/gallery) with the subset's train records.

    Raises:
        ValueError: ``max_pids < 1``.
    """
    if max_pids is None or max_pids >= dataset.num_train_pids:
        return dataset
    if max_pids < 1:
        raise ValueError(f"max_pids must be >= 1 (or None for all), got {max_pids}")
    pids = sorted({r.pid for r in dataset.train})
    keep = sorted(np.random.default_rng(seed).choice(pids, size=max_pids, replace=False).tolist())
    relabel = {p: i for i, p in enumerate(keep)}
    train = [dataclasses.replace(r, pid=relabel[r.pid]) for r in dataset.train if r.pid in relabel]
    note = (f"train subset: {max_pids} of {dataset.num_train_pids} identities "
            f"({len(train)} of {len(dataset.train)} images, seed {seed})")
    out = dataclasses.replace(dataset, train=train, num_train_pids=max_pids,
                              num_train_cams=len({r.camid for r in train}),
                              notes=dataset.notes + (note,))
    return out


def subset_test(dataset: ReIDDataset, max_pids: int | None, seed: int = 0) -> ReIDDataset:
    """Keep the query/gallery images of ``max_pids`` random test identities (synthetic only).

    For the quick profile on the generated set, where evaluating a variant on the full
    test split on the CPU costs as much as training it. Gallery distractors (pid 0) and
    junk (pid -1) are kept in the same proportion (every k-th, by file order); the
    multi-query groups of the kept queries are re-indexed. The choice is a pure function
    of (``seed``, the test pids).

    Args:
        dataset: a loaded synthetic dataset (not modified).
        max_pids: query identities to keep; ``None`` or ``>=`` their number returns
            ``dataset`` itself.
        seed: random seed of the choice.

    Returns:
        a new :class:`ReIDDataset` with the reduced query, gallery and multi-query groups.

    Raises:
        ValueError: a real dataset (the test protocol of a real set must stay standard),
            or ``max_pids < 1``.
    """
    if max_pids is None:
        return dataset
    if dataset.kind != "synthetic":
        raise ValueError(f"subset_test: refusing to reduce the test split of the real dataset "
                         f"{dataset.name!r} at {dataset.root} (its protocol stays standard); "
                         "set max_test_pids=None")
    if max_pids < 1:
        raise ValueError(f"max_pids must be >= 1 (or None for all), got {max_pids}")
    pids = sorted({r.pid for r in dataset.query})
    if max_pids >= len(pids):
        return dataset
    keep = set(np.random.default_rng(seed).choice(pids, size=max_pids, replace=False).tolist())
    frac = max_pids / len(pids)
    q_idx = [i for i, r in enumerate(dataset.query) if r.pid in keep]
    others = [r for r in dataset.gallery if r.pid <= 0]
    stride = max(1, round(1 / frac))
    kept_others = {id(r) for r in others[::stride]}
    gallery = [r for r in dataset.gallery if r.pid in keep or id(r) in kept_others]
    mq = {new: dataset.multi_query[old] for new, old in enumerate(q_idx)
          if old in dataset.multi_query}
    note = (f"test subset: {max_pids} of {len(pids)} query identities ({len(q_idx)} of "
            f"{len(dataset.query)} queries, {len(gallery)} of {len(dataset.gallery)} gallery "
            f"images incl. every {stride}-th distractor/junk, seed {seed})")
    return dataclasses.replace(dataset, query=[dataset.query[i] for i in q_idx],
                               gallery=gallery, multi_query=mq, notes=dataset.notes + (note,))


# --------------------------------------------------------------------------- images


def _open_rgb(path: str) -> Image.Image:
    """Decode an image file as an RGB PIL image (uint8, H x W x 3 when made an array).

    Raises:
        FileNotFoundError: the file is missing.
        OSError: PIL cannot decode it (message names the path).
    """
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except FileNotFoundError:
        raise
    except Exception as e:  # PIL raises UnidentifiedImageError, OSError, SyntaxError...
        raise OSError(f"cannot decode image {path}: {type(e).__name__}: {e}") from e


def _open_label(path: str, what: str, img_path: str, img_size: tuple[int, int]) -> Image.Image:
    """Read a single-channel label PNG (mask 0/255 or part map 0..7) as a mode-"L" image.

    A palette PNG gives its indices (the labels), not its colours.

    Args:
        path: the label file. what: ``"mask"`` / ``"part map"`` (for messages).
        img_path, img_size: its image and that image's (W, H) in pixels.

    Raises:
        FileNotFoundError: the label file is missing (names it and its image).
        OSError: it cannot be read or is not single-channel (names it).
        ValueError: its size differs from its image's (names both paths and sizes).
    """
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode not in ("L", "P", "1", "I;16", "I"):
                raise ValueError(f"mode {im.mode!r}, expected a single-channel PNG")
            if im.mode == "P":  # palette PNG: the indices are the labels, not the colours
                lab = Image.fromarray(np.asarray(im, dtype=np.uint8))
            else:
                lab = im.convert("L") if im.mode != "L" else im.copy()
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} {path} of image {img_path} is missing") from None
    except Exception as e:
        raise OSError(f"cannot read {what} {path}: {type(e).__name__}: {e}") from e
    if lab.size != img_size:
        raise ValueError(f"{what} {path} is {lab.size[0]}x{lab.size[1]} (W x H) but its image "
                         f"{img_path} is {img_size[0]}x{img_size[1]}")
    return lab


class ImageDataset(torch.utils.data.Dataset):
    """A torch Dataset over :class:`Record` s; decodes images (and masks / part maps).

    Item (a dict, so the default collate works):
        ``img``: float32 [3, H, W], normalised by ``transform``;
        ``pid``: int64 scalar tensor; ``camid``: int64 scalar tensor (0-based);
        ``index``: int (position in ``records``); ``path``: str;
        ``mask``: float32 [1, H, W] in {0, 1} (only with ``load_mask``);
        ``parts``: int64 [H, W] in 0..7 (only with ``load_parts``).

    Args:
        records: the records, e.g. ``dataset.train``.
        transform: a :class:`~reidnb.data.transforms.PairedTransform` (called as
            ``transform(img, mask=..., parts=...)`` returning a dict); ``None`` = no resize,
            ImageNet normalisation only.
        load_mask, load_parts: also load ``record.mask`` / ``record.parts``.

    Raises:
        ValueError: (at construction) ``load_mask``/``load_parts`` while a record has no
            mask/parts path; (per item) a mask/part map whose size differs from its image
            (message names both paths and sizes) or part labels outside 0..7.
        OSError: (per item) an image PIL cannot decode (message names the path).
    """

    def __init__(self, records: Sequence[Record], transform: Callable | None = None,
                 load_mask: bool = False, load_parts: bool = False):
        self.records = list(records)
        if transform is None:
            from ..transforms import build_transforms

            transform = build_transforms(None, None, is_train=False)
        self.transform = transform
        self.load_mask = load_mask
        self.load_parts = load_parts
        for flag, attr in ((load_mask, "mask"), (load_parts, "parts")):
            if flag:
                missing = [r for r in self.records if getattr(r, attr) is None]
                if missing:
                    raise ValueError(
                        f"load_{attr}=True but {len(missing)} of {len(self.records)} records "
                        f"have no {attr} path, e.g. {missing[0].path}; build them with "
                        "reidnb.data.parts.attach_masks (real data) or use the synthetic set")

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        r = self.records[index]
        img = _open_rgb(r.path)
        mask = _open_label(r.mask, "mask", r.path, img.size) if self.load_mask else None
        parts = _open_label(r.parts, "part map", r.path, img.size) if self.load_parts else None
        if parts is not None:
            top = max(parts.getextrema())
            if top > 7:
                raise ValueError(f"part map {r.parts} has label {top}; expected 0..7 "
                                 "(0 background, 1 head, ..., 7 foot)")
        out = self.transform(img, mask=mask, parts=parts)
        item: dict[str, Any] = {
            "img": out["img"],
            "pid": torch.tensor(r.pid, dtype=torch.int64),
            "camid": torch.tensor(r.camid, dtype=torch.int64),
            "index": index,
            "path": r.path,
        }
        if self.load_mask:
            item["mask"] = out["mask"]
        if self.load_parts:
            item["parts"] = out["parts"]
        return item

"""The small-scale re-ID sets of MaskReID Table 1 and DGD's joint (JSTL) training set.

MaskReID (Qi et al., ICME 2019, 000 §3.2 / Table 1; long version 003 Table 1) trains its
stage 1 jointly on VIPeR, PRID 2011, 3DPeS, iLIDS, CUHK01, CUHK03 (classic protocol) and
Shinpuhkan, as DGD (Xiao et al., "Learning Deep Feature Representations with Domain Guided
Dropout", CVPR 2016) does. One loader per set, registered in :data:`SMALL_SET_LOADERS`;
:func:`load_small_set` picks it by name, :func:`find_small_sets` loads every set present
and :func:`joint_train_set` concatenates their training splits with disjoint labels.

Folder layouts follow torchreid (``data/datasets/image/{viper,prid,ilids,cuhk01,cuhk03}.py``,
CUHK03 after torchreid's own preprocessing) and, for 3DPeS and Shinpuhkan, the raw folders
as DGD's ``data/format_*.py`` read them (:data:`SMALL_SETS`). A torchreid ``splits*.json``
beside the data is followed (split 0); otherwise a seeded split by the same rule is drawn
and the folder is never written.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from .base import Record, ReIDDataset

__all__ = ["SMALL_SETS", "SMALL_SET_LOADERS", "load_small_set", "find_small_sets",
           "joint_train_set"]

#: Small-scale sets of 000 Table 1 / DGD's joint (JSTL) training set: name -> (folder under
#: data_root, what the folder must hold). Layouts as torchreid (``viper``, ``prid``,
#: ``ilids``, ``cuhk01``, ``cuhk03`` classic after torchreid's own preprocessing) and
#: the raw 3DPeS / Shinpuhkan folders as DGD's ``data/format_*.py`` read them.
SMALL_SETS: dict[str, tuple[str, str]] = {}

#: name -> loader ``fn(root, what, seed) -> ReIDDataset`` (``root`` = ``<data_root>/<folder>``).
SMALL_SET_LOADERS: dict[str, Callable[[Path, str, int], ReIDDataset]] = {}


def _small_set(name: str, folder: str, what: str) -> Callable:
    """Register a loader under ``name`` with its folder and expected layout."""
    def register(fn: Callable[[Path, str, int], ReIDDataset]):
        SMALL_SETS[name] = (folder, what)
        SMALL_SET_LOADERS[name] = fn
        return fn
    return register


# --------------------------------------------------------------------------- helpers


def _dataset(name: str, root: Path, train, query, gallery, notes) -> ReIDDataset:
    """A kind-"real" :class:`ReIDDataset` with the train pids relabelled 0..n-1 (sorted)."""
    pids = sorted({r.pid for r in train})
    relabel = {p: i for i, p in enumerate(pids)}
    train = [dataclasses.replace(r, pid=relabel[r.pid]) for r in train]
    return ReIDDataset(name=name, root=root, kind="real", train=train, query=query,
                       gallery=gallery, num_train_pids=len(pids),
                       num_train_cams=len({r.camid for r in train}), notes=tuple(notes))


def _glob(folder: Path, pattern: str, what: str) -> list[Path]:
    """Sorted files of ``folder`` matching ``pattern``.

    Raises:
        FileNotFoundError: no such folder, or no matching file (names it and ``what``).
    """
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} not found; expected {what}")
    files = sorted(folder.glob(pattern))
    if not files:
        raise FileNotFoundError(f"{folder} holds no {pattern} files; expected {what}")
    return files


def _split_json(path: Path) -> Any | None:
    """The torchreid split list in ``path``, or None when the file is absent.

    Raises:
        ValueError: the file is not JSON (names it).
    """
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not a readable torchreid split file ({e})") from e


def _two_camera_set(name, root, cam_a, cam_b, split, seed, notes, pid_of=None) -> ReIDDataset:
    """VIPeR / CUHK01 style: half of the ids train, camera a = query, camera b = gallery.

    ``cam_a`` / ``cam_b``: (files, split-file name for the note); ``split``: torchreid's
    split 0 (its ``train`` file names decide the train ids) or None (seeded half/half).
    """
    items = [(str(p), pid_of(p) if pid_of else i, 0) for i, p in enumerate(cam_a[0])] + \
            [(str(p), pid_of(p) if pid_of else i, 1) for i, p in enumerate(cam_b[0])]
    if split is not None:
        train_names = {os.path.basename(t[0]) for t in split["train"]}
        notes.append(f"split 0 of {cam_a[1]}")
        train_pids = {pid for path, pid, _ in items if os.path.basename(path) in train_names}
    else:
        pids = sorted({pid for _, pid, _ in items})
        rng = np.random.default_rng(seed)
        train_pids = set(rng.permutation(pids)[:len(pids) // 2].tolist())
        notes.append(f"no torchreid split file: seeded half/half split (seed {seed})")
    train = [Record(p, pid, cam) for p, pid, cam in items if pid in train_pids]
    query = [Record(p, pid, cam) for p, pid, cam in items if pid not in train_pids and cam == 0]
    gallery = [Record(p, pid, cam) for p, pid, cam in items if pid not in train_pids and cam == 1]
    return _dataset(name, root, train, query, gallery, notes)


# --------------------------------------------------------------------------- one loader per set


@_small_set("viper", "viper", "VIPeR/cam_a/*.bmp and VIPeR/cam_b/*.bmp (632 + 632)")
def _load_viper(root: Path, what: str, seed: int) -> ReIDDataset:
    """VIPeR (Gray et al., PETS 2007): one image per identity in each of two cameras.

    Half of the ids train; camera A is the query, camera B the gallery (torchreid
    ``viper.py``; ``splits.json`` split 0 when present).
    """
    a = _glob(root / "VIPeR" / "cam_a", "*.bmp", what)
    b = _glob(root / "VIPeR" / "cam_b", "*.bmp", what)
    if len(a) != len(b):
        raise ValueError(f"{root}/VIPeR: cam_a has {len(a)} images, cam_b {len(b)}; "
                         "expected one per identity in each")
    splits = _split_json(root / "splits.json")
    return _two_camera_set("viper", root, (a, "splits.json"), (b, ""),
                           splits[0] if splits else None, seed, [])


@_small_set("prid", "prid2011", "prid_2011/single_shot/cam_a/person_NNNN.png and cam_b/")
def _load_prid(root: Path, what: str, seed: int) -> ReIDDataset:
    """PRID 2011 single shot (Hirzer et al., SCIA 2011), torchreid ``prid.py``.

    100 of the 200 ids seen by both cameras train; query = cam_a of the other 100, gallery
    = their cam_b images + the cam_b-only ids 201-749 (``splits_single_shot.json``
    split 0 when present).
    """
    rng = np.random.default_rng(seed)
    notes: list[str] = []
    base = root / "prid_2011" / "single_shot"
    a = {p.name for p in _glob(base / "cam_a", "person_*.png", what)}
    b = {p.name for p in _glob(base / "cam_b", "person_*.png", what)}
    splits = _split_json(root / "splits_single_shot.json")
    if splits:
        train_ids = [int(p) for p in splits[0]["train"]]
        notes.append("split 0 of splits_single_shot.json")
    else:
        train_ids = sorted(rng.choice(np.arange(1, 201), 100, replace=False).tolist())
        notes.append(f"no torchreid split file: seeded 100/100 split (seed {seed})")
    test_ids = [p for p in range(1, 201) if p not in set(train_ids)]
    fn = "person_{:04d}.png".format
    need = [fn(p) for p in range(1, 201)]
    lacking = [n for n in need if n not in a or n not in b]
    if lacking:
        raise FileNotFoundError(f"{base}: {len(lacking)} of the 200 shared ids lack an "
                                f"image in cam_a or cam_b, e.g. {lacking[0]}")
    train = [Record(str(base / c / fn(p)), p, i) for p in train_ids
             for i, c in enumerate(("cam_a", "cam_b"))]
    query = [Record(str(base / "cam_a" / fn(p)), p, 0) for p in test_ids]
    gallery = [Record(str(base / "cam_b" / fn(p)), p, 1) for p in test_ids] + \
              [Record(str(base / "cam_b" / n), int(n[7:11]), 1) for n in sorted(b)
               if int(n[7:11]) > 200]
    return _dataset("prid", root, train, query, gallery, notes)


@_small_set("3dpes", "3dpes", "RGB/<pid>_<view>_*.bmp")
def _load_3dpes(root: Path, what: str, seed: int) -> ReIDDataset:
    """3DPeS (Baltieri et al., J-HGBU 2011) by DGD's rule: 100 test ids (at most half),
    each id's views split in half into camera 0 (query) and camera 1 (gallery)."""
    rng = np.random.default_rng(seed)
    files = _glob(root / "RGB", "*.bmp", what)
    views: dict[int, dict[str, list[Path]]] = {}
    for p in files:
        parts = p.name.split("_")
        if len(parts) < 3 or not parts[0].isdigit():
            raise ValueError(f"{p}: expected a 3DPeS name <pid>_<view>_..._RGB.bmp")
        views.setdefault(int(parts[0]), {}).setdefault(parts[1], []).append(p)
    pids = sorted(views)
    test = set(rng.permutation(pids)[:min(100, len(pids) // 2)].tolist())
    notes = [f"DGD rule: {len(test)} test ids, views split in half into two cameras "
             f"(seed {seed})"]
    train, query, gallery = [], [], []
    for p in pids:
        vids = sorted(views[p])
        vids = [vids[i] for i in rng.permutation(len(vids))]
        half = max(1, len(vids) // 2)
        for cam, group in ((0, vids[:half]), (1, vids[half:])):
            for v in group:
                for f in views[p][v]:
                    r = Record(str(f), p, cam)
                    (train if p not in test else query if cam == 0 else gallery).append(r)
    return _dataset("3dpes", root, train, query, gallery, notes)


@_small_set("ilids", "ilids", "i-LIDS_Pedestrian/Persons/PPPPIII.jpg (476 images, 119 ids)")
def _load_ilids(root: Path, what: str, seed: int) -> ReIDDataset:
    """iLIDS (Zheng et al., BMVC 2009), torchreid ``ilids.py``: half of the 119 ids train;
    one random query and one other gallery image per test id (``splits.json`` split 0
    when present). camid = the image index within its id (``PPPPIII``: III - 1)."""
    rng = np.random.default_rng(seed)
    notes: list[str] = []
    folder = root / "i-LIDS_Pedestrian" / "Persons"
    files = {p.name: p for p in _glob(folder, "*.jpg", what)}
    by_pid: dict[int, list[str]] = {}
    for n in sorted(files):
        if not re.fullmatch(r"\d{7}\.jpg", n):
            raise ValueError(f"{folder / n}: expected an iLIDS name PPPPIII.jpg")
        by_pid.setdefault(int(n[:4]), []).append(n)
    splits = _split_json(root / "splits.json")
    if splits:
        tr, q, g = splits[0]["train"], splits[0]["query"], splits[0]["gallery"]
        notes.append("split 0 of splits.json")
    else:
        pids = sorted(by_pid)
        order = rng.permutation(pids).tolist()
        train_pids, test_pids = order[:len(pids) // 2], order[len(pids) // 2:]
        tr = [n for p in train_pids for n in by_pid[p]]
        q, g = [], []
        for p in sorted(test_pids):
            two = rng.choice(by_pid[p], 2, replace=False).tolist()
            q.append(two[0])
            g.append(two[1])
        notes.append(f"no torchreid split file: seeded half/half split (seed {seed})")

    def rec(n: str) -> Record:
        if n not in files:
            raise FileNotFoundError(f"{folder / n} (listed in the split) not found")
        return Record(str(files[n]), int(n[:4]), int(n[4:7]) - 1)
    return _dataset("ilids", root, [rec(n) for n in tr], [rec(n) for n in q],
                    [rec(n) for n in g], notes)


@_small_set("cuhk01", "cuhk01", "campus/PPPPIII.png (971 ids x 4)")
def _load_cuhk01(root: Path, what: str, seed: int) -> ReIDDataset:
    """CUHK01 (Li et al., ACCV 2012), torchreid ``cuhk01.py``: views 1-2 = camera A
    (query), 3-4 = camera B (gallery); half of the ids train (``splits.json`` split 0
    when present)."""
    files = _glob(root / "campus", "*.png", what)

    def parse(p: Path) -> tuple[int, int]:
        if not re.fullmatch(r"\d{7}\.png", p.name):
            raise ValueError(f"{p}: expected a CUHK01 name PPPPIII.png")
        return int(p.name[:4]) - 1, (int(p.name[4:7]) - 1) // 2
    a = [p for p in files if parse(p)[1] == 0]
    b = [p for p in files if parse(p)[1] == 1]
    splits = _split_json(root / "splits.json")
    return _two_camera_set("cuhk01", root, (a, "splits.json"), (b, ""),
                           splits[0] if splits else None, seed, [],
                           pid_of=lambda p: parse(Path(p))[0])


@_small_set("cuhk03", "cuhk03", "images_labeled/*.png + splits_classic_labeled.json (torchreid)")
def _load_cuhk03(root: Path, what: str, seed: int) -> ReIDDataset:
    """CUHK03 classic (Li et al., "DeepReID", CVPR 2014): split 0 of torchreid's
    ``splits_classic_labeled.json`` (query = gallery = test images; evaluate with
    ``protocol="cuhk03"``). The split file is required (``seed`` is unused)."""
    splits = _split_json(root / "splits_classic_labeled.json")
    if not splits:
        raise FileNotFoundError(f"{root}/splits_classic_labeled.json not found; expected "
                                f"{what} (run torchreid's CUHK03 preprocessing once: it "
                                "reads cuhk-03.mat with h5py)")
    folder = root / "images_labeled"

    def recs(items) -> list[Record]:
        out = []
        for path, pid, cam in items:
            f = folder / os.path.basename(path)
            if not f.is_file():
                raise FileNotFoundError(f"{f} (listed in splits_classic_labeled.json) "
                                        "not found")
            out.append(Record(str(f), int(pid), int(cam)))
        return out
    notes = ["classic split 0 of splits_classic_labeled.json; evaluate with "
             "protocol='cuhk03'"]
    return _dataset("cuhk03", root, recs(splits[0]["train"]), recs(splits[0]["query"]),
                    recs(splits[0]["gallery"]), notes)


@_small_set("shinpuhkan", "shinpuhkan", "images/PPP_CC_*.jpg (train only)")
def _load_shinpuhkan(root: Path, what: str, seed: int) -> ReIDDataset:
    """Shinpuhkan 2014 (Kawanishi et al., FCV 2014): train only (DGD: all 24 ids train)."""
    files = _glob(root / "images", "*.jpg", what)
    train = []
    for p in files:
        if not re.match(r"\d{3}_\d{2}", p.name):
            raise ValueError(f"{p}: expected a Shinpuhkan name PPP_CC_....jpg")
        train.append(Record(str(p), int(p.name[:3]), int(p.name[4:6]) - 1))
    return _dataset("shinpuhkan", root, train, [], [],
                    ["train only (DGD: all 24 ids for training)"])


# --------------------------------------------------------------------------- public API


def load_small_set(name: str, data_root: str | os.PathLike, *, seed: int = 0) -> ReIDDataset:
    """Load one small-scale set (000 Table 1) as a :class:`ReIDDataset` (kind ``"real"``).

    Split: torchreid's ``splits*.json`` beside the data (split 0) when present, else a
    seeded split by the same rule (the folder is never written): VIPeR / CUHK01 half of
    the ids for training, camera A query and camera B gallery (CUHK01: views 1-2 = A,
    3-4 = B); PRID 2011 single shot 100 of the 200 shared ids for training, query = cam_a
    of the other 100, gallery = their cam_b images + cam_b ids 201-749; iLIDS half of the
    119 ids, one random query and one gallery image per test id; 3DPeS (DGD) 100 test
    ids, each id's views split in half into camera 0 (query) and 1 (gallery); CUHK03
    classic split 0 of torchreid's ``splits_classic_labeled.json`` (query = gallery =
    test images; evaluate with ``protocol="cuhk03"``); Shinpuhkan train only.

    Args:
        name: key of :data:`SMALL_SETS`.
        data_root: folder holding ``<SMALL_SETS[name][0]>/``.
        seed: seed of the split when no split file exists.

    Returns:
        :class:`ReIDDataset` named ``name``; train pids relabelled 0..n-1, query/gallery
        pids as in the files; no mask / part paths.

    Raises:
        KeyError: unknown name. FileNotFoundError: the folder or its images are missing
        (the message names the path and the expected layout). ValueError: an unreadable
        split file or file names that do not follow the layout.
    """
    if name not in SMALL_SET_LOADERS:
        raise KeyError(f"unknown small-scale set {name!r}; expected one of {list(SMALL_SETS)}")
    folder, what = SMALL_SETS[name]
    return SMALL_SET_LOADERS[name](Path(data_root) / folder, what, seed)


def find_small_sets(data_root: str | os.PathLike | None, *, seed: int = 0,
                    verbose: bool = True) -> dict[str, ReIDDataset]:
    """Every small-scale set whose folder exists under ``data_root``: name -> dataset.

    A folder that exists but does not follow its layout raises (the message says what was
    expected); absent folders are listed when ``verbose``. ``data_root`` None: ``{}``.

    Raises:
        as :func:`load_small_set`.
    """
    found: dict[str, ReIDDataset] = {}
    if data_root is None:
        return found
    for name, (folder, what) in SMALL_SETS.items():
        if (Path(data_root) / folder).is_dir():
            found[name] = load_small_set(name, data_root, seed=seed)
            if verbose:
                ds = found[name]
                print(f"{name}: {len(ds.train)} train images / {ds.num_train_pids} ids, "
                      f"{len(ds.query)} query, {len(ds.gallery)} gallery ({'; '.join(ds.notes)})")
    if verbose:
        missing = [f"{SMALL_SETS[n][0]}/ ({SMALL_SETS[n][1]})" for n in SMALL_SETS
                   if n not in found]
        if missing:
            print(f"small-scale sets not found under {data_root}: " + ", ".join(missing))
    return found


def joint_train_set(sets: Mapping[str, ReIDDataset]) -> ReIDDataset:
    """DGD's joint (JSTL) training set: the training splits of ``sets`` with disjoint labels.

    Identities are offset per set (set order), cameras likewise, so no two sets share a
    label; query and gallery are empty (each set is evaluated on its own).

    Returns:
        :class:`ReIDDataset` named ``jstl(<set>+<set>...)`` rooted at the sets' common
        folder; ``notes`` give each set's id range.

    Raises:
        ValueError: no set, or a set with an empty training split.
    """
    if not sets:
        raise ValueError("joint_train_set: no small-scale set given")
    train, pid0, cam0, notes = [], 0, 0, []
    for name, ds in sets.items():
        if not ds.train:
            raise ValueError(f"joint_train_set: {name} has no training images")
        train += [dataclasses.replace(r, pid=r.pid + pid0, camid=r.camid + cam0)
                  for r in ds.train]
        notes.append(f"{name}: ids {pid0}..{pid0 + ds.num_train_pids - 1}")
        pid0 += ds.num_train_pids
        cam0 += max(r.camid for r in ds.train) + 1
    roots = [Path(ds.root) for ds in sets.values()]
    return ReIDDataset(name="jstl(" + "+".join(sets) + ")", root=Path(os.path.commonpath(roots)),
                       kind="real", train=train, query=[], gallery=[], num_train_pids=pid0,
                       num_train_cams=cam0, notes=tuple(notes))

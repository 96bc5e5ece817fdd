"""What each dataset fixture holds: the planned files, their names, sizes and the counts a
loader must report (no pixel is rendered here; :mod:`.fixtures` writes the plans).

One planner per dataset as users download it (layouts of torchreid's
``data/datasets/image/*.py``; 3DPeS and Shinpuhkan as DGD's ``data/format_*.py`` read the
raw folders; CIFAR-100 as ``torchvision.datasets.CIFAR100`` reads it). Every image is one
synthetic pedestrian of :func:`reidnb.data.synthetic.draw.render_job` (128 x 64 render),
cropped (``box``), optionally mirrored and re-coloured (``gain``), and resized to the
dataset's real image size. A plan is a pure function of (name, ids, seed, size).
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any, Callable

import numpy as np

from .draw import _Job
from .scene import NUM_CAMS

__all__ = ["FixtureImage", "FixturePlan", "FIXTURE_FOLDERS", "FIXTURE_DEFAULT_IDS",
           "plan_fixture"]

#: Fixture name -> the top folder it owns under ``root`` (the official download's name).
FIXTURE_FOLDERS = {
    "market1501": "Market-1501-v15.09.15", "dukemtmcreid": "DukeMTMC-reID",
    "cuhk03np": "cuhk03-np", "viper": "viper", "prid": "prid2011", "3dpes": "3dpes",
    "ilids": "ilids", "cuhk01": "cuhk01", "cuhk03": "cuhk03", "shinpuhkan": "shinpuhkan",
    "cifar100": "cifar100",
}
#: Default ``ids`` per fixture: (train ids, test ids) for the three large re-ID sets;
#: identities for VIPeR, 3DPeS, iLIDS, CUHK01, CUHK03 classic, Shinpuhkan; PRID: the
#: cam_b-only gallery ids beyond its fixed 200 shared ids; CIFAR-100: train images per class.
FIXTURE_DEFAULT_IDS: dict[str, Any] = {
    "market1501": (12, 8), "dukemtmcreid": (12, 8), "cuhk03np": (12, 8), "viper": 8,
    "prid": 6, "3dpes": 8, "ilids": 8, "cuhk01": 8, "cuhk03": 9, "shinpuhkan": 4,
    "cifar100": 2,
}
_CODE = {n: i for i, n in enumerate(FIXTURE_FOLDERS)}
_FULL = (0.0, 0.0, 1.0, 1.0)


@dataclasses.dataclass(frozen=True)
class FixtureImage:
    """One planned image.

    Attributes:
        paths: POSIX paths under the fixture root that get these bytes (a Market query is
            also a ``gt_bbox/`` file; CUHK03-NP writes labeled and detected separately).
        pid: identity as the file name states it (-1 junk, 0 distractor).
        cam: camera as the file name states it (1-based).
        role: ``train`` | ``query`` | ``gallery`` | ``gt_bbox`` | ``cam_a`` | ... (informative).
        job: the render (identity, render camera 1..6, image number, crop style).
        size: written (height, width) in pixels.
        box: crop of the 128 x 64 render as fractions (y0, x0, y1, x1) before resizing.
        mirror: flip left-right. gain: RGB gains applied after resizing.
    """

    paths: tuple[str, ...]
    pid: int
    cam: int
    role: str
    job: _Job
    size: tuple[int, int]
    box: tuple[float, float, float, float] = _FULL
    mirror: bool = False
    gain: tuple[float, float, float] = (1.0, 1.0, 1.0)


@dataclasses.dataclass(frozen=True)
class FixturePlan:
    """Everything one fixture writes.

    Attributes:
        name: fixture name (a key of :data:`FIXTURE_FOLDERS`).
        folder: the top folder under ``root`` the fixture owns.
        images: planned images (empty for CIFAR-100, whose pickles are built directly).
        files: other files, POSIX path under root -> bytes (split files, readme).
        expected: what the loaders must report: per ``load_dataset`` / small-set name a
            dict of counts (``train images``, ``train ids``, ``query images``, ...).
        render_seed: the seed passed to ``render_job``.
        meta: plain data recorded in the fixture's ``meta.json``.
    """

    name: str
    folder: str
    images: tuple[FixtureImage, ...]
    files: dict[str, bytes]
    expected: dict[str, dict[str, int]]
    render_seed: int
    meta: dict[str, Any]


class _Builder:
    """Collects images with unique paths; ``rng`` drives names, cameras and sizes."""

    def __init__(self, name: str, seed: int, size: tuple[int, int] | None):
        self.name, self.folder = name, FIXTURE_FOLDERS[name]
        self.rng = np.random.default_rng([seed, _CODE[name], 7])
        self.fixed = size
        self.images: list[FixtureImage] = []
        self.used: set[str] = set()

    def size(self, h: tuple[int, int] | int, aspect: tuple[float, float] | int) -> tuple[int, int]:
        """The fixed override, a fixed (h, w) when both are ints, else h drawn from the
        inclusive range and w = h * aspect drawn from its range."""
        if self.fixed is not None:
            return self.fixed
        if isinstance(h, int) and isinstance(aspect, int):
            return h, aspect
        hh = int(self.rng.integers(h[0], h[1] + 1))
        return hh, max(8, int(round(hh * self.rng.uniform(*aspect))))

    def add(self, paths, pid, cam, role, job, size, **kw) -> FixtureImage:
        paths = tuple(f"{self.folder}/{p}" for p in paths)
        clash = [p for p in paths if p in self.used]
        if clash:
            raise AssertionError(f"fixture plan {self.name}: duplicate file {clash[0]}")
        self.used.update(paths)
        img = FixtureImage(paths, pid, cam, role, job, size, **kw)
        self.images.append(img)
        return img

    def free(self, fmt: Callable[[int], str], start: int) -> str:
        """The first name ``fmt(n)``, n >= start, not planned yet (folder-relative)."""
        n = start
        while f"{self.folder}/{fmt(n)}" in self.used:
            n += 1
        return fmt(n)

    def plan(self, expected, files=None, render_seed=0, **meta) -> FixturePlan:
        return FixturePlan(self.name, self.folder, tuple(self.images), files or {}, expected,
                           render_seed, meta)


def _job(split: str, kind: str, index: int, cam: int, k: int, crop: str) -> _Job:
    """A render key; ``split`` is one of the generator's SPLITS (it seeds the image)."""
    return _Job("fixture", (split,), kind, int(index), int(cam), int(k), crop)


def _jitter(rng: np.random.Generator) -> tuple[float, float, float, float]:
    """A detector-like box inside the render: up to 8 % off the top/bottom, 10 % off the sides."""
    return (float(rng.uniform(0, .08)), float(rng.uniform(0, .1)), float(rng.uniform(.92, 1)),
            float(rng.uniform(.9, 1)))


def _ids(ids, default):
    if ids is None:
        return default
    if isinstance(default, tuple):
        if isinstance(ids, int):
            return ids, max(2, int(np.ceil(ids * 2 / 3)))
        n = tuple(int(i) for i in ids)
        if len(n) != 2:
            raise ValueError(f"ids must be an int or (train ids, test ids), got {ids!r}")
        return n
    return int(ids)


def _counts(train: list, query: list, gallery: list) -> dict[str, int]:
    """Counts as ReIDDataset.measured() reports them (gallery ids without 0 and -1)."""
    return {"train images": len(train), "train ids": len(set(train)),
            "query images": len(query), "query ids": len(set(query)),
            "gallery images": len(gallery), "gallery ids": len({p for p in gallery if p > 0}),
            "gallery junk (pid -1)": gallery.count(-1),
            "gallery distractors (pid 0)": gallery.count(0)}


# --------------------------------------------------------------------------- large re-ID sets


def _plan_market(b: _Builder, ids, seed: int) -> FixturePlan:
    """Market-1501: 2 cameras per id; train 2 detector boxes per camera; test per camera one
    hand-drawn query (also in gt_bbox/), one more gt_bbox/ box and one gallery box; one
    gt_bbox/ box per train id (the real gt_bbox/ covers all 1,501 ids); 4 distractors
    ``0000`` and 3 junk ``-1`` boxes in the gallery."""
    n_tr, n_te = ids
    r = b.rng
    pids = sorted(int(p) for p in r.choice(np.arange(1, 1502), n_tr + n_te, replace=False))
    test = {int(p) for p in r.choice(pids, n_te, replace=False)}
    tr, q, g, gt = [], [], [], 0

    def stem(pid, cam, seq, frame, bb):
        return f"{'-1' if pid < 0 else f'{pid:04d}'}_c{cam}s{seq}_{frame:06d}_{bb:02d}"

    def add(dirs, pid, cam, seq, frame, bb, role, job):
        while any(f"{b.folder}/{d}/{stem(pid, cam, seq, frame, bb)}.jpg" in b.used for d in dirs):
            frame += 1
        b.add([f"{d}/{stem(pid, cam, seq, frame, bb)}.jpg" for d in dirs], pid, cam, role,
              job, b.size(128, 64))
        return frame

    for pid in pids:
        cams = sorted(int(c) + 1 for c in r.choice(NUM_CAMS, 2, replace=False))
        for cam in cams:
            seq, frame = int(r.integers(1, 7)), int(r.integers(1, 140000))
            if pid not in test:
                for k in range(2):
                    frame = add(["bounding_box_train"], pid, cam, seq, frame + int(r.integers(5, 80)),
                                1, "train", _job("bounding_box_train", "id", pid, cam, k, "detector"))
                    tr.append(pid)
                continue
            frame = add(["query", "gt_bbox"], pid, cam, seq, frame + 5, 0, "query",
                        _job("query", "id", pid, cam, 100, "hand"))
            frame = add(["gt_bbox"], pid, cam, seq, frame + int(r.integers(5, 80)), 0, "gt_bbox",
                        _job("gt_bbox", "id", pid, cam, 101, "hand"))
            add(["bounding_box_test"], pid, cam, seq, frame + int(r.integers(5, 80)), 1, "gallery",
                _job("bounding_box_test", "id", pid, cam, 0, "detector"))
            q.append(pid)
            g.append(pid)
            gt += 2
        if pid not in test:
            add(["gt_bbox"], pid, cams[0], 1, int(r.integers(1, 140000)), 0, "gt_bbox",
                _job("gt_bbox", "id", pid, cams[0], 102, "hand"))
            gt += 1
    for kind, pid, n in (("distractor", 0, 4), ("junk", -1, 3)):
        for i in range(n):
            cam = int(r.integers(1, NUM_CAMS + 1))
            add(["bounding_box_test"], pid, cam, int(r.integers(1, 7)), int(r.integers(1, 140000)),
                int(r.integers(1, 9)), kind, _job("bounding_box_test", kind, i, cam, 0,
                                                  "junk" if kind == "junk" else "detector"))
            g.append(pid)
    exp = _counts(tr, q, g)
    exp.update({"gt_bbox images": gt, "queries with a multi-query group": len(q)})
    readme = (b"Market-1501 layout fixture written by reidnb.data.synthetic.fixtures: "
              b"synthetic pedestrians, not the real dataset.\n")
    return b.plan({"market1501": exp}, {f"{b.folder}/readme.txt": readme},
                  train_pids=sorted(set(tr)), test_pids=sorted(test))


def _plan_duke(b: _Builder, ids, seed: int) -> FixturePlan:
    """DukeMTMC-reID: 8 cameras (rendered with camera styles (c - 1) % 6 + 1); 2 cameras per
    id; train 2 images per camera; test per camera one query and one gallery image; 4
    distractor ids (own pids) with one gallery image each. Sizes vary like Duke's boxes."""
    n_tr, n_te = ids
    r = b.rng
    pids = sorted(int(p) for p in r.choice(np.arange(1, 7141), n_tr + n_te + 4, replace=False))
    distract = {int(p) for p in r.choice(pids, 4, replace=False)}
    rest = [p for p in pids if p not in distract]
    test = {int(p) for p in r.choice(rest, n_te, replace=False)}
    tr, q, g = [], [], []

    def add(d, pid, cam, frame, role, job):
        fmt = lambda f: f"{d}/{pid:04d}_c{cam}_f{f:07d}.jpg"  # noqa: E731
        b.add([b.free(fmt, frame)], pid, cam, role, job, b.size((128, 256), (.36, .5)))

    for pid in pids:
        ncam = 1 if pid in distract else 2
        for cam in sorted(int(c) + 1 for c in r.choice(8, ncam, replace=False)):
            rc, frame = (cam - 1) % NUM_CAMS + 1, int(r.integers(1, 9_000_000))
            if pid in distract:
                add("bounding_box_test", pid, cam, frame, "gallery",
                    _job("bounding_box_test", "id", pid, rc, 0, "detector"))
                g.append(pid)
            elif pid in test:
                add("query", pid, cam, frame, "query", _job("query", "id", pid, rc, 100, "hand"))
                add("bounding_box_test", pid, cam, frame + 60, "gallery",
                    _job("bounding_box_test", "id", pid, rc, 0, "detector"))
                q.append(pid)
                g.append(pid)
            else:
                for k in range(2):
                    add("bounding_box_train", pid, cam, frame + 60 * k, "train",
                        _job("bounding_box_train", "id", pid, rc, k, "detector"))
                    tr.append(pid)
    return b.plan({"dukemtmcreid": _counts(tr, q, g)}, train_pids=sorted(set(tr)),
                  test_pids=sorted(test), distractor_pids=sorted(distract))


def _plan_cuhk03np(b: _Builder, ids, seed: int) -> FixturePlan:
    """CUHK03-NP labeled and detected: 2 cameras, names ``PPPP_cC_N.png`` (N 1-5 camera 1,
    6-10 camera 2); train 2 images per camera; test per camera one query and one gallery
    image. ``detected/`` holds the same frames with detector-like boxes and misses one
    train image (as the real detected set has 3 fewer than labeled)."""
    n_tr, n_te = ids
    r = b.rng
    pids = sorted(int(p) for p in r.choice(np.arange(1, 1468), n_tr + n_te, replace=False))
    test = {int(p) for p in r.choice(pids, n_te, replace=False)}
    lab = {"train": [], "query": [], "gallery": []}
    det_drop = None
    for pid in pids:
        rcams = [int(c) + 1 for c in r.choice(NUM_CAMS, 2, replace=False)]
        for cam in (1, 2):
            roles = ("query", "gallery") if pid in test else ("train", "train")
            for i, role in enumerate(roles):
                n = (cam - 1) * 5 + 1 + i
                split = {"train": "bounding_box_train", "query": "query",
                         "gallery": "bounding_box_test"}[role]
                job = _job(split, "id", pid, rcams[cam - 1], i, "hand")
                stem = f"{split}/{pid:04d}_c{cam}_{n}.png"
                b.add([f"labeled/{stem}"], pid, cam, role, job, b.size((144, 176), (.32, .42)))
                lab[role].append(pid)
                if role == "train":
                    det_drop = stem
                b.add([f"detected/{stem}"], pid, cam, role, job, b.size((144, 176), (.32, .42)),
                      box=_jitter(r))
    # the detected set misses the last train image
    b.images = [im for im in b.images if im.paths[0] != f"{b.folder}/detected/{det_drop}"]
    b.used.discard(f"{b.folder}/detected/{det_drop}")
    det_train = list(lab["train"][:-1])
    return b.plan({"cuhk03np-labeled": _counts(lab["train"], lab["query"], lab["gallery"]),
                   "cuhk03np-detected": _counts(det_train, lab["query"], lab["gallery"])},
                  train_pids=sorted(set(lab["train"])), test_pids=sorted(test),
                  detected_missing=f"detected/{det_drop}")


# --------------------------------------------------------------------------- small sets


def _two_cams(b: _Builder) -> list[int]:
    return [int(c) + 1 for c in b.rng.choice(NUM_CAMS, 2, replace=False)]


def _half(n: int, per_train: int, per_query: int, per_gallery: int) -> dict[str, int]:
    """Counts of a set whose loader trains on n // 2 ids and tests on the rest."""
    t = n - n // 2
    return {"train images": per_train * (n // 2), "train ids": n // 2,
            "query images": per_query * t, "query ids": t, "gallery images": per_gallery * t}


def _plan_viper(b: _Builder, n: int, seed: int) -> FixturePlan:
    """VIPeR: ``VIPeR/cam_a/NNN_A.bmp`` and ``cam_b/`` (A = viewpoint angle), 128 x 48 BMP."""
    for i in range(n):
        ra, rb = _two_cams(b)
        for d, rc, role in (("cam_a", ra, "cam_a"), ("cam_b", rb, "cam_b")):
            angle = int(b.rng.choice([0, 45, 90, 135, 180]))
            b.add([f"VIPeR/{d}/{i:03d}_{angle}.bmp"], i, 1 if d == "cam_a" else 2, role,
                  _job("query" if d == "cam_a" else "bounding_box_test", "id", i, rc, 0, "hand"),
                  b.size(128, 48))
    return b.plan({"viper": _half(n, 2, 1, 1)})


def _plan_prid(b: _Builder, m: int, seed: int) -> FixturePlan:
    """PRID 2011 single shot: ``prid_2011/single_shot/cam_a|cam_b/person_NNNN.png``, 128 x 64.
    Ids 1-200 are seen by both cameras (torchreid's protocol needs all 200; the cam_b image
    is the cam_a render re-shot: mirrored, re-cropped, re-coloured, to keep the fixture
    fast); 4 cam_a-only ids 201-204 and ``m`` cam_b-only ids 201.. are other people."""
    base = "prid_2011/single_shot"
    for p in range(1, 201):
        ra, _ = _two_cams(b)
        job = _job("query", "id", p, ra, 0, "hand")
        b.add([f"{base}/cam_a/person_{p:04d}.png"], p, 1, "cam_a", job, b.size(128, 64))
        gain = tuple(float(x) for x in b.rng.uniform(0.75, 1.25, 3))
        b.add([f"{base}/cam_b/person_{p:04d}.png"], p, 2, "cam_b", job, b.size(128, 64),
              box=_jitter(b.rng), mirror=True, gain=gain)
    for p in range(201, 205):
        b.add([f"{base}/cam_a/person_{p:04d}.png"], p, 1, "cam_a",
              _job("query", "id", 1000 + p, int(b.rng.integers(1, 7)), 0, "hand"), b.size(128, 64))
    for p in range(201, 201 + m):
        b.add([f"{base}/cam_b/person_{p:04d}.png"], p, 2, "cam_b",
              _job("bounding_box_test", "id", 2000 + p, int(b.rng.integers(1, 7)), 0, "hand"),
              b.size(128, 64))
    return b.plan({"prid": {"train images": 200, "train ids": 100, "query images": 100,
                            "query ids": 100, "gallery images": 100 + m}})


def _plan_3dpes(b: _Builder, n: int, seed: int) -> FixturePlan:
    """3DPeS raw: ``RGB/<pid>_<view>_FRAME_<f>_RGB.bmp``, 3 views of one image per id, sizes
    varying around 160 x 70 (DGD's loader splits each id's views into two cameras)."""
    for p in range(1, n + 1):
        for v, rc in enumerate([int(c) + 1 for c in b.rng.choice(NUM_CAMS, 3, replace=False)], 1):
            f = int(b.rng.integers(1, 5000))
            b.add([f"RGB/{p}_{v}_FRAME_{f}_RGB.bmp"], p, v, "view",
                  _job("bounding_box_train", "id", p, rc, v, "detector"),
                  b.size((120, 200), (.38, .48)))
    t = min(100, n // 2)
    return b.plan({"3dpes": {"train images": 3 * (n - t), "train ids": n - t,
                             "query images": t, "query ids": t, "gallery images": 2 * t}})


def _plan_ilids(b: _Builder, n: int, seed: int) -> FixturePlan:
    """iLIDS: ``i-LIDS_Pedestrian/Persons/PPPPIII.jpg``, 3 images per id, 128 x 64 JPEG."""
    for p in range(1, n + 1):
        for k in range(1, 4):
            b.add([f"i-LIDS_Pedestrian/Persons/{p:04d}{k:03d}.jpg"], p, k, "image",
                  _job("bounding_box_train", "id", p, int(b.rng.integers(1, 7)), k, "hand"),
                  b.size(128, 64))
    return b.plan({"ilids": _half(n, 3, 1, 1)})


def _plan_cuhk01(b: _Builder, n: int, seed: int) -> FixturePlan:
    """CUHK01: ``campus/PPPPIII.png``, views 1-2 camera A and 3-4 camera B, 160 x 60 PNG."""
    for p in range(1, n + 1):
        ra, rb = _two_cams(b)
        for k in range(1, 5):
            b.add([f"campus/{p:04d}{k:03d}.png"], p, 1 + (k - 1) // 2, "view",
                  _job("bounding_box_train", "id", p, ra if k <= 2 else rb, k, "hand"),
                  b.size(160, 60))
    return b.plan({"cuhk01": _half(n, 4, 2, 2)})


def _plan_cuhk03(b: _Builder, n: int, seed: int) -> FixturePlan:
    """CUHK03 classic after torchreid's preprocessing: ``images_labeled/C_PPP_V_II.png``
    (camera pair, pid, view 1/2, image 01-02 / 06-07) and ``splits_classic_labeled.json``
    (one split: n // 3 test ids, query = gallery = their images, labels relabelled)."""
    t = n // 3
    test = {int(i) for i in b.rng.choice(n, t, replace=False)}
    split: dict[str, Any] = {"train": [], "query": []}
    for i in range(n):
        campid, pidno = 1 + i % 5, 1 + i // 5
        ra, rb = _two_cams(b)
        role = "query" if i in test else "train"
        label = sorted(test).index(i) if i in test else sorted(set(range(n)) - test).index(i)
        for view, imgs, rc in ((1, (1, 2), ra), (2, (6, 7), rb)):
            for img in imgs:
                name = f"{campid}_{pidno:03d}_{view}_{img:02d}.png"
                b.add([f"images_labeled/{name}"], i, view, role,
                      _job("bounding_box_train", "id", i + 1, rc, img, "hand"),
                      b.size((144, 176), (.32, .42)))
                split[role].append([f"reid-data/cuhk03/images_labeled/{name}", label, view - 1])
    split["gallery"] = split["query"]
    split.update(num_train_pids=n - t, num_train_imgs=len(split["train"]), num_query_pids=t,
                 num_query_imgs=len(split["query"]), num_gallery_pids=t,
                 num_gallery_imgs=len(split["query"]))
    files = {f"{b.folder}/splits_classic_labeled.json": json.dumps([split], indent=4).encode()}
    return b.plan({"cuhk03": {"train images": 4 * (n - t), "train ids": n - t,
                              "query images": 4 * t, "query ids": t, "gallery images": 4 * t}},
                  files)


def _plan_shinpuhkan(b: _Builder, n: int, seed: int) -> FixturePlan:
    """Shinpuhkan 2014 raw: ``images/PPP_CC_NNNN.jpg`` (2 of 16 cameras per id, 2 images
    each), 128 x 48 JPEG; train only."""
    for p in range(1, n + 1):
        for cam in sorted(int(c) + 1 for c in b.rng.choice(16, 2, replace=False)):
            for k in range(1, 3):
                b.add([f"images/{p:03d}_{cam:02d}_{k:04d}.jpg"], p, cam, "train",
                      _job("bounding_box_train", "id", p, (cam - 1) % NUM_CAMS + 1, k,
                           "detector"), b.size(128, 48))
    return b.plan({"shinpuhkan": {"train images": 4 * n, "train ids": n, "query images": 0,
                                  "gallery images": 0}})


def _plan_cifar(b: _Builder, m: int, seed: int) -> FixturePlan:
    """CIFAR-100 (``cifar-100-python/{train,test,meta}``): m train and 1 test image per class;
    the pickles are built by the writer."""
    return b.plan({"cifar100": {"train images": 100 * m, "test images": 100, "classes": 100}},
                  per_class=m)


_PLANNERS: dict[str, Callable[..., FixturePlan]] = {
    "market1501": _plan_market, "dukemtmcreid": _plan_duke, "cuhk03np": _plan_cuhk03np,
    "viper": _plan_viper, "prid": _plan_prid, "3dpes": _plan_3dpes, "ilids": _plan_ilids,
    "cuhk01": _plan_cuhk01, "cuhk03": _plan_cuhk03, "shinpuhkan": _plan_shinpuhkan,
    "cifar100": _plan_cifar,
}


def plan_fixture(name: str, *, ids: Any = None, seed: int = 0,
                 height: int | None = None, width: int | None = None) -> FixturePlan:
    """The plan of one fixture (what :func:`reidnb.data.synthetic.fixtures.write_fixture`
    writes), without rendering.

    Args:
        name: a key of :data:`FIXTURE_FOLDERS`.
        ids: see :data:`FIXTURE_DEFAULT_IDS` (None: the default; for the three large
            re-ID sets an int n means (n, ceil(2n/3)) train/test ids).
        seed: seed of names, cameras, sizes and renders.
        height, width: write every image at this size (both or neither; default each
            dataset's real size, fixed or varying per image).

    Returns:
        :class:`FixturePlan`.

    Raises:
        KeyError: unknown name. ValueError: bad ``ids``, only one of height/width, sizes < 8,
        a negative seed.
    """
    if name not in _PLANNERS:
        raise KeyError(f"unknown fixture {name!r}; expected one of {list(_PLANNERS)}")
    if (height is None) != (width is None):
        raise ValueError(f"give both height and width or neither, got {height}, {width}")
    if seed < 0:
        raise ValueError(f"fixture seed must be >= 0, got {seed}")
    if height is not None and min(height, width) < 8:
        raise ValueError(f"fixture image size must be at least 8 x 8, got {height} x {width}")
    n = _ids(ids, FIXTURE_DEFAULT_IDS[name])
    low = {"market1501": 1, "dukemtmcreid": 1, "cuhk03np": 1, "prid": 0, "cuhk03": 3}.get(name, 2)
    if min(n if isinstance(n, tuple) else (n,)) < low:
        raise ValueError(f"fixture {name}: ids={ids!r} is too small (each count >= {low})")
    b = _Builder(name, seed, None if height is None else (int(height), int(width)))
    plan = _PLANNERS[name](b, n, seed)
    meta = dict(plan.meta, ids=list(n) if isinstance(n, tuple) else n, seed=seed,
                size=None if height is None else [height, width])
    return dataclasses.replace(plan, render_seed=1000 + 64 * seed + _CODE[name], meta=meta)

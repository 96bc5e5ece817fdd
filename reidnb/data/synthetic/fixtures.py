"""Tiny synthetic datasets in the OFFICIAL folder layouts and file names, for offline tests.

:func:`write_fixture` renders synthetic pedestrians (:func:`~reidnb.data.synthetic.draw.render_job`,
unchanged: the generated synthetic set stays bit-identical) into the layout a user gets
from each dataset's download, so the real loaders (``load_dataset``, ``find_small_sets``,
``find_cifar100``) and the paper-profile dry runs can be exercised without the data:

=============== ====================================================== ===================
name            layout under ``root`` (torchreid / DGD / torchvision)   images
=============== ====================================================== ===================
market1501      ``Market-1501-v15.09.15/{bounding_box_train,            128 x 64 JPEG
                bounding_box_test,query,gt_bbox}/PPPP_cCsS_FFFFFF_BB.jpg``
                (+ ``bounding_box_train_parsing_pgt/<stem>.png`` LIP
                labels with ``parsing=True``; none by default)
dukemtmcreid    ``DukeMTMC-reID/{bounding_box_train,bounding_box_test,  128-256 px tall JPEG
                query}/PPPP_cC_fFFFFFFF.jpg`` (8 cameras)
cuhk03np        ``cuhk03-np/{labeled,detected}/{bounding_box_train,      ~160 x 60 PNG
                bounding_box_test,query}/PPPP_cC_N.png``
viper           ``viper/VIPeR/{cam_a,cam_b}/NNN_A.bmp``                  128 x 48 BMP
prid            ``prid2011/prid_2011/single_shot/{cam_a,cam_b}/           128 x 64 PNG
                person_NNNN.png``
3dpes           ``3dpes/RGB/<pid>_<view>_FRAME_<f>_RGB.bmp``            ~160 x 70 BMP
ilids           ``ilids/i-LIDS_Pedestrian/Persons/PPPPIII.jpg``          128 x 64 JPEG
cuhk01          ``cuhk01/campus/PPPPIII.png``                            160 x 60 PNG
cuhk03          ``cuhk03/images_labeled/C_PPP_V_II.png`` +              ~160 x 60 PNG
                ``splits_classic_labeled.json`` (torchreid preprocessed)
shinpuhkan      ``shinpuhkan/images/PPP_CC_NNNN.jpg``                    128 x 48 JPEG
cifar100        ``cifar100/cifar-100-python/{train,test,meta}`` pickles  32 x 32 (uint8 rows)
=============== ====================================================== ===================

Sizes and counts per set: :mod:`.fixture_plans` (``plan_fixture(name).expected`` holds the
counts the loaders must report). Defaults write ~50-120 images per set.

**Ground truth outside the official layout.** Every written image has its exact part map
(uint8 0..7, DESIGN.md) and foreground mask (0/255, bags included) at the written size in
``<root>/_fixture_truth/<name>/{parts,masks}/<image path under root>.png`` (extension
replaced by ``.png``); :func:`truth_paths` finds them for an image path. The same folder
holds ``meta.json`` (plan, expected counts, seed) and ``COMPLETE``.

**LIP labels** (``parsing=True``, Market-1501 only): :func:`parts_to_lip` picks one LIP
id per part (head 13 face, chest 5 upper-clothes, foot 18 left-shoe, upper and lower leg 9
pants, arms 14/15 by the side of the chest centre) so that
:func:`~reidnb.data.parts.labels.lip_to_parts` gives back the part map exactly when its
arm and leg splits lie at the middle rows, as lip_to_parts defines them; on a rendered
map it returns the same head, chest, foot, arm and leg regions with the upper/lower
boundaries moved to those middle rows (measured in tests/test_fixtures.py).

**CIFAR-100**: torchvision's ``CIFAR100(download=False)`` checks the md5 of the official
files and refuses any other; read a fixture with
:func:`reidnb.data.datasets.cifar100.open_cifar100` (same items, structure checked).

Deterministic (same arguments -> same bytes) and idempotent: a complete fixture with the
same arguments is left alone; another one (or an unfinished one) written by this module is
replaced; a folder not written by it is never touched (FileExistsError).
"""
from __future__ import annotations

import json
import os
import pickle
import shutil
import tempfile
import time
from io import BytesIO
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
from PIL import Image

from .draw import render_job
from .fixture_plans import (FIXTURE_DEFAULT_IDS, FIXTURE_FOLDERS, FixtureImage, FixturePlan,
                            plan_fixture)
from .scene import JPEG_QUALITY

__all__ = ["FIXTURE_NAMES", "FIXTURE_VERSION", "TRUTH_DIR", "write_fixture", "write_fixtures",
           "plan_fixture", "truth_paths", "parts_to_lip", "FIXTURE_DEFAULT_IDS"]

#: Names :func:`write_fixture` accepts (``write_fixtures`` writes all by default).
FIXTURE_NAMES = tuple(FIXTURE_FOLDERS)
#: Bumped when what a fixture holds changes (a complete fixture of another version is redone).
FIXTURE_VERSION = "1"
#: Folder under ``root`` with the ground truth, ``meta.json`` and ``COMPLETE`` of each fixture.
TRUTH_DIR = "_fixture_truth"

# LIP id per part label 0..7 (arms get 14 or 15 by side, see parts_to_lip).
_LIP_OF_PART = np.array([0, 13, 14, 14, 5, 9, 9, 18], np.uint8)


def parts_to_lip(parts: np.ndarray) -> np.ndarray:
    """LIP parsing ids for a 7-part map: the inverse of ``lip_to_parts`` up to its arm/leg split.

    Head (1) -> 13 face, chest (4) -> 5 upper-clothes, foot (7) -> 18 left-shoe, upper and
    lower leg (5, 6) -> 9 pants, upper and lower arm (2, 3) -> 15 right-arm left of the
    chest's mean column (image left = the person's right in a front view) and 14 left-arm
    at or right of it (no chest: the image's middle column), background 0 -> 0.
    ``lip_to_parts(parts_to_lip(p)) == p`` whenever each arm's and the legs' upper/lower
    boundary lies at the middle row that lip_to_parts splits at; for any p,
    ``parts_to_lip(lip_to_parts(parts_to_lip(p))) == parts_to_lip(p)``.

    Args:
        parts: integer array [H, W] of part labels 0..7.

    Returns:
        uint8 array [H, W] of LIP ids in {0, 5, 9, 13, 14, 15, 18}.

    Raises:
        ValueError: not 2-D or labels outside 0..7.
    """
    parts = np.asarray(parts)
    if parts.ndim != 2:
        raise ValueError(f"part map must be H x W, got shape {parts.shape}")
    if parts.size and (parts.min() < 0 or parts.max() > 7):
        raise ValueError(f"part labels must be 0..7, got {sorted(np.unique(parts).tolist())[:10]}")
    lip = _LIP_OF_PART[parts.astype(np.intp)]
    cols = np.nonzero(parts == 4)[1]
    centre = cols.mean() if cols.size else (parts.shape[1] - 1) / 2
    arm = (parts == 2) | (parts == 3)
    lip[arm & (np.arange(parts.shape[1])[None, :] < centre)] = 15
    return lip


# --------------------------------------------------------------------------- pixels


def _shape(im: FixtureImage, rgb: np.ndarray, parts: np.ndarray, mask: np.ndarray):
    """Crop ``im.box`` of the render, mirror, resize to ``im.size`` (labels: nearest), gain."""
    h, w = rgb.shape[:2]
    y0, x0, y1, x1 = im.box
    r0, r1 = int(round(y0 * h)), max(int(round(y0 * h)) + 1, int(round(y1 * h)))
    c0, c1 = int(round(x0 * w)), max(int(round(x0 * w)) + 1, int(round(x1 * w)))
    rgb, parts, mask = rgb[r0:r1, c0:c1], parts[r0:r1, c0:c1], mask[r0:r1, c0:c1]
    if im.mirror:
        rgb, parts, mask = rgb[:, ::-1], parts[:, ::-1], mask[:, ::-1]
    H, W = im.size
    if rgb.shape[:2] != (H, W):
        rgb = np.asarray(Image.fromarray(np.ascontiguousarray(rgb)).resize((W, H), Image.BILINEAR))
        parts = np.asarray(Image.fromarray(np.ascontiguousarray(parts)).resize((W, H), Image.NEAREST))
        mask = np.asarray(Image.fromarray(np.ascontiguousarray(mask)).resize((W, H), Image.NEAREST))
    if im.gain != (1.0, 1.0, 1.0):
        rgb = np.clip(rgb.astype(np.float32) * np.asarray(im.gain, np.float32) + 0.5, 0, 255
                      ).astype(np.uint8)
    return np.ascontiguousarray(rgb), np.ascontiguousarray(parts), np.ascontiguousarray(mask)


def _encode(rgb: np.ndarray, suffix: str) -> bytes:
    buf = BytesIO()
    pil = Image.fromarray(rgb)
    if suffix == ".jpg":
        pil.save(buf, format="JPEG", quality=JPEG_QUALITY)
    elif suffix == ".png":
        pil.save(buf, format="PNG", compress_level=1)
    elif suffix == ".bmp":
        pil.save(buf, format="BMP")
    else:
        raise ValueError(f"fixture image suffix {suffix!r} is not .jpg/.png/.bmp")
    return buf.getvalue()


def _label_png(arr: np.ndarray) -> bytes:
    """A single-channel (mode L) PNG of a uint8 label map."""
    buf = BytesIO()
    Image.fromarray(np.ascontiguousarray(arr, dtype=np.uint8), mode="L").save(
        buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _put(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _write_images(plan: FixturePlan, data: Path, truth: Path, parsing: bool) -> int:
    """Render and write every image of ``plan`` under ``data`` (+ truth under ``truth``)."""
    cache: dict[Any, tuple] = {}
    n = 0
    for im in plan.images:
        if im.job not in cache:
            rgb, parts, mask, _ = render_job(im.job, plan.render_seed)
            cache[im.job] = (rgb, parts, mask)
            n += 1
        rgb, parts, mask = _shape(im, *cache[im.job])
        blob = _encode(rgb, Path(im.paths[0]).suffix)
        pblob, mblob = _label_png(parts), _label_png(mask)
        for rel in im.paths:
            _put(data / rel, blob)
            stem = Path(rel).with_suffix(".png")
            _put(truth / "parts" / stem, pblob)
            _put(truth / "masks" / stem, mblob)
        if parsing and im.role == "train":
            p = Path(im.paths[0])
            _put(data / p.parent.parent / f"{p.parent.name}_parsing_pgt" / f"{p.stem}.png",
                 _label_png(parts_to_lip(parts)))
    return n


# --------------------------------------------------------------------------- CIFAR-100


def _cifar_split(rng: np.random.Generator, per_class: int, tag: str):
    """``per_class`` images per class 0..99, shuffled: (uint8 [N, 3072] rows R|G|B planes,
    fine labels, file names). Class c: background hue c % 20, a shape (disc, square, bars,
    cross, ring) c // 20, its colour from c; position, size and noise per image."""
    yy, xx = np.mgrid[0:32, 0:32].astype(np.float32)
    rows, labels, names = [], [], []
    for c in range(100):
        bg = np.array([(c * 53) % 256, (c * 97 + 60) % 256, (c * 31 + 120) % 256], np.float32)
        fg = 255 - bg * 0.8
        for i in range(per_class):
            cy, cx = rng.uniform(10, 22, 2)
            r = rng.uniform(5, 9)
            d = np.hypot(yy - cy, xx - cx)
            kind = c // 20
            shape = [d < r, (abs(yy - cy) < r) & (abs(xx - cx) < r),
                     ((yy // 3) % 2 == 0) & (d < r + 3),
                     (abs(yy - cy) < 2) | (abs(xx - cx) < 2), abs(d - r) < 2][kind]
            img = np.where(shape[..., None], fg, bg) + rng.normal(0, 12, (32, 32, 3))
            img = np.clip(img + 0.5, 0, 255).astype(np.uint8)
            rows.append(img.transpose(2, 0, 1).reshape(-1))
            labels.append(c)
            names.append(f"fixture_class{c:02d}_{tag}_{i:04d}.png")
    order = rng.permutation(len(rows))
    return (np.stack(rows)[order], [labels[i] for i in order], [names[i] for i in order])


def _cifar_files(plan: FixturePlan, seed: int) -> dict[str, bytes]:
    rng = np.random.default_rng([seed, 100])
    out = {}
    for split, per, batch in (("train", plan.meta["per_class"], "training batch 1 of 1"),
                              ("test", 1, "testing batch 1 of 1")):
        data, fine, names = _cifar_split(rng, per, split)
        d = {"filenames": names, "batch_label": batch, "fine_labels": fine,
             "coarse_labels": [f // 5 for f in fine], "data": data}
        out[f"{plan.folder}/cifar-100-python/{split}"] = pickle.dumps(d, protocol=2)
    meta = {"fine_label_names": [f"fixture_class{c:02d}" for c in range(100)],
            "coarse_label_names": [f"fixture_super{c:02d}" for c in range(20)]}
    out[f"{plan.folder}/cifar-100-python/meta"] = pickle.dumps(meta, protocol=2)
    return out


# --------------------------------------------------------------------------- public API


def _meta(plan: FixturePlan, key: dict) -> dict:
    return {"writer": "reidnb.data.synthetic.fixtures", "key": key, "folder": plan.folder,
            "expected": plan.expected, "plan": plan.meta, "render_seed": plan.render_seed,
            "images": len(plan.images),
            "truth": f"{TRUTH_DIR}/{plan.name}/{{parts,masks}}/<image path>.png"}


def write_fixture(root: str | os.PathLike, name: str, *, ids: Any = None, seed: int = 0,
                  parsing: bool = False, height: int | None = None, width: int | None = None,
                  verbose: bool = False) -> Path:
    """Write one dataset fixture in its official layout under ``root`` (module docstring).

    Args:
        root: the data root (created if needed); the set goes to
            ``root / FIXTURE_FOLDERS[name]``, its truth to ``root / TRUTH_DIR / name``.
        name: one of :data:`FIXTURE_NAMES`.
        ids: identities (:data:`~reidnb.data.synthetic.fixture_plans.FIXTURE_DEFAULT_IDS`;
            Market/Duke/CUHK03-NP: (train ids, test ids), default (12, 8)).
        seed: seed (>= 0) of the plan and the renders; same arguments -> same bytes.
        parsing: Market-1501 only: also write ``bounding_box_train_parsing_pgt/<stem>.png``
            (uint8 LIP ids, :func:`parts_to_lip`) for every training image.
        height, width: one size for every image (both or neither; default the dataset's).
        verbose: print what was written and how long it took.

    Returns:
        ``root / FIXTURE_FOLDERS[name]`` (pass ``root`` itself to ``load_dataset``,
        ``find_small_sets`` or ``find_cifar100``).

    Raises:
        KeyError: unknown name. ValueError: bad ids/size/seed, ``parsing`` for another set.
        FileExistsError: the target folder exists and was not written by this module.
    """
    if parsing and name != "market1501":
        raise ValueError(f"parsing=True is for the market1501 fixture only (got {name!r})")
    t0 = time.perf_counter()
    plan = plan_fixture(name, ids=ids, seed=seed, height=height, width=width)
    root = Path(root).expanduser()
    target, truth = root / plan.folder, root / TRUTH_DIR / name
    key = dict(version=FIXTURE_VERSION, name=name, ids=plan.meta["ids"], seed=seed,
               parsing=bool(parsing), size=plan.meta["size"])
    meta_file = truth / "meta.json"
    if (truth / "COMPLETE").is_file() and meta_file.is_file():
        try:
            same = json.loads(meta_file.read_text()).get("key") == key
        except ValueError:
            same = False
        if same and target.is_dir():
            return target
    if target.exists() and not meta_file.is_file():
        raise FileExistsError(f"{target} exists and was not written by the fixture writer "
                              f"(no {meta_file}); refusing to overwrite it. Use another root.")
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".fixture-{name}-", dir=root))
    try:
        if name == "cifar100":
            files, n = _cifar_files(plan, seed), 0
        else:
            files = plan.files
            n = _write_images(plan, work / "data", work / "truth", parsing)
        for rel, blob in files.items():
            _put(work / "data" / rel, blob)
        (work / "truth").mkdir(exist_ok=True)
        (work / "truth" / "meta.json").write_text(json.dumps(_meta(plan, key), indent=1))
        # truth (with meta.json, which marks the target as ours) first, then the data,
        # then COMPLETE: an interruption leaves an unfinished fixture the next call redoes
        if truth.exists():
            shutil.rmtree(truth)
        truth.parent.mkdir(parents=True, exist_ok=True)
        os.replace(work / "truth", truth)
        if target.exists():
            shutil.rmtree(target)
        os.replace(work / "data" / plan.folder, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    from ...core.utils import atomic_write_text
    atomic_write_text(truth / "COMPLETE", f"reidnb fixture {name} {FIXTURE_VERSION}\n")
    if verbose:
        print(f"fixture {name}: {len(plan.images) or len(files)} files ({n} renders) in "
              f"{target} in {time.perf_counter() - t0:.2f} s")
    return target


def write_fixtures(root: str | os.PathLike, names: Iterable[str] = FIXTURE_NAMES, *,
                   ids: Mapping[str, Any] | None = None, seed: int = 0, parsing: bool = False,
                   verbose: bool = False) -> Path:
    """Write several fixtures into one data root that ``load_dataset(name, root)``,
    ``find_small_sets(root)`` and ``find_cifar100(root)`` accept.

    Args:
        root: the data root.
        names: fixture names (default all of :data:`FIXTURE_NAMES`).
        ids: per-name ``ids`` (missing names: the default).
        seed, verbose: as :func:`write_fixture`.
        parsing: passed to the ``market1501`` fixture.

    Returns:
        ``Path(root)``.

    Raises:
        as :func:`write_fixture`.
    """
    ids = dict(ids or {})
    for name in names:
        write_fixture(root, name, ids=ids.get(name), seed=seed,
                      parsing=parsing and name == "market1501", verbose=verbose)
    return Path(root)


def truth_paths(root: str | os.PathLike, image_path: str | os.PathLike) -> tuple[Path, Path]:
    """The ground-truth (part map, mask) PNGs of a fixture image.

    Args:
        root: the fixture's data root.
        image_path: an image written by :func:`write_fixture` under ``root``.

    Returns:
        ``(parts_png, mask_png)``: uint8 single-channel PNGs at the image's size; parts
        0..7 (DESIGN.md), mask 0/255 (person with bags).

    Raises:
        ValueError: ``image_path`` is not under a fixture folder of ``root``.
        FileNotFoundError: the truth file is missing (names it).
    """
    root = Path(root).expanduser().resolve()
    try:
        rel = Path(image_path).expanduser().resolve().relative_to(root)
    except ValueError:
        raise ValueError(f"{image_path} is not under the fixture root {root}") from None
    names = {f: n for n, f in FIXTURE_FOLDERS.items()}
    if not rel.parts or rel.parts[0] not in names:
        raise ValueError(f"{image_path}: not in a fixture folder of {root} "
                         f"(expected one of {sorted(names)})")
    base = root / TRUTH_DIR / names[rel.parts[0]]
    out = (base / "parts" / rel.with_suffix(".png"), base / "masks" / rel.with_suffix(".png"))
    for p in out:
        if not p.is_file():
            raise FileNotFoundError(f"{p} (ground truth of {image_path}) is missing; rewrite "
                                    "the fixture")
    return out

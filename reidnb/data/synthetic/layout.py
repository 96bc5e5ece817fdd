"""Planning and writing the synthetic set in the Market-1501 folder layout (with masks/ and parts/)."""
from __future__ import annotations

import json
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from io import BytesIO
from multiprocessing import get_context
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from ..parts.labels import PART_NAMES
from .draw import _Job, render_job
from .scene import (CAMERAS, GENERATOR_VERSION, HEIGHT, JPEG_QUALITY, NUM_CAMS, SIZES, SPLITS,
                    WIDTH, _KIND_CODE)



# ------------------------------------------------------------------------------ planning
def _name(pid: int, cam: int, seq: int, frame: int, bb: int) -> str:
    p = "-1" if pid < 0 else f"{pid:04d}"
    return f"{p}_c{cam}s{seq}_{frame:06d}_{bb:02d}"


def plan_synthetic(size: str = "quick", seed: int = 0) -> list[_Job]:
    """The list of images a (size, seed) dataset holds, without rendering anything.

    Identity numbers 1..n_train+n_test are split at random into train and test ids.
    Every identity is seen by ``cams_per_id`` cameras with ``imgs_per_cam`` images each.
    Test ids are queried from up to ``query_cams`` of their cameras: one query per
    (id, camera), which is also the first image of a ``gt_bbox`` group of
    ``gt_per_query`` images; their gallery images stay in ``bounding_box_test``.

    Raises:
        ValueError: unknown ``size``.
    """
    if size not in SIZES:
        raise ValueError(f"unknown synthetic size {size!r}; expected one of {sorted(SIZES)}")
    spec = SIZES[size]
    n_tr, n_te = spec["n_train_ids"], spec["n_test_ids"]
    order = np.random.default_rng([seed, 0]).permutation(n_tr + n_te) + 1
    test_ids = set(int(p) for p in order[:n_te])
    used: dict[str, set[str]] = {s: set() for s in SPLITS}
    jobs: list[_Job] = []

    def add(pid, cam, seq, frame, bb, splits, kind, index, k, crop):
        while any(_name(pid, cam, seq, frame, bb) in used[s] for s in splits):
            frame += 1
        stem = _name(pid, cam, seq, frame, bb)
        for s in splits:
            used[s].add(stem)
        jobs.append(_Job(stem, tuple(splits), kind, index, cam, k, crop))

    for pid in range(1, n_tr + n_te + 1):
        r = np.random.default_rng([seed, 4, pid])
        ncam = int(r.integers(spec["cams_per_id"][0], spec["cams_per_id"][1] + 1))
        cams = sorted(int(c) + 1 for c in r.choice(NUM_CAMS, ncam, replace=False))
        is_test = pid in test_ids
        split = "bounding_box_test" if is_test else "bounding_box_train"
        qcams = set(int(c) for c in r.choice(cams, min(spec["query_cams"], ncam),
                                             replace=False)) if is_test else set()
        for cam in cams:
            seq = int(r.integers(1, 7))
            frame = int(r.integers(1, 150000))
            n = int(r.integers(spec["imgs_per_cam"][0], spec["imgs_per_cam"][1] + 1))
            for k in range(n):
                frame += int(r.integers(5, 80))
                add(pid, cam, seq, frame, 0, [split], "id", pid, k, "detector")
            if cam in qcams:
                m = int(r.integers(spec["gt_per_query"][0], spec["gt_per_query"][1] + 1))
                for k in range(m):
                    frame += int(r.integers(5, 80))
                    splits = ["query", "gt_bbox"] if k == 0 else ["gt_bbox"]
                    add(pid, cam, seq, frame, 0, splits, "id", pid, 100 + k, "hand")
    for kind, n, pid in (("distractor", spec["n_distractors"], 0), ("junk", spec["n_junk"], -1)):
        for i in range(n):
            r = np.random.default_rng([seed, 5, _KIND_CODE[kind], i])
            cam = int(r.integers(1, NUM_CAMS + 1))
            add(pid, cam, int(r.integers(1, 7)), int(r.integers(1, 150000)),
                int(r.integers(1, 9)), ["bounding_box_test"], kind, i, 0,
                "junk" if kind == "junk" else "detector")
    return jobs


def synthetic_counts(size: str = "quick", seed: int = 0) -> dict[str, dict[str, int]]:
    """Images and identities per split of a (size, seed) dataset, from the plan alone.

    ``ids`` counts distinct pids as the loaders will (gallery: incl. 0 and -1).
    """
    out: dict[str, dict[str, int]] = {}
    jobs = plan_synthetic(size, seed)
    for s in SPLITS:
        stems = [j.stem for j in jobs if s in j.splits]
        pids = {int(st.split("_")[0]) for st in stems}
        cams = {j.cam for j in jobs if s in j.splits}
        out[s] = dict(images=len(stems), ids=len(pids), cameras=len(cams))
    out["bounding_box_test"]["distractors"] = sum(j.kind == "distractor" for j in jobs)
    out["bounding_box_test"]["junk"] = sum(j.kind == "junk" for j in jobs)
    out["rendered"] = dict(images=len(jobs))
    return out


# ------------------------------------------------------------------------------ writing
def _png_bytes(arr: np.ndarray) -> bytes:
    buf = BytesIO()
    Image.fromarray(arr, mode="L").save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def _write_jobs(root: str, seed: int, jobs: Sequence[_Job]) -> int:
    """Render and write ``jobs`` (runs in a worker process or in-process)."""
    root_p = Path(root)
    for job in jobs:
        rgb, parts, mask, _ = render_job(job, seed)
        buf = BytesIO()
        Image.fromarray(rgb).save(buf, format="JPEG", quality=JPEG_QUALITY)
        jpg, mpng, ppng = buf.getvalue(), _png_bytes(mask), _png_bytes(parts)
        for split in job.splits:
            (root_p / split / f"{job.stem}.jpg").write_bytes(jpg)
            (root_p / "masks" / split / f"{job.stem}.png").write_bytes(mpng)
            (root_p / "parts" / split / f"{job.stem}.png").write_bytes(ppng)
    return len(jobs)


def is_complete(root: str | os.PathLike, size: str | None = None, seed: int | None = None) -> bool:
    """True when ``root`` holds a finished synthetic dataset (``COMPLETE`` marker) of this
    generator version and, if given, of this size and seed."""
    root = Path(root)
    if not (root / "COMPLETE").is_file() or not (root / "meta.json").is_file():
        return False
    meta = json.loads((root / "meta.json").read_text())
    return (meta.get("version") == GENERATOR_VERSION
            and (size is None or meta.get("size") == size)
            and (seed is None or meta.get("seed") == seed))


def generate_synthetic(root: str | os.PathLike, size: str = "quick", seed: int = 0, *,
                       verbose: bool = True, workers: int | None = None,
                       overwrite: bool = False) -> Path:
    """Render the synthetic dataset into ``root`` (Market-1501 layout, see module doc).

    Args:
        root: output folder, e.g. ``data/synthetic/quick_seed0``; created if needed.
        size: a key of :data:`SIZES` (``"smoke"``: 30 ids, 287 files from 257 renders,
            about 2 s; ``"quick"``: 600 ids, 7,570 files from 6,741 renders, about 60 s
            of CPU, i.e. 30-50 s on 2 free cores).
        seed: base seed; the same seed gives byte-identical files.
        verbose: print what is done and how long it took.
        workers: processes to render with; default min(2, CPUs), and 1 (in-process)
            for fewer than 600 images.
        overwrite: re-render over a complete dataset of another size, seed or version.

    Returns:
        ``Path(root)``. When ``root`` is already complete for (size, seed, version) it is
        returned untouched. An unfinished folder (no ``COMPLETE``) is cleared and redone.

    Raises:
        ValueError: unknown ``size``.
        FileExistsError: ``root`` is complete for another size/seed/version and
            ``overwrite`` is False.
    """
    root = Path(root)
    if size not in SIZES:
        raise ValueError(f"unknown synthetic size {size!r}; expected one of {sorted(SIZES)}")
    if is_complete(root, size, seed):
        if verbose:
            print(f"synthetic {size} seed {seed}: already complete at {root}")
        return root
    if (root / "COMPLETE").exists():
        if not overwrite:
            meta = (root / "meta.json").read_text() if (root / "meta.json").exists() else "?"
            raise FileExistsError(
                f"{root} already holds a complete synthetic dataset of another size/seed/"
                f"version (meta.json: {meta[:200]}); asked for size={size!r} seed={seed} "
                f"version {GENERATOR_VERSION}. Use another folder or overwrite=True.")
        (root / "COMPLETE").unlink()
    for sub in (*SPLITS, "masks", "parts"):        # clear an unfinished run (ours only)
        if (root / sub).is_dir():
            shutil.rmtree(root / sub)
    if (root / "meta.json").exists():
        (root / "meta.json").unlink()
    for split in SPLITS:
        for sub in ("", "masks", "parts"):
            (root / sub / split).mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    jobs = plan_synthetic(size, seed)
    if workers is None:
        workers = 1 if len(jobs) < 600 else max(1, min(2, os.cpu_count() or 1))
    if verbose:
        print(f"synthetic {size} seed {seed}: rendering {len(jobs)} images into {root} "
              f"with {workers} process(es) ...", flush=True)
    if workers <= 1:
        _write_jobs(str(root), seed, jobs)
    else:
        chunk = 64
        chunks = [jobs[i:i + chunk] for i in range(0, len(jobs), chunk)]
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as ex:
            list(ex.map(_write_jobs, [str(root)] * len(chunks), [seed] * len(chunks), chunks))
    counts = synthetic_counts(size, seed)
    meta = dict(generator="reidnb.data.synthetic", version=GENERATOR_VERSION, size=size,
                seed=seed, image_size=[HEIGHT, WIDTH], spec=SIZES[size], counts=counts,
                cameras=[c["name"] for c in CAMERAS], part_labels=list(PART_NAMES),
                accessory_rule="bags and straps: 255 in masks, 0 in parts; hair and hats: "
                               "head (1); occluders: background (0) in both")
    from ...core.utils import atomic_write_text
    atomic_write_text(root / "meta.json", json.dumps(meta, indent=2, default=list))
    atomic_write_text(root / "COMPLETE", f"reidnb synthetic {GENERATOR_VERSION}\n")
    if verbose:
        c = counts
        print(f"synthetic {size} seed {seed}: done in {time.perf_counter() - t0:.1f} s: "
              f"train {c['bounding_box_train']['ids']} ids / "
              f"{c['bounding_box_train']['images']} images, query "
              f"{c['query']['images']}, gallery {c['bounding_box_test']['images']} "
              f"(incl. {c['bounding_box_test']['distractors']} distractors, "
              f"{c['bounding_box_test']['junk']} junk), gt_bbox {c['gt_bbox']['images']}")
    return root

"""Tests of the synthetic dataset generator (reidnb.data.synthetic), on the smoke size."""
from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reidnb.data import synthetic as syn

PARSE = re.compile(r"([-\d]+)_c(\d+)")
MARKET_NAME = re.compile(r"^(-1|\d{4})_c([1-6])s([1-6])_(\d{6})_(\d{2})\.jpg$")


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _parse(name: str) -> tuple[int, int]:
    pid, cam = PARSE.search(name).groups()
    return int(pid), int(cam)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("syn") / "smoke_seed0"
    out = syn.generate_synthetic(root, "smoke", 0, verbose=False)
    assert out == root
    return root


def _split_items(root: Path, split: str) -> list[tuple[str, int, int]]:
    return [(p.name, *_parse(p.name)) for p in sorted((root / split).glob("*.jpg"))]


# ------------------------------------------------------------------------- determinism
def test_same_seed_is_byte_identical_whatever_the_order(smoke, tmp_path):
    # render the same plan again in reverse order (as parallel workers might) -> same bytes
    other = tmp_path / "again"
    for split in syn.SPLITS:
        for sub in ("", "masks", "parts"):
            (other / sub / split).mkdir(parents=True, exist_ok=True)
    syn._write_jobs(str(other), 0, list(reversed(syn.plan_synthetic("smoke", 0))))
    a = {k: v for k, v in _files(smoke).items() if k not in ("COMPLETE", "meta.json")}
    b = _files(other)
    assert a.keys() == b.keys()
    assert all(a[k] == b[k] for k in a)


def test_different_seed_differs():
    p0, p1 = syn.plan_synthetic("smoke", 0), syn.plan_synthetic("smoke", 1)
    assert [j.stem for j in p0] != [j.stem for j in p1]
    job = p0[0]
    assert not np.array_equal(syn.render_job(job, 0)[0], syn.render_job(job, 1)[0])
    # and the same seed renders the same array twice
    assert np.array_equal(syn.render_job(job, 0)[0], syn.render_job(job, 0)[0])


# ----------------------------------------------------------------------- layout, names
def test_layout_names_and_counts(smoke):
    meta = json.loads((smoke / "meta.json").read_text())
    assert (meta["size"], meta["seed"], meta["version"]) == ("smoke", 0, syn.GENERATOR_VERSION)
    assert syn.is_complete(smoke, "smoke", 0) and not syn.is_complete(smoke, "smoke", 1)
    for split in syn.SPLITS:
        items = _split_items(smoke, split)
        assert items, split
        for name, pid, cam in items:
            assert MARKET_NAME.match(name), name
            assert 1 <= cam <= 6
        assert meta["counts"][split]["images"] == len(items)
        assert meta["counts"][split]["ids"] == len({p for _, p, _ in items})
    train = {p for _, p, _ in _split_items(smoke, "bounding_box_train")}
    gallery = [p for _, p, _ in _split_items(smoke, "bounding_box_test")]
    query = {p for _, p, _ in _split_items(smoke, "query")}
    spec = syn.SIZES["smoke"]
    assert len(train) == spec["n_train_ids"] and len(query) == spec["n_test_ids"]
    assert not train & set(gallery), "train and test identities must be disjoint"
    assert min(train) >= 1
    declared = meta["counts"]["bounding_box_test"]
    assert gallery.count(0) == spec["n_distractors"] == declared["distractors"]
    assert gallery.count(-1) == spec["n_junk"] == declared["junk"]
    # every train identity is seen by at least 2 cameras
    cams = defaultdict(set)
    for _, p, c in _split_items(smoke, "bounding_box_train"):
        cams[p].add(c)
    assert all(len(c) >= 2 for c in cams.values())


def test_queries_have_cross_camera_matches_and_multiquery_groups(smoke):
    gallery = _split_items(smoke, "bounding_box_test")
    gt = _split_items(smoke, "gt_bbox")
    gt_names = {n for n, _, _ in gt}
    seen = set()
    for name, pid, cam in _split_items(smoke, "query"):
        assert (pid, cam) not in seen, "one query per (identity, camera)"
        seen.add((pid, cam))
        assert any(p == pid and c != cam for _, p, c in gallery), name
        group = [n for n, p, c in gt if (p, c) == (pid, cam)]
        assert name in gt_names and len(group) >= syn.SIZES["smoke"]["gt_per_query"][0]
        assert (smoke / "query" / name).read_bytes() == (smoke / "gt_bbox" / name).read_bytes()


# ------------------------------------------------------------------------ masks, parts
def test_masks_and_parts_follow_the_accessory_rule(smoke):
    n_acc_images = 0
    for split in syn.SPLITS:
        for name, pid, _ in _split_items(smoke, split):
            stem = name[:-4]
            img = Image.open(smoke / split / name)
            mask = np.asarray(Image.open(smoke / "masks" / split / f"{stem}.png"))
            parts = np.asarray(Image.open(smoke / "parts" / split / f"{stem}.png"))
            assert img.size == (syn.WIDTH, syn.HEIGHT) and img.mode == "RGB"
            assert mask.shape == parts.shape == (syn.HEIGHT, syn.WIDTH)
            assert mask.dtype == parts.dtype == np.uint8
            assert set(np.unique(mask)) <= {0, 255}
            assert parts.max() <= 7
            # every body-part pixel is foreground; the rest of the foreground is accessory
            assert np.all(mask[parts > 0] == 255), name
            acc = (mask == 255) & (parts == 0)
            if pid > 0:
                has_bag = syn.identity_attributes(0, pid)["bag"] != "none"
                if not has_bag:
                    assert not acc.any(), f"{name}: no bag but accessory pixels"
                n_acc_images += bool(acc.any())
            if pid > 0 and split != "bounding_box_test":
                assert (parts > 0).mean() > 0.15, f"{name}: person too small"
    assert n_acc_images > 5


def test_render_mask_is_exactly_parts_or_accessory():
    for job in syn.plan_synthetic("smoke", 0)[:40]:
        rgb, parts, mask, acc = syn.render_job(job, 0)
        assert rgb.shape == (128, 64, 3) and rgb.dtype == np.uint8
        np.testing.assert_array_equal(mask, np.where((parts > 0) | acc, 255, 0))


def test_parts_are_stacked_head_to_foot(smoke):
    # hand-worked anatomy: mean row of head < chest < upper leg < lower leg < foot,
    # and upper arm above lower arm, on every full training image
    checked = 0
    for name, _, _ in _split_items(smoke, "bounding_box_train"):
        parts = np.asarray(Image.open(smoke / "parts" / "bounding_box_train" / f"{name[:-4]}.png"))
        rows = {k: np.nonzero(parts == k)[0] for k in range(1, 8)}
        if any(len(r) < 5 for r in rows.values()):
            continue                                 # an occluder hides a part
        m = {k: r.mean() for k, r in rows.items()}
        assert m[1] < m[4] < m[5] < m[6] < m[7], (name, m)
        assert m[2] < m[3], (name, m)
        checked += 1
    assert checked > 20


# ----------------------------------------------------------------- COMPLETE and errors
def test_complete_written_last_and_failure_leaves_no_marker(smoke, tmp_path, monkeypatch):
    complete = (smoke / "COMPLETE").stat().st_mtime_ns
    assert all(p.stat().st_mtime_ns <= complete for p in smoke.rglob("*") if p.is_file())

    root = tmp_path / "broken"
    calls = {"n": 0}
    real = syn.render_job

    def failing(job, seed):
        calls["n"] += 1
        if calls["n"] > 50:
            raise OSError("disk full (simulated)")
        return real(job, seed)

    monkeypatch.setattr(syn.layout, "render_job", failing)  # where generate_synthetic looks it up
    with pytest.raises(OSError, match="simulated"):
        syn.generate_synthetic(root, "smoke", 0, verbose=False, workers=1)
    assert not (root / "COMPLETE").exists() and not (root / "meta.json").exists()
    assert not syn.is_complete(root)
    monkeypatch.setattr(syn.layout, "render_job", real)
    syn.generate_synthetic(root, "smoke", 0, verbose=False, workers=1)  # clears and redoes
    assert _files(root) == _files(smoke)


def test_bad_size_and_other_seed_refused(smoke):
    with pytest.raises(ValueError, match="unknown synthetic size"):
        syn.plan_synthetic("huge")
    with pytest.raises(FileExistsError, match="overwrite"):
        syn.generate_synthetic(smoke, "smoke", 1, verbose=False)
    assert syn.generate_synthetic(smoke, "smoke", 0, verbose=False) == smoke  # no-op


# ------------------------------------------------------------------ hardness baseline
def _color_hist(path: Path, bins: int = 8) -> np.ndarray:
    """Joint HSV histogram of the whole image, square-rooted (Hellinger), unit norm."""
    hsv = np.asarray(Image.open(path).convert("HSV"), np.int64) // (256 // bins)
    idx = (hsv[..., 0] * bins + hsv[..., 1]) * bins + hsv[..., 2]
    h = np.bincount(idx.ravel(), minlength=bins ** 3).astype(float)
    v = np.sqrt(h / h.sum())
    return v / np.linalg.norm(v)


def _rank1_map(dist, qp, gp, qc, gc):
    """Market protocol (same pid+camera and pid -1 removed): rank-1 and mAP."""
    r1, aps = [], []
    for i in range(len(qp)):
        keep = ~(((gp == qp[i]) & (gc == qc[i])) | (gp == -1))
        order = np.argsort(dist[i][keep], kind="stable")
        match = gp[keep][order] == qp[i]
        if not match.any():
            continue
        r1.append(match[0])
        hits = np.cumsum(match)
        aps.append((hits[match] / (np.nonzero(match)[0] + 1)).mean())
    return float(np.mean(r1)), float(np.mean(aps))


def test_colour_histogram_does_not_solve_it(smoke):
    q = _split_items(smoke, "query")
    g = _split_items(smoke, "bounding_box_test")
    qf = np.stack([_color_hist(smoke / "query" / n) for n, _, _ in q])
    gf = np.stack([_color_hist(smoke / "bounding_box_test" / n) for n, _, _ in g])
    qp, qc = np.array([p for _, p, _ in q]), np.array([c for _, _, c in q])
    gp, gc = np.array([p for _, p, _ in g]), np.array([c for _, _, c in g])
    r1, mAP = _rank1_map(2 - 2 * qf @ gf.T, qp, gp, qc, gc)
    rng = np.random.default_rng(0)
    chance = np.mean([_rank1_map(rng.random((len(q), len(g))), qp, gp, qc, gc)[1]
                      for _ in range(20)])
    print(f"colour histogram on smoke: rank-1 {r1:.3f}, mAP {mAP:.3f}, chance mAP {chance:.3f}")
    assert r1 < 0.9, f"colour histograms alone reach rank-1 {r1:.2f}: too easy"
    assert mAP > 1.5 * chance, f"colour mAP {mAP:.3f} vs chance {chance:.3f}: no signal"


# ------------------------------------------------------------------------- data figures
def test_data_figures(smoke):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from reidnb import viz
    from reidnb.data.datasets import load_dataset

    ds = load_dataset("synthetic", smoke, verbose=False, synthetic_size="smoke", seed=0)
    assert ds.num_train_pids == syn.SIZES["smoke"]["n_train_ids"]
    assert all(r.mask and r.parts for r in ds.train + ds.query + ds.gallery)
    fig = viz.plot_montage(ds.train, n=5, seed=1)
    assert len(fig.axes) == 15
    plt.close(fig)
    with pytest.raises(ValueError, match="no mask path"):
        viz.plot_montage([type(ds.train[0])(ds.train[0].path, 0, 0)], n=1)
    fig = viz.plot_ids_per_camera(ds)
    # bar heights: identities per (split, camera), hand-counted from the records
    want = {len({r.pid for r in ds.train if r.camid == c}) for c in range(6)}
    got = {round(p.get_height()) for p in fig.axes[0].patches[:6]}
    assert got == want
    plt.close(fig)
    fig = viz.plot_image_sizes(ds.train)
    assert "128x64" in fig._suptitle.get_text()
    plt.close(fig)

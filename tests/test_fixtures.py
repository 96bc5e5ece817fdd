"""Tests of reidnb.data.synthetic.fixtures: tiny sets in the official layouts, read by the
project's own loaders (load_dataset, find_small_sets, find_cifar100 / open_cifar100).

One data root is written once per module with small ``ids`` (PRID's 200 shared ids are
fixed by its protocol and dominate the cost); counts are hand-worked from the planners'
rules and also compared with what the writer planned.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reidnb.data.datasets import (PID_CAM_PATTERN, CifarDictDataset, cifar_transforms,
                                  find_cifar100, find_small_sets, load_dataset, open_cifar100)
from reidnb.data.parts.labels import lip_to_parts
from reidnb.data.synthetic import (FIXTURE_NAMES, parts_to_lip, plan_fixture, truth_paths,
                                   write_fixture, write_fixtures)

IDS = {"market1501": (4, 3), "dukemtmcreid": (4, 3), "cuhk03np": (4, 3), "viper": 4,
       "prid": 2, "3dpes": 4, "ilids": 4, "cuhk01": 4, "cuhk03": 6, "shinpuhkan": 2,
       "cifar100": 2}


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return write_fixtures(tmp_path_factory.mktemp("fixtures"), FIXTURE_NAMES, ids=IDS)


@pytest.fixture(scope="module")
def parsed_root(tmp_path_factory) -> Path:
    r = tmp_path_factory.mktemp("parsed")
    write_fixture(r, "market1501", ids=(3, 2), parsing=True, seed=1)
    return r


def _names_ok(records, regex: str) -> None:
    for r in records:
        name = Path(r.path).name
        assert re.fullmatch(regex, name), name
        pid_s, cam_s = PID_CAM_PATTERN.match(name).groups()
        assert int(cam_s) - 1 == r.camid


# --------------------------------------------------------------------------- plans (no pixels)


def test_default_plans_hand_worked_counts():
    m = plan_fixture("market1501").expected["market1501"]
    # 12 train ids x 2 cams x 2; 8 test ids x 2 cams x (query, gt, gallery); 4 + 3 extras
    assert (m["train images"], m["train ids"], m["query images"], m["query ids"]) == (48, 12, 16, 8)
    assert (m["gallery images"], m["gallery ids"], m["gallery junk (pid -1)"],
            m["gallery distractors (pid 0)"], m["gt_bbox images"]) == (23, 8, 3, 4, 44)
    d = plan_fixture("dukemtmcreid").expected["dukemtmcreid"]
    assert (d["train images"], d["query images"], d["gallery images"], d["gallery ids"]) == \
        (48, 16, 20, 12)
    c = plan_fixture("cuhk03np").expected
    assert c["cuhk03np-labeled"]["train images"] == 48
    assert c["cuhk03np-detected"]["train images"] == 47
    assert plan_fixture("prid").expected["prid"]["gallery images"] == 106
    with pytest.raises(KeyError, match="unknown fixture"):
        plan_fixture("msmt17")
    with pytest.raises(ValueError, match="both height and width"):
        plan_fixture("viper", height=64)


# --------------------------------------------------------------------------- Market-1501


def test_market_official_layout_without_parsing(root):
    folder = root / "Market-1501-v15.09.15"
    assert sorted(p.name for p in folder.iterdir()) == [
        "bounding_box_test", "bounding_box_train", "gt_bbox", "query", "readme.txt"]
    ds = load_dataset("market1501", root, verbose=False)
    assert ds.root == folder.resolve() and ds.kind == "real"
    m = ds.measured()
    # 4 train ids x 2 cams x 2; 3 test ids x 2 cams: 1 query + 1 gallery; 4 distractors, 3 junk
    assert (m["train images"], m["train ids"], m["train cameras"] <= 6) == (16, 4, True)
    assert (m["query images"], m["query ids"]) == (6, 3)
    assert (m["gallery images"], m["gallery ids"], m["gallery junk (pid -1)"],
            m["gallery distractors (pid 0)"]) == (13, 3, 3, 4)
    # gt_bbox: 2 per (test id, cam) + 1 per train id; each query's group holds 2
    assert m["gt_bbox images"] == 3 * 2 * 2 + 4
    assert [len(g) for g in ds.multi_query.values()] == [2] * 6
    exp = plan_fixture("market1501", ids=IDS["market1501"]).expected["market1501"]
    assert {k: m[k] for k in exp} == exp
    _names_ok(ds.query + ds.gallery, r"(-1|\d{4})_c[1-6]s[1-6]_\d{6}_\d{2}\.jpg")
    assert {r.pid for r in ds.query} == set(plan_fixture("market1501", ids=(4, 3)).meta["test_pids"])
    assert all(r.mask is None and r.parts is None for r in ds.train + ds.query + ds.gallery)
    assert not any(folder.glob("*parsing*"))
    with Image.open(ds.gallery[0].path) as im:
        assert (im.format, im.size, im.mode) == ("JPEG", (64, 128), "RGB")


def test_market_parsing_labels_beside_the_set(parsed_root, tmp_path):
    from reidnb.data.parts import attach_masks

    folder = parsed_root / "Market-1501-v15.09.15"
    ds = load_dataset("market1501", parsed_root, verbose=False)
    labels = sorted((folder / "bounding_box_train_parsing_pgt").iterdir())
    assert [p.stem for p in labels] == sorted(Path(r.path).stem for r in ds.train)
    assert len(labels) == 3 * 2 * 2
    changed = arm_leg = 0
    for r, lab in zip(sorted(ds.train, key=lambda r: r.path), labels):
        lip = np.asarray(Image.open(lab))
        assert Image.open(lab).mode == "L" and lip.shape == (128, 64)
        assert set(np.unique(lip).tolist()) <= {0, 5, 9, 13, 14, 15, 18}
        truth = np.asarray(Image.open(truth_paths(parsed_root, r.path)[0]))
        back = lip_to_parts(lip)
        for part in (0, 1, 4, 7):                    # unsplit parts come back exactly
            assert np.array_equal(back == part, truth == part)
        assert np.array_equal(np.isin(back, (2, 3)), np.isin(truth, (2, 3)))
        assert np.array_equal(np.isin(back, (5, 6)), np.isin(truth, (5, 6)))
        assert np.array_equal(parts_to_lip(back), lip)   # exact at the LIP level
        changed += int((back != truth).sum())
        arm_leg += int(np.isin(truth, (2, 3, 5, 6)).sum())
    assert changed < 0.25 * arm_leg                  # only the upper/lower boundaries move
    out, info = attach_masks(ds, source="labels", splits=("train",), cache_root=tmp_path,
                             verbose=False)
    assert info["splits"]["train"]["labels"] == 12
    assert all(r.parts is not None for r in out.train)


def test_parts_to_lip_round_trip_hand_map():
    p = np.zeros((20, 8), np.uint8)
    p[0:4, 2:6] = 1                                  # head
    p[4:12, 2:6] = 4                                 # chest
    for c in (slice(0, 2), slice(6, 8)):             # arms rows 4..11: middle 7.5
        p[4:8, c], p[8:12, c] = 2, 3
    p[12:15, 2:6], p[15:18, 2:6] = 5, 6              # legs rows 12..17: middle 14.5
    p[18:20, 2:6] = 7
    lip = parts_to_lip(p)
    assert lip[0, 2] == 13 and lip[5, 3] == 5 and lip[19, 2] == 18 and lip[13, 2] == 9
    assert lip[5, 0] == 15 and lip[5, 7] == 14       # image left: right-arm
    assert np.array_equal(lip_to_parts(lip), p)
    q = p.copy()
    q[6:8, 0:2] = 3                                  # boundary off the middle row
    back = lip_to_parts(parts_to_lip(q))
    assert int((back != q).sum()) == 4 and np.array_equal(back, p)
    with pytest.raises(ValueError, match="0..7"):
        parts_to_lip(np.full((2, 2), 9))


def test_truth_beside_the_layout(root):
    ds = load_dataset("market1501", root, verbose=False)
    q = ds.query[0]
    parts_png, mask_png = truth_paths(root, q.path)
    assert "_fixture_truth" in parts_png.parts
    parts, mask = np.asarray(Image.open(parts_png)), np.asarray(Image.open(mask_png))
    assert parts.shape == mask.shape == (128, 64) and parts.max() <= 7
    assert set(np.unique(mask).tolist()) <= {0, 255} and (mask[parts > 0] == 255).all()
    assert (parts > 0).mean() > 0.1                  # a hand-drawn box holds a person
    gt = ds.multi_query[0][0]                        # the query is also a gt_bbox/ file
    assert Path(gt.path).name == Path(q.path).name
    assert np.array_equal(np.asarray(Image.open(truth_paths(root, gt.path)[0])), parts)
    with pytest.raises(ValueError, match="not under"):
        truth_paths(root / "viper", q.path)


# --------------------------------------------------------------------------- Duke, CUHK03-NP


def test_duke_layout(root):
    ds = load_dataset("dukemtmcreid", root, verbose=False)
    m = ds.measured()
    # 4 train ids x 2 x 2; 3 test ids x 2 cams: query + gallery; 4 distractor ids x 1
    assert (m["train images"], m["train ids"], m["query images"], m["query ids"]) == (16, 4, 6, 3)
    assert (m["gallery images"], m["gallery ids"], m["gallery junk (pid -1)"]) == (10, 7, 0)
    assert m == {**m, **plan_fixture("dukemtmcreid", ids=(4, 3)).expected["dukemtmcreid"]}
    _names_ok(ds.train + ds.query + ds.gallery, r"\d{4}_c[1-8]_f\d{7}\.jpg")
    assert ds.multi_query == {}
    sizes = {Image.open(r.path).size for r in ds.gallery}
    assert len(sizes) > 1 and all(128 <= h <= 256 and w < h for w, h in sizes)


def test_cuhk03np_labeled_and_detected(root):
    lab = load_dataset("cuhk03np-labeled", root, verbose=False)
    det = load_dataset("cuhk03np-detected", root, verbose=False)
    assert lab.root.name == "labeled" and det.root.name == "detected"
    for ds, n_train in ((lab, 16), (det, 15)):      # detected misses one train image
        m = ds.measured()
        assert (m["train images"], m["train ids"], m["train cameras"]) == (n_train, 4, 2)
        assert (m["query images"], m["query ids"], m["gallery images"]) == (6, 3, 6)
        _names_ok(ds.train + ds.query + ds.gallery, r"\d{4}_c[12]_([1-9]|10)\.png")
    names = lambda ds: [Path(r.path).name for r in ds.gallery]  # noqa: E731
    assert names(lab) == names(det)
    a, b = Image.open(lab.gallery[0].path), Image.open(det.gallery[0].path)
    assert a.format == b.format == "PNG" and 144 <= a.size[1] <= 176
    assert not np.array_equal(np.asarray(a), np.asarray(b.resize(a.size)))


# --------------------------------------------------------------------------- small sets, CIFAR


def test_small_sets_found_in_torchreid_layouts(root):
    sets = find_small_sets(root, verbose=False)
    assert sorted(sets) == sorted(["viper", "prid", "3dpes", "ilids", "cuhk01", "cuhk03",
                                   "shinpuhkan"])
    got = {n: (len(d.train), d.num_train_pids, len(d.query), len(d.gallery))
           for n, d in sets.items()}
    assert got == {"viper": (4, 2, 2, 2), "prid": (200, 100, 100, 102),
                   "3dpes": (6, 2, 2, 4), "ilids": (6, 2, 2, 2), "cuhk01": (8, 2, 4, 4),
                   "cuhk03": (16, 4, 8, 8), "shinpuhkan": (8, 2, 0, 0)}
    for n, ds in sets.items():
        exp = plan_fixture(n, ids=IDS[n]).expected[n]
        assert (exp["train images"], exp["train ids"], exp["query images"],
                exp["gallery images"]) == got[n]
    v = sets["viper"]
    assert {Image.open(r.path).size for r in v.train} == {(48, 128)}
    assert Image.open(v.train[0].path).format == "BMP"
    c3 = sets["cuhk03"]
    assert [r.path for r in c3.query] == [r.path for r in c3.gallery]
    assert {r.camid for r in c3.train} == {0, 1}
    prid = sets["prid"]
    assert max(r.pid for r in prid.gallery) == 202 and all(r.camid == 1 for r in prid.gallery)


def test_cifar100_through_the_project_loader(root, monkeypatch):
    import torchvision.datasets.cifar as tv_cifar
    from torchvision.datasets import CIFAR100

    assert find_cifar100(root) == root / "cifar100"
    tr, te = open_cifar100(root / "cifar100", True), open_cifar100(root / "cifar100", False)
    assert (len(tr), len(te), len(tr.classes)) == (200, 100, 100)
    assert sorted(set(tr.targets)) == list(range(100)) and sorted(te.targets) == list(range(100))
    img, label = tr[0]
    assert img.size == (32, 32) and img.mode == "RGB" and label == tr.targets[0]
    item = CifarDictDataset(te, cifar_transforms(32, False))[3]
    assert tuple(item["img"].shape) == (3, 32, 32) and int(item["pid"]) == te.targets[3]
    with pytest.raises(RuntimeError, match="corrupted"):   # torchvision's md5 check
        CIFAR100(str(root / "cifar100"), train=True, download=False)
    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *a, **k: True)
    tv = CIFAR100(str(root / "cifar100"), train=True, download=False)
    assert np.array_equal(tv.data, tr.data) and tv.targets == tr.targets
    assert tv.classes == tr.classes


def test_cifar_loader_names_a_bad_file(tmp_path):
    d = tmp_path / "cifar-100-python"
    d.mkdir()
    (d / "train").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="train: not a readable CIFAR pickle"):
        open_cifar100(tmp_path)


# --------------------------------------------------------------------------- writer contract


def test_deterministic_idempotent_and_careful(tmp_path):
    a = write_fixture(tmp_path / "a", "viper", ids=2, seed=3)
    b = write_fixture(tmp_path / "b", "viper", ids=2, seed=3)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert len(files) == 4
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    stamp = (a / files[0]).stat().st_mtime_ns
    assert write_fixture(tmp_path / "a", "viper", ids=2, seed=3) == a
    assert (a / files[0]).stat().st_mtime_ns == stamp          # complete: left alone
    def content(d):
        return {p.relative_to(d): p.read_bytes() for p in d.rglob("*") if p.is_file()}

    write_fixture(tmp_path / "a", "viper", ids=2, seed=4)       # another seed: replaced
    assert content(a) != content(b) and len(content(a)) == 4
    (tmp_path / "a" / "_fixture_truth" / "viper" / "COMPLETE").unlink()
    write_fixture(tmp_path / "a", "viper", ids=2, seed=3)       # unfinished: redone
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    assert not [p for p in (tmp_path / "a").iterdir() if p.name.startswith(".fixture")]
    (tmp_path / "c" / "viper").mkdir(parents=True)              # not ours: refused
    with pytest.raises(FileExistsError, match="not written by the fixture writer"):
        write_fixture(tmp_path / "c", "viper", ids=2)
    with pytest.raises(ValueError, match="market1501 fixture only"):
        write_fixture(tmp_path / "c", "viper", parsing=True)

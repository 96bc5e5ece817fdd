"""Tests of reidnb.data.datasets.small_sets: the small-scale loaders of MaskReID Table 1.

The loaders run on generated folder trees in torchreid's layouts.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from reidnb.data.datasets import small_sets as mr


# ----------------------------------------------------------------------------- small sets
def _img(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 8), (10, 20, 30)).save(path)


def _tree(root: Path) -> None:
    for i in range(6):                                            # VIPeR: 6 ids x 2 cams
        _img(root / "viper/VIPeR/cam_a" / f"{i:03d}_45.bmp")
        _img(root / "viper/VIPeR/cam_b" / f"{i:03d}_90.bmp")
    for p in range(1, 206):                                       # PRID: 200 shared + 5
        if p <= 200:
            _img(root / "prid2011/prid_2011/single_shot/cam_a" / f"person_{p:04d}.png")
        _img(root / "prid2011/prid_2011/single_shot/cam_b" / f"person_{p:04d}.png")
    for p in range(1, 7):                                         # iLIDS: 6 ids x 4
        for k in range(1, 5):
            _img(root / "ilids/i-LIDS_Pedestrian/Persons" / f"{p:04d}{k:03d}.jpg")
    for p in range(1, 5):                                         # CUHK01: 4 ids x 4 views
        for k in range(1, 5):
            _img(root / "cuhk01/campus" / f"{p:04d}{k:03d}.png")
    for p in (1, 2, 3, 4):                                        # 3DPeS: 4 ids x 2 views
        for v in (1, 2):
            _img(root / "3dpes/RGB" / f"{p}_{v}_FRAME_{10 * v}_RGB.bmp")
    for n in ("1_001_1_01.png", "1_001_2_06.png", "1_002_1_01.png", "1_002_2_06.png",
              "1_003_1_01.png", "1_003_2_06.png"):                # CUHK03 (torchreid output)
        _img(root / "cuhk03/images_labeled" / n)
    split = {"train": [["/elsewhere/images_labeled/1_001_1_01.png", 0, 0],
                       ["/elsewhere/images_labeled/1_001_2_06.png", 0, 1]],
             "query": [[f"/x/images_labeled/1_00{p}_{v}_0{1 if v == 1 else 6}.png", p - 2, v - 1]
                       for p in (2, 3) for v in (1, 2)]}
    split["gallery"] = split["query"]
    (root / "cuhk03/splits_classic_labeled.json").write_text(json.dumps([split]))
    for p in (1, 2):                                              # Shinpuhkan: train only
        _img(root / "shinpuhkan/images" / f"{p:03d}_0{p}_0001.jpg")


@pytest.fixture(scope="module")
def small_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("small_sets")
    _tree(root)
    return root


def test_small_set_layouts(small_root):
    sets = mr.find_small_sets(small_root, seed=1, verbose=False)
    assert sorted(sets) == sorted(mr.SMALL_SETS)
    v = sets["viper"]
    assert (v.num_train_pids, len(v.train), len(v.query), len(v.gallery)) == (3, 6, 3, 3)
    assert {r.camid for r in v.query} == {0} and {r.camid for r in v.gallery} == {1}
    assert {r.pid for r in v.query} == {r.pid for r in v.gallery}
    p = sets["prid"]
    assert (len(p.train), len(p.query), len(p.gallery)) == (200, 100, 105)
    assert {r.pid for r in p.query} < {r.pid for r in p.gallery}
    assert not {r.path for r in p.train} & {r.path for r in p.query}
    i = sets["ilids"]
    assert (i.num_train_pids, len(i.train), len(i.query), len(i.gallery)) == (3, 12, 3, 3)
    assert all(q.pid == g.pid and q.camid != g.camid for q, g in zip(i.query, i.gallery))
    c = sets["cuhk01"]
    assert (c.num_train_pids, len(c.train), len(c.query), len(c.gallery)) == (2, 8, 4, 4)
    assert {Path(r.path).name[4:7] for r in c.query} == {"001", "002"}
    d = sets["3dpes"]
    assert (d.num_train_pids, len(d.query), len(d.gallery)) == (2, 2, 2)
    c3 = sets["cuhk03"]
    assert Path(c3.train[0].path) == small_root / "cuhk03/images_labeled/1_001_1_01.png"
    assert len(c3.query) == len(c3.gallery) == 4
    assert len(sets["shinpuhkan"].train) == 2 and not sets["shinpuhkan"].query
    # the same seed gives the same split; the train split of a torchreid file is followed
    assert [r.path for r in mr.load_small_set("viper", small_root, seed=1).train] == \
        [r.path for r in v.train]
    names = sorted(Path(r.path).name for r in v.train if r.camid == 0)
    (small_root / "viper/splits.json").write_text(json.dumps(
        [{"train": [[f"/other/cam_a/{n}", 0, 0] for n in names[:1]]}]))
    try:
        assert len(mr.load_small_set("viper", small_root).train) == 2
    finally:
        (small_root / "viper/splits.json").unlink()


def test_joint_train_set(small_root):
    sets = {n: mr.load_small_set(n, small_root) for n in ("viper", "ilids", "shinpuhkan")}
    j = mr.joint_train_set(sets)
    assert j.num_train_pids == 3 + 3 + 2 and len(j.train) == 6 + 12 + 2
    assert sorted({r.pid for r in j.train}) == list(range(8))
    by_root = {}
    for r in j.train:
        by_root.setdefault(Path(r.path).parts[len(small_root.parts)], set()).add(r.pid)
    assert by_root["viper"] == {0, 1, 2} and by_root["shinpuhkan"] == {6, 7}
    assert not j.query and not j.gallery
    with pytest.raises(ValueError, match="no small-scale set"):
        mr.joint_train_set({})


def test_small_set_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="cam_a"):
        mr.load_small_set("viper", tmp_path)
    _img(tmp_path / "cuhk01/campus/abc.png")
    with pytest.raises(ValueError, match="PPPPIII.png"):
        mr.load_small_set("cuhk01", tmp_path)
    (tmp_path / "cuhk03").mkdir()
    with pytest.raises(FileNotFoundError, match="splits_classic_labeled.json"):
        mr.load_small_set("cuhk03", tmp_path)
    with pytest.raises(KeyError, match="unknown small-scale set"):
        mr.load_small_set("grid", tmp_path)
    assert mr.find_small_sets(tmp_path / "nothing", verbose=False) == {}


def test_registry_has_one_loader_per_set():
    assert list(mr.SMALL_SET_LOADERS) == list(mr.SMALL_SETS) == [
        "viper", "prid", "3dpes", "ilids", "cuhk01", "cuhk03", "shinpuhkan"]
    assert len(set(mr.SMALL_SET_LOADERS.values())) == len(mr.SMALL_SETS)
    from reidnb.data.datasets import load_small_set
    assert load_small_set is mr.load_small_set

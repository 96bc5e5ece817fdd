"""Dataset loaders on tiny generated folder trees, ImageDataset items, and real Market-1501."""
from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from reidnb.data.datasets import (ImageDataset, Record, ReIDDataset, load_dataset,
                                  subset_train)
from reidnb.data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_transforms


def _img(path: Path, size=(4, 8), color=(120, 110, 100)):
    """Write a tiny real image (PIL picks JPEG/PNG from the suffix). size is (W, H)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)


def _tree(root: Path, files: dict[str, list[str]]):
    for folder, names in files.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for n in names:
            if n.endswith((".jpg", ".png")):
                _img(root / folder / n)
            else:
                (root / folder / n).write_text("not an image")


MARKET = {
    "bounding_box_train": ["0002_c1s1_000451_01.jpg", "0002_c2s1_000551_01.jpg",
                           "0007_c1s1_000100_01.jpg", "0007_c3s2_000200_01.jpg",
                           "0010_c6s1_000300_01.jpg", "Thumbs.db", "readme.txt"],
    "query": ["-1_c1s1_000100_00.jpg", "0001_c1s1_001051_00.jpg", "0001_c2s1_000301_00.jpg",
              "0003_c3s1_000100_00.jpg"],
    "bounding_box_test": ["-1_c2s1_000401_04.jpg", "0000_c1s1_000401_03.jpg",
                          "0001_c1s1_000401_02.jpg", "0001_c2s1_000401_01.jpg",
                          "0003_c1s1_000555_01.jpg", "0003_c2s1_000777_01.jpg.jpg"],
    "gt_bbox": ["0001_c1s1_001051_00.jpg", "0001_c1s1_002301_00.jpg", "0001_c2s1_000301_00.jpg",
                "0003_c3s1_000100_00.jpg", "0003_c4s1_000101_00.jpg"],
}


@pytest.fixture
def market(tmp_path) -> Path:
    root = tmp_path / "Market-1501-v15.09.15"
    _tree(root, MARKET)
    return root


def test_market_counts_relabel_and_splits(market, capsys):
    ds = load_dataset("market1501", market.parent)  # found under its usual name
    out = capsys.readouterr().out
    assert ds.root == market.resolve() and ds.kind == "real"
    # train: pids 2, 7, 10 -> 0, 1, 2 in sorted order; camid 0-based
    assert [(Path(r.path).name, r.pid, r.camid) for r in ds.train] == [
        ("0002_c1s1_000451_01.jpg", 0, 0), ("0002_c2s1_000551_01.jpg", 0, 1),
        ("0007_c1s1_000100_01.jpg", 1, 0), ("0007_c3s2_000200_01.jpg", 1, 2),
        ("0010_c6s1_000300_01.jpg", 2, 5)]
    assert ds.num_train_pids == 3 and ds.num_train_cams == 4
    # query: junk dropped, original pids kept
    assert [(r.pid, r.camid) for r in ds.query] == [(1, 0), (1, 1), (3, 2)]
    # gallery keeps junk and distractors, and the doubled .jpg.jpg name of the real release
    assert [r.pid for r in ds.gallery] == [-1, 0, 1, 1, 3, 3]
    assert ds.gallery[-1].path.endswith("0003_c2s1_000777_01.jpg.jpg")
    assert all(r.mask is None and r.parts is None for r in ds.train)
    # skipped non-image files are counted and printed
    assert "bounding_box_train/: skipped 2 non-image entries" in out
    assert "query: dropped 1 junk image(s) (pid -1)" in out
    st = ds.stats().set_index("quantity")
    assert list(ds.stats().columns) == ["quantity", "measured", "published"]
    assert st.loc["train images", "measured"] == 5
    assert st.loc["gallery junk (pid -1)", "measured"] == 1
    assert st.loc["gallery distractors (pid 0)", "measured"] == 1
    assert st.loc["gallery ids", "measured"] == 2
    assert st.loc["gt_bbox images", "measured"] == 5
    assert st.loc["train ids", "published"] == 751
    assert "MISMATCH" in out  # the tiny tree is not the published Market-1501


def test_market_multi_query_groups(market):
    ds = load_dataset("market1501", market, verbose=False)
    names = {i: sorted(Path(r.path).name for r in g) for i, g in ds.multi_query.items()}
    assert names == {0: ["0001_c1s1_001051_00.jpg", "0001_c1s1_002301_00.jpg"],
                     1: ["0001_c2s1_000301_00.jpg"],
                     2: ["0003_c3s1_000100_00.jpg"]}
    assert all("gt_bbox" in r.path for g in ds.multi_query.values() for r in g)


def test_market_without_gt_bbox_says_so(market, capsys):
    for f in (market / "gt_bbox").iterdir():
        f.unlink()
    (market / "gt_bbox").rmdir()
    ds = load_dataset("market1501", market)
    assert ds.multi_query == {}
    assert "gt_bbox/ not found" in capsys.readouterr().out


def test_duke_and_cuhk03np_layouts(tmp_path):
    duke = tmp_path / "dukemtmc-reid" / "DukeMTMC-reID"
    _tree(duke, {"bounding_box_train": ["0001_c2_f0046182.jpg", "0001_c8_f0000001.jpg",
                                        "0005_c1_f0000002.jpg"],
                 "query": ["0002_c1_f0000003.jpg"],
                 "bounding_box_test": ["0002_c5_f0000004.jpg", "7140_c7_f0000005.jpg"]})
    ds = load_dataset("dukemtmcreid", tmp_path, verbose=False)
    assert [(r.pid, r.camid) for r in ds.train] == [(0, 1), (0, 7), (1, 0)]
    assert ds.num_train_pids == 2 and ds.multi_query == {}
    assert [r.pid for r in ds.gallery] == [2, 7140]

    for split in ("labeled", "detected"):
        c = tmp_path / "cuhk03-np" / split
        _tree(c, {"bounding_box_train": ["0003_c1_1.png", "0003_c2_2.png", "0001_c1_1.png"],
                  "query": ["0004_c1_1.png"], "bounding_box_test": ["0004_c2_3.png"]})
        ds = load_dataset(f"cuhk03np-{split}", tmp_path, verbose=False)
        assert ds.root == c.resolve()
        assert [(r.pid, r.camid) for r in ds.train] == [(0, 0), (1, 0), (1, 1)]
        assert ds.stats().set_index("quantity").loc["train ids", "published"] == 767
        # the folder itself works too
        assert load_dataset(f"cuhk03np-{split}", c, verbose=False).root == c.resolve()


@pytest.mark.parametrize("name,root,bad", [
    ("market1501", "m", "0001_c7s1_000100_00.jpg"),
    ("dukemtmcreid", "d", "0001_c9_f0000001.jpg"),
])
def test_camera_out_of_range(tmp_path, name, root, bad):
    good = {"market1501": "0001_c1s1_000100_00.jpg", "dukemtmcreid": "0001_c1_f0000001.jpg"}
    _tree(tmp_path / root, {"bounding_box_train": [good[name]], "query": [bad],
                            "bounding_box_test": [good[name]]})
    with pytest.raises(ValueError, match="out of range") as e:
        load_dataset(name, tmp_path / root, verbose=False)
    assert str(tmp_path / root / "query" / bad) in str(e.value)


def test_bad_file_name_names_path_and_pattern(market):
    _img(market / "bounding_box_train" / "0002-c1-foo.jpg")
    with pytest.raises(ValueError) as e:
        load_dataset("market1501", market, verbose=False)
    msg = str(e.value)
    assert str(market / "bounding_box_train" / "0002-c1-foo.jpg") in msg
    assert "PPPP_cCsS_FFFFFF_BB.jpg" in msg


def test_wrong_dataset_naming_is_reported(tmp_path):
    # Market names in a CUHK03-NP folder: the PNG pattern does not match
    c = tmp_path / "cuhk03-np" / "labeled"
    _tree(c, {"bounding_box_train": ["0001_c1s1_000100_00.jpg"], "query": ["0001_c1_1.png"],
              "bounding_box_test": ["0001_c2_1.png"]})
    with pytest.raises(ValueError, match=r"PPPP_cC_N\.png") as e:
        load_dataset("cuhk03np-labeled", tmp_path, verbose=False)
    assert str(c / "bounding_box_train") in str(e.value)


def test_missing_misnamed_and_empty_split_folders(market):
    (market / "bounding_box_test").rename(market / "bounding_box_tests")
    with pytest.raises(FileNotFoundError) as e:
        load_dataset("market1501", market, verbose=False)
    assert str(market / "bounding_box_test") in str(e.value)
    assert "bounding_box_tests" in str(e.value)  # what was found instead

    (market / "bounding_box_tests").rename(market / "bounding_box_test")
    for f in (market / "query").iterdir():
        f.unlink()
    (market / "query" / "Thumbs.db").write_text("x")
    with pytest.raises(ValueError, match="holds no images") as e:
        load_dataset("market1501", market, verbose=False)
    assert str(market / "query") in str(e.value)

    (market / "query" / "Thumbs.db").unlink()
    (market / "query").rmdir()
    (market / "query").write_text("a file, not a folder")
    with pytest.raises(FileNotFoundError, match="not a folder") as e:
        load_dataset("market1501", market, verbose=False)
    assert str(market / "query") in str(e.value)


def test_dataset_not_found_lists_tried_paths(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        load_dataset("dukemtmcreid", tmp_path, verbose=False)
    assert str(tmp_path / "DukeMTMC-reID") in str(e.value)
    assert "data/README.md" in str(e.value)
    with pytest.raises(KeyError, match="market1501"):
        load_dataset("market", tmp_path)


def test_subset_train(market):
    ds = load_dataset("market1501", market, verbose=False)
    sub = subset_train(ds, 2, seed=0)
    assert sub.num_train_pids == 2
    assert sorted({r.pid for r in sub.train}) == [0, 1]
    # the kept images are exactly those of the two chosen original identities
    kept = {Path(r.path).name[:4] for r in sub.train}
    assert len(kept) == 2 and kept <= {"0002", "0007", "0010"}
    assert len(sub.train) == sum(1 for r in ds.train if Path(r.path).name[:4] in kept)
    assert sub.query == ds.query and sub.gallery == ds.gallery
    assert "train subset: 2 of 3 identities" in sub.summary()
    assert subset_train(ds, 2, seed=0).train == sub.train  # pure function of the seed
    assert subset_train(ds, None, 0) is ds and subset_train(ds, 3, 0) is ds
    with pytest.raises(ValueError):
        subset_train(ds, 0, 0)


def _synthetic_tree(root: Path):
    files = {"bounding_box_train": ["0001_c1s1_000001_00.jpg", "0002_c2s1_000002_00.jpg"],
             "query": ["0003_c1s1_000003_00.jpg"],
             "bounding_box_test": ["0003_c2s1_000004_00.jpg", "0000_c1s1_000005_00.jpg"],
             "gt_bbox": ["0003_c1s1_000003_00.jpg"]}
    _tree(root, files)
    for folder, names in files.items():
        for kind in ("masks", "parts"):
            (root / kind / folder).mkdir(parents=True, exist_ok=True)
            for n in names:
                Image.new("L", (4, 8), 0).save(root / kind / folder / (Path(n).stem + ".png"))
    counts = {"bounding_box_train": dict(images=2, ids=2, cameras=2),
              "query": dict(images=1, ids=1, cameras=1),
              "bounding_box_test": dict(images=2, ids=2, cameras=2, distractors=1, junk=0),
              "gt_bbox": dict(images=1, ids=1, cameras=1)}
    (root / "meta.json").write_text(json.dumps({"counts": counts}))
    (root / "COMPLETE").write_text("done")
    return root


def test_synthetic_generates_when_incomplete(tmp_path, monkeypatch):
    calls = []

    def fake_generate(root, size, seed):
        calls.append((Path(root), size, seed))
        return _synthetic_tree(Path(root))

    fake = types.ModuleType("reidnb.data.synthetic")
    fake.generate_synthetic = fake_generate
    monkeypatch.setitem(sys.modules, "reidnb.data.synthetic", fake)
    ds = load_dataset("synthetic", tmp_path, synthetic_size="smoke", seed=3, verbose=False)
    expected_root = tmp_path / "synthetic" / "smoke_seed3"
    assert calls == [(expected_root, "smoke", 3)]
    assert ds.kind == "synthetic" and ds.root == expected_root.resolve()
    r = ds.train[0]
    assert r.mask == str(ds.root / "masks" / "bounding_box_train" / "0001_c1s1_000001_00.png")
    assert r.parts == str(ds.root / "parts" / "bounding_box_train" / "0001_c1s1_000001_00.png")
    assert [len(g) for g in ds.multi_query.values()] == [1]
    assert ds.multi_query[0][0].mask.endswith("masks/gt_bbox/0003_c1s1_000003_00.png")
    # complete now: a second load does not regenerate
    load_dataset("synthetic", tmp_path, synthetic_size="smoke", seed=3, verbose=False)
    assert len(calls) == 1
    # pointing data_root straight at the set works too
    assert load_dataset("synthetic", expected_root, verbose=False).root == ds.root
    # the generator's declared counts (meta.json) are the reference column
    st = ds.stats().set_index("quantity")
    assert (st["measured"] == st["published"]).all(), st
    assert st.loc["gallery ids", "published"] == 1      # 2 ids declared incl. pid 0
    # a complete set the generator does not recognise (other version) is regenerated
    fake.is_complete = lambda root, size, seed: False
    load_dataset("synthetic", tmp_path, synthetic_size="smoke", seed=3, verbose=False)
    assert len(calls) == 2


def test_synthetic_declared_count_mismatch_is_shown(tmp_path, capsys):
    root = _synthetic_tree(tmp_path / "set")
    (root / "bounding_box_train" / "0002_c2s1_000002_00.jpg").unlink()
    load_dataset("synthetic", root)
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("train images"))
    assert "declared" in out and line.split() == ["train", "images", "1", "2", "MISMATCH"]
    (root / "meta.json").write_text("{not json")
    with pytest.raises(ValueError) as e:
        load_dataset("synthetic", root, verbose=False)
    assert str(root / "meta.json") in str(e.value)


def test_synthetic_missing_mask_is_reported(tmp_path):
    root = _synthetic_tree(tmp_path / "synthetic" / "quick_seed0")
    victim = root / "masks" / "query" / "0003_c1s1_000003_00.png"
    victim.unlink()
    with pytest.raises(FileNotFoundError) as e:
        load_dataset("synthetic", root, verbose=False)   # the set itself: no generator call
    assert str(victim) in str(e.value)


# ----------------------------------------------------------------------- ImageDataset


def _labelled(tmp_path, size=(4, 8)):
    """A 4x8 (WxH) PNG image: left half red, right half white; mask 255 on the left half;
    parts 3 on the left half, 0 elsewhere."""
    w, h = size
    img = np.zeros((h, w, 3), np.uint8)
    img[:, : w // 2] = (255, 0, 0)
    img[:, w // 2:] = 255
    mask = np.zeros((h, w), np.uint8)
    mask[:, : w // 2] = 255
    parts = (mask > 0).astype(np.uint8) * 3
    paths = tmp_path / "img.png", tmp_path / "mask.png", tmp_path / "parts.png"
    Image.fromarray(img).save(paths[0])
    Image.fromarray(mask).save(paths[1])
    Image.fromarray(parts).save(paths[2])
    return [str(p) for p in paths]


def test_image_dataset_item_dtypes_and_values(tmp_path):
    ip, mp, pp = _labelled(tmp_path)
    rec = Record(ip, pid=5, camid=2, mask=mp, parts=pp)
    ds = ImageDataset([rec, rec], build_transforms(8, 4, is_train=False),
                      load_mask=True, load_parts=True)
    item = ds[1]
    assert item["img"].dtype == torch.float32 and item["img"].shape == (3, 8, 4)
    red = [(1 - IMAGENET_MEAN[0]) / IMAGENET_STD[0], (0 - IMAGENET_MEAN[1]) / IMAGENET_STD[1],
           (0 - IMAGENET_MEAN[2]) / IMAGENET_STD[2]]  # 2.2489, -2.0357, -1.8044
    torch.testing.assert_close(item["img"][:, 0, 0], torch.tensor(red), atol=1e-4, rtol=0)
    assert item["pid"].dtype == torch.int64 and item["pid"].item() == 5 and item["pid"].ndim == 0
    assert item["camid"].dtype == torch.int64 and item["camid"].item() == 2
    assert item["index"] == 1 and item["path"] == ip
    assert item["mask"].dtype == torch.float32 and item["mask"].shape == (1, 8, 4)
    assert item["mask"][0, :, :2].eq(1).all() and item["mask"][0, :, 2:].eq(0).all()
    assert item["parts"].dtype == torch.int64 and item["parts"].shape == (8, 4)
    assert item["parts"][:, :2].eq(3).all() and item["parts"][:, 2:].eq(0).all()
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=2)))  # default collate
    assert batch["img"].shape == (2, 3, 8, 4) and batch["pid"].tolist() == [5, 5]
    assert batch["path"] == [ip, ip] and batch["index"].tolist() == [0, 1]
    # no transform: native size, normalised, no mask key unless asked
    plain = ImageDataset([rec])[0]
    assert plain["img"].shape == (3, 8, 4) and "mask" not in plain and "parts" not in plain


def test_image_dataset_errors(tmp_path):
    ip, mp, pp = _labelled(tmp_path)
    with pytest.raises(ValueError, match="no mask path") as e:
        ImageDataset([Record(ip, 0, 0)], load_mask=True)
    assert ip in str(e.value)
    # mask of another size: both paths and sizes in the message
    small = tmp_path / "small_mask.png"
    Image.new("L", (2, 4), 255).save(small)
    ds = ImageDataset([Record(ip, 0, 0, mask=str(small))], load_mask=True)
    with pytest.raises(ValueError) as e:
        ds[0]
    msg = str(e.value)
    assert str(small) in msg and ip in msg and "2x4" in msg and "4x8" in msg
    # undecodable image
    broken = tmp_path / "0001_c1s1_000001_00.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(OSError, match="cannot decode") as e:
        ImageDataset([Record(str(broken), 0, 0)])[0]
    assert str(broken) in str(e.value)
    # a palette PNG part map keeps its indices as labels (not the palette's grey levels)
    pal = Image.new("P", (4, 8), 0)
    pal.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [255] * 756)
    pal.paste(3, (0, 0, 2, 8))
    pal_path = tmp_path / "parts_p.png"
    pal.save(pal_path)
    item = ImageDataset([Record(ip, 0, 0, parts=str(pal_path))], load_parts=True)[0]
    assert item["parts"][:, :2].eq(3).all() and item["parts"][:, 2:].eq(0).all()
    # part labels outside 0..7
    bad_parts = tmp_path / "bad_parts.png"
    Image.new("L", (4, 8), 9).save(bad_parts)
    with pytest.raises(ValueError, match="0..7") as e:
        ImageDataset([Record(ip, 0, 0, parts=str(bad_parts))], load_parts=True)[0]
    assert str(bad_parts) in str(e.value)


def test_reiddataset_pids_and_repr(market):
    ds = load_dataset("market1501", market, verbose=False)
    assert isinstance(ds, ReIDDataset)
    assert ds.pids("train") == [0, 0, 1, 1, 2] and ds.pids("query") == [1, 1, 3]
    assert "train=5" in repr(ds)
    with pytest.raises(KeyError):
        ds.pids("val")


# ----------------------------------------------------------------------- real Market-1501


def test_real_market1501_published_counts(market_root):
    ds = load_dataset("market1501", market_root.parent, verbose=False)  # the folder above
    assert ds.root == market_root.resolve()
    st = ds.stats().set_index("quantity")["measured"].to_dict()
    assert st["train ids"] == 751 and ds.num_train_pids == 751
    assert st["train images"] == 12936
    assert st["query images"] == 3368
    assert st["gallery images"] == 19732
    assert st["gallery junk (pid -1)"] == 3819
    assert st["gallery distractors (pid 0)"] == 2798
    assert ds.num_train_cams == 6
    assert sorted({r.pid for r in ds.train}) == list(range(751))
    # every query has a multi-query group of gt_bbox images of its own pid and camera
    assert len(ds.multi_query) == len(ds.query)
    for i, q in enumerate(ds.query):
        group = ds.multi_query[i]
        assert group and all(r.pid == q.pid and r.camid == q.camid for r in group)
    # and the stats table agrees with the published numbers everywhere
    df = ds.stats()
    assert (df["measured"] == df["published"]).all(), df

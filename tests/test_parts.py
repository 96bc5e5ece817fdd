"""Tests of reidnb.data.parts: LIP -> part mapping, the parser, the mask sources and cache."""
from __future__ import annotations

import os
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from reidnb.data import parts as M
from reidnb.data.datasets import load_dataset
from reidnb.data.parts import fcn as FCN
from reidnb.data.parts.cache import _torch_threads

# --------------------------------------------------------------------------- lip_to_parts


def _hand_label() -> tuple[np.ndarray, np.ndarray]:
    """A 40 x 20 LIP label map and its part map worked out by hand."""
    lab = np.zeros((40, 20), np.uint8)
    exp = np.zeros((40, 20), np.uint8)
    lab[0:2, 7:13] = 1                      # hat          -> head
    lab[2:4, 7:13] = 2                      # hair         -> head
    lab[4:5, 7:13] = 4                      # sunglasses   -> head
    lab[5:9, 7:13] = 13                     # face         -> head
    exp[0:9, 7:13] = 1
    lab[10:30, 6:14] = 5                    # upper-clothes -> chest
    lab[10:12, 9:11] = 11                   # scarf        -> chest
    exp[10:30, 6:14] = 4
    lab[10:30, 2:5] = 14                    # left arm, rows 10..29: middle 19.5
    exp[10:20, 2:5] = 2
    exp[20:30, 2:5] = 3
    lab[35, 0] = 14                         # stray left-arm pixel: split at the same middle
    exp[35, 0] = 3
    lab[12:28, 15:18] = 15                  # right arm, rows 12..27 on its own: middle 19.5
    lab[28, 15:18] = 3                      # glove        -> chest
    exp[12:20, 15:18] = 2
    exp[20:28, 15:18] = 3
    exp[28, 15:18] = 4
    # Legs: pants rows 30..33 and bare left leg rows 34..37 are ONE region (30..37,
    # middle 33.5): pants = upper leg, bare leg = lower leg. Split on their own, pants
    # would be half upper, half lower.
    lab[30:34, 6:14] = 9
    lab[34:38, 6:9] = 16
    lab[34:38, 11:14] = 17
    exp[30:34, 6:14] = 5
    exp[34:38, 6:9] = 6
    exp[34:38, 11:14] = 6
    lab[38:40, 6:9] = 18                    # left shoe    -> foot
    lab[38:40, 11:14] = 19                  # right shoe   -> foot
    lab[37, 10] = 8                         # socks        -> foot
    exp[38:40, 6:9] = 7
    exp[38:40, 11:14] = 7
    exp[37, 10] = 7
    return lab, exp


def test_lip_to_parts_hand_made():
    lab, exp = _hand_label()
    out = M.lip_to_parts(lab)
    assert out.dtype == np.uint8 and out.shape == lab.shape
    np.testing.assert_array_equal(out, exp)
    np.testing.assert_array_equal(out > 0, lab > 0)


def test_lip_to_parts_arm_rows_10_to_29():
    lab = np.zeros((40, 10), np.uint8)
    lab[10:30, 3:6] = 15
    out = M.lip_to_parts(lab)
    assert (out[10:20, 3:6] == 2).all() and (out[20:30, 3:6] == 3).all()
    assert out[:10].sum() == 0 and out[30:].sum() == 0


def test_lip_to_parts_odd_extent_and_skirt():
    lab = np.zeros((12, 4), np.uint8)
    lab[1:6, 0] = 14                        # rows 1..5: middle row 3 is upper
    lab[6:11, 1] = 12                       # skirt rows 6..10 -> 6..8 upper, 9..10 lower
    out = M.lip_to_parts(lab)
    np.testing.assert_array_equal(out[:, 0], [0, 2, 2, 2, 3, 3, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(out[:, 1], [0, 0, 0, 0, 0, 0, 5, 5, 5, 6, 6, 0])


def test_lip_to_parts_rejects_bad_ids_and_shapes():
    lab = np.zeros((8, 4), np.uint8)
    lab[2, 2] = 25
    with pytest.raises(ValueError, match=r"some/label\.png.*\[25\]"):
        M.lip_to_parts(lab, source="some/label.png")
    with pytest.raises(ValueError, match="H x W"):
        M.lip_to_parts(np.zeros((8, 4, 3), np.uint8))


def test_masks_from_parts_numpy_and_torch():
    parts = np.array([[0, 1, 7], [3, 0, 0]], np.uint8)
    np.testing.assert_array_equal(M.masks_from_parts(parts), [[0, 255, 255], [255, 0, 0]])
    t = M.masks_from_parts(torch.from_numpy(parts))
    assert t.dtype == torch.uint8 and t.tolist() == [[0, 255, 255], [255, 0, 0]]
    assert len(M.PART_NAMES) == len(M.PART_COLORS) == 8
    assert M.colorize_parts(parts)[0, 2].tolist() == list(M.PART_COLORS[7])


# --------------------------------------------------------------------------- tiny Market tree


def _person(h=128, w=64) -> tuple[np.ndarray, np.ndarray]:
    """A blocky pedestrian image (uint8 [H, W, 3]) and its LIP label map."""
    lab = np.zeros((h, w), np.uint8)
    lab[6:14, 24:40] = 2                    # hair
    lab[14:26, 24:40] = 13                  # face
    lab[26:66, 18:46] = 5                   # upper clothes
    lab[28:64, 10:17] = 14                  # left arm
    lab[28:64, 47:54] = 15                  # right arm
    lab[66:110, 20:31] = 9                  # pants
    lab[66:110, 33:44] = 9
    lab[110:118, 20:31] = 18
    lab[110:118, 33:44] = 19
    colours = {0: (120, 130, 125), 2: (30, 20, 20), 13: (220, 180, 150), 5: (200, 40, 40),
               14: (220, 180, 150), 15: (220, 180, 150), 9: (40, 50, 120), 18: (20, 20, 20),
               19: (20, 20, 20)}
    img = np.zeros((h, w, 3), np.uint8)
    for k, c in colours.items():
        img[lab == k] = c
    return img, lab


TRAIN = ["0002_c1s1_000451_01", "0002_c2s1_000551_01", "0007_c1s1_000301_01",
         "0007_c3s1_000801_02", "0010_c2s1_001001_01", "0010_c4s1_000101_01"]
QUERY = ["0003_c1s1_000151_00", "0004_c2s1_000201_00"]
GALLERY = ["0003_c2s1_000251_01", "0004_c3s1_000351_01", "0000_c1s1_000001_01"]


@pytest.fixture()
def tiny_market(tmp_path) -> Path:
    """Market-1501 layout with 6 train, 2 query, 3 gallery images; LIP labels for all
    train images; one gallery image of another size (100 x 40)."""
    root = tmp_path / "market"
    img, lab = _person()
    for folder, stems in (("bounding_box_train", TRAIN), ("query", QUERY),
                          ("bounding_box_test", GALLERY)):
        (root / folder).mkdir(parents=True)
        for i, stem in enumerate(stems):
            im = np.roll(img, i - 1, axis=1)
            if stem == GALLERY[-1]:
                Image.fromarray(im).resize((40, 100)).save(root / folder / f"{stem}.jpg")
            else:
                Image.fromarray(im).save(root / folder / f"{stem}.jpg", quality=95)
    (root / "bounding_box_train_parsing_pgt").mkdir()
    for i, stem in enumerate(TRAIN):
        Image.fromarray(np.roll(lab, i - 1, axis=1)).save(
            root / "bounding_box_train_parsing_pgt" / f"{stem}.png")
    return root


def _load(root: Path):
    return load_dataset("market1501", root, verbose=False)


def _png(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def test_labels_source_converts_and_caches(tiny_market, tmp_path, capsys):
    ds = _load(tiny_market)
    cache = tmp_path / "cache"
    out, info = M.attach_masks(ds, source="labels", splits=("train",), cache_root=cache)
    assert info["splits"]["train"] == {"labels": 6, "written": 6}
    for i, r in enumerate(out.train):
        stem = Path(r.path).stem
        assert r.parts == str(cache / "labels" / "parts" / "bounding_box_train" / f"{stem}.png")
        lab = _png(tiny_market / "bounding_box_train_parsing_pgt" / f"{stem}.png")
        np.testing.assert_array_equal(_png(r.parts), M.lip_to_parts(lab))
        np.testing.assert_array_equal(_png(r.mask), np.where(lab > 0, 255, 0))
        assert (r.pid, r.camid, r.path) == (ds.train[i].pid, ds.train[i].camid, ds.train[i].path)
    assert out.query == ds.query and ds.train[0].mask is None      # input left alone
    capsys.readouterr()
    out2, info2 = M.attach_masks(ds, source="labels", splits=("train",), cache_root=cache)
    assert info2["splits"]["train"] == {"labels": 6, "cached": 6}
    assert "reused 6 cached" in capsys.readouterr().out
    assert [r.parts for r in out2.train] == [r.parts for r in out.train]
    # A missing label: the named source refuses, naming how many.
    (tiny_market / "bounding_box_train_parsing_pgt" / f"{TRAIN[0]}.png").unlink()
    with pytest.raises(ValueError, match=r"'labels' cannot serve 1 images.*" + TRAIN[0]):
        M.attach_masks(_load(tiny_market), source="labels", splits=("train",),
                       cache_root=tmp_path / "cache2", verbose=False)


def test_bad_cached_pngs_are_checked_on_attach(tiny_market, tmp_path, capsys):
    ds = _load(tiny_market)
    cache = tmp_path / "cache"
    out, _ = M.attach_masks(ds, source="labels", splits=("train",), cache_root=cache,
                            verbose=False)
    good_parts = _png(out.train[1].parts).copy()
    trunc = Path(out.train[0].mask)
    trunc.write_bytes(trunc.read_bytes()[:40])                       # truncated PNG
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(out.train[1].parts)   # wrong size
    Image.fromarray(np.full((128, 64), 9, np.uint8)).save(out.train[2].parts)  # label 9
    with pytest.raises(ValueError, match=r"cached mask .* is unreadable.*cache file: delete it"):
        M.attach_masks(ds, source="labels", splits=("train",), cache_root=cache,
                       repair=False, verbose=False)
    out2, info = M.attach_masks(ds, source="labels", splits=("train",), cache_root=cache,
                                verbose=True)
    assert info["splits"]["train"] == {"labels": 6, "cached": 3, "written": 3}
    assert len(info["repaired"]) == 3 and "10x10" in " ".join(info["repaired"])
    assert "3 bad cached PNG(s) recomputed" in capsys.readouterr().out
    np.testing.assert_array_equal(_png(out2.train[1].parts), good_parts)


def test_label_size_mismatch_names_both_paths(tiny_market, tmp_path):
    lab_path = tiny_market / "bounding_box_train_parsing_pgt" / f"{TRAIN[1]}.png"
    Image.fromarray(np.zeros((64, 32), np.uint8)).save(lab_path)
    img_path = tiny_market / "bounding_box_train" / f"{TRAIN[1]}.jpg"
    with pytest.raises(ValueError) as e:
        M.attach_masks(_load(tiny_market), source="labels", splits=("train",),
                       cache_root=tmp_path / "c", verbose=False)
    msg = str(e.value)
    assert str(lab_path) in msg and str(img_path) in msg
    assert "32x64" in msg and "64x128" in msg


def test_label_bad_ids_names_file(tiny_market, tmp_path):
    lab_path = tiny_market / "bounding_box_train_parsing_pgt" / f"{TRAIN[2]}.png"
    bad = np.zeros((128, 64), np.uint8)
    bad[5, 5] = 20
    Image.fromarray(bad).save(lab_path)
    with pytest.raises(ValueError, match=str(lab_path).replace(".", r"\.") + r".*\[20\]"):
        M.attach_masks(_load(tiny_market), source="labels", splits=("train",),
                       cache_root=tmp_path / "c", verbose=False)


def test_auto_trains_parser_for_unlabelled_images(tiny_market, tmp_path):
    ds = _load(tiny_market)
    cache = tmp_path / "cache"
    kw = dict(cache_root=cache, parser_epochs=3, parser_max_iters=2, parser_batch_size=4,
              parser_max_images=None, batch_size=4, device="cpu", num_threads=1,
              verbose=False)
    threads = torch.get_num_threads()
    out, info = M.attach_masks(ds, **kw)
    assert torch.get_num_threads() == threads                      # restored
    assert info["splits"]["train"]["labels"] == 6
    assert info["splits"]["query"] == {"parser": 2, "written": 2}
    assert info["splits"]["gallery"] == {"parser": 3, "written": 3}
    assert info["parser_trained"] and 0.0 <= info["parser"]["miou"] <= 1.0
    assert info["parser"]["iters"] == 2 and info["parser"]["n_val"] > 0
    assert set(info["parser"]["per_class_iou"]) == set(M.PART_NAMES)
    for r in out.train + out.query + out.gallery:
        with Image.open(r.path) as im:
            size = im.size
        parts, mask = _png(r.parts), _png(r.mask)
        assert (parts.shape[1], parts.shape[0]) == size            # 100 x 40 one included
        assert parts.max() <= 7
        np.testing.assert_array_equal(mask, np.where(parts > 0, 255, 0))
    # The shared parser (keyed by the label set) holds tensors and plain data only.
    ppath = Path(info["parser"]["path"])
    assert ppath.parent.parent == tmp_path / "parsers" and ppath.parent.name.startswith("market1501-")
    assert info["parser"]["trained_on"] == "market1501"
    assert "market1501 query: parser (trained on market1501 labels) 2" in info["chain"]["query"]
    ckpt = torch.load(ppath, weights_only=True)
    assert ckpt["arch"] == "tiny" and ckpt["image_size"] == [128, 64]
    model, pinfo = M.load_parser(ppath)
    assert pinfo["parser_id"] == info["parser"]["parser_id"]
    assert model(torch.zeros(1, 3, 128, 64)).shape == (1, 8, 128, 64)
    # Second run: parser reused, predictions read back from the cache.
    out2, info2 = M.attach_masks(ds, **kw)
    assert not info2["parser_trained"]
    assert info2["splits"]["query"] == {"parser": 2, "cached": 2}
    assert info2["splits"]["train"] == {"labels": 6, "cached": 6}
    assert [r.parts for r in out2.gallery] == [r.parts for r in out.gallery]


def test_parser_source_without_labels_or_checkpoint_fails(tiny_market, tmp_path):
    for f in (tiny_market / "bounding_box_train_parsing_pgt").iterdir():
        f.unlink()
    with pytest.raises(ValueError, match="'parser' cannot serve"):
        M.attach_masks(_load(tiny_market), source="parser", cache_root=tmp_path / "c",
                       verbose=False)


def test_train_parser_report_and_checkpoint(tiny_market, tmp_path):
    ds, _ = M.attach_masks(_load(tiny_market), source="labels", splits=("train",),
                           cache_root=tmp_path / "c", verbose=False)
    with _torch_threads(1):     # 1 thread: much faster on a busy shared CPU
        model, rep = M.train_parser(ds.train, epochs=1, batch_size=2, max_iters=2,
                                    device="cpu", seed=0, val_fraction=0.34, verbose=False)
    assert rep["iters"] == 2 and rep["n_val_pids"] == 1 and rep["n_val"] == 2
    assert rep["n_train"] == 4 and 0.0 <= rep["pixel_acc"] <= 1.0
    path = M.save_parser(model, tmp_path / "p" / "parser.pt", rep)
    loaded, info = M.load_parser(path)
    x = torch.randn(2, 3, 128, 64)
    torch.testing.assert_close(loaded(x), model.eval()(x))
    assert info["miou"] == pytest.approx(rep["miou"], nan_ok=True)
    torch.save({"format": "something else"}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="bad.pt is not a reidnb parser"):
        M.load_parser(tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="without a parts|no parts"):
        M.train_parser(_load(tiny_market).train, epochs=1)


# --------------------------------------------------------------------------- FCN


class _FakeFCN(torch.nn.Module):
    """Stands in for torchvision's FCN: person (VOC 15) on the top half of the image."""

    def forward(self, x):
        n, _, h, w = x.shape
        out = torch.zeros(n, 21, h, w)
        out[:, 15, : h // 2] = 5.0
        out[:, 0, h // 2:] = 5.0
        return {"out": out}


def test_fcn_source_with_weights(tiny_market, tmp_path, monkeypatch):
    monkeypatch.setattr(FCN, "_load_fcn", lambda name="fcn_resnet101": _FakeFCN())
    out, info = M.attach_masks(_load(tiny_market), source="fcn", splits=("query",),
                               cache_root=tmp_path / "c", verbose=False)
    assert info["splits"]["query"] == {"fcn": 2, "written": 2}
    r = out.query[0]
    assert r.parts is None and "fcn" in r.mask
    mask = _png(r.mask)
    assert (mask[:64] == 255).all() and (mask[64:] == 0).all()


def test_fcn_unavailable_falls_back(tmp_path, monkeypatch, capsys, tiny_market):
    def no_weights(name="fcn_resnet101"):
        raise urllib.error.URLError("no network (test)")

    monkeypatch.setattr(FCN, "_load_fcn", no_weights)
    ds = _load(tiny_market)
    out, info = M.attach_masks(ds, source="fcn", splits=("train",),
                               cache_root=tmp_path / "c")
    printed = capsys.readouterr().out
    assert "fcn_resnet101 weights could not be loaded" in printed and "no network" in printed
    assert info["source"] == "auto (fcn unavailable)"
    assert info["splits"]["train"]["labels"] == 6 and "fcn" not in info["splits"]["train"]
    # auto with nothing else left: a clear error, not a silent gap.
    for f in (tiny_market / "bounding_box_train_parsing_pgt").iterdir():
        f.unlink()
    with pytest.raises(RuntimeError, match="no source for"):
        M.attach_masks(_load(tiny_market), cache_root=tmp_path / "c2", verbose=False)


# --------------------------------------------------------------------------- synthetic


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory) -> Path:
    synthetic = pytest.importorskip("reidnb.data.synthetic")
    root = tmp_path_factory.mktemp("syn") / "smoke_seed0"
    synthetic.generate_synthetic(root, "smoke", 0, verbose=False)
    return root


def test_synthetic_uses_exact_maps(synthetic_root, tmp_path):
    ds = load_dataset("synthetic", synthetic_root, verbose=False)
    out, info = M.attach_masks(ds, verbose=False)
    assert info["splits"]["train"] == {"synthetic": len(ds.train)}
    assert info["splits"]["gallery"] == {"synthetic": len(ds.gallery)}
    assert out.train == ds.train and out.query == ds.query
    assert info["parser"] is None and not (synthetic_root / "parser.pt").exists()
    r = out.query[0]
    assert r.parts == str(synthetic_root / "parts" / "query" / (Path(r.path).stem + ".png"))


def test_synthetic_parser_source(synthetic_root, tmp_path):
    """The parser trains on the exact synthetic maps when asked for explicitly."""
    ds = load_dataset("synthetic", synthetic_root, verbose=False)
    out, info = M.attach_masks(ds, source="parser", splits=("query",),
                               cache_root=tmp_path, parser_max_iters=2,
                               parser_root=tmp_path / "parsers",
                               parser_batch_size=8, batch_size=64, device="cpu",
                               num_threads=1, verbose=False)
    assert info["splits"]["query"] == {"parser": len(ds.query), "written": len(ds.query)}
    assert Path(info["parser"]["path"]).is_file() and info["parser"]["trained_on"] == "synthetic"
    assert all(Path(r.parts).is_file() and "parser" in r.parts for r in out.query)
    assert out.train == ds.train                           # split not asked for: unchanged


# --------------------------------------------------------------------------- real data


def test_real_market_labels(market_root):
    folder = market_root / "bounding_box_train_parsing_pgt"
    names = sorted(os.listdir(folder))[:: 2000][:6]
    for name in names:
        lab = _png(folder / name)
        with Image.open(market_root / "bounding_box_train" / (name[:-4] + ".jpg")) as im:
            assert im.size == (lab.shape[1], lab.shape[0])
        parts = M.lip_to_parts(lab, source=folder / name)
        assert set(np.unique(parts).tolist()) <= set(range(8))
        np.testing.assert_array_equal(parts > 0, lab > 0)
        rows = np.arange(parts.shape[0])[:, None] * np.ones_like(parts)
        mean_row = {k: rows[parts == k].mean() for k in (1, 4, 7) if (parts == k).any()}
        if {1, 4, 7} <= set(mean_row):          # head above chest above foot
            assert mean_row[1] < mean_row[4] < mean_row[7], name


# --------------------------------------------------------------------------- Trainer term, shim


def test_part_cross_entropy_term_weighted_and_plain():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 8, 4, 3, generator=g)
    target = torch.randint(0, 8, (2, 4, 3), generator=g)
    w = torch.rand(8, generator=g) + 0.5
    out, batch = {"seg_logits": logits}, {"parts": target}
    torch.testing.assert_close(M.PartCrossEntropy()(out, batch),
                               torch.nn.functional.cross_entropy(logits, target))
    torch.testing.assert_close(M.PartCrossEntropy(w)(out, batch),
                               torch.nn.functional.cross_entropy(logits, target, weight=w))


def test_the_one_part_palette():
    assert M.PART_COLORS[7] == (204, 121, 167)             # masks.py's values are kept
    assert len(M.PART_COLORS) == len(M.PART_NAMES) == 8
    assert M.LABEL_DIR_SUFFIX == "_parsing_pgt"


# --------------------------------------------------------------------------- small-scale sets


def _small_viper(root: Path) -> None:
    for i in range(4):
        for cam in ("cam_a", "cam_b"):
            p = root / "viper/VIPeR" / cam / f"{i:03d}_45.bmp"
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.roll(_person()[0], i, axis=1)).resize((48, 128)).save(p)


def _no_torchvision(monkeypatch):
    def no_weights(name="x"):
        raise urllib.error.URLError("no network (test)")

    monkeypatch.setattr(FCN, "_load_fcn", no_weights)
    monkeypatch.setattr(M.pose, "_load_keypoint_model", no_weights)


def test_small_set_masks_without_any_source_name_every_way(tmp_path, monkeypatch, capsys):
    from reidnb.data.datasets import load_small_set

    monkeypatch.setenv("REIDNB_CACHE_DIR", str(tmp_path / "project/data/cache"))
    _no_torchvision(monkeypatch)
    _small_viper(tmp_path / "small")
    sets = {"viper": load_small_set("viper", tmp_path / "small")}
    for ckpt in (None, tmp_path / "nope.pt"):       # a missing checkpoint is not required
        with pytest.raises(FileNotFoundError) as e:
            M.attach_small_set_masks(sets, ckpt)
        msg = str(e.value)
        assert isinstance(e.value, RuntimeError) and isinstance(e.value, M.NoMaskSourceError)
        assert "no source for 4 images of viper split 'train'" in msg
        assert "_parsing_pgt" in msg and "market1501" in msg and "parser_source=" in msg
        assert "fcn_resnet101_coco" in msg and "keypointrcnn_resnet50_fpn_coco" in msg
        assert str(torch.hub.get_dir()) in msg
    assert "nope.pt does not exist" in capsys.readouterr().out


def test_small_set_masks_train_a_parser_from_labels(tiny_market, tmp_path, monkeypatch):
    """Market masks all from parsing labels (no parser.pt yet): the parser is trained on
    the source's labels into the named checkpoint's folder, then labels the small set."""
    from reidnb.data.datasets import load_small_set

    monkeypatch.setenv("REIDNB_CACHE_DIR", str(tmp_path / "project/data/cache"))   # small-set cache
    _small_viper(tmp_path / "small")
    sets = {"viper": load_small_set("viper", tmp_path / "small")}
    ckpt = tmp_path / "market_cache" / "parser.pt"      # not there: not required
    opts = dict(max_iters=2, batch_size=4, max_images=None)
    with _torch_threads(1):
        out = M.attach_small_set_masks(
            sets, ckpt, parser_source=_load(tiny_market), device="cpu", verbose=False,
            parser_options=opts)
    shared = list((tmp_path / "project/data/cache/masks/parsers").glob("market1501-*/parser.pt"))
    assert len(shared) == 1 and not ckpt.exists()
    v = out["viper"]
    for r in v.train + v.query + v.gallery:
        assert r.parts.startswith(str(tmp_path / "project")) and "parser" in r.parts
        parts = _png(r.parts)
        assert parts.shape == (128, 48) and parts.max() <= 7
    # a second call reuses the shared parser (no retraining) and the cached maps
    mtime = shared[0].stat().st_mtime_ns
    again = M.attach_small_set_masks(sets, parser_source=_load(tiny_market), device="cpu",
                                     verbose=False, parser_options=opts)
    assert [r.parts for r in again["viper"].query] == [r.parts for r in v.query]
    assert shared[0].stat().st_mtime_ns == mtime


def test_obtain_parser_without_labels_fails_clearly(tiny_market, tmp_path):
    for f in (tiny_market / "bounding_box_train_parsing_pgt").iterdir():
        f.unlink()
    with pytest.raises(RuntimeError, match="no part parser for market1501.*_parsing_pgt"):
        M.obtain_parser(_load(tiny_market), cache_root=tmp_path / "c", verbose=False)

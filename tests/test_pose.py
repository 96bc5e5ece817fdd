"""Tests of reidnb.data.parts.pose (keypoints -> 7 parts, the torchvision source) and of
the parser trained on a labelled sibling set (reidnb.data.parts.sources)."""
from __future__ import annotations

import hashlib
import types
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from reidnb.data import parts as M
from reidnb.data import synthetic as syn
from reidnb.data.datasets import load_dataset
from reidnb.data.parts import fcn as FCN
from reidnb.data.parts import pose
from reidnb.data.synthetic.draw import render_keypoints
from reidnb.evaluation.segmentation import confusion_matrix, segmentation_scores

# --------------------------------------------------------------------------- geometry


def _stick(score: float = 1.0) -> np.ndarray:
    """A front-facing stick figure in a 100 x 60 image: [17, 3] (x, y, score)."""
    xy = {"nose": (30, 10), "left_eye": (32, 8), "right_eye": (28, 8), "left_ear": (34, 10),
          "right_ear": (26, 10), "left_shoulder": (40, 25), "right_shoulder": (20, 25),
          "left_elbow": (44, 40), "right_elbow": (16, 40), "left_wrist": (46, 55),
          "right_wrist": (14, 55), "left_hip": (36, 55), "right_hip": (24, 55),
          "left_knee": (36, 72), "right_knee": (24, 72), "left_ankle": (36, 88),
          "right_ankle": (24, 88)}
    return np.array([(*xy[n], score) for n in pose.COCO_KEYPOINTS], np.float32)


def test_stick_figure_pixels_get_their_limb():
    """Torso length T = 30 px (neck (30, 25) to pelvis (30, 55)); each pixel below lies on
    (or inside) exactly one part's skeleton and far from the others."""
    mask = np.ones((100, 60), bool)
    mask[:, 55:] = False
    out = M.keypoints_to_parts(_stick(), mask)
    assert out.dtype == np.uint8 and out.shape == (100, 60)
    expect = {(30, 10): M.HEAD, (30, 40): M.CHEST, (42, 32): M.UPPER_ARM,
              (18, 32): M.UPPER_ARM, (45, 47): M.LOWER_ARM, (47, 58): M.LOWER_ARM,  # hand
              (36, 63): M.UPPER_LEG, (36, 80): M.LOWER_LEG, (24, 80): M.LOWER_LEG,
              (36, 91): M.FOOT, (24, 91): M.FOOT, (57, 50): 0}
    got = {xy: int(out[xy[1], xy[0]]) for xy in expect}
    assert got == expect
    assert (out[:, 55:] == 0).all() and (out[:, :55] > 0).all()
    # Left elbow below min_score: both left-arm segments are skipped, its pixels go to
    # the chest (the right arm is untouched); a lower min_score keeps it.
    kp = _stick()
    kp[pose.COCO_KEYPOINTS.index("left_elbow"), 2] = 0.1
    dropped = M.keypoints_to_parts(kp, mask)
    assert dropped[32, 42] == M.CHEST and dropped[32, 18] == M.UPPER_ARM
    assert not np.isin(dropped[:, 38:55], [M.UPPER_ARM, M.LOWER_ARM]).any()
    assert M.keypoints_to_parts(kp, mask, min_score=0.05)[32, 42] == M.UPPER_ARM


def test_keypoints_to_parts_edge_cases():
    mask = np.ones((100, 60), bool)
    assert not M.keypoints_to_parts(_stick(score=0.0), mask).any()         # nothing usable
    assert not M.keypoints_to_parts(_stick(), np.zeros((100, 60), bool)).any()
    torch_out = M.keypoints_to_parts(torch.from_numpy(_stick()), torch.from_numpy(mask))
    np.testing.assert_array_equal(torch_out, M.keypoints_to_parts(_stick(), mask))
    with pytest.raises(ValueError, match=r"\[17, 3\]"):
        M.keypoints_to_parts(np.zeros((16, 3)), mask)
    with pytest.raises(ValueError, match=r"\[H, W\]"):
        M.keypoints_to_parts(_stick(), np.ones((2, 100, 60), bool))


#: sha256 (first 24 hex) of render_job's four arrays, recorded BEFORE the renderer exposed
#: its joints: the quick-profile images must stay bit-identical.
_JOB_HASHES = {0: "4520ac92d44c90d0a98d41b5", 7: "bb1664cd620762e6dbda2993",
               21: "5543b19c5797ca8194c17ba1"}


def test_renderer_keypoints_leave_pixels_unchanged():
    jobs = syn.plan_synthetic("smoke", 0)
    for i, want in _JOB_HASHES.items():
        out = syn.render_job(jobs[i], 0)
        assert hashlib.sha256(b"".join(a.tobytes() for a in out)).hexdigest()[:24] == want
        rgb, parts, mask, kps = render_keypoints(jobs[i], 0)
        np.testing.assert_array_equal(rgb, out[0])
        np.testing.assert_array_equal(parts, out[1])
        assert kps.shape == (17, 3) and kps.dtype == np.float32
        shown = kps[kps[:, 2] > 0]
        assert len(shown) >= 14 and (shown[:, 0] > -32).all() and (shown[:, 1] < 160).all()
        k = {n: kps[j] for j, n in enumerate(pose.COCO_KEYPOINTS)}
        # head above shoulders above hips above knees above ankles (image rows)
        for a, b in (("left_shoulder", "left_hip"), ("left_hip", "left_knee"),
                     ("left_knee", "left_ankle"), ("left_ear", "left_shoulder")):
            assert k[a][1] < k[b][1], (i, a, b)


def test_geometry_part_miou_on_synthetic_pedestrians_with_exact_keypoints(capsys):
    """The geometry against exact part maps, given the renderer's exact joints (mask =
    the exact body mask). Measured 0.632 on these 60 smoke images (0.650 on 200 quick
    images; per part: head 0.76, upper arm 0.60, lower arm 0.55, chest 0.57, upper leg
    0.65, lower leg 0.74, foot 0.55): the floor is 0.60."""
    jobs = [j for j in syn.plan_synthetic("smoke", 0) if j.crop != "junk"][:60]
    conf = torch.zeros(8, 8, dtype=torch.long)
    for job in jobs:
        _, parts, _, kps = render_keypoints(job, 0)
        pred = M.keypoints_to_parts(kps, parts > 0)
        conf += confusion_matrix(torch.from_numpy(pred).long(), torch.from_numpy(parts).long(), 8)
    iou = segmentation_scores(conf, M.PART_NAMES)["per_class_iou"]
    miou = float(np.mean([iou[n] for n in M.PART_NAMES[1:]]))
    with capsys.disabled():
        print(f"\nkeypoints_to_parts part mIoU on {len(jobs)} synthetic images, exact "
              f"keypoints: {miou:.3f}")
    assert miou >= 0.60
    assert min(iou[n] for n in M.PART_NAMES[1:]) >= 0.45


# --------------------------------------------------------------------------- torchvision


def _person_image(h: int = 128, w: int = 64, shift: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A blocky pedestrian (uint8 [H, W, 3]) and its LIP label map."""
    lab = np.zeros((h, w), np.uint8)
    lab[6:14, 24:40], lab[14:26, 24:40], lab[26:66, 18:46] = 2, 13, 5
    lab[28:64, 10:17], lab[28:64, 47:54] = 14, 15
    lab[66:110, 20:31], lab[66:110, 33:44] = 9, 9
    lab[110:118, 20:31], lab[110:118, 33:44] = 18, 19
    pal = np.array([(120, 130, 125)] + [(40 + 11 * k, 200 - 9 * k, 60 + 7 * k)
                                         for k in range(1, 20)], np.uint8)
    return np.roll(pal[lab], shift, axis=1), np.roll(lab, shift, axis=1)


def _write_set(root: Path, names: dict[str, list[str]], labels: bool) -> None:
    for folder, stems in names.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i, stem in enumerate(stems):
            img, lab = _person_image(shift=i - 1)
            Image.fromarray(img).save(root / folder / f"{stem}", quality=95)
            if labels and folder == "bounding_box_train":
                d = root / "bounding_box_train_parsing_pgt"
                d.mkdir(exist_ok=True)
                Image.fromarray(lab).save(d / (Path(stem).stem + ".png"))


def _market(root: Path) -> Path:
    _write_set(root, {"bounding_box_train": ["0002_c1s1_000451_01.jpg", "0002_c2s1_000551_01.jpg",
                                             "0007_c1s1_000301_01.jpg", "0007_c3s1_000801_02.jpg",
                                             "0010_c2s1_001001_01.jpg"],
                      "query": ["0003_c1s1_000151_00.jpg"],
                      "bounding_box_test": ["0003_c2s1_000251_01.jpg"]}, labels=True)
    return root


def _duke(root: Path) -> Path:
    _write_set(root, {"bounding_box_train": ["0001_c1_f0000001.jpg", "0001_c2_f0000002.jpg",
                                             "0005_c1_f0000003.jpg"],
                      "query": ["0009_c1_f0000004.jpg"],
                      "bounding_box_test": ["0009_c2_f0000005.jpg", "0011_c3_f0000006.jpg"]},
               labels=False)
    return root


class _FakeSeg(torch.nn.Module):
    """Stands in for a torchvision segmentation model: person (VOC 15) in columns 16..47."""

    def forward(self, x):
        n, _, h, w = x.shape
        out = torch.zeros(n, 21, h, w)
        out[:, 0] = 1.0
        out[:, 15, :, w // 4: 3 * w // 4] = 5.0
        return {"out": out}


class _FakeKeypointRCNN(torch.nn.Module):
    """Stands in for keypoint R-CNN: one person (score 0.9) with the stick figure's
    keypoints (+0.5 px: torchvision's convention), keypoint scores 5."""

    def __init__(self):
        super().__init__()
        self.transform = types.SimpleNamespace(min_size=(800,), max_size=1333)

    def forward(self, images):
        kp = torch.from_numpy(_stick()).clone()
        kp[:, :2] += 0.5
        return [{"labels": torch.tensor([1]), "scores": torch.tensor([0.9]),
                 "boxes": torch.tensor([[0.0, 0.0, 60.0, 100.0]]),
                 "keypoints": kp[None], "keypoints_scores": torch.full((1, 17), 5.0)}
                for _ in images]


def _png(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def test_torchvision_source_parts_from_keypoints(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(FCN, "_load_fcn", lambda name: _FakeSeg())
    monkeypatch.setattr(pose, "_load_keypoint_model", lambda name: _FakeKeypointRCNN())
    ds = load_dataset("dukemtmcreid", _duke(tmp_path / "DukeMTMC-reID"), verbose=False)
    out, info = M.attach_masks(ds, source="torchvision", splits=("gallery",),
                               cache_root=tmp_path / "c", device="cpu")
    assert info["splits"]["gallery"] == {"torchvision": 2, "written": 2}
    printed = capsys.readouterr().out
    assert ("dukemtmcreid gallery: torchvision (fcn_resnet101 mask + "
            "keypointrcnn_resnet50_fpn parts) 2") in printed
    for r in out.gallery:
        mask, parts = _png(r.mask), _png(r.parts)
        assert mask.dtype == parts.dtype == np.uint8 and mask.shape == parts.shape == (128, 64)
        assert set(np.unique(mask)) == {0, 255} and (mask[:, 16:48] == 255).all()
        np.testing.assert_array_equal(parts, M.keypoints_to_parts(_stick(), mask > 0))
        assert "torchvision" in r.parts


def test_torchvision_keypoint_weights_unavailable_gives_masks_only(tmp_path, monkeypatch, capsys):
    def no_weights(name):
        raise urllib.error.URLError("no network (test)")

    monkeypatch.setattr(FCN, "_load_fcn", lambda name: _FakeSeg())
    monkeypatch.setattr(pose, "_load_keypoint_model", no_weights)
    ds = load_dataset("dukemtmcreid", _duke(tmp_path / "DukeMTMC-reID"), verbose=False)
    out, info = M.attach_masks(ds, source="torchvision", splits=("gallery",),
                               cache_root=tmp_path / "c", device="cpu")
    printed = capsys.readouterr().out
    assert "keypointrcnn_resnet50_fpn weights could not be loaded" in printed
    assert "keypointrcnn_resnet50_fpn_coco-fc266e95.pth" in printed and "no network" in printed
    assert "of which mask only (no person detected) 2" in printed
    assert info["splits"]["gallery"] == {"torchvision": 2, "written": 2, "mask_only": 2}
    assert all(r.parts is None and Path(r.mask).is_file() for r in out.gallery)
    # download=False with nothing in the torch cache: nothing is loaded at all
    called = []
    monkeypatch.setattr(FCN, "_load_fcn", lambda name: called.append(name))
    monkeypatch.setattr(pose, "weights_file", lambda name: str(tmp_path / "absent.pth"))
    with pytest.raises(RuntimeError, match="no source for 2 images of dukemtmcreid split 'gallery'"):
        M.attach_masks(ds, splits=("gallery",), cache_root=tmp_path / "c2", download=False,
                       verbose=False)
    assert called == []


def test_torchvision_random_init_models_end_to_end(tmp_path, monkeypatch, capsys):
    """Real torchvision architectures with random weights (weights=None,
    weights_backbone=None: nothing downloaded) through the whole source."""
    from torchvision.models.detection import keypointrcnn_resnet50_fpn
    from torchvision.models.segmentation import fcn_resnet50

    torch.manual_seed(0)
    monkeypatch.setattr(FCN, "_load_fcn", lambda name: fcn_resnet50(
        weights=None, weights_backbone=None, num_classes=21, aux_loss=False).eval())
    monkeypatch.setattr(pose, "_load_keypoint_model", lambda name: keypointrcnn_resnet50_fpn(
        weights=None, weights_backbone=None).eval())
    ds = load_dataset("dukemtmcreid", _duke(tmp_path / "DukeMTMC-reID"), verbose=False)
    threads = torch.get_num_threads()
    out, info = M.attach_masks(ds, source="torchvision", splits=("query",),
                               cache_root=tmp_path / "c", fcn_name="fcn_resnet50",
                               keypoint_min_size=96, device="cpu", num_threads=1)
    assert torch.get_num_threads() == threads
    assert "torchvision (fcn_resnet50 mask + keypointrcnn_resnet50_fpn parts) 1" in \
        capsys.readouterr().out
    c = info["splits"]["query"]
    assert c["torchvision"] == 1 and c["written"] == 1
    for r in out.query:
        mask = _png(r.mask)
        assert mask.dtype == np.uint8 and mask.shape == (128, 64)
        assert set(np.unique(mask)) <= {0, 255}
        assert Path(r.mask).parent.parent.parent.name == "torchvision"
        if r.parts is not None:
            parts = _png(r.parts)
            assert parts.shape == (128, 64) and parts.max() <= 7
            assert not parts[mask == 0].any()


# --------------------------------------------------------------------------- sibling parser


def test_parser_trained_on_a_labelled_sibling_and_reused(tmp_path, monkeypatch, capsys):
    """data_root/market1501 (with parsing labels) beside data_root/DukeMTMC-reID (none):
    Duke's masks come from a parser trained once on Market's labels, kept in the shared
    parser folder, reused (not retrained) by the next call."""
    data_root = tmp_path / "data"
    _market(data_root / "market1501")
    _duke(data_root / "DukeMTMC-reID")
    monkeypatch.setattr(FCN, "_load_fcn", lambda name: pytest.fail("torchvision not needed"))
    duke = load_dataset("dukemtmcreid", data_root, verbose=False)
    kw = dict(parser_max_iters=1, parser_batch_size=2, parser_max_images=None, batch_size=4,
              device="cpu", num_threads=1)
    out, info = M.attach_masks(duke, cache_root=tmp_path / "cache" / "duke", **kw)
    printed = capsys.readouterr().out
    assert info["parser_trained"] and info["parser"]["trained_on"] == "market1501"
    assert info["chain"]["train"] == "dukemtmcreid train: parser (trained on market1501 labels) 3"
    assert "dukemtmcreid gallery: parser (trained on market1501 labels) 2" in printed
    assert info["splits"]["query"] == {"parser": 1, "written": 1}
    ppath = Path(info["parser"]["path"])
    assert ppath.parent.parent == tmp_path / "cache" / "parsers"
    assert '"trained_on": "market1501"' in (ppath.parent / "source.json").read_text()
    for r in out.train + out.query + out.gallery:
        assert _png(r.parts).shape == (128, 64) and _png(r.parts).max() <= 7
    # a second dataset (another cache) reuses the shared checkpoint: no retraining
    mtime = ppath.stat().st_mtime_ns
    _, info2 = M.attach_masks(duke, cache_root=tmp_path / "cache" / "duke2", **kw)
    assert not info2["parser_trained"] and info2["parser"]["path"] == str(ppath)
    assert info2["parser"]["parser_id"] == info["parser"]["parser_id"]
    assert ppath.stat().st_mtime_ns == mtime
    assert "using parser" in capsys.readouterr().out
    # the labelled set itself: its labels serve its training split, the same parser the rest
    market = load_dataset("market1501", data_root, verbose=False)
    _, info3 = M.attach_masks(market, cache_root=tmp_path / "cache" / "market", **kw)
    assert info3["splits"]["train"]["labels"] == 5 and not info3["parser_trained"]
    assert info3["parser"]["path"] == str(ppath)

"""7-part maps from body keypoints (COCO 17) and torchvision's pretrained models.

The ``torchvision`` mask source of :func:`reidnb.data.parts.attach_masks`: the person mask
from a segmentation model (FCN-ResNet50/101 or DeepLabV3 with COCO-with-VOC-labels
weights, VOC class 15 person; :mod:`.fcn`) and the 7 parts of :mod:`.labels` from
``keypointrcnn_resnet50_fpn``'s keypoints: each foreground pixel goes to the nearest limb
segment of the skeleton, a DensePose-like part map (MagnifierNet 002 §4.1 used DensePose
part maps). The geometry is :func:`keypoints_to_parts` (no network).

Geometry (pixels; T = torso length, |mid-shoulder - mid-hip|, else 0.3 x the mask's
height): every part is a set of segments with a radius r; a pixel's cost for a part is
its distance to the nearest segment minus r, the chest's is the signed distance to the
torso polygon (shoulders -> hips; negative inside), and the pixel takes the cheapest part.

==========  ==============================================================  ========
part        segment(s)                                                      r / T
==========  ==============================================================  ========
head        centre of nose/eyes/ears -> 0.75 of the way to the neck          0.20
upper arm   shoulder -> elbow                                               0.15
lower arm   elbow -> wrist + 0.3 (wrist - elbow) (the hand)                 0.12
chest       polygon of the shoulders and hips (2 points: a segment)         0 (0.2)
upper leg   hip -> knee                                                     0.20
lower leg   knee -> ankle                                                   0.17
foot        ankle + 0.05 T -> ankle + 0.15 T along knee -> ankle            0.10
==========  ==============================================================  ========

Keypoints with a score below ``min_score`` are dropped and their segments skipped.
Measured on the synthetic pedestrians with their exact drawn joints: see
``tests/test_pose.py`` (the part mIoU it prints and asserts a floor on).
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn as nn

from ...core.utils import refuse_download_offline, resolve_device
from ..datasets import _open_rgb
from .labels import CHEST, FOOT, HEAD, LOWER_ARM, LOWER_LEG, UPPER_ARM, UPPER_LEG

__all__ = ["COCO_KEYPOINTS", "GEOMETRY_VERSION", "keypoints_to_parts", "predict_pose_parts",
           "KEYPOINT_MODEL"]

#: COCO-17 keypoint order (torchvision ``KeypointRCNN_ResNet50_FPN_Weights`` meta).
COCO_KEYPOINTS = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
                  "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
                  "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
                  "right_ankle")
#: Version of :func:`keypoints_to_parts`; cached maps of another version are recomputed.
GEOMETRY_VERSION = "1"
#: torchvision keypoint model of the ``torchvision`` source.
KEYPOINT_MODEL = "keypointrcnn_resnet50_fpn"

_K = {n: i for i, n in enumerate(COCO_KEYPOINTS)}
_R = {HEAD: 0.20, UPPER_ARM: 0.15, LOWER_ARM: 0.12, UPPER_LEG: 0.20, LOWER_LEG: 0.17,
      FOOT: 0.12}
_HEAD_TO_NECK = 0.5     # head segment: head centre -> this share of the way to the neck
_HAND = 0.3             # lower arm runs past the wrist by this share of elbow -> wrist
_FOOT_LEN = 0.12        # foot segment: ankle -> ankle + this x T along knee -> ankle
_TORSO_HALF = (0.30, 0.25)   # least torso half-width at shoulders / hips, x T
_ARM_OVER_CHEST = 0.05  # arms win over the chest where their cost < -this x T


def _torso_polygon(P: dict, neck, pelvis, T: float) -> list[np.ndarray] | None:
    """The chest polygon: shoulders -> hips, each side at least ``_TORSO_HALF`` x T from
    the spine (a side view puts both shoulders on one point); None without a shoulder
    and a hip."""
    if neck is None or pelvis is None:
        return None
    spine = pelvis - neck
    n = float(np.hypot(*spine))
    if n < 1e-9:
        return None
    perp = np.array([-spine[1], spine[0]]) / n

    def half(a: str, b: str, least: float) -> float:
        w = float(abs((P[a] - P[b]) @ perp)) / 2 if a in P and b in P else 0.0
        return max(w, least * T)

    ws = half("left_shoulder", "right_shoulder", _TORSO_HALF[0])
    wh = half("left_hip", "right_hip", _TORSO_HALF[1])
    return [neck - ws * perp, neck + ws * perp, pelvis + wh * perp, pelvis - wh * perp]


def _seg_dist(px: np.ndarray, py: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance of points (px, py) to the segment a-b (a == b: to the point)."""
    d = b - a
    n2 = float(d @ d)
    if n2 < 1e-12:
        return np.hypot(px - a[0], py - a[1])
    t = np.clip(((px - a[0]) * d[0] + (py - a[1]) * d[1]) / n2, 0.0, 1.0)
    return np.hypot(px - a[0] - t * d[0], py - a[1] - t * d[1])


def _polygon_signed_dist(px: np.ndarray, py: np.ndarray, pts: list[np.ndarray]) -> np.ndarray:
    """Distance to the polygon's boundary, negative inside (even-odd rule)."""
    dist = np.full(px.shape, np.inf)
    inside = np.zeros(px.shape, bool)
    for i in range(len(pts)):
        a, b = pts[i], pts[(i + 1) % len(pts)]
        dist = np.minimum(dist, _seg_dist(px, py, a, b))
        dy = b[1] - a[1]
        if abs(dy) > 1e-12:
            crosses = (a[1] > py) != (b[1] > py)
            xcross = a[0] + (b[0] - a[0]) * (py - a[1]) / dy
            inside ^= crosses & (px < xcross)
    return np.where(inside, -dist, dist)


def keypoints_to_parts(keypoints: np.ndarray | torch.Tensor, mask: np.ndarray | torch.Tensor,
                       *, min_score: float = 0.5) -> np.ndarray:
    """A 7-part map from COCO-17 body keypoints: each foreground pixel to its nearest limb.

    The geometry of the module docstring (a DensePose-like part map, as MagnifierNet 002
    used; segments and radii in the table there). Coordinates: pixel column j / row i is
    x = j / y = i (torchvision's keypoints are 0.5 px larger: subtract 0.5 first).

    Args:
        keypoints: float [17, 3] (x, y, score) in pixels, :data:`COCO_KEYPOINTS` order.
        mask: bool [H, W] foreground (any dtype: nonzero is foreground).
        min_score: keypoints with a lower score are dropped and their segments skipped.

    Returns:
        uint8 [H, W]: 0 outside the mask, 1..7 (:mod:`.labels`) inside; all 0 when no
        segment is left (no usable keypoint) or the mask is empty.

    Raises:
        ValueError: keypoints not [17, 3], or mask not 2-D.
    """
    kp = np.asarray(keypoints.detach().cpu() if torch.is_tensor(keypoints) else keypoints,
                    dtype=np.float64)
    fg = np.asarray(mask.detach().cpu() if torch.is_tensor(mask) else mask).astype(bool)
    if kp.shape != (17, 3):
        raise ValueError(f"keypoints_to_parts: keypoints must be [17, 3] (x, y, score), "
                         f"got {list(kp.shape)}")
    if fg.ndim != 2:
        raise ValueError(f"keypoints_to_parts: mask must be [H, W], got {list(fg.shape)}")
    out = np.zeros(fg.shape, np.uint8)
    if not fg.any():
        return out
    ok = np.isfinite(kp).all(1) & (kp[:, 2] >= min_score)
    P = {n: kp[i, :2] for n, i in _K.items() if ok[i]}

    def mid(a: str, b: str) -> np.ndarray | None:
        if a in P and b in P:
            return (P[a] + P[b]) / 2
        return P.get(a, P.get(b))

    neck, pelvis = mid("left_shoulder", "right_shoulder"), mid("left_hip", "right_hip")
    rows = np.flatnonzero(fg.any(1))
    T = 0.3 * (rows[-1] - rows[0] + 1)
    if neck is not None and pelvis is not None and \
            {"left_shoulder", "right_shoulder"} & P.keys() and {"left_hip", "right_hip"} & P.keys():
        T = max(float(np.hypot(*(neck - pelvis))), 1.0)
    ys, xs = np.nonzero(fg)
    px, py = xs.astype(np.float64), ys.astype(np.float64)
    # Level 1: the body group (head, each arm, torso, each leg) with the lowest
    # distance - radius; level 2: within the group, the nearest segment (pure distance,
    # ties to the distal one).
    groups: list[tuple[np.ndarray, list[tuple[int, np.ndarray]]]] = []

    def group(segs: list[tuple[int, np.ndarray, np.ndarray, float]], arm: bool = False) -> None:
        if not segs:
            return
        dists = [(part, _seg_dist(px, py, a, b)) for part, a, b, _ in segs]
        cost = np.min([d - r * T for (_, d), (*_, r) in zip(dists, segs)], axis=0)
        groups.append((cost, dists, arm))

    head_pts = [P[n] for n in ("nose", "left_eye", "right_eye", "left_ear", "right_ear")
                if n in P]
    if head_pts:
        c = np.mean(head_pts, axis=0)
        group([(HEAD, c, c if neck is None else c + _HEAD_TO_NECK * (neck - c), _R[HEAD])])
    for s in ("left", "right"):
        sh, el, wr = (P.get(f"{s}_{j}") for j in ("shoulder", "elbow", "wrist"))
        segs = []
        if sh is not None and el is not None:
            segs.append((UPPER_ARM, sh, el, _R[UPPER_ARM]))
        if el is not None and wr is not None:
            segs.append((LOWER_ARM, el, wr + _HAND * (wr - el), _R[LOWER_ARM]))
        group(segs, arm=True)
        hip, kn, an = (P.get(f"{s}_{j}") for j in ("hip", "knee", "ankle"))
        segs = []
        if hip is not None and kn is not None:
            segs.append((UPPER_LEG, hip, kn, _R[UPPER_LEG]))
        if kn is not None and an is not None:
            segs.append((LOWER_LEG, kn, an, _R[LOWER_LEG]))
            d = an - kn
            u = d / max(float(np.hypot(*d)), 1e-9)
            segs.append((FOOT, an, an + _FOOT_LEN * T * u, _R[FOOT]))
        group(segs)
    torso = _torso_polygon(P, neck, pelvis, T)
    if torso is not None:
        groups.append((_polygon_signed_dist(px, py, torso), [(CHEST, np.zeros(px.size))], None))
    if not groups:
        return out
    # Arms lie in front of the torso: against the chest an arm only needs its cost below
    # -_ARM_OVER_CHEST x T (the chest's cost deep inside the polygon is floored there).
    costs = np.stack([g[0] for g in groups])                            # [groups, n]
    is_arm = np.array([g[2] is True for g in groups])
    floored = costs.copy()
    floored[[g[2] is None for g in groups]] = np.maximum(
        costs[[g[2] is None for g in groups]], -_ARM_OVER_CHEST * T)
    best = np.argmin(np.where(is_arm[:, None], np.inf, costs), axis=0)
    if is_arm.any():
        arm_best = np.argmin(np.where(is_arm[:, None], costs, np.inf), axis=0)
        other = np.where(is_arm[:, None], np.inf, floored).min(0) if (~is_arm).any() \
            else np.full(px.size, np.inf)
        best = np.where(costs[arm_best, np.arange(px.size)] < other, arm_best, best)
    for gi, (_, dists, _) in enumerate(groups):
        sel = best == gi
        if not sel.any():
            continue
        if len(dists) == 1:
            out[ys[sel], xs[sel]] = dists[0][0]
            continue
        d = np.stack([dd[sel] for _, dd in dists])                  # [segments, n]
        # distal segments come later in the list: ties go to them
        pick = d.shape[0] - 1 - np.argmin(d[::-1], axis=0)
        out[ys[sel], xs[sel]] = np.array([part for part, _ in dists], np.uint8)[pick]
    return out


# --------------------------------------------------------------------------- torchvision


def _load_keypoint_model(name: str = KEYPOINT_MODEL) -> nn.Module:
    """torchvision's keypoint R-CNN ``name`` with its COCO weights (downloaded into the
    torch hub cache on first use when the network allows)."""
    from torchvision.models import get_model, get_model_weights

    weights = get_model_weights(name).DEFAULT
    refuse_download_offline(weights.url)
    return get_model(name, weights=weights).eval()


def weights_file(name: str) -> str:
    """Where torchvision keeps model ``name``'s default weights: the torch hub cache path
    (``<torch.hub.get_dir()>/checkpoints/<file>``); for messages, nothing is loaded."""
    try:
        from torchvision.models import get_model_weights

        url = get_model_weights(name).DEFAULT.url
        return f"{torch.hub.get_dir()}/checkpoints/{url.rsplit('/', 1)[-1]}"
    except Exception:  # noqa: BLE001 - unknown name: say the folder
        return f"{torch.hub.get_dir()}/checkpoints/"


@torch.inference_mode()
def predict_pose_parts(seg_model: nn.Module, kp_model: nn.Module | None, paths: Sequence[str],
                       *, device: str | torch.device = "auto", batch_size: int = 8,
                       seg_size: tuple[int, int] = (256, 128), kp_min_size: int = 512,
                       person_class: int = 15, box_score: float = 0.5,
                       min_score: float = 2.0
                       ) -> Iterator[tuple[int, np.ndarray, np.ndarray | None]]:
    """Person masks (segmentation model) and 7-part maps (keypoint R-CNN) for images.

    Per image: mask = argmax of the segmentation logits == ``person_class`` (VOC 15) at
    ``seg_size``, resized back; the most confident person box of ``kp_model`` with a score
    >= ``box_score`` gives the keypoints (torchvision coordinates - 0.5 px), turned into
    parts by :func:`keypoints_to_parts` (keypoint scores below ``min_score`` dropped; 2.0
    is Detectron's keypoint visualisation threshold on torchvision's heatmap scores).

    Args:
        seg_model: torchvision segmentation model (``{"out": [B, 21, h, w]}`` or logits).
        kp_model: torchvision keypoint R-CNN in eval mode, or None (masks only).
        paths: image files. device, batch_size: inference settings.
        seg_size: (H, W) the segmentation model sees. kp_min_size: the keypoint model's
            ``transform.min_size`` (its default 800 is slow for 128 x 64 crops). The
            keypoint model is also set to 1 detection per image (the best person: one
            person per re-ID crop) and 300 / 100 RPN proposals before / after NMS.

    Yields:
        ``(index into paths, mask uint8 [H, W] in {0, 255}, parts uint8 [H, W] 0..7 or
        None)``: parts None when no person was detected or no keypoint model was given
        (parts outside the mask are 0).

    Raises:
        OSError / FileNotFoundError: an image that cannot be decoded (names it).
    """
    from .fcn import predict_fcn_masks

    dev = resolve_device(device)
    if kp_model is not None:
        kp_model.eval().to(dev)
        kp_model.transform.min_size = (int(kp_min_size),)
        kp_model.transform.max_size = max(int(kp_model.transform.max_size), 2 * int(kp_min_size))
        # One person per re-ID crop: keep the best detection and fewer proposals (the
        # keypoint head runs per detection; 100 detections cost ~20x more on a CPU).
        if hasattr(kp_model, "roi_heads"):
            kp_model.roi_heads.detections_per_img = 1
        if hasattr(kp_model, "rpn"):
            kp_model.rpn._pre_nms_top_n["testing"] = min(kp_model.rpn._pre_nms_top_n["testing"], 300)
            kp_model.rpn._post_nms_top_n["testing"] = min(kp_model.rpn._post_nms_top_n["testing"], 100)
    masks = predict_fcn_masks(seg_model, paths, batch_size=batch_size, device=dev, size=seg_size,
                              person_class=person_class)
    for k, mask in masks:
        parts = None
        if kp_model is not None:
            img = _open_rgb(paths[k])
            x = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float().div(255)
            det = kp_model([x.to(dev)])[0]
            keep = (det["labels"] == 1) & (det["scores"] >= box_score)
            if bool(keep.any()):
                best = int(torch.nonzero(keep)[det["scores"][keep].argmax()])
                kp = det["keypoints"][best].float().cpu().numpy().copy()       # [17, 3]
                kp[:, 2] = det["keypoints_scores"][best].float().cpu().numpy()
                kp[:, :2] -= 0.5
                parts = keypoints_to_parts(kp, mask > 0, min_score=min_score)
                if not parts.any():
                    parts = None
        yield k, mask, parts

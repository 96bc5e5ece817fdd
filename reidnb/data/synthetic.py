"""The embedded synthetic re-ID dataset: procedural pedestrians with exact masks and part maps.

A dataset in the Market-1501 layout (Zheng et al., "Scalable Person Re-identification: A
Benchmark", ICCV 2015) that the real loaders read unchanged, so the whole workbook runs on a
laptop without a download. It is *synthetic* and every notebook labels its numbers so.

What is drawn (numpy + PIL only, no torch):

- **Identities.** Body build, leg length, head size, skin tone, hair colour and style
  (short, long, ponytail, bald) and an optional hat; a top with sleeves (long/short) in a
  colour from a *shared, weighted palette* with a texture (plain, stripes, checks, logo);
  trousers, shorts or a skirt from a second shared palette; shoes; an optional backpack,
  shoulder bag or handbag. Palettes are shared and weighted towards the common colours of
  street clothing (black, white, grey, navy, denim), so many identities share the top
  colour, the bottom colour or both, as in real data.
- **Cameras** ``c1..c6``, each with its own background (facades, trees, shop fronts,
  open square, dark passage, a low-resolution SD camera), clutter (windows, poles, far
  passers-by dressed from the same palettes), colour cast, brightness, gamma, saturation,
  blur, sensor noise, person scale and a preferred viewpoint mix. Cameras change the
  colours of a person far more than two people differ, which is what makes colour alone a
  weak cue.
- **Tracklets.** One identity seen by one camera is one tracklet: a fixed viewpoint
  (front, back, left, right) and lighting; its images differ by walking phase and crop.
  Viewpoint matters: the logo is on the front only, a backpack is a big patch from the back
  but two straps from the front, a shoulder bag or handbag is seen in a side view only from
  the side it is carried on.
- **Boxes.** Train and gallery images are "detector" crops (scale and offset jitter);
  query and ``gt_bbox/`` images are "hand-drawn" (centred, tight). About one image in eight
  is partly occluded by a car, bin, railing, pole or another pedestrian.

Layout written under ``root`` (same names as Market-1501, ``PPPP_cCsS_FFFFFF_BB.jpg``)::

    bounding_box_train/   training identities, >= 2 cameras each
    bounding_box_test/    gallery: test identities + pid 0000 distractors (people not in
                          the identity set) + pid -1 junk (mostly-background / badly
                          cropped boxes)
    query/                one image per (test identity, camera) for up to 3 cameras
    gt_bbox/              multi-query groups: several hand-drawn boxes per (query identity,
                          camera), the query image itself included (as in Market-1501)
    masks/<split>/<stem>.png   uint8, 255 person foreground, 0 background
    parts/<split>/<stem>.png   uint8 part labels 0..7 (DESIGN.md): 0 background, 1 head
                          (face, hair, hat), 2 upper arm, 3 lower arm (and hand), 4 chest
                          (top, logo), 5 upper leg (pelvis, skirt, shorts), 6 lower leg,
                          7 foot (shoes)
    meta.json             size, seed, counts, generator version, rules
    COMPLETE              written last: the folder is whole only when it exists

**Accessory rule.** Bags and their straps are worn by the person, so they are foreground
in ``masks/`` (255) but belong to no body part: label 0 in ``parts/``. Hair and hats are
head (1), as LIP parsing labels hat and hair. Occluders (cars, poles, other pedestrians)
are background in both. Hence, exactly, ``mask == 255 * ((parts > 0) | accessory)``, and
an identity without a bag has ``mask == 255 * (parts > 0)``.

The maps are exact: image, mask and parts come from one region map drawn at twice the
resolution; the image is box-filtered down 2x and the label maps take the centre-most
pixel of each 2x2 block, so their edges agree to one pixel.

Determinism: every identity, tracklet and image has its own ``np.random.default_rng``
stream keyed by (seed, role, ids), so the files are byte-identical for a seed whatever the
number of worker processes or their order.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from io import BytesIO
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

__all__ = ["generate_synthetic", "plan_synthetic", "render_job", "identity_attributes",
           "synthetic_counts", "is_complete", "SIZES", "PUBLISHED", "PART_NAMES",
           "CAMERAS", "GENERATOR_VERSION", "HEIGHT", "WIDTH"]

#: Bumped whenever the drawing changes (a cached dataset of another version is refused).
GENERATOR_VERSION = "1.1"
#: Output image size in pixels (Market-1501's 128 x 64, H x W).
HEIGHT, WIDTH = 128, 64
_SS = 2                                    # supersampling factor of the drawing canvas
_H2, _W2 = HEIGHT * _SS, WIDTH * _SS       # canvas size, pixels
NUM_CAMS = 6
JPEG_QUALITY = 90
SPLITS = ("bounding_box_train", "bounding_box_test", "query", "gt_bbox")
#: Part label -> name (DESIGN.md "Data"); 0 is background.
PART_NAMES = ("background", "head", "upper arm", "lower arm", "chest", "upper leg",
              "lower leg", "foot")

#: Dataset sizes. ``cams_per_id`` and ``imgs_per_cam`` are inclusive ranges drawn per
#: identity / per (identity, camera); ``query_cams`` is the most cameras a test identity
#: is queried from; ``gt_per_query`` the size of a multi-query group (query included).
SIZES: dict[str, dict[str, Any]] = {
    "smoke": dict(n_train_ids=15, n_test_ids=15, cams_per_id=(2, 3), imgs_per_cam=(1, 3),
                  query_cams=2, gt_per_query=(2, 3), n_distractors=15, n_junk=10),
    "quick": dict(n_train_ids=300, n_test_ids=300, cams_per_id=(2, 5), imgs_per_cam=(1, 3),
                  query_cams=3, gt_per_query=(2, 3), n_distractors=300, n_junk=150),
}

#: Published Market-1501 counts (Zheng et al. 2015; torchreid's market1501.py), for the
#: "measured vs published" table: identities (gallery: without 0 and -1) / images per
#: split, and cameras. reidnb.data.datasets keeps the same numbers for its stats().
PUBLISHED: dict[str, dict[str, int]] = {
    "market1501": dict(train_ids=751, train_images=12936, query_ids=750, query_images=3368,
                       gallery_ids=750, gallery_images=19732, gallery_junk=3819,
                       gallery_distractors=2798, gt_bbox_images=25259, cameras=6),
}

_KIND_CODE = {"id": 0, "distractor": 1, "junk": 2}
_SPLIT_CODE = {"bounding_box_train": 0, "bounding_box_test": 1, "query": 2, "gt_bbox": 3}

# ----------------------------------------------------------------------------- palettes
# (name, RGB 0..255, weight). Weighted towards common street clothing so that identities
# collide on colour as real ones do.
_TOPS = [("white", (232, 232, 226), .13), ("black", (32, 32, 35), .14),
         ("grey", (128, 128, 132), .10), ("navy", (38, 48, 92), .09),
         ("blue", (62, 102, 178), .07), ("light blue", (150, 184, 220), .05),
         ("red", (178, 38, 42), .08), ("dark red", (110, 28, 38), .03),
         ("green", (52, 118, 62), .05), ("olive", (102, 104, 62), .03),
         ("yellow", (222, 198, 64), .04), ("orange", (222, 122, 44), .03),
         ("pink", (222, 152, 170), .05), ("purple", (112, 62, 140), .04),
         ("brown", (112, 78, 52), .04), ("beige", (200, 180, 146), .04)]
_BOTTOMS = [("black", (30, 30, 34), .28), ("denim", (46, 62, 102), .22),
            ("light denim", (102, 126, 166), .10), ("grey", (118, 118, 122), .12),
            ("khaki", (176, 156, 116), .10), ("white", (226, 226, 220), .06),
            ("brown", (96, 70, 50), .05), ("dark green", (50, 70, 50), .03),
            ("red", (160, 40, 44), .02), ("pink", (214, 150, 166), .02)]
_HAIRS = [("black", (22, 20, 20), .50), ("dark brown", (56, 40, 30), .25),
          ("brown", (100, 70, 46), .12), ("blonde", (196, 162, 102), .06),
          ("grey", (152, 150, 148), .05), ("auburn", (140, 62, 32), .02)]
_SKINS = [("light", (240, 206, 182), .25), ("fair", (226, 182, 152), .30),
          ("medium", (200, 150, 116), .20), ("tan", (160, 112, 82), .15),
          ("dark", (110, 76, 56), .10)]
_SHOES = [("black", (28, 28, 30), .42), ("white", (228, 228, 224), .25),
          ("brown", (96, 66, 44), .12), ("grey", (120, 120, 124), .12),
          ("red", (170, 40, 40), .03), ("blue", (50, 80, 160), .06)]
_BAGS = [("black", (30, 30, 32), .45), ("dark grey", (70, 70, 74), .15),
         ("navy", (36, 44, 86), .10), ("brown", (110, 74, 46), .12),
         ("red", (170, 38, 40), .05), ("beige", (196, 176, 140), .06),
         ("pink", (214, 140, 160), .04), ("green", (56, 110, 60), .03)]

# Materials of the region map (index into the per-image colour table).
(M_BG, M_SKIN, M_HAIR, M_TOP, M_BOTTOM, M_SHOE, M_BAG, M_HAT, M_LOGO, M_DARK, M_OCC,
 M_STRAP) = range(12)
_N_MAT = 12

# ------------------------------------------------------------------------------ cameras
#: Camera styles c1..c6: background, clutter, colour cast (RGB gains), brightness, gamma,
#: saturation, blur radius (px), noise (std, 0..255), low-resolution factor, person scale
#: range (fraction of the box height), viewpoint mix (front, back, left, right),
#: occlusion probability, probability of far passers-by in the background.
CAMERAS: tuple[dict[str, Any], ...] = (
    dict(name="facade", wall=(150, 146, 138), ground=(132, 128, 124), clutter="windows",
         gains=(1.05, 1.00, 0.96), bright=1.00, gamma=1.0, sat=1.05, blur=0.3, noise=3,
         lowres=1.0, scale=(0.87, 0.98), views=(.50, .20, .15, .15), occl=.10, crowd=.4),
    dict(name="passage", wall=(112, 114, 122), ground=(104, 106, 110), clutter="doors",
         gains=(0.97, 1.00, 1.05), bright=0.85, gamma=1.05, sat=0.90, blur=0.6, noise=5,
         lowres=1.0, scale=(0.85, 0.97), views=(.15, .55, .15, .15), occl=.15, crowd=.3),
    dict(name="trees", wall=(104, 124, 96), ground=(128, 130, 116), clutter="trees",
         gains=(0.99, 1.02, 0.98), bright=1.00, gamma=1.0, sat=1.05, blur=0.4, noise=3,
         lowres=1.0, scale=(0.88, 0.99), views=(.10, .10, .40, .40), occl=.15, crowd=.3),
    dict(name="shop", wall=(158, 146, 128), ground=(146, 138, 124), clutter="shop",
         gains=(1.06, 1.00, 0.93), bright=1.05, gamma=0.95, sat=0.95, blur=0.8, noise=4,
         lowres=1.5, scale=(0.87, 0.98), views=(.35, .35, .15, .15), occl=.10, crowd=.5),
    dict(name="square", wall=(164, 164, 166), ground=(150, 150, 146), clutter="poles",
         gains=(1.00, 1.00, 1.02), bright=1.10, gamma=0.90, sat=0.85, blur=0.5, noise=3,
         lowres=1.0, scale=(0.87, 0.98), views=(.30, .30, .20, .20), occl=.08, crowd=.4),
    dict(name="sd-camera", wall=(100, 104, 96), ground=(96, 100, 92), clutter="railing",
         gains=(1.03, 1.03, 0.97), bright=0.80, gamma=1.05, sat=0.85, blur=1.0, noise=7,
         lowres=2.0, scale=(0.85, 0.97), views=(.25, .25, .25, .25), occl=.15, crowd=.3),
)
_VIEWS = ("front", "back", "left", "right")
_OWN_SCENE = 0.4
_YY, _XX = np.mgrid[0:_H2, 0:_W2].astype(np.float32)   # canvas pixel coordinates


def _pick(rng: np.random.Generator, table: list) -> tuple[str, np.ndarray]:
    """Draw (name, rgb float array) from a weighted palette, with a small shade jitter."""
    w = np.array([t[2] for t in table], dtype=float)
    i = int(rng.choice(len(table), p=w / w.sum()))
    rgb = np.clip(np.array(table[i][1], float) + rng.normal(0, 6, 3), 0, 255)
    return table[i][0], rgb


# ---------------------------------------------------------------------------- identities
def _identity(rng: np.random.Generator) -> dict[str, Any]:
    """Draw one identity's appearance (plain dict of numbers, names and RGB arrays)."""
    female = bool(rng.random() < 0.45)
    top_name, top = _pick(rng, _TOPS)
    bottom_name, bottom = _pick(rng, _BOTTOMS)
    texture = str(rng.choice(["plain", "stripes", "checks", "logo"], p=[.50, .20, .12, .18]))
    top2_name, top2 = _pick(rng, _TOPS)
    if top2_name == top_name:                 # a pattern needs a second colour
        top2 = np.clip(255 - top, 0, 255)
    bottom_type = str(rng.choice(["trousers", "shorts", "skirt"],
                                 p=[.55, .20, .25] if female else [.80, .20, .0]))
    hair_style = str(rng.choice(["short", "long", "ponytail", "bald"],
                                p=[.25, .55, .18, .02] if female else [.84, .04, .02, .10]))
    return dict(
        female=female,
        build=float(rng.uniform(0.88, 1.12)),          # width multiplier
        leg=float(rng.uniform(0.95, 1.05)),           # leg length multiplier
        head=float(rng.uniform(0.92, 1.08)),          # head size multiplier
        height=float(rng.uniform(0.95, 1.0)),         # body height in the box
        skin=_pick(rng, _SKINS)[1], hair=_pick(rng, _HAIRS)[1], hair_style=hair_style,
        hat=_pick(rng, _TOPS)[1] if rng.random() < 0.12 else None,
        top_name=top_name, top=top, top2=top2, texture=texture,
        stripe=float(rng.uniform(0.025, 0.05)),       # pattern period, fraction of height
        logo_shape=str(rng.choice(["disc", "box", "bars", "triangle"])),
        long_sleeves=bool(rng.random() < 0.55),
        top_len=float(rng.uniform(0.47, 0.56)),       # hem height, fraction of height
        bottom_name=bottom_name, bottom=bottom, bottom_type=bottom_type,
        shoes=_pick(rng, _SHOES)[1],
        bag=str(rng.choice(["none", "backpack", "shoulder", "handbag"],
                           p=[.45, .28, .17, .10])),
        bag_color=_pick(rng, _BAGS)[1], bag_side=str(rng.choice(["left", "right"])),
        bag_size=float(rng.uniform(0.85, 1.15)),
    )


def _identity_rng(seed: int, kind: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, 1, _KIND_CODE[kind], index])


def identity_attributes(seed: int, pid: int, kind: str = "id") -> dict[str, Any]:
    """The appearance drawn for identity ``pid`` (kind ``"id"``) or for distractor/junk
    number ``pid`` (kinds ``"distractor"``, ``"junk"``) under ``seed``.

    Returns a dict (``bag`` in {"none", "backpack", "shoulder", "handbag"}, ``texture``,
    ``top``/``bottom`` RGB arrays, ...). Used by tests and the data tour.
    """
    return _identity(_identity_rng(seed, kind, pid))


# ------------------------------------------------------------------------------ drawing
class _Canvas:
    """A region-id map at canvas resolution; each drawn primitive gets a new region id
    holding (part label, material, accessory flag, shade). Later primitives overwrite
    earlier ones (painter's algorithm), so labels are exact under occlusion."""

    def __init__(self) -> None:
        self.im = Image.new("L", (_W2, _H2), 0)
        self.draw = ImageDraw.Draw(self.im)
        self.part = [0]
        self.mat = [M_BG]
        self.acc = [0]
        self.shade = [1.0]

    def _region(self, part: int, mat: int, acc: int, shade: float) -> int:
        if len(self.part) >= 255:
            raise RuntimeError("synthetic canvas: more than 254 primitives in one image")
        self.part.append(part)
        self.mat.append(mat)
        self.acc.append(acc)
        self.shade.append(shade)
        return len(self.part) - 1

    def poly(self, pts, part, mat, acc=0, shade=1.0):
        self.draw.polygon([(float(x), float(y)) for x, y in pts],
                          fill=self._region(part, mat, acc, shade))

    def ellipse(self, cx, cy, rx, ry, part, mat, acc=0, shade=1.0):
        self.draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry],
                          fill=self._region(part, mat, acc, shade))

    def rect(self, x0, y0, x1, y1, part, mat, acc=0, shade=1.0):
        self.draw.rectangle([min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)],
                            fill=self._region(part, mat, acc, shade))

    def capsule(self, p0, p1, r, part, mat, acc=0, shade=1.0):
        """A limb: a thick segment with round ends, radius ``r`` canvas pixels."""
        rid = self._region(part, mat, acc, shade)
        (x0, y0), (x1, y1) = p0, p1
        dx, dy = x1 - x0, y1 - y0
        n = math.hypot(dx, dy) or 1.0
        ox, oy = -dy / n * r, dx / n * r
        self.draw.polygon([(x0 + ox, y0 + oy), (x1 + ox, y1 + oy), (x1 - ox, y1 - oy),
                           (x0 - ox, y0 - oy)], fill=rid)
        for x, y in (p0, p1):
            self.draw.ellipse([x - r, y - r, x + r, y + r], fill=rid)

    def line(self, p0, p1, width, part, mat, acc=0, shade=1.0):
        self.draw.line([tuple(p0), tuple(p1)], fill=self._region(part, mat, acc, shade),
                       width=max(1, int(round(width))))


def _draw_person(cv: _Canvas, idt: dict, view: str, cx: float, top: float, u: float,
                 phase: float) -> None:
    """Draw one pedestrian into ``cv``: ``cx`` centre x, ``top`` head top y, ``u`` body
    height (all canvas pixels), ``phase`` walking phase in radians."""
    side = view in ("left", "right")
    d = 1.0 if view != "left" else -1.0          # facing direction for side views (+x)

    def X(x: float) -> float:                     # mirror about cx for left-facing views
        return cx + d * (x - cx)

    b = idt["build"]
    hr = 0.068 * u * idt["head"]                  # head half-height
    hrx = 0.056 * u * idt["head"]                 # head half-width
    hcy = top + hr
    sh_y = top + 0.17 * u                         # shoulder line
    hip_y = top + u * (1 - 0.48 * idt["leg"])
    sole = top + u
    knee_y = hip_y + (sole - hip_y) * 0.47
    ank_y = sole - 0.045 * u
    hem_y = top + idt["top_len"] * u
    sw = (0.120 if side else 0.165) * u * b       # shoulder half-width (or torso depth)
    hw = (0.110 if side else 0.128) * u * b * (1.08 if idt["female"] else 1.0)
    waist_y = top + 0.44 * u
    s = math.sin(phase)
    sleeve_mat = M_TOP if idt["long_sleeves"] else M_SKIN
    bag, bag_side = idt["bag"], idt["bag_side"]
    # which side of the person faces the camera in a side view: facing right -> left side
    near_side = ("left" if d > 0 else "right") if side else None

    def leg(hx, ax, lift, shade, near=True):
        ay = ank_y - lift
        kx = (hx + ax) / 2 + (0.02 * u * d if side else 0.0)
        ky = (hip_y + ay) / 2 + 0.01 * u
        r1, r2 = 0.075 * u * b, 0.060 * u * b
        below = idt["bottom_type"]
        cv.capsule((hx, hip_y), (kx, ky), r1, 5,
                   M_SKIN if below == "skirt" else M_BOTTOM, shade=shade)
        if below == "shorts":                     # shorts end at mid thigh
            cv.capsule((hx, hip_y), ((hx + kx) / 2, (hip_y + ky) / 2), r1 * 1.1, 5,
                       M_BOTTOM, shade=shade)
        cv.capsule((kx, ky), (ax, ay), r2, 6,
                   M_BOTTOM if below == "trousers" else M_SKIN, shade=shade)
        fx = ax + (0.022 * u * d if side else 0.0)
        cv.ellipse(fx, ay + 0.025 * u, (0.055 if side else 0.038) * u, 0.024 * u, 7,
                   M_SHOE, shade=shade)

    def arm(shx, swing, shade, outward):
        shy = sh_y + 0.035 * u
        if side:
            ex, ey = shx - swing * 0.05 * u, top + 0.335 * u
            wx, wy = shx - swing * 0.11 * u, top + 0.49 * u - abs(swing) * 0.02 * u
        else:
            ex, ey = shx + outward * 0.012 * u, top + 0.335 * u
            wx, wy = shx + outward * 0.006 * u, top + 0.49 * u - abs(swing) * 0.035 * u
        ex, wx = X(ex), X(wx)
        cv.capsule((shx, shy), (ex, ey), 0.052 * u * b, 2, M_TOP, shade=shade)
        cv.capsule((ex, ey), (wx, wy), 0.042 * u * b, 3, sleeve_mat, shade=shade)
        cv.ellipse(wx, wy + 0.02 * u, 0.026 * u, 0.03 * u, 3, M_SKIN, shade=shade)
        return wx, wy

    def handbag(wx, wy):
        w, h = 0.05 * u * idt["bag_size"], 0.07 * u * idt["bag_size"]
        cv.rect(wx - w, wy + 0.03 * u, wx + w, wy + 0.03 * u + h, 0, M_BAG, acc=1)

    def shoulder_bag_body(bx):
        w, h = 0.055 * u * idt["bag_size"], 0.075 * u * idt["bag_size"]
        cv.rect(bx - w, hip_y - 0.03 * u, bx + w, hip_y - 0.03 * u + h, 0, M_BAG, acc=1)

    def hair_back(long_visible: bool):
        """Long hair / ponytail hanging behind the head."""
        st = idt["hair_style"]
        if st == "long" and long_visible:
            w = hrx * (1.15 if not side else 0.9)
            x0 = cx - w if not side else X(cx - 0.9 * hrx)
            x1 = cx + w if not side else X(cx + 0.25 * hrx)
            cv.rect(x0, hcy, x1, sh_y + 0.11 * u, 1, M_HAIR)
        elif st == "ponytail" and long_visible:
            px = cx if not side else X(cx - 1.0 * hrx)
            cv.ellipse(px, hcy + 0.6 * hr, 0.35 * hrx, 0.9 * hr, 1, M_HAIR)

    def head():
        st = idt["hair_style"]
        cv.rect(cx - 0.35 * hrx, hcy + 0.5 * hr, cx + 0.35 * hrx, sh_y + 0.01 * u, 1, M_SKIN)
        if view == "back":
            cv.ellipse(cx, hcy, hrx, hr, 1, M_SKIN if st == "bald" else M_HAIR)
        elif side:
            cv.ellipse(cx, hcy, hrx, hr, 1, M_SKIN if st == "bald" else M_HAIR)
            cv.ellipse(X(cx + 0.3 * hrx), hcy + 0.22 * hr, 0.78 * hrx, 0.78 * hr, 1, M_SKIN)
            cv.ellipse(X(cx + 0.55 * hrx), hcy + 0.05 * hr, 0.1 * hrx, 0.08 * hr, 1, M_DARK)
        else:
            if st != "bald":
                cv.ellipse(cx, hcy - 0.05 * hr, 1.06 * hrx, 1.02 * hr, 1, M_HAIR)
            cv.ellipse(cx, hcy + 0.18 * hr, 0.9 * hrx, 0.82 * hr, 1, M_SKIN)
            for e in (-1, 1):
                cv.ellipse(cx + e * 0.35 * hrx, hcy + 0.1 * hr, 0.12 * hrx, 0.08 * hr, 1,
                           M_DARK)
        if idt["hat"] is not None:
            cv.poly([(cx - 1.1 * hrx, hcy - 0.1 * hr), (cx - 0.9 * hrx, top - 0.08 * hr),
                     (cx + 0.9 * hrx, top - 0.08 * hr), (cx + 1.1 * hrx, hcy - 0.1 * hr)],
                    1, M_HAT)
            if view == "front":
                cv.ellipse(cx, hcy - 0.1 * hr, 1.2 * hrx, 0.18 * hr, 1, M_HAT)
            elif side:
                cv.rect(X(cx), hcy - 0.2 * hr, X(cx + 1.7 * hrx), hcy - 0.02 * hr, 1, M_HAT)

    def torso():
        if side:
            pts = [(X(cx - sw), sh_y), (X(cx + sw), sh_y), (X(cx + 0.9 * hw), hem_y),
                   (X(cx - hw), hem_y)]
        else:
            wst = 0.9 if idt["female"] else 1.0
            pts = [(cx - sw, sh_y), (cx + sw, sh_y), (cx + hw * wst * 1.02, waist_y),
                   (cx + hw * 1.04, hem_y), (cx - hw * 1.04, hem_y),
                   (cx - hw * wst * 1.02, waist_y)]
        # pelvis / skirt (upper leg label), drawn first so the top's hem overlaps it
        if idt["bottom_type"] == "skirt":
            skirt_end = hip_y + (knee_y - hip_y) * 0.9
            sx = hw * (1.5 if not side else 1.6)
            cv.poly([(X(cx - hw), waist_y), (X(cx + hw), waist_y), (X(cx + sx), skirt_end),
                     (X(cx - sx), skirt_end)], 5, M_BOTTOM)
        else:
            cv.poly([(X(cx - hw), waist_y), (X(cx + hw), waist_y),
                     (X(cx + hw), hip_y + 0.035 * u), (X(cx - hw), hip_y + 0.035 * u)],
                    5, M_BOTTOM)
        cv.poly(pts, 4, M_TOP)
        if not side:
            for e in (-1, 1):
                cv.ellipse(cx + e * (sw - 0.03 * u), sh_y + 0.035 * u, 0.045 * u * b,
                           0.035 * u, 4, M_TOP)

    if side:
        # far limbs first, darker
        legx = 0.11 * u * s
        far_shade = 0.72
        if bag == "shoulder" and bag_side != near_side:
            shoulder_bag_body(X(cx - 0.02 * u))
        arm(X(cx), s, far_shade, 0)
        leg(X(cx), X(cx - legx), max(0.0, s) * 0.03 * u, far_shade)
        if bag == "backpack":
            cv.poly([(X(cx - sw - 0.06 * u * idt["bag_size"]), sh_y + 0.02 * u),
                     (X(cx - sw + 0.01 * u), sh_y + 0.01 * u),
                     (X(cx - sw + 0.01 * u), sh_y + 0.22 * u * idt["bag_size"]),
                     (X(cx - sw - 0.07 * u * idt["bag_size"]), sh_y + 0.20 * u)],
                    0, M_BAG, acc=1)
        hair_back(True)
        torso()
        leg(X(cx), X(cx + legx), max(0.0, -s) * 0.03 * u, 1.0)
        head()
        if bag == "backpack":                      # strap over the near shoulder
            cv.line((X(cx - 0.02 * u), sh_y), (X(cx - 0.03 * u), sh_y + 0.17 * u),
                    0.022 * u, 0, M_STRAP, acc=1)
        if bag == "shoulder" and bag_side == near_side:
            cv.line((X(cx), sh_y), (X(cx + 0.01 * u), hip_y - 0.02 * u), 0.014 * u, 0,
                    M_STRAP, acc=1)
            shoulder_bag_body(X(cx + 0.01 * u))
        wx, wy = arm(X(cx), -s, 1.0, 0)
        if bag == "handbag" and bag_side == near_side:
            handbag(wx, wy)
        return

    # front / back views: image-left is the person's right in a front view
    legx = 0.5 * hw
    for e in (-1, 1):
        leg(cx + e * legx, cx + e * (legx + 0.012 * u),
            max(0.0, e * s) * 0.03 * u, 1.0)
    hair_back(view == "front")
    torso()
    # the bag side in image coordinates
    bag_e = (-1 if bag_side == "right" else 1) * (1 if view == "front" else -1)
    if bag == "shoulder":
        cv.line((cx - bag_e * (sw - 0.03 * u), sh_y + 0.005 * u),
                (cx + bag_e * (hw + 0.02 * u), hip_y - 0.03 * u), 0.014 * u, 0, M_STRAP,
                acc=1)
    if bag == "backpack":
        if view == "back":
            bw = sw * 0.85 * idt["bag_size"]
            cv.poly([(cx - bw, sh_y + 0.03 * u), (cx + bw, sh_y + 0.03 * u),
                     (cx + bw * 1.05, sh_y + 0.25 * u * idt["bag_size"]),
                     (cx - bw * 1.05, sh_y + 0.25 * u * idt["bag_size"])], 0, M_BAG, acc=1)
            cv.rect(cx - bw * 0.7, sh_y + 0.15 * u, cx + bw * 0.7, sh_y + 0.2 * u, 0,
                    M_STRAP, acc=1)
        else:
            for e in (-1, 1):
                cv.line((cx + e * 0.55 * sw, sh_y), (cx + e * 0.6 * sw, sh_y + 0.2 * u),
                        0.022 * u, 0, M_STRAP, acc=1)
    if idt["texture"] == "logo" and view == "front":
        lx, ly, lr = cx, sh_y + 0.11 * u, 0.045 * u
        shape = idt["logo_shape"]
        if shape == "disc":
            cv.ellipse(lx, ly, lr, lr, 4, M_LOGO)
        elif shape == "box":
            cv.rect(lx - lr * 1.2, ly - lr * 0.8, lx + lr * 1.2, ly + lr * 0.8, 4, M_LOGO)
        elif shape == "bars":
            for k in range(3):
                cv.rect(lx - lr * 1.3, ly - lr + k * 0.8 * lr, lx + lr * 1.3,
                        ly - lr + k * 0.8 * lr + 0.4 * lr, 4, M_LOGO)
        else:
            cv.poly([(lx, ly - lr), (lx + lr * 1.2, ly + lr), (lx - lr * 1.2, ly + lr)],
                    4, M_LOGO)
    wrists = {}
    for e in (-1, 1):
        wrists[e] = arm(cx + e * (sw - 0.004 * u), s * e, 1.0, e)
    if bag == "shoulder":
        shoulder_bag_body(cx + bag_e * (hw + 0.045 * u))
    if bag == "handbag":
        handbag(*wrists[bag_e])
    if view == "back":
        hair_back(True)
    head()


def _background(rng: np.random.Generator, cam_index: int) -> np.ndarray:
    """Background with clutter, float32 [H2, W2, 3] in 0..255.

    The cameras overlook one campus: the scene is the camera's own with probability
    ``_OWN_SCENE``, else another camera's, so a background hints at the camera without
    giving it away (as Market-1501's shared pavement and facades)."""
    if rng.random() >= _OWN_SCENE:
        cam_index = int(rng.choice([c for c in range(NUM_CAMS) if c != cam_index]))
    cam = CAMERAS[cam_index]
    img = Image.new("RGB", (_W2, _H2))
    dr = ImageDraw.Draw(img)
    wall = np.array(cam["wall"], float) * rng.uniform(0.85, 1.15) + rng.normal(0, 10, 3)
    ground = np.array(cam["ground"], float) * rng.uniform(0.85, 1.15) + rng.normal(0, 8, 3)
    hz = int(_H2 * rng.uniform(0.45, 0.7))

    def col(c, sat=0.35):                          # backgrounds are duller than clothes
        c = np.asarray(c, float)
        return tuple(int(v) for v in np.clip(c.mean() + sat * (c - c.mean()), 0, 255))

    dr.rectangle([0, 0, _W2, hz], fill=col(wall))
    dr.rectangle([0, hz, _W2, _H2], fill=col(ground))
    kind = cam["clutter"]
    if kind in ("windows", "shop", "doors"):
        step = int(rng.integers(30, 56))
        off = int(rng.integers(0, step))
        for x in range(-step + off, _W2, step):
            for y in range(int(rng.integers(-20, 10)), hz - 20, step + 10):
                c = wall * rng.uniform(0.35, 0.7) if kind != "shop" else \
                    np.array(_TOPS[int(rng.integers(len(_TOPS)))][1], float)
                w = step * (0.6 if kind == "windows" else 0.8)
                h = step * (0.8 if kind == "windows" else 1.6)
                dr.rectangle([x, y, x + w, y + h], fill=col(c))
    elif kind == "trees":
        for _ in range(int(rng.integers(4, 9))):
            x, y = rng.uniform(0, _W2), rng.uniform(-20, hz)
            r = rng.uniform(15, 45)
            c = np.array(cam["wall"], float) * rng.uniform(0.6, 1.4)
            dr.ellipse([x - r, y - r, x + r, y + r], fill=col(c))
        for _ in range(int(rng.integers(0, 3))):
            x = rng.uniform(0, _W2)
            dr.rectangle([x, hz - 60, x + 8, hz + 10], fill=col((70, 55, 40)))
    if kind in ("poles", "railing", "doors"):
        for _ in range(int(rng.integers(1, 4))):
            x = rng.uniform(0, _W2)
            dr.rectangle([x, 0, x + rng.uniform(3, 9), hz + rng.uniform(0, 30)],
                         fill=col(wall * rng.uniform(0.3, 0.6)))
        if kind == "railing":
            for y in (hz - 30, hz - 10):
                dr.rectangle([0, y, _W2, y + 3], fill=col(wall * 0.4))
    # ground tiles
    for y in range(hz + int(rng.integers(5, 20)), _H2, int(rng.integers(18, 34))):
        dr.line([(0, y), (_W2, y)], fill=col(ground * 0.85), width=2)
    # far passers-by dressed from the same palettes (colour clutter)
    if rng.random() < cam["crowd"]:
        for _ in range(int(rng.integers(1, 3))):
            x = rng.choice([rng.uniform(-10, 25), rng.uniform(_W2 - 25, _W2 + 10)])
            h = rng.uniform(50, 110)
            y = hz - h * rng.uniform(0.3, 0.8)
            c1 = _TOPS[int(rng.integers(len(_TOPS)))][1]
            c2 = _BOTTOMS[int(rng.integers(len(_BOTTOMS)))][1]
            dr.rectangle([x - h * 0.12, y, x + h * 0.12, y + h * 0.5], fill=col(c1, 0.8))
            dr.rectangle([x - h * 0.1, y + h * 0.5, x + h * 0.1, y + h], fill=col(c2, 0.8))
            dr.ellipse([x - h * 0.07, y - h * 0.14, x + h * 0.07, y], fill=col((60, 45, 40)))
    arr = np.asarray(img, dtype=np.float32)
    # multi-scale texture (pavement, foliage, shadows): spreads the background over many
    # histogram bins, as in real footage, instead of two flat colours
    tex = np.zeros((_H2, _W2), np.float32)
    for cell, std in ((32, 18.0), (8, 12.0), (2, 6.0)):
        small = rng.normal(0, std, (_H2 // cell + 1, _W2 // cell + 1)).astype(np.float32)
        tex += np.asarray(Image.fromarray(small, mode="F").resize(
            ((_W2 // cell + 1) * cell, (_H2 // cell + 1) * cell), Image.BILINEAR))[:_H2, :_W2]
    arr += tex[..., None] * rng.uniform(0.6, 1.4)
    return arr


def _occluder(cv: _Canvas, rng: np.random.Generator) -> np.ndarray:
    """Draw an occluder (background in mask/parts) and return its RGB colour."""
    kind = rng.choice(["car", "bin", "railing", "pole", "pedestrian"])
    if kind == "car":
        y0 = _H2 * rng.uniform(0.62, 0.8)
        x0, x1 = sorted(rng.uniform(-40, _W2 + 40, 2))
        x1 = max(x1, x0 + 0.6 * _W2)
        cv.poly([(x0, _H2), (x0 + 10, y0), (x1 - 10, y0), (x1, _H2)], 0, M_OCC)
        col = _TOPS[int(rng.integers(len(_TOPS)))][1]
    elif kind == "bin":
        x = rng.uniform(0.1, 0.9) * _W2
        w, h = rng.uniform(0.3, 0.5) * _W2, rng.uniform(0.18, 0.3) * _H2
        cv.rect(x - w / 2, _H2 - h, x + w / 2, _H2, 0, M_OCC)
        col = (60, 80, 60) if rng.random() < 0.5 else (90, 90, 95)
    elif kind == "railing":
        y = _H2 * rng.uniform(0.6, 0.78)
        cv.rect(0, y, _W2, y + 6, 0, M_OCC)
        for x in np.arange(rng.uniform(0, 20), _W2, 22):
            cv.rect(x, y, x + 4, _H2, 0, M_OCC)
        col = (150, 150, 155)
    elif kind == "pole":
        x = rng.choice([rng.uniform(0.05, 0.3), rng.uniform(0.7, 0.95)]) * _W2
        w = rng.uniform(0.08, 0.16) * _W2
        cv.rect(x - w / 2, 0, x + w / 2, _H2, 0, M_OCC)
        col = (80, 80, 85)
    else:  # part of another pedestrian at one edge
        left = rng.random() < 0.5
        w = rng.uniform(0.2, 0.35) * _W2
        x0, x1 = (-10, w) if left else (_W2 - w, _W2 + 10)
        cv.rect(x0, _H2 * rng.uniform(0.1, 0.3), x1, _H2 * 0.62, 0, M_OCC)
        col = _TOPS[int(rng.integers(len(_TOPS)))][1]
    return np.array(col, float)


@dataclass(frozen=True)
class _Job:
    """One image to render: where it goes and the keys of its random streams."""
    stem: str
    splits: tuple[str, ...]   # output splits (a query image is also written to gt_bbox)
    kind: str                 # "id" | "distractor" | "junk"
    index: int                # pid for "id", running number for distractor / junk
    cam: int                  # 1..6
    k: int                    # image number within its (index, cam) tracklet
    crop: str                 # "detector" | "hand" | "junk"


def render_job(job: _Job, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Render one planned image.

    Returns ``(rgb, parts, mask, accessory)``: ``rgb`` uint8 [128, 64, 3] (before JPEG),
    ``parts`` uint8 [128, 64] in 0..7, ``mask`` uint8 [128, 64] in {0, 255} with
    ``mask == 255 * ((parts > 0) | accessory)``, ``accessory`` bool [128, 64].
    """
    cam = CAMERAS[job.cam - 1]
    kc = _KIND_CODE[job.kind]
    idt = _identity(_identity_rng(seed, job.kind, job.index))
    # tracklet: viewpoint and lighting shared by the images of one identity in one camera
    trk = np.random.default_rng([seed, 2, kc, job.index, job.cam])
    view = _VIEWS[int(trk.choice(4, p=np.array(cam["views"]) / sum(cam["views"])))]
    light = trk.uniform(0.8, 1.2) * np.clip(1 + trk.normal(0, 0.05, 3), 0.85, 1.15)
    t_scale = trk.uniform(*cam["scale"])
    rng = np.random.default_rng([seed, 3, kc, job.index, job.cam, job.k,
                                 _SPLIT_CODE[job.splits[0]]])
    cv = _Canvas()
    bg = _background(rng, job.cam - 1)
    # --- placement (canvas pixels)
    if job.crop == "hand":
        scale = rng.uniform(0.88, 0.97)
        dx, dy = rng.normal(0, 0.02) * _W2, rng.normal(0, 0.01) * _H2
    else:
        scale = float(np.clip(t_scale + rng.normal(0, 0.03), 0.7, 1.02))
        dx, dy = rng.normal(0, 0.07) * _W2, rng.normal(0, 0.035) * _H2
    draw_person = True
    if job.crop == "junk":
        mode = rng.choice(["background", "fragment", "tiny"], p=[.3, .5, .2])
        if mode == "background":
            draw_person = False
        elif mode == "fragment":
            if rng.random() < 0.5:
                dx = rng.choice([-1, 1]) * rng.uniform(0.45, 0.7) * _W2
            else:
                dy = rng.choice([-1, 1]) * rng.uniform(0.45, 0.65) * _H2
        else:
            scale = rng.uniform(0.3, 0.5)
            dx = rng.uniform(-0.3, 0.3) * _W2
            dy = rng.uniform(0, 0.3) * _H2
    u = _H2 * scale * idt["height"]
    top = (_H2 - u) / 2 + dy
    cx = _W2 / 2 + dx
    phase = rng.uniform(0, 2 * np.pi)
    if draw_person:
        _draw_person(cv, idt, view, cx, top, u, phase)
    occ_col = np.zeros(3)
    if job.crop != "junk" and rng.random() < cam["occl"]:
        occ_col = _occluder(cv, rng)
    # --- colourise the region map, vectorised
    reg = np.asarray(cv.im, dtype=np.uint8)                        # [H2, W2]
    lut_part = np.array(cv.part, np.uint8)
    lut_mat = np.array(cv.mat, np.uint8)
    lut_acc = np.array(cv.acc, bool)
    lut_shade = np.array(cv.shade, np.float32)
    mat = lut_mat[reg]
    colors = np.zeros((_N_MAT, 3), np.float32)
    colors[M_SKIN], colors[M_HAIR], colors[M_TOP] = idt["skin"], idt["hair"], idt["top"]
    colors[M_BOTTOM], colors[M_SHOE], colors[M_BAG] = idt["bottom"], idt["shoes"], idt["bag_color"]
    colors[M_HAT] = idt["hat"] if idt["hat"] is not None else 0
    colors[M_LOGO], colors[M_DARK], colors[M_OCC] = idt["top2"], (25, 20, 20), occ_col
    colors[M_STRAP] = idt["bag_color"] * 0.7
    img = colors[mat]                                              # [H2, W2, 3]
    yy, xx = _YY, _XX
    if idt["texture"] in ("stripes", "checks"):
        per = max(3.0, idt["stripe"] * u)
        pat = ((yy - top) // per) % 2 == 1
        if idt["texture"] == "checks":
            pat ^= ((xx - cx) // per) % 2 == 1
        img[(mat == M_TOP) & pat] = idt["top2"]
    person = (mat != M_BG) & (mat != M_OCC)
    # cylinder shading across the body, light from above, per-region shade
    shade = lut_shade[reg] * (1.0 - 0.28 * np.clip((xx - cx) / (0.16 * u + 1e-6), -1, 1) ** 2)
    shade *= 1.08 - 0.16 * np.clip((yy - top) / (u + 1e-6), 0, 1)
    img *= np.where(person, shade, 1.0)[..., None]
    img += rng.standard_normal((_H2, _W2, 1), dtype=np.float32) * 4.0   # fabric grain
    img = np.where((mat == M_BG)[..., None], bg, img)
    # --- 2x down: box filter for the image, centre pixel for the labels
    img = img.reshape(HEIGHT, _SS, WIDTH, _SS, 3).mean(axis=(1, 3))
    reg_s = reg[_SS // 2::_SS, _SS // 2::_SS]
    parts = lut_part[reg_s]
    acc = lut_acc[reg_s]
    mask = np.where((parts > 0) | acc, 255, 0).astype(np.uint8)
    # --- camera: colour cast, brightness, gamma, saturation, low resolution, blur, noise
    img = img / 255.0 * np.asarray(cam["gains"], np.float32) * (cam["bright"] * light)
    img = np.clip(img, 0, 1) ** (cam["gamma"] * rng.uniform(0.95, 1.05))
    grey = img.mean(axis=2, keepdims=True)
    img = grey + (img - grey) * cam["sat"]
    pil = Image.fromarray(np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8))
    lr = cam["lowres"] * rng.uniform(0.9, 1.1)
    if lr > 1.05:
        pil = pil.resize((max(8, int(WIDTH / lr)), max(16, int(HEIGHT / lr))),
                         Image.BILINEAR).resize((WIDTH, HEIGHT), Image.BILINEAR)
    blur = cam["blur"] * rng.uniform(0.7, 1.3)
    if blur > 0.05:
        pil = pil.filter(ImageFilter.GaussianBlur(blur))
    out = np.asarray(pil, np.float32) + rng.normal(0, cam["noise"], (HEIGHT, WIDTH, 3))
    rgb = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    return rgb, parts.astype(np.uint8), mask, acc


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
    from ..core.utils import atomic_write_text
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

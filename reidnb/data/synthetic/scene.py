"""What the synthetic set is made of: sizes, clothing palettes, camera styles, identities."""
from __future__ import annotations

from typing import Any

import numpy as np



#: Bumped whenever the drawing changes (a cached dataset of another version is refused).
GENERATOR_VERSION = "1.1"
#: Output image size in pixels (Market-1501's 128 x 64, H x W).
HEIGHT, WIDTH = 128, 64
_SS = 2                                    # supersampling factor of the drawing canvas
_H2, _W2 = HEIGHT * _SS, WIDTH * _SS       # canvas size, pixels
NUM_CAMS = 6
JPEG_QUALITY = 90
SPLITS = ("bounding_box_train", "bounding_box_test", "query", "gt_bbox")

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

"""Drawing one synthetic image with its exact foreground mask and part map (numpy + PIL)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from ..parts.pose import COCO_KEYPOINTS
from .scene import (CAMERAS, HEIGHT, M_BAG, M_BG, M_BOTTOM, M_DARK, M_HAIR, M_HAT, M_LOGO,
                    M_OCC, M_SHOE, M_SKIN, M_STRAP, M_TOP, NUM_CAMS, WIDTH, _BOTTOMS, _H2,
                    _KIND_CODE, _N_MAT, _OWN_SCENE, _SPLIT_CODE, _SS, _TOPS, _VIEWS, _W2, _XX,
                    _YY, _identity, _identity_rng)



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
                 phase: float, joints: dict | None = None) -> None:
    """Draw one pedestrian into ``cv``: ``cx`` centre x, ``top`` head top y, ``u`` body
    height (all canvas pixels), ``phase`` walking phase in radians. ``joints``, when a
    dict, receives the joint positions the drawing uses (COCO keypoint name -> canvas
    (x, y); :func:`render_job`); recording them draws nothing and draws no random number."""
    side = view in ("left", "right")
    d = 1.0 if view != "left" else -1.0          # facing direction for side views (+x)
    rec = joints if joints is not None else {}    # written only; never read while drawing

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

    def leg(hx, ax, lift, shade, near=True, who="left"):
        ay = ank_y - lift
        kx = (hx + ax) / 2 + (0.02 * u * d if side else 0.0)
        ky = (hip_y + ay) / 2 + 0.01 * u
        rec.update({f"{who}_hip": (hx, hip_y), f"{who}_knee": (kx, ky),
                    f"{who}_ankle": (ax, ay)})
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

    def arm(shx, swing, shade, outward, who="left"):
        shy = sh_y + 0.035 * u
        if side:
            ex, ey = shx - swing * 0.05 * u, top + 0.335 * u
            wx, wy = shx - swing * 0.11 * u, top + 0.49 * u - abs(swing) * 0.02 * u
        else:
            ex, ey = shx + outward * 0.012 * u, top + 0.335 * u
            wx, wy = shx + outward * 0.006 * u, top + 0.49 * u - abs(swing) * 0.035 * u
        ex, wx = X(ex), X(wx)
        rec.update({f"{who}_shoulder": (shx, shy), f"{who}_elbow": (ex, ey),
                    f"{who}_wrist": (wx, wy)})
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
        if view == "back":                         # image-left is the person's left
            rec.update(left_ear=(cx - 0.9 * hrx, hcy + 0.2 * hr),
                       right_ear=(cx + 0.9 * hrx, hcy + 0.2 * hr))
        elif side:                                 # near ear and eye, nose at the profile
            rec.update({f"{near_side}_ear": (X(cx - 0.1 * hrx), hcy + 0.2 * hr),
                        f"{near_side}_eye": (X(cx + 0.55 * hrx), hcy + 0.05 * hr),
                        "nose": (X(cx + 0.95 * hrx), hcy + 0.3 * hr)})
        else:                                      # front: image-left is the person's right
            rec.update(right_eye=(cx - 0.35 * hrx, hcy + 0.1 * hr),
                       left_eye=(cx + 0.35 * hrx, hcy + 0.1 * hr),
                       nose=(cx, hcy + 0.35 * hr),
                       right_ear=(cx - 0.9 * hrx, hcy + 0.2 * hr),
                       left_ear=(cx + 0.9 * hrx, hcy + 0.2 * hr))
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
        far_side = "right" if near_side == "left" else "left"
        arm(X(cx), s, far_shade, 0, who=far_side)
        leg(X(cx), X(cx - legx), max(0.0, s) * 0.03 * u, far_shade, who=far_side)
        if bag == "backpack":
            cv.poly([(X(cx - sw - 0.06 * u * idt["bag_size"]), sh_y + 0.02 * u),
                     (X(cx - sw + 0.01 * u), sh_y + 0.01 * u),
                     (X(cx - sw + 0.01 * u), sh_y + 0.22 * u * idt["bag_size"]),
                     (X(cx - sw - 0.07 * u * idt["bag_size"]), sh_y + 0.20 * u)],
                    0, M_BAG, acc=1)
        hair_back(True)
        torso()
        leg(X(cx), X(cx + legx), max(0.0, -s) * 0.03 * u, 1.0, who=near_side)
        head()
        if bag == "backpack":                      # strap over the near shoulder
            cv.line((X(cx - 0.02 * u), sh_y), (X(cx - 0.03 * u), sh_y + 0.17 * u),
                    0.022 * u, 0, M_STRAP, acc=1)
        if bag == "shoulder" and bag_side == near_side:
            cv.line((X(cx), sh_y), (X(cx + 0.01 * u), hip_y - 0.02 * u), 0.014 * u, 0,
                    M_STRAP, acc=1)
            shoulder_bag_body(X(cx + 0.01 * u))
        wx, wy = arm(X(cx), -s, 1.0, 0, who=near_side)
        if bag == "handbag" and bag_side == near_side:
            handbag(wx, wy)
        return

    # front / back views: image-left is the person's right in a front view
    legx = 0.5 * hw

    def who(e):                                    # image side e -> the person's side
        return ("right" if e < 0 else "left") if view == "front" else \
            ("left" if e < 0 else "right")
    for e in (-1, 1):
        leg(cx + e * legx, cx + e * (legx + 0.012 * u),
            max(0.0, e * s) * 0.03 * u, 1.0, who=who(e))
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
        wrists[e] = arm(cx + e * (sw - 0.004 * u), s * e, 1.0, e, who=who(e))
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


def render_job(job: _Job, seed: int, joints: dict | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Render one planned image.

    ``joints``: pass a dict to receive the drawn person's joints (COCO keypoint name ->
    canvas (x, y); :func:`render_keypoints` turns them into COCO-17 keypoints); the image
    is the same with or without it.

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
        _draw_person(cv, idt, view, cx, top, u, phase, joints)
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


def render_keypoints(job: _Job, seed: int
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Render one planned image and return the joints its person was drawn with.

    Same pixels as :func:`render_job` (the joints are recorded, not drawn). Keypoints are
    the drawing's own joint positions mapped to output pixels: canvas x -> (x - 1) / 2
    (an output pixel is the canvas pixel at its centre, ``_SS = 2``), so column j /
    row i is x = j / y = i. Score 1 for a drawn joint, 0 for one the view does not show
    (nose and eyes from the back, the far eye and ear from the side) or no person.

    Returns:
        ``(rgb, parts, mask, keypoints)``: as :func:`render_job`, plus float32 [17, 3]
        (x, y, score) in :data:`COCO_KEYPOINTS` order, pixels.
    """
    joints: dict = {}
    rgb, parts, mask, _ = render_job(job, seed, joints)
    kps = np.zeros((len(COCO_KEYPOINTS), 3), np.float32)
    for i, name in enumerate(COCO_KEYPOINTS):
        if name in joints:
            x, y = joints[name]
            kps[i] = ((x - _SS // 2) / _SS, (y - _SS // 2) / _SS, 1.0)
    return rgb, parts, mask, kps

"""The embedded synthetic re-ID dataset (package): procedural pedestrians with exact masks and part maps.

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

Modules: ``scene`` (sizes, palettes, cameras, identities), ``draw`` (one image with its
exact mask and part map), ``layout`` (planning and writing the Market-1501 folder layout),
``fixtures`` / ``fixture_plans`` (tiny sets in the OFFICIAL layouts of Market-1501, Duke,
CUHK03-NP, the small sets of MaskReID Table 1 and CIFAR-100, for offline loader tests).
"""
from __future__ import annotations

from ..parts.labels import PART_NAMES
from .draw import render_job
from .fixtures import (FIXTURE_NAMES, plan_fixture, parts_to_lip, truth_paths, write_fixture,
                       write_fixtures)
from .layout import (generate_synthetic, is_complete, plan_synthetic, synthetic_counts,
                     _write_jobs)
from .scene import (CAMERAS, GENERATOR_VERSION, HEIGHT, PUBLISHED, SIZES, SPLITS, WIDTH,
                    identity_attributes)

__all__ = ["generate_synthetic", "plan_synthetic", "render_job", "identity_attributes",
           "synthetic_counts", "is_complete", "SIZES", "PUBLISHED", "PART_NAMES",
           "CAMERAS", "GENERATOR_VERSION", "HEIGHT", "WIDTH", "SPLITS", "_write_jobs",
           "write_fixture", "write_fixtures", "plan_fixture", "truth_paths", "parts_to_lip",
           "FIXTURE_NAMES"]

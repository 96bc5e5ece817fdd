"""MagnifierNet: global branch, mask module, semantic adversarial and fusion branches.

Reference: Y. Lan, Y. Liu, X. Zhou, M. Tian, X. Zhang, S. Yi, H. Li, "MagnifierNet: Towards
Semantic Adversary and Fusion for Person Re-identification" (BMVC 2020; seed text 002,
§3, §4.1, §4.4, Fig. 1, Table 2). Built on reid-strong-baseline (BoT, Luo et al. 2019,
``modeling/baseline.py``): ResNet with last stride 1, BNNeck heads (triplet on the pre-BN
feature, cross-entropy on the bias-free classifier of the post-BN feature).

Parts of the network (switches of Table 2 in brackets)::

    backbone F [N, C, h, w]  (ResNet, last stride 1: 24x12 for 384x192, 4x2 for 64x32)
    G    (always)     GAP -> BNNeck -> classifier                              ("global")
    M    (use_mask)   3x3 conv C->256 + BN + ReLU + 1x1 conv -> 8 seg logits   (seg_logits)
    SAB  (use_sab)    GMP(F * sum_{k kept} R_k) -> BNNeck -> classifier        ("sab")
    SFB  (use_sfb)    GMP(F * R_k) per region -> GRU (hidden C) -> BNNeck      ("sfb")
                      + every region feature -> own BNNeck -> classifier        ("sfb_parts")
    AB   (fusion="ab") SFB with the GRU replaced by a per-region 1x1 conv C -> C/8 and
                      concatenation (8 x C/8 = C), §4.4 / Fig. 4; same output keys as SFB.
    SD   (a loss)     ``SDTerm``: semantic diversity (Eq. 3) on the 7 part features.

Regions (DESIGN.md part labels): 0 background, 1 head, 2 upper arm, 3 lower arm, 4 chest,
5 upper leg, 6 lower leg, 7 foot; U_torso = {1, 2, 3, 4}, L_torso = {5, 6, 7} (§4.1).

Choices for what the paper leaves open (recipes.md §3.6 defaults unless said):

* **Region masks R** [N, 8, h, w] (Eq. 1). 002 §3.1: "binary segmentation masks for all
  body parts R_seg", rescaled "into the same size as F_cnn using bilinear interpolation";
  pseudo labels from a parsing model in training, the mask module's output at inference.
  Followed as one transform for both (``mask_resize="bilinear"``, ``test_masks="binary"``,
  the defaults): a full-resolution label map [N, H, W] -> its binary one-hot masks ->
  bilinear resize to (h, w) with antialiasing (:func:`labels_to_masks`). In training the
  label map is the pseudo labels ``parts``; at test it is the mask head's: ``seg_logits``
  bilinearly upsampled to the input size and arg-maxed (:meth:`MagnifierNet.mask_head_labels`),
  i.e. binary masks. The resized masks are kept soft (not thresholded again: the paper
  names no threshold, and a threshold would drop the thin parts that the resize keeps as
  fractions; each pixel's 8 masks still sum to 1). Why antialiased: PyTorch's bilinear
  without it samples 2 x 2 input pixels per output cell, which at a 16x reduction loses
  a 1-px arm exactly as nearest does; the filtered resize (PIL's BILINEAR) weights every
  pixel of the cell. The former behaviour (``mask_resize="nearest"``: nearest-downsampled
  one-hot labels, which lose arms in 6-8 % and feet in 11 % of the Market-1501 images that
  have them; ``test_masks="soft"``: softmax of ``seg_logits`` at test) stays selectable.
  In training without ``parts`` the masks are the softmax of ``seg_logits`` (not
  detached, so the branch losses also train the mask head). With ``use_mask=False``
  there are no predicted masks and ``parts`` is needed in every mode (ValueError
  otherwise). L_mask (``losses.MaskTerm``) still compares ``seg_logits`` with
  nearest-downsampled labels (a classification target needs one label per cell).
* **SAB occlusion**: one kept set per batch ("erasing the same semantic aligned features
  in each batch", §3.2), drawn afresh in every training forward from the module's own
  ``torch.Generator`` seeded with ``seed`` (so a run is reproducible and independent of
  the global RNG; the generator state is *not* in ``state_dict``: a resumed run draws
  from the start of the sequence again - call ``reset_sampler(seed)`` to choose).
  Background (0) is always kept. No occlusion at test (all 8 regions kept, i.e. GMP(F)
  when the masks sum to one).
* **SFB**: regions fed head -> foot then background (``SFB_ORDER`` = 1..7, 0), one-layer
  GRU with hidden size C, last output = fused feature. Per-region supervision: a separate
  BNNeck + classifier for each of the 8 regions (PCB-style, not shared: the regions carry
  different content), listed in ``SFB_ORDER``. AB keeps the same per-region supervision
  so that only the fusion differs.
* **Test feature**: concatenation of the post-BN features (BoT ``neck_feat="after"``) of
  G, SAB, SFB (those enabled), each L2-normalised before concatenation; dimension
  C x (1 + use_sab + use_sfb).
* **Losses** (Eq. 4): every branch gets CE (label smoothing 0.1) + batch-hard triplet
  (margin 0.3) with weight 1; the 8 per-region terms are *averaged* (so the per-region
  supervision weighs like one branch); L_mask weight lambda = 2, L_SD weight gamma =
  2e-3 in stage 2 only (§4.1). See ``magnifiernet_losses``.
"""
from __future__ import annotations

from typing import Literal, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from reidnb.losses import MaskTerm, cross_entropy, semantic_diversity_loss, triplet_hard_loss
from reidnb.models import register_model
from reidnb.models.backbones import ResNetBackbone
from reidnb.models.layers import BNNeck, weights_init_kaiming

__all__ = [
    "MagnifierNet", "semantic_aligned_pooling", "kept_region_pooling", "sample_kept_regions",
    "check_sampling", "labels_to_masks", "BranchTerm", "SDTerm", "magnifiernet_losses",
    "NUM_REGIONS", "BACKGROUND", "U_TORSO", "L_TORSO", "SFB_ORDER", "REGION_NAMES",
    "SAMPLINGS", "MASK_RESIZES", "TEST_MASKS",
]

NUM_REGIONS = 8                                   # background + 7 body parts
BACKGROUND = 0
U_TORSO = (1, 2, 3, 4)                            # head, upper arm, lower arm, chest
L_TORSO = (5, 6, 7)                               # upper leg, lower leg, foot
SFB_ORDER = (1, 2, 3, 4, 5, 6, 7, 0)              # GRU sequence: head -> foot, background last
REGION_NAMES = ("background", "head", "upper arm", "lower arm", "chest", "upper leg",
                "lower leg", "foot")
#: SAB region sampling strategies (002 §3.2); the first is the paper's.
SAMPLINGS: tuple[str, ...] = ("random_torso", "random_baseline")
#: Resize of full-resolution one-hot masks to the feature map: the paper's (002 §3.1) first.
MASK_RESIZES: tuple[str, ...] = ("bilinear", "nearest")
#: Test-time masks: binary (argmax of the mask head, 002 §3.1) first; "soft": its softmax.
TEST_MASKS: tuple[str, ...] = ("binary", "soft")


# ----------------------------------------------------------------------------- functions
def labels_to_masks(parts: torch.Tensor, size: tuple[int, int],
                    num_regions: int = NUM_REGIONS, mode: str = "bilinear") -> torch.Tensor:
    """Region masks of the feature map from full-resolution part labels (002 §3.1, Eq. 1).

    ``mode="bilinear"`` (the paper's): the binary one-hot masks of ``parts`` resized to
    ``size`` by antialiased bilinear interpolation (``F.interpolate(..., antialias=True)``,
    as PIL's BILINEAR resize): each output value is the filter-weighted share of the
    region around that cell, so a part thinner than the 16x reduction survives as a
    fraction. ``mode="nearest"``: the labels nearest-downsampled, then one-hot (one input
    pixel decides each cell; the former behaviour).

    Args:
        parts: int64 [N, H, W] labels in 0..num_regions-1 (DESIGN.md part labels).
        size: (h, w) of the feature map.
        mode: ``"bilinear"`` or ``"nearest"`` (:data:`MASK_RESIZES`).
    Returns:
        float32 [N, num_regions, h, w] in [0, 1] summing to 1 over regions at every cell
        (``"nearest"``, or an unchanged size: exactly one 1 per cell).
    Raises:
        ValueError: wrong shape/dtype, labels outside 0..num_regions-1, unknown mode.
    """
    if mode not in MASK_RESIZES:
        raise ValueError(f"MagnifierNet: mask resize must be one of {MASK_RESIZES}, got {mode!r}")
    if parts.dim() != 3 or parts.dtype not in (torch.int64, torch.int32, torch.uint8):
        raise ValueError(f"MagnifierNet: parts must be integer part labels [N, H, W], got "
                         f"{tuple(parts.shape)} {parts.dtype}")
    if bool(((parts < 0) | (parts >= num_regions)).any()):
        raise ValueError(f"MagnifierNet: part labels must be in 0..{num_regions - 1}, got "
                         f"min {int(parts.min())} max {int(parts.max())}")
    size = (int(size[0]), int(size[1]))
    if mode == "nearest" or tuple(parts.shape[-2:]) == size:
        small = F.interpolate(parts[:, None].float(), size=size, mode="nearest")[:, 0].long()
        return F.one_hot(small, num_regions).permute(0, 3, 1, 2).float()   # [N, K, h, w]
    full = F.one_hot(parts.long(), num_regions).permute(0, 3, 1, 2).float()  # [N, K, H, W]
    return F.interpolate(full, size=size, mode="bilinear", align_corners=False,
                         antialias=True).clamp_(0.0, 1.0)                  # [N, K, h, w]


def semantic_aligned_pooling(f: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Semantic aligned representation + GMP per region (002 Eq. 1, §3.1, §3.3).

    p_k = max over (i, j) of f[:, :, i, j] * masks[:, k, i, j].

    Args:
        f: float [N, C, h, w] feature map.  masks: float [N, K, h, w] (one-hot or soft).
    Returns:
        float [N, K, C] pooled region features (a region absent from an image gives the
        max of f * 0 = 0 for a post-ReLU map).
    """
    if f.dim() != 4 or masks.dim() != 4 or f.shape[0] != masks.shape[0] \
            or f.shape[-2:] != masks.shape[-2:]:
        raise ValueError(f"semantic_aligned_pooling: expected f [N, C, h, w] and masks "
                         f"[N, K, h, w], got {tuple(f.shape)} and {tuple(masks.shape)}")
    x = f[:, None] * masks[:, :, None].to(f.dtype)          # [N, K, C, h, w]
    return x.amax(dim=(-2, -1))                              # [N, K, C]


def kept_region_pooling(f: torch.Tensor, masks: torch.Tensor,
                        kept: Sequence[int]) -> torch.Tensor:
    """SAB feature (002 Eq. 2): GMP(sum_{k in kept} x_k^ID) = GMP(f * sum_{k in kept} R_k).

    Args:
        f: float [N, C, h, w].  masks: float [N, K, h, w].  kept: region indices kept.
    Returns:
        float [N, C].
    """
    if f.shape[-2:] != masks.shape[-2:] or f.shape[0] != masks.shape[0]:
        raise ValueError(f"kept_region_pooling: f {tuple(f.shape)} and masks "
                         f"{tuple(masks.shape)} differ in batch or spatial size")
    keep = masks[:, list(kept)].sum(1, keepdim=True).to(f.dtype)   # [N, 1, h, w]
    return (f * keep).amax(dim=(-2, -1))                    # [N, C]


def check_sampling(sampling: str, k_hat: int) -> None:
    """Check that the SAB sampling ``sampling`` can keep ``k_hat`` regions (002 §3.2).

    Raises:
        ValueError: unknown sampling, a non-int ``k_hat``, or a K-hat the strategy cannot
            keep (Random-torso: even, 2..6; Random-baseline: 1..7).
    """
    if sampling not in SAMPLINGS:
        raise ValueError(f"MagnifierNet: sampling must be one of {SAMPLINGS}, got {sampling!r}")
    if not isinstance(k_hat, int) or isinstance(k_hat, bool):
        raise ValueError(f"MagnifierNet: k_hat must be an int, got {k_hat!r}")
    if sampling == "random_torso":
        if k_hat % 2 or not 2 <= k_hat <= 2 * min(len(U_TORSO), len(L_TORSO)):
            raise ValueError(f"MagnifierNet: random_torso keeps k_hat/2 regions of U_torso and "
                             f"of L_torso, so k_hat must be even in 2..6, got {k_hat}")
    elif not 1 <= k_hat <= len(U_TORSO) + len(L_TORSO):
        raise ValueError(f"MagnifierNet: random_baseline keeps k_hat of the 7 parts, so k_hat "
                         f"must be in 1..7, got {k_hat}")


def sample_kept_regions(sampling: str = "random_torso", k_hat: int = 4,
                        generator: torch.Generator | None = None) -> tuple[int, ...]:
    """Draw the regions the SAB keeps (002 §3.2 "Region Sampling Strategy").

    * ``"random_torso"``: k_hat/2 of U_torso {1,2,3,4} and k_hat/2 of L_torso {5,6,7}.
    * ``"random_baseline"``: k_hat of the 7 parts {1..7}.

    Background (0) is always kept. ``generator`` None uses the global torch RNG.

    Returns:
        sorted tuple of region indices, 0 first; length k_hat + 1.
    Raises:
        ValueError: unknown sampling or k_hat impossible for it.
    """
    check_sampling(sampling, k_hat)

    def pick(pool: Sequence[int], n: int) -> list[int]:
        idx = torch.randperm(len(pool), generator=generator)[:n]
        return [pool[i] for i in idx.tolist()]

    if sampling == "random_torso":
        kept = pick(U_TORSO, k_hat // 2) + pick(L_TORSO, k_hat // 2)
    else:
        kept = pick(U_TORSO + L_TORSO, k_hat)
    return (BACKGROUND, *sorted(kept))


# ----------------------------------------------------------------------------- modules
@register_model("magnifiernet")
class MagnifierNet(nn.Module):
    """MagnifierNet (002) with the switches of Table 2 and the ablation branch of Fig. 4.

    Args:
        num_classes: training identities.
        backbone: ResNet name (``resnet50`` paper, ``resnet18`` quick profile).
        pretrained: ``False`` | ``True`` | ``"auto"`` (``ResNetBackbone``).
        last_stride: 1 (paper: "final down-sampling layer removed", §4.1).
        use_mask: M, the segmentation head (seg_logits; L_mask via ``losses.MaskTerm``).
        use_sab: SAB.  use_sfb: SFB (or AB with ``fusion="ab"``).
        fusion: ``"gru"`` (SFB) | ``"ab"`` (ablation branch, per-region 1x1 conv C -> C/8,
            concatenated).
        sampling: ``"random_torso"`` (paper) | ``"random_baseline"``.
        k_hat: regions kept by the SAB besides background (4, Fig. 5).
        seed: seed of the SAB sampler's own ``torch.Generator``.
        seg_channels: width of the mask head's 3x3 conv (256, recipes.md §3.6).
        neck_feat: test feature ``"after"`` (post-BN, BoT default) or ``"before"`` the BN.
        mask_resize: ``"bilinear"`` (002 §3.1) or ``"nearest"``: how full-resolution
            one-hot masks reach the feature map (:func:`labels_to_masks`), in training
            and at test alike.
        test_masks: ``"binary"`` (002 §3.1: argmax of the mask head at input resolution,
            then the training resize) or ``"soft"`` (softmax of ``seg_logits``).

    Table 2 rows: G = all switches False; G+M = ``use_mask``; G+M+SAB; G+M+SFB;
    G+M+SAB+SFB (the defaults); +SD = add ``SDTerm`` to the losses.

    forward(x float [N, 3, H, W], parts=None int64 [N, H, W] in 0..7, return_featuremaps=False):
        * ``return_featuremaps=True``: backbone map F [N, C, h, w] (either mode).
        * training: dict
          ``logits`` [N, num_classes], ``embeddings`` [N, C] (global GAP, pre-BN),
          ``bn_embeddings`` [N, C], ``featuremaps`` F;
          ``seg_logits`` [N, 8, h, w] (use_mask);
          ``region_masks`` [N, 8, h, w] (masks R used, when SAB or SFB is on);
          ``region_features`` [N, 8, C] (GMP per region, label order 0..7) and
          ``part_features`` [N, 7, C] (labels 1..7, for ``SDTerm``) (use_sfb);
          ``branches``: {"sab": {"logits", "embeddings", "bn_embeddings", "kept"
          (int64 [k_hat+1] kept labels)}, "sfb": {"logits", "embeddings", "bn_embeddings"},
          "sfb_parts": {"logits": list of 8 [N, num_classes], "embeddings": list of 8
          [N, C]} in ``SFB_ORDER``} for the enabled branches.
        * eval: test feature [N, C * (1 + use_sab + use_sfb)]: per branch (G, SAB, SFB
          order) the L2-normalised post-BN feature, concatenated (not normalised again).

    Raises:
        ValueError: bad switches / sampling / k_hat / mask_resize / test_masks; at
            forward, malformed ``parts`` or ``parts`` missing when SAB/SFB need masks and
            ``use_mask=False``.
    """

    def __init__(self, num_classes: int, backbone: str = "resnet50",
                 pretrained: bool | Literal["auto"] = False, last_stride: int = 1,
                 use_mask: bool = True, use_sab: bool = True, use_sfb: bool = True,
                 fusion: Literal["gru", "ab"] = "gru",
                 sampling: Literal["random_torso", "random_baseline"] = "random_torso",
                 k_hat: int = 4, seed: int = 0, seg_channels: int = 256,
                 neck_feat: Literal["after", "before"] = "after",
                 mask_resize: Literal["bilinear", "nearest"] = "bilinear",
                 test_masks: Literal["binary", "soft"] = "binary"):
        super().__init__()
        if mask_resize not in MASK_RESIZES or test_masks not in TEST_MASKS:
            raise ValueError(f"MagnifierNet: mask_resize must be one of {MASK_RESIZES} and "
                             f"test_masks one of {TEST_MASKS}, got {mask_resize!r}, {test_masks!r}")
        self.mask_resize, self.test_masks = mask_resize, test_masks
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"MagnifierNet: num_classes must be a positive int, "
                             f"got {num_classes!r}")
        if fusion not in ("gru", "ab"):
            raise ValueError(f"MagnifierNet: fusion must be 'gru' or 'ab', got {fusion!r}")
        if neck_feat not in ("after", "before"):
            raise ValueError(f"MagnifierNet: neck_feat must be 'after' or 'before', "
                             f"got {neck_feat!r}")
        check_sampling(sampling, k_hat)
        self.num_classes = num_classes
        self.use_mask, self.use_sab, self.use_sfb = bool(use_mask), bool(use_sab), bool(use_sfb)
        self.fusion, self.sampling, self.k_hat = fusion, sampling, k_hat
        self.neck_feat = neck_feat

        self.backbone = ResNetBackbone(backbone, pretrained=pretrained, last_stride=last_stride)
        c = self.backbone.out_channels
        self.channels = c
        self.neck_global = BNNeck(c, num_classes)
        if self.use_mask:
            self.seg_head = nn.Sequential(
                nn.Conv2d(c, seg_channels, 3, padding=1, bias=False),
                nn.BatchNorm2d(seg_channels), nn.ReLU(inplace=True),
                nn.Conv2d(seg_channels, NUM_REGIONS, 1))
            self.seg_head.apply(weights_init_kaiming)
        if self.use_sab:
            self.neck_sab = BNNeck(c, num_classes)
        if self.use_sfb:
            if fusion == "gru":
                self.gru = nn.GRU(c, c, num_layers=1, batch_first=True)
            else:
                if c % NUM_REGIONS:
                    raise ValueError(f"MagnifierNet: fusion='ab' needs C divisible by "
                                     f"{NUM_REGIONS}, got C = {c}")
                # a 1x1 conv on a pooled 1x1 region vector is a Linear layer
                self.ab_reduce = nn.ModuleList(nn.Linear(c, c // NUM_REGIONS)
                                               for _ in range(NUM_REGIONS))
            self.neck_sfb = BNNeck(c, num_classes)
            self.neck_parts = nn.ModuleList(BNNeck(c, num_classes) for _ in range(NUM_REGIONS))
        self.branch_dims = {"global": c, **({"sab": c} if self.use_sab else {}),
                            **({"sfb": c} if self.use_sfb else {})}
        self.feat_dim = sum(self.branch_dims.values())
        self.reset_sampler(seed)

    # -- helpers -----------------------------------------------------------------------
    @property
    def pretrained_loaded(self) -> bool:
        return self.backbone.pretrained_loaded

    def reset_sampler(self, seed: int) -> None:
        """Re-seed the SAB region sampler (a CPU ``torch.Generator``)."""
        self.seed = int(seed)
        self._sab_gen = torch.Generator().manual_seed(self.seed)

    def sample_kept(self) -> tuple[int, ...]:
        """Draw the next SAB kept set from the model's generator (see ``sample_kept_regions``)."""
        return sample_kept_regions(self.sampling, self.k_hat, self._sab_gen)

    def mask_head_labels(self, seg_logits: torch.Tensor,
                         input_size: tuple[int, int]) -> torch.Tensor:
        """The mask head's part map at input resolution: ``seg_logits`` [N, 8, h, w]
        bilinearly upsampled to ``input_size`` (H, W), argmax -> int64 [N, H, W] in 0..7."""
        up = F.interpolate(seg_logits.float(), size=tuple(int(v) for v in input_size),
                           mode="bilinear", align_corners=False)
        return up.argmax(dim=1)

    def region_masks(self, f: torch.Tensor, parts: torch.Tensor | None = None,
                     seg_logits: torch.Tensor | None = None,
                     input_size: tuple[int, int] | None = None) -> torch.Tensor:
        """Region masks R [N, 8, h, w] (float32) for the feature map f [N, C, h, w].

        * ``parts`` given and (training or ``use_mask=False``): the pseudo labels through
          :func:`labels_to_masks` (``self.mask_resize``).
        * eval with ``test_masks="binary"``: the mask head's labels at ``input_size``
          (:meth:`mask_head_labels`; default: the feature size) through the *same*
          :func:`labels_to_masks` (002 §3.1: binary masks from the mask module).
        * otherwise (eval with ``"soft"``, or training without ``parts``): softmax of the
          mask head (``seg_logits`` computed if not given).
        """
        if parts is not None and (self.training or not self.use_mask):
            if parts.shape[0] != f.shape[0]:
                raise ValueError(f"MagnifierNet: parts batch {parts.shape[0]} != image batch "
                                 f"{f.shape[0]}")
            return labels_to_masks(parts, f.shape[-2:], mode=self.mask_resize).to(f.device)
        if not self.use_mask:
            raise ValueError("MagnifierNet: use_mask=False has no predicted masks, so SAB/SFB "
                             "need the part labels: call forward(x, parts=[N, H, W] int64)")
        if seg_logits is None:
            seg_logits = self.seg_head(f)
        if not self.training and self.test_masks == "binary":
            size = tuple(input_size) if input_size is not None else tuple(f.shape[-2:])
            return labels_to_masks(self.mask_head_labels(seg_logits, size), f.shape[-2:],
                                   mode=self.mask_resize)
        return seg_logits.float().softmax(dim=1)

    def _fuse(self, p: torch.Tensor) -> torch.Tensor:
        """p [N, 8, C] in label order -> fused SFB / AB feature [N, C]."""
        seq = p[:, list(SFB_ORDER)]                                   # [N, 8, C]
        if self.fusion == "gru":
            out, _ = self.gru(seq)                                    # [N, 8, C]
            return out[:, -1]
        return torch.cat([lin(seq[:, i]) for i, lin in enumerate(self.ab_reduce)], dim=1)

    # -- forward -----------------------------------------------------------------------
    def forward(self, x: torch.Tensor, parts: torch.Tensor | None = None,
                return_featuremaps: bool = False):
        f = self.backbone(x)                                          # [N, C, h, w]
        if return_featuremaps:
            return f
        out: dict = {"featuremaps": f}
        seg_logits = self.seg_head(f) if self.use_mask else None      # [N, 8, h, w]
        masks = self.region_masks(f, parts, seg_logits, input_size=x.shape[-2:]) \
            if (self.use_sab or self.use_sfb) else None               # [N, 8, h, w]

        g = F.adaptive_avg_pool2d(f, 1).flatten(1)                    # [N, C]
        g_bn, g_logits = self.neck_global(g)
        feats = {"global": (g, g_bn)}
        branches: dict = {}
        if self.use_sab:
            kept = self.sample_kept() if self.training else tuple(range(NUM_REGIONS))
            a = kept_region_pooling(f, masks, kept)                   # [N, C]
            a_bn, a_logits = self.neck_sab(a)
            feats["sab"] = (a, a_bn)
            branches["sab"] = {"logits": a_logits, "embeddings": a, "bn_embeddings": a_bn,
                               "kept": torch.tensor(kept, device=f.device)}
        if self.use_sfb:
            p = semantic_aligned_pooling(f, masks)                    # [N, 8, C]
            s = self._fuse(p)                                         # [N, C]
            s_bn, s_logits = self.neck_sfb(s)
            feats["sfb"] = (s, s_bn)
            if self.training:
                branches["sfb"] = {"logits": s_logits, "embeddings": s, "bn_embeddings": s_bn}
                part_emb = [p[:, k] for k in SFB_ORDER]
                branches["sfb_parts"] = {
                    "logits": [neck(e)[1] for neck, e in zip(self.neck_parts, part_emb)],
                    "embeddings": part_emb}
                out["region_features"] = p
                out["part_features"] = p[:, 1:]                       # [N, 7, C]

        if not self.training:
            i = 1 if self.neck_feat == "after" else 0
            return torch.cat([F.normalize(v[i], dim=1) for v in feats.values()], dim=1)
        out.update(logits=g_logits, embeddings=g, bn_embeddings=g_bn)
        if seg_logits is not None:
            out["seg_logits"] = seg_logits
        if masks is not None:
            out["region_masks"] = masks
        out["branches"] = branches
        return out

    @torch.no_grad()
    def branch_activation_maps(self, x: torch.Tensor, parts: torch.Tensor | None = None,
                               kept: Sequence[int] | None = None) -> dict[str, torch.Tensor]:
        """Per-branch activation maps for Fig. 2/3-style overlays (no gradient).

        Call in eval mode (in training mode BN statistics would be updated).

        Args:
            x: images [N, 3, H, W].  parts: optional labels [N, H, W] (one-hot masks from
                them in any mode; None: predicted masks, or ValueError with use_mask=False).
            kept: SAB kept regions (default: all 8, the test-time SAB, whose map then
                equals ``"global"`` up to the masks' sum).
        Returns:
            dict of float [N, h, w] maps at feature resolution (upsample for overlays):
            ``"global"``: mean over channels of F^2 (as ``losses.attention_map``, not
            normalised); ``"sab"`` (use_sab): the same for F * sum_{k in kept} R_k, i.e.
            what the SAB's GMP sees; ``"parts"`` (SAB or SFB): int64 argmax of R.
        """
        f = self.backbone(x)
        maps = {"global": f.float().pow(2).mean(1)}
        if self.use_sab or self.use_sfb:
            masks = (labels_to_masks(parts, f.shape[-2:], mode=self.mask_resize).to(f.device)
                     if parts is not None else self.region_masks(f, None, input_size=x.shape[-2:]))
            if self.use_sab:
                keep = masks[:, list(kept if kept is not None else range(NUM_REGIONS))]
                maps["sab"] = (f.float() * keep.sum(1, keepdim=True)).pow(2).mean(1)
            maps["parts"] = masks.argmax(1)
        return maps

    def extra_repr(self) -> str:
        return (f"use_mask={self.use_mask}, use_sab={self.use_sab}, use_sfb={self.use_sfb}, "
                f"fusion={self.fusion!r}, sampling={self.sampling!r}, k_hat={self.k_hat}, "
                f"seed={self.seed}, feat_dim={self.feat_dim}, mask_resize={self.mask_resize!r}, "
                f"test_masks={self.test_masks!r}")


# ----------------------------------------------------------------------------- loss terms
def _branch(outputs: dict, branch: str, who: str) -> dict:
    if branch == "global":
        return outputs
    branches = outputs.get("branches", {})
    if branch not in branches:
        raise KeyError(f"{who}: model outputs have no branch {branch!r}; available: "
                       f"{['global', *branches]}")
    return branches[branch]


class BranchTerm(nn.Module):
    """One loss of one MagnifierNet branch as a Trainer term: ``term(outputs, batch)``.

    Args:
        branch: ``"global"`` (outputs["logits"] / ["embeddings"]) or a key of
            ``outputs["branches"]``: ``"sab"``, ``"sfb"``, ``"sfb_parts"``.
        loss: ``"ce"`` (``cross_entropy`` on the logits, label smoothing, BoT) or
            ``"triplet"`` (``triplet_hard_loss`` on the pre-BN embeddings, margin, BoT).
    Returns 0-d float32; a branch holding lists (``sfb_parts``) gives the mean over its
    regions.
    Raises:
        KeyError: the branch is not in the outputs.
    """

    def __init__(self, branch: str = "global", loss: Literal["ce", "triplet"] = "ce",
                 label_smoothing: float = 0.1, margin: float = 0.3):
        super().__init__()
        if loss not in ("ce", "triplet"):
            raise ValueError(f"BranchTerm: loss must be 'ce' or 'triplet', got {loss!r}")
        self.branch, self.loss = branch, loss
        self.label_smoothing, self.margin = label_smoothing, margin

    def forward(self, outputs: dict, batch: dict) -> torch.Tensor:
        br = _branch(outputs, self.branch, "BranchTerm")
        y = batch["pid"]
        if self.loss == "ce":
            vals = br["logits"]
            fn = lambda v: cross_entropy(v, y, label_smoothing=self.label_smoothing)  # noqa: E731
        else:
            vals = br["embeddings"]
            fn = lambda v: triplet_hard_loss(v, y, margin=self.margin)  # noqa: E731
        if isinstance(vals, (list, tuple)):
            return torch.stack([fn(v) for v in vals]).mean()
        return fn(vals)

    def extra_repr(self) -> str:
        return (f"branch={self.branch!r}, loss={self.loss!r}, "
                f"label_smoothing={self.label_smoothing}, margin={self.margin}")


class SDTerm(nn.Module):
    """Semantic diversity loss (002 Eq. 3, ``losses.semantic_diversity_loss``) as a term.

    ``outputs[key]``: float [N, 7, C] part features (MagnifierNet ``part_features``: the
    GMP region features of SFB/AB for labels 1..7, background excluded).
    """

    def __init__(self, key: str = "part_features", eps: float = 1e-8):
        super().__init__()
        self.key, self.eps = key, eps

    def forward(self, outputs: dict, batch: dict) -> torch.Tensor:
        if self.key not in outputs:
            raise KeyError(f"SDTerm: model outputs have no {self.key!r} (it needs use_sfb=True); "
                           f"available: {sorted(outputs)}")
        return semantic_diversity_loss(outputs[self.key], eps=self.eps)

    def extra_repr(self) -> str:
        return f"key={self.key!r}"


def magnifiernet_losses(model: MagnifierNet, *, sd_weight: float = 0.0, mask_weight: float = 2.0,
                        label_smoothing: float = 0.1, margin: float = 0.3
                        ) -> dict[str, tuple[float, nn.Module]]:
    """Trainer loss dict for a MagnifierNet (002 Eq. 4, §4.1).

    Keys ``ce_<branch>`` / ``tri_<branch>`` (weight 1) for global and each enabled branch
    (sab, sfb, sfb_parts); ``mask`` (``MaskTerm``, weight ``mask_weight`` = lambda = 2) when
    ``use_mask``; ``sd`` (``SDTerm``, weight ``sd_weight``; gamma = 2e-3 in stage 2, 0 =
    left out as in stage 1) when ``sd_weight > 0``.

    Raises:
        ValueError: ``sd_weight > 0`` without SFB (no part features).
    """
    branches = ["global"] + (["sab"] if model.use_sab else []) \
        + (["sfb", "sfb_parts"] if model.use_sfb else [])
    terms: dict[str, tuple[float, nn.Module]] = {}
    for b in branches:
        terms[f"ce_{b}"] = (1.0, BranchTerm(b, "ce", label_smoothing, margin))
        terms[f"tri_{b}"] = (1.0, BranchTerm(b, "triplet", label_smoothing, margin))
    if model.use_mask and mask_weight:
        terms["mask"] = (float(mask_weight), MaskTerm(key="seg_logits", target_key="parts"))
    if sd_weight:
        if not model.use_sfb:
            raise ValueError("magnifiernet_losses: the SD loss acts on SFB's part features; "
                             "build the model with use_sfb=True")
        terms["sd"] = (float(sd_weight), SDTerm())
    return terms

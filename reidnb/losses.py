"""Every loss of the workbook, as pinned in DESIGN.md "Losses (pinned conventions)".

Notation: a batch of N embeddings x_k [N, D] with identity labels y [N] (int64).
P(k) = positives of anchor k (same identity, k excluded), N(k) = negatives.
S_kj = x_k . x_j after L2 normalisation (cosine similarity); D_kj = Euclidean distance.
Unless stated otherwise a loss is the mean over anchors of the per-anchor term, over the
anchors with at least one positive and one negative; a batch without such an anchor gives
a zero that still has a ``grad_fn`` (``x.sum() * 0``), so ``backward()`` works.

All losses run in float32 with autocast disabled (inputs are cast), are vectorised
over the [N, N] matrix (no Python loop over anchors) and return a 0-d float32 tensor.

Sources: 000 = MaskReID (ICME), 003 = MaskReID (long), 001 = batch-contrastive loss,
002 = MagnifierNet, 004 = SAL; Hermans et al. 2017 (batch-hard triplet); Wen et al. 2016
(centre loss); Luo et al. 2019 (BoT, label smoothing).

Trainer-facing wrappers (``Term``, ``SACTerm``, ``MaskTerm``) are ``nn.Module``s called
as ``term(outputs: dict, batch: dict) -> scalar``.
"""
from __future__ import annotations

import functools
from typing import Callable, Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "cross_entropy", "ranking_loss", "npair_loss", "triplet_hard_loss",
    "batch_contrastive_loss", "CenterLoss", "quadruplet_hard_loss", "attention_map",
    "self_attention_constraint", "semantic_diversity_loss", "pairwise_distance",
    "Term", "SACTerm", "MaskTerm",
]

_RANKING_DEFAULTS = {"icme": (0.2, 1.0), "eccv": (0.15, 2.0)}  # form -> (margin, lam)


# ----------------------------------------------------------------------------- helpers
def _fp32(fn: Callable) -> Callable:
    """Run ``fn`` with autocast off and floating tensor arguments cast to float32."""
    @functools.wraps(fn)
    def wrapper(*args, **kw):
        def cast(a):
            return a.float() if torch.is_tensor(a) and a.is_floating_point() else a
        args = [cast(a) for a in args]
        kw = {k: cast(v) for k, v in kw.items()}
        tensors = [a for a in (*args, *kw.values()) if torch.is_tensor(a)]
        dev = tensors[0].device.type if tensors else "cpu"
        with torch.autocast(dev, enabled=False):
            return fn(*args, **kw)
    return wrapper


def _check_xy(x: torch.Tensor, y: torch.Tensor, name: str) -> None:
    if x.dim() != 2:
        raise ValueError(f"{name}: embeddings must be [N, D], got shape {tuple(x.shape)}")
    if y.dim() != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"{name}: labels must be [N] with N = {x.shape[0]}, "
                         f"got shape {tuple(y.shape)}")
    if y.is_floating_point():
        raise ValueError(f"{name}: labels must be an integer tensor, got {y.dtype}")


def _masks(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Positive mask (same id, diagonal excluded) and negative mask, both bool [N, N]."""
    same = y[:, None] == y[None, :]
    eye = torch.eye(len(y), dtype=torch.bool, device=y.device)
    return same & ~eye, ~same


def _zero(x: torch.Tensor) -> torch.Tensor:
    """A zero with a grad_fn (for batches without a valid anchor)."""
    return x.sum() * 0.0


def pairwise_distance(x: torch.Tensor, squared: bool = False) -> torch.Tensor:
    """Euclidean distances [N, N] between the rows of ``x`` [N, D] (float).

    ``squared=False`` returns sqrt(clamp(d^2, 1e-12)) as reid-strong-baseline's
    ``euclidean_dist`` (the clamp keeps the gradient finite for coincident points).
    """
    sq = (x * x).sum(1)
    d2 = (sq[:, None] + sq[None, :] - 2.0 * x @ x.t()).clamp(min=0.0)   # [N, N]
    return d2 if squared else d2.clamp(min=1e-12).sqrt()


# ----------------------------------------------------------------------------- losses
@_fp32
def cross_entropy(logits: torch.Tensor, y: torch.Tensor,
                  label_smoothing: float = 0.0) -> torch.Tensor:
    """Softmax cross-entropy (001 Eqs. 1-2, 004 Eq. 3) with optional label smoothing.

    With smoothing eps the target is (1 - eps) one-hot + eps / C, as BoT's
    ``CrossEntropyLabelSmooth`` (eps = 0.1 there) and ``torch.nn.functional.cross_entropy``.

    Args:
        logits: [N, C] float.  y: [N] int64 in 0..C-1.
    Returns:
        0-d float32, mean over the batch.
    """
    if logits.dim() != 2 or y.dim() != 1 or y.shape[0] != logits.shape[0]:
        raise ValueError(f"cross_entropy: expected logits [N, C] and labels [N], got "
                         f"{tuple(logits.shape)} and {tuple(y.shape)}")
    return F.cross_entropy(logits, y, label_smoothing=label_smoothing)


@_fp32
def ranking_loss(x: torch.Tensor, y: torch.Tensor, margin: float | None = None,
                 lam: float | None = None,
                 form: Literal["icme", "eccv"] = "icme") -> torch.Tensor:
    """MaskReID multi-positive ranking loss; x is L2-normalised inside.

    p_k = min_{i in P(k)} S_ki (hardest positive), t_kj = S_kj - p_k + margin;
    form ``"icme"`` (000 Eq. 3): log(1 + sum_{N(k)} [exp(t_kj)]_{1+}) with [u]_{1+} = u
    if u > 1 else 0 (a negative that satisfies the margin contributes 0);
    form ``"eccv"`` (003 Eq. 5): log(1 + sum_{N(k)} exp(max(0, t_kj))) (such a negative
    contributes exp(0) = 1: loss floor log(1 + |N(k)|));
    both plus lam / (2 |P(k)|) sum_{P(k)} (S_ki - 1)^2. Mean over valid anchors.

    Args:
        x: [N, D] float embeddings (any scale).  y: [N] int labels.
        margin, lam: alpha and lambda; None = the form's default (icme 0.2 / 1,
            eccv 0.15 / 2: 000 §3.5, 003 §4.4).
    Returns:
        0-d float32.
    """
    _check_xy(x, y, "ranking_loss")
    if form not in _RANKING_DEFAULTS:
        raise ValueError(f"ranking_loss: form must be 'icme' or 'eccv', got {form!r}")
    m0, l0 = _RANKING_DEFAULTS[form]
    margin = m0 if margin is None else margin
    lam = l0 if lam is None else lam
    pos, neg = _masks(y)
    valid = pos.any(1) & neg.any(1)
    if not valid.any():
        return _zero(x)
    x = F.normalize(x, dim=1)
    S = (x @ x.t())[valid]                                      # [M, N] cosine, M anchors
    pos, neg = pos[valid], neg[valid]
    p = S.masked_fill(~pos, float("inf")).min(1).values         # [M] hardest positive
    t = S - p[:, None] + margin                                 # [M, N]
    if form == "icme":
        e = t.exp()
        e = torch.where(neg & (e > 1.0), e, torch.zeros_like(e))   # [exp(t)]_{1+}
    else:
        e = torch.where(neg, t.clamp(min=0.0).exp(), torch.zeros_like(t))
    first = torch.log1p(e.sum(1))                                # [M]
    n_pos = pos.sum(1).to(S.dtype)                               # [M] >= 1
    second = lam / (2.0 * n_pos) * ((S - 1.0) ** 2 * pos).sum(1)
    return (first + second).mean()


@_fp32
def npair_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Multi-positive N-pair loss (000 Eq. 1 / 003 Eq. 3); x is L2-normalised inside.

    Per anchor k: mean over i in P(k) of log(1 + sum_{j in N(k)} exp(S_kj - S_ki)),
    computed stably as softplus(logsumexp_{N(k)} S_kj - S_ki). Mean over valid anchors.

    Args:
        x: [N, D] float.  y: [N] int.
    Returns:
        0-d float32.
    """
    _check_xy(x, y, "npair_loss")
    pos, neg = _masks(y)
    valid = pos.any(1) & neg.any(1)
    if not valid.any():
        return _zero(x)
    x = F.normalize(x, dim=1)
    S = (x @ x.t())[valid]                                       # [M, N]
    pos, neg = pos[valid], neg[valid]
    lse = S.masked_fill(~neg, float("-inf")).logsumexp(1)       # [M]
    per_pair = F.softplus(lse[:, None] - S)                      # [M, N], used where pos
    return ((per_pair * pos).sum(1) / pos.sum(1)).mean()


@_fp32
def triplet_hard_loss(x: torch.Tensor, y: torch.Tensor, margin: float = 0.3,
                      normalize: bool = False) -> torch.Tensor:
    """Batch-hard triplet loss (Hermans et al. 2017; 004 Eq. 4; BoT).

    Per anchor k: max(0, max_{P(k)} D_kj - min_{N(k)} D_kj + margin), D Euclidean
    (not squared) on x as given, or on L2-normalised x with ``normalize=True``.

    Args:
        x: [N, D] float.  y: [N] int.  margin: in distance units.
    Returns:
        0-d float32, mean over valid anchors.
    """
    _check_xy(x, y, "triplet_hard_loss")
    pos, neg = _masks(y)
    valid = pos.any(1) & neg.any(1)
    if not valid.any():
        return _zero(x)
    if normalize:
        x = F.normalize(x, dim=1)
    D = pairwise_distance(x)[valid]                              # [M, N]
    pos, neg = pos[valid], neg[valid]
    d_ap = D.masked_fill(~pos, float("-inf")).max(1).values      # [M] farthest positive
    d_an = D.masked_fill(~neg, float("inf")).min(1).values       # [M] nearest negative
    return F.relu(d_ap - d_an + margin).mean()


@_fp32
def batch_contrastive_loss(x: torch.Tensor, y: torch.Tensor, tau: float = 1.0,
                           reduction: str = "mean") -> torch.Tensor:
    """Batch-contrastive loss L_b (001 Eq. 3); x is L2-normalised inside.

    Per anchor k: 1/2 [sum_{j in P(k)} ||x_k - x_j||^2
    + max(0, tau - min_{j in N(k)} ||x_k - x_j||^2)] over all anchors that have a
    negative (an anchor without positives has 0 in the first sum: 001 samples random
    batches). Squared distances of unit vectors lie in [0, 4] (2 - 2 S_kj).

    Args:
        x: [N, D] float (pool5 features).  y: [N] int.  tau: margin on the squared
            distance (recipes.md §2.5 default 1.0).
        reduction: ``"sum"`` over the anchors, as 001 Eq. 3 prints it (a sum over the m
            batch images: the paper profile), or ``"mean"`` (the sum / number of anchors
            with a negative, m times lighter).
    Returns:
        0-d float32.
    Raises:
        ValueError: bad shapes, or ``reduction`` not "mean" / "sum".
    """
    _check_xy(x, y, "batch_contrastive_loss")
    _check_reduction(reduction, "batch_contrastive_loss")
    pos, neg = _masks(y)
    valid = neg.any(1)
    if not valid.any():
        return _zero(x)
    x = F.normalize(x, dim=1)
    D2 = (2.0 - 2.0 * (x @ x.t())).clamp(min=0.0)[valid]         # [M, N] squared distance
    pos, neg = pos[valid], neg[valid]
    pull = (D2 * pos).sum(1)                                     # [M]
    hard_neg = D2.masked_fill(~neg, float("inf")).min(1).values  # [M]
    push = F.relu(tau - hard_neg)
    per_anchor = 0.5 * (pull + push)                             # [M]
    return per_anchor.sum() if reduction == "sum" else per_anchor.mean()


REDUCTIONS: tuple[str, ...] = ("mean", "sum")


def _check_reduction(reduction: str, where: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{where}: reduction must be one of {REDUCTIONS}, got {reduction!r}")


class CenterLoss(nn.Module):
    """Centre loss (001 Eqs. 4-6, Wen et al. 2016) with the centre update in forward().

    loss = 1/2 ||x_i - c_{y_i}||^2 averaged over the batch (``reduction="mean"``) or
    summed over it (``"sum"``: 001 Eq. 4 as printed, a sum over the m batch images; the
    paper profile), x used as given (wrap in ``Term(..., normalize=True)`` for 001's
    L2-normalised pool5). In training mode,
    *after* the loss is computed with the old centres, every class j in the batch moves
    c_j <- c_j - center_lr * dc_j, dc_j = sum_i [y_i = j](c_j - x_i) / (1 + sum_i [y_i = j])
    (001 Eq. 6 prints '+', a sign slip). The centres receive no gradient.

    Args:
        num_classes: identities.  feat_dim: D.  center_lr: eta (0.5, Wen et al./BoT).
        reduction: ``"mean"`` or ``"sum"`` over the batch (the centre update is the same).
    Buffers:
        centers: float32 [num_classes, feat_dim], initialised to zeros (saved in
        checkpoints).
    forward(x [N, D] float, y [N] int64) -> 0-d float32 (computed in float32 even
    under autocast).

    Raises:
        ValueError: wrong shapes, labels outside 0..num_classes-1, unknown ``reduction``.
    """

    def __init__(self, num_classes: int, feat_dim: int, center_lr: float = 0.5,
                 reduction: str = "mean"):
        super().__init__()
        _check_reduction(reduction, "CenterLoss")
        self.num_classes, self.feat_dim, self.center_lr = num_classes, feat_dim, center_lr
        self.reduction = reduction
        self.register_buffer("centers", torch.zeros(num_classes, feat_dim))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        _check_xy(x, y, "CenterLoss")
        if x.shape[1] != self.feat_dim:
            raise ValueError(f"CenterLoss: feature dim {x.shape[1]} != feat_dim {self.feat_dim}")
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= self.num_classes):
            raise ValueError(f"CenterLoss: labels must lie in 0..{self.num_classes - 1}, got "
                             f"{int(y.min())}..{int(y.max())}")
        with torch.autocast(x.device.type, enabled=False):
            x = x.float()
            c = self.centers[y]                                    # [N, D] old centres
            per_sample = 0.5 * ((x - c) ** 2).sum(1)               # [N]
            loss = per_sample.sum() if self.reduction == "sum" else per_sample.mean()
            if self.training:
                with torch.no_grad():
                    count = torch.bincount(y, minlength=self.num_classes).to(x.dtype)  # [C]
                    diff = torch.zeros_like(self.centers).index_add_(0, y, c - x.detach())
                    self.centers -= self.center_lr * diff / (1.0 + count)[:, None]
        return loss

    def extra_repr(self) -> str:
        # reduction only when not the default, so reprs (part of run keys) of mean runs are unchanged
        red = f", reduction={self.reduction!r}" if self.reduction != "mean" else ""
        return (f"num_classes={self.num_classes}, feat_dim={self.feat_dim}, "
                f"center_lr={self.center_lr}{red}")


@_fp32
def quadruplet_hard_loss(x: torch.Tensor, y: torch.Tensor, margin1: float = 0.5,
                         margin2: float = 0.2) -> torch.Tensor:
    """Quadruplet loss with hard mining (004 Eq. 5, §3.3).

    For anchor i: j = farthest positive, k = nearest negative, h = the sample nearest
    to x_k whose identity is neither y_i nor y_k; per anchor
    max(0, D_ij - D_ik + margin1) + max(0, D_ij - D_kh + margin2) with D Euclidean (not
    squared) on x as given (Eq. 5's second term prints d(x_i, x_i): read d(x_i, x_j)).
    An anchor whose batch has no third identity keeps only the first term.

    Args:
        x: [N, D] float.  y: [N] int.  margin1, margin2: epsilon_1 = 0.5, epsilon_2 = 0.2.
    Returns:
        0-d float32, mean over anchors with a positive and a negative.
    """
    _check_xy(x, y, "quadruplet_hard_loss")
    pos, neg = _masks(y)
    valid = pos.any(1) & neg.any(1)
    if not valid.any():
        return _zero(x)
    D = pairwise_distance(x)                                     # [N, N]
    Dv, pos, neg, yi = D[valid], pos[valid], neg[valid], y[valid]  # [M, N], M anchors
    d_ij = Dv.masked_fill(~pos, float("-inf")).max(1).values     # [M]
    d_ik, k = Dv.masked_fill(~neg, float("inf")).min(1)          # [M], [M] indices
    yk = y[k]                                                    # [M]
    third = (y[None, :] != yi[:, None]) & (y[None, :] != yk[:, None])   # [M, N]
    has_h = third.any(1)
    d_kh = D[k].masked_fill(~third, float("inf")).min(1).values  # [M] (inf: no h)
    d_kh = torch.where(has_h, d_kh, torch.zeros_like(d_kh))
    term1 = F.relu(d_ij - d_ik + margin1)
    term2 = torch.where(has_h, F.relu(d_ij - d_kh + margin2), torch.zeros_like(d_kh))
    return (term1 + term2).mean()


@_fp32
def attention_map(f: torch.Tensor) -> torch.Tensor:
    """Spatial attention of a feature map (004 Eq. 1): a = mean_C f^2, L2-normalised.

    Args:
        f: [N, C, H, W] float feature map.
    Returns:
        float32 [N, H*W], each row of unit L2 norm (all-zero maps stay zero).
    """
    if f.dim() != 4:
        raise ValueError(f"attention_map: expected [N, C, H, W], got {tuple(f.shape)}")
    return F.normalize(f.pow(2).mean(1).flatten(1), dim=1)


@_fp32
def self_attention_constraint(a4: torch.Tensor, a5: torch.Tensor,
                              a6: torch.Tensor) -> torch.Tensor:
    """Self-attention constraint (004 Eq. 2): mean over the batch of
    ||a6 - a5||^2 + ||a6 - a4||^2 (per-sample sum over positions; no stop-gradient).

    Args:
        a4, a5, a6: float [N, H*W] attention maps of stage4/5/6 (``attention_map``),
            all of the same shape ([N, H, W] is flattened).
    Returns:
        0-d float32.
    """
    a4, a5, a6 = (a.flatten(1) if a.dim() == 3 else a for a in (a4, a5, a6))
    if not (a4.dim() == 2 and a4.shape == a5.shape == a6.shape):
        raise ValueError("self_attention_constraint: a4, a5, a6 must be [N, H*W] of one shape, "
                         f"got {tuple(a4.shape)}, {tuple(a5.shape)}, {tuple(a6.shape)}")
    return ((a6 - a5).pow(2).sum(1) + (a6 - a4).pow(2).sum(1)).mean()


@_fp32
def semantic_diversity_loss(p: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Semantic diversity loss (002 Eq. 3, pairs i < j).

    Mean over the N samples and the K(K-1)/2 region pairs i < j of
    p_i . p_j / max(||p_i|| ||p_j||, eps) (Eq. 3's printed lower limit i = j would add
    the K self-pairs; the normaliser counts K choose 2).

    Args:
        p: [N, K, C] float pooled region features (K >= 2).
    Returns:
        0-d float32 in [-1, 1].
    """
    if p.dim() != 3 or p.shape[1] < 2:
        raise ValueError(f"semantic_diversity_loss: expected [N, K>=2, C], got {tuple(p.shape)}")
    K = p.shape[1]
    gram = p @ p.transpose(1, 2)                                 # [N, K, K]
    norm = p.norm(dim=2)                                         # [N, K]
    cos = gram / (norm[:, :, None] * norm[:, None, :]).clamp(min=eps)
    i, j = torch.triu_indices(K, K, offset=1, device=p.device)
    return cos[:, i, j].mean()


# ----------------------------------------------------------------------------- wrappers
def _get(outputs: dict, key: str, who: str):
    if key not in outputs:
        raise KeyError(f"{who}: model outputs have no {key!r}; available: {sorted(outputs)}")
    return outputs[key]


class Term(nn.Module):
    """A loss term for the Trainer: ``term(outputs, batch) = fn(feat, batch["pid"], **kw)``.

    ``feat = outputs[key]``, L2-normalised first when ``normalize=True``. ``fn`` may be a
    function above or an ``nn.Module`` such as ``CenterLoss`` (then it is a submodule,
    so its buffers go into checkpoints and it follows ``.train()`` / ``.eval()``).

    Example: ``Term(cross_entropy, key="logits", label_smoothing=0.1)``,
    ``Term(CenterLoss(751, 2048), normalize=True)``, ``Term(ranking_loss, form="eccv")``.
    """

    def __init__(self, fn: Callable, key: str = "embeddings", normalize: bool = False, **kw):
        super().__init__()
        if not callable(fn):
            raise TypeError(f"Term: fn must be callable, got {fn!r}")
        self.fn, self.key, self.normalize, self.kw = fn, key, normalize, kw

    def forward(self, outputs: dict, batch: dict) -> torch.Tensor:
        feat = _get(outputs, self.key, f"Term({self._name()})")
        if self.normalize:
            feat = F.normalize(feat.float(), dim=1)
        return self.fn(feat, batch["pid"], **self.kw)

    def _name(self) -> str:
        return getattr(self.fn, "__name__", type(self.fn).__name__)

    def extra_repr(self) -> str:
        kw = "".join(f", {k}={v!r}" for k, v in self.kw.items())
        return f"fn={self._name()}, key={self.key!r}, normalize={self.normalize}{kw}"


class SACTerm(nn.Module):
    """SAL self-attention constraint as a Trainer term (004 Eq. 2).

    ``outputs[key]`` is a tuple (a4, a5, a6): attention maps [N, H*W]
    (``attention_map``), or raw stage feature maps [N, C, H, W], which are turned into
    attention maps here. Returns ``self_attention_constraint(a4, a5, a6)``.
    """

    def __init__(self, key: str = "attention"):
        super().__init__()
        self.key = key

    def forward(self, outputs: dict, batch: dict) -> torch.Tensor:
        maps = _get(outputs, self.key, "SACTerm")
        if not isinstance(maps, (tuple, list)) or len(maps) != 3:
            raise ValueError(f"SACTerm: outputs[{self.key!r}] must be a tuple (a4, a5, a6)")
        maps = [attention_map(a) if a.dim() == 4 else a for a in maps]
        return self_attention_constraint(*maps)

    def extra_repr(self) -> str:
        return f"key={self.key!r}"


class MaskTerm(nn.Module):
    """Pixel-wise cross-entropy of a segmentation head (MagnifierNet L_mask, recipes.md §3.6).

    ``outputs[key]``: logits float [N, K, h, w] (K = 8: background + 7 parts);
    ``batch[target_key]``: int64 part labels [N, H, W] in 0..K-1, nearest-downsampled
    (``F.interpolate(mode="nearest")``) to h x w. Mean over all pixels.
    """

    def __init__(self, key: str = "seg_logits", target_key: str = "parts"):
        super().__init__()
        self.key, self.target_key = key, target_key

    def forward(self, outputs: dict, batch: dict) -> torch.Tensor:
        logits = _get(outputs, self.key, "MaskTerm")
        parts = _get(batch, self.target_key, "MaskTerm (batch)")
        if logits.dim() != 4 or parts.dim() != 3 or parts.shape[0] != logits.shape[0]:
            raise ValueError(f"MaskTerm: expected logits [N, K, h, w] and labels [N, H, W], got "
                             f"{tuple(logits.shape)} and {tuple(parts.shape)}")
        target = F.interpolate(parts[:, None].float(), size=logits.shape[-2:],
                               mode="nearest")[:, 0].long()       # [N, h, w]
        return cross_entropy_2d(logits, target)

    def extra_repr(self) -> str:
        return f"key={self.key!r}, target_key={self.target_key!r}"


@_fp32
def cross_entropy_2d(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Pixel cross-entropy: logits [N, K, h, w] float, target [N, h, w] int64 -> 0-d."""
    return F.cross_entropy(logits, target)

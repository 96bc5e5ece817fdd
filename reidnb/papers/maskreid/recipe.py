"""MaskReID's two paper versions as data: their ranking losses, the loss terms and the variants.

The two versions differ in the final ranking loss and its hyper-parameters (recipes.md
§1.6): 000 Eq. 3 (``form="icme"``, lambda 1, alpha 0.2, §3.5) against 003 Eq. 5
(``form="eccv"``, lambda 2, alpha 0.15, §4.4). Every ranking run is labelled with the
version whose loss it used (:func:`ranking_name`), and its rows go to that paper's tables
only. :data:`ARCHS` maps the 000 Table 4 network variants to options of
:class:`reidnb.papers.maskreid.model.MaskReID`; :func:`mask_input` feeds it image + mask.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

import torch
from torch import nn

from ...losses import Term, cross_entropy, npair_loss, ranking_loss, triplet_hard_loss
from .config import LOSSES

__all__ = ["PaperVersion", "VERSIONS", "LOSSES", "ARCHS", "loss_terms", "mask_input",
           "ranking_name"]


@dataclasses.dataclass(frozen=True)
class PaperVersion:
    """One version of the MaskReID paper: its ranking-loss form and chosen lambda/alpha.

    Attributes:
        paper_id: ``paper_results.csv`` id (``maskreid_icme`` = 000, ``maskreid`` = 003).
        form: ``form`` of :func:`reidnb.losses.ranking_loss` (``"icme"``: Eq. 3 of 000,
            ``[exp(.)]_{1+}``; ``"eccv"``: Eq. 5 of 003, ``exp([.]_+)``).
        lam, alpha: lambda (weight of the positive pull term) and the margin alpha
            (000 §3.5: 1 / 0.2; 003 §4.4: 2 / 0.15).
        label: short human-readable label.
    """

    paper_id: str
    form: str
    lam: float
    alpha: float
    label: str


#: The two paper versions (recipes.md §1.6).
VERSIONS: dict[str, PaperVersion] = {
    "maskreid_icme": PaperVersion("maskreid_icme", "icme", 1.0, 0.2,
                                  "000 ICME (Eq. 3, lambda=1, alpha=0.2)"),
    "maskreid": PaperVersion("maskreid", "eccv", 2.0, 0.15,
                             "003 long (Eq. 5, lambda=2, alpha=0.15)"),
}

#: 000 Table 4 network variants -> MaskReID options (003 Table 1 calls the full one
#: MaskReID-MF). "DGD" is the base network: one stream, feature from the last level only.
ARCHS: dict[str, dict[str, bool]] = {
    "DGD": {"use_mask": False, "fusion": False},
    "MaskReID-F": {"use_mask": False, "fusion": True},
    "MaskReID-M": {"use_mask": True, "fusion": False},
    "MaskReID": {"use_mask": True, "fusion": True},
}


def loss_terms(loss: str, version: str = "maskreid_icme", *, lam: float | None = None,
               alpha: float | None = None,
               triplet_margin: float = 0.3) -> dict[str, tuple[float, nn.Module]]:
    """The Trainer's loss dict ``{name: (weight, term)}`` of one MaskReID loss setting.

    Args:
        loss: ``"softmax"`` (cross-entropy on the logits; stage 1 and the softmax row),
            ``"triplet"`` (batch-hard triplet on the L2-normalised 256-d feature, margin
            ``triplet_margin`` in distance units; 000 §3.4 "online hard mining", margin not
            given: recipes.md §1.7 default 0.3), ``"npair"`` (000 Eq. 1 / 003 Eq. 3) or
            ``"ranking"`` (000 Eq. 3 or 003 Eq. 5, by ``version``).
        version: key of :data:`VERSIONS`; picks the ranking-loss form and the default
            lambda/alpha.
        lam, alpha: override the version's lambda / alpha (the lambda x alpha grid).

    Returns:
        one entry: ``{"softmax"|"triplet"|"npair"|"rank": (1.0, Term(...))}``. The metric
        losses read ``outputs["embeddings"]`` [N, 256] (N-pair and ranking normalise inside).

    Raises:
        ValueError: unknown loss or version; negative lambda, alpha or margin.
    """
    if loss not in LOSSES:
        raise ValueError(f"unknown MaskReID loss {loss!r}; expected one of {LOSSES}")
    if version not in VERSIONS:
        raise ValueError(f"unknown MaskReID paper version {version!r}; expected one of "
                         f"{sorted(VERSIONS)}")
    v = VERSIONS[version]
    lam = v.lam if lam is None else float(lam)
    alpha = v.alpha if alpha is None else float(alpha)
    for name, val in (("lam", lam), ("alpha", alpha), ("triplet_margin", triplet_margin)):
        if not (math.isfinite(val) and val >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {val!r}")
    if loss == "softmax":
        return {"softmax": (1.0, Term(cross_entropy, key="logits"))}
    if loss == "triplet":
        return {"triplet": (1.0, Term(triplet_hard_loss, normalize=True,
                                      margin=float(triplet_margin)))}
    if loss == "npair":
        return {"npair": (1.0, Term(npair_loss))}
    return {"rank": (1.0, Term(ranking_loss, margin=alpha, lam=lam, form=v.form))}


def mask_input(batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Model inputs of a batch: ``{"x": img [N, 3, H, W], "mask": mask [N, 1, H, W]}``.

    Passed as ``input_fn`` to the Trainer and the evaluation, so ``MaskReID.forward(x,
    mask=...)`` gets the person mask (ignored by the variants without the mask stream).

    Raises:
        KeyError: the batch has no ``mask`` (the dataset was loaded without
            ``load_mask=True`` or its records have no mask; see ``reidnb.data.parts``).
    """
    if "mask" not in batch:
        raise KeyError("MaskReID batch has no 'mask': load the data with load_mask=True and "
                       "give every record a mask (reidnb.data.parts.attach_masks for real data)")
    return {"x": batch["img"], "mask": batch["mask"]}


def ranking_name(version: str, lam: float | None = None, alpha: float | None = None) -> str:
    """Label of a ranking-loss run: ``ranking-<form>-lam<l>-alpha<a>`` (e.g.
    ``ranking-icme-lam1-alpha0.2``); lambda/alpha default to the version's (000 §3.5 /
    003 §4.4). Also the key of the run's cells in ``PUBLISHED``.

    Raises:
        KeyError: unknown version.
    """
    v = VERSIONS[version]
    lam = v.lam if lam is None else float(lam)
    alpha = v.alpha if alpha is None else float(alpha)
    return f"ranking-{v.form}-lam{lam:g}-alpha{alpha:g}"

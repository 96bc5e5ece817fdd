"""MaskReID's experiments: the two training stages, the variants run at a profile, the data.

Two-stage schedule (000 §3.2, recipes.md §1.4):

* **stage 1** -- softmax cross-entropy, random batches, lr 0.1 (:func:`stage1`,
  :func:`train_stage1`). The papers train it jointly on the small-scale sets
  (:mod:`.small_scale`); without them the stage-1 network is trained on the target training
  set instead (printed by the notebook).
* **stage 2** -- one loss (softmax, batch-hard triplet, N-pair or the ranking loss) from the
  stage-1 weights, lr 0.01, the P/N anchor batches of 000 §3.2 (:func:`stage2`,
  :func:`train_stage2`). Every stage-2 variant starts from the *same* stage-1 run.

Stage lengths are iterations, as in the paper (55k / 20k): a
:class:`reidnb.core.stages.Stage` from :meth:`~reidnb.core.stages.Stage.from_iters`; the lr
follows DGD's Caffe solver (the papers give no policy; recipes.md §1.7): ``poly`` with power
0.5 within each stage at the paper profile, constant at quick / smoke (``cfg.lr_policy``).
The component ablation (000 Table 4) trains each network variant (:data:`~.recipe.ARCHS`)
with the stage-1 recipe, as the paper does. :func:`make_plan` says which variants run at
the config's profile (the real-data reduction of the quick profile) and lists every
reduction.
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import Any, Mapping

from torch import nn

from ...core.stages import Stage
from ...data.datasets import ReIDDataset, subset_train
from ...data.parts import attach_masks
from ...evaluation import EvalResult, evaluate
from ...models import build_model
from .. import common
from .config import LOSSES, PAPER_GRID_ALPHAS, PAPER_GRID_LAMBDAS, MaskReIDConfig
from .model import MaskReID
from .recipe import ARCHS, VERSIONS, loss_terms, mask_input, ranking_name

__all__ = ["Variant", "VARIANTS", "stage1", "stage2", "describe_recipe", "model_kw", "pretrained_status",
           "train_stage1", "train_stage2", "transfer_init", "evaluate_run", "grid_cells",
           "Plan", "make_plan", "load_target"]


# =========================================================================== variants
@dataclasses.dataclass(frozen=True)
class Variant:
    """One trained variant of the papers' tables: network options + loss + stage.

    Attributes:
        stage: 1 (softmax from scratch, :func:`train_stage1`) or 2 (from the stage-1
            weights, :func:`train_stage2`).
        arch: key of :data:`~.recipe.ARCHS` (model options ``use_mask``, ``fusion``).
        loss: key of :data:`~.config.LOSSES` (:func:`~.recipe.loss_terms`).
        version, lam, alpha: the ranking loss's paper version and lambda / alpha
            (``None``: the version's own, 000 §3.5 / 003 §4.4).
    """

    stage: int
    arch: str
    loss: str
    version: str = "maskreid_icme"
    lam: float | None = None
    alpha: float | None = None


#: Stage-2 losses of the headline comparison (the ranking loss against softmax and triplet).
HEADLINE_LOSSES: tuple[str, ...] = ("softmax", "triplet", "ranking")


def _variants() -> dict[str, Variant]:
    out = {f"stage1-{arch}": Variant(1, arch, "softmax") for arch in ARCHS}   # 000 Table 4
    out.update({loss: Variant(2, "MaskReID", loss) for loss in LOSSES})      # 000 Table 5
    for version, alphas in PAPER_GRID_ALPHAS.items():            # 000 Table 6 / 003 Table 4
        for lam in PAPER_GRID_LAMBDAS:
            for alpha in alphas:
                out[ranking_name(version, lam, alpha)] = Variant(2, "MaskReID", "ranking",
                                                                 version, lam, alpha)
    return out


#: run key -> :class:`Variant`, for every variant the papers print (the keys of
#: ``tables.PUBLISHED``): ``stage1-<arch>`` (000 Table 4), the losses (000 Table 5 /
#: 003 Table 2; ``ranking`` = the ICME loss) and :func:`~.recipe.ranking_name` of each
#: lambda x alpha cell (000 Table 6 / 003 Table 4; the defaults fill Tables 2/3).
VARIANTS: dict[str, Variant] = _variants()


# =========================================================================== stages
def _schedule(cfg: MaskReIDConfig) -> dict[str, Any]:
    """Stage fields of both stages: the lr policy (Caffe poly, power ``cfg.lr_power``, or
    constant) and the train loader's mirror / pad + crop.

    Raises:
        ValueError: ``cfg.lr_policy`` not "poly" / "constant".
    """
    if cfg.lr_policy not in ("poly", "constant"):
        raise ValueError(f"02_maskreid: lr_policy must be 'poly' or 'constant', got {cfg.lr_policy!r}")
    kw: dict[str, Any] = {"flip_p": float(cfg.flip_p), "pad": int(cfg.pad)}
    if cfg.lr_policy == "poly":
        kw.update(lr_policy="poly", lr_power=float(cfg.lr_power))
    return kw


def stage1(cfg: MaskReIDConfig, num_train_images: int) -> Stage:
    """Stage 1 (000 §3.2): ``cfg.stage1_iters`` iterations (55k) of random batches of
    ``cfg.batch_size`` (64), SGD momentum 0.9, weight decay 5e-4, lr ``cfg.stage1_lr`` (0.1)
    under ``cfg.lr_policy`` (paper: Caffe poly, power 0.5, to 0 at the stage's last
    iteration; recipes.md §1.7); capped by ``cfg.max_iters`` (smoke; poly then ends at the
    cap). Train loader: mirror ``cfg.flip_p``, pad ``cfg.pad`` + random crop.

    Raises:
        ValueError: no iterations, fewer training images than one batch, bad lr_policy.
    """
    return Stage.from_iters("stage 1", cfg.stage1_iters, num_train_images, cfg.batch_size,
                            cfg.stage1_lr, max_iters=cfg.max_iters, sampler="random",
                            **_schedule(cfg))


def stage2(cfg: MaskReIDConfig, num_train_images: int) -> Stage:
    """Stage 2 (000 §3.2): ``cfg.stage2_iters`` iterations (20k) of P/N anchor batches (one
    identity with ``cfg.num_pos`` images + ``batch_size - num_pos`` other identities, one
    image each; :class:`reidnb.data.samplers.AnchorRankingSampler`) for every loss, so the
    loss comparison sees identical batches; lr ``cfg.stage2_lr`` (0.01, recipes.md §1.7)
    under ``cfg.lr_policy`` (paper: poly as stage 1); capped by ``cfg.max_iters`` (smoke).

    Raises:
        ValueError: no iterations, fewer training images than one batch, bad lr_policy.
    """
    return Stage.from_iters("stage 2", cfg.stage2_iters, num_train_images, cfg.batch_size,
                            cfg.stage2_lr, max_iters=cfg.max_iters, sampler="anchor",
                            num_pos=int(cfg.num_pos), **_schedule(cfg))


def describe_recipe(cfg: MaskReIDConfig, num_train_images: int | None = None) -> list[str]:
    """The recipe this config trains, printable lines: the train loader's augmentation (read
    off :func:`stage1` / :func:`stage2`'s ``flip_p`` / ``pad``, what the loader is built
    from; no random erasing), the lr policy, and with ``num_train_images`` both stages. A
    value that differs from the recipe's (DGD: mirror + random crop, poly power 0.5) ends
    in ``[paper: ...]``.
    """
    paper = MaskReIDConfig.paper_defaults()
    n = max(int(num_train_images or 0), int(cfg.batch_size))
    want = dataclasses.replace(cfg, flip_p=paper["flip_p"], pad=paper["pad"])
    aug = [a if a == b else f"{a} [paper: {b}]"
           for a, b in zip(stage1(cfg, n).augmentation(), stage1(want, n).augmentation())]
    lr = (f"lr policy (both stages): Caffe poly, power {cfg.lr_power:g}"
          if cfg.lr_policy == "poly" else "lr policy (both stages): constant")
    if (cfg.lr_policy, cfg.lr_power) != (paper["lr_policy"], paper["lr_power"]):
        lr += f" [paper: {paper['lr_policy']}, power {paper['lr_power']:g} (DGD solver)]"
    out = ["augmentation (train loader): " + "; ".join(aug + ["no random erasing"]), lr]
    if num_train_images:
        out += [s.describe(int(num_train_images)) for s in
                (stage1(cfg, int(num_train_images)), stage2(cfg, int(num_train_images)))]
    return out


def model_kw(cfg: MaskReIDConfig, arch: str) -> dict[str, Any]:
    """Options of ``build_model("maskreid", ...)`` for a 000 Table 4 variant ``arch``.

    Raises:
        ValueError: unknown variant.
    """
    if arch not in ARCHS:
        raise ValueError(f"unknown MaskReID variant {arch!r}; expected one of {list(ARCHS)}")
    return {"backbone": cfg.backbone, "pretrained": cfg.pretrained, **ARCHS[arch]}


def pretrained_status(cfg: MaskReIDConfig) -> str:
    """Say whether the profile's backbone starts from ImageNet weights (printed by the notebook).

    DGD has none (000 pre-trains it on the small-scale sets instead); a ResNet with
    ``pretrained="auto"`` is built once here to see whether torchvision's weights load.
    """
    if cfg.backbone == "dgd" or not cfg.pretrained:
        return f"backbone {cfg.backbone}: random initialisation (no ImageNet weights used)"
    from ...models.backbones import ResNetBackbone

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = ResNetBackbone(cfg.backbone, pretrained=cfg.pretrained).pretrained_loaded
    return (f"backbone {cfg.backbone}: ImageNet weights "
            + ("loaded" if loaded else "NOT available -> random initialisation"))


# =========================================================================== training
def train_stage1(cfg: MaskReIDConfig, dataset: ReIDDataset, *, arch: str = "MaskReID",
                 stage: Stage | None = None, evaluate_model: bool = True,
                 multi_query: bool = False, verbose: bool = True) -> common.Run:
    """Stage 1: one network variant trained with softmax cross-entropy (000 §3.2).

    Masks loaded for every record (:func:`~.recipe.mask_input`); stored and reloaded by
    :func:`reidnb.papers.common.train_and_evaluate` (run store).

    Args:
        cfg: the notebook's config.
        dataset: target set (or a joint small-scale set with ``evaluate_model=False``).
        arch: key of :data:`~.recipe.ARCHS` (000 Table 4 variant).
        stage: default :func:`stage1` (cfg, len(dataset.train)).
        evaluate_model: evaluate on ``dataset``'s query/gallery (single query, plus
            multi-query when asked).

    Returns:
        :class:`reidnb.core.runs.Run` named ``stage1-<arch>``.
    """
    stage = stage or stage1(cfg, len(dataset.train))
    return common.train_and_evaluate(
        cfg, dataset, name=f"stage1-{arch}", model="maskreid", losses=loss_terms("softmax"),
        stage=stage, model_kw=model_kw(cfg, arch), load_mask=True, input_fn=mask_input,
        multi_query=multi_query, evaluate_model=evaluate_model, verbose=verbose)


def transfer_init(init: Any, num_classes: int) -> nn.Module:
    """A stage-1 network re-headed for ``num_classes`` identities (stage 1 on other sets).

    Copies every weight of ``init`` (a Run or a MaskReID module) except the identity
    classifier fc8, which is freshly initialised (N(0, 0.001)) with ``num_classes`` outputs,
    as when 000 fine-tunes the small-scale model on Market-1501 (§3.2).

    Returns:
        ``init``'s module itself when it already has ``num_classes`` outputs.

    Raises:
        ValueError: ``init`` is not a MaskReID network, or its weights do not fit.
    """
    src = getattr(init, "model", init)
    if not isinstance(src, MaskReID):
        raise ValueError(f"transfer_init needs a MaskReID network, got {type(src).__name__}")
    if src.num_classes == num_classes:
        return src
    net = build_model("maskreid", num_classes, backbone=src.backbone_name,
                      use_mask=src.use_mask, fusion=src.fusion, pretrained=False,
                      feat_dim=src.feat_dim)
    state = {k: v for k, v in src.state_dict().items() if not k.startswith("classifier.")}
    missing, unexpected = net.load_state_dict(state, strict=False)
    bad = [k for k in missing if not k.startswith("classifier.")] + list(unexpected)
    if bad:
        raise ValueError(f"transfer_init: stage-1 weights do not fit the network: {bad[:5]}")
    return net


def train_stage2(cfg: MaskReIDConfig, dataset: ReIDDataset, init: Any, *, loss: str,
                 version: str = "maskreid_icme", lam: float | None = None,
                 alpha: float | None = None, stage: Stage | None = None,
                 multi_query: bool = False, rerank: bool = False,
                 verbose: bool = True, seeds: int = 1) -> common.Run:
    """Stage 2: ``loss`` from the stage-1 weights ``init`` on ``dataset`` (000 §3.2).

    The batches and schedule of :func:`stage2`. When ``init`` was trained on other
    identities (joint small-scale stage 1) its classifier is replaced
    (:func:`transfer_init`).

    Args:
        loss, version, lam, alpha: see :func:`~.recipe.loss_terms` (triplet margin
            ``cfg.triplet_margin``).
        multi_query, rerank: extra evaluation settings.
        seeds: stage-2 seeds (``cfg.seed``, ``cfg.seed + 1``, ...) from the one stage-1
            network (the headline loss comparison: :data:`HEADLINE_LOSSES`).

    Returns:
        :class:`reidnb.core.runs.Run` named ``stage2-<loss>`` (``softmax``, ``triplet``,
        ``npair``) or ``stage2-`` + :func:`~.recipe.ranking_name`; a
        :class:`~reidnb.core.runs.SeedGroup` of them when ``seeds`` > 1.
    """
    stage = stage or stage2(cfg, len(dataset.train))
    name = ranking_name(version, lam, alpha) if loss == "ranking" else loss
    src = getattr(init, "model", init)
    start = init if getattr(src, "num_classes", None) == dataset.num_train_pids \
        else transfer_init(init, dataset.num_train_pids)
    arch = next((a for a, kw in ARCHS.items()
                 if kw == {"use_mask": src.use_mask, "fusion": src.fusion}), "MaskReID")
    return common.train_and_evaluate(
        cfg, dataset, name=f"stage2-{name}", model="maskreid",
        losses=loss_terms(loss, version, lam=lam, alpha=alpha,
                          triplet_margin=float(cfg.triplet_margin)),
        stage=stage, model_kw=model_kw(cfg, arch), init=start, load_mask=True,
        input_fn=mask_input, multi_query=multi_query, rerank=rerank, verbose=verbose,
        seeds=seeds)


def seeds_for(cfg: MaskReIDConfig, loss: str) -> int:
    """Stage-2 seeds of ``loss``: ``cfg.seeds`` for the headline comparison (ranking vs
    softmax and triplet, :data:`HEADLINE_LOSSES`), else 1."""
    return int(getattr(cfg, "seeds", 1)) if loss in HEADLINE_LOSSES else 1


def evaluate_run(cfg: MaskReIDConfig, run: Any, dataset: ReIDDataset, *,
                 protocol: str = "market1501", rerank: bool = False) -> EvalResult:
    """Evaluate a trained run on another dataset's query/gallery (small-scale sets).

    Returns:
        :class:`reidnb.evaluation.EvalResult` (single query; ``protocol="cuhk03"`` for the
        classic CUHK03 split).
    """
    return evaluate(run.model.eval(), dataset, common.test_transform(cfg), device=cfg.device,
                    batch_size=128, workers=cfg.workers, flip=cfg.eval_flip, rerank=rerank,
                    input_fn=mask_input, load_mask=True, protocol=protocol)


# =========================================================================== plan
def grid_cells(cfg: MaskReIDConfig) -> list[tuple[str, float, float]]:
    """The lambda x alpha cells to run: ``[(version, lam, alpha), ...]``.

    ``cfg.grid_lambdas`` x ``cfg.grid_alphas`` for each version in ``cfg.grid_versions``
    (000 Table 6: lambda {0, 1, 2, 5, 10} x alpha {0.1, 0.15, 0.2, 0.5, 1.0} with the ICME
    loss; 003 Table 4: the same lambdas x alpha {0.1, 0.15} with the long-version loss).
    ``cfg.grid_alphas`` is a mapping version -> alphas, or one list for every version.

    Raises:
        ValueError: an unknown version.
    """
    lams = [float(v) for v in (cfg.grid_lambdas or ())]
    alphas = cfg.grid_alphas or ()
    cells = []
    for version in cfg.grid_versions or ():
        if version not in VERSIONS:
            raise ValueError(f"grid_versions: unknown version {version!r}; expected "
                             f"{sorted(VERSIONS)}")
        a_list = alphas.get(version, ()) if isinstance(alphas, Mapping) else alphas
        cells += [(version, lam, float(a)) for lam in lams for a in a_list]
    return cells


@dataclasses.dataclass(frozen=True)
class Plan:
    """What the notebook runs under its profile and dataset (printed beside the numbers).

    Attributes:
        losses: stage-2 losses of the loss comparison (000 Table 5 / 003 Table 2).
        versions: paper versions whose default ranking run is trained (their Tables 2/3).
        grid: ``(version, lam, alpha)`` cells of the lambda x alpha grid.
        ablation: 000 Table 4 variants trained besides the full network.
        multi_query, rerank: evaluation settings.
        max_train_pids: training identities kept (None = all).
        reductions: one line per reduction of the paper recipe (printed and recorded).
    """

    losses: tuple[str, ...]
    versions: tuple[str, ...]
    grid: tuple[tuple[str, float, float], ...]
    ablation: tuple[str, ...]
    multi_query: bool
    rerank: bool
    max_train_pids: int | None
    reductions: tuple[str, ...]


def make_plan(cfg: MaskReIDConfig) -> Plan:
    """The variants to run: the profile's, reduced for real data at ``quick``.

    ``cfg.real_reduction`` (quick profile) applies on a real dataset only: fewer losses, no
    grid / ablation, no multi-query (the gt_bbox masks would be 25k more parser predictions
    on the CPU), a train-id subset; each reduction is listed in ``reductions``. The smoke /
    quick synthetic and paper runs take the profile as it is.

    Raises:
        ValueError: ``cfg.losses`` empty or with a loss not in :data:`~.config.LOSSES`; an
            unknown grid version.
    """
    losses = tuple(cfg.losses or LOSSES)
    versions = tuple(cfg.versions or VERSIONS)
    grid = tuple(grid_cells(cfg))
    ablation = tuple(cfg.ablation or ())
    multi_query, rerank = bool(cfg.multi_query), bool(cfg.rerank)
    max_pids = cfg.max_train_pids
    red: list[str] = []
    real = cfg.real_reduction if cfg.dataset_kind == "real" else None
    if cfg.profile != "paper":
        red.append(f"profile {cfg.profile}: backbone {cfg.backbone} at {cfg.height}x{cfg.width}, "
                   f"batch {cfg.batch_size} (P/N {cfg.num_pos}/{cfg.batch_size - int(cfg.num_pos)}"
                   f"), stage 1 {cfg.stage1_iters} + stage 2 {cfg.stage2_iters} iterations at "
                   f"lr {cfg.stage1_lr} / {cfg.stage2_lr} (paper: DGD at 144x56, batch 64 with "
                   "P/N 10/54, 55k + 20k iterations at lr 0.1 / 0.01)")
    if real:
        if "losses" in real:
            losses = tuple(real["losses"])
        if "versions" in real:
            versions = tuple(real["versions"])
        if real.get("grid") is False:
            grid = ()
            red.append(f"real data at {cfg.profile}: no lambda x alpha grid")
        if "ablation" in real:
            ablation = tuple(real["ablation"])
            red.append(f"real data at {cfg.profile}: component ablation "
                       f"{list(ablation) or 'skipped'}")
        if real.get("multi_query") is False and multi_query:
            multi_query = False
            red.append(f"real data at {cfg.profile}: no multi-query evaluation")
        if max_pids is None and real.get("max_train_pids"):
            max_pids = int(real["max_train_pids"])
            red.append(f"real data at {cfg.profile}: {max_pids} training identities "
                       "(query/gallery complete)")
    if not multi_query and not any("multi-query" in r for r in red):
        red.append(f"profile {cfg.profile}: no multi-query evaluation")
    for v in (v for v in VERSIONS if v not in versions):
        red.append(f"no {v} ranking run")
    paper = cfg.paper_defaults(cfg.dataset)      # the papers' plan on this dataset
    if len(losses) < len(paper["losses"]):
        red.append(f"loss comparison: {list(losses)} of {list(paper['losses'])}")
    n_paper = 25 + 10 if paper["grid_versions"] else 0
    if grid and len(grid) < n_paper:
        red.append(f"lambda x alpha grid: {len(grid)} of {n_paper} cells")
    if ablation and len(ablation) < len(paper["ablation"]):
        red.append(f"component ablation: {len(ablation)} of 3 variants besides the full net")
    if not losses or any(loss not in LOSSES for loss in losses):
        raise ValueError(f"losses must be a non-empty subset of {LOSSES}, got {losses}")
    return Plan(losses, versions, grid, ablation, multi_query, rerank, max_pids, tuple(red))




def load_target(cfg: MaskReIDConfig, plan: Plan, *,
                verbose: bool = True) -> tuple[ReIDDataset, dict, bool]:
    """The target set with the plan's train subset and a person mask for every record.

    :func:`reidnb.papers.common.load_data`, then the plan's train-id subset (real data at
    quick, unless ``cfg.max_train_pids`` already applied one), then
    :func:`reidnb.data.parts.attach_masks` (``source="auto"``: exact synthetic masks,
    parsing labels, the light parser, FCN; recipes.md §1.7).

    Returns:
        ``(dataset, mask info, multi-query evaluated)``; multi-query is evaluated when the
        plan asks for it and the set has multi-query images (Market-1501 / synthetic).
    """
    ds = common.load_data(cfg, verbose=verbose)
    if plan.max_train_pids and not cfg.max_train_pids:
        ds = subset_train(ds, plan.max_train_pids, seed=cfg.seed)
        if verbose:
            print(f"train subset: {ds.num_train_pids} identities, {len(ds.train)} images")
    use_mq = plan.multi_query and bool(ds.multi_query)
    ds, mask_info = attach_masks(ds, source="auto", multi_query=use_mq,
                                 parser_epochs=cfg.parser_epochs, device=cfg.device,
                                 parser_max_iters=cfg.max_iters or None, seed=cfg.seed)
    return ds, mask_info, use_mq

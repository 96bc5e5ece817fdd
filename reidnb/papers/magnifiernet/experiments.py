"""MagnifierNet's experiments as data and runs: Table 2 variants, the two stages, the plan.

* **Table 2** (component ablation): each row is a set of model switches (:data:`VARIANTS`,
  :func:`model_kw`). ``G+M+SAB+SFB+SD`` is not a separate network: it is stage 2 (SD loss
  added, gamma = 2e-3) started from the ``G+M+SAB+SFB`` stage-1 run.
* **Two stages** (002 §4.1, recipes.md §3.3; :func:`stage`): stage 1 trains everything but
  the SD loss (460 epochs, BoT Adam 3.5e-4, warm-up 10 epochs, x0.1 at epochs 150 / 300,
  P x K = 16 x 4); stage 2 adds SD for 40 epochs at lr 1e-3 from stage 1's weights.
* **Fig. 4**: SFB (GRU fusion) against the ablation branch AB (``fusion="ab"``); **Fig. 5**:
  the SAB's K-hat sweep, Random-torso against Random-baseline; both on ``G+M+SAB+SFB``
  without SD.

Every stage-1 training the three experiments need is listed once (:meth:`Plan.stage1_specs`):
the ``G+M+SAB+SFB`` run with Random-torso K-hat = 4 is Table 2's row, Fig. 4's SFB bar,
Fig. 5's Random-torso point at 4 and stage 2's start. Each training is one call of
:func:`reidnb.papers.common.train_and_evaluate` (run store: a re-run loads it).
"""
from __future__ import annotations

import dataclasses
import types
from typing import Any, Mapping

import torch

from ...core.stages import Stage
from ..common import Run, epoch_images, train_and_evaluate
from .config import SAMPLINGS, TABLE2_ROWS, MagnifierNetConfig
from .model import check_sampling, magnifiernet_losses

__all__ = [
    "Variant", "VARIANTS", "TABLE2_ROWS", "STAGE1_FULL", "FULL", "SD_CONTROL", "SAMPLINGS",
    "variant", "model_kw", "variant_losses", "parts_input", "image_input", "stage",
    "sd_weight", "stage_images", "describe_stages", "describe_recipe", "RunSpec", "Plan", "make_plan", "train_stage1",
    "train_stage2", "train_plan", "pretrained_status",
]


# =========================================================================== variants
@dataclasses.dataclass(frozen=True)
class Variant:
    """One row of 002 Table 2: which parts of MagnifierNet are on.

    Attributes:
        name: the row's ``variant`` string in ``paper_results.csv`` (``"G+M+SAB"``).
        label: the row as Table 2 prints its increment (``"+SAB"``).
        use_mask, use_sab, use_sfb: model switches (M, SAB, SFB).
        sd: the row adds the SD loss, i.e. it is stage 2 of the ``G+M+SAB+SFB`` network.
    """

    name: str
    label: str
    use_mask: bool
    use_sab: bool
    use_sfb: bool
    sd: bool = False

    @property
    def network(self) -> str:
        """Name of the stage-1 network this row is trained as (``+SD`` -> without SD)."""
        return self.name.removesuffix("+SD")


#: The rows of 002 Table 2, in the paper's order.
VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("G", "G", False, False, False),
    Variant("G+M", "+M", True, False, False),
    Variant("G+M+SAB", "+SAB", True, True, False),
    Variant("G+M+SFB", "+SFB", True, False, True),
    Variant("G+M+SAB+SFB", "+SAB+SFB", True, True, True),
    Variant("G+M+SAB+SFB+SD", "+SD", True, True, True, sd=True),
)}
assert tuple(VARIANTS) == TABLE2_ROWS
#: The stage-1 network of the full model, and the full model (Table 1 row "Ours").
STAGE1_FULL, FULL = "G+M+SAB+SFB", "G+M+SAB+SFB+SD"
#: run key of the stage-2 control trained without SD (``Plan.sd_control``).
SD_CONTROL = f"{STAGE1_FULL}|stage2 no SD"
#: The stage-1 runs of the headline comparisons, trained with ``cfg.seeds`` seeds.
HEADLINE_RUNS: tuple[str, ...] = ("G", STAGE1_FULL)


def variant(name: str) -> Variant:
    """The :class:`Variant` of a Table 2 row name.

    Raises:
        ValueError: unknown name (the message lists :data:`TABLE2_ROWS`).
    """
    if name not in VARIANTS:
        raise ValueError(f"unknown MagnifierNet Table 2 row {name!r}; expected one of "
                         f"{list(TABLE2_ROWS)}")
    return VARIANTS[name]


def model_kw(name: str, *, fusion: str = "gru", sampling: str = "random_torso",
             k_hat: int = 4, seed: int = 0, mask_resize: str = "bilinear",
             test_masks: str = "binary") -> dict[str, Any]:
    """Options of ``build_model("magnifiernet", ...)`` for a Table 2 row.

    ``fusion``, ``sampling`` and ``k_hat`` only matter where the row has SFB / SAB; they
    are left out otherwise, so equal networks get equal options (and one run). So do
    ``mask_resize`` and ``test_masks`` (how region masks reach the feature map in training
    and at test, 002 §3.1; ``model.labels_to_masks``): only rows with SAB or SFB pool
    with masks. They are always spelled out there, so runs trained with the former
    nearest / soft masks (whose options lack them) get other run keys.

    Returns:
        dict with ``use_mask``, ``use_sab``, ``use_sfb`` and, when used, ``fusion``,
        ``sampling``, ``k_hat``, ``seed`` (the SAB sampler's generator seed),
        ``mask_resize``, ``test_masks``.

    Raises:
        ValueError: unknown row, fusion, sampling, or a K-hat the sampling cannot keep.
    """
    v = variant(name)
    if fusion not in ("gru", "ab"):
        raise ValueError(f"fusion must be 'gru' (SFB) or 'ab' (ablation branch), got {fusion!r}")
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
    kw: dict[str, Any] = dict(use_mask=v.use_mask, use_sab=v.use_sab, use_sfb=v.use_sfb)
    if v.use_sfb:
        kw["fusion"] = fusion
    if v.use_sab:
        check_sampling(sampling, int(k_hat))
        kw.update(sampling=sampling, k_hat=int(k_hat), seed=int(seed))
    if v.use_sab or v.use_sfb:
        kw.update(mask_resize=str(mask_resize), test_masks=str(test_masks))
    return kw


def variant_losses(kw: Mapping[str, Any], cfg: MagnifierNetConfig, sd: float = 0.0):
    """Trainer loss terms (002 Eq. 4) of a network with the switches of ``kw``
    (:func:`model_kw`): CE + triplet per branch, L_mask x ``cfg.mask_weight``, L_SD x
    ``sd`` (0: left out, stage 1). See :func:`.model.magnifiernet_losses`."""
    switches = types.SimpleNamespace(use_mask=bool(kw.get("use_mask", True)),
                                     use_sab=bool(kw.get("use_sab", True)),
                                     use_sfb=bool(kw.get("use_sfb", True)))
    return magnifiernet_losses(switches, sd_weight=sd, mask_weight=float(cfg.mask_weight))


def parts_input(batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Training inputs of a batch: ``{"x": img [N, 3, H, W], "parts": int64 [N, H, W]}``.

    ``input_fn`` of the Trainer: ``MagnifierNet.forward(x, parts=...)`` pools the SAB/SFB
    region features with the pseudo labels during training (recipes.md §3.6).

    Raises:
        KeyError: the batch has no ``parts`` (load with ``load_parts=True`` and give every
            training record a part map: :func:`.parts.prepare_parts`).
    """
    if "parts" not in batch:
        raise KeyError("MagnifierNet batch has no 'parts': load the training data with "
                       "load_parts=True and give every training record a part map "
                       "(reidnb.papers.magnifiernet.prepare_parts / "
                       "reidnb.data.parts.attach_masks)")
    return {"x": batch["img"], "parts": batch["parts"]}


def image_input(batch: Mapping[str, Any]) -> torch.Tensor:
    """Test inputs: the image only (predicted masks at test time, recipes.md §3.6)."""
    return batch["img"]


# =========================================================================== stages
def stage(cfg: MagnifierNetConfig, which: int, num_train_images: int) -> Stage:
    """Stage ``which`` (1 or 2) of the profile (002 §4.1, recipes.md §3.3).

    Stage 1: ``stage1_epochs`` at ``stage1_lr``, x0.1 at ``stage1_milestones``, warm-up
    ``warmup_epochs``; stage 2: ``stage2_epochs`` at ``stage2_lr``, constant. Both Adam,
    weight decay 5e-4, P x K batches (``batch_size`` / ``num_instances``), shortened to
    ``stage{1,2}_iters`` (quick) and ``max_iters`` (smoke) when set. The SD weight is not
    a stage field: :func:`sd_weight`.

    Raises:
        ValueError: ``which`` not 1/2, epochs < 1, fewer training images than one batch.
    """
    if which not in (1, 2):
        raise ValueError(f"stage must be 1 or 2, got {which!r}")
    common = dict(optimizer="adam", sampler="pk", num_instances=int(cfg.num_instances),
                  weight_decay=5e-4, max_iters=cfg.max_iters, flip_p=float(cfg.flip_p),
                  pad=int(cfg.pad))
    if which == 1:
        return Stage.from_epochs("stage 1", cfg.stage1_epochs, num_train_images,
                                 cfg.batch_size, cfg.stage1_lr, iters=cfg.stage1_iters,
                                 milestones=tuple(cfg.stage1_milestones),
                                 warmup_epochs=int(cfg.warmup_epochs), **common)
    return Stage.from_epochs("stage 2", cfg.stage2_epochs, num_train_images, cfg.batch_size,
                             cfg.stage2_lr, iters=cfg.stage2_iters, **common)


def sd_weight(cfg: MagnifierNetConfig, which: int, *, sd: bool = True) -> float:
    """gamma of the SD loss in stage ``which``: 0 in stage 1, ``cfg.sd_weight`` in stage 2
    (0 for the control ``sd=False``)."""
    return float(cfg.sd_weight) if which == 2 and sd else 0.0


def stage_images(cfg: MagnifierNetConfig, dataset: Any) -> int:
    """Images one epoch of the P x K loader yields (:func:`reidnb.papers.common.epoch_images`):
    the stages' epochs, warm-up and lr milestones (002 §4.1) are epochs of that loader."""
    return epoch_images(dataset, "pk", int(cfg.batch_size), int(cfg.num_instances))


def describe_stages(cfg: MagnifierNetConfig, num_train_images: int) -> list[str]:
    """One printable line per stage (:meth:`Stage.describe` plus the SD loss)."""
    out = []
    for which in (1, 2):
        w = sd_weight(cfg, which)
        out.append(stage(cfg, which, num_train_images).describe(num_train_images)
                   + (f"; SD loss gamma {w:g}" if w else "; no SD loss"))
    return out


def describe_recipe(cfg: MagnifierNetConfig, num_train_images: int | None = None) -> list[str]:
    """The recipe this config trains, printable lines: augmentation as the train loader
    builds it (read off :func:`stage`'s ``flip_p`` / ``pad`` and ``cfg.random_erasing``,
    the values :func:`train_stage1` passes), the region masks, and with
    ``num_train_images`` (:func:`stage_images`) the stages. A value that differs from the
    paper's (002 §4.1 / BoT: flip 0.5, pad 10 + crop, random erasing 0.5; §3.1 masks) ends
    in ``[paper: ...]``.
    """
    paper = MagnifierNetConfig.paper_defaults()
    n = int(num_train_images) if num_train_images else int(cfg.batch_size)
    aug = stage(cfg, 1, n).augmentation()
    want = dataclasses.replace(cfg, flip_p=paper["flip_p"], pad=paper["pad"])
    aug = [a if a == b else f"{a} [paper: {b}]"
           for a, b in zip(aug, stage(want, 1, n).augmentation())]
    re = float(cfg.random_erasing)
    aug.append((f"random erasing p={re:g}" if re else "no random erasing")
               + ("" if re == paper["random_erasing"]
                  else f" [paper: random erasing p={paper['random_erasing']:g}]"))
    masks = (f"region masks: {cfg.mask_resize}-resized one-hot part maps, pseudo labels in "
             f"training, the mask head's {cfg.test_masks} masks at test")
    if (cfg.mask_resize, cfg.test_masks) != (paper["mask_resize"], paper["test_masks"]):
        masks += f" [paper: {paper['mask_resize']} / {paper['test_masks']}]"
    out = ["augmentation (train loader): " + "; ".join(aug), masks]
    if num_train_images:
        out += describe_stages(cfg, int(num_train_images))
    return out


# =========================================================================== plan
@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One stage-1 training: a Table 2 network with its fusion and SAB sampling.

    ``key`` names the run (run folder, tables): the row name, plus ``|ab`` for the
    ablation branch and ``|<sampling> k<K>`` when the SAB sampling is not the default.
    """

    key: str
    network: str
    fusion: str = "gru"
    sampling: str = "random_torso"
    k_hat: int = 4
    evaluate: bool = True


@dataclasses.dataclass(frozen=True)
class Plan:
    """What the notebook trains at this profile (and what it leaves out).

    Attributes:
        table2_rows: Table 2 rows measured (names of :data:`VARIANTS`).
        fig4: train the ablation branch AB for Fig. 4.
        k_hats: K-hat values of the Fig. 5 sweep (empty: no sweep).
        samplings: strategies of the sweep.
        k_hat, sampling: the SAB default (002: Random-torso, K-hat = 4).
        rerank: evaluate the full model also with k-reciprocal re-ranking (Table 1).
        sd_control: also train stage 2 *without* SD (same extra iterations) to separate
            the SD loss from the longer training.
        reductions: printable lines, one per profile reduction.
    """

    table2_rows: tuple[str, ...]
    fig4: bool
    k_hats: tuple[int, ...]
    samplings: tuple[str, ...]
    k_hat: int = 4
    sampling: str = "random_torso"
    rerank: bool = True
    sd_control: bool = False
    reductions: tuple[str, ...] = ()

    @property
    def needs_stage2(self) -> bool:
        """Stage 2 (+SD) is trained when Table 2 or Table 1 asks for the full model."""
        return FULL in self.table2_rows or self.rerank

    def sweep_points(self) -> list[tuple[str, int]]:
        """(sampling, K-hat) of Fig. 5; Random-torso only for even K-hat in 2..6."""
        pts = []
        for s in self.samplings:
            for k in self.k_hats:
                if s == "random_torso" and (k % 2 or not 2 <= k <= 6):
                    continue
                pts.append((s, int(k)))
        return pts

    def stage1_specs(self) -> list[RunSpec]:
        """Every stage-1 training needed, each once, in a fixed order.

        The ``G+M+SAB+SFB`` network (default fusion and sampling) is trained whenever
        stage 2, Fig. 4 or Fig. 5 needs it; it is evaluated only when Table 2, Fig. 4 or
        Fig. 5 report it (stage 2 alone needs only its weights).
        """
        specs: dict[str, RunSpec] = {}

        def add(network, fusion="gru", sampling=self.sampling, k_hat=self.k_hat, evaluate=True):
            default = fusion == "gru" and sampling == self.sampling and k_hat == self.k_hat
            v = VARIANTS[network]
            key = network + ("" if fusion == "gru" else "|ab") + (
                "" if default or not v.use_sab or fusion != "gru" else f"|{sampling} k{k_hat}")
            old = specs.get(key)
            specs[key] = RunSpec(key, network, fusion, sampling, k_hat,
                                 evaluate or (old.evaluate if old else False))

        for row in self.table2_rows:
            if not variant(row).sd:
                add(row)
        if self.needs_stage2:
            add(STAGE1_FULL, evaluate=STAGE1_FULL in self.table2_rows)
        if self.fig4:
            add(STAGE1_FULL)
            add(STAGE1_FULL, fusion="ab")
        for s, k in self.sweep_points():
            add(STAGE1_FULL, sampling=s, k_hat=k)
        return list(specs.values())

    def describe(self) -> str:
        """Printable summary: rows, figures, trainings and every reduction."""
        lines = [f"Table 2 rows: {', '.join(self.table2_rows) or 'none'}",
                 f"Fig. 4 (SFB vs AB): {'yes' if self.fig4 else 'no'}",
                 f"Fig. 5 (K-hat sweep): {self.sweep_points() or 'no'}",
                 f"SAB default: {self.sampling}, K-hat = {self.k_hat}",
                 f"Table 1 with re-ranking: {'yes' if self.rerank else 'no'}",
                 f"stage-1 trainings: {[s.key for s in self.stage1_specs()]}"
                 + (" + stage 2 (+SD)" if self.needs_stage2 else "")
                 + (" + stage 2 without SD (control)" if self.sd_control else "")]
        lines += [f"plan: {r}" for r in self.reductions]
        return "\n".join(lines)


_PLAN_FIELDS = ("table2_rows", "fig4", "k_hats", "samplings", "k_hat", "sampling", "rerank",
                "sd_control")


def make_plan(cfg: MagnifierNetConfig, **explicit: Any) -> Plan:
    """The profile's :class:`Plan`, with the quick profile's real-data reduction.

    The plan fields come from ``cfg``; at the quick profile on a real dataset the entries
    of ``cfg.real_quick`` (fewer variants: every evaluation on the full Market-1501 query +
    gallery costs minutes on a CPU) replace them, except those the user set explicitly:
    pass the notebook's parameters as ``explicit`` (None means "not set").

    At the paper profile the plan is what 002 publishes on the dataset run
    (``MagnifierNetConfig.PAPER_DATASET_DEFAULTS``, already in ``cfg``). Every reduction
    against that plan is listed in ``plan.reductions``.

    Raises:
        ValueError: unknown Table 2 row or sampling.
    """
    opts = {k: getattr(cfg, k) for k in _PLAN_FIELDS}
    paper = cfg.paper_defaults(cfg.dataset)   # the paper's plan on this dataset
    if cfg.dataset_kind == "real" and cfg.profile == "quick":
        for k, v in dict(cfg.real_quick or {}).items():
            if explicit.get(k) is None and k in opts:
                opts[k] = v
    for k, v in explicit.items():
        if v is not None and k in opts:
            opts[k] = v
    rows = tuple(opts["table2_rows"])
    for r in rows:
        variant(r)
    samplings = tuple(opts["samplings"])
    for s in samplings:
        if s not in SAMPLINGS:
            raise ValueError(f"unknown SAB sampling {s!r}; expected one of {SAMPLINGS}")
    plan = Plan(table2_rows=tuple(r for r in TABLE2_ROWS if r in rows), fig4=bool(opts["fig4"]),
                k_hats=tuple(int(k) for k in opts["k_hats"]), samplings=samplings,
                k_hat=int(opts["k_hat"]), sampling=str(opts["sampling"]),
                rerank=bool(opts["rerank"]), sd_control=bool(opts["sd_control"]))
    reductions = []
    missing = [r for r in paper["table2_rows"] if r not in plan.table2_rows]
    if missing:
        reductions.append(f"Table 2 rows left out at profile {cfg.profile}: {missing}")
    if paper["fig4"] and not plan.fig4:
        reductions.append("Fig. 4 (SFB vs AB) not trained")
    if not paper["k_hats"]:
        pass                                  # 002 has no Fig. 5 on this dataset
    elif not plan.sweep_points():
        reductions.append("Fig. 5 (K-hat sweep) not trained")
    elif set(plan.k_hats) != {2, 4, 6} or set(plan.samplings) != set(SAMPLINGS):
        reductions.append(f"Fig. 5 sweep reduced to K-hat {list(plan.k_hats)} x "
                          f"{list(plan.samplings)} (paper: 2, 4, 6 x both strategies)")
    return dataclasses.replace(plan, reductions=tuple(reductions))


# =========================================================================== training
def _train(cfg, dataset, *, name, kw, which: int, sd: bool = True, init=None,
           evaluate_model=True, rerank=False, verbose=True, seeds: int = 1) -> Run:
    return train_and_evaluate(
        cfg, dataset, name=name, model="magnifiernet",
        losses=variant_losses(kw, cfg, sd_weight(cfg, which, sd=sd)),
        stage=stage(cfg, which, stage_images(cfg, dataset)), model_kw=kw, init=init,
        load_parts=True, random_erasing=float(cfg.random_erasing), input_fn=parts_input,
        eval_input_fn=image_input, rerank=rerank, evaluate_model=evaluate_model,
        verbose=verbose, seeds=seeds)


def train_stage1(cfg: MagnifierNetConfig, dataset: Any, spec: RunSpec, *,
                 verbose: bool = True, seeds: int = 1) -> Run:
    """Stage 1 of one network: every loss except SD (002 §4.1; :func:`stage`).

    BoT recipe: P x K batches, Adam, weight decay 5e-4, random erasing
    ``cfg.random_erasing``; part maps in training (:func:`parts_input`), images only at
    test. A finished run is loaded from the run store.

    Returns:
        :class:`reidnb.core.runs.Run` named ``spec.key`` (not evaluated when
        ``spec.evaluate`` is False: ``run.result`` is None); a
        :class:`~reidnb.core.runs.SeedGroup` of ``seeds`` of them when ``seeds`` > 1 (the
        SAB sampling seed of the model stays ``cfg.seed``).
    """
    kw = model_kw(spec.network, fusion=spec.fusion, sampling=spec.sampling, k_hat=spec.k_hat,
                  seed=cfg.seed, mask_resize=cfg.mask_resize, test_masks=cfg.test_masks)
    return _train(cfg, dataset, name=spec.key, kw=kw, which=1, evaluate_model=spec.evaluate,
                  verbose=verbose, seeds=seeds)


def train_stage2(cfg: MagnifierNetConfig, dataset: Any, init: Run, *, sd: bool = True,
                 rerank: bool = False, k_hat: int = 4, sampling: str = "random_torso",
                 verbose: bool = True) -> Run:
    """Stage 2: the ``G+M+SAB+SFB`` network from stage 1's weights ``init`` with the SD loss
    (gamma = ``cfg.sd_weight``) added (002 §4.1). ``sd=False`` trains the same stage
    without SD (a control for the extra iterations; not in the paper).

    Returns:
        :class:`reidnb.core.runs.Run` named ``G+M+SAB+SFB+SD`` (or :data:`SD_CONTROL`),
        evaluated (plus re-ranking when ``rerank``); when ``init`` is a
        :class:`~reidnb.core.runs.SeedGroup`, one stage 2 per stage-1 seed (a SeedGroup).
    """
    kw = model_kw(STAGE1_FULL, sampling=sampling, k_hat=k_hat, seed=cfg.seed,
                  mask_resize=cfg.mask_resize, test_masks=cfg.test_masks)
    return _train(cfg, dataset, name=FULL if sd else SD_CONTROL, kw=kw, which=2, sd=sd,
                  init=init, rerank=rerank, verbose=verbose)


def train_plan(cfg: MagnifierNetConfig, dataset: Any, plan: Plan, *,
               verbose: bool = True) -> dict[str, Run]:
    """Every run of the plan: each stage-1 spec once, then stage 2 (+SD, with re-ranking
    when ``plan.rerank``) and the stage-2 control without SD when the plan asks for them.

    The headline comparisons (``G+M+SAB+SFB`` vs ``G``; ``+SD`` vs its control) train
    ``cfg.seeds`` seeds of each of their runs (:data:`HEADLINE_RUNS`): stage 2 of seed i
    starts from stage 1 of seed i.

    Returns:
        ``{run key: Run or SeedGroup}``: the :meth:`Plan.stage1_specs` keys, :data:`FULL`,
        :data:`SD_CONTROL`.
    """
    n = int(getattr(cfg, "seeds", 1))
    runs = {s.key: train_stage1(cfg, dataset, s, verbose=verbose,
                                seeds=n if s.key in HEADLINE_RUNS else 1)
            for s in plan.stage1_specs()}
    if plan.needs_stage2:
        runs[FULL] = train_stage2(cfg, dataset, runs[STAGE1_FULL], rerank=plan.rerank,
                                  k_hat=plan.k_hat, sampling=plan.sampling, verbose=verbose)
    if plan.sd_control:
        runs[SD_CONTROL] = train_stage2(cfg, dataset, runs[STAGE1_FULL], sd=False,
                                        k_hat=plan.k_hat, sampling=plan.sampling,
                                        verbose=verbose)
    return runs


def pretrained_status(run: Any) -> str:
    """Whether a run's backbone started from ImageNet weights (printed by the notebook)."""
    model = getattr(run, "model", run)
    loaded = bool(getattr(model, "pretrained_loaded", False))
    bb = getattr(getattr(model, "backbone", None), "name", "backbone")
    return (f"{bb}: ImageNet weights " + ("loaded" if loaded else
            "NOT available -> random initialisation (numbers are from-scratch numbers)"))

"""Experiments of notebook ``03_sal``: self-attention learning (SAL, paper 004).

What this module holds (the notebook only calls it):

* :data:`TABLE1` - the settings of 004 Table 1 as data (model switches + loss terms),
  reconstructed as ``shared/papers/README.md`` ("sal") and the rows of
  ``paper_results.csv`` describe them; setting 4 is flagged unknown and uses the best
  guess documented in :class:`reidnb.models.sal.SAL` (setting 8 without DIL).
* :func:`run_setting` / :func:`run_table1` - the two-stage schedule of 004 §4.1
  (recipes.md §4.3) through :func:`reidnb.papers.common.train_and_evaluate`: stage 1
  softmax (+SAC) with random batches, stage 2 the setting's Eq. 6 terms with P x K
  batches, initialised from stage 1 (``init=``). Settings whose stage-1 recipe is
  identical (same network switches, same stage-1 losses) share one stage-1 run.
* :func:`load_sal_data`, :func:`reductions` - the profile's data subsets and every
  departure from the paper's recipe, printed beside the numbers.
* :func:`table1_frame`, :func:`directions_frame` and the ``*_rows`` functions - measured
  tables next to the published ones, and rows for :func:`reidnb.core.results.write_results`.
* Fig. 3 helpers (:func:`sample_query_images`, :func:`attention_maps`,
  :func:`attention_agreement`).
* Table 4 (CIFAR-100 task extension, 004 §4.5): :func:`prepare_cifar100` (never
  downloads unless asked for at the paper profile), :func:`run_cifar100`,
  :func:`classification_error`, :func:`table4_rows`.

Recipe choices the paper leaves open are those of ``shared/papers/recipes.md`` §4.6
([default] there); the choices made here on top are marked **[here]** in the docstrings.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from .data.datasets import ImageDataset, Record, ReIDDataset
from .papers.common import Run, test_transform, train_and_evaluate
from .losses import SACTerm, Term, cross_entropy, quadruplet_hard_loss, triplet_hard_loss
from .core.results import load_published, result_rows

__all__ = [
    "Setting", "TABLE1", "DIRECTIONS", "QUADRUPLET_MARGINS", "StageRecipe", "stage_recipes",
    "milestones", "select_settings", "loss_terms", "stage1_tag", "SettingRun", "run_setting",
    "run_table1", "load_sal_data", "settings_frame", "reductions",
    "full_model_frame", "fig3_runs", "table1_frame", "directions_frame", "full_model_table",
    "table1_rows", "full_model_rows", "sample_query_images", "attention_maps",
    "attention_agreement", "CIFAR_METHODS", "find_cifar100", "prepare_cifar100",
    "classification_error", "run_cifar100", "table4_rows",
]

#: epsilon_1, epsilon_2 of 004 Eq. 5 (grid-searched in the paper, fixed); epsilon_1 is
#: also the margin of the triplet loss (Eq. 4) of setting 3(T).
QUADRUPLET_MARGINS: tuple[float, float] = (0.5, 0.2)


# =========================================================================== Table 1
@dataclasses.dataclass(frozen=True)
class Setting:
    """One row of 004 Table 1 (Market-1501 ablation).

    Attributes:
        id: the paper's label: ``"1"``, ``"2"``, ``"3"``, ``"3(T)"``, ``"4"`` ... ``"8"``.
        variant: the ``variant`` string of the published rows (paper_results.csv), verbatim.
        softmax: softmax (identity cross-entropy, Eq. 3) in the loss.
        metric: ``"quadruplet"`` (Eq. 5), ``"triplet"`` (Eq. 4) or ``None``.
        dilation: DIL - dilated stage4/stage5 (``SAL(dilation=True)``).
        sac: SAC - self-attention constraint (Eq. 2).
        multi_level: Multi - concatenated stage4/5/6 features (``SAL(multi_level=True)``).
        uncertain: why the composition is a guess ("" when reconstructed from the text).
    """

    id: str
    variant: str
    softmax: bool
    metric: str | None
    dilation: bool
    sac: bool
    multi_level: bool
    uncertain: str = ""

    def __post_init__(self) -> None:
        if self.metric not in (None, "quadruplet", "triplet"):
            raise ValueError(f"setting {self.id}: metric must be None, 'quadruplet' or "
                             f"'triplet', got {self.metric!r}")
        if not (self.softmax or self.metric):
            raise ValueError(f"setting {self.id}: needs softmax or a metric loss")

    @property
    def model_kw(self) -> dict[str, bool]:
        """Options of ``build_model("sal", ...)``; stage6 exists with Multi or SAC (Eq. 2
        is anchored at att_s6)."""
        return {"dilation": self.dilation, "multi_level": self.multi_level,
                "stage6": self.multi_level or self.sac}

    @property
    def components(self) -> str:
        """E.g. ``"softmax+quadruplet+DIL+SAC+multi"`` (the columns of Table 1)."""
        parts = (["softmax"] if self.softmax else []) + ([self.metric] if self.metric else [])
        parts += [n for n, on in (("DIL", self.dilation), ("SAC", self.sac),
                                  ("multi", self.multi_level)) if on]
        return "+".join(parts)


_S4_GUESS = ("UNCERTAIN: Table 1 setting 4's check marks are lost and its only prose is "
             "garbled ('setting(6) and 4(8), changing the way of convolution'); run as "
             "setting 8 without dilated convolution (best guess, reidnb.models.sal docstring)")

#: 004 Table 1 in the paper's row order, id -> :class:`Setting` (reconstruction in
#: shared/papers/README.md "sal" and the row notes of paper_results.csv).
TABLE1: Mapping[str, Setting] = MappingProxyType({s.id: s for s in (
    Setting("1", "setting 1: softmax", True, None, False, False, False),
    Setting("2", "setting 2: quadruplet", False, "quadruplet", False, False, False),
    Setting("3", "setting 3: softmax+quadruplet", True, "quadruplet", False, False, False),
    Setting("3(T)", "setting 3(T): softmax+triplet", True, "triplet", False, False, False),
    Setting("4", "setting 4: components unknown", True, "quadruplet", False, True, True,
            uncertain=_S4_GUESS),
    Setting("5", "setting 5: softmax+quadruplet+DIL+multi", True, "quadruplet", True, False,
            True),
    Setting("6", "setting 6: softmax+DIL+SAC+multi", True, None, True, True, True),
    Setting("7", "setting 7: quadruplet+DIL+SAC+multi", False, "quadruplet", True, True, True),
    Setting("8", "setting 8: softmax+quadruplet+DIL+SAC+multi", True, "quadruplet", True,
            True, True),
)})

#: The comparisons 004 §4.3 draws from Table 1: (name, compared setting, reference setting).
DIRECTIONS: tuple[tuple[str, str, str], ...] = (
    ("SAC vs no SAC", "8", "5"),
    ("quadruplet vs triplet", "3", "3(T)"),
    ("joint vs softmax only", "3", "1"),
    ("joint vs quadruplet only", "3", "2"),
    ("joint vs softmax only (DIL+SAC+multi)", "8", "6"),
    ("joint vs quadruplet only (DIL+SAC+multi)", "8", "7"),
    ("DIL (setting 4 = guess)", "8", "4"),
    ("DIL+SAC+multi vs plain ResNet", "8", "3"),
)


def select_settings(spec: str | Iterable[str] | None) -> list[Setting]:
    """Settings to run, in Table 1's order.

    Args:
        spec: ``None`` or ``"all"`` (every setting), a comma-separated string such as
            ``"1,3,3(T),5,8"``, or an iterable of ids.

    Raises:
        ValueError: an unknown id (the message lists the known ones) or an empty choice.
    """
    if spec is None or (isinstance(spec, str) and spec.strip().lower() == "all"):
        return list(TABLE1.values())
    ids = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else \
        [str(s).strip() for s in spec]
    ids = [i for i in ids if i]
    unknown = [i for i in ids if i not in TABLE1]
    if unknown or not ids:
        raise ValueError(f"unknown Table 1 setting(s) {unknown or spec!r}; expected ids from "
                         f"{list(TABLE1)} (comma-separated) or 'all'")
    return [s for s in TABLE1.values() if s.id in ids]


def _metric_term(metric: str, margins: tuple[float, float]) -> tuple[str, Term]:
    m1, m2 = margins
    if metric == "quadruplet":
        return "quad", Term(quadruplet_hard_loss, margin1=m1, margin2=m2)
    return "trip", Term(triplet_hard_loss, margin=m1)


def loss_terms(setting: Setting, stage: int, *,
               margins: tuple[float, float] = QUADRUPLET_MARGINS
               ) -> dict[str, tuple[float, nn.Module]]:
    """Trainer loss terms ``{name: (weight, term)}`` of one stage, all weights 1 (Eq. 6).

    Stage 1 (004 §4.1): softmax (``"ce"``) + SAC (``"sac"``) where the setting has them.
    A setting without softmax (2, 7) has no identity loss to pre-train with, so its
    stage 1 uses its metric loss instead **[here]** (the paper trains settings 2/7
    somehow without softmax; it does not say how). Stage 2: every loss of the setting
    (Eq. 6 restricted to the setting): ``"ce"``, ``"quad"`` (Eq. 5, margins
    epsilon_1/epsilon_2) or ``"trip"`` (Eq. 4, margin epsilon_1), ``"sac"``.

    Raises:
        ValueError: stage not 1 or 2.
    """
    if stage not in (1, 2):
        raise ValueError(f"stage must be 1 or 2, got {stage!r}")
    terms: dict[str, tuple[float, nn.Module]] = {}
    if setting.softmax:
        terms["ce"] = (1.0, Term(cross_entropy, key="logits"))
    if setting.metric and (stage == 2 or not setting.softmax):
        name, term = _metric_term(setting.metric, margins)
        terms[name] = (1.0, term)
    if setting.sac:
        terms["sac"] = (1.0, SACTerm())
    return terms


def stage1_tag(setting: Setting) -> str:
    """Name of the stage-1 run; equal for settings whose stage-1 recipe is identical.

    E.g. settings 1, 3, 3(T) -> ``"stage1-plain-ce"``; 6 and 8 ->
    ``"stage1-dil-multi-ce+sac"``; 5 -> ``"stage1-dil-multi-ce"``.
    """
    arch = ("dil" if setting.dilation else "plain") + ("-multi" if setting.multi_level else "")
    if setting.sac and not setting.multi_level:
        arch += "-stage6"
    return f"stage1-{arch}-" + "+".join(loss_terms(setting, 1))


@dataclasses.dataclass(frozen=True)
class StageRecipe:
    """Schedule of one training stage.

    Attributes:
        epochs: epochs of the stage. lr: initial learning rate (SGD, momentum 0.9,
        weight decay 5e-4). step: epochs between the x0.1 decays (0 = none).
        batch_size: images per batch. num_instances: K of P x K (``sampler="pk"``).
    """

    epochs: int
    lr: float
    step: int
    batch_size: int
    num_instances: int = 4

    @property
    def milestones(self) -> list[int]:
        return milestones(self.epochs, self.step)


def milestones(epochs: int, step: int) -> list[int]:
    """Epochs at which the lr is multiplied by 0.1 when decayed 'after each ``step``
    epochs' (004 §4.1): ``milestones(150, 50) == [50, 100]``; ``step`` 0 -> ``[]``."""
    if epochs < 0 or step < 0:
        raise ValueError(f"epochs and step must be >= 0, got {epochs} and {step}")
    return list(range(step, epochs, step)) if step else []


def stage_recipes(cfg: Any) -> tuple[StageRecipe, StageRecipe]:
    """Stage 1 and stage 2 of 004 §4.1 from the profile options.

    Paper profile: stage 1 150 epochs ([default] recipes.md §4.6), lr 0.1 x0.1 every 50
    epochs, batch 128 random; stage 2 100 epochs, lr 1e-4 x0.1 every 50, P x K = 18 x 4.
    Options read: ``stage1_epochs, stage1_lr, stage1_step, stage1_batch, stage2_epochs,
    stage2_lr, stage2_step, stage2_p, stage2_k``.
    """
    s1 = StageRecipe(int(cfg.stage1_epochs), float(cfg.stage1_lr), int(cfg.stage1_step),
                     int(cfg.stage1_batch))
    k = int(cfg.stage2_k)
    s2 = StageRecipe(int(cfg.stage2_epochs), float(cfg.stage2_lr), int(cfg.stage2_step),
                     int(cfg.stage2_p) * k, k)
    return s1, s2


@dataclasses.dataclass
class SettingRun:
    """A trained and evaluated Table 1 setting.

    Attributes:
        setting: the :class:`Setting`.
        stage1: the stage-1 :class:`~reidnb.papers.common.Run` (not evaluated).
        stage2: the stage-2 run (evaluated; the setting's result).
        stage1_reused: True when ``stage1`` was trained for an earlier setting.
    """

    setting: Setting
    stage1: Run
    stage2: Run
    stage1_reused: bool = False

    @property
    def seconds(self) -> float:
        """Cost of the setting on its own (s): stage-1 + stage-2 training + evaluation."""
        return self.stage1.train_seconds + self.stage2.seconds

    @property
    def epochs(self) -> int:
        return int((self.stage1.epochs or 0) + (self.stage2.epochs or 0))

    def metrics(self, setting: str = "single-query") -> dict[str, float]:
        """Percent metrics of the stage-2 model (:meth:`Run.metrics`)."""
        return self.stage2.metrics(setting)


def run_setting(cfg: Any, dataset: ReIDDataset, setting: Setting | str, *,
                stage1_cache: dict[str, Run] | None = None, rerank: bool = False,
                verbose: bool = True) -> SettingRun:
    """Train one Table 1 setting with the two-stage schedule and evaluate it.

    Stage 1: ``loss_terms(setting, 1)``, random batches of ``stage1_batch`` (P x K when
    the stage has a metric loss, settings 2/7), lr ``stage1_lr``. Stage 2: initialised
    from stage 1 (``init=``), ``loss_terms(setting, 2)``, P x K batches
    (``stage2_p x stage2_k``), lr ``stage2_lr``; evaluated single-query (+ re-ranking
    when ``rerank``). Both through :func:`reidnb.papers.common.train_and_evaluate`, so
    finished stages are cached on disk.

    Args:
        cfg: the notebook's RunConfig (see :func:`stage_recipes` for the options read).
        dataset: from :func:`reidnb.papers.common.load_data`.
        setting: a :class:`Setting` or its id.
        stage1_cache: ``{stage1_tag: Run}`` shared between calls; a setting whose
            stage-1 recipe was already trained reuses that run (it is never retrained).
        rerank: also evaluate with k-reciprocal re-ranking (Tables 2/3 "+re-rank").

    Returns:
        :class:`SettingRun`.
    """
    if isinstance(setting, str):
        setting = select_settings([setting])[0]
    s1, s2 = stage_recipes(cfg)
    cache = {} if stage1_cache is None else stage1_cache
    tag = stage1_tag(setting)
    reused = tag in cache
    if not reused:
        pk1 = not setting.softmax
        cache[tag] = train_and_evaluate(
            cfg, dataset, name=tag, model="sal", model_kw=setting.model_kw,
            losses=loss_terms(setting, 1), sampler="pk" if pk1 else "random",
            batch_size=s2.batch_size if pk1 else s1.batch_size, num_instances=s2.num_instances,
            lr=s1.lr, epochs=s1.epochs, milestones=s1.milestones, evaluate_model=False,
            verbose=verbose)
    elif verbose:
        print(f"[setting {setting.id}] stage 1 shared: reusing {tag}")
    # stage 2 starts from stage 1's weights: no need to look for ImageNet weights again
    stage2 = train_and_evaluate(
        cfg, dataset, name=f"setting {setting.id}", model="sal",
        model_kw=dict(setting.model_kw, pretrained=False),
        losses=loss_terms(setting, 2), sampler="pk", batch_size=s2.batch_size,
        num_instances=s2.num_instances, lr=s2.lr, epochs=s2.epochs, milestones=s2.milestones,
        init=cache[tag], rerank=rerank, verbose=verbose)
    return SettingRun(setting, cache[tag], stage2, stage1_reused=reused)


def run_table1(cfg: Any, dataset: ReIDDataset, settings: Sequence[Setting], *,
               rerank_ids: Sequence[str] = ("8",), verbose: bool = True
               ) -> dict[str, SettingRun]:
    """:func:`run_setting` for each setting with one shared stage-1 cache.

    Args:
        rerank_ids: settings also evaluated with re-ranking (the full model, setting 8,
            for Tables 2/3).

    Returns:
        ``{setting id: SettingRun}`` in the order given.
    """
    cache: dict[str, Run] = {}
    return {s.id: run_setting(cfg, dataset, s, stage1_cache=cache,
                              rerank=s.id in rerank_ids, verbose=verbose) for s in settings}


def load_sal_data(cfg: Any, *, verbose: bool = True) -> ReIDDataset:
    """The notebook's dataset: :func:`reidnb.papers.common.load_data` plus the profile's
    reductions, each printed and kept in ``dataset.notes``.

    * ``cfg.max_train_pids`` (the user's parameter, any dataset): train on that many random
      identities (applied by ``load_data``).
    * otherwise ``cfg.real_max_train_pids`` on a real dataset, ``cfg.synthetic_max_train_pids``
      on the synthetic set (profile caps; the quick profile trains on 150 of Market-1501's
      751 identities and 150 of the synthetic set's 300).
    * ``cfg.max_test_pids`` (synthetic set only; applied by ``load_data``).
    """
    from .data.datasets import subset_train
    from .papers.common import load_data

    ds = load_data(cfg, verbose=verbose)
    cap = cfg.options.get(f"{cfg.dataset_kind}_max_train_pids")
    if not cfg.max_train_pids and cap and int(cap) < ds.num_train_pids:
        ds = subset_train(ds, int(cap), seed=cfg.seed)
        if verbose:
            print(f"train subset (profile {cfg.profile}, {cfg.dataset_kind} data): "
                  f"{ds.num_train_pids} identities, {len(ds.train)} images; query/gallery "
                  "unchanged")
    return ds


def settings_frame(settings: Sequence[Setting] | None = None) -> pd.DataFrame:
    """The Table 1 reconstruction as a table: setting, the five component columns of the
    paper (softmax, metric loss, DIL, SAC, multi), the stage-1 run each setting uses, the
    loss terms of each stage and whether the composition is a guess."""
    rows = []
    for s in settings if settings is not None else TABLE1.values():
        rows.append(dict(setting=s.id, softmax=s.softmax, metric=s.metric or "",
                         DIL=s.dilation, SAC=s.sac, multi=s.multi_level, stage1=stage1_tag(s),
                         stage1_losses="+".join(loss_terms(s, 1)),
                         stage2_losses="+".join(loss_terms(s, 2)),
                         composition="GUESS (unknown in the paper)" if s.uncertain
                         else "reconstructed"))
    return pd.DataFrame(rows)


def _decay(step: int) -> str:
    return f"x0.1 every {step} epochs" if step else "no lr decay"


def reductions(cfg: Any, dataset: ReIDDataset, settings: Sequence[Setting]) -> list[str]:
    """Every way this run differs from the paper's recipe (004 §4.1, recipes.md §4), one
    sentence each: backbone, image size, stage schedules, P x K, settings left out, train
    and test subsets. Empty at the paper profile on Market-1501 with every setting."""
    s1, s2 = stage_recipes(cfg)
    out = []
    if cfg.backbone != "resnet50":
        out.append(f"backbone {cfg.backbone} (paper: ResNet-50)")
    if (cfg.height, cfg.width) != (256, 128):
        out.append(f"images {cfg.height}x{cfg.width} (paper: 256x128)")
    if cfg.pretrained is not True:
        out.append(f"pretrained={cfg.pretrained!r} (paper: ImageNet weights; 'auto' falls back "
                   "to random init when they cannot be loaded)")
    if (s1.epochs, s1.lr, s1.step, s1.batch_size) != (150, 0.1, 50, 128):
        out.append(f"stage 1: {s1.epochs} epochs, lr {s1.lr:g}, {_decay(s1.step)}, batch "
                   f"{s1.batch_size} (paper: 150 epochs [default], lr 0.1 x0.1 every 50, 128)")
    if (s2.epochs, s2.lr, s2.step, s2.batch_size) != (100, 1e-4, 50, 72):
        out.append(f"stage 2: {s2.epochs} epochs, lr {s2.lr:g}, {_decay(s2.step)}, P x K "
                   f"{s2.batch_size // s2.num_instances} x {s2.num_instances} (paper: 100 epochs "
                   "[default], lr 1e-4 x0.1 every 50, 18 x 4)")
    if cfg.max_iters:
        out.append(f"every stage stops after {cfg.max_iters} iterations")
    skipped = [sid for sid in TABLE1 if sid not in {s.id for s in settings}]
    if skipped:
        out.append(f"Table 1 settings skipped: {', '.join(skipped)}")
    out += [n for n in dataset.notes if "subset" in n]
    return out


def full_model_frame(cfg: Any, run: SettingRun) -> pd.DataFrame:
    """The full model (setting 8) with and without re-ranking beside the published row of
    Table 2 (Market-1501) / Table 3 (DukeMTMC-reID): method, rank1, mAP, paper_rank1,
    paper_mAP (percent). Empty when :func:`full_model_table` is None."""
    which = full_model_table(cfg)
    cols = ["table", "method", "rank1", "mAP", "paper_rank1", "paper_mAP"]
    if which is None:
        return pd.DataFrame(columns=cols)
    table, dataset, _ = which
    pub = load_published("sal", table)
    rows = []
    for method, key in (("Ours", "single-query"), ("Ours+re-rank", "single-query+re-rank")):
        if run.stage2.result is None or key not in run.stage2.result.results:
            continue
        m = run.metrics(key)
        p = pub[(pub["method"] == method) & (pub["dataset"] == dataset)]
        val = dict(zip(p["metric"], p["value"]))
        rows.append(dict(table=f"{table} ({dataset})", method=method, rank1=m["rank1"],
                         mAP=m["mAP"], paper_rank1=val.get("rank1"), paper_mAP=val.get("mAP")))
    return pd.DataFrame(rows, columns=cols)


def fig3_runs(runs: Mapping[str, SettingRun]) -> dict[str, SettingRun]:
    """The two networks of Fig. 3: ``{"without SAC (setting 5)": ..., "with SAC (setting
    8)": ...}``; when 5 or 8 was not run, the closest measured setting with stage6 (so with
    attention maps) and without / with SAC stands in (label says which)."""
    out = {}
    for label, sac, prefs in (("without SAC", False, ("5",)),
                              ("with SAC", True, ("8", "6", "4", "7"))):
        cands = [sid for sid in prefs if sid in runs] + \
            [sid for sid, r in runs.items() if r.setting.sac == sac
             and r.setting.model_kw["stage6"] and sid not in prefs]
        if cands:
            out[f"{label} (setting {cands[0]})"] = runs[cands[0]]
    return out


# --------------------------------------------------------------------------- tables
def _published_table1(dataset: str = "Market-1501") -> dict[tuple[str, str], float]:
    pub = load_published("sal", "Table 1")
    pub = pub[pub["dataset"] == dataset]
    return {(v, m): float(x) for v, m, x in zip(pub["variant"], pub["metric"], pub["value"])}


def table1_frame(runs: Mapping[str, SettingRun]) -> pd.DataFrame:
    """Measured Table 1 beside the published Market-1501 numbers (percent).

    Columns: setting, components, stage1 (run name, ``(shared)`` when reused), rank1,
    mAP, paper_rank1, paper_mAP, minutes (the setting's own training + evaluation time).
    """
    pub = _published_table1()
    rows = []
    for sid, r in runs.items():
        m = r.metrics()
        s = r.setting
        rows.append(dict(
            setting=sid, components=s.components + (" (guess)" if s.uncertain else ""),
            stage1=r.stage1.name + (" (shared)" if r.stage1_reused else ""),
            rank1=m["rank1"], mAP=m["mAP"], paper_rank1=pub.get((s.variant, "rank1")),
            paper_mAP=pub.get((s.variant, "mAP")), minutes=r.seconds / 60))
    return pd.DataFrame(rows)


def directions_frame(runs: Mapping[str, SettingRun]) -> pd.DataFrame:
    """The §4.3 comparisons (:data:`DIRECTIONS`) whose two settings were both measured.

    One row per comparison and metric (rank1, mAP): comparison, compared, reference,
    metric, paper_delta and measured_delta (compared minus reference, percent points),
    agrees (same sign; None when the paper's delta is 0).
    """
    pub = _published_table1()
    rows = []
    for name, a, b in DIRECTIONS:
        if a not in runs or b not in runs:
            continue
        ma, mb = runs[a].metrics(), runs[b].metrics()
        for metric in ("rank1", "mAP"):
            dp = pub[(TABLE1[a].variant, metric)] - pub[(TABLE1[b].variant, metric)]
            dm = ma[metric] - mb[metric]
            rows.append(dict(comparison=name, compared=a, reference=b, metric=metric,
                             paper_delta=dp, measured_delta=dm,
                             agrees=None if dp == 0 else bool(np.sign(dp) == np.sign(dm))))
    return pd.DataFrame(rows, columns=["comparison", "compared", "reference", "metric",
                                       "paper_delta", "measured_delta", "agrees"])


def full_model_table(cfg: Any) -> tuple[str, str, str] | None:
    """Which published table the full model (setting 8) reproduces on ``cfg.dataset``.

    Returns ``("Table 2", "Market-1501", "single-query")`` for Market-1501 and the
    synthetic stand-in, ``("Table 3", "DukeMTMC-reID", "")`` for DukeMTMC-reID, None for
    other datasets (the paper reports neither).
    """
    if cfg.dataset in ("synthetic", "market1501"):
        return "Table 2", "Market-1501", "single-query"
    if cfg.dataset == "dukemtmcreid":
        return "Table 3", "DukeMTMC-reID", ""
    return None


def table1_rows(cfg: Any, runs: Mapping[str, SettingRun], *, note: str = ""
                ) -> list[dict[str, Any]]:
    """Results rows (rank1, mAP) of every measured Table 1 setting.

    Table 1 is a Market-1501 table: on Market-1501 (or the synthetic stand-in) the rows
    match the published ones; on another real dataset they are recorded with
    ``extra=True`` under that dataset (the paper printed no such rows).
    """
    market = cfg.dataset in ("synthetic", "market1501")
    dataset = "Market-1501" if market else cfg.dataset
    rows = []
    for r in runs.values():
        m = r.metrics()
        extra_note = "; ".join(x for x in (r.setting.uncertain, note) if x)
        rows += result_rows(cfg, paper_id="sal", table="Table 1", dataset=dataset,
                            protocol="single-query", method="Ours", variant=r.setting.variant,
                            metrics={"rank1": m["rank1"], "mAP": m["mAP"]}, reranking=False,
                            seconds=r.seconds, epochs=r.epochs, note=extra_note,
                            extra=not market)
    return rows


def full_model_rows(cfg: Any, run: SettingRun, *, note: str = "") -> list[dict[str, Any]]:
    """Table 2 (Market-1501) or Table 3 (DukeMTMC-reID) rows of the full model: ``Ours``
    and, when evaluated with re-ranking, ``Ours+re-rank``. ``[]`` on other datasets."""
    which = full_model_table(cfg)
    if which is None:
        return []
    table, dataset, protocol = which
    rows = []
    for method, key, rr in (("Ours", "single-query", False),
                            ("Ours+re-rank", "single-query+re-rank", True)):
        if run.stage2.result is None or key not in run.stage2.result.results:
            continue
        m = run.metrics(key)
        rows += result_rows(cfg, paper_id="sal", table=table, dataset=dataset,
                            protocol=protocol, method=method, variant=run.setting.variant,
                            metrics={"rank1": m["rank1"], "mAP": m["mAP"]}, reranking=rr,
                            seconds=run.seconds, epochs=run.epochs, note=note)
    return rows


# =========================================================================== Fig. 3
def sample_query_images(cfg: Any, dataset: ReIDDataset, n: int = 4
                        ) -> tuple[torch.Tensor, list[Record]]:
    """``n`` query images of ``n`` different identities, spread evenly over the query list.

    Returns:
        images float32 [n, 3, cfg.height, cfg.width] (test transform: resized,
        ImageNet-normalised) and their records.

    Raises:
        ValueError: fewer than ``n`` query identities.
    """
    firsts: dict[int, int] = {}
    for i, r in enumerate(dataset.query):
        firsts.setdefault(r.pid, i)
    if len(firsts) < n:
        raise ValueError(f"sample_query_images: {dataset.name} at {dataset.root} has "
                         f"{len(firsts)} query identities, fewer than n={n}")
    idx = sorted(firsts.values())
    pick = [idx[int(j)] for j in np.linspace(0, len(idx) - 1, n).round()]
    data = ImageDataset([dataset.query[i] for i in pick], test_transform(cfg))
    images = torch.stack([data[i]["img"] for i in range(n)])
    return images, [dataset.query[i] for i in pick]


@torch.no_grad()
def attention_maps(model: nn.Module, images: torch.Tensor, device: Any = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stage4/5/6 attention maps (004 Eq. 1) of a SAL model, eval mode.

    Args:
        model: a :class:`reidnb.models.sal.SAL` with stage6.
        images: float [N, 3, H, W] (normalised as for the model).
        device: where to run (default: the model's device).

    Returns:
        (a4, a5, a6), each float32 numpy [N, h, w], every map of unit L2 norm (h x w =
        stage5's grid: H/8 x W/8 dilated, H/32 x W/32 otherwise).
    """
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        maps = model(images.to(device), return_attention=True)
    finally:
        model.train(was_training)
    return tuple(a.float().cpu().numpy() for a in maps)  # type: ignore[return-value]


@torch.no_grad()
def attention_agreement(model: nn.Module, cfg: Any, dataset: ReIDDataset, *,
                        max_images: int = 256, batch_size: int = 64) -> dict[str, float]:
    """How much the stage attention maps agree, over the first ``max_images`` queries.

    Fig. 3's claim, measured: with SAC "deep and shallow layers focus on the same
    discriminative region". With unit-norm maps, cos(a_s, a6) = a_s . a6 and Eq. 2 equals
    ``4 - 2 cos(a5, a6) - 2 cos(a4, a6)``, the quantity SAC minimises. Attention maps
    are positive, so their cosine is high even for unrelated maps (a near-uniform map has
    cosine ~1 with any other); the Pearson correlation over the h x w positions (maps
    centred first) says whether the *peaks* coincide.

    Returns:
        means over the images: ``cos_s4_s6``, ``cos_s5_s6``, ``corr_s4_s6``,
        ``corr_s5_s6`` (in [-1, 1]) and ``sac`` (Eq. 2, in [0, 4]).

    Raises:
        ValueError: the dataset has no query images.
    """
    data = ImageDataset(dataset.query[:max_images], test_transform(cfg))
    sums = dict.fromkeys(("cos_s4_s6", "cos_s5_s6", "corr_s4_s6", "corr_s5_s6"), 0.0)
    n = 0
    for start in range(0, len(data), batch_size):
        x = torch.stack([data[i]["img"] for i in range(start, min(len(data), start + batch_size))])
        a4, a5, a6 = (torch.from_numpy(a).flatten(1).double()
                      for a in attention_maps(model, x, cfg.device))   # [B, h*w] each
        c4, c5, c6 = (torch.nn.functional.normalize(a - a.mean(1, keepdim=True), dim=1)
                      for a in (a4, a5, a6))
        sums["cos_s4_s6"] += float((a4 * a6).sum())
        sums["cos_s5_s6"] += float((a5 * a6).sum())
        sums["corr_s4_s6"] += float((c4 * c6).sum())
        sums["corr_s5_s6"] += float((c5 * c6).sum())
        n += len(x)
    if n == 0:
        raise ValueError(f"attention_agreement: {dataset.name} at {dataset.root} has no query "
                         "images")
    out = {k: v / n for k, v in sums.items()}
    out["sac"] = 4 - 2 * out["cos_s4_s6"] - 2 * out["cos_s5_s6"]
    return out


# =========================================================================== Table 4
#: 004 Table 4 rows: method -> (variant, depth, dilation, sac). The "Soft" network is the
#: SAL head on a plain ResNet (no stage6); "Soft+DIL+SAC" adds the dilated stage4/5 and
#: stage6 for att_s6, without multi-level features (Table 4 names only DIL and SAC).
CIFAR_METHODS: Mapping[str, tuple[str, str, bool, bool]] = MappingProxyType({
    "ResNet50 (Soft)": ("ResNet50, softmax", "resnet50", False, False),
    "ResNet50 (Soft+DIL+SAC)": ("ResNet50, softmax + DIL + SAC", "resnet50", True, True),
    "ResNet101 (Soft)": ("ResNet101, softmax", "resnet101", False, False),
})


def find_cifar100(data_root: str | Path | None) -> Path | None:
    """The folder to pass to ``torchvision.datasets.CIFAR100(root=...)``, or None.

    Looks for ``cifar-100-python/{train,test,meta}`` under ``<data_root>`` and
    ``<data_root>/cifar100`` (``data_root`` None: the project's ``data/``).
    """
    from .core.config import PROJECT_ROOT

    base = Path(data_root) if data_root else PROJECT_ROOT / "data"
    for root in (base, base / "cifar100"):
        d = root / "cifar-100-python"
        if all((d / f).is_file() for f in ("train", "test", "meta")):
            return root
    return None


def prepare_cifar100(cfg: Any, download: bool = False) -> tuple[Path | None, str]:
    """Locate CIFAR-100 for Table 4; download it only when asked at the paper profile.

    Returns:
        (root or None, a sentence saying what was found or why Table 4 is not run).
    """
    root = find_cifar100(cfg.data_root)
    if root is not None:
        return root, f"CIFAR-100 found under {root}"
    base = Path(cfg.data_root) if cfg.data_root else None
    where = f"{base or 'data/'} (or its cifar100/ subfolder)"
    if not download:
        return None, (f"Table 4 not run: CIFAR-100 (cifar-100-python/) is not under {where} "
                      "and cifar_download=False")
    if cfg.profile != "paper":
        return None, (f"Table 4 not run: CIFAR-100 is not under {where}; downloads are "
                      f"refused at the {cfg.profile!r} profile (only profile='paper' with "
                      "cifar_download=True downloads)")
    from torchvision.datasets import CIFAR100

    from .core.config import PROJECT_ROOT
    root = (base or PROJECT_ROOT / "data") / "cifar100"
    CIFAR100(str(root), train=True, download=True)
    CIFAR100(str(root), train=False, download=True)
    return root, f"CIFAR-100 downloaded to {root}"


class _DictDataset(torch.utils.data.Dataset):
    """(image, label) dataset -> the Trainer's dict batches ``{"img", "pid"}``."""

    def __init__(self, base, transform, indices: Sequence[int] | None = None):
        self.base, self.transform = base, transform
        self.indices = list(range(len(base))) if indices is None else list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict:
        img, label = self.base[self.indices[i]]
        return {"img": self.transform(img), "pid": torch.tensor(int(label))}


@torch.no_grad()
def classification_error(model: nn.Module, loader: Iterable[Mapping[str, torch.Tensor]],
                         device: Any = None) -> float:
    """Top-1 error rate in percent of ``model.classifier(model(img))`` (eval mode).

    Args:
        model: a network whose eval forward returns features [N, D] and that has a
            ``classifier`` (SAL); batches are dicts with ``img`` and ``pid`` (labels).

    Raises:
        ValueError: an empty loader.
    """
    device = device or next(model.parameters()).device
    model.eval()
    wrong, total = 0, 0
    for batch in loader:
        logits = model.classifier(model(batch["img"].to(device)))
        wrong += int((logits.argmax(1).cpu() != batch["pid"].cpu()).sum())
        total += len(batch["pid"])
    if total == 0:
        raise ValueError("classification_error: the loader yielded no images")
    return 100.0 * wrong / total


def _cifar_transforms(size: int, train: bool):
    from torchvision.transforms import v2 as T

    ops = [T.ToImage(), T.ToDtype(torch.float32, scale=True)]
    if train:
        ops += [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()]
    if size != 32:
        ops.append(T.Resize((size, size), antialias=True))
    ops.append(T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]))
    return T.Compose(ops)


def run_cifar100(cfg: Any, root: str | Path, method: str, *, verbose: bool = True
                 ) -> dict[str, Any]:
    """Train and test one Table 4 network on CIFAR-100 (004 §4.5).

    The network is ``SAL(100, backbone, dilation, multi_level=False, stage6=sac)``,
    ImageNet-initialised per ``cfg.pretrained``; loss softmax (+ SAC, Eq. 2); SGD lr
    ``cifar_lr`` x0.1 every ``cifar_step`` epochs, ``cifar_epochs`` epochs, batches of
    ``cifar_batch``; images resized to ``cifar_size`` pixels **[here]** (the paper gives no
    schedule or size). The backbone is the method's (ResNet-50/101) at the paper profile,
    ``cfg.backbone`` otherwise; ``cifar_train_subset`` / ``cifar_test_subset`` (None = all)
    keep the first images of each split. Checkpoints are cached like
    :func:`reidnb.papers.common.train_and_evaluate` (resumable).

    Returns:
        dict with method, variant, backbone, error_rate (percent), seconds (training +
        test), epochs, n_train, n_test.

    Raises:
        KeyError: unknown method (known: :data:`CIFAR_METHODS`).
    """
    from torch.utils.data import DataLoader
    from torchvision.datasets import CIFAR100

    from .core.engine import Trainer
    from .models import build_model
    from .core.utils import atomic_write_text, seed_everything

    if method not in CIFAR_METHODS:
        raise KeyError(f"unknown CIFAR-100 method {method!r}; known: {list(CIFAR_METHODS)}")
    variant, depth, dilation, sac = CIFAR_METHODS[method]
    backbone = depth if cfg.profile == "paper" else cfg.backbone
    size, bs = int(cfg.cifar_size), int(cfg.cifar_batch)
    epochs, n_tr, n_te = int(cfg.cifar_epochs), cfg.cifar_train_subset, cfg.cifar_test_subset
    train_set = CIFAR100(str(root), train=True, download=False)
    test_set = CIFAR100(str(root), train=False, download=False)
    tr_idx = range(min(len(train_set), n_tr or len(train_set)))
    te_idx = range(min(len(test_set), n_te or len(test_set)))
    g = torch.Generator().manual_seed(cfg.seed)
    train = DataLoader(_DictDataset(train_set, _cifar_transforms(size, True), tr_idx),
                       batch_size=bs, shuffle=True, drop_last=True, num_workers=cfg.workers,
                       generator=g)
    test = DataLoader(_DictDataset(test_set, _cifar_transforms(size, False), te_idx),
                      batch_size=256, num_workers=cfg.workers)
    spec = dict(method=method, backbone=backbone, size=size, bs=bs, epochs=epochs,
                n_tr=len(tr_idx), lr=cfg.cifar_lr, step=cfg.cifar_step, seed=cfg.seed,
                pretrained=cfg.pretrained, max_iters=cfg.max_iters)
    key = hashlib.sha1(json.dumps(spec, sort_keys=True, default=repr).encode()).hexdigest()[:10]
    safe = "".join(c if c.isalnum() else "_" for c in method)
    ckpt = Path(cfg.output_dir) / "checkpoints" / cfg.notebook / f"cifar-{safe}-{key}"
    seed_everything(cfg.seed)
    net = build_model("sal", 100, backbone=backbone, pretrained=cfg.pretrained,
                      dilation=dilation, multi_level=False, stage6=sac)
    losses = {"ce": (1.0, Term(cross_entropy, key="logits"))}
    if sac:
        losses["sac"] = (1.0, SACTerm())
    trainer = Trainer(net, losses, device=cfg.device, lr=float(cfg.cifar_lr),
                      milestones=[m * len(train) for m in milestones(epochs, int(cfg.cifar_step))],
                      checkpoint_dir=ckpt, resume=True, seed=cfg.seed, progress=verbose)
    timing = ckpt / "timing.json"
    before = json.loads(timing.read_text())["train_seconds"] if timing.exists() else 0.0
    t0 = time.perf_counter()
    trainer.fit(train, epochs=epochs, max_iters=cfg.max_iters)
    train_seconds = before + time.perf_counter() - t0
    atomic_write_text(timing, json.dumps({"train_seconds": train_seconds}))
    t0 = time.perf_counter()
    err = classification_error(trainer.model, test, cfg.device)
    out = dict(method=method, variant=variant, backbone=backbone, error_rate=err,
               seconds=train_seconds + time.perf_counter() - t0, epochs=epochs,
               n_train=len(tr_idx), n_test=len(te_idx))
    if verbose:
        print(f"[CIFAR-100 {method}] {backbone} at {size}px, {epochs} epoch(s) on "
              f"{len(tr_idx)} images: error {err:.2f}% on {len(te_idx)} test images")
    return out


def table4_rows(cfg: Any, results: Iterable[Mapping[str, Any]], *, note: str = ""
                ) -> list[dict[str, Any]]:
    """Results rows (``error_rate``) of the measured Table 4 networks.

    CIFAR-100 is a real dataset whatever ``cfg.dataset`` the notebook ran re-ID on, so
    the rows are built from a copy of ``cfg`` with ``dataset="CIFAR-100"`` and the
    CIFAR backbone and image size.
    """
    rows = []
    for r in results:
        opts = dict(cfg.options, backbone=r["backbone"], height=int(cfg.cifar_size),
                    width=int(cfg.cifar_size))
        ccfg = dataclasses.replace(cfg, dataset="CIFAR-100", options=MappingProxyType(opts))
        sub = (f"{r['n_train']} of 50000 training and {r['n_test']} of 10000 test images"
               if r["n_train"] < 50000 or r["n_test"] < 10000 else "")
        rows += result_rows(ccfg, paper_id="sal", table="Table 4", dataset="CIFAR-100",
                            protocol="", method=r["method"], variant=r["variant"],
                            metrics={"error_rate": r["error_rate"]}, reranking=False,
                            seconds=r["seconds"], epochs=r["epochs"],
                            note="; ".join(x for x in (sub, note) if x))
    return rows

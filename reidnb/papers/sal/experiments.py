"""Table 1 of 004 as data, and the two-stage training of each setting (004 §4.1).

* :data:`TABLE1` - the settings of 004 Table 1 (model switches + loss terms), reconstructed
  as ``shared/papers/README.md`` ("sal") and the rows of ``paper_results.csv`` describe
  them; setting 4 is flagged unknown and uses the best guess documented in
  :class:`reidnb.papers.sal.model.SAL` (setting 8 without DIL). :data:`DIRECTIONS` - the
  comparisons §4.3 draws from it.
* :func:`stages` - the two :class:`~reidnb.core.stages.Stage` of a setting from the config
  (recipes.md §4.3); :func:`run_setting` / :func:`run_table1` train them through
  :func:`reidnb.papers.common.train_and_evaluate`: stage 1 softmax (+SAC) with random
  batches, stage 2 the setting's Eq. 6 terms with P x K batches, initialised from stage 1.
  Settings whose stage-1 recipe is identical share one stage-1 run.
* :func:`load_sal_data`, :func:`run_note` - the profile's data subsets and the note
  recorded with every result row.

Recipe choices the paper leaves open are those of ``shared/papers/recipes.md`` §4.6
([default] there); the choices made here on top are marked **[here]**.
"""
from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd
from torch import nn

from ...core.runs import Run
from ...core.stages import Stage, step_milestones
from ...data.datasets import ReIDDataset, subset_train
from ...losses import SACTerm, Term, cross_entropy, quadruplet_hard_loss, triplet_hard_loss
from .. import common
from ..common import epoch_images, train_and_evaluate
from .config import SALConfig

__all__ = [
    "Setting", "TABLE1", "DIRECTIONS", "QUADRUPLET_MARGINS", "select_settings", "loss_terms",
    "stage1_tag", "epoch_images", "stages", "SettingRun", "run_setting", "run_table1",
    "load_sal_data", "run_note", "settings_frame", "fig3_runs", "describe_recipe",
]

#: epsilon_1, epsilon_2 of 004 Eq. 5 (grid-searched in the paper, fixed); epsilon_1 is
#: also the margin of the triplet loss (Eq. 4) of setting 3(T).
QUADRUPLET_MARGINS: tuple[float, float] = (0.5, 0.2)


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

    Raises:
        ValueError: an unknown metric, or neither softmax nor a metric loss.
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
             "setting 8 without dilated convolution (best guess, reidnb.papers.sal.model "
             "docstring)")

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


# --------------------------------------------------------------------------- stages
def stages(cfg: Any, dataset: ReIDDataset, setting: Setting) -> tuple[Stage, Stage]:
    """Stage 1 and stage 2 of one Table 1 setting (004 §4.1, recipes.md §4.3).

    Paper profile: stage 1 150 epochs ([default] recipes.md §4.6), SGD lr 0.1 x0.1 every
    50 epochs, random batches of 128; stage 2 100 epochs, lr 1e-4 x0.1 every 50, P x K =
    18 x 4. A setting without softmax (2, 7) trains stage 1 on its metric loss, so with
    stage 2's P x K batches **[here]**. Fields read: ``stage1_epochs, stage1_lr,
    stage1_step, stage1_batch, stage2_epochs, stage2_lr, stage2_step, stage2_p, stage2_k``
    and ``max_iters`` (the smoke cap).

    Raises:
        ValueError: a stage with fewer images than one batch, bad fields (``Stage``).
    """
    k = int(cfg.stage2_k)
    pk_batch = int(cfg.stage2_p) * k
    s1_pk = not setting.softmax
    s1_batch = pk_batch if s1_pk else int(cfg.stage1_batch)
    s1_sampler = "pk" if s1_pk else "random"
    s1 = Stage.from_epochs(
        "stage 1", int(cfg.stage1_epochs), epoch_images(dataset, s1_sampler, s1_batch, k),
        s1_batch, float(cfg.stage1_lr), max_iters=cfg.max_iters,
        milestones=step_milestones(int(cfg.stage1_epochs), int(cfg.stage1_step)),
        sampler=s1_sampler, num_instances=k, **_augment(cfg))
    s2 = Stage.from_epochs(
        "stage 2", int(cfg.stage2_epochs), epoch_images(dataset, "pk", pk_batch, k), pk_batch,
        float(cfg.stage2_lr), max_iters=cfg.max_iters,
        milestones=step_milestones(int(cfg.stage2_epochs), int(cfg.stage2_step)),
        sampler="pk", num_instances=k, **_augment(cfg))
    return s1, s2


def _augment(cfg: Any) -> dict[str, Any]:
    """The re-ID train loader's flip and pad + crop, as :class:`Stage` fields."""
    return {"flip_p": float(cfg.flip_p), "pad": int(cfg.pad)}


def describe_recipe(cfg: Any, dataset: ReIDDataset | None = None) -> list[str]:
    """The recipe this config trains, printable lines: the re-ID train loader's augmentation
    (the ``flip_p`` / ``pad`` :func:`stages` gives every stage, which the loader is built
    from; no random erasing), the CIFAR-100 schedule of Table 4 (invented: 004 gives none)
    and, with ``dataset``, both stages of the full model (setting 8). A value that differs
    from the paper profile's ends in ``[paper: ...]`` (004 names no augmentation: recipes.md
    §4.6's default).
    """
    paper = SALConfig.paper_defaults()
    have = Stage("probe", 1, 1, 1.0, 1, **_augment(cfg)).augmentation()
    want = Stage("probe", 1, 1, 1.0, 1, flip_p=paper["flip_p"], pad=paper["pad"]).augmentation()
    aug = [a if a == b else f"{a} [paper profile: {b}]" for a, b in zip(have, want)]
    out = ["augmentation (re-ID train loader): " + "; ".join(aug + ["no random erasing"]),
           f"CIFAR-100 (Table 4, schedule invented here: 004 gives none): {cfg.cifar_epochs} "
           f"epoch(s), SGD lr {cfg.cifar_lr:g}"
           + (f" x0.1 every {cfg.cifar_step} epochs" if cfg.cifar_step else " constant")
           + f", batch {cfg.cifar_batch}, {cfg.cifar_size} px, pad 4 + random 32 crop + flip; "
           "every row classifies from stage5 (SAC row: stage6 only for att_s6)"]
    if dataset is not None:
        out += [s.describe() for s in stages(cfg, dataset, TABLE1["8"])]
    return out


#: Settings of the headline comparisons (8 vs 5: SAC; 3 vs 1: the metric loss), trained
#: with ``cfg.seeds`` stage-2 seeds.
HEADLINE_SETTINGS: tuple[str, ...] = ("1", "3", "5", "8")


# --------------------------------------------------------------------------- training
@dataclasses.dataclass
class SettingRun:
    """A trained and evaluated Table 1 setting.

    Attributes:
        setting: the :class:`Setting`.
        stage1: the stage-1 :class:`~reidnb.core.runs.Run` (not evaluated).
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
        """Epochs of both stages."""
        return int((self.stage1.epochs or 0) + (self.stage2.epochs or 0))

    def metrics(self, setting: str = "single-query") -> dict[str, float]:
        """Percent metrics of the stage-2 model (:meth:`Run.metrics`; KeyError when the
        evaluation setting was not run)."""
        return self.stage2.metrics(setting)


def run_setting(cfg: Any, dataset: ReIDDataset, setting: Setting | str, *,
                stage1_cache: dict[str, Run] | None = None, rerank: bool = False,
                verbose: bool = True, seeds: int = 1) -> SettingRun:
    """Train one Table 1 setting with the two-stage schedule and evaluate it.

    Stage 1 (:func:`stages`): ``loss_terms(setting, 1)``, not evaluated. Stage 2:
    initialised from stage 1 (``init=``), ``loss_terms(setting, 2)``, P x K batches;
    evaluated single-query (+ re-ranking when ``rerank``). Both through
    :func:`reidnb.papers.common.train_and_evaluate`, so finished stages load from the run
    store.

    Args:
        cfg: the notebook's :class:`~reidnb.papers.sal.config.SALConfig`.
        dataset: from :func:`load_sal_data`.
        setting: a :class:`Setting` or its id.
        stage1_cache: ``{stage1_tag: Run}`` shared between calls; a setting whose
            stage-1 recipe was already trained reuses that run (it is never retrained).
        rerank: also evaluate with k-reciprocal re-ranking (Tables 2/3 "+re-rank").
        seeds: stage-2 seeds (``cfg.seed``, ``cfg.seed + 1``, ...) from the one shared
            stage-1 network; ``SettingRun.stage2`` is then a
            :class:`~reidnb.core.runs.SeedGroup` (metrics averaged over the seeds).

    Returns:
        :class:`SettingRun`.
    """
    if isinstance(setting, str):
        setting = select_settings([setting])[0]
    s1, s2 = stages(cfg, dataset, setting)
    cache = {} if stage1_cache is None else stage1_cache
    tag = stage1_tag(setting)
    reused = tag in cache
    if not reused:
        cache[tag] = train_and_evaluate(
            cfg, dataset, name=tag, model="sal", model_kw=setting.model_kw,
            losses=loss_terms(setting, 1), stage=s1, evaluate_model=False, verbose=verbose)
    elif verbose:
        print(f"[setting {setting.id}] stage 1 shared: reusing {tag}")
    # stage 2 starts from stage 1's weights: no need to look for ImageNet weights again
    stage2 = train_and_evaluate(
        cfg, dataset, name=f"setting {setting.id}", model="sal",
        model_kw=dict(setting.model_kw, pretrained=False), losses=loss_terms(setting, 2),
        stage=s2, init=cache[tag], rerank=rerank, verbose=verbose, seeds=seeds)
    return SettingRun(setting, cache[tag], stage2, stage1_reused=reused)


def run_table1(cfg: Any, dataset: ReIDDataset, settings: Sequence[Setting], *,
               rerank_ids: Sequence[str] = ("8",), verbose: bool = True
               ) -> dict[str, SettingRun]:
    """:func:`run_setting` for each setting with one shared stage-1 cache.

    Args:
        rerank_ids: settings also evaluated with re-ranking (the full model, setting 8,
            for Tables 2/3).

    The settings of the headline comparisons (:data:`HEADLINE_SETTINGS`: 8 vs 5, 3 vs 1)
    train ``cfg.seeds`` stage-2 seeds each.

    Returns:
        ``{setting id: SettingRun}`` in the order given.
    """
    cache: dict[str, Run] = {}
    n = int(getattr(cfg, "seeds", 1))
    return {s.id: run_setting(cfg, dataset, s, stage1_cache=cache,
                              rerank=s.id in rerank_ids, verbose=verbose,
                              seeds=n if s.id in HEADLINE_SETTINGS else 1) for s in settings}


# --------------------------------------------------------------------------- data, notes
def load_sal_data(cfg: Any, *, verbose: bool = True) -> ReIDDataset:
    """The notebook's dataset: :func:`reidnb.papers.common.load_data` plus the profile's
    train-identity cap, printed and kept in ``dataset.notes``.

    * ``cfg.max_train_pids`` (the user's parameter, any dataset): train on that many random
      identities (applied by ``load_data``).
    * otherwise ``cfg.real_max_train_pids`` on a real dataset, ``cfg.synthetic_max_train_pids``
      on the synthetic set (profile caps; the quick profile trains on 150 of Market-1501's
      751 identities and 150 of the synthetic set's 300).
    * ``cfg.max_test_pids`` (synthetic set only; applied by ``load_data``).
    """
    ds = common.load_data(cfg, verbose=verbose)
    cap = cfg.real_max_train_pids if cfg.dataset_kind == "real" else cfg.synthetic_max_train_pids
    if not cfg.max_train_pids and cap and int(cap) < ds.num_train_pids:
        ds = subset_train(ds, int(cap), seed=cfg.seed)
        if verbose:
            print(f"train subset (profile {cfg.profile}, {cfg.dataset_kind} data): "
                  f"{ds.num_train_pids} identities, {len(ds.train)} images; query/gallery "
                  "unchanged")
    return ds


#: Fields that do not shape the re-ID runs (Table 4, Fig. 3, records, which dataset).
_NOT_REID = ("dataset", "synthetic_size", "batch_size", "attention_images", "cifar_methods",
             "cifar_epochs", "cifar_lr", "cifar_step", "cifar_batch", "cifar_size",
             "cifar_train_subset", "cifar_test_subset", "cifar_download")


def run_note(cfg: Any, dataset: ReIDDataset) -> str:
    """The ``note`` of the re-ID result rows: every deviation from the paper's recipe
    that shapes the Table 1-3 runs (``cfg.deviations()``, ``name=value (paper: value)``)
    and the dataset's subset notes, ``"; "``-joined. Empty at the paper profile on the
    full dataset."""
    parts = [f"{d.name}={d.value!r} (paper: {d.paper!r})"
             for d in cfg.deviations(ignore=_NOT_REID)]
    return "; ".join(parts + [n for n in dataset.notes if "subset" in n])


# --------------------------------------------------------------------------- views
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

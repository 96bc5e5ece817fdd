"""One uniform entry per paper for the command line and ``reidnb.load_run``.

Each paper notebook trains its variants through its paper package (``train_variant``,
``train_stage1/2``, ``run_setting``, ``train_plan``). An :class:`Entry` names those
variants (with the published table row each one feeds) and trains one of them by calling
**the same functions with the same arguments as the notebook cell** (same data loading,
stages, names, model options and losses), so the run key (:func:`reidnb.papers.common.
training_key`) is the notebook's and a run trained here is a cache hit there, and the
reverse. Variants that start from a stage-1 run (MaskReID stage 2, MagnifierNet +SD and its
control, every SAL setting) train or load their prerequisite first, as the notebook does.

``cache_only()`` turns every training into a look-up: a run that is not finished in the
store raises :class:`FileNotFoundError` instead of training (``reidnb.load_run``).
"""
from __future__ import annotations

import contextlib
import dataclasses
import importlib
from typing import Any, Callable, Iterator, Mapping

from ..core.runs import Run
from . import PAPERS, common

__all__ = ["Entry", "ENTRIES", "entry", "list_variants", "train_one", "cache_only",
           "flatten_runs"]


def _pkg(paper: str):
    return importlib.import_module(f"{__package__}.{paper}")


def _row(cells) -> str:
    """Printable published rows of a ``PUBLISHED`` entry: 'paper table: method / variant'."""
    return "; ".join(f"{c.paper_id} {c.table}: {c.method} / {c.variant}" for c in cells)


@dataclasses.dataclass(frozen=True)
class Entry:
    """A paper's variants for the CLI.

    Attributes:
        paper: package name (``bcloss``, ``maskreid``, ``sal``, ``magnifiernet``).
        variants: ``variants(cfg) -> {variant: table row}`` (every variant the notebook can
            run at ``cfg``'s profile; the paper profile's is the complete list).
        train: ``train(cfg, variant, params, verbose) -> Run | list[Run] | object`` (a SAL
            setting returns its ``SettingRun``, bcloss a list of seeds).
    """

    paper: str
    variants: Callable[[Any], dict[str, str]]
    train: Callable[..., Any]

    @property
    def notebook(self) -> str:
        """The paper's notebook id, e.g. ``"01_bcloss"``."""
        return PAPERS[self.paper]

    def config(self, profile: str, params: Mapping[str, Any]):
        """``paper.Config.make(profile, **params)``: the notebook's validation (unknown
        names and wrong types refused, :meth:`reidnb.core.config.RunConfig.make`)."""
        return _pkg(self.paper).Config.make(profile, **dict(params))


# ------------------------------------------------------------------------------ bcloss
def _bcloss_variants(cfg) -> dict[str, str]:
    p = _pkg("bcloss")
    out = {v: _row(p.PUBLISHED[v]) for v in p.VARIANTS}
    for t in cfg.taus or ():
        out[f"joint-tau{float(t):g}"] = "tau sweep of the joint loss (not in 001; recipes.md §2.5)"
    return out


def _bcloss_train(cfg, variant: str, params: Mapping[str, Any], verbose: bool):
    p = _pkg("bcloss")
    ds = common.load_data(cfg, verbose=verbose)
    stage = p.main_stage(cfg, len(ds.train))                 # notebook: "schedule" cell
    if variant in p.VARIANTS:
        return p.train_variant(cfg, ds, variant, runs=cfg.runs, stage=stage, verbose=verbose)
    tau = float(variant[len("joint-tau"):])
    sweep = p.sweep_stage(cfg, len(ds.train))
    if sweep == stage and tau == float(cfg.tau):             # the notebook reuses runs_joint
        return p.train_variant(cfg, ds, "joint", runs=cfg.runs, stage=stage, verbose=verbose)
    return p.train_variant(cfg, ds, "joint", runs=cfg.runs, tau=tau, stage=sweep,
                           verbose=verbose)                  # as paper.tau_sweep


# ---------------------------------------------------------------------------- maskreid
def _maskreid_variants(cfg) -> dict[str, str]:
    p = _pkg("maskreid")
    return {v: _row(p.PUBLISHED.get(v, ())) or "not a published row" for v in p.VARIANTS}


def _maskreid_train(cfg, variant: str, params: Mapping[str, Any], verbose: bool):
    p = _pkg("maskreid")
    v = p.VARIANTS[variant]
    plan = p.make_plan(cfg)
    ds, mask_info, use_mq = p.load_target(cfg, plan, verbose=verbose)
    joint, small_runs, _ = p.run_small_scale(cfg, ds, mask_info, ("MaskReID", *plan.ablation),
                                             verbose=verbose)
    small = joint is not None
    if v.stage == 1:
        if small and v.arch in small_runs:
            return small_runs[v.arch]
        if v.arch == "MaskReID":
            return p.train_stage1(cfg, ds, multi_query=use_mq, evaluate_model=bool(plan.ablation),
                                  verbose=verbose)
        return p.train_stage1(cfg, ds, arch=v.arch, verbose=verbose)
    s1 = small_runs["MaskReID"] if small else p.train_stage1(
        cfg, ds, multi_query=use_mq, evaluate_model=bool(plan.ablation), verbose=verbose)
    if variant in p.LOSSES:                                  # the loss comparison cell
        return p.train_stage2(cfg, ds, s1, loss=variant, multi_query=use_mq,
                              rerank=plan.rerank and variant == "ranking", verbose=verbose)
    if variant == p.ranking_name("maskreid_icme"):           # = the "ranking" loss run
        return p.train_stage2(cfg, ds, s1, loss="ranking", multi_query=use_mq,
                              rerank=plan.rerank, verbose=verbose)
    if variant == p.ranking_name(v.version):                 # the long version's default run
        return p.train_stage2(cfg, ds, s1, loss="ranking", version=v.version,
                              multi_query=use_mq, rerank=plan.rerank, verbose=verbose)
    return p.train_stage2(cfg, ds, s1, loss="ranking", version=v.version, lam=v.lam,
                          alpha=v.alpha, verbose=verbose)    # a lambda x alpha grid cell


# --------------------------------------------------------------------------------- sal
def _sal_variants(cfg) -> dict[str, str]:
    p = _pkg("sal")
    out = {sid: _row(p.PUBLISHED[sid]) for sid in p.TABLE1}
    out.update({f"cifar:{m}": _row(p.PUBLISHED[m]) for m in p.CIFAR_METHODS})
    return out


def _sal_train(cfg, variant: str, params: Mapping[str, Any], verbose: bool):
    p = _pkg("sal")
    if variant.startswith("cifar:"):
        root, msg = p.prepare_cifar100(cfg, download=cfg.cifar_download)
        if not root:
            raise FileNotFoundError(f"SAL Table 4 {variant!r}: {msg}")
        return p.run_cifar100(cfg, root, variant[len("cifar:"):], verbose=verbose)
    ds = p.load_sal_data(cfg, verbose=verbose)
    return p.run_setting(cfg, ds, variant, rerank=variant == p.FULL_MODEL, verbose=verbose)


# ------------------------------------------------------------------------ magnifiernet
_MN_EXPLICIT = ("table2_rows", "fig4", "k_hats")


def _mn_full_plan(cfg, params: Mapping[str, Any]):
    """The notebook's plan, and the same plan with every Table 2 row and figure added (the
    keys of runs outside this profile's plan)."""
    p = _pkg("magnifiernet")
    plan = p.make_plan(cfg, **{k: params.get(k) for k in _MN_EXPLICIT})
    return plan, dataclasses.replace(plan, table2_rows=tuple(p.TABLE2_ROWS), fig4=True,
                                     k_hats=(2, 4, 6), samplings=tuple(p.SAMPLINGS))


def _mn_variants(cfg) -> dict[str, str]:
    p = _pkg("magnifiernet")
    _, full = _mn_full_plan(cfg, {})
    out = {s.key: _row(p.PUBLISHED.get(s.key, ())) for s in full.stage1_specs()}
    for key, spec in ((s.key, s) for s in full.stage1_specs()):
        if not out[key]:
            out[key] = ("002 Fig. 4: ablation branch AB instead of SFB" if spec.fusion != "gru"
                        else f"002 Fig. 5: SAB {spec.sampling}, K-hat {spec.k_hat}")
    out[p.FULL] = _row(p.PUBLISHED[p.FULL])
    out[p.SD_CONTROL] = _row(p.PUBLISHED[p.SD_CONTROL])
    return out


def _mn_train(cfg, variant: str, params: Mapping[str, Any], verbose: bool):
    p = _pkg("magnifiernet")
    ds = common.load_data(cfg, verbose=verbose)
    ds, _ = p.prepare_parts(cfg, ds)
    plan, full = _mn_full_plan(cfg, params)
    mine = {s.key: s for s in plan.stage1_specs()}
    specs = {s.key: s for s in full.stage1_specs()}
    if variant in (p.FULL, p.SD_CONTROL):
        s1 = p.train_stage1(cfg, ds, mine.get(p.STAGE1_FULL, specs[p.STAGE1_FULL]),
                            verbose=verbose)
        if variant == p.FULL:
            return p.train_stage2(cfg, ds, s1, rerank=plan.rerank, k_hat=plan.k_hat,
                                  sampling=plan.sampling, verbose=verbose)
        return p.train_stage2(cfg, ds, s1, sd=False, k_hat=plan.k_hat, sampling=plan.sampling,
                              verbose=verbose)
    return p.train_stage1(cfg, ds, mine.get(variant, specs[variant]), verbose=verbose)


#: paper package -> :class:`Entry`, in notebook order.
ENTRIES: dict[str, Entry] = {
    "bcloss": Entry("bcloss", _bcloss_variants, _bcloss_train),
    "maskreid": Entry("maskreid", _maskreid_variants, _maskreid_train),
    "sal": Entry("sal", _sal_variants, _sal_train),
    "magnifiernet": Entry("magnifiernet", _mn_variants, _mn_train),
}


def entry(paper: str) -> Entry:
    """The :class:`Entry` of ``paper`` (a package name or its notebook id, ``"02_maskreid"``).

    Raises:
        KeyError: unknown paper (lists the known ones).
    """
    by_nb = {nb: name for name, nb in PAPERS.items()}
    name = by_nb.get(paper, paper)
    if name not in ENTRIES:
        raise KeyError(f"unknown paper {paper!r}; expected one of {list(ENTRIES)} "
                       f"(or a notebook id {list(by_nb)})")
    return ENTRIES[name]


def list_variants(paper: str, cfg) -> dict[str, str]:
    """``{variant: published table row}`` of ``paper`` at ``cfg``'s profile."""
    return entry(paper).variants(cfg)


def train_one(paper: str, cfg, variant: str, *, params: Mapping[str, Any] | None = None,
              verbose: bool = True) -> Any:
    """Train (or load from the run store) one variant exactly as the paper's notebook does.

    Args:
        paper: package name; cfg: its ``Config.make(profile, **params)``.
        variant: a key of :func:`list_variants`.
        params: the raw notebook parameters (MagnifierNet's plan reads ``table2_rows``,
            ``fig4``, ``k_hats`` from them, as its notebook does).

    Returns:
        What the notebook's call returns: a :class:`~reidnb.core.runs.Run`, a list of Runs
        (bcloss: one per seed), a SAL ``SettingRun`` (stage 1 + stage 2) or ``CifarRun``.

    Raises:
        KeyError: unknown variant (lists the known ones); the paper's own errors.
    """
    e = entry(paper)
    known = e.variants(cfg)
    if variant not in known:
        raise KeyError(f"{e.paper}: unknown variant {variant!r}; expected one of {list(known)} "
                       "(python -m reidnb train --list)")
    return e.train(cfg, variant, dict(params or {}), verbose)


@contextlib.contextmanager
def cache_only() -> Iterator[None]:
    """Inside this block a run that is not finished in the store raises FileNotFoundError
    (naming its folder) instead of being trained."""
    old = common.CACHE_ONLY["on"]
    common.CACHE_ONLY["on"] = True
    try:
        yield
    finally:
        common.CACHE_ONLY["on"] = old


def flatten_runs(result: Any) -> list[Run]:
    """The :class:`Run` objects in what :func:`train_one` returned (a Run, a list, a SAL
    ``SettingRun``: stage 1 then stage 2); others (``CifarRun``) give []."""
    if isinstance(result, Run):
        return [result]
    if isinstance(result, (list, tuple)):
        return [r for x in result for r in flatten_runs(x)]
    if hasattr(result, "stage1") and hasattr(result, "stage2"):
        return [result.stage1, result.stage2]
    return []

"""Run configuration: one frozen dataclass per notebook whose defaults ARE the paper's recipe.

Every notebook opens with a papermill ``parameters`` cell of flat literals; ``None`` means
"take it from the profile". The next cell calls :func:`make_config` (or ``Config.make``),
which starts from the config class's defaults (the paper profile, i.e. the paper's own
settings) and merges, in this order:

1. :data:`COMMON_PROFILES` ``[profile]`` (smoke / quick: synthetic data, ResNet-18, ...),
2. the class's own ``PROFILES[profile]`` (small literal overrides, each with its measured
   reason in ``REASONS``),
3. every parameter the user set explicitly (an explicit value always wins).

The result is frozen, printed, and saved as JSON beside the results. Because the class
defaults are the paper's recipe, :meth:`RunConfig.deviations` can *compute* every way a
run differs from the paper: it is never a hand-kept list.

Profiles (DESIGN.md "Profiles"): ``smoke`` (CI, seconds), ``quick`` (the embedded default,
a 2-core CPU), ``paper`` (the papers' own settings on the real datasets, for a GPU).

A paper's config lives in ``reidnb/papers/<paper>/config.py``::

    @dataclasses.dataclass(frozen=True)
    class BCLossConfig(RunConfig):
        notebook: str = "01_bcloss"
        batch_size: int = 16          # 001 §3.2
        dropout: float = 0.9          # 001 §3.2
        PROFILES: ClassVar[dict] = {"quick": dict(dropout=0.5)}
        REASONS: ClassVar[dict] = {"dropout": "from random init 0.9 left the softmax at chance"}
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Mapping, NamedTuple

from .utils import atomic_write_text, resolve_device

__all__ = ["PROJECT_ROOT", "SEEDS_REASON", "COMMON_PROFILES", "PROFILE_NAMES", "RUNTIME_FIELDS", "RunConfig",
           "Deviation", "DRY_RUN_FIELDS", "DataConfig", "SummaryConfig", "make_config",
           "config_class", "registered_configs", "pk_for_batch"]

#: The repository root (this file is reidnb/core/config.py); default home of data/ and outputs/.
PROJECT_ROOT = Path(__file__).resolve().parents[2]

PROFILE_NAMES: tuple[str, ...] = ("smoke", "quick", "paper")

#: Overrides shared by every notebook at the small profiles (the paper profile is the class
#: defaults themselves). smoke: every code path in seconds; quick: a 2-core CPU.
COMMON_PROFILES: dict[str, dict[str, Any]] = {
    "smoke": dict(dataset="synthetic", synthetic_size="smoke", backbone="resnet18",
                  pretrained=False, height=64, width=32, epochs=1, max_iters=4,
                  batch_size=16, workers=0, max_train_pids=None, max_test_pids=None,
                  eval_flip=False, memory_cache=True),
    "quick": dict(dataset="synthetic", synthetic_size="quick", backbone="resnet18",
                  pretrained="auto", height=128, width=64, epochs=6, max_iters=None,
                  batch_size=32, workers=2, max_train_pids=None, max_test_pids=150,
                  eval_flip=False, memory_cache=True),
    "paper": {},
}

#: Why the quick profile trains its headline comparisons with ``seeds=2``.
SEEDS_REASON = ("two seeds of each variant of the headline comparison, so its interval covers "
                "seed-to-seed spread as well as the choice of queries (the paper reports one "
                "run)")

#: Fields that say where and how a run happens, not what it trains: never deviations.
RUNTIME_FIELDS: tuple[str, ...] = ("notebook", "profile", "data_root", "device", "seed",
                                   "output_dir", "workers", "memory_cache")

#: Parameters that turn a paper-profile run into a dry run (``-p max_iters=2 -p
#: batch_size=8``), and the batch-scheme fields that follow ``batch_size``.
DRY_RUN_FIELDS: tuple[str, ...] = ("max_iters", "batch_size")

_REGISTRY: dict[str, type["RunConfig"]] = {}


class Deviation(NamedTuple):
    """One setting of a run that differs from the paper's recipe.

    Attributes: ``name`` (config field), ``value`` (this run's), ``paper`` (the config
    class's default = the paper's recipe), ``reason`` (the measured reason, from the class's
    ``REASONS``; "" when none is recorded, e.g. a value set explicitly by the user).
    """

    name: str
    value: Any
    paper: Any
    reason: str

    def __str__(self) -> str:
        text = f"{self.name} = {self.value!r} (paper: {self.paper!r})"
        return f"{text}: {self.reason}" if self.reason else text


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """The resolved, immutable settings of one notebook run; defaults = the paper profile.

    Attributes:
        notebook: notebook id, e.g. ``"01_bcloss"`` (names results/<notebook>.csv).
        profile: ``"smoke"``, ``"quick"`` or ``"paper"``.
        dataset: dataset name for :func:`reidnb.data.datasets.load_dataset`.
        data_root: folder holding the dataset (``None``: ``data/`` of the project).
        device: resolved torch device string (``"cpu"``, ``"cuda"``).
        seed: global random seed.
        output_dir: folder for ``results/``, ``figures/``, ``checkpoints/`` (absolute).
        backbone, pretrained: network trunk and ImageNet initialisation (True, False or
            ``"auto"``: try once, fall back to random init offline).
        height, width: input size in pixels.
        epochs, max_iters: training length (epochs; a cap in optimiser steps).
        batch_size: images per optimiser step. workers: DataLoader worker processes.
        max_train_pids, max_test_pids: identity subsets (None: all).
        eval_flip: flip-averaged test features. synthetic_size: size of the synthetic set.
        memory_cache: decode and resize every image once into memory and augment whole
            batches (:mod:`reidnb.data.memory`; smoke and quick: the same recipe, about 1 ms
            less per 64x32 image) instead of decoding each item per epoch with ``workers``.

    Class attributes:
        PROFILES: ``{"smoke": {...}, "quick": {...}}`` overrides of this paper's fields.
        REASONS: field -> measured reason of a profile's deviation from the paper.
    """

    notebook: str = "run"
    profile: str = "paper"
    dataset: str = "market1501"
    data_root: str | None = None
    device: str = "auto"
    seed: int = 0
    output_dir: str = ""
    backbone: str = "resnet50"
    pretrained: bool | str = True
    height: int = 256
    width: int = 128
    epochs: int | None = None
    max_iters: int | None = None
    batch_size: int = 64
    workers: int = 8
    max_train_pids: int | None = None
    max_test_pids: int | None = None
    eval_flip: bool = False
    synthetic_size: str = "quick"
    memory_cache: bool = False

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {}
    REASONS: ClassVar[dict[str, str]] = {}
    #: The paper profile's plan per dataset, where the paper publishes less on it (e.g. SAL
    #: on DukeMTMC-reID: only setting 8): ``{dataset: {field: value}}``. Applied at the
    #: paper profile unless the field is set explicitly; part of the paper's recipe, so never
    #: a deviation (:meth:`paper_defaults` with ``dataset``).
    PAPER_DATASET_DEFAULTS: ClassVar[dict[str, dict[str, Any]]] = {}
    #: A paper-profile dry run checks code paths, not sweeps: ``{field: (value, reason)}``
    #: applied when :attr:`dry_run` unless the field is set explicitly or already holds
    #: fewer points (e.g. one lambda x alpha cell per version: every other cell trains the
    #: same code with other numbers). Printed as deviations with the reason.
    DRY_RUN_DEFAULTS: ClassVar[dict[str, tuple[Any, str]]] = {}

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        nb = cls.__dict__.get("notebook")
        if isinstance(nb, str):
            _REGISTRY[nb] = cls

    # ------------------------------------------------------------------ construction
    @classmethod
    def make(cls, profile: str = "quick", **params: Any) -> "RunConfig":
        """Merge class defaults, :data:`COMMON_PROFILES`, ``cls.PROFILES`` and ``params``.

        Args:
            profile: ``"smoke"``, ``"quick"`` or ``"paper"``.
            **params: the notebook's parameters; ``None`` means "use the profile default".

        Raises:
            ValueError: unknown profile; a parameter that is not a field of this config
                (names it and lists the known ones); a value of the wrong type for its
                field (names the field, e.g. ``seed=1.7``); a CUDA device without CUDA.
        """
        if profile not in PROFILE_NAMES:
            raise ValueError(f"unknown profile {profile!r}; expected one of {list(PROFILE_NAMES)}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        merged: dict[str, Any] = {}
        for source, layer in ((f"COMMON_PROFILES[{profile!r}]", COMMON_PROFILES[profile]),
                              (f"{cls.__name__}.PROFILES[{profile!r}]",
                               cls.PROFILES.get(profile, {})),
                              ("parameters", {k: v for k, v in params.items() if v is not None})):
            unknown = sorted(set(layer) - set(fields))
            if unknown:
                hint = ("" if cls is not RunConfig else " (a paper notebook's settings are "
                        "known once its package is imported (e.g. "
                        f"reidnb.papers.bcloss); config classes known now: {sorted(_REGISTRY)})")
                raise ValueError(f"{cls.__name__} ({cls.notebook}): unknown setting(s) "
                                 f"{unknown} in {source}; known: {sorted(fields)}{hint}")
            merged.update(layer)
        for name in ("output_dir", "data_root"):
            if isinstance(merged.get(name), os.PathLike):
                merged[name] = os.fspath(merged[name])
        for name, value in list(merged.items()):
            merged[name] = _check_type(cls, fields[name], value)
        explicit = {k for k, v in params.items() if v is not None}
        if profile == "paper":
            ds = merged.get("dataset", cls.paper_defaults().get("dataset"))
            merged.update({k: v for k, v in cls.PAPER_DATASET_DEFAULTS.get(ds, {}).items()
                           if k not in explicit})
        if "batch_size" in explicit:
            scaled = cls.scale_batch_scheme(int(merged["batch_size"]),
                                            {**cls.paper_defaults(), **merged})
            merged.update({k: _check_type(cls, fields[k], v) for k, v in scaled.items()
                           if k not in explicit})
        if profile == "paper" and explicit & set(DRY_RUN_FIELDS):
            paper = cls.paper_defaults()
            for k, (v, _) in cls.DRY_RUN_DEFAULTS.items():   # only where the full sweep stands
                if k not in explicit and _norm(merged.get(k, paper.get(k))) == _norm(paper.get(k)):
                    merged[k] = v
        if (profile == "paper" and explicit & set(DRY_RUN_FIELDS)
                and merged.get("pretrained", cls.paper_defaults().get("pretrained")) is True
                and "pretrained" not in explicit):
            merged["pretrained"] = "auto"   # a dry run also runs offline: weights if available
        merged["profile"] = profile
        merged["device"] = str(resolve_device(merged.get("device", "auto")))
        # DataLoader workers beyond the CPUs this process may use only cost start-up time and
        # memory (torch warns); run-time field, so never a deviation from the paper.
        merged["workers"] = min(int(merged.get("workers", cls.paper_defaults().get("workers", 0))),
                                _usable_cpus())
        out = merged.get("output_dir") or PROJECT_ROOT / "outputs"
        merged["output_dir"] = str(Path(out).expanduser().resolve())
        if merged.get("data_root") in ("",):
            merged["data_root"] = None
        if merged.get("data_root") is not None:
            merged["data_root"] = str(merged["data_root"])
        return cls(**merged)

    @classmethod
    def scale_batch_scheme(cls, batch_size: int, merged: Mapping[str, Any]) -> dict[str, Any]:
        """Fields of the batch scheme that follow an explicit ``batch_size`` parameter.

        A dry run (``-p batch_size=8``) scales the paper's scheme down to ``batch_size``
        images: P x K keeps K and takes P = batch / K, an anchor batch keeps its P/N ratio.
        The base class has no scheme beyond ``batch_size`` itself; a paper config
        overrides this. Fields the user also set explicitly are kept as given.

        Args:
            batch_size: the requested images per optimiser step (> 0).
            merged: every setting resolved so far (class defaults, profile, parameters).

        Returns:
            ``{field: value}`` to set besides ``batch_size``.

        Raises:
            ValueError: ``batch_size`` too small for the scheme (the override says why).
        """
        if batch_size < 1:
            raise ValueError(f"{cls.__name__}: batch_size must be >= 1, got {batch_size}")
        return {}

    def _capped(self) -> list[str]:
        """The :data:`DRY_RUN_FIELDS` a paper-profile run sets away from the paper's value."""
        if self.profile != "paper":
            return []
        paper = self.paper_defaults()
        return [k for k in DRY_RUN_FIELDS if _norm(getattr(self, k)) != _norm(paper.get(k))]

    @property
    def dry_run(self) -> bool:
        """True when a paper-profile run is capped (``max_iters``) or its batch scaled down:
        a check that every code path runs on the given data, not a measurement."""
        return bool(self._capped())

    def caps(self) -> list[str]:
        """One line per dry-run cap of this run (empty unless :attr:`dry_run`)."""
        paper = self.paper_defaults()
        return [f"DRY RUN cap: {k} = {getattr(self, k)!r} (paper {paper.get(k)!r}); the numbers "
                "of this run check the code path, they measure nothing" for k in self._capped()]

    # ---------------------------------------------------------------------- queries
    @property
    def dataset_kind(self) -> str:
        """``"synthetic"`` for the embedded generated set, else ``"real"``."""
        return "synthetic" if self.dataset == "synthetic" else "real"

    @property
    def options(self) -> Mapping[str, Any]:
        """Every setting except the run-time fields, read-only (for printing and JSON)."""
        return MappingProxyType({f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                                 if f.name not in _COMMON_FIELDS})

    @classmethod
    def paper_defaults(cls, dataset: str | None = None) -> dict[str, Any]:
        """The class defaults: the paper's recipe, field -> value; with ``dataset``, the
        recipe on that dataset (:attr:`PAPER_DATASET_DEFAULTS` applied)."""
        out = {}
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                out[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                out[f.name] = f.default_factory()
        if dataset is not None:
            out.update(cls.PAPER_DATASET_DEFAULTS.get(dataset, {}))
        return out

    def deviations(self, *, ignore: tuple[str, ...] = ()) -> list[Deviation]:
        """Every field that differs from the paper's recipe (the class defaults).

        Run-time fields (:data:`RUNTIME_FIELDS`) and ``ignore`` are left out. The reason of
        each deviation comes from ``REASONS`` (profile-specific keys ``"quick:name"`` win
        over plain ``"name"``). Empty at the paper profile unless a parameter was changed.
        """
        paper = self.paper_defaults(self.dataset)
        scaled: dict[str, Any] = {}
        if self.profile == "paper" and self.batch_size != paper.get("batch_size"):
            try:
                scaled = type(self).scale_batch_scheme(
                    int(self.batch_size), {f.name: getattr(self, f.name) for f in dataclasses.fields(self)})
            except ValueError:
                scaled = {}
        out = []
        for f in dataclasses.fields(self):
            if f.name in RUNTIME_FIELDS or f.name in ignore or f.name not in paper:
                continue
            if f.name == "dataset" and self.profile == "paper" and self.dataset != "synthetic":
                continue   # which of the paper's datasets a run is on is its table, not a deviation
            have, want = getattr(self, f.name), paper[f.name]
            if _norm(have) != _norm(want):
                reason = self._paper_reason(f.name, scaled) if self.profile == "paper" else \
                    self.REASONS.get(f"{self.profile}:{f.name}", self.REASONS.get(f.name, ""))
                out.append(Deviation(f.name, have, want, reason))
        return out

    def _paper_reason(self, name: str, scaled: Mapping[str, Any]) -> str:
        """Why a paper-profile field differs from the paper (the paper profile has no
        overrides of its own: a parameter of this run or what a dry run derives from it)."""
        if name in DRY_RUN_FIELDS:
            return "dry-run cap set by a parameter (code path check, not a measurement)"
        if self.dry_run and name == "pretrained":
            return "dry run: ImageNet weights when they load, else random init (printed)"
        if self.dry_run and name in self.DRY_RUN_DEFAULTS:
            return "dry run: " + self.DRY_RUN_DEFAULTS[name][1]
        if name in scaled:
            return "follows the dry run's batch_size (the paper's batch scheme scaled down)"
        return "set by a parameter of this run"

    def deviations_frame(self):
        """:meth:`deviations` as a pandas DataFrame (setting, this run, paper, reason)."""
        import pandas as pd

        return pd.DataFrame([d._asdict() for d in self.deviations()],
                            columns=["name", "value", "paper", "reason"]).rename(
            columns={"name": "setting", "value": "this run"})

    # --------------------------------------------------------------------- output
    def to_dict(self) -> dict[str, Any]:
        """Run-time fields at the top level plus ``options`` (every other setting)."""
        d = {k: getattr(self, k) for k in _COMMON_FIELDS}
        d["notebook"] = self.notebook
        d["options"] = dict(self.options)
        d["config_class"] = type(self).__name__
        return d

    def save(self, path: str | Path | None = None) -> Path:
        """Write the config as JSON (atomically) to ``path`` or
        ``output_dir/results/<notebook>.config.json``; returns the path."""
        path = Path(path) if path else Path(self.output_dir) / "results" / f"{self.notebook}.config.json"
        return atomic_write_text(path, json.dumps(self.to_dict(), indent=2, default=str))

    def __str__(self) -> str:
        lines = [f"{self.notebook} resolved configuration ({type(self).__name__}):"]
        for k in _COMMON_FIELDS:
            lines.append(f"  {k:16s} = {getattr(self, k)!r}")
        for k, v in self.options.items():
            lines.append(f"  {k:16s} = {v!r}")
        return "\n".join(lines)


def _usable_cpus() -> int:
    """CPUs this process may run on (the affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:   # macOS, Windows
        return max(1, os.cpu_count() or 1)


_COMMON_FIELDS = ("profile", "dataset", "data_root", "device", "seed", "output_dir")
_SIMPLE_TYPES = {"int": int, "float": float, "bool": bool, "str": str}


def _norm(v: Any) -> Any:
    """Compare lists and tuples alike (papermill passes lists)."""
    return tuple(_norm(x) for x in v) if isinstance(v, (list, tuple)) else v


def _check_type(cls: type, field: dataclasses.Field, value: Any) -> Any:
    """Check ``value`` against a plain ``int/float/bool/str`` annotation; lists -> tuples.

    Raises:
        ValueError: names the field, the value and the expected type.
    """
    if isinstance(value, list):
        value = tuple(value)
    want = _SIMPLE_TYPES.get(str(field.type).strip())
    if want is None:
        return value
    ok = (isinstance(value, want) and not (want is int and isinstance(value, bool))) \
        or (want is float and isinstance(value, int) and not isinstance(value, bool))
    if not ok:
        raise ValueError(f"{cls.__name__}: setting {field.name}={value!r} must be "
                         f"{want.__name__}, got {type(value).__name__}")
    return float(value) if want is float else value


@dataclasses.dataclass(frozen=True)
class DataConfig(RunConfig):
    """Settings of ``00_data`` (the dataset tour)."""

    notebook: str = "00_data"
    n_montage: int = 8


@dataclasses.dataclass(frozen=True)
class SummaryConfig(RunConfig):
    """Settings of ``05_summary`` (joins the other notebooks' results)."""

    notebook: str = "05_summary"


def pk_for_batch(batch_size: int, num_instances: int, *, owner: str = "batch_size") -> tuple[int, int]:
    """P x K for a scaled-down P x K batch (a dry run's ``batch_size``): K kept, P = batch / K.

    A batch of fewer than two identities of K images halves K (at least 2 images per
    identity, at least 2 identities: a batch-hard triplet needs a positive and a negative).

    Args:
        batch_size: images per batch; num_instances: the paper's K.
        owner: name used in the error message.

    Returns:
        ``(P, K)`` with ``P * K == batch_size``.

    Raises:
        ValueError: ``batch_size`` below 4, or not a multiple of the K it can use.
    """
    if batch_size < 4:
        raise ValueError(f"{owner}={batch_size}: a P x K batch needs at least 2 identities of 2 "
                         "images (batch_size >= 4)")
    k = int(num_instances) if batch_size >= 2 * int(num_instances) else batch_size // 2
    if batch_size % k:
        raise ValueError(f"{owner}={batch_size} is not a multiple of K={k} images per identity "
                         f"(P x K batches); use a multiple of {k}")
    return batch_size // k, k


def registered_configs() -> dict[str, type[RunConfig]]:
    """notebook id -> config class, for every config class imported so far."""
    return dict(_REGISTRY)


def config_class(notebook: str) -> type[RunConfig]:
    """The config class of ``notebook`` (its paper package must have been imported).

    Raises:
        KeyError: no config class registered under that id (lists the known ones).
    """
    if notebook not in _REGISTRY:
        raise KeyError(f"no config class for notebook {notebook!r}; known: {sorted(_REGISTRY)} "
                       "(its paper package must be imported first, e.g. reidnb.papers.bcloss)")
    return _REGISTRY[notebook]


def make_config(notebook: str | type[RunConfig], profile: str = "quick",
                **params: Any) -> RunConfig:
    """``config_class(notebook).make(profile, **params)``; ``notebook`` may be the class.

    A notebook id without a config class of its own (a user's notebook) gets the plain
    :class:`RunConfig` with ``notebook`` set: the common settings only.

    Raises:
        ValueError: see :meth:`RunConfig.make` (a setting the config does not know).
    """
    if isinstance(notebook, type):
        return notebook.make(profile, **params)
    try:
        cls = config_class(notebook)
    except KeyError:
        return RunConfig.make(profile, notebook=notebook, **params)
    return cls.make(profile, **params)

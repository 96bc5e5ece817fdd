"""Training stages: ONE :class:`Stage` for every paper's schedule, and the two-stage recipe.

Every paper here trains in stages: a softmax (pre-)training, then a second stage that
starts from the first's weights with the paper's metric loss (MaskReID 000/003 §3.2, SAL
004 §4.1, MagnifierNet 002 §4.1; the batch-contrastive paper 001 has one stage). Papers
state a stage either in **iterations** (MaskReID: 55k + 20k; 001: 50k, lr x0.1 every 20k)
or in **epochs** (SAL: 150 + 100, x0.1 every 50; MagnifierNet: 460 + 40, x0.1 at 150 and
300). A :class:`Stage` holds both views: the optimiser steps actually run (``iters``) and
the epochs of the loader that cover them, so the Trainer gets epochs (for the per-epoch
seeding, checkpoints and samplers) plus an iteration cap when the stage ends inside an
epoch.

The learning-rate schedule is the Trainer's, one of two policies (``Stage.lr_policy``):

* ``"step"`` (reid-strong-baseline ``WarmupMultiStepLR``): linear warm-up over
  ``warmup_epochs``, then x ``gamma`` at each epoch of ``milestones``. Milestones are epochs
  here and converted to iterations by the run (``epoch * iters_per_epoch``), as torchreid
  and fast-reid step their schedulers per epoch.
* ``"poly"`` (Caffe's ``poly`` lr policy, ``caffe/src/caffe/solvers/sgd_solver.cpp``
  ``GetLearningRate``): lr = base_lr * (1 - iter / max_iter) ^ power over the stage's
  ``iters``; the DGD solver that MaskReID trains with (Xiao et al. 2016,
  ``models/dgd/*_solver.prototxt``: ``lr_policy: "poly"``, ``power: 0.5``).

A stage also carries the train-time geometry augmentation its loader builds (``flip_p``,
``pad``: :func:`reidnb.data.transforms.build_transforms`), so a paper's printed recipe can
be read off the same values the loader uses.
"""
from __future__ import annotations

import bisect
import dataclasses
import math
from typing import Mapping, Sequence

import numpy as np
import torch

__all__ = ["Stage", "batches_per_epoch", "step_milestones", "total_images", "OPTIMIZERS", "SAMPLERS",
           "LR_POLICIES", "epochs_to_iters", "lr_factor", "WarmupMultiStepLR"]

OPTIMIZERS: tuple[str, ...] = ("sgd", "adam")
#: random: shuffled batches; pk: P identities x K images (Hermans et al. 2017, torchreid
#: RandomIdentitySampler); anchor: MaskReID's P/N anchor-ranking batches (000 §3.2).
SAMPLERS: tuple[str, ...] = ("random", "pk", "anchor")
#: step: warm-up + x gamma at milestones (BoT ``WarmupMultiStepLR``); poly: Caffe's
#: ``base_lr * (1 - iter/max_iter)^power``.
LR_POLICIES: tuple[str, ...] = ("step", "poly")
#: Fields added after runs were stored; :meth:`Stage.key` leaves each out at this value so
#: the keys of runs trained before they existed do not change.
_KEY_DEFAULTS: dict[str, object] = {"lr_policy": "step", "lr_power": 1.0, "flip_p": 0.5, "pad": 10}


def batches_per_epoch(num_train_images: int, batch_size: int) -> int:
    """Full batches in one epoch (``drop_last=True``, as every training loader here).

    Raises:
        ValueError: fewer training images than one batch (names both numbers).
    """
    n = int(num_train_images) // int(batch_size)
    if n < 1:
        raise ValueError(f"{num_train_images} training images give no batch of "
                         f"{batch_size} (drop_last); lower batch_size")
    return n


def step_milestones(epochs: int, step: int) -> tuple[int, ...]:
    """Epochs at which the lr is multiplied by gamma when decayed 'after each ``step``
    epochs' (004 §4.1): ``step_milestones(150, 50) == (50, 100)``; ``step`` 0 -> ``()``.

    Raises:
        ValueError: a negative number.
    """
    if epochs < 0 or step < 0:
        raise ValueError(f"epochs and step must be >= 0, got {epochs} and {step}")
    return tuple(range(step, epochs, step)) if step else ()


@dataclasses.dataclass(frozen=True)
class Stage:
    """One training stage: what the optimiser does and on which batches.

    Attributes:
        name: printable label, e.g. ``"stage 1"``.
        iters: optimiser steps actually run (after every cap).
        iters_per_epoch: full batches per epoch (train images // batch size).
        lr: base learning rate.
        batch_size: images per optimiser step.
        optimizer: ``"sgd"`` (momentum 0.9) or ``"adam"``.
        milestones: epochs at which the lr is multiplied by ``gamma``.
        gamma: lr decay factor.
        warmup_epochs: linear warm-up from 0.01 x lr (BoT), epochs.
        weight_decay: L2 weight decay.
        sampler: ``"random"``, ``"pk"`` or ``"anchor"`` (:data:`SAMPLERS`).
        num_instances: K of P x K batches (``sampler="pk"``).
        num_pos: positives per anchor batch (``sampler="anchor"``).
        notes: why the stage differs from the one asked for (caps), printable phrases.
        lr_policy: ``"step"`` (warm-up + milestones) or ``"poly"`` (Caffe:
            lr x (1 - iter / iters) ^ ``lr_power``; no milestones allowed).
        lr_power: exponent of the poly policy (DGD's solver: 0.5).
        flip_p: horizontal-flip probability of the stage's train loader (0 = none).
        pad: zero padding in pixels before the random crop back to H x W (0 = no pad+crop).

    Raises:
        ValueError: non-positive iters / lr, unknown optimizer / sampler / lr policy, poly
            with milestones, lr_power <= 0, flip_p outside [0, 1], negative pad.
    """

    name: str
    iters: int
    iters_per_epoch: int
    lr: float
    batch_size: int
    optimizer: str = "sgd"
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    warmup_epochs: int = 0
    weight_decay: float = 5e-4
    sampler: str = "random"
    num_instances: int = 4
    num_pos: int = 10
    notes: tuple[str, ...] = ()
    lr_policy: str = "step"
    lr_power: float = 1.0
    flip_p: float = 0.5
    pad: int = 10

    def __post_init__(self) -> None:
        if self.iters < 1 or self.iters_per_epoch < 1:
            raise ValueError(f"{self.name}: iters and iters_per_epoch must be >= 1, got "
                             f"{self.iters} and {self.iters_per_epoch}")
        if not self.lr > 0:
            raise ValueError(f"{self.name}: lr must be > 0, got {self.lr!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"{self.name}: optimizer must be one of {OPTIMIZERS}, got "
                             f"{self.optimizer!r}")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"{self.name}: sampler must be one of {SAMPLERS}, got "
                             f"{self.sampler!r}")
        if self.lr_policy not in LR_POLICIES:
            raise ValueError(f"{self.name}: lr_policy must be one of {LR_POLICIES}, got "
                             f"{self.lr_policy!r}")
        if self.lr_policy == "poly" and self.milestones:
            raise ValueError(f"{self.name}: the poly lr policy takes no milestones, got "
                             f"{list(self.milestones)}")
        if not self.lr_power > 0:
            raise ValueError(f"{self.name}: lr_power must be > 0, got {self.lr_power!r}")
        if not 0.0 <= self.flip_p <= 1.0 or int(self.pad) < 0:
            raise ValueError(f"{self.name}: flip_p must lie in [0, 1] and pad be >= 0, got "
                             f"{self.flip_p!r} and {self.pad!r}")

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_epochs(cls, name: str, epochs: int, num_train_images: int, batch_size: int,
                    lr: float, *, iters: int | None = None, max_iters: int | None = None,
                    **kw) -> "Stage":
        """A stage given in epochs (SAL, MagnifierNet), optionally shortened.

        Args:
            epochs: the stage's epochs (>= 1).
            iters: a profile's cap in iterations (quick); ``max_iters``: the smoke cap.
                The smaller cap wins; each cap that bites is recorded in ``notes``.
            **kw: the other :class:`Stage` fields (milestones in epochs, sampler, ...).

        Raises:
            ValueError: ``epochs`` < 1, fewer images than one batch, bad fields.
        """
        if epochs is None or int(epochs) < 1:
            raise ValueError(f"{name}: epochs must be >= 1, got {epochs!r}")
        ipe = batches_per_epoch(num_train_images, batch_size)
        total, notes = int(epochs) * ipe, list(kw.pop("notes", ()))
        for cap, why in ((iters, "by the profile"), (max_iters, "by max_iters")):
            if cap and int(cap) < total:
                total = int(cap)
                notes.append(f"shortened to {total} iterations {why}")
        return cls(name, total, ipe, float(lr), int(batch_size), notes=tuple(notes), **kw)

    @classmethod
    def from_iters(cls, name: str, iters: int, num_train_images: int, batch_size: int,
                   lr: float, *, step_iters: int | None = None, max_iters: int | None = None,
                   **kw) -> "Stage":
        """A stage given in iterations (MaskReID, 001).

        Args:
            iters: the stage's optimiser steps (>= 1).
            step_iters: lr x gamma every ``step_iters`` iterations (001: 20k); rounded to
                the nearest epoch boundary (the Trainer's milestones are epoch multiples);
                the rounding is recorded in ``notes``.
            max_iters: the smoke cap (recorded in ``notes`` when it bites).

        Raises:
            ValueError: ``iters`` < 1, fewer images than one batch, bad fields.
        """
        if not iters or int(iters) < 1:
            raise ValueError(f"{name}: iters must be >= 1, got {iters!r}")
        ipe = batches_per_epoch(num_train_images, batch_size)
        want, notes = int(iters), list(kw.pop("notes", ()))
        total = want
        if max_iters and int(max_iters) < total:
            total = int(max_iters)
            notes.append(f"capped from {want} by max_iters")
        if step_iters:
            wanted = list(range(int(step_iters), want, int(step_iters)))
            ms = tuple(sorted({max(1, round(w / ipe)) for w in wanted}))
            kw["milestones"] = ms
            if wanted:
                notes.append("lr steps wanted at iterations " + ", ".join(
                    f"{w} -> run at {m * ipe}" for w, m in zip(wanted, ms)))
        return cls(name, total, ipe, float(lr), int(batch_size), notes=tuple(notes), **kw)

    # ---------------------------------------------------------------------- views
    @property
    def epochs(self) -> int:
        """Epochs the loader is run for (the last one may be cut at ``iters``)."""
        return math.ceil(self.iters / self.iters_per_epoch)

    @property
    def iter_cap(self) -> int | None:
        """``iters`` when the stage ends inside an epoch, else None (whole epochs)."""
        return None if self.iters == self.epochs * self.iters_per_epoch else self.iters

    @property
    def milestone_iters(self) -> list[int]:
        """Milestones in optimiser steps (what the Trainer takes)."""
        return [int(m) * self.iters_per_epoch for m in self.milestones]

    @property
    def warmup_iters(self) -> int:
        return int(self.warmup_epochs) * self.iters_per_epoch

    @property
    def images(self) -> int:
        """Training images seen in the stage (iters x batch size)."""
        return self.iters * self.batch_size

    def describe(self, num_train_images: int | None = None) -> str:
        """One printable line: length, batches, optimiser, schedule and notes."""
        batch = (f"P x K = {self.batch_size // self.num_instances} x {self.num_instances}"
                 if self.sampler == "pk" else
                 f"batch {self.batch_size} (P/N {self.num_pos}/"
                 f"{self.batch_size - self.num_pos})" if self.sampler == "anchor"
                 else f"batch {self.batch_size}")
        of = f" of {num_train_images} images" if num_train_images else ""
        sched = (f", poly lr (power {self.lr_power:g}) to 0 at iteration {self.iters}"
                 if self.lr_policy == "poly" else
                 f", x{self.gamma:g} at epochs {list(self.milestones)}" if self.milestones
                 else ", constant lr")
        warm = f", warm-up {self.warmup_epochs} epochs" if self.warmup_epochs else ""
        notes = f" ({'; '.join(self.notes)})" if self.notes else ""
        return (f"{self.name}: {self.iters} iterations of {batch} (= {self.iters / self.iters_per_epoch:.2f}"
                f" epochs{of}), {self.optimizer.upper()} lr {self.lr:g}{warm}{sched}{notes}")

    def augmentation(self) -> list[str]:
        """The geometry augmentation of the stage's train loader, printable phrases
        (``flip_p``, ``pad``; the loader's order: flip, then pad + random crop)."""
        out = [f"horizontal flip p={self.flip_p:g}" if self.flip_p else "no flip"]
        out.append(f"zero-pad {self.pad} px + random crop back to the input size" if self.pad
                   else "no pad + crop")
        return out

    def scheduler_kw(self) -> dict:
        """Keyword arguments of :class:`WarmupMultiStepLR` (and of the Trainer, which passes
        them on) for this stage, in optimiser steps."""
        return {"milestones": self.milestone_iters, "gamma": self.gamma,
                "warmup_iters": self.warmup_iters, "policy": self.lr_policy,
                "power": self.lr_power, "max_iters": self.iters}

    def trainer_kw(self, iters: int | None = None) -> dict:
        """The schedule as :class:`reidnb.core.engine.Trainer` keywords (``milestones``,
        ``gamma``, ``warmup_iters``, ``lr_policy``, ``lr_power``, ``lr_max_iters``), in
        optimiser steps; ``iters``: the steps actually run when a global cap shortens the
        stage (the poly policy then reaches 0 at that cap), default ``self.iters``."""
        return {"milestones": self.milestone_iters, "gamma": self.gamma,
                "warmup_iters": self.warmup_iters, "lr_policy": self.lr_policy,
                "lr_power": self.lr_power, "lr_max_iters": int(iters or self.iters)}

    def key(self) -> dict:
        """What defines the stage's training (for the run key): every field but name/notes;
        a field of ``_KEY_DEFAULTS`` (added later) only when it differs from that value, so
        runs stored before it existed keep their keys."""
        d = dataclasses.asdict(self)
        d.pop("name")
        d.pop("notes")
        for k, v in _KEY_DEFAULTS.items():
            if d[k] == v:
                d.pop(k)
        return d


def total_images(stages: Sequence[Stage]) -> int:
    """Training images seen over several stages."""
    return sum(s.images for s in stages)


# ------------------------------------------------------------ per-iteration lr schedule

def epochs_to_iters(epochs: int | Sequence[int], iters_per_epoch: int) -> int | list[int]:
    """Convert an epoch count (or a list of milestone epochs) to optimiser iterations.

    ``epochs_to_iters([40, 70], len(loader)) -> [40 * len(loader), 70 * len(loader)]``.
    Under DDP pass the per-rank batch count (``len(loader) // world_size``).

    Raises:
        ValueError: ``iters_per_epoch`` < 1 or a negative epoch.
    """
    if int(iters_per_epoch) < 1:
        raise ValueError(f"iters_per_epoch must be >= 1, got {iters_per_epoch!r}")
    if isinstance(epochs, (int, np.integer)):
        if epochs < 0:
            raise ValueError(f"epochs must be >= 0, got {epochs}")
        return int(epochs) * int(iters_per_epoch)
    return [epochs_to_iters(int(e), iters_per_epoch) for e in epochs]


def lr_factor(iteration: int, *, warmup_iters: int = 0, milestones: Sequence[int] = (),
              gamma: float = 0.1, warmup_factor: float = 0.01, policy: str = "step",
              power: float = 1.0, max_iters: int | None = None) -> float:
    """Learning-rate multiplier at optimiser step ``iteration`` (0-based).

    ``policy="step"``: ``gamma ** #{m in milestones : m <= iteration}``. Follows
    reid-strong-baseline ``solver/lr_scheduler.py`` (``WarmupMultiStepLR``, "linear"
    method), counted in iterations.
    ``policy="poly"``: ``(1 - iteration / max_iters) ** power`` (0 from ``max_iters`` on),
    Caffe's ``poly`` policy (``SGDSolver::GetLearningRate``), as DGD's solver uses it with
    power 0.5 (MaskReID's recipe). Milestones are ignored.
    Either is multiplied, during warm-up (``iteration < warmup_iters``), by
    ``warmup_factor * (1 - a) + a`` with ``a = iteration / warmup_iters`` (linear from
    ``warmup_factor`` at step 0 towards 1).

    Examples: warmup_iters=10, milestones=(20,), gamma=0.1 gives 0.01 at step 0, 0.505 at
    step 5, 1 at steps 10..19, 0.1 from step 20. poly, power 0.5, max_iters 100: 1 at step
    0, sqrt(0.5) at step 50, 0.5 at step 75, 0 at step 100.

    Raises:
        ValueError: unknown ``policy``; poly without ``max_iters`` >= 1.
    """
    if policy == "poly":
        if not max_iters or int(max_iters) < 1:
            raise ValueError(f"the poly lr policy needs max_iters >= 1, got {max_iters!r}")
        f = max(0.0, 1.0 - iteration / int(max_iters)) ** power
    elif policy == "step":
        f = gamma ** bisect.bisect_right(sorted(milestones), iteration)
    else:
        raise ValueError(f"lr policy must be one of {LR_POLICIES}, got {policy!r}")
    if iteration < warmup_iters:
        a = iteration / warmup_iters
        f *= warmup_factor * (1.0 - a) + a
    return float(f)


class WarmupMultiStepLR:
    """Per-iteration warm-up + step-decay (or poly) schedule (:func:`lr_factor`).

    Sets every param group's ``lr`` to ``base_lr * lr_factor(self.iteration, ...)``;
    ``step()`` after each optimiser step advances ``iteration``. ``state_dict()`` is plain
    data (base lrs, iteration and the schedule's parameters); a state saved before the
    poly policy existed loads as the step policy. ``policy="poly"`` (Caffe) decays to 0 at
    ``max_iters`` with exponent ``power``.

    Raises:
        ValueError: negative warm-up, non-positive gamma or warm-up factor outside (0, 1],
            unknown policy, poly without ``max_iters`` or with ``power`` <= 0.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, milestones: Sequence[int] = (),
                 gamma: float = 0.1, warmup_iters: int = 0, warmup_factor: float = 0.01,
                 policy: str = "step", power: float = 1.0, max_iters: int | None = None):
        if policy not in LR_POLICIES:
            raise ValueError(f"policy must be one of {LR_POLICIES}, got {policy!r}")
        if policy == "poly" and (not max_iters or int(max_iters) < 1 or not power > 0):
            raise ValueError(f"the poly policy needs max_iters >= 1 and power > 0, got "
                             f"{max_iters!r} and {power!r}")
        self.policy, self.power = policy, float(power)
        self.max_iters = int(max_iters) if max_iters else None
        if int(warmup_iters) < 0:
            raise ValueError(f"warmup_iters must be >= 0, got {warmup_iters}")
        if not gamma > 0:
            raise ValueError(f"gamma must be > 0, got {gamma}")
        if not 0 < warmup_factor <= 1:
            raise ValueError(f"warmup_factor must be in (0, 1], got {warmup_factor}")
        ms = [int(m) for m in milestones]
        if any(m < 0 for m in ms) or ms != sorted(ms):
            raise ValueError(f"milestones must be increasing iterations >= 0, got {list(milestones)}")
        self.optimizer = optimizer
        self.milestones, self.gamma = ms, float(gamma)
        self.warmup_iters, self.warmup_factor = int(warmup_iters), float(warmup_factor)
        self.base_lrs = [float(g["lr"]) for g in optimizer.param_groups]
        self.iteration = 0
        self._apply()

    def factor(self, iteration: int | None = None) -> float:
        it = self.iteration if iteration is None else iteration
        return lr_factor(it, warmup_iters=self.warmup_iters, milestones=self.milestones,
                         gamma=self.gamma, warmup_factor=self.warmup_factor,
                         policy=self.policy, power=self.power, max_iters=self.max_iters)

    def get_lr(self) -> list[float]:
        f = self.factor()
        return [b * f for b in self.base_lrs]

    def _apply(self) -> None:
        for g, lr in zip(self.optimizer.param_groups, self.get_lr()):
            g["lr"] = lr

    def step(self) -> None:
        self.iteration += 1
        self._apply()

    def state_dict(self) -> dict:
        return {"base_lrs": list(self.base_lrs), "iteration": self.iteration,
                "milestones": list(self.milestones), "gamma": self.gamma,
                "warmup_iters": self.warmup_iters, "warmup_factor": self.warmup_factor,
                "policy": self.policy, "power": self.power, "max_iters": self.max_iters}

    def load_state_dict(self, state: Mapping) -> None:
        self.base_lrs = [float(b) for b in state["base_lrs"]]
        self.iteration = int(state["iteration"])
        self.milestones = [int(m) for m in state["milestones"]]
        self.gamma, self.warmup_iters = float(state["gamma"]), int(state["warmup_iters"])
        self.warmup_factor = float(state["warmup_factor"])
        self.policy = str(state.get("policy", "step"))
        self.power = float(state.get("power", 1.0))
        mi = state.get("max_iters")
        self.max_iters = int(mi) if mi else None
        self._apply()

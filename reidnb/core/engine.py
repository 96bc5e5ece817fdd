"""One training loop for every paper: a method is a model plus weighted loss terms.

``Trainer(model, {"ce": (1.0, Term(cross_entropy, key="logits")),
"bc": (1.0, Term(batch_contrastive_loss, normalize=True, tau=0.5))}, lr=0.01)``
then ``history = trainer.fit(loader, epochs=60)``. As torchreid's ``engine/image/
triplet.py``, the losses are a dict of float weights and terms; unlike it there is no
subclass per method: a term is any callable ``term(outputs, batch) -> scalar Tensor``
(``reidnb.losses.Term`` and friends), so a method changes only the model and the dict.

What the loop does (DESIGN.md "Engine"):

* **Device.** ``device="auto"`` picks CUDA when visible (``reidnb.core.utils.resolve_device``).
  On CUDA: autocast to bfloat16 where ``torch.cuda.is_bf16_supported()``, else float16
  with a ``torch.amp.GradScaler``; the model and 4-D float inputs in channels_last;
  pinned host memory and ``non_blocking`` copies. On the CPU: plain float32 (no autocast,
  no channels_last). Under autocast the floating model outputs are cast to float32
  before the loss terms, so every loss is evaluated in float32.
* **Optimiser and schedule.** SGD (momentum, no Nesterov) or Adam over the model's
  trainable parameters plus the trainable parameters of the loss terms (a second param
  group). Learning rate per *iteration* (optimiser step), as reid-strong-baseline's
  ``WarmupMultiStepLR``: linear warm-up from ``warmup_factor * lr`` (0.01 x lr) to ``lr``
  over ``warmup_iters`` iterations, then x ``gamma`` at every milestone. **Milestones
  are iterations, not epochs**: convert a paper's epochs with :func:`epochs_to_iters`.
* **DDP.** When launched by ``torchrun`` (env ``WORLD_SIZE`` > 1) the process group is
  initialised (NCCL on CUDA, gloo on the CPU), the model is wrapped in
  ``DistributedDataParallel`` and the loader is sharded *by batches*: rank r takes
  batches r, r + W, r + 2W, ... of the loader's batch sampler (W = world size), and every
  rank stops after ``len(batches) // W`` batches so all ranks step together. All ranks
  seed identically per epoch, so a shuffling sampler yields the same order everywhere
  and the shards are disjoint. A batch size of B per loader means B images per rank and
  W x B per optimiser step. Gradients of loss-term parameters are all-reduced and
  floating loss-term buffers (e.g. CenterLoss centres) averaged after every step, so all
  replicas stay identical. Only rank 0 writes checkpoints and shows progress; every rank
  records the history of its own shard.
* **Checkpoints.** After every epoch (and when ``max_iters`` stops an epoch early) to
  ``checkpoint_dir/last.pt``, written atomically; tensors and plain data only, loaded with
  ``torch.load(weights_only=True)``. A checkpoint of another model, other loss terms or an
  older layout is refused (:class:`CheckpointError`) naming the mismatched keys.
* **Reproducible resume.** Every epoch re-seeds Python, NumPy and torch from
  ``(seed, epoch)``, calls ``set_epoch(epoch)`` on the loader's (batch) sampler when it
  has one, and re-seeds the DataLoader's generator, so the epoch depends only on the state
  at its start: ``resume=True`` after an interruption ends with the same weights as an
  uninterrupted run (CPU; CUDA kernels may be nondeterministic). Resuming from a
  mid-epoch checkpoint (a ``max_iters`` stop) skips the batches already done, keeping the
  epoch's batch order, but not its random stream (dropout, augmentation).
* **Failure.** A NaN/inf loss raises ``FloatingPointError`` naming the term(s), the
  iteration and the epoch, before the optimiser step and without writing a checkpoint,
  so the last good ``last.pt`` stays on disk.
* **History.** One row per iteration (``Trainer.history``, a DataFrame): ``iter`` (0-based
  optimiser step), ``epoch`` (0-based), ``loss`` (weighted sum), ``loss_<name>``
  (unweighted value of each term), ``lr`` (used for that step), ``img_per_s`` (images of
  all ranks per second of wall time, data loading included), and the batch distance
  statistics of :func:`distance_stats` on L2-normalised ``outputs["embeddings"]``
  (001 Fig. 1): ``d_intra``, ``d_inter_min``, ``d_inter_mean`` (NaN for a batch without a
  positive pair or a model output without ``embeddings``).
* **Time split.** Batch waits and steps go to ``data`` / ``train`` of ``timing.LEDGER``.
"""
from __future__ import annotations

import contextlib
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
import torch.nn as nn
from torch.utils.data import DataLoader, IterableDataset

from .callbacks import (STAT_COLUMNS, Callback, HistoryCSV, TensorBoardLogger,  # noqa: F401
                        _distance_stats_tensor, distance_stats)
from .checkpoint import (CHECKPOINT_FORMAT, CHECKPOINT_KEYS, CHECKPOINT_VERSION,  # noqa: F401
                         CheckpointError, _short, read_checkpoint, rng_state, set_rng_state)
from .distributed import ShardedBatchSampler, env_world_size, init_from_env
from .stages import WarmupMultiStepLR, epochs_to_iters, lr_factor  # noqa: F401
from .timing import LEDGER
from .utils import atomic_path, progress_bar_class, resolve_device, seed_everything

__all__ = ["Trainer", "CheckpointError", "WarmupMultiStepLR", "ShardedBatchSampler",
           "lr_factor", "epochs_to_iters", "distance_stats", "CHECKPOINT_VERSION",
           "Callback", "HistoryCSV", "TensorBoardLogger"]

def _epoch_seed(seed: int, epoch: int) -> int:
    return int(np.random.SeedSequence([int(seed) % 2**63, int(epoch)]).generate_state(1)[0])


def _float32(obj: Any) -> Any:
    """Cast floating tensors inside dicts / lists / tuples to float32 (after autocast)."""
    if torch.is_tensor(obj):
        return obj.float() if obj.is_floating_point() and obj.dtype != torch.float32 else obj
    if isinstance(obj, Mapping):
        return {k: _float32(v) for k, v in obj.items()}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(_float32(v) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(_float32(v) for v in obj)
    return obj


# --------------------------------------------------------------------------------- trainer

class Trainer:
    """Train ``model`` on the weighted sum of ``losses`` (see the module docstring).

    Args:
        model: ``nn.Module`` whose training-mode forward returns a dict (model contract:
            ``logits`` [N, C], ``embeddings`` [N, D], ...). Moved to the device.
        losses: ``{name: (weight, term)}``; ``term(outputs, batch) -> scalar Tensor``.
            ``name`` must be an identifier (it becomes the history column ``loss_<name>``).
            Terms that are ``nn.Module``s live in ``self.loss_terms`` (a ModuleDict): moved
            to the device, trained/evaluated with the model, saved in checkpoints; their
            trainable parameters join the optimiser. Loss = sum of weight x term; a term
            of weight 0 is computed and logged only.
        device: ``"auto"`` | ``"cpu"`` | ``"cuda[:i]"`` | ``torch.device``.
        optimizer: ``"sgd"`` (momentum, nesterov=False) or ``"adam"``.
        lr: base learning rate. momentum: SGD momentum. weight_decay: L2 (both).
        milestones: **iterations** (optimiser steps) at which lr is multiplied by
            ``gamma``; see :func:`epochs_to_iters`.
        warmup_iters: linear warm-up length in iterations, from ``warmup_factor`` x lr.
        lr_policy, lr_power, lr_max_iters: ``"step"`` (the milestones above) or Caffe's
            ``"poly"``: lr x (1 - iter / lr_max_iters) ^ lr_power (MaskReID's DGD solver;
            :class:`~reidnb.core.stages.WarmupMultiStepLR`).
        amp: mixed precision on CUDA (bf16 autocast, or fp16 + GradScaler); ignored on CPU.
        channels_last: channels_last memory format on CUDA; ignored on CPU.
        checkpoint_dir: folder of ``last.pt`` (None: no checkpoints).
        resume: continue from ``checkpoint_dir/last.pt`` when it exists.
        input_fn: ``input_fn(batch) -> Tensor`` (called as ``model(x)``) or dict (called as
            ``model(**d)``); default ``batch["img"]``.
        seed: base of the per-epoch seeds ``(seed, epoch)``.
        progress: tqdm progress bar per epoch (rank 0 only).
        find_unused_parameters: passed to DDP (models with outputs no term uses).
        callbacks: :class:`Callback` objects called after every step (with the history
            row) and after every epoch's checkpoint (:class:`HistoryCSV`,
            :class:`TensorBoardLogger`).

    Attributes: ``model`` (the unwrapped model), ``loss_terms``, ``optimizer``,
    ``scheduler``, ``device``, ``epoch`` (completed epochs), ``iteration`` (steps done),
    ``history`` (DataFrame), ``rank``, ``world_size``, ``checkpoint_path``.

    Raises:
        ValueError / TypeError: malformed ``losses``, unknown optimiser, bad numbers,
            ``resume=True`` without ``checkpoint_dir``.
        CheckpointError: ``resume=True`` and ``last.pt`` belongs to another model / layout.
    """

    def __init__(self, model: nn.Module, losses: Mapping[str, tuple[float, Callable]], *,
                 device: str | torch.device = "auto", optimizer: str = "sgd", lr: float,
                 momentum: float = 0.9, weight_decay: float = 5e-4,
                 milestones: Sequence[int] = (), gamma: float = 0.1, warmup_iters: int = 0,
                 warmup_factor: float = 0.01, lr_policy: str = "step", lr_power: float = 1.0,
                 lr_max_iters: int | None = None, amp: bool = True, channels_last: bool = True,
                 checkpoint_dir: str | os.PathLike | None = None, resume: bool = False,
                 input_fn: Callable[[dict], Any] | None = None, seed: int = 0,
                 progress: bool = True, find_unused_parameters: bool = False,
                 callbacks: Sequence["Callback"] = ()):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr!r}")
        self.seed, self.progress, self.input_fn = int(seed), bool(progress), input_fn
        self.callbacks = list(callbacks)

        # device and distributed setup
        self.device = resolve_device(device)
        if self.device.type == "cuda" and self.device.index is None and env_world_size() > 1:
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        self.rank, self.world_size = init_from_env(str(self.device))   # (0, 1) without torchrun
        cuda = self.device.type == "cuda"

        # loss terms
        self.weights, self._terms = self._check_losses(losses)
        self.loss_terms = nn.ModuleDict({n: t for n, t in self._terms.items()
                                         if isinstance(t, nn.Module)}).to(self.device)

        # model (channels_last before DDP wraps it)
        self.channels_last = bool(channels_last) and cuda
        self.model = model.to(self.device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self._net: nn.Module = self.model
        if self.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP
            self._net = DDP(self.model, device_ids=[self.device.index] if cuda else None,
                            find_unused_parameters=find_unused_parameters)

        # optimiser and schedule
        model_params = [p for p in self.model.parameters() if p.requires_grad]
        seen = {id(p) for p in model_params}
        self._term_params = [p for p in self.loss_terms.parameters()
                             if p.requires_grad and id(p) not in seen]
        if not model_params and not self._term_params:
            raise ValueError("nothing to train: the model and the loss terms have no "
                             "parameter with requires_grad=True")
        groups = [{"params": model_params}] + ([{"params": self._term_params}]
                                               if self._term_params else [])
        self.optimizer_name = str(optimizer).lower()
        if self.optimizer_name == "sgd":
            self.optimizer = torch.optim.SGD(groups, lr=lr, momentum=momentum,
                                             weight_decay=weight_decay, nesterov=False)
        elif self.optimizer_name == "adam":
            self.optimizer = torch.optim.Adam(groups, lr=lr, weight_decay=weight_decay)
        else:
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")
        self.scheduler = WarmupMultiStepLR(self.optimizer, milestones, gamma, warmup_iters,
                                           warmup_factor, policy=lr_policy, power=lr_power,
                                           max_iters=lr_max_iters)

        # mixed precision
        self.amp_dtype: torch.dtype | None = None
        self.scaler: torch.amp.GradScaler | None = None
        if amp and cuda:
            self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            if self.amp_dtype is torch.float16:
                self.scaler = torch.amp.GradScaler("cuda")

        # progress state and history
        self.epoch = 0          # completed epochs (= index of the next epoch)
        self.epoch_iter = 0     # steps done inside epoch ``self.epoch`` (mid-epoch stop)
        self.iteration = 0      # optimiser steps done
        self._columns = (["iter", "epoch", "loss"] + [f"loss_{n}" for n in self._terms]
                         + ["lr", "img_per_s", *STAT_COLUMNS])
        self._hist: dict[str, list] = {c: [] for c in self._columns}
        self._host_buf: torch.Tensor | None = None
        self._rebuilt: tuple[DataLoader, DataLoader, ShardedBatchSampler] | None = None

        self.checkpoint_path = (Path(checkpoint_dir) / "last.pt"
                                if checkpoint_dir is not None else None)
        if resume:
            if self.checkpoint_path is None:
                raise ValueError("resume=True needs checkpoint_dir (where last.pt lives)")
            if self.checkpoint_path.exists():
                self.load_checkpoint(self.checkpoint_path)
                self._say(f"resumed from {self.checkpoint_path}: epoch {self.epoch}, "
                          f"iteration {self.iteration}")
            else:
                self._say(f"resume=True but {self.checkpoint_path} does not exist yet: "
                          "starting from scratch")

    # ------------------------------------------------------------------ setup helpers
    @staticmethod
    def _check_losses(losses) -> tuple[dict[str, float], dict[str, Callable]]:
        if not isinstance(losses, Mapping) or not losses:
            raise ValueError("losses must be a non-empty mapping {name: (weight, term)}, "
                             f"got {losses!r}")
        weights, terms = {}, {}
        for name, spec in losses.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise ValueError(f"loss name {name!r} must be a Python identifier "
                                 "(it becomes the history column loss_<name>)")
            if not isinstance(spec, (tuple, list)) or len(spec) != 2:
                raise TypeError(f"losses[{name!r}] must be a (weight, term) pair, got {spec!r}")
            w, term = spec
            if not isinstance(w, (int, float)) or not math.isfinite(w):
                raise ValueError(f"losses[{name!r}]: weight must be a finite number, got {w!r}")
            if not callable(term):
                raise TypeError(f"losses[{name!r}]: term must be callable "
                                f"term(outputs, batch) -> scalar, got {term!r}")
            weights[name], terms[name] = float(w), term
        if all(w == 0 for w in weights.values()):
            raise ValueError(f"every loss weight is 0: {weights}")
        return weights, terms

    def _say(self, msg: str) -> None:
        if self.rank == 0:
            print(msg)

    # ---------------------------------------------------------------------- history
    @property
    def history(self) -> pd.DataFrame:
        """Per-iteration history (columns in the module docstring), a fresh DataFrame."""
        df = pd.DataFrame(self._hist, columns=self._columns)
        return df.astype({"iter": "int64", "epoch": "int64"})

    # ------------------------------------------------------------------------- data
    def _set_epoch(self, loader: Iterable, epoch: int) -> None:
        """Seed every RNG from (seed, epoch) and pin the sampler's epoch (resume exactness)."""
        s = _epoch_seed(self.seed, epoch)
        seed_everything(s)
        seen: set[int] = set()
        bs = getattr(loader, "batch_sampler", None)
        for obj in (loader, bs, getattr(bs, "sampler", None), getattr(loader, "sampler", None)):
            if obj is not None and id(obj) not in seen and hasattr(obj, "set_epoch"):
                seen.add(id(obj))
                obj.set_epoch(epoch)
        gen = getattr(loader, "generator", None)
        if isinstance(gen, torch.Generator):
            gen.manual_seed(s)

    def _batches(self, loader: Iterable, skip: int) -> Iterator:
        """This rank's batches of one epoch, the first ``skip`` of them left out."""
        if (isinstance(loader, DataLoader) and loader.batch_sampler is not None
                and not isinstance(loader.dataset, IterableDataset)):
            need_pin = self.device.type == "cuda" and not loader.pin_memory
            if self.world_size == 1 and not need_pin and skip == 0:
                return iter(loader)
            if self._rebuilt is None or self._rebuilt[0] is not loader:
                shard = ShardedBatchSampler(loader.batch_sampler, self.rank, self.world_size)
                kw = dict(num_workers=loader.num_workers, collate_fn=loader.collate_fn,
                          pin_memory=loader.pin_memory or self.device.type == "cuda",
                          timeout=loader.timeout, worker_init_fn=loader.worker_init_fn,
                          multiprocessing_context=loader.multiprocessing_context,
                          generator=loader.generator,
                          persistent_workers=loader.persistent_workers)
                if loader.num_workers > 0:
                    kw["prefetch_factor"] = loader.prefetch_factor
                self._rebuilt = (loader, DataLoader(loader.dataset, batch_sampler=shard, **kw),
                                 shard)
            self._rebuilt[2].skip = skip
            return iter(self._rebuilt[1])
        # any other iterable of batches: shard by position
        return iter(ShardedBatchSampler(loader, self.rank, self.world_size, skip))

    def _rank_len(self, loader: Iterable) -> int | None:
        try:
            return len(loader) // self.world_size
        except TypeError:
            return None

    def _to_device(self, batch: Any) -> dict:
        if not isinstance(batch, Mapping):
            raise TypeError("Trainer batches must be dicts as ImageDataset yields (img, pid, "
                            f"camid, index, path, ...); got {type(batch).__name__}")
        out = {}
        for k, v in batch.items():
            if torch.is_tensor(v):
                v = v.to(self.device, non_blocking=True)
                if self.channels_last and v.ndim == 4 and v.is_floating_point():
                    v = v.contiguous(memory_format=torch.channels_last)
            out[k] = v
        return out

    def _model_input(self, batch: dict) -> Any:
        if self.input_fn is not None:
            return self.input_fn(batch)
        if "img" not in batch:
            raise KeyError(f"batch has no 'img' (keys: {sorted(batch)}); pass input_fn=")
        return batch["img"]

    # ------------------------------------------------------------------------- step
    def _step(self, batch: dict, epoch: int) -> list[float]:
        """One optimiser step; returns [total, *terms, *stats] as Python floats."""
        self.optimizer.zero_grad(set_to_none=True)
        inputs = self._model_input(batch)
        ctx = (torch.autocast(self.device.type, dtype=self.amp_dtype) if self.amp_dtype
               else contextlib.nullcontext())
        with ctx:
            outputs = self._net(**inputs) if isinstance(inputs, Mapping) else self._net(inputs)
        if not isinstance(outputs, Mapping):
            raise TypeError(f"{type(self.model).__name__} returned {type(outputs).__name__} in "
                            "training mode; the model contract asks for a dict (logits, "
                            "embeddings, featuremaps, ...)")
        if self.amp_dtype is not None:
            outputs = _float32(outputs)
        values = []
        for name, term in self._terms.items():
            v = term(outputs, batch)
            if not torch.is_tensor(v) or v.numel() != 1:
                raise ValueError(f"loss term {name!r} must return a scalar tensor, got "
                                 f"{type(v).__name__} {tuple(getattr(v, 'shape', ()))}")
            values.append(v.reshape(()).float())
        total = sum(self.weights[n] * v for n, v in zip(self._terms, values)
                    if self.weights[n] != 0)
        emb, pids = outputs.get("embeddings"), batch.get("pid")
        if torch.is_tensor(emb) and torch.is_tensor(pids) and emb.ndim >= 2:
            stats = _distance_stats_tensor(emb, pids)
        else:
            stats = torch.full((3,), float("nan"), device=total.device)
        vec = torch.cat([total.detach().reshape(1), torch.stack(values).detach(), stats])

        # copy the numbers to the host before backward so the check overlaps with it
        if self.device.type == "cuda":
            if self._host_buf is None or self._host_buf.shape != vec.shape:
                self._host_buf = torch.empty(vec.shape, dtype=vec.dtype, pin_memory=True)
            self._host_buf.copy_(vec, non_blocking=True)
            ready = torch.cuda.Event()
            ready.record()
        (self.scaler.scale(total) if self.scaler is not None else total).backward()
        if self.device.type == "cuda":
            ready.synchronize()
            vals = self._host_buf.tolist()
        else:
            vals = vec.tolist()

        bad = [n for n, v in zip(self._terms, vals[1:]) if not math.isfinite(v)]
        bad_total = not math.isfinite(vals[0])
        if self.world_size > 1:  # every rank must stop together, or the others hang
            flag = torch.tensor([float(bad_total or bool(bad))], device=self.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            bad_any = flag.item() > 0
        else:
            bad_any = bad_total or bool(bad)
        if bad_any:
            self._raise_nonfinite(epoch, vals, bad)

        if self.world_size > 1 and self._term_params:
            for p in self._term_params:
                if p.grad is not None:
                    dist.all_reduce(p.grad)
                    p.grad /= self.world_size
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        if self.world_size > 1:
            for b in self.loss_terms.buffers():
                if b.is_floating_point():
                    dist.all_reduce(b)
                    b /= self.world_size
        return vals

    def _raise_nonfinite(self, epoch: int, vals: list[float], bad: list[str]) -> None:
        terms = ", ".join(f"{n}={v}" for n, v in zip(self._terms, vals[1:]))
        what = (f"term(s) {bad}" if bad else
                "the weighted sum" if not math.isfinite(vals[0]) else "another rank's loss")
        if self.checkpoint_path is not None and self.checkpoint_path.exists():
            kept = (f"the last good checkpoint {self.checkpoint_path} (epoch {self.epoch}, "
                    f"iteration {self._ckpt_iteration}) was left untouched")
        else:
            kept = "no checkpoint has been written"
        raise FloatingPointError(
            f"non-finite loss from {what} at iteration {self.iteration} (epoch {epoch}, "
            f"step {self.epoch_iter} of the epoch): total={vals[0]}, {terms}. Training "
            f"stopped before the optimiser step; {kept}. Lower the learning rate, check the "
            "inputs for NaN, or try amp=False.")

    # -------------------------------------------------------------------------- fit
    def fit(self, loader: Iterable, *, epochs: int | None = None,
            max_iters: int | None = None) -> pd.DataFrame:
        """Train until ``epochs`` epochs in total or ``max_iters`` iterations in total.

        Both counts are totals (a resumed trainer continues towards the same numbers);
        ``max_iters`` may stop inside an epoch (smoke runs). The loader yields dict
        batches; a ``DataLoader`` is re-wrapped when the rank must shard it, pin memory
        for CUDA or skip batches on a mid-epoch resume (same dataset, batch sampler,
        workers, collate and generator).

        Returns:
            ``self.history`` (all iterations so far, resumed ones included).

        Raises:
            ValueError: neither ``epochs`` nor ``max_iters`` given, or an epoch without batches.
            FloatingPointError: a NaN/inf loss (see the module docstring).
        """
        if epochs is None and max_iters is None:
            raise ValueError("fit needs epochs=, max_iters= or both")
        for name, v in (("epochs", epochs), ("max_iters", max_iters)):
            if v is not None and (not isinstance(v, (int, np.integer)) or v < 0):
                raise ValueError(f"{name} must be an int >= 0, got {v!r}")
        self.model.train()
        self.loss_terms.train()
        per_rank = self._rank_len(loader)
        if per_rank == 0:
            raise ValueError(f"the loader yields {len(loader)} batches, fewer than the "
                             f"{self.world_size} ranks")
        tqdm = progress_bar_class()
        while ((epochs is None or self.epoch < epochs)
               and (max_iters is None or self.iteration < max_iters)):
            epoch = self.epoch
            self._set_epoch(loader, epoch)
            batches = self._batches(loader, self.epoch_iter)
            total = None if per_rank is None else per_rank - self.epoch_iter
            bar = tqdm(total=total, desc=f"epoch {epoch + 1}/{epochs or '?'}", leave=False,
                       disable=not self.progress or self.rank != 0, dynamic_ncols=True)
            stopped, n_done = False, 0
            t_prev = t_wait = time.perf_counter()
            try:
                for batch in batches:
                    batch, t_got = self._to_device(batch), time.perf_counter()
                    LEDGER.add("data", t_got - t_wait)
                    lr = self.optimizer.param_groups[0]["lr"]
                    vals = self._step(batch, epoch)
                    self.scheduler.step()
                    now = time.perf_counter()
                    n_img = len(batch["pid"]) if torch.is_tensor(batch.get("pid")) else float("nan")
                    row = [self.iteration, epoch, *vals[:1 + len(self._terms)], lr,
                           n_img * self.world_size / max(now - t_prev, 1e-9),
                           *vals[1 + len(self._terms):]]
                    for c, v in zip(self._columns, row):
                        self._hist[c].append(v)
                    for cb in self.callbacks:
                        cb.on_step(self, dict(zip(self._columns, row)))
                    t_prev, t_wait = now, time.perf_counter()
                    LEDGER.add("train", t_wait - t_got)   # step, history, callbacks
                    self.iteration += 1
                    self.epoch_iter += 1
                    n_done += 1
                    bar.update(1)
                    if n_done % 10 == 1:      # loss, each term, lr, images/s of all ranks
                        bar.set_postfix(dict(zip(("loss", *self._terms), vals)), lr=f"{lr:.2e}",
                                        img_s=f"{row[4 + len(self._terms)]:.0f}", refresh=False)
                    if max_iters is not None and self.iteration >= max_iters and (
                            per_rank is None or self.epoch_iter < per_rank):
                        stopped = True
                        break
            finally:
                bar.close()
            if n_done == 0 and not stopped and self.epoch_iter == 0:
                raise ValueError(f"epoch {epoch}: the loader yielded no batch")
            if not stopped:
                self.epoch, self.epoch_iter = epoch + 1, 0
            self._sync_buffers()
            self.save_checkpoint()
            for cb in self.callbacks:
                cb.on_epoch_end(self)
            if stopped:
                break
        return self.history

    def _sync_buffers(self) -> None:
        """DDP: copy rank 0's model buffers (BatchNorm running stats) to every rank.

        DDP broadcasts them at the start of each forward, so after the last step of an
        epoch each rank holds its own batch's update; this makes the replicas identical.
        """
        if self.world_size > 1:
            for b in self.model.buffers():
                dist.broadcast(b, src=0)

    # ------------------------------------------------------------------- checkpoints
    _ckpt_iteration: int = -1

    def state_dict(self) -> dict:
        """Everything ``last.pt`` holds (tensors and plain data; layout ``CHECKPOINT_KEYS``)."""
        return {
            "meta": {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
                     "model_class": type(self.model).__name__,
                     "terms": list(self._terms), "optimizer": self.optimizer_name,
                     "world_size": self.world_size, "torch": str(torch.__version__)},
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else {},
            "losses": self.loss_terms.state_dict(),
            "epoch": self.epoch, "epoch_iter": self.epoch_iter, "iteration": self.iteration,
            "rng": rng_state(),
            "history": {c: list(v) for c, v in self._hist.items()},
        }

    def save_checkpoint(self, path: str | os.PathLike | None = None) -> Path | None:
        """Write ``state_dict()`` atomically to ``path`` (default ``checkpoint_path``).

        Only rank 0 writes. Returns the path, or None when there is nothing to write to.

        Raises:
            FloatingPointError: a model parameter is NaN/inf (the file on disk is kept).
        """
        path = Path(path) if path is not None else self.checkpoint_path
        if path is None or self.rank != 0:
            return None
        bad = [n for n, p in self.model.named_parameters() if not torch.isfinite(p).all()]
        if bad:
            raise FloatingPointError(f"not writing {path}: non-finite parameters {_short(bad)} "
                                     f"at iteration {self.iteration}; the previous file is kept")
        state = self.state_dict()
        try:
            with atomic_path(path) as tmp:
                torch.save(state, tmp)
        except (OSError, RuntimeError) as e:   # torch reports a full disk as RuntimeError
            free = shutil.disk_usage(path.parent).free if path.parent.exists() else -1
            raise OSError(f"could not write checkpoint {path} ({type(e).__name__}: "
                          f"{str(e).splitlines()[0]}); {free / 2**20:.0f} MiB free on that "
                          "disk (full?). The previous checkpoint is kept unchanged") from e
        self._ckpt_iteration = self.iteration
        return path

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        """Restore a ``last.pt`` written by a Trainer of the same model and loss terms.

        Raises:
            CheckpointError: unreadable file, other layout/version (names the missing or
                unexpected top-level keys), other model class, or model / loss-term state
                keys or shapes that differ (names them), other term names or optimiser.
        """
        path = Path(path)
        ck = read_checkpoint(path, model_class=type(self.model).__name__,
                             terms=list(self._terms), optimizer=self.optimizer_name,
                             model_state=self.model.state_dict(),
                             loss_state=self.loss_terms.state_dict())
        try:
            self.model.load_state_dict(ck["model"])
            self.loss_terms.load_state_dict(ck["losses"])
            self.optimizer.load_state_dict(ck["optimizer"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise CheckpointError(f"checkpoint {path}: {e}") from e
        self.scheduler.load_state_dict(ck["scheduler"])
        if self.scaler is not None and ck["scaler"]:
            self.scaler.load_state_dict(ck["scaler"])
        self.epoch, self.epoch_iter = int(ck["epoch"]), int(ck["epoch_iter"])
        self.iteration = int(ck["iteration"])
        hist = ck["history"]
        self._hist = {c: list(hist.get(c, [float("nan")] * len(hist.get("iter", []))))
                      for c in self._columns}
        set_rng_state(ck["rng"])
        self._ckpt_iteration = self.iteration

"""What every paper's experiments share: data from a config, one variant trained and evaluated.

The paper notebooks run many variants of one recipe (a loss ablation, a component
ablation, a hyper-parameter sweep). Each variant is one call of :func:`train_and_evaluate`
with its model name, model options, loss terms and :class:`~reidnb.core.stages.Stage`;
everything else (data loading, sampler, transforms, checkpoints, evaluation) follows the
notebook's config, so a notebook cell stays a few lines long (STYLE.md, "Notebook cells
call the package").

Finished runs live in the run store (:mod:`reidnb.core.runs`): the folder of a run is named
after a hash of everything that defines its training, the Trainer resumes from it, its
history is written as CSV and its evaluation is saved beside the checkpoint, so re-running
a finished notebook cell loads the run instead of training or extracting features again.

This module sits in ``papers/`` rather than ``core/`` because it builds datasets, models
and evaluations, layers that ``core`` may not import (DESIGN.md: imports point down).
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..core.config import RunConfig
from ..core.distributed import SplitBatchSampler, barrier, is_main, rank_world
from ..core.engine import HistoryCSV, TensorBoardLogger, Trainer
from ..core.runs import Run, RunDir, SeedGroup, run_key
from ..core.stages import SAMPLERS, Stage, batches_per_epoch
from ..core.utils import atomic_write_text, seed_everything
from ..data.datasets import ImageDataset, ReIDDataset, load_dataset, subset_test, subset_train
from ..data.memory import BatchTransform, MemoryDataset
from ..data.samplers import AnchorRankingSampler, RandomIdentitySampler
from ..data.transforms import build_transforms
from ..evaluation import EvalResult, evaluate
from ..models import build_model

__all__ = ["load_data", "make_train_loader", "test_transform", "Run", "batches_per_epoch",
           "epoch_images",
           "train_and_evaluate", "training_key", "stage_iters", "stage_loader", "load_run", "fit_stage",
           "split_for_ranks", "ORIGIN", "CACHE_ONLY", "DataPrepared"]

#: What trained the runs of this process, recorded in each run's ``finished.json`` as
#: ``origin.command`` (the CLI sets it to its command line; None: ``sys.argv``, or "a
#: notebook kernel" inside Jupyter/papermill).
ORIGIN: dict[str, Any] = {"command": None}

#: ``{"on": True}`` (``reidnb.papers.entries.cache_only``): a run that is not finished in
#: the store raises FileNotFoundError instead of training (``reidnb.load_run``).
CACHE_ONLY: dict[str, bool] = {"on": False, "data_only": False}


class DataPrepared(Exception):
    """Raised by :func:`train_and_evaluate` when ``CACHE_ONLY["data_only"]`` is set: the
    data (and its mask / part caches) are ready and nothing is to be trained yet (the CLI's
    rank 0 prepares them before the other torchrun ranks read them)."""


def _origin() -> dict[str, Any]:
    cmd = ORIGIN.get("command")
    if cmd is None:
        argv0 = os.path.basename(sys.argv[0]) if sys.argv else ""
        cmd = "a notebook kernel" if "ipykernel" in argv0 or "papermill" in argv0 \
            else " ".join(sys.argv)
    return {"command": cmd, "host": socket.gethostname(), "world_size": rank_world()[1],
            "when": time.strftime("%Y-%m-%d %H:%M:%S")}


def _origin_text(record: Mapping[str, Any] | None) -> str:
    o = (record or {}).get("origin") or {}
    if not o:
        return ""
    w = int(o.get("world_size") or 1)
    return (f" trained by {o.get('command')!r} on host {o.get('host')}"
            f"{f' with {w} processes (torchrun)' if w > 1 else ''} at {o.get('when')};")


def load_data(cfg: RunConfig, *, verbose: bool = True) -> ReIDDataset:
    """Load ``cfg.dataset`` from ``cfg.data_root`` and apply the profile's train subset.

    The synthetic set is always generated with seed 0 (one set shared by every run and
    notebook; ``cfg.seed`` drives training only). ``cfg.max_train_pids`` (quick profile on
    a real dataset) keeps that many random training identities; the reduction is printed
    and kept in ``dataset.notes``. A real dataset's query and gallery are never reduced:
    its test protocol stays standard. On the synthetic set only, ``cfg.max_test_pids``
    (quick profile) keeps that many test identities
    (:func:`reidnb.data.datasets.subset_test`), since evaluating on the CPU costs about as
    much as training there.
    """
    ds = load_dataset(cfg.dataset, cfg.data_root, verbose=verbose,
                      synthetic_size=cfg.synthetic_size, seed=0)
    if cfg.max_train_pids:
        ds = subset_train(ds, cfg.max_train_pids, seed=cfg.seed)
        if verbose:
            print(f"train subset (profile {cfg.profile}): {ds.num_train_pids} identities, "
                  f"{len(ds.train)} images; query/gallery unchanged")
    max_test = cfg.max_test_pids
    if max_test and ds.kind == "synthetic":
        n_query = len(ds.query)
        ds = subset_test(ds, int(max_test), seed=0)
        if verbose and len(ds.query) < n_query:
            print(ds.notes[-1] + f" (profile {cfg.profile}, synthetic set only)")
    return ds


def test_transform(cfg: RunConfig):
    """Resize to ``cfg.height x cfg.width`` (pixels) and ImageNet-normalise."""
    return build_transforms(cfg.height, cfg.width, is_train=False)


def make_train_loader(cfg: RunConfig, dataset: ReIDDataset, *, sampler: str = "random",
                      batch_size: int | None = None, num_instances: int = 4,
                      num_pos: int = 10, load_mask: bool = False, load_parts: bool = False,
                      random_erasing: float = 0.0, pad: int = 10,
                      flip_p: float = 0.5) -> DataLoader:
    """DataLoader over ``dataset.train`` with the paper's batch scheme.

    With ``cfg.memory_cache`` the images are decoded once into memory
    (:class:`~reidnb.data.memory.MemoryDataset`) and each batch is augmented at once by its
    ``collate_fn`` (:class:`~reidnb.data.memory.BatchTransform`, the same recipe) in the
    main process (no workers); else :class:`ImageDataset` decodes every item with
    ``cfg.workers`` workers.

    Args:
        sampler: ``"random"`` (shuffled images, 001's random batches), ``"pk"``
            (:class:`RandomIdentitySampler`, P x K with K = ``num_instances``) or
            ``"anchor"`` (:class:`AnchorRankingSampler`, MaskReID's one identity with
            ``num_pos`` images plus batch - num_pos other identities).
        batch_size: images per batch (default ``cfg.batch_size``).
        random_erasing: probability of random erasing (BoT: 0.5).

    Raises:
        ValueError: unknown sampler.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; expected one of {SAMPLERS}")
    bs = int(batch_size or cfg.batch_size)
    common: dict[str, Any] = dict(num_workers=cfg.workers, persistent_workers=False,
                                  generator=torch.Generator().manual_seed(cfg.seed))
    if getattr(cfg, "memory_cache", False):   # decoded once; whole batches augmented
        data = MemoryDataset(dataset.train, cfg.height, cfg.width, load_mask=load_mask,
                             load_parts=load_parts, workers=cfg.workers)
        common.update(num_workers=0, collate_fn=BatchTransform(
            True, flip_p=flip_p, pad=pad, random_erasing=random_erasing))
    else:
        tf = build_transforms(cfg.height, cfg.width, is_train=True, flip_p=flip_p, pad=pad,
                              random_erasing=random_erasing)
        data = ImageDataset(dataset.train, tf, load_mask=load_mask, load_parts=load_parts)
    pids = [r.pid for r in dataset.train]
    if sampler == "anchor":
        bsampler = AnchorRankingSampler(pids, batch_size=bs, num_pos=num_pos, seed=cfg.seed)
        return DataLoader(data, batch_sampler=bsampler, **common)
    if sampler == "pk":
        s = RandomIdentitySampler(pids, batch_size=bs, num_instances=num_instances,
                                  seed=cfg.seed)
        return DataLoader(data, batch_size=bs, sampler=s, drop_last=True, **common)
    return DataLoader(data, batch_size=bs, shuffle=True, drop_last=True, **common)


def epoch_images(dataset: ReIDDataset, sampler: str, batch_size: int,
                 num_instances: int = 4) -> int:
    """Images one epoch of a stage's loader yields: what a :class:`Stage` is built on
    (``Stage.from_epochs(..., epoch_images(...), batch_size, ...)``), so its epochs and lr
    milestones are epochs of the real loader.

    Random and anchor batches: every training image (``len(dataset.train)``; the anchor
    sampler makes ``len // batch`` batches). P x K batches: the
    :class:`~reidnb.data.samplers.RandomIdentitySampler` epoch, (K-image chunks // P) x P x K,
    which is not ``len(dataset.train)`` (torchreid and fast-reid count epochs of the
    sampler too).

    Raises:
        ValueError: from the sampler (batch not a multiple of K, fewer than P identities).
    """
    if sampler != "pk":
        return len(dataset.train)
    return len(RandomIdentitySampler([r.pid for r in dataset.train], batch_size,
                                     num_instances))


def stage_loader(cfg: RunConfig, dataset: ReIDDataset, stage: Stage, *,
                 load_mask: bool = False, load_parts: bool = False,
                 random_erasing: float = 0.0) -> DataLoader:
    """:func:`make_train_loader` with the stage's sampler and batch scheme."""
    return make_train_loader(cfg, dataset, sampler=stage.sampler, batch_size=stage.batch_size,
                             num_instances=stage.num_instances, num_pos=stage.num_pos,
                             load_mask=load_mask, load_parts=load_parts,
                             random_erasing=random_erasing, flip_p=stage.flip_p, pad=stage.pad)


def split_for_ranks(loader: DataLoader, stage: Stage, *, verbose: bool = True) -> DataLoader:
    """Under torchrun (world size W > 1): the same loader with every global batch cut into
    W per-rank slices (:class:`~reidnb.core.distributed.SplitBatchSampler`), so the
    Trainer's sharding gives each rank B / W images and the global batch stays the stage's
    B (the paper's). One process: ``loader`` itself.

    Raises:
        ValueError: B not divisible by W (or, P x K, B / W not a multiple of K).
    """
    rank, world = rank_world()
    if world == 1:
        return loader
    k = stage.num_instances if stage.sampler == "pk" else None
    split = SplitBatchSampler(loader.batch_sampler, world, num_instances=k)
    per_rank = split.per_rank(int(stage.batch_size))
    if verbose and rank == 0:
        print(f"[distributed] {world} processes: global batch = per-rank batch x world size "
              f"= {per_rank} x {world} = {per_rank * world} ({stage.sampler} batches; "
              f"{stage.iters_per_epoch} iterations per epoch, as one process)")
    kw: dict[str, Any] = dict(num_workers=loader.num_workers, collate_fn=loader.collate_fn,
                              pin_memory=loader.pin_memory, generator=loader.generator,
                              persistent_workers=loader.persistent_workers,
                              worker_init_fn=loader.worker_init_fn)
    if loader.num_workers > 0:
        kw["prefetch_factor"] = loader.prefetch_factor
    return DataLoader(loader.dataset, batch_sampler=split, **kw)


def _records_hash(records) -> str:
    return hashlib.sha1(json.dumps([(r.path, r.pid, r.camid) for r in records])
                        .encode()).hexdigest()


def _init_key(init: Run | nn.Module | None) -> str | None:
    """What a run starts from, for the run key: a finished Run's own key (its name for
    a Run without one), a SHA-1 of a module's weights, or None (fresh init)."""
    if init is None:
        return None
    if isinstance(init, Run):
        return init.key or init.name
    return hashlib.sha1(b"".join(t.detach().cpu().numpy().tobytes()
                                 for t in init.state_dict().values())).hexdigest()


def stage_iters(cfg: RunConfig, stage: Stage) -> int:
    """The stage's iterations with the config's global cap ``max_iters`` (smoke) applied."""
    return min(stage.iters, int(cfg.max_iters)) if cfg.max_iters else stage.iters


def training_key(cfg: RunConfig, dataset: ReIDDataset, spec: Mapping[str, Any]) -> str:
    """Run key of one training (:func:`reidnb.core.runs.run_key`).

    It hashes what determines the trained weights and nothing else: the training records
    (path, pid, camid of every image of ``dataset.train``, so a train-identity subset or
    another data root gives another key), ``cfg.seed``, the image size and ``spec`` (model,
    options, losses, stage, what it starts from). Changing a notebook's sweep list, its
    evaluation settings or its profile name therefore reuses finished runs.
    """
    return run_key({"train": _records_hash(dataset.train), "seed": cfg.seed,
                    "height": cfg.height, "width": cfg.width, **spec})


def fit_stage(trainer: Trainer, loader: Any, stage: Stage, store: RunDir, *,
              iters: int | None = None) -> tuple[pd.DataFrame, float, str]:
    """Train one stage with a resumable Trainer and record it in the run store.

    Runs ``trainer.fit`` for ``stage.epochs`` epochs, stopping at ``iters`` optimiser steps
    (default ``stage.iters``) when that ends inside an epoch. When something was trained
    now (or the run was never marked finished) it adds the wall time to the store's
    ``timing.json`` and writes ``history.csv`` and ``finished.json``
    (:class:`~reidnb.core.runs.RunDir`). Used by :func:`train_and_evaluate` and by
    trainings outside it (SAL's CIFAR-100 Table 4).

    Returns:
        (history DataFrame, training seconds summed over sessions, source: ``"trained"``
        (from scratch now), ``"resumed"`` (continued from a checkpoint) or ``"cache"``
        (finished before; nothing trained)).

    Raises:
        the Trainer's errors (e.g. FloatingPointError on a NaN loss).
    """
    iters = stage.iters if iters is None else int(iters)
    done_before, before = trainer.iteration, store.train_seconds()
    t0 = time.perf_counter()
    history = trainer.fit(loader, epochs=stage.epochs,
                          max_iters=iters if iters < stage.epochs * stage.iters_per_epoch
                          else None)
    trained_now = trainer.iteration > done_before
    train_seconds = before + (time.perf_counter() - t0 if trained_now else 0.0)
    if is_main() and (trained_now or not store.finished()):   # DDP: rank 0 writes
        store.set_train_seconds(train_seconds)
        store.write_history(history)
        meta: dict[str, Any] = {"origin": _origin()} if trained_now else {}
        store.mark_finished(epochs=stage.epochs, iterations=trainer.iteration,
                            train_seconds=train_seconds, **meta)
    source = "trained" if done_before == 0 else ("resumed" if trained_now else "cache")
    return history, train_seconds, source


def train_and_evaluate(cfg: RunConfig, dataset: ReIDDataset, *, name: str, model: str,
                       losses: Mapping[str, tuple[float, nn.Module]], stage: Stage,
                       model_kw: Mapping[str, Any] | None = None,
                       init: Run | nn.Module | None = None,
                       load_mask: bool = False, load_parts: bool = False,
                       random_erasing: float = 0.0,
                       input_fn: Callable[[dict], Any] | None = None,
                       eval_input_fn: Callable[[dict], Any] | None = None,
                       eval_load_mask: bool | None = None, eval_load_parts: bool = False,
                       multi_query: bool = False, rerank: bool = False,
                       evaluate_model: bool = True, verbose: bool = True,
                       seeds: int = 1) -> Run | SeedGroup:
    """Build ``model``, train it for one ``stage`` on ``dataset.train``, evaluate it.

    Args:
        cfg: notebook config (device, seed, image size, backbone defaults, the global cap
            ``max_iters`` of the smoke profile, workers, output_dir).
        dataset: from :func:`load_data`.
        name: run label (also names the run's folder in the store).
        model: registry name for :func:`reidnb.models.build_model`; ``model_kw`` its
            options (``backbone`` and ``pretrained`` default to the config's).
        losses: ``{term name: (weight, term)}`` for :class:`~reidnb.core.engine.Trainer`.
        stage: the schedule, optimiser and batch scheme (:class:`~reidnb.core.stages.Stage`).
        init: a finished :class:`Run` or module whose weights initialise this model
            (two-stage recipes: stage 2 starts from stage 1).
        load_mask, load_parts, input_fn: extra inputs for training (MaskReID masks,
            MagnifierNet part maps). ``eval_*`` the same for evaluation (defaults: the
            training ones, except part maps, which are not used at test time).
        random_erasing: probability of random erasing (BoT: 0.5).
        multi_query, rerank: extra evaluation settings (Market-1501 MQ, re-ranking).
        evaluate_model: False skips the evaluation (stage-1 runs).
        seeds: train this many seeds, ``cfg.seed``, ``cfg.seed + 1``, ... (the first keeps
            ``name``, the others get ``-seed<s>``); an ``init`` that is itself a
            :class:`~reidnb.core.runs.SeedGroup` gives seed i its i-th run (cycled; at
            least as many seeds as it has), so a two-stage recipe repeats both stages per
            seed; a single ``init`` is shared (the seeds then vary only this stage).

    Returns:
        :class:`~reidnb.core.runs.Run` (``seeds`` 1; a :class:`SeedGroup` of them
        otherwise); ``source`` says whether it was trained now, resumed or loaded finished
        from the store, ``eval_cached`` whether its evaluation was loaded.

    Raises:
        ValueError: unknown sampler; errors of the Trainer, models and evaluation.
        reidnb.core.runs.RunCacheError: an unreadable file in the run's folder (named).
    """
    if int(seeds) < 1:
        raise ValueError(f"{name}: seeds must be >= 1, got {seeds!r}")
    if int(seeds) > 1 or isinstance(init, SeedGroup):
        inits = list(init.runs) if isinstance(init, SeedGroup) else [init]
        seeds = max(int(seeds), len(inits))
        # loss terms may hold trained state (centres): every seed starts from a fresh copy
        terms = [losses] + [copy.deepcopy(losses) for _ in range(int(seeds) - 1)]
        runs = tuple(train_and_evaluate(
            dataclasses.replace(cfg, seed=int(cfg.seed) + i), dataset,
            name=name if i == 0 else f"{name}-seed{int(cfg.seed) + i}", model=model,
            losses=terms[i], stage=stage, model_kw=model_kw, init=inits[i % len(inits)],
            load_mask=load_mask, load_parts=load_parts, random_erasing=random_erasing,
            input_fn=input_fn, eval_input_fn=eval_input_fn, eval_load_mask=eval_load_mask,
            eval_load_parts=eval_load_parts, multi_query=multi_query, rerank=rerank,
            evaluate_model=evaluate_model, verbose=verbose) for i in range(int(seeds)))
        return runs[0] if len(runs) == 1 else SeedGroup(runs)
    model_kw = dict(model_kw or {})
    if "backbone" not in model_kw and model != "maskreid":
        model_kw["backbone"] = cfg.backbone
    model_kw.setdefault("pretrained", cfg.pretrained)
    iters = stage_iters(cfg, stage)
    spec = {"name": name, "model": model, "model_kw": model_kw,
            "losses": {k: (w, repr(t)) for k, (w, t) in losses.items()},
            "stage": {**stage.key(), "iters": iters}, "init": _init_key(init),
            "load_mask": load_mask, "load_parts": load_parts,
            "random_erasing": random_erasing}
    if getattr(cfg, "memory_cache", False):   # another random draw of the same recipe
        spec["memory_cache"] = True
    key = training_key(cfg, dataset, spec)
    store = RunDir(Path(cfg.output_dir) / "checkpoints" / cfg.notebook, name, key)
    if CACHE_ONLY["data_only"]:
        raise DataPrepared(name)
    if CACHE_ONLY["on"] and store.finished() is None:
        raise FileNotFoundError(f"[{name}] is not a finished run in the store: {store.path} "
                                f"({store.state()}); train it first: python -m reidnb train "
                                f"<paper of {cfg.notebook}> <variant> --profile {cfg.profile} "
                                "with the same parameters (train --list names the variants)")

    # One process at a time per run: another one asking for it waits here, then finds it
    # finished in the store (reidnb.core.runs.RunDir.claim); a failure leaves failed.json.
    # Under torchrun only rank 0 claims and writes; the others start once it holds the run
    # (barrier) and train in lockstep with it (the Trainer's DDP).
    main_rank = is_main()
    with (store.claim() if main_rank else contextlib.nullcontext()):
        barrier()
        seed_everything(cfg.seed)
        net = build_model(model, dataset.num_train_pids, **model_kw)
        if init is not None:
            src = init.model if isinstance(init, Run) else init
            net.load_state_dict(src.state_dict())
        loader = stage_loader(cfg, dataset, stage, load_mask=load_mask, load_parts=load_parts,
                              random_erasing=random_erasing)
        if len(loader) != stage.iters_per_epoch:
            raise ValueError(f"{name}: {stage.name} was built for {stage.iters_per_epoch} "
                             f"batches per epoch but its {stage.sampler} loader yields "
                             f"{len(loader)}; build the stage on epoch_images(dataset, sampler, "
                             "batch_size, K) so its epochs and lr milestones are epochs of the "
                             "real loader")
        loader = split_for_ranks(loader, stage, verbose=verbose)
        callbacks = [HistoryCSV(store.path / "history.csv")]
        if TensorBoardLogger.available():
            callbacks.append(TensorBoardLogger(store.path / "tensorboard"))
        trainer = Trainer(net, losses, device=cfg.device, optimizer=stage.optimizer, lr=stage.lr,
                          weight_decay=stage.weight_decay, **stage.trainer_kw(iters),
                          checkpoint_dir=store.path, resume=True, input_fn=input_fn,
                          seed=cfg.seed, progress=verbose, callbacks=callbacks,
                          # DDP: a variant may leave parameters without gradient (MaskReID's
                          # classifier under the ranking loss): let DDP find them each step
                          find_unused_parameters=rank_world()[1] > 1)
        done_before = trainer.iteration
        if done_before == 0 and main_rank:
            eval_in = eval_input_fn if eval_input_fn is not None else input_fn
            atomic_write_text(store.path / "spec.json", json.dumps(
                {"num_classes": dataset.num_train_pids, **spec,
                 "height": cfg.height, "width": cfg.width,
                 "eval_input_fn": _qualname(eval_in),
                 "eval_load_mask": load_mask if eval_load_mask is None else eval_load_mask},
                indent=2, default=repr))
        history, train_seconds, source = fit_stage(trainer, loader, stage, store, iters=iters)

        result, eval_seconds, eval_cached = None, 0.0, False
        net = trainer.model.eval()
        if evaluate_model and main_rank:
            eval_in = eval_input_fn if eval_input_fn is not None else input_fn
            eval_mask = load_mask if eval_load_mask is None else eval_load_mask
            ekey = run_key({"run": key, "flip": cfg.eval_flip, "multi_query": multi_query,
                            "rerank": rerank, "load_mask": eval_mask, "load_parts": eval_load_parts,
                            "input_fn": getattr(eval_in, "__qualname__", repr(eval_in)),
                            "size": (cfg.height, cfg.width),
                            "query": _records_hash(dataset.query),
                            "gallery": _records_hash(dataset.gallery)})
            stale = [b for b in (store.verify() if source == "cache" else []) if ekey in b]
            saved = store.load_eval(ekey) if source == "cache" and not stale else None
            if saved is not None:
                result, eval_seconds = EvalResult.from_arrays(saved[0]), saved[1]
                eval_cached = True
            else:
                t0 = time.perf_counter()
                result = evaluate(net, dataset, test_transform(cfg), device=cfg.device,
                                  batch_size=128, workers=cfg.workers, flip=cfg.eval_flip,
                                  multi_query=multi_query, rerank=rerank, input_fn=eval_in,
                                  load_mask=eval_mask, load_parts=eval_load_parts,
                                  memory=getattr(cfg, "memory_cache", False))
                eval_seconds = time.perf_counter() - t0
                store.save_eval(ekey, result.to_arrays(), eval_seconds)
                store.mark_finished()          # the manifest now covers this evaluation too
        barrier()                              # DDP: the other ranks wait for rank 0's evaluation
    run = Run(name=name, model=net, history=history, result=result,
              train_seconds=train_seconds, eval_seconds=eval_seconds, epochs=stage.epochs,
              key=key, folder=store.path, source=source, eval_cached=eval_cached)
    if verbose and main_rank:
        what = {"trained": "trained", "resumed": "resumed and trained",
                "cache": "loaded finished from the run store;"
                         + (_origin_text(store.finished()) if main_rank else "")}[source]
        msg = f"[{name}] {what} {stage.epochs} epochs ({iters} iterations, {train_seconds:.0f} s)"
        if result is not None:
            m = run.metrics()
            msg += (f"; rank-1 {m['rank1']:.1f}%, mAP {m['mAP']:.1f}% "
                    f"({'saved evaluation' if eval_cached else f'{eval_seconds:.0f} s eval'})")
        print(msg)
    return run


def _qualname(fn: Any) -> str | None:
    """``module:qualname`` of a module-level function (None for None or a lambda)."""
    if fn is None:
        return None
    mod, qn = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    return f"{mod}:{qn}" if mod and qn and "<" not in qn else None


def load_run(folder: str | Path, *, device: str = "cpu") -> Run:
    """A finished run from its folder in the store: model (eval mode), history, evaluations.

    The model is rebuilt from the folder's ``spec.json`` (registry name, options, number
    of identities) and ``last.pt``; ``result`` is the first saved evaluation (None when
    the run was never evaluated).

    Raises:
        FileNotFoundError: the folder is not a finished run (names the missing file).
        reidnb.core.runs.RunCacheError: an unreadable file of the run (named).
    """
    from . import import_all

    import_all()                      # every paper's network is registered by name
    folder = Path(folder)
    store = RunDir(folder.parent, folder.name.rsplit("-", 1)[0], folder.name.rsplit("-", 1)[-1])
    store.path = folder
    record = store.finished()
    if record is None or not (folder / "spec.json").exists():
        raise FileNotFoundError(f"{folder} is not a finished reidnb run (needs finished.json "
                                "and spec.json; train it first)")
    spec = json.loads((folder / "spec.json").read_text(encoding="utf-8"))
    kw = dict(spec.get("model_kw") or {}, pretrained=False)
    net = build_model(spec["model"], int(spec["num_classes"]), **kw)
    ck = torch.load(store.checkpoint, map_location="cpu", weights_only=True)
    net.load_state_dict(ck["model"])
    net = net.to(device).eval()
    result, eval_seconds = None, 0.0
    evals = sorted(folder.glob("eval-*.npz"))
    if evals:
        arrays, eval_seconds = store.load_eval(evals[0].stem[len("eval-"):])
        result = EvalResult.from_arrays(arrays)
    history = store.read_history()
    return Run(name=record.get("name", folder.name), model=net,
               history=history if history is not None else pd.DataFrame(),
               result=result, train_seconds=float(record.get("train_seconds", 0.0)),
               eval_seconds=eval_seconds, epochs=record.get("epochs"),
               key=record.get("key", ""), folder=folder, source="cache",
               eval_cached=result is not None)

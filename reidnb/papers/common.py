"""One experiment of a notebook: data from a RunConfig, train with the Trainer, evaluate.

The paper notebooks run many variants of one recipe (a loss ablation, a component
ablation, a hyper-parameter sweep). Each variant is one call of :func:`train_and_evaluate`
with its model name, model options and loss terms; everything else (data loading,
sampler, transforms, optimiser schedule, checkpoints, evaluation) follows the notebook's
:class:`~reidnb.core.config.RunConfig`, so a notebook cell stays a few lines long (STYLE.md,
"Notebook cells call the package").

Finished runs are cached: the checkpoint folder of a run is named after a hash of
everything that defines it, and the Trainer resumes from it, so re-running a notebook
cell after an interruption continues where it stopped and a finished run costs only its
evaluation. Its training time is stored beside the checkpoint and reported again.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..core.config import RunConfig
from ..data.datasets import ImageDataset, ReIDDataset, load_dataset, subset_test, subset_train
from ..data.samplers import AnchorRankingSampler, RandomIdentitySampler
from ..data.transforms import build_transforms
from ..core.engine import Trainer, epochs_to_iters
from ..evaluation import EvalResult, evaluate
from ..models import build_model
from ..core.utils import atomic_write_text, seed_everything

__all__ = ["load_data", "make_train_loader", "test_transform", "Run", "run_key", "batches_per_epoch",
           "train_and_evaluate"]

SAMPLERS = ("random", "pk", "anchor")


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
    max_test = cfg.options.get("max_test_pids")
    if max_test and ds.kind == "synthetic":
        n_query = len(ds.query)
        ds = subset_test(ds, int(max_test), seed=0)
        if verbose and len(ds.query) < n_query:
            print(ds.notes[-1] + f" (profile {cfg.profile}, synthetic set only)")
    return ds


def batches_per_epoch(num_train_images: int, batch_size: int) -> int:
    """Full batches in one epoch (``drop_last=True``, as every training loader here).

    Raises:
        ValueError: fewer training images than one batch (names both numbers).
    """
    n = int(num_train_images) // int(batch_size)
    if n < 1:
        raise ValueError(f"{num_train_images} training images give no batch of "
                         f"{batch_size}; lower batch_size")
    return n


def test_transform(cfg: RunConfig):
    """Resize to ``cfg.height x cfg.width`` (pixels) and ImageNet-normalise."""
    return build_transforms(cfg.height, cfg.width, is_train=False)


def make_train_loader(cfg: RunConfig, dataset: ReIDDataset, *, sampler: str = "random",
                      batch_size: int | None = None, num_instances: int = 4,
                      num_pos: int = 10, load_mask: bool = False, load_parts: bool = False,
                      random_erasing: float = 0.0, pad: int = 10,
                      flip_p: float = 0.5) -> DataLoader:
    """DataLoader over ``dataset.train`` with the paper's batch scheme.

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
    tf = build_transforms(cfg.height, cfg.width, is_train=True, flip_p=flip_p, pad=pad,
                          random_erasing=random_erasing)
    data = ImageDataset(dataset.train, tf, load_mask=load_mask, load_parts=load_parts)
    pids = [r.pid for r in dataset.train]
    common = dict(num_workers=cfg.workers, persistent_workers=False,
                  generator=torch.Generator().manual_seed(cfg.seed))
    if sampler == "anchor":
        bsampler = AnchorRankingSampler(pids, batch_size=bs, num_pos=num_pos, seed=cfg.seed)
        return DataLoader(data, batch_sampler=bsampler, **common)
    if sampler == "pk":
        s = RandomIdentitySampler(pids, batch_size=bs, num_instances=num_instances,
                                  seed=cfg.seed)
        return DataLoader(data, batch_size=bs, sampler=s, drop_last=True, **common)
    return DataLoader(data, batch_size=bs, shuffle=True, drop_last=True, **common)


@dataclasses.dataclass
class Run:
    """A trained and evaluated variant.

    Attributes:
        name: label used in tables and plots.
        model: the trained model (eval mode, on ``cfg.device``).
        history: per-iteration training history (:attr:`reidnb.core.engine.Trainer.history`).
        result: evaluation (features, distances, metrics) or None when not evaluated.
        train_seconds: wall time of training (seconds; from the first run when cached).
        eval_seconds: wall time of the evaluation in this session (seconds).
        epochs: epochs trained.
        key: the checkpoint key (:func:`run_key`); a stage-2 run started from this one
            includes it in its own key.
    """

    name: str
    model: nn.Module
    history: pd.DataFrame
    result: EvalResult | None
    train_seconds: float
    eval_seconds: float
    epochs: int | None
    key: str = ""

    @property
    def seconds(self) -> float:
        return self.train_seconds + self.eval_seconds

    def metrics(self, setting: str = "single-query") -> dict[str, float]:
        """``rank1, rank5, rank10, mAP, mINP`` in percent for one evaluation setting.

        Raises:
            KeyError: the setting was not evaluated (lists those that were).
        """
        if self.result is None or setting not in self.result.results:
            have = [] if self.result is None else sorted(self.result.results)
            raise KeyError(f"run {self.name!r}: setting {setting!r} not evaluated; have {have}")
        r = self.result.results[setting]
        return {"rank1": 100 * float(r.cmc[0]), "rank5": 100 * float(r.cmc[4]),
                "rank10": 100 * float(r.cmc[9]), "mAP": 100 * float(r.mAP),
                "mINP": 100 * float(r.mINP)}


#: Settings of a RunConfig that change what training produces (everything else, e.g.
#: sweep lists, evaluation flags or worker counts, leaves a cached checkpoint valid).
_TRAINING_OPTIONS = ("height", "width", "max_iters")


def run_key(cfg: RunConfig, dataset: ReIDDataset, spec: Mapping[str, Any]) -> str:
    """Checkpoint key of one training: 10 hex digits of a SHA-1.

    It hashes what determines the trained weights and nothing else: the training records
    (path, pid, camid of every image of ``dataset.train``, so a train-identity subset or
    another data root gives another key), ``cfg.seed``, the image size and iteration cap
    (:data:`_TRAINING_OPTIONS`) and ``spec`` (model, options, losses, sampler, optimiser,
    schedule, the key of the run it starts from). Changing a notebook's sweep list, its
    evaluation settings or its profile name therefore reuses finished checkpoints.
    """
    train = hashlib.sha1(json.dumps([(r.path, r.pid, r.camid) for r in dataset.train])
                         .encode()).hexdigest()
    ident = {"train": train, "seed": cfg.seed,
             **{k: cfg.options.get(k) for k in _TRAINING_OPTIONS}, **spec}
    text = json.dumps(ident, sort_keys=True, default=repr)
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def _init_key(init: Run | nn.Module | None) -> str | None:
    """What a run starts from, for :func:`run_key`: a finished Run's own key (its name for
    a Run without one), a SHA-1 of a module's weights, or None (fresh init)."""
    if init is None:
        return None
    if isinstance(init, Run):
        return init.key or init.name
    return hashlib.sha1(b"".join(t.detach().cpu().numpy().tobytes()
                                 for t in init.state_dict().values())).hexdigest()


def train_and_evaluate(cfg: RunConfig, dataset: ReIDDataset, *, name: str,
                       model: str, losses: Mapping[str, tuple[float, nn.Module]],
                       model_kw: Mapping[str, Any] | None = None, sampler: str = "random",
                       batch_size: int | None = None, num_instances: int = 4,
                       num_pos: int = 10, optimizer: str = "sgd", lr: float = 0.01,
                       weight_decay: float = 5e-4, epochs: int | None = None,
                       milestones: Sequence[int] = (), warmup_epochs: int = 0,
                       gamma: float = 0.1, init: Run | nn.Module | None = None,
                       load_mask: bool = False, load_parts: bool = False,
                       random_erasing: float = 0.0,
                       input_fn: Callable[[dict], Any] | None = None,
                       eval_input_fn: Callable[[dict], Any] | None = None,
                       eval_load_mask: bool | None = None, eval_load_parts: bool = False,
                       multi_query: bool = False, rerank: bool = False,
                       evaluate_model: bool = True, verbose: bool = True) -> Run:
    """Build ``model``, train it on ``dataset.train`` with ``losses``, evaluate it.

    Args:
        cfg: notebook config (device, seed, image size, backbone defaults, epochs,
            ``max_iters`` for the smoke profile, workers, output_dir).
        dataset: from :func:`load_data`.
        name: run label (also names the checkpoint folder).
        model: registry name for :func:`reidnb.models.build_model`; ``model_kw`` its
            options (``backbone`` and ``pretrained`` default to the config's).
        losses: ``{term name: (weight, term)}`` for :class:`~reidnb.core.engine.Trainer`.
        sampler, batch_size, num_instances, num_pos, random_erasing: see
            :func:`make_train_loader`.
        optimizer, lr, weight_decay, gamma: optimiser (``"sgd"`` momentum 0.9, ``"adam"``).
        epochs: total epochs (default ``cfg.epochs``); ``milestones`` and
            ``warmup_epochs`` are in **epochs** and converted to iterations here.
        init: a finished :class:`Run` or module whose weights initialise this model
            (two-stage recipes: stage 2 starts from stage 1).
        load_mask, load_parts, input_fn: extra inputs for training (MaskReID masks,
            MagnifierNet part maps). ``eval_*`` the same for evaluation (defaults: the
            training ones, except part maps, which are not used at test time).
        multi_query, rerank: extra evaluation settings (Market-1501 MQ, re-ranking).
        evaluate_model: False skips the evaluation (stage-1 runs).

    Returns:
        :class:`Run`.

    Raises:
        ValueError: unknown sampler; errors of the Trainer, models and evaluation.
    """
    model_kw = dict(model_kw or {})
    if "backbone" not in model_kw and model != "maskreid":
        model_kw["backbone"] = cfg.backbone
    model_kw.setdefault("pretrained", cfg.pretrained)
    epochs = int(epochs if epochs is not None else cfg.epochs)
    spec = {"name": name, "model": model, "model_kw": model_kw,
            "losses": {k: (w, repr(t)) for k, (w, t) in losses.items()},
            "sampler": sampler, "batch_size": batch_size, "num_instances": num_instances,
            "num_pos": num_pos, "optimizer": optimizer, "lr": lr,
            "weight_decay": weight_decay, "epochs": epochs, "milestones": list(milestones),
            "warmup_epochs": warmup_epochs, "gamma": gamma,
            "init": _init_key(init),
            "load_mask": load_mask, "load_parts": load_parts,
            "random_erasing": random_erasing}
    key = run_key(cfg, dataset, spec)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    ckpt_dir = Path(cfg.output_dir) / "checkpoints" / cfg.notebook / f"{safe}-{key}"

    seed_everything(cfg.seed)
    net = build_model(model, dataset.num_train_pids, **model_kw)
    if init is not None:
        src = init.model if isinstance(init, Run) else init
        net.load_state_dict(src.state_dict())
    loader = make_train_loader(cfg, dataset, sampler=sampler, batch_size=batch_size,
                               num_instances=num_instances, num_pos=num_pos,
                               load_mask=load_mask, load_parts=load_parts,
                               random_erasing=random_erasing)
    iters = len(loader)
    trainer = Trainer(net, losses, device=cfg.device, optimizer=optimizer, lr=lr,
                      weight_decay=weight_decay, gamma=gamma,
                      milestones=[m * iters for m in milestones],
                      warmup_iters=epochs_to_iters(warmup_epochs, iters),
                      checkpoint_dir=ckpt_dir, resume=True, input_fn=input_fn,
                      seed=cfg.seed, progress=verbose)
    timing = ckpt_dir / "timing.json"
    before = json.loads(timing.read_text())["train_seconds"] if timing.exists() else 0.0
    t0 = time.perf_counter()
    history = trainer.fit(loader, epochs=epochs, max_iters=cfg.max_iters)
    train_seconds = before + (time.perf_counter() - t0)
    atomic_write_text(timing, json.dumps({"train_seconds": train_seconds}))

    result, eval_seconds = None, 0.0
    net = trainer.model.eval()
    if evaluate_model:
        t0 = time.perf_counter()
        result = evaluate(net, dataset, test_transform(cfg), device=cfg.device,
                          batch_size=128, workers=cfg.workers, flip=cfg.eval_flip,
                          multi_query=multi_query, rerank=rerank,
                          input_fn=eval_input_fn if eval_input_fn is not None else input_fn,
                          load_mask=load_mask if eval_load_mask is None else eval_load_mask,
                          load_parts=eval_load_parts)
        eval_seconds = time.perf_counter() - t0
    run = Run(name=name, model=net, history=history, result=result,
              train_seconds=train_seconds, eval_seconds=eval_seconds, epochs=epochs,
              key=key)
    if verbose:
        msg = f"[{name}] trained {epochs} epochs in {train_seconds:.0f} s"
        if result is not None:
            m = run.metrics()
            msg += f"; rank-1 {m['rank1']:.1f}%, mAP {m['mAP']:.1f}% ({eval_seconds:.0f} s eval)"
        print(msg)
    return run

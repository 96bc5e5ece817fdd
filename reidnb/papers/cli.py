"""``python -m reidnb train`` and ``python -m reidnb features``: long runs outside the notebook.

``train PAPER VARIANT [--profile paper] [--dataset D] [--data-root DIR] [-p name=value ...]``
builds the paper notebook's config from the same parameters (``Config.make``: unknown names
and wrong types refused) and trains one variant through :mod:`reidnb.papers.entries`, i.e.
with the notebook's own calls, into the same run store under the same run key: the notebook
then loads the finished run instead of training it ("loaded finished from the run store;
trained by ..."). ``train --list`` prints every variant of every paper with the published
table row it feeds.

Under ``torchrun --nproc_per_node=N`` (and ``--nnodes``) the process group is initialised
from the environment (gloo on the CPU, NCCL on CUDA), rank 0 prepares the data first (mask
and part caches, the synthetic set) while the others wait, every rank trains in lockstep
(DistributedDataParallel), each batch of the paper's sampler is split over the ranks so
**global batch = per-rank batch x world size = the paper's batch**
(:func:`reidnb.papers.common.split_for_ranks`), rank 0 alone holds the run's lock and
writes checkpoints, history, the evaluation and ``finished.json``, and the other ranks wait
at a barrier for its evaluation. Re-running the same command resumes an interrupted run.
The output directory must be one file system seen by every node.

``features RUN --dataset D --out feats.npz`` writes a finished run's query and gallery
features with pids, camids and image paths (:mod:`reidnb.evaluation.feature_file`), which
:func:`reidnb.evaluation.evaluate_feature_file` evaluates.

:func:`load_run` (``reidnb.load_run``) gives a finished variant to a notebook or script
without ever training.
"""
from __future__ import annotations

import argparse
import importlib
import json
import shlex
import sys
from pathlib import Path
from typing import Any, Sequence

from torch.utils.data import DataLoader

from ..core.distributed import barrier, env_world_size, init_from_env
from ..core.report import ReportError, parse_param
from ..data.datasets import DATASET_NAMES, ImageDataset, load_dataset, subset_test
from ..data.transforms import build_transforms
from ..evaluation import evaluate_feature_file, extract_features, save_feature_file
from . import common
from .entries import ENTRIES, cache_only, entry, flatten_runs, train_one

__all__ = ["add_train_arguments", "add_features_arguments", "run_train", "run_features",
           "load_run", "list_text"]


# ------------------------------------------------------------------------------ parsers
def add_train_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Options of ``python -m reidnb train`` (see the module docstring)."""
    p.add_argument("paper", nargs="?", help=f"paper package: {', '.join(ENTRIES)}")
    p.add_argument("variant", nargs="?", help="variant (python -m reidnb train --list)")
    p.add_argument("--list", action="store_true", help="list every paper's variants and the "
                   "table row each one feeds, then exit")
    p.add_argument("--profile", default="paper", help="smoke | quick | paper (default paper)")
    p.add_argument("--dataset", default=None, help=f"one of {list(DATASET_NAMES)}")
    p.add_argument("--data-root", default=None, help="folder holding the datasets")
    p.add_argument("--output-dir", default=None, help="run store / results root "
                   "(default <repo>/outputs, as the notebooks)")
    p.add_argument("--device", default=None, help="auto | cpu | cuda")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                   help="a notebook parameter (repeatable), e.g. -p seed=1 -p runs=5")
    return p


def add_features_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Options of ``python -m reidnb features``."""
    p.add_argument("run", help="a finished run's folder: <output_dir>/checkpoints/<notebook>/"
                   "<name>-<key>")
    p.add_argument("--dataset", required=True, help=f"one of {list(DATASET_NAMES)}")
    p.add_argument("--data-root", default=None, help="folder holding the datasets")
    p.add_argument("--out", required=True, help="output .npz")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--flip", action="store_true", help="flip-averaged features")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--height", type=int, default=None, help="default: the run's")
    p.add_argument("--width", type=int, default=None, help="default: the run's")
    p.add_argument("--synthetic-size", default=None, help="synthetic set only: its size "
                   "(smoke | quick | default), as the profile that trained the run")
    p.add_argument("--max-test-pids", type=int, default=None,
                   help="synthetic set only: keep this many test identities (as load_data)")
    return p


# -------------------------------------------------------------------------------- train
def list_text(profile: str = "paper") -> str:
    """Every paper's variants with the published row each feeds (``train --list``)."""
    lines = []
    for name, e in ENTRIES.items():
        cfg = e.config(profile, {})
        variants = e.variants(cfg)
        lines.append(f"{name} (notebook {e.notebook}, {len(variants)} variants):")
        width = max(len(v) for v in variants)
        lines += [f"  {v:<{width}}  {row}" for v, row in variants.items()]
    return "\n".join(lines)


def _params(args: argparse.Namespace) -> dict[str, Any]:
    params = dict(parse_param(t) for t in args.param)
    for opt, name in (("dataset", "dataset"), ("data_root", "data_root"),
                      ("output_dir", "output_dir"), ("device", "device")):
        value = getattr(args, opt)
        if value is not None:
            if name in params and params[name] != value:
                raise ReportError(f"--{opt.replace('_', '-')} {value!r} and -p {name}="
                                  f"{params[name]!r} disagree")
            params[name] = value
    if params.get("dataset") is not None and params["dataset"] not in DATASET_NAMES:
        raise ReportError(f"unknown dataset {params['dataset']!r}; expected one of "
                          f"{list(DATASET_NAMES)}")
    return params


def _summary(result: Any) -> list[str]:
    out = []
    for r in flatten_runs(result):
        line = f"  {r.name}: {r.source}, {r.train_seconds:.0f} s training, folder {r.folder}"
        if r.result is not None:
            m = r.metrics()
            line += f"; rank-1 {m['rank1']:.1f}%, mAP {m['mAP']:.1f}%"
        out.append(line)
    if not out:
        out.append(f"  {result!r}")
    return out


def run_train(args: argparse.Namespace, argv: Sequence[str] = ()) -> int:
    """``python -m reidnb train``; returns the exit status (0 ok, 2 usage error)."""
    try:
        if args.list:
            print(list_text(args.profile))
            return 0
        if not args.paper or not args.variant:
            raise ReportError("train needs PAPER and VARIANT (or --list)")
        e = entry(args.paper)
        params = _params(args)
        cfg = e.config(args.profile, params)
        known = e.variants(cfg)
        if args.variant not in known:
            raise ReportError(f"{e.paper}: unknown variant {args.variant!r}; expected one of "
                              f"{list(known)}")
        if env_world_size() > 1 and args.variant.startswith("cifar:"):
            raise ReportError(f"{args.variant!r} (SAL Table 4) trains outside the run-store "
                              "training path and has no torchrun support: run it as one process")
    except (ReportError, ValueError, KeyError) as err:
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"python -m reidnb train: error: {msg}", file=sys.stderr)
        return 2
    rank, world = init_from_env(cfg.device)
    common.ORIGIN["command"] = "python -m reidnb train " + shlex.join(list(argv))
    main = rank == 0
    if main:
        print(f"{e.paper} / {args.variant} ({known[args.variant]}); profile {cfg.profile}, "
              f"{cfg.dataset}, device {cfg.device}, {world} process(es); run store "
              f"{Path(cfg.output_dir) / 'checkpoints' / e.notebook}")
    if world > 1:           # rank 0 builds the data caches first; the others then read them
        if main:
            common.CACHE_ONLY["data_only"] = True
            try:
                train_one(e.paper, cfg, args.variant, params=params, verbose=True)
            except common.DataPrepared:
                pass
            finally:
                common.CACHE_ONLY["data_only"] = False
        barrier()
    try:
        result = train_one(e.paper, cfg, args.variant, params=params, verbose=main)
    finally:
        if world > 1:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
    if main:
        print(f"done: {e.paper} / {args.variant}")
        print("\n".join(_summary(result)))
        print(f"the notebook {e.notebook} at profile {cfg.profile} with the same parameters "
              "now loads these runs from the store")
    return 0


# ----------------------------------------------------------------------------- features
def _resolve(qualname: str | None):
    if not qualname:
        return None
    mod, _, name = qualname.partition(":")
    obj: Any = importlib.import_module(mod)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def run_features(args: argparse.Namespace) -> int:
    """``python -m reidnb features``; returns the exit status (0 ok, 2 usage error)."""
    folder = Path(args.run)
    try:
        if args.dataset not in DATASET_NAMES:
            raise ReportError(f"unknown dataset {args.dataset!r}; expected one of "
                              f"{list(DATASET_NAMES)}")
        run = common.load_run(folder, device="cpu")
        spec = json.loads((folder / "spec.json").read_text(encoding="utf-8"))
        h, w = args.height or spec.get("height"), args.width or spec.get("width")
        if not h or not w:
            raise ReportError(f"{folder / 'spec.json'} has no image size (a run from before "
                              "the CLI): pass --height and --width as it was trained")
    except (ReportError, FileNotFoundError, ValueError) as err:
        print(f"python -m reidnb features: error: {err}", file=sys.stderr)
        return 2
    input_fn = _resolve(spec.get("eval_input_fn"))
    load_mask = bool(spec.get("eval_load_mask", spec.get("load_mask", False)))
    ds = load_dataset(args.dataset, args.data_root, synthetic_size=args.synthetic_size or "quick",
                      seed=0)
    if args.max_test_pids and ds.kind == "synthetic":
        ds = subset_test(ds, int(args.max_test_pids), seed=0)
    if load_mask:
        from ..data.parts import attach_masks
        ds, _ = attach_masks(ds, source="auto", device=args.device)
    tf = build_transforms(int(h), int(w), is_train=False)

    def feats(records):
        loader = DataLoader(ImageDataset(records, tf, load_mask=load_mask),
                            batch_size=args.batch_size, shuffle=False, num_workers=args.workers)
        return extract_features(run.model, loader, args.device, flip=args.flip, input_fn=input_fn)

    q, g = feats(ds.query), feats(ds.gallery)
    out = save_feature_file(args.out, q, g, meta={
        "run": str(folder), "name": run.name, "key": run.key, "dataset": args.dataset,
        "data_root": args.data_root, "height": int(h), "width": int(w), "flip": args.flip})
    res = evaluate_feature_file(out).results["single-query"]
    print(f"{out}: query {tuple(q.feats.shape)}, gallery {tuple(g.feats.shape)}; "
          f"single-query rank-1 {100 * res.cmc[0]:.1f}%, mAP {100 * res.mAP:.1f}%")
    return 0


# ---------------------------------------------------------------------------- load_run
def load_run(paper: str, variant: str, *, output_dir: str | Path | None = None,
             profile: str = "paper", verbose: bool = False, **params: Any) -> Any:
    """A finished variant from the run store, as the notebook / CLI trained it; never trains.

    Builds ``paper``'s config (``Config.make(profile, output_dir=..., **params)``, the
    notebook's parameters) and replays the notebook's calls with the store in read-only
    mode; data are loaded (the run key hashes the training records).

    Returns:
        what :func:`reidnb.papers.entries.train_one` returns: a
        :class:`~reidnb.core.runs.Run` (``model`` in eval mode, ``result`` the saved
        evaluation, ``history``), a list of Runs (bcloss seeds) or a SAL ``SettingRun``.

    Raises:
        FileNotFoundError: the variant (or its stage 1) is not finished in the store
            (names the folder); KeyError: unknown paper / variant; ValueError: a bad parameter.
    """
    if output_dir is not None:
        params["output_dir"] = str(output_dir)
    e = entry(paper)
    cfg = e.config(profile, params)
    with cache_only():
        return train_one(e.paper, cfg, variant, params=params, verbose=verbose)

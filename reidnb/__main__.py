"""Command line: ``python -m reidnb report | train | features`` (also the ``reidnb`` script).

Sub-commands:
    report    execute the notebooks with papermill, render HTML, write index.html
              (options: ``python -m reidnb report --help``; see :mod:`reidnb.core.report`).
    train     train one paper variant as its notebook would, into the same run store
              (``train --list`` lists them; works under ``torchrun``); see
              :mod:`reidnb.papers.cli`.
    features  write a finished run's query / gallery features to an ``.npz``.
    bench     print this machine's reference speed (img/s of a plain ResNet-18 training
              step at 64x32, batch 64; :func:`reidnb.core.bench.reference_speed`): quote it
              beside every time measured on the machine.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

from .core import report


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m reidnb",
        description="reidnb: notebook-driven reproduction workbook for person re-ID papers.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    report.add_arguments(sub.add_parser(
        "report", help="run the notebooks headlessly and write HTML reports + index.html",
        description="Execute notebooks/NN_*.ipynb in order with papermill, render each to "
                    "HTML with nbconvert and write <output-dir>/index.html."))
    from .papers import cli

    cli.add_train_arguments(sub.add_parser(
        "train", help="train one paper variant (as its notebook would) into the run store",
        description="Train PAPER VARIANT with the notebook's parameters into the notebook's "
                    "run store (same run key: the notebook then loads it). Under torchrun "
                    "--nproc_per_node=N the paper's batch is split over the N processes."))
    cli.add_features_arguments(sub.add_parser(
        "features", help="export a finished run's query/gallery features to .npz",
        description="Extract query and gallery features (with pids, camids, image paths) "
                    "of DATASET with the model of a finished run; write them to --out."))
    bench = sub.add_parser(
        "bench", help="print this machine's reference speed (ResNet-18 64x32 training img/s)",
        description="Time a plain ResNet-18 training step (random init, 64x32, batch 64) and "
                    "print images/s: the reference speed quoted beside measured run times.")
    bench.add_argument("--seconds", type=float, default=10.0, help="timed wall time (default 10)")
    bench.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    return parser


def check_notebook_parameters(notebook: Path, params: dict[str, Any]) -> None:
    """Build a workbook notebook's config from ``params`` before any kernel starts, so a
    wrong type (``seed=1.7``), an unknown dataset or a missing device fails here, named.

    Raises:
        ValueError: the config refuses a value (:meth:`reidnb.core.config.RunConfig.make`),
            or an unknown dataset name.
    """
    from .core.config import registered_configs
    from .data.datasets import DATASET_NAMES
    from .papers import import_all

    import_all()
    dataset = params.get("dataset")
    if dataset is not None and dataset not in DATASET_NAMES:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {list(DATASET_NAMES)}")
    cls = registered_configs().get(notebook.stem)
    if cls is not None:          # a notebook of the workbook (a user's own is not checked)
        kw = {k: v for k, v in params.items() if k != "profile"}
        cls.make(params.get("profile", "quick"), **kw)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``) and run the sub-command; returns the exit
    status (0 ok, 1 a notebook failed, 2 usage error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _build_parser().parse_args(argv)
    if args.command == "report":
        return report.run_from_args(args, argv[1:], check=check_notebook_parameters)
    if args.command == "bench":
        import os

        import torch

        from .core.bench import REFERENCE_SETUP, reference_speed

        speed = reference_speed(args.seconds, device=args.device)
        load = f", 1-min load {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
        print(f"reference speed: {speed:.1f} img/s ({REFERENCE_SETUP}; {torch.get_num_threads()} "
              f"torch threads, {os.cpu_count()} CPUs{load})")
        return 0
    from .papers import cli

    if args.command == "train":
        return cli.run_train(args, argv[1:])
    if args.command == "features":
        return cli.run_features(args)
    raise AssertionError(args.command)  # argparse already refused anything else


if __name__ == "__main__":
    sys.exit(main())

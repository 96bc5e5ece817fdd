"""Command line: ``python -m reidnb report ...`` (also the ``reidnb`` console script).

Sub-commands:
    report   execute the notebooks with papermill, render HTML, write index.html
             (options: ``python -m reidnb report --help``; see :mod:`reidnb.core.report`).
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
    raise AssertionError(args.command)  # argparse already refused anything else


if __name__ == "__main__":
    sys.exit(main())

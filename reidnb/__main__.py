"""Command line: ``python -m reidnb report ...`` (also the ``reidnb`` console script).

Sub-commands:
    report   execute the notebooks with papermill, render HTML, write index.html
             (options: ``python -m reidnb report --help``; see :mod:`reidnb.core.report`).
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

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


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``) and run the sub-command; returns the exit
    status (0 ok, 1 a notebook failed, 2 usage error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _build_parser().parse_args(argv)
    if args.command == "report":
        return report.run_from_args(args, argv[1:])
    raise AssertionError(args.command)  # argparse already refused anything else


if __name__ == "__main__":
    sys.exit(main())

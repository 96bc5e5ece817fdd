"""Run the workbook headlessly: papermill executes, nbconvert renders, index.html lists.

``python -m reidnb report [--profile quick] [--dataset market1501] [--data-root DIR]
[--device auto] [--only 01,02] [--output-dir outputs] [-p name=value ...]``

1. Discovers ``notebooks/NN_*.ipynb`` (two digits, underscore) in order; ``--only`` keeps
   the numbers given.
2. Checks every parameter passed against ``papermill.inspect_notebook`` of each selected
   notebook *before anything runs*: a name no selected notebook declares is refused (the
   error lists the valid names); a name only some notebooks declare goes to those only.
   ``profile`` and ``output_dir`` are always passed to the notebooks that declare them;
   paths are made absolute (notebooks run with their own folder as working directory).
3. Executes the notebooks in order with papermill (kernel ``python3``) into
   ``<output>/executed/``, printing which notebook runs and how long it took.
4. Renders each executed notebook, a failed one too, to ``<output>/html/`` with nbconvert's
   ``HTMLExporter`` and the ``lab`` template (input cells kept and collapsible; prompts kept
   so that papermill's "exception at In [N]" banner can be found; ``--no-prompt`` drops them).
5. Writes ``<output>/index.html``: every notebook with status (ok / failed / not run), wall
   time, profile, dataset, a few headline numbers from ``<output>/results/<nb>.csv`` (each
   beside the paper row it stands in for, with what ran: backbone, image size, data kind,
   seeds) and the verdict counts of its published ablation directions
   (:func:`reidnb.core.compare.verdict_counts`: reproduced / contradicted / inconclusive,
   from the 95 % bootstrap intervals of :mod:`reidnb.core.intervals`).

A failing notebook stops the run: the remaining ones are "not run", the HTML of what ran
and the index are still written, and the exit status is 1 with the notebook and cell named
(covid19-indicators ``report.py`` does the same, STYLE.md item 14). Usage errors exit 2.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import datetime as _dt
import html
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from .config import PROFILE_NAMES, PROJECT_ROOT
from .utils import atomic_write_text, resolve_device

__all__ = ["ReportError", "NotebookRun", "discover_notebooks", "select_notebooks",
           "parse_param", "plan_parameters", "run_report", "render_html", "write_index",
           "add_arguments", "main"]

_NB_NAME = re.compile(r"^(\d\d)_[A-Za-z0-9_\-]+\.ipynb$")
#: parameters set by their own flags (refused as ``-p``)
_FLAG_PARAMS = {"profile": "--profile", "dataset": "--dataset", "data_root": "--data-root",
                "device": "--device", "output_dir": "--output-dir"}
#: parameters passed to every notebook that declares them, never checked as unknown
_ALWAYS = ("profile", "output_dir")


class ReportError(Exception):
    """Bad usage: unknown notebook number, unknown parameter, missing folder."""


@dataclasses.dataclass
class NotebookRun:
    """What happened to one notebook in a report run.

    Attributes:
        name: file stem, e.g. ``"01_bcloss"``.
        path: source notebook.
        status: ``"ok"``, ``"failed"`` or ``"not run"``.
        seconds: wall time of the papermill run (None when not run).
        parameters: the parameters passed to it.
        executed: executed notebook path (also written for a failed run), or None.
        html: rendered HTML path, or None.
        error: one-line failure description (notebook, cell, exception), or None.
        started: ``time.time()`` at its start (to tell fresh results from stale ones).
    """

    name: str
    path: Path
    status: str = "not run"
    seconds: float | None = None
    parameters: dict[str, Any] = dataclasses.field(default_factory=dict)
    executed: Path | None = None
    html: Path | None = None
    error: str | None = None
    started: float | None = None


# --------------------------------------------------------------------------- planning
def discover_notebooks(folder: str | Path) -> list[Path]:
    """``NN_*.ipynb`` files of ``folder`` sorted by name.

    Raises:
        ReportError: the folder does not exist or holds no such notebook.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ReportError(f"notebooks folder {folder} does not exist")
    nbs = sorted(p for p in folder.iterdir() if _NB_NAME.match(p.name))
    if not nbs:
        raise ReportError(f"no notebooks named NN_*.ipynb in {folder}")
    return nbs


def select_notebooks(notebooks: Sequence[Path], only: str | Sequence[str] | None) -> list[Path]:
    """Keep the notebooks whose two-digit prefix is in ``only`` (``"01,02"`` or a list).

    Raises:
        ReportError: a number that matches no notebook (the message lists the numbers).
    """
    if not only:
        return list(notebooks)
    wanted = [s.strip() for s in (only.split(",") if isinstance(only, str) else only) if s.strip()]
    prefixes = {p.name[:2]: p for p in notebooks}
    bad = [w for w in wanted if w.zfill(2) not in prefixes]
    if bad:
        raise ReportError(f"--only {','.join(bad)}: no such notebook; available: "
                          + ", ".join(p.stem for p in notebooks))
    keep = {w.zfill(2) for w in wanted}
    return [p for p in notebooks if p.name[:2] in keep]


def parse_param(text: str) -> tuple[str, Any]:
    """``"name=value"`` -> (name, value); the value is read as a Python literal, else YAML
    (``true``, ``null``), else kept as a string (``market1501``).

    Raises:
        ReportError: no ``=`` or a name that is not a Python identifier.
    """
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier():
        raise ReportError(f"-p {text!r}: expected name=value with a Python identifier as name")
    try:
        return name, ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        pass
    try:
        import yaml
        return name, yaml.safe_load(raw)
    except Exception:  # not YAML either: the raw string
        return name, raw


def plan_parameters(notebooks: Sequence[Path], params: dict[str, Any],
                    always: Sequence[str] = _ALWAYS) -> dict[Path, dict[str, Any]]:
    """Parameters each notebook gets: those it declares (``papermill.inspect_notebook``).

    Args:
        notebooks: the selected notebooks.
        params: every parameter asked for.
        always: names passed where declared but never refused (``profile``, ``output_dir``).

    Raises:
        ReportError: a name (not in ``always``) that no notebook declares; the message
            lists the valid names per notebook. Nothing has run at that point.
    """
    import papermill

    declared = {nb: set(papermill.inspect_notebook(str(nb))) for nb in notebooks}
    unknown = [k for k in params if k not in always
               and not any(k in names for names in declared.values())]
    if unknown:
        valid = "\n".join(f"  {nb.stem}: {', '.join(sorted(names)) or '(no parameters cell)'}"
                          for nb, names in declared.items())
        raise ReportError(f"unknown parameter(s) {', '.join(unknown)}: not declared by any "
                          f"selected notebook. Valid names:\n{valid}")
    plans = {nb: {k: v for k, v in params.items() if k in names}
             for nb, names in declared.items()}
    for nb, plan in plans.items():
        info = papermill.inspect_notebook(str(nb))
        for name, value in plan.items():
            _check_against_default(nb, name, value, info[name].get("default"))
    return plans


def _check_against_default(nb: Path, name: str, value: Any, default_src: str | None) -> None:
    """Refuse a value whose type differs from the literal default of the notebook's
    parameters cell (``seed = 0`` takes an int, not ``1.7`` or ``"x"``); ``None`` defaults
    take anything (the notebook's config checks those).

    Raises:
        ReportError: names the notebook, the parameter, the value and the type expected.
    """
    try:
        default = ast.literal_eval(default_src) if default_src is not None else None
    except (ValueError, SyntaxError):
        return
    if default is None or value is None:
        return
    want = type(default)
    ok = isinstance(value, want) and not (want is int and isinstance(value, bool))
    ok = ok or (want is float and isinstance(value, int) and not isinstance(value, bool))
    if not ok:
        raise ReportError(f"parameter {name}={value!r} for {nb.stem}: expected "
                          f"{want.__name__} like its default {default!r}, got "
                          f"{type(value).__name__}")


# --------------------------------------------------------------------------- running
def render_html(executed: Path, html_path: Path, *, prompts: bool = True) -> Path:
    """Render an executed notebook to standalone HTML (nbconvert, ``lab`` template: inputs
    shown and collapsible, images embedded); written atomically."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab")
    exporter.exclude_input_prompt = not prompts
    exporter.exclude_output_prompt = not prompts
    body, _ = exporter.from_filename(str(executed))
    return atomic_write_text(html_path, body)


def _describe_failure(name: str, exc: BaseException) -> str:
    import papermill

    if isinstance(exc, papermill.PapermillExecutionError):
        first = next((ln for ln in str(exc.source).splitlines() if ln.strip()), "")
        return (f"notebook {name} failed in cell In [{exc.exec_count}] (cell #{exc.cell_index} "
                f"of the executed notebook, starting {first.strip()[:80]!r}): "
                f"{exc.ename}: {exc.evalue}")
    return f"notebook {name} failed before finishing: {type(exc).__name__}: {exc}"


def run_report(notebooks: Sequence[Path], selected: Sequence[Path], output_dir: Path,
               plans: dict[Path, dict[str, Any]], *, kernel_name: str = "python3",
               prompts: bool = True, log: Callable[[str], None] = print,
               progress: list[NotebookRun] | None = None) -> list[NotebookRun]:
    """Execute ``selected`` (in order) with papermill, render HTML, stop at the first failure.

    Args:
        notebooks: every discovered notebook (the ones not selected are reported "not run").
        selected: the ones to execute.
        output_dir: absolute; gets ``executed/`` and ``html/``.
        plans: per-notebook parameters (:func:`plan_parameters`).
        progress: a list filled in place with the runs as they are made, so a caller
            interrupted by Ctrl-C still knows what ran (the running one has status
            ``"running"``).

    Returns:
        one :class:`NotebookRun` per discovered notebook, in order.
    """
    import papermill

    runs = [NotebookRun(nb.stem, nb, parameters=plans.get(nb, {})) for nb in notebooks]
    if progress is not None:
        progress[:] = runs
    todo = [r for r in runs if r.path in set(selected)]
    for i, run in enumerate(todo, 1):
        run.executed = output_dir / "executed" / run.path.name
        run.executed.parent.mkdir(parents=True, exist_ok=True)
        log(f"[{i}/{len(todo)}] {run.name}: running ({_fmt_params(run.parameters)})")
        run.started = time.time()
        run.status = "running"
        t0 = time.perf_counter()
        try:
            papermill.execute_notebook(
                str(run.path), str(run.executed), parameters=run.parameters,
                kernel_name=kernel_name, cwd=str(run.path.parent), log_output=False,
                progress_bar=sys.stderr.isatty())  # per-cell bar in a terminal only
            run.status = "ok"
        except Exception as e:  # noqa: BLE001 - recorded, rendered, and re-reported
            run.status = "failed"
            run.error = _describe_failure(run.name, e)
        run.seconds = time.perf_counter() - t0
        log(f"[{i}/{len(todo)}] {run.name}: {run.status} in {run.seconds:.1f} s")
        if run.executed.exists():
            try:
                run.html = render_html(run.executed, output_dir / "html" / f"{run.name}.html",
                                       prompts=prompts)
            except Exception as e:  # noqa: BLE001 - a report without HTML is a failure
                msg = f"HTML rendering of {run.executed} failed: {type(e).__name__}: {e}"
                run.error = f"{run.error}; {msg}" if run.error else msg
                if run.status == "ok":
                    run.status = "failed"
        if run.status == "failed":
            break
    return runs


def _fmt_params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in params.items()) or "no parameters"


# --------------------------------------------------------------------------- index page
def _fresh(path: Path, since: float | None) -> bool:
    return since is not None and path.exists() and path.stat().st_mtime >= since - 1.0


def _verdict_line(results: Any) -> str:
    """``"2 reproduced, 1 contradicted, 3 inconclusive (1 without per-query data) of 6"``
    for one notebook's results frame, or ``""`` when it has no published ablation pair."""
    from .compare import ablation_directions, compare_all, verdict_counts

    d = ablation_directions(compare_all(results))
    d = d[d["published_direction"] != "equal"]
    if d.empty:
        return ""
    n = verdict_counts(d)
    nodata = n["no per-query data"]
    return (f"{n['reproduced']} reproduced, {n['contradicted']} contradicted, "
            f"{n['inconclusive'] + nodata} inconclusive"
            + (f" ({nodata} without per-query data)" if nodata else "") + f" of {len(d)}")


def _notebook_facts(run: NotebookRun, output_dir: Path) -> tuple[str, str, list[str], str]:
    """(profile, dataset, headline lines, verdict counts) of a run, from its saved config
    and results."""
    from .results import _read_one, headline

    profile = str(run.parameters.get("profile", ""))
    dataset = str(run.parameters.get("dataset", "")) if "dataset" in run.parameters else ""
    cfg_path = output_dir / "results" / f"{run.name}.config.json"
    if _fresh(cfg_path, run.started):
        try:
            cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
            profile, dataset = str(cfg.get("profile", profile)), str(cfg.get("dataset", dataset))
        except (OSError, ValueError) as e:
            dataset = f"(unreadable {cfg_path.name}: {e})"
    lines: list[str] = []
    verdicts = ""
    csv = output_dir / "results" / f"{run.name}.csv"
    if _fresh(csv, run.started):
        try:
            res = _read_one(csv)
            lines = headline(res)
            verdicts = _verdict_line(res)
        except ValueError as e:
            lines = [f"unreadable results: {e}"]
    elif csv.exists():
        lines = [f"(results/{csv.name} is from an earlier run: not shown)"]
    return profile, dataset or "(profile default)", lines, verdicts


def _split_text(run: NotebookRun, output_dir: Path) -> str:
    """``data 12 · train 250 · eval 31 · other 20 s`` from the notebook's fresh
    ``results/<name>.time.json`` (:func:`reidnb.core.timing.write_split`), else ``""``."""
    from .timing import PHASES

    path = output_dir / "results" / f"{run.name}.time.json"
    if not _fresh(path, run.started):
        return ""
    try:
        split = json.loads(path.read_text(encoding="utf-8"))
        return " · ".join(f"{p} {float(split[p]):.0f}" for p in PHASES) + " s"
    except (OSError, ValueError, KeyError, TypeError):
        return f"(unreadable {path.name})"


def write_index(runs: Sequence[NotebookRun], output_dir: Path, *, command: str = "",
                reference: str = "") -> Path:
    """Write ``<output_dir>/index.html``: one row per notebook (status, wall time and its
    split into data / train / eval / other, profile, dataset, headline numbers, verdict
    counts of the published ablation directions, links to its HTML and executed notebook),
    the total wall time and ``reference`` (the machine's reference speed, in words). Atomic."""
    colours = {"ok": "#2e7d32", "failed": "#c62828", "not run": "#757575"}
    rows = []
    for r in runs:
        profile, dataset, lines, verdicts = _notebook_facts(r, output_dir) \
            if r.status != "not run" else ("", "", [], "")
        name = html.escape(r.name)
        if r.html is not None:
            name = f'<a href="html/{html.escape(r.html.name)}">{name}</a>'
        links = (f'<a href="executed/{html.escape(r.executed.name)}">ipynb</a>'
                 if r.executed is not None and r.executed.exists() else "")
        split = _split_text(r, output_dir) if r.status != "not run" else ""
        heads = "<br>".join(html.escape(s) for s in lines)
        if r.error:
            heads = f'<span class="err">{html.escape(r.error)}</span>' + (
                "<br>" + heads if heads else "")
        rows.append(
            f"<tr><td>{name}</td><td style=\"color:{colours.get(r.status, '#000')}\">"
            f"<b>{html.escape(r.status)}</b></td>"
            f"<td>{'' if r.seconds is None else f'{r.seconds:.1f} s'}"
            f"{'<br><small>' + html.escape(split) + '</small>' if split else ''}</td>"
            f"<td>{html.escape(profile)}</td><td>{html.escape(dataset)}</td>"
            f"<td>{heads}</td><td>{html.escape(verdicts)}</td><td>{links}</td></tr>")
    stamp = _dt.datetime.now().isoformat(timespec="seconds")
    total = sum(r.seconds or 0.0 for r in runs)
    timing = (f"<p>Total wall time {total / 60:.1f} min"
              + (f" on a machine whose reference speed is {html.escape(reference)}" if reference
                 else "") + ". Times carry to another machine by the ratio of reference speeds "
              "(<code>python -m reidnb bench</code>).</p>")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>reidnb report</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; }}
td, th {{ border: 1px solid #ccc; padding: 4px 8px; vertical-align: top; text-align: left; }}
th {{ background: #f0f0f0; }}
.err {{ color: #c62828; font-family: monospace; }}
</style></head><body>
<h1>reidnb report</h1>
<p>Generated {html.escape(stamp)}{' by <code>' + html.escape(command) + '</code>' if command else ''}.
Each headline number stands beside the paper row it reproduces and says what ran (backbone,
image size, data, seeds); numbers on synthetic data are not comparable with the published
ones (see 05_summary). Verdicts: a published direction (paper: A better than B) is
reproduced or contradicted when the 95% bootstrap interval of the measured difference
excludes 0 on that side or the other, else inconclusive.</p>
{timing}
<table>
<tr><th>notebook</th><th>status</th><th>wall time (split)</th><th>profile</th><th>dataset</th>
<th>headline numbers (percent)</th><th>ablation verdicts</th><th>executed</th></tr>
{chr(10).join(rows)}
</table></body></html>
"""
    return atomic_write_text(output_dir / "index.html", page)


# --------------------------------------------------------------------------- command line
def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``report`` options to ``parser`` (used by ``python -m reidnb report``)."""
    parser.add_argument("--profile", choices=sorted(PROFILE_NAMES), default="quick",
                        help="smoke (CI, seconds), quick (CPU, minutes; default), paper (GPU)")
    parser.add_argument("--dataset", default=None,
                        help="market1501, dukemtmcreid, cuhk03np-labeled, cuhk03np-detected or "
                             "synthetic (default: the profile's)")
    parser.add_argument("--data-root", default=None, help="folder holding the datasets")
    parser.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:1 ...")
    parser.add_argument("--only", default=None, metavar="NN,NN",
                        help="run only the notebooks with these number prefixes, e.g. 01,02")
    parser.add_argument("--output-dir", default="outputs",
                        help="where executed/, html/, results/ and index.html go "
                             "(default: outputs)")
    parser.add_argument("-p", "--parameter", action="append", default=[], metavar="NAME=VALUE",
                        help="extra notebook parameter (repeatable); VALUE is read as a "
                             "Python/YAML literal, e.g. -p seed=1 -p max_iters=20")
    parser.add_argument("--notebooks-dir", default=str(PROJECT_ROOT / "notebooks"),
                        help="folder of the NN_*.ipynb notebooks (default: the project's)")
    parser.add_argument("--bench-seconds", type=float, default=None,
                        help="seconds spent measuring the machine's reference speed before the "
                             "notebooks run, quoted beside the times (0: skip; default 5, "
                             "smoke profile 0)")
    parser.add_argument("--no-prompt", action="store_true",
                        help="leave the In [N]/Out [N] prompts out of the HTML")
    return parser


def _build_parser() -> argparse.ArgumentParser:
    return add_arguments(argparse.ArgumentParser(
        prog="python -m reidnb report",
        description="Execute the notebooks with papermill, render HTML, write index.html."))


def _check_writable(folder: Path) -> None:
    """Create ``folder`` and write a probe file in it.

    Raises:
        ReportError: the folder cannot be created or written (names it and the OS reason).
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-probe-"):
            pass
    except OSError as e:
        raise ReportError(f"--output-dir {folder} is not writable: {e.strerror or e}; "
                          "choose another folder") from None


def _reference_text(args: argparse.Namespace) -> str:
    """The machine's reference speed (:func:`reidnb.core.bench.reference_speed`, measured
    for ``args.bench_seconds`` on the report's device) in words, printed now; ``""`` when
    skipped."""
    seconds = getattr(args, "bench_seconds", None)
    seconds = float((0.0 if args.profile == "smoke" else 5.0) if seconds is None else seconds)
    if seconds <= 0:
        return ""
    from .bench import reference_speed

    speed = reference_speed(seconds, device=args.device or "auto", threads=2)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    text = (f"{speed:.0f} img/s (ResNet-18 training step at 64x32, batch 64, 2 threads, "
            f"{os.cpu_count()} CPUs, 1-min load {load:.1f} before the run)")
    print(f"reference speed: {text}", flush=True)
    return text


def run_from_args(args: argparse.Namespace, argv: Sequence[str] | None = None, *,
                  check: Callable[[Path, dict[str, Any]], None] | None = None) -> int:
    """Run a report for parsed ``args``; returns the exit status (0 ok, 1 failed, 2 usage,
    130 interrupted).

    Before any kernel starts: parameter names and literal types are checked against each
    notebook's parameters cell, ``--data-root`` without ``--dataset`` is refused (it would
    silently train on the synthetic set), the device must exist, the output folder must
    be writable, and ``check(notebook, parameters)`` (the CLI passes one that builds each
    notebook's config) may refuse with a ValueError. Ctrl-C during the run still writes
    ``index.html`` for what ran.
    """
    try:
        params: dict[str, Any] = {}
        for text in args.parameter:
            name, value = parse_param(text)
            if name in _FLAG_PARAMS:
                raise ReportError(f"-p {name}=...: use {_FLAG_PARAMS[name]} instead")
            params[name] = value
        output_dir = Path(args.output_dir).expanduser().resolve()
        params["profile"] = args.profile
        params["output_dir"] = str(output_dir)
        if args.dataset is not None:
            params["dataset"] = args.dataset
        if args.data_root is not None:
            params["data_root"] = str(Path(args.data_root).expanduser().resolve())
        if args.data_root is not None and args.dataset is None:
            raise ReportError("--data-root given without --dataset: name the dataset it holds "
                              "(market1501, dukemtmcreid, cuhk03np-labeled, cuhk03np-detected);"
                              " without it the profile's synthetic set would be generated "
                              "inside that folder")
        if args.device is not None:
            try:
                resolve_device(args.device)
            except ValueError as e:
                raise ReportError(f"--device: {e}") from None
            params["device"] = args.device
        notebooks = discover_notebooks(Path(args.notebooks_dir).expanduser().resolve())
        selected = select_notebooks(notebooks, args.only)
        plans = plan_parameters(selected, params)
        for nb in selected:
            if check is not None:
                try:
                    check(nb, plans[nb])
                except ValueError as e:
                    raise ReportError(f"{nb.stem}: {e}") from None
        _check_writable(output_dir)
    except ReportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"reidnb report: {len(selected)} notebook(s), profile {args.profile}, "
          f"output {output_dir}", flush=True)
    reference = _reference_text(args)
    runs: list[NotebookRun] = []
    interrupted = False
    try:
        runs = run_report(notebooks, selected, output_dir, plans, prompts=not args.no_prompt,
                          log=lambda s: print(s, flush=True), progress=runs)
    except KeyboardInterrupt:
        interrupted = True
        for r in runs:
            if r.status == "running":
                r.status, r.error = "failed", f"notebook {r.name} interrupted (Ctrl-C)"
    command = "python -m reidnb report " + " ".join(argv or [])
    index = write_index(runs, output_dir, command=command.strip(), reference=reference)
    print(f"index: {index}", flush=True)
    if interrupted:
        print("error: interrupted; index.html lists what ran", file=sys.stderr)
        return 130
    failed = [r for r in runs if r.status == "failed"]
    if failed:
        print(f"error: {failed[0].error}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m reidnb report`` without the ``report`` word; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _build_parser().parse_args(argv)
    return run_from_args(args, argv)

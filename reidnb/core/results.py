"""Published numbers, measured results and the side-by-side comparison tables.

Published numbers ship with the package (``reidnb/resources/paper_results.csv``, built from
the paper texts by ``papers/build_paper_results.py``): one row per printed table cell,
columns :data:`PAPER_COLUMNS`, values in percent. Each notebook records what it measured
in the same vocabulary plus how it was measured (:data:`RESULT_COLUMNS`) and writes it to
``<output_dir>/results/<notebook>.csv`` with :func:`write_results`; ``05_summary`` reads
them back (:func:`read_results`) and puts them beside the paper
(:mod:`reidnb.core.compare`). A paper states which published cells its variants fill as a
``PUBLISHED`` map of :class:`Cell`; :func:`published_rows` turns runs into rows with it.

How a measured row names the published row it reproduces
--------------------------------------------------------
A measured row reproduces the published row with the same ``paper_id``, ``table``,
``dataset``, ``protocol``, ``method``, ``variant``, ``metric`` and ``reranking``. ``method``
and ``variant`` are the CSV's own strings, copied verbatim (``load_published(paper_id,
table)`` lists them). Examples:

=========================  ===============================  ==========================================================
published row              method                           variant
=========================  ===============================  ==========================================================
bcloss Table 1 baseline    ``Baseline``                     ``ResNet50, softmax only``
bcloss Table 1 + BC loss   ``Ours``                         ``ResNet50, softmax + batch-contrastive loss (lambda=1)``
maskreid Table 2 ranking   ``MaskReID_rank``                ``ranking loss, lambda=2, alpha=0.15``
  ... with re-ranking      ``MaskReID_rank+re-ranking``     same variant, ``reranking=True``
sal Table 1 setting 8      ``Ours``                         ``setting 8: softmax+quadruplet+DIL+SAC+multi``
magnifiernet Table 2       ``Ours``                         ``G+M+SAB``
=========================  ===============================  ==========================================================

``dataset`` is the paper's dataset name (``Market-1501``, ``DukeMTMC-reID``, ``CUHK03-L``,
``CUHK03-D``); the loader names (``market1501`` ...) are accepted and translated. A run on
the synthetic set names the published dataset it stands in for and is recorded with
``dataset_kind="synthetic"``: its numbers are shown, but flagged as not comparable. When
matching, an empty ``protocol`` and ``"single-query"`` are the same (the field's
convention, papers/README.md). :func:`result_rows` refuses a row that matches no
published row of its table unless ``extra=True`` (a setting the paper did not print).
"""
from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import math
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from . import intervals as _intervals
from .utils import atomic_path

__all__ = [
    "PAPER_COLUMNS", "RUN_COLUMNS", "RESULT_COLUMNS", "COMPARE_COLUMNS", "METRICS",
    "PAPER_IDS", "DATASET_NAMES", "TABLE_NOTEBOOKS",
    "load_published", "result_rows", "write_results", "read_results", "results_overview",
    "headline", "Cell", "published_rows", "is_published", "stale_results",
]

#: Columns of the published CSV (papers/README.md "CSV conventions").
PAPER_COLUMNS: tuple[str, ...] = ("paper_id", "paper", "table", "dataset", "protocol", "method",
                                  "is_ours", "variant", "metric", "value", "reranking", "note")
#: How a measurement was made; appended to :data:`PAPER_COLUMNS` in a results CSV.
RUN_COLUMNS: tuple[str, ...] = ("profile", "backbone", "image_size", "epochs", "seconds",
                                "dataset_kind", "seeds", "eval_file")
#: Columns a results CSV written before they existed may lack: read (and written) with
#: these defaults (``seeds`` blank = unknown; ``eval_file`` blank = no per-query data).
OPTIONAL_COLUMNS: dict[str, Any] = {"seeds": float("nan"), "eval_file": ""}
#: Columns of ``<output_dir>/results/<notebook>.csv`` (DESIGN.md "Results and reports").
RESULT_COLUMNS: tuple[str, ...] = PAPER_COLUMNS + RUN_COLUMNS
#: Columns returned by :func:`compare`.
COMPARE_COLUMNS: tuple[str, ...] = (
    "paper_id", "table", "dataset", "protocol", "method", "variant", "metric", "reranking",
    "published", "measured", "delta", "profile", "dataset_kind", "status", "runs", "is_ours",
    "seeds", "eval_file")
#: Metric names (percent). ``error_rate`` is the only lower-is-better one.
METRICS: tuple[str, ...] = ("rank1", "rank5", "rank10", "mAP", "mINP", "error_rate")
_LOWER_IS_BETTER = frozenset({"error_rate"})
#: Paper ids in the order of DESIGN.md.
PAPER_IDS: tuple[str, ...] = ("maskreid_icme", "maskreid", "bcloss", "magnifiernet", "sal")
#: Loader dataset name -> the papers' dataset name.
DATASET_NAMES: dict[str, str] = {
    "market1501": "Market-1501", "dukemtmcreid": "DukeMTMC-reID",
    "cuhk03np-labeled": "CUHK03-L", "cuhk03np-detected": "CUHK03-D"}
#: (paper_id, table) -> the notebook that reproduces it, or why none does (papers/README.md).
TABLE_NOTEBOOKS: dict[tuple[str, str], str] = {
    ("maskreid_icme", "Table 1"): "02_maskreid (reference only: small-scale sets not shipped)",
    ("maskreid_icme", "Table 2"): "02_maskreid",
    ("maskreid_icme", "Table 3"): "02_maskreid",
    ("maskreid_icme", "Table 4"): "02_maskreid (Market-1501 proxy only)",
    ("maskreid_icme", "Table 5"): "02_maskreid",
    ("maskreid_icme", "Table 6"): "02_maskreid",
    ("maskreid", "Table 1"): "02_maskreid (reference only: small-scale sets not shipped)",
    ("maskreid", "Table 2"): "02_maskreid",
    ("maskreid", "Table 3"): "02_maskreid",
    ("maskreid", "Table 4"): "02_maskreid",
    ("bcloss", "Table 1"): "01_bcloss",
    ("bcloss", "Table 2"): "01_bcloss",
    ("magnifiernet", "Table 1"): "04_magnifiernet",
    ("magnifiernet", "Table 2"): "04_magnifiernet",
    ("sal", "Table 1"): "03_sal",
    ("sal", "Table 2"): "03_sal",
    ("sal", "Table 3"): "03_sal",
    ("sal", "Table 4"): "03_sal (optional CIFAR-100 extension)",
}

_INT_COLUMNS = ("is_ours", "reranking")
_FLOAT_COLUMNS = ("value", "epochs", "seconds", "seeds")
_MATCH = ("dataset", "_protocol", "method", "variant", "metric", "reranking")


# --------------------------------------------------------------------------- published
@functools.lru_cache(maxsize=1)
def _published_all() -> pd.DataFrame:
    ref = importlib.resources.files("reidnb").joinpath("resources/paper_results.csv")
    with ref.open("r", encoding="utf-8") as f:
        df = pd.read_csv(f, keep_default_na=False)
    missing = [c for c in PAPER_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"package data reidnb/resources/paper_results.csv lacks columns {missing}")
    return df[list(PAPER_COLUMNS)]


def load_published(paper_id: str | None = None, table: str | None = None) -> pd.DataFrame:
    """Every published table cell of the five papers, optionally one paper / one table.

    Args:
        paper_id: ``maskreid_icme``, ``maskreid``, ``bcloss``, ``magnifiernet``, ``sal``
            or ``None`` for all.
        table: the paper's table label, e.g. ``"Table 1"``; needs ``paper_id``.

    Returns:
        DataFrame with :data:`PAPER_COLUMNS` in the CSV's order (560 rows for all);
        ``value`` float (percent), ``is_ours``/``reranking`` int 0/1, empty strings for
        blank cells. A fresh copy: changing it does not change the package data.

    Raises:
        ValueError: unknown ``paper_id`` or ``table`` (the message lists the valid ones).
    """
    df = _published_all()
    if paper_id is not None:
        if paper_id not in set(df["paper_id"]):
            raise ValueError(f"unknown paper_id {paper_id!r}; expected one of {list(PAPER_IDS)}")
        df = df[df["paper_id"] == paper_id]
    if table is not None:
        if paper_id is None:
            raise ValueError("load_published: table= needs paper_id= too")
        if table not in set(df["table"]):
            raise ValueError(f"paper {paper_id!r} has no table {table!r}; it has "
                             f"{sorted(set(df['table']))}")
        df = df[df["table"] == table]
    return df.reset_index(drop=True).copy()


def _paper_dataset(name: str) -> str:
    return DATASET_NAMES.get(name, name)


def _norm_protocol(p: str) -> str:
    return p if p else "single-query"


# --------------------------------------------------------------------------- measured rows
def _cfg_option(cfg: Any, name: str, default: Any = None) -> Any:
    options = getattr(cfg, "options", None)
    if options is not None and name in options:
        return options[name]
    return default


def result_rows(cfg: Any, *, paper_id: str, table: str, dataset: str, protocol: str,
                method: str, variant: str, metrics: Mapping[str, float], reranking: bool,
                seconds: float, epochs: float | None = None, note: str = "",
                extra: bool = False, seeds: int = 1, eval_file: str | Path = ""
                ) -> list[dict[str, Any]]:
    """Rows of a results CSV for one measured setting: one row per metric.

    Args:
        cfg: the notebook's :class:`reidnb.core.config.RunConfig` (profile, backbone, height,
            width, epochs and dataset_kind are read from it).
        paper_id, table: the published table reproduced (see the module docstring).
        dataset: the paper's dataset name (``"Market-1501"``) or the loader name
            (``"market1501"``). On a real dataset it must be ``cfg.dataset``; on the
            synthetic set it names the published dataset the run stands in for.
        protocol: ``"single-query"``, ``"multi-query"`` or ``""`` as in the CSV.
        method, variant: the published row's strings, verbatim.
        metrics: metric name (:data:`METRICS`) -> value in percent (0..100).
        reranking: whether k-reciprocal re-ranking was applied.
        seconds: wall time of this setting (training + evaluation), seconds.
        epochs: epochs trained; ``None`` takes ``cfg.epochs``.
        note: free text (reductions such as a train-id subset belong here). Synthetic runs
            get ``"synthetic stand-in for <dataset>; not comparable"`` prepended.
        extra: allow a setting that matches no published row of the table.
        seeds: trained seeds averaged into ``metrics`` (>= 1).
        eval_file: path of the per-query arrays of this setting
            (:mod:`reidnb.core.intervals`; absolute in memory, written relative to
            ``output_dir`` by :func:`write_results`), ``""`` when there are none.

    Returns:
        list of dicts with exactly :data:`RESULT_COLUMNS`; ``is_ours`` is 1, ``paper`` is
        the published title, ``image_size`` is ``"HxW"`` in pixels.

    Raises:
        ValueError: unknown paper/table/metric, a value outside 0..100 or not finite, a
            dataset that contradicts ``cfg.dataset``, or (unless ``extra``) no published row
            with this dataset/protocol/method/variant/reranking (the valid ones are listed).
    """
    pub = load_published(paper_id, table)
    dataset = _paper_dataset(dataset)
    kind = str(getattr(cfg, "dataset_kind", "real"))
    if kind == "real":
        expected = _paper_dataset(str(cfg.dataset))
        if dataset != expected:
            raise ValueError(f"result_rows: dataset {dataset!r} but the run used cfg.dataset="
                             f"{cfg.dataset!r} ({expected}); a real run can only report its own "
                             "dataset")
    if not metrics:
        raise ValueError("result_rows: metrics is empty; expected e.g. {'rank1': 86.4, 'mAP': 67.6}")
    for name, v in metrics.items():
        if name not in METRICS:
            raise ValueError(f"result_rows: unknown metric {name!r}; expected one of {list(METRICS)}")
        if not isinstance(v, (int, float, np.floating, np.integer)) or not math.isfinite(v) \
                or not 0.0 <= float(v) <= 100.0:
            raise ValueError(f"result_rows: metric {name}={v!r} is not a percentage in [0, 100] "
                             "(evaluation returns fractions: multiply by 100)")
    reranking = int(bool(reranking))
    if not extra:
        own = pub[(pub["dataset"] == dataset)
                  & (pub["protocol"].map(_norm_protocol) == _norm_protocol(protocol))
                  & (pub["method"] == method) & (pub["variant"] == variant)
                  & (pub["reranking"] == reranking)]
        if own.empty:
            cand = pub[pub["is_ours"] == 1].drop_duplicates(
                ["dataset", "protocol", "method", "variant", "reranking"])
            listing = "\n".join(
                f"  dataset={r.dataset!r} protocol={r.protocol!r} method={r.method!r} "
                f"variant={r.variant!r} reranking={r.reranking}" for r in cand.itertuples())
            raise ValueError(
                f"result_rows: {paper_id} {table} has no published row with dataset={dataset!r} "
                f"protocol={protocol!r} method={method!r} variant={variant!r} "
                f"reranking={reranking}; the paper's own rows are:\n{listing}\n"
                "(pass extra=True to record a setting the paper did not print)")
    if kind == "synthetic":
        note = "; ".join(s for s in (f"synthetic stand-in for {dataset}; not comparable", note) if s)
    height, width = _cfg_option(cfg, "height"), _cfg_option(cfg, "width")
    if epochs is None:
        epochs = _cfg_option(cfg, "epochs")
    common = dict(
        paper_id=paper_id, paper=str(pub["paper"].iloc[0]), table=table, dataset=dataset,
        protocol=protocol, method=method, is_ours=1, variant=variant, reranking=reranking,
        note=note, profile=str(cfg.profile), backbone=str(_cfg_option(cfg, "backbone", "")),
        image_size=f"{height}x{width}" if height and width else "",
        epochs=float("nan") if epochs is None else float(epochs), seconds=float(seconds),
        dataset_kind=kind, seeds=float(int(seeds)), eval_file=str(eval_file))
    rows = []
    for name, v in metrics.items():
        row = dict(common, metric=name, value=float(v))
        rows.append({c: row[c] for c in RESULT_COLUMNS})
    return rows


@dataclasses.dataclass(frozen=True)
class Cell:
    """A published table cell group that a paper's variant fills (one entry of ``PUBLISHED``).

    Attributes:
        paper_id, table: the published table (``load_published(paper_id, table)``).
        method, variant: the published row's strings, verbatim.
        metrics: metrics the table prints for the row (percent), e.g. ``("rank1", "mAP")``.
        settings: evaluation settings that fill it: ``"single-query"`` and/or
            ``"multi-query"`` (the published ``protocol``).
        rerank_method: the ``method`` string of the row printed *with* re-ranking (same
            variant), or None when the paper printed none; then re-ranked evaluations
            are not written for this cell.
        note: text added to the note of every row of this cell.
    """

    paper_id: str
    table: str
    method: str
    variant: str
    metrics: tuple[str, ...] = ("rank1", "mAP")
    settings: tuple[str, ...] = ("single-query",)
    rerank_method: str | None = None
    note: str = ""


def is_published(paper_id: str, table: str, dataset: str, protocol: str, method: str,
                 variant: str, reranking: bool) -> bool:
    """Whether the paper printed a row with these strings (protocol '' == single-query)."""
    pub = load_published(paper_id, table)
    hit = pub[(pub["dataset"] == _paper_dataset(dataset))
              & (pub["protocol"].map(_norm_protocol) == _norm_protocol(protocol))
              & (pub["method"] == method) & (pub["variant"] == variant)
              & (pub["reranking"] == int(bool(reranking)))]
    return not hit.empty


def _published_protocol(paper_id: str, table: str, dataset: str, setting: str) -> str:
    """The CSV's own protocol string for ``setting`` in that table and dataset ("" where the
    paper names no protocol, e.g. DukeMTMC-reID), else ``setting``."""
    pub = load_published(paper_id, table)
    protos = set(pub.loc[pub["dataset"] == _paper_dataset(dataset), "protocol"])
    if setting in protos:
        return setting
    return "" if setting == "single-query" and "" in protos else setting


def published_rows(cfg: Any, published: Mapping[str, Sequence[Cell]],
                   runs: Mapping[str, Any], *, dataset: str | None = None, note: str = "",
                   extra_seconds: Mapping[str, float] | None = None) -> list[dict[str, Any]]:
    """Results rows of every measured cell: the one function all papers' tables use.

    For each ``key, run`` in ``runs`` and each :class:`Cell` of ``published[key]``: for each
    of the cell's evaluation settings that the run has (``run.metrics(setting)``), one row
    per metric (:func:`result_rows`), and the same with ``"+re-rank"`` under
    ``cell.rerank_method`` when the run was evaluated with re-ranking. A cell the paper did
    not print for this dataset/protocol is written with ``extra=True`` (recorded, shown,
    not compared). Keys without a ``published`` entry are skipped.

    Each row also records ``seeds`` (``len(run.runs)`` for a seed group, else 1) and
    ``eval_file``: the per-query arrays of its evaluation setting
    (:func:`reidnb.core.intervals.query_data_of`), kept in memory under
    ``<cfg.output_dir>/results/<cfg.notebook>/q-<sha1>.npz`` until :func:`write_results`
    writes them; ``""`` when the run has no per-query arrays.

    Args:
        cfg: the notebook's config (profile, backbone, size, dataset kind are recorded).
        published: variant key -> cells it fills (the paper's ``PUBLISHED``).
        runs: variant key -> run (``metrics(setting)`` in percent, ``seconds``, ``epochs``;
            :class:`reidnb.core.runs.Run` or anything alike, e.g. a mean over seeds).
        dataset: the paper's dataset name (default: the run's, the synthetic set standing
            in for Market-1501).
        note: appended to every row's note (profile reductions).
        extra_seconds: key -> seconds to add (e.g. a shared stage-1 run).

    Returns:
        list of row dicts for :func:`write_results`.
    """
    if dataset is None:
        dataset = "Market-1501" if getattr(cfg, "dataset_kind", "real") == "synthetic" \
            else _paper_dataset(str(cfg.dataset))
    rows: list[dict[str, Any]] = []
    for key, run in runs.items():
        for cell in published.get(key, ()):
            for setting in cell.settings:
                for rr in (False, True):
                    if rr and cell.rerank_method is None:
                        continue
                    try:
                        m = run.metrics(setting + ("+re-rank" if rr else ""))
                    except KeyError:
                        continue
                    key_setting = setting + ("+re-rank" if rr else "")
                    method = cell.rerank_method if rr else cell.method
                    protocol = _published_protocol(cell.paper_id, cell.table, dataset, setting)
                    text = "; ".join(s for s in (cell.note, note) if s)
                    rows.extend(result_rows(
                        cfg, paper_id=cell.paper_id, table=cell.table, dataset=dataset,
                        protocol=protocol, method=method, variant=cell.variant,
                        metrics={k: m[k] for k in cell.metrics}, reranking=rr,
                        seconds=float(run.seconds) + float((extra_seconds or {}).get(key, 0.0)),
                        epochs=getattr(run, "epochs", None), note=text,
                        extra=not is_published(cell.paper_id, cell.table, dataset, protocol,
                                               method, cell.variant, rr),
                        seeds=len(_intervals._seed_runs(run)),
                        eval_file=_query_file(cfg, run, key_setting)))
    return rows


def _query_file(cfg: Any, run: Any, setting: str) -> str:
    """Absolute path of ``run``'s per-query arrays for ``setting`` (remembered, written by
    :func:`write_results`), or ``""`` when it has none or ``cfg`` has no output_dir."""
    data = _intervals.query_data_of(run, setting)
    out, nb = getattr(cfg, "output_dir", None), getattr(cfg, "notebook", None)
    if data is None or out is None or not nb:
        return ""
    return str(_intervals.remember_query_file(Path(out) / "results" / str(nb), data))


def write_results(rows: Iterable[Mapping[str, Any]], cfg: Any) -> Path:
    """Write a notebook's measured rows to ``<cfg.output_dir>/results/<cfg.notebook>.csv``.

    Call it once at the end of a notebook with all its rows (from :func:`result_rows`);
    calling it again replaces the file. The write is atomic (:func:`reidnb.core.utils.atomic_path`):
    a reader, or a failure half-way, never leaves a partial file.

    The per-query arrays the rows point to (``eval_file``) are written first to
    ``<output_dir>/results/<notebook>/`` (files there no row refers to any more are
    removed) and ``eval_file`` is stored relative to ``output_dir``. Rows without
    :data:`OPTIONAL_COLUMNS` get their defaults. Rows of a paper-profile dry run
    (``cfg.caps()`` non-empty) get ``DRY RUN (max_iters = 1, ...)`` in front of their note.

    Raises:
        ValueError: a row lacks some of :data:`RESULT_COLUMNS` or has others (row index and
            names in the message).
    """
    rows = [{**OPTIONAL_COLUMNS, **dict(r)} for r in rows]
    for i, r in enumerate(rows):
        missing = [c for c in RESULT_COLUMNS if c not in r]
        unknown = [c for c in r if c not in RESULT_COLUMNS]
        if missing or unknown:
            raise ValueError(f"write_results: row {i} has missing columns {missing} and unknown "
                             f"columns {unknown}; build rows with result_rows()")
    caps = cfg.caps() if callable(getattr(cfg, "caps", None)) else []
    if caps:   # a paper-profile dry run: every row says so (RunConfig.caps)
        tag = "DRY RUN (" + ", ".join(c.split(" (")[0].removeprefix("DRY RUN cap: ") for c in caps) \
            + "): code path check, not a measurement"
        for r in rows:
            r["note"] = "; ".join(x for x in (tag, str(r.get("note") or "")) if x)
    out = Path(cfg.output_dir).absolute()
    files = [str(r["eval_file"]) for r in rows if str(r["eval_file"])]
    _intervals.flush_query_files(files)
    for r in rows:
        f = Path(str(r["eval_file"])) if str(r["eval_file"]) else None
        if f is not None and f.is_absolute() and f.is_relative_to(out):
            r["eval_file"] = f.relative_to(out).as_posix()
    df = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    path = out / "results" / f"{cfg.notebook}.csv"
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)
    keep = {str((out / f).absolute()) for f in df["eval_file"].astype(str) if f}
    for old in (out / "results" / str(cfg.notebook)).glob("q-*.npz"):
        if str(old.absolute()) not in keep:
            old.unlink(missing_ok=True)
    return Path(cfg.output_dir) / "results" / f"{cfg.notebook}.csv"


def _read_one(path: Path) -> pd.DataFrame:
    """Read and type-check one results CSV; errors name the file."""
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a readable results CSV ({e})") from e
    missing = [c for c in RESULT_COLUMNS if c not in df.columns and c not in OPTIONAL_COLUMNS]
    if missing:
        raise ValueError(f"{path}: not a reidnb results CSV; missing columns {missing} "
                         f"(expected {list(RESULT_COLUMNS)})")
    for c in OPTIONAL_COLUMNS:     # older CSVs: no seeds, no per-query files
        if c not in df.columns:
            df[c] = ""
    df = df[list(RESULT_COLUMNS)].copy()
    out = path.absolute().parent.parent     # <output_dir>/results/<nb>.csv
    df["eval_file"] = [str(out / f) if f and not Path(f).is_absolute() else f
                       for f in df["eval_file"]]
    for col in (*_FLOAT_COLUMNS, *_INT_COLUMNS):
        num = pd.to_numeric(df[col].replace("", np.nan), errors="coerce")
        required = col in ("value", *_INT_COLUMNS)   # epochs/seconds may be blank
        bad = df[col][num.isna() & (required | (df[col] != ""))]
        if len(bad):
            raise ValueError(f"{path}: column {col!r} has missing or non-numeric values "
                             f"{sorted(set(bad))[:5]}")
        df[col] = num.astype(int) if col in _INT_COLUMNS else num.astype(float)
    df.insert(0, "notebook", path.stem)
    return df


def read_results(output_dir: str | Path) -> pd.DataFrame:
    """Every ``<output_dir>/results/*.csv`` stacked into one DataFrame.

    Returns:
        columns ``notebook`` (file stem) + :data:`RESULT_COLUMNS`; empty (same columns)
        when there is no results folder or no CSV in it. ``eval_file`` is made absolute
        (the CSV stores it relative to ``output_dir``); ``seeds`` is NaN in CSVs written
        before the column existed.

    Raises:
        ValueError: a CSV that cannot be parsed, lacks columns (named) or has non-numeric
            values; the message names the file.
    """
    folder = Path(output_dir) / "results"
    frames = [_read_one(p) for p in sorted(folder.glob("*.csv")) if not p.name.startswith(".")]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=float if c in _FLOAT_COLUMNS else
                                          int if c in _INT_COLUMNS else str)
                             for c in ("notebook", *RESULT_COLUMNS)})
    return pd.concat(frames, ignore_index=True)


def stale_results(output_dir: str | Path) -> dict[str, str]:
    """Notebooks whose results CSV is older than their last run's start.

    A notebook saves ``results/<notebook>.config.json`` when it starts and writes
    ``results/<notebook>.csv`` when it ends; a config newer than the CSV means the last run
    did not finish (failed or interrupted), so the CSV beside it is from an earlier run
    with possibly other settings.

    Returns:
        notebook -> a sentence saying so (empty when every CSV is current).
    """
    folder = Path(output_dir) / "results"
    out = {}
    for csv in sorted(folder.glob("*.csv")):
        cfg = csv.with_suffix(".config.json")
        if cfg.exists() and cfg.stat().st_mtime > csv.stat().st_mtime + 1.0:
            out[csv.stem] = (f"{csv.name} is older than {cfg.name}: the last run of {csv.stem} "
                             "did not finish; its numbers are from an earlier run")
    return out


def results_overview(measured: pd.DataFrame) -> pd.DataFrame:
    """One line per notebook that left results: rows, tables, profile, data, time.

    Returns columns notebook, rows, tables (``"bcloss Table 1, ..."``), profile,
    dataset_kind, backbone, image_size, seconds (training + evaluation summed over the
    distinct runs: rows with equal seconds count once; rounded to 0.1 s).
    """
    cols = ["notebook", "rows", "tables", "profile", "dataset_kind", "backbone", "image_size",
            "seconds"]
    if measured.empty:
        return pd.DataFrame(columns=cols)
    out = []
    for nb, g in measured.groupby("notebook", sort=True):
        tables = list(dict.fromkeys(g["paper_id"] + " " + g["table"]))
        # one trained variant fills several rows (metrics, tables of both paper versions,
        # +/- re-ranking) with the same seconds: count each distinct run once
        settings = g.drop_duplicates(["dataset", "dataset_kind", "seconds"])
        out.append(dict(notebook=nb, rows=len(g), tables=", ".join(tables),
                        profile=_join(g["profile"]), dataset_kind=_join(g["dataset_kind"]),
                        backbone=_join(g["backbone"]), image_size=_join(g["image_size"]),
                        seconds=round(float(settings["seconds"].sum()), 1)))
    return pd.DataFrame(out, columns=cols)


def _join(values: Iterable[Any]) -> str:
    return ",".join(str(v) for v in dict.fromkeys(values) if str(v) != "")



def _label(method: str, variant: str) -> str:
    return f"{method} [{variant}]" if variant else method


def _rr(reranking: int) -> str:
    return " +re-rank" if int(reranking) else ""


# --------------------------------------------------------------------------- headlines
def headline(results: pd.DataFrame, max_settings: int = 4) -> list[str]:
    """A few one-line summaries of a notebook's own results (for report index pages).

    Picks the first ``max_settings`` settings (paper/table/dataset/protocol/method/variant/
    re-ranking, file order) and shows rank1, mAP and error_rate beside the paper row they
    stand in for, then what actually ran (backbone, image size, data kind, seeds), e.g.
    ``"bcloss Table 1 · Market-1501 · single-query · Baseline [ResNet50, softmax only]:
    rank1 12.38 (ran: resnet18, 64x32, synthetic data, 1 seed)"``. Seeds are left out when
    the CSV predates the column.
    """
    r = results[results["is_ours"] == 1]
    r = r[r["metric"].isin(["rank1", "mAP", "error_rate"])]
    keys = ["paper_id", "table", "dataset", "protocol", "method", "variant", "reranking"]
    lines = []
    for key, g in r.groupby(keys, sort=False):
        if len(lines) >= max_settings:
            break
        pid, table, dataset, proto, method, variant, rr = key
        vals = ", ".join(f"{m.metric} {m.value:.2f}" for m in g.itertuples())
        where = " · ".join(s for s in (f"{pid} {table}", dataset, proto) if s)
        lines.append(f"{where} · {_label(method, variant)}{_rr(rr)}: {vals} ({_ran(g)})")
    return lines


def _ran(g: pd.DataFrame) -> str:
    """``"ran: resnet18, 64x32, synthetic data, 2 seeds"`` for the rows of one setting."""
    seeds = pd.to_numeric(g["seeds"], errors="coerce").dropna() if "seeds" in g else []
    n = sorted({int(x) for x in seeds})
    parts = [_join(g["backbone"]), _join(g["image_size"]),
             f"{_join(g['dataset_kind']) or 'unknown'} data",
             f"{'/'.join(map(str, n))} seed{'s' if n and n[-1] > 1 else ''}" if n else ""]
    return "ran: " + ", ".join(p for p in parts if p)

"""Uncertainty of a measured difference: paired bootstrap over queries (and seeds), verdicts.

Two variants evaluated on the same queries differ in rank-1 and mAP by a number that is
partly noise: which queries the test set happens to hold, and (when several seeds were
trained) which seed each variant happened to get. This module turns the per-query arrays
every evaluation keeps (``RankResult.query_ap``, ``query_rank1``, ``query_index``) into a
95 % interval of the difference, and the interval into a verdict on a published direction.

Methods
-------
* One seed per variant (:func:`paired_bootstrap`): the *paired bootstrap over queries*
  (Efron & Tibshirani 1993, ch. 16; the usual test for IR metrics, e.g. Sakai 2006). The
  per-query difference ``d_q = x_a(q) - x_b(q)`` (AP, or the rank-1 hit 0/1) is resampled
  ``n_boot`` times with replacement over the V queries; the percentile interval of the
  resampled means is returned, the point estimate is the observed mean difference (= the
  difference of the reported mAP / rank-1).
* Several seeds (:func:`seed_query_bootstrap`): a *two-level bootstrap over seeds and
  queries*. Each resample draws, independently, ``S_a`` seeds of variant a and ``S_b`` of
  variant b with replacement (seed-to-seed spread; seeds are not paired across variants)
  and one resample of the V queries, shared by both variants and all seeds (the same
  queries are evaluated everywhere, so the pairing over queries is kept); the statistic is
  mean over drawn seeds of (metric on drawn queries) for a minus the same for b. With one
  seed each it is exactly :func:`paired_bootstrap`. With 2-5 seeds the seed level of a
  percentile bootstrap is somewhat narrow (it cannot see spread larger than the seeds
  show); it is stated as such in every table (``seeds`` column).

Per-query files
---------------
A results row (``reidnb.core.results``) points to its per-query arrays with the column
``eval_file``: ``results/<notebook>/q-<sha1>.npz`` (relative to ``output_dir`` in the CSV),
holding for each seed ``i``: ``query_index/<i>`` int64 [V], ``query_ap/<i>`` float64 [V]
(0..1), ``query_rank1/<i>`` float64 [V] (0/1), and where measured ``query_rank5/<i>``,
``query_rank10/<i>`` (0/1) and ``query_inp/<i>`` (0..1). :func:`query_data_of` extracts them from a
run, :func:`remember_query_file` holds them until ``write_results`` writes them
(:func:`flush_query_files`), :func:`load_query_file` reads them back.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .utils import atomic_path, read_npz

__all__ = ["Interval", "PairIntervals", "QueryData", "paired_bootstrap", "seed_query_bootstrap",
           "verdict", "VERDICTS", "NO_DATA", "query_data_of", "query_file_name",
           "remember_query_file", "flush_query_files", "load_query_file", "pair_intervals",
           "run_pair_intervals", "METRIC_FIELDS"]

#: The three verdicts on a published direction, and the one for a pair without data.
VERDICTS: tuple[str, ...] = ("reproduced", "contradicted", "inconclusive")
NO_DATA = "inconclusive (no per-query data)"
#: Metric (percent) -> per-query field whose mean (x 100) is that metric.
METRIC_FIELDS: dict[str, str] = {"rank1": "query_rank1", "rank5": "query_rank5",
                                 "rank10": "query_rank10", "mAP": "query_ap",
                                 "mINP": "query_inp"}
#: The per-query fields besides rank-1 and AP (absent in files written before them).
_OPTIONAL: tuple[str, ...] = ("query_rank5", "query_rank10", "query_inp")


@dataclasses.dataclass(frozen=True)
class Interval:
    """A measured difference (a minus b) with its bootstrap interval, in percent points.

    Attributes:
        delta: observed difference, percent points (100 x difference of the means).
        low, high: percentile interval bounds at ``level``, percent points.
        level: coverage, e.g. 0.95.
        n_boot: bootstrap resamples. n_queries: queries V resampled.
        seeds_a, seeds_b: seeds per variant (1 and 1: :func:`paired_bootstrap`).
        method: one line naming the method (shown in tables).
    """

    delta: float
    low: float
    high: float
    level: float = 0.95
    n_boot: int = 1000
    n_queries: int = 0
    seeds_a: int = 1
    seeds_b: int = 1
    method: str = "paired bootstrap over queries"

    @property
    def width(self) -> float:
        """``high - low`` (percent points)."""
        return self.high - self.low

    def contains(self, value: float = 0.0) -> bool:
        """Whether ``low <= value <= high``."""
        return self.low <= value <= self.high

    def __str__(self) -> str:
        return f"{self.delta:+.2f} [{self.low:+.2f}, {self.high:+.2f}]"


class PairIntervals(tuple):
    """``(rank1, mAP)``: the :class:`Interval` of each metric (named fields), plus those of
    rank-5, rank-10 and mINP when both variants have their per-query values
    (``pair["rank5"]``; :meth:`get` gives None for a metric without)."""

    def __new__(cls, rank1: Interval, mAP: Interval, **more: Interval):
        self = super().__new__(cls, (rank1, mAP))
        self.more = dict(more)
        return self

    def get(self, metric: str) -> Interval | None:
        """The interval of ``metric`` (``rank1``, ``rank5``, ``rank10``, ``mAP``,
        ``mINP``), or None when it was not measured per query."""
        try:
            return self[metric]
        except KeyError:
            return None

    @property
    def rank1(self) -> Interval:
        return self[0]

    @property
    def mAP(self) -> Interval:
        return self[1]

    def __getitem__(self, key):     # also by metric name
        if isinstance(key, str):
            named = {"rank1": tuple.__getitem__(self, 0), "mAP": tuple.__getitem__(self, 1)}
            return named[key] if key in named else self.more[key]
        return tuple.__getitem__(self, key)


@dataclasses.dataclass(frozen=True)
class QueryData:
    """Per-query results of one variant over its seeds (one entry per seed).

    Attributes:
        query_index: tuple of int64 [V] arrays (valid queries, rows of the distance matrix).
        query_ap: tuple of float64 [V] arrays, AP of each query in 0..1.
        query_rank1: tuple of float64 [V] arrays, rank-1 hit 0/1.
        query_rank5, query_rank10, query_inp: the same for the rank-5 / rank-10 hit and
            the inverse negative penalty; ``()`` when not known for every seed.
    """

    query_index: tuple
    query_ap: tuple
    query_rank1: tuple
    query_rank5: tuple = ()
    query_rank10: tuple = ()
    query_inp: tuple = ()

    @property
    def seeds(self) -> int:
        return len(self.query_ap)

    def fields(self) -> dict[str, tuple]:
        """Per-query field -> one array per seed, for every metric field present."""
        return {f: getattr(self, f) for f in ("query_rank1", "query_ap", *_OPTIONAL)
                if len(getattr(self, f)) == self.seeds}

    def to_arrays(self) -> dict[str, np.ndarray]:
        out = {}
        for f, per_seed in {"query_index": self.query_index, **self.fields()}.items():
            dtype = np.int64 if f == "query_index" else np.float64
            for i, v in enumerate(per_seed):
                out[f"{f}/{i}"] = np.asarray(v, dtype=dtype)
        return out

    @classmethod
    def concat(cls, parts: Sequence["QueryData"]) -> "QueryData":
        """The seeds of several :class:`QueryData` as one (an optional field only when
        every part has it)."""
        opt = {f: sum((getattr(p, f) for p in parts), ()) for f in _OPTIONAL
               if all(len(getattr(p, f)) == p.seeds for p in parts)}
        return cls(sum((p.query_index for p in parts), ()), sum((p.query_ap for p in parts), ()),
                   sum((p.query_rank1 for p in parts), ()), **opt)


# --------------------------------------------------------------------------- bootstrap
def _align(index: Sequence[np.ndarray], values: Sequence[Sequence[np.ndarray]], what: str
           ) -> tuple[np.ndarray, list[np.ndarray]]:
    """Sort every seed's arrays by query index; all must hold the same queries."""
    ref = None
    out = [[] for _ in values]
    for s, qi in enumerate(index):
        qi = np.asarray(qi, dtype=np.int64).ravel()
        order = np.argsort(qi, kind="stable")
        qs = qi[order]
        if len(np.unique(qs)) != len(qs):
            raise ValueError(f"{what}: seed {s} lists a query index twice")
        if ref is None:
            ref = qs
        elif len(qs) != len(ref) or not np.array_equal(qs, ref):
            only = np.setdiff1d(np.union1d(qs, ref), np.intersect1d(qs, ref))
            raise ValueError(f"{what}: the query sets differ ({len(ref)} vs {len(qs)} valid "
                             f"queries; e.g. query indices {only[:5].tolist()} are in one only); "
                             "a paired comparison needs the same test queries")
        for k, v in enumerate(values):
            arr = np.asarray(v[s], dtype=np.float64).ravel()
            if arr.shape != qi.shape:
                raise ValueError(f"{what}: seed {s} has {arr.size} values for {qi.size} "
                                 "query indices")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{what}: seed {s} has non-finite per-query values")
            out[k].append(arr[order])
    if ref is None or len(ref) == 0:
        raise ValueError(f"{what}: no queries")
    return ref, [np.stack(o) for o in out]


@functools.lru_cache(maxsize=8)
def _resample_weights(n: int, n_boot: int, seed: tuple) -> np.ndarray:
    """[n_boot, n] weights of n_boot bootstrap resamples of n items (counts / n; each row
    sums to 1), from ``np.random.default_rng(seed)``; cached (pairs of one test set share
    the query resamples), read-only."""
    idx = np.random.default_rng(list(seed)).integers(0, n, size=(n_boot, n))
    flat = (idx + np.arange(n_boot)[:, None] * n).ravel()
    w = np.bincount(flat, minlength=n_boot * n).reshape(n_boot, n) / n
    w.setflags(write=False)
    return w


def seed_query_bootstrap(a: QueryData, b: QueryData, *, n_boot: int = 1000, seed: int = 0,
                         level: float = 0.95) -> PairIntervals:
    """95 % intervals of rank-1 and mAP differences (a minus b) over seeds *and* queries
    (and of rank-5, rank-10 and mINP when both have those per-query values).

    Method (module docstring): per resample, ``S_a`` seeds of a and ``S_b`` of b drawn with
    replacement (independently), one resample of the V queries shared by both; statistic =
    mean over drawn seeds of the mean over drawn queries (AP, rank-1 hit) for a minus the
    same for b; percentile interval. Point estimate: mean over seeds of a minus of b (the
    difference of the reported seed means).

    Args:
        a, b: :class:`QueryData` (>= 1 seed each); every seed of both must hold the same
            valid queries (aligned by ``query_index``).
        n_boot: resamples (>= 100). seed: NumPy generator seed (results are reproducible).
        level: coverage in (0, 1).

    Returns:
        :class:`PairIntervals` (rank1, mAP; rank5, rank10, mINP by name when measured),
        percent points.

    Raises:
        ValueError: no seeds, different query sets (named), mismatched array lengths,
            non-finite values, ``n_boot < 100`` or ``level`` outside (0, 1).
    """
    if a.seeds < 1 or b.seeds < 1:
        raise ValueError(f"seed_query_bootstrap: need >= 1 seed per variant, got {a.seeds} "
                         f"and {b.seeds}")
    if int(n_boot) < 100:
        raise ValueError(f"seed_query_bootstrap: n_boot={n_boot} is too few (>= 100)")
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"seed_query_bootstrap: level={level} must be in (0, 1)")
    idx = list(a.query_index) + list(b.query_index)
    fa, fb = a.fields(), b.fields()
    names = [m for m, f in METRIC_FIELDS.items() if f in fa and f in fb]
    _, arrays = _align(idx, [list(fa[METRIC_FIELDS[m]]) + list(fb[METRIC_FIELDS[m]])
                             for m in names], "paired bootstrap")
    sa, sb, v = a.seeds, b.seeds, arrays[0].shape[1]
    qw = _resample_weights(v, int(n_boot), (seed, 1))                      # [B, V]
    wa = _resample_weights(sa, int(n_boot), (seed, 2))                     # [B, Sa]
    wb = _resample_weights(sb, int(n_boot), (seed, 3))                     # [B, Sb]
    lo_q, hi_q = 50.0 * (1.0 - level), 50.0 * (1.0 + level)
    method = ("paired bootstrap over queries" if sa == sb == 1 else
              "bootstrap over seeds (each variant) and queries (shared)")
    out = {}
    for name, x in zip(names, arrays):
        per = qw @ x.T                                                     # [B, Sa+Sb]
        stat = (per[:, :sa] * wa).sum(1) - (per[:, sa:] * wb).sum(1)
        delta = float(x[:sa].mean() - x[sa:].mean())
        lo, hi = np.percentile(stat, [lo_q, hi_q])
        out[name] = Interval(delta=100.0 * delta, low=100.0 * float(lo), high=100.0 * float(hi),
                             level=float(level), n_boot=int(n_boot), n_queries=int(v),
                             seeds_a=sa, seeds_b=sb, method=method)
    return PairIntervals(out.pop("rank1"), out.pop("mAP"), **out)


def paired_bootstrap(a_ap: Any, a_hit: Any, b_ap: Any, b_hit: Any, *, a_index: Any = None,
                     b_index: Any = None, n_boot: int = 1000, seed: int = 0,
                     level: float = 0.95) -> PairIntervals:
    """Paired bootstrap over queries of the rank-1 and mAP difference, one seed each.

    Args:
        a_ap, b_ap: float [V] per-query AP in 0..1 (``RankResult.query_ap``).
        a_hit, b_hit: float/bool [V] per-query rank-1 hit (``RankResult.query_rank1``).
        a_index, b_index: int [V] query indices (``RankResult.query_index``); the arrays
            are aligned on them. None: the arrays are already aligned (same order).
        n_boot: resamples (default 1,000). seed: generator seed. level: coverage.

    Returns:
        :class:`PairIntervals` ``(rank1, mAP)`` of a minus b in percent points; e.g. b's AP
        shifted by +0.1 on every query gives mAP delta -10 with a zero-width interval.

    Raises:
        ValueError: lengths differ, or the two query sets differ (names the queries).

    Source: Efron & Tibshirani (1993) ch. 16; :func:`seed_query_bootstrap` with one seed.
    """
    a_n, b_n = np.asarray(a_ap).size, np.asarray(b_ap).size
    if a_index is None and b_index is None and a_n != b_n:
        raise ValueError(f"paired_bootstrap: a has {a_n} queries, b has {b_n}; the query "
                         "sets differ")
    a_index = np.arange(a_n) if a_index is None else a_index
    b_index = np.arange(b_n) if b_index is None else b_index
    return seed_query_bootstrap(QueryData((a_index,), (a_ap,), (a_hit,)),
                                QueryData((b_index,), (b_ap,), (b_hit,)),
                                n_boot=n_boot, seed=seed, level=level)


def verdict(paper_delta_sign: float, interval: Interval | None) -> str:
    """Verdict on a published direction from the measured interval of the same difference.

    Args:
        paper_delta_sign: sign (or value) of the published difference a minus b in the
            metric's own units (for error rate, lower is better: pass the raw sign).
        interval: :class:`Interval` of the measured a minus b, or None (no per-query data).

    Returns:
        ``"reproduced"`` (interval excludes 0 on the paper's side), ``"contradicted"``
        (excludes 0 on the other side), ``"inconclusive"`` (contains 0, or the paper printed
        equal numbers), or :data:`NO_DATA` when ``interval`` is None. Bounds equal to 0
        count as containing it.
    """
    if interval is None:
        return NO_DATA
    s = float(np.sign(paper_delta_sign))
    if s == 0.0 or interval.contains(0.0):
        return "inconclusive"
    side = 1.0 if interval.low > 0 else -1.0
    return "reproduced" if side == s else "contradicted"


# --------------------------------------------------------------------------- per-query data
def _seed_runs(run: Any) -> list[Any]:
    runs = getattr(run, "runs", None)
    if runs is None and getattr(run, "stage2", None) is not None:   # SAL SettingRun
        runs = getattr(run.stage2, "runs", None)
    return list(runs) if runs is not None and not isinstance(runs, (str, bytes)) else [run]


def _rank_result(run: Any, setting: str) -> Any:
    result = getattr(run, "result", None)
    if result is None and getattr(run, "stage2", None) is not None:   # SAL SettingRun
        result = getattr(run.stage2, "result", None)
    results = getattr(result, "results", None)
    return None if not isinstance(results, Mapping) else results.get(setting)


def query_data_of(run: Any, setting: str = "single-query") -> QueryData | None:
    """Per-query arrays of a run (or of a seed group) for one evaluation setting.

    Args:
        run: a ``Run`` (``run.result.results[setting]`` a ``RankResult``), an object with
            ``runs`` (a seed group, :class:`reidnb.core.runs.SeedGroup`: one entry per
            seed) or with ``stage2`` (its result, or its seeds' results, are used).
        setting: evaluation setting, e.g. ``"single-query"``.

    Returns:
        :class:`QueryData`, or None when any seed lacks the setting or per-query arrays.
    """
    parts = []
    for r in _seed_runs(run):
        rank = _rank_result(r, setting)
        fields = [getattr(rank, f, None) for f in ("query_index", "query_ap", "query_rank1")]
        if rank is None or any(f is None for f in fields):
            return None
        opt = {f: (np.asarray(getattr(rank, f)),) for f in _OPTIONAL
               if getattr(rank, f, None) is not None}
        parts.append(QueryData(*[(np.asarray(f),) for f in fields], **opt))
    return QueryData.concat(parts) if parts else None


def query_file_name(data: QueryData) -> str:
    """``q-<12 hex>.npz``: content address of the arrays (equal data share one file)."""
    h = hashlib.sha1()
    for k, v in sorted(data.to_arrays().items()):
        h.update(k.encode())
        h.update(np.ascontiguousarray(v).tobytes())
    return f"q-{h.hexdigest()[:12]}.npz"


#: absolute path -> arrays built by ``published_rows`` and not yet written
_PENDING: dict[str, QueryData] = {}


def remember_query_file(folder: str | Path, data: QueryData) -> Path:
    """The path ``<folder>/<query_file_name>`` for ``data``; the arrays are kept in memory
    until :func:`flush_query_files` writes them (and :func:`load_query_file` finds them
    before that)."""
    path = (Path(folder) / query_file_name(data)).absolute()
    _PENDING[str(path)] = data
    return path


def flush_query_files(paths: Iterable[str | Path]) -> list[Path]:
    """Write the remembered arrays of ``paths`` (atomically, compressed npz) and forget
    them; paths that already exist (same content: the name is its hash) or were never
    remembered are left alone. Returns the paths written."""
    written = []
    for p in dict.fromkeys(str(Path(x).absolute()) for x in paths if str(x)):
        data = _PENDING.pop(p, None)     # on disk from now on: read from there
        if data is None or Path(p).exists():
            continue
        buf = io.BytesIO()
        np.savez_compressed(buf, **data.to_arrays())
        with atomic_path(p) as tmp:
            Path(tmp).write_bytes(buf.getvalue())
        written.append(Path(p))
    return written


def load_query_file(path: str | Path) -> QueryData | None:
    """The :class:`QueryData` of a per-query file (or of one not yet written).

    Returns:
        None when ``path`` is empty or the file does not exist (an older results CSV).

    Raises:
        ValueError: the file exists but is not a per-query npz (names it and what was
            expected).
    """
    if not str(path):
        return None
    key = str(Path(path).absolute())
    if key in _PENDING:
        return _PENDING[key]
    p = Path(path)
    if not p.is_file():
        return None
    arrays = read_npz(p, "per-query file", "it is written by write_results: delete it and "
                      "re-run the notebook")
    n = len([k for k in arrays if k.startswith("query_ap/")])
    try:
        fields = [tuple(arrays[f"{f}/{i}"] for i in range(n))
                  for f in ("query_index", "query_ap", "query_rank1")]
    except KeyError as e:
        raise ValueError(f"{p}: per-query npz lacks {e}; expected query_index/<i>, "
                         "query_ap/<i>, query_rank1/<i> for every seed i") from None
    opt = {f: tuple(arrays[f"{f}/{i}"] for i in range(n)) for f in _OPTIONAL
           if all(f"{f}/{i}" in arrays for i in range(n))}
    return QueryData(*fields, **opt) if n else None


def pair_intervals(a: QueryData | None, b: QueryData | None, **kw: Any) -> PairIntervals | None:
    """:func:`seed_query_bootstrap` of a vs b, or None when either lacks per-query data."""
    if a is None or b is None:
        return None
    return seed_query_bootstrap(a, b, **kw)


def run_pair_intervals(a: Any, b: Any, setting: str = "single-query",
                       **kw: Any) -> PairIntervals | None:
    """Intervals of run (or seed group) ``a`` minus ``b`` from their evaluations
    (:func:`query_data_of`); None when either lacks per-query arrays. For the papers' own
    direction tables (e.g. SAL quadruplet vs triplet, MagnifierNet +SD vs control)."""
    return pair_intervals(query_data_of(a, setting), query_data_of(b, setting), **kw)

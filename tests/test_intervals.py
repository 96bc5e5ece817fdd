"""reidnb.core.intervals: paired bootstrap over queries (and seeds), verdicts, per-query files,
and the verdict tables / forest plot that 05_summary builds from a results folder."""
from __future__ import annotations

import math
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from reidnb.core import compare as C
from reidnb.core import intervals as I
from reidnb.core import results as R
from reidnb.core.config import make_config
from reidnb.core.runs import Run
from reidnb.evaluation.rank import RankResult
from reidnb.papers import bcloss  # noqa: F401  (registers the 01_bcloss config)


def _q(v=400, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.0, 0.85, v), (rng.uniform(size=v) < 0.6).astype(float)


# ------------------------------------------------------------------------ single seed
def test_identical_runs_give_a_narrow_interval_around_zero():
    ap, hit = _q()
    pair = I.paired_bootstrap(ap, hit, ap.copy(), hit.copy())
    for iv in pair:
        assert iv.delta == 0.0 and iv.contains(0.0) and iv.width < 1e-9
        assert (iv.n_boot, iv.n_queries, iv.level) == (1000, 400, 0.95)
    assert I.verdict(+1, pair.mAP) == "inconclusive"


def test_shifted_run_excludes_zero_centred_on_ten_points():
    ap, hit = _q()
    pair = I.paired_bootstrap(ap + 0.1, hit, ap, hit)          # +0.1 AP on every query
    assert pair.mAP.delta == pytest.approx(10.0)
    assert (pair.mAP.low, pair.mAP.high) == (pytest.approx(10.0), pytest.approx(10.0))
    assert pair["rank1"].delta == 0.0
    # noisy shift: d_q ~ N(0.1, 0.05^2) on 400 queries -> 95% half-width 1.96*0.05/20 = 0.49 pt
    noise = np.random.default_rng(1).normal(0.0, 0.05, ap.size)
    iv = I.paired_bootstrap(ap + 0.1 + noise, hit, ap, hit).mAP
    assert iv.delta == pytest.approx(10.0 + 100 * noise.mean())      # the observed shift
    assert not iv.contains(0.0) and (iv.low + iv.high) / 2 == pytest.approx(iv.delta, abs=0.1)
    assert iv.width == pytest.approx(2 * 1.96 * 0.05 / 20 * 100, rel=0.15)
    assert I.verdict(+1, iv) == "reproduced" and I.verdict(-0.3, iv) == "contradicted"
    # same seed, same answer; another seed, another (close) answer
    again = I.paired_bootstrap(ap + 0.1 + noise, hit, ap, hit).mAP
    assert (again.low, again.high) == (iv.low, iv.high)


def test_rank1_hits_and_alignment_by_query_index():
    ap, hit = _q(200)
    b_hit = hit.copy()
    b_hit[:50] = 1 - b_hit[:50]                              # known difference in hits
    pair = I.paired_bootstrap(ap, hit, ap, b_hit)
    assert pair.rank1.delta == pytest.approx(100 * (hit.mean() - b_hit.mean()))
    perm = np.random.default_rng(2).permutation(200)         # b listed in another order
    shuffled = I.paired_bootstrap(ap, hit, ap[perm], b_hit[perm], a_index=np.arange(200),
                                  b_index=perm)
    assert (shuffled.rank1.low, shuffled.rank1.high) == (pair.rank1.low, pair.rank1.high)
    with pytest.raises(ValueError, match="query sets differ"):
        I.paired_bootstrap(ap, hit, ap, hit, a_index=np.arange(200), b_index=np.arange(1, 201))
    with pytest.raises(ValueError, match="query sets differ"):
        I.paired_bootstrap(ap, hit, ap[:-1], hit[:-1])
    with pytest.raises(ValueError, match="n_boot"):
        I.paired_bootstrap(ap, hit, ap, hit, n_boot=10)


def test_verdict_truth_table():
    pos, neg, zero = I.Interval(3, 1, 5), I.Interval(-3, -5, -1), I.Interval(1, -1, 3)
    edge = I.Interval(2, 0.0, 4)                              # a bound at 0 contains 0
    table = {(+1, pos): "reproduced", (+1, neg): "contradicted", (+1, zero): "inconclusive",
             (-1, pos): "contradicted", (-1, neg): "reproduced", (-1, zero): "inconclusive",
             (0, pos): "inconclusive", (+1, edge): "inconclusive"}
    for (sign, iv), want in table.items():
        assert I.verdict(sign, iv) == want, (sign, iv)
    assert I.verdict(+1, None) == I.NO_DATA == "inconclusive (no per-query data)"


def test_multi_seed_interval_covers_seed_spread():
    v = 50
    idx = (np.arange(v),) * 3
    # variant a: three seeds, AP 0.5 / 0.6 / 0.7 on every query; b: one seed at 0.5
    a = I.QueryData(idx, tuple(np.full(v, x) for x in (0.5, 0.6, 0.7)), (np.ones(v),) * 3)
    b = I.QueryData(idx[:1], (np.full(v, 0.5),), (np.ones(v),))
    iv = I.seed_query_bootstrap(a, b).mAP
    assert iv.delta == pytest.approx(10.0) and (iv.seeds_a, iv.seeds_b) == (3, 1)
    # queries add nothing here: the interval is that of the mean of 3 seeds drawn from
    # {0.5, 0.6, 0.7}: all 0.5 or all 0.7 each have probability 1/27 > 2.5%
    assert iv.low == pytest.approx(0.0, abs=1e-9) and iv.high == pytest.approx(20.0)
    assert "seeds" in iv.method and I.verdict(+1, iv) == "inconclusive"
    single = I.seed_query_bootstrap(I.QueryData(idx[:1], a.query_ap[1:2], (np.ones(v),)), b).mAP
    assert single.width == pytest.approx(0.0) and I.verdict(+1, single) == "reproduced"


# ------------------------------------------------------------- results folder -> verdicts
BASE = R.Cell("bcloss", "Table 1", "Baseline", "ResNet50, softmax only")
OURS = R.Cell("bcloss", "Table 1", "Ours", "ResNet50, softmax + batch-contrastive loss (lambda=1)")


def _run(name, ap, hit):
    rank = RankResult(cmc=np.full(10, hit.mean()), mAP=float(ap.mean()), mINP=0.1,
                      query_ap=ap, query_index=np.arange(ap.size), query_rank1=hit)
    return Run(name=name, model=None, history=pd.DataFrame(), train_seconds=1.0,
               eval_seconds=0.5, epochs=1, result=SimpleNamespace(results={"single-query": rank}))


class _Seeds(SimpleNamespace):
    def metrics(self, setting="single-query"):
        return pd.DataFrame([r.metrics(setting) for r in self.runs]).mean().to_dict()

    seconds = 3.0
    epochs = 1


def _write(tmp_path, shift=0.1, seeds=2):
    cfg = make_config("01_bcloss", "smoke", output_dir=tmp_path, device="cpu")
    ap, hit = _q(300)
    better = np.maximum(hit, (np.arange(300) % 3 == 0))       # +1/3 of the misses fixed
    base = _Seeds(runs=tuple(_run(f"b{i}", ap + 0.001 * i, hit) for i in range(seeds)))
    ours = _Seeds(runs=tuple(_run(f"o{i}", ap + shift + 0.001 * i, better if shift > 0 else hit)
                             for i in range(seeds)))
    rows = R.published_rows(cfg, {"softmax": (BASE,), "joint": (OURS,)},
                            {"softmax": base, "joint": ours})
    return cfg, rows, R.write_results(rows, cfg)


def test_results_folder_to_verdict_table_and_forest(tmp_path):
    cfg, rows, path = _write(tmp_path)
    files = sorted((tmp_path / "results" / "01_bcloss").glob("q-*.npz"))
    assert len(files) == 2                                    # one per variant, shared by metrics
    csv = pd.read_csv(path, keep_default_na=False)
    assert set(csv["eval_file"]) == {f"results/01_bcloss/{f.name}" for f in files}
    assert set(csv["seeds"]) == {2}
    measured = R.read_results(tmp_path)
    d = C.ablation_directions(C.compare_all(measured)).set_index("metric")
    assert d.loc["mAP", "measured_delta"] == pytest.approx(10.0)
    # seeds 0.1 point apart in each variant: the seed level spreads the interval to +-0.1
    # (all-low a with all-high b has probability 1/16 > 2.5%)
    assert (d.loc["mAP", "ci_low"], d.loc["mAP", "ci_high"]) == (pytest.approx(9.9), pytest.approx(10.1))
    assert d.loc["mAP", "verdict"] == "reproduced"
    assert d.loc["rank1", "verdict"] == "reproduced" and d.loc["mAP", "seeds"] == "2 vs 2"
    assert "seeds" in d.loc["mAP", "interval_method"]
    table = C.directions_table(C.ablation_directions(C.compare_all(measured)), "bcloss")
    assert table["verdict"].tolist() == ["reproduced", "reproduced"]
    assert table["interval"].iloc[1] == "[+9.90, +10.10]"
    assert C.verdict_counts(d.reset_index()) == {"reproduced": 2, "contradicted": 0,
                                                 "inconclusive": 0, "no per-query data": 0}
    assert "2 of 2 published ablation directions reproduced" in C.ablation_statements(measured)["bcloss"]
    # in-memory rows (notebooks 01/04 compare pd.DataFrame(rows)) give the same verdicts
    mem = C.ablation_directions(C.compare(pd.DataFrame(rows), "bcloss", "Table 1"))
    assert mem["verdict"].tolist() == ["reproduced", "reproduced"]
    from reidnb.viz import plot_forest

    fig = plot_forest(C.ablation_directions(C.compare_all(measured)))
    assert len(fig.axes[0].get_yticklabels()) == 2
    assert "no compared pairs" in plot_forest(C.ablation_directions(
        C.compare_all(measured.iloc[:0]))).axes[0].texts[0].get_text()


def test_contradicted_and_old_csv_without_per_query_data(tmp_path):
    _, _, path = _write(tmp_path, shift=-0.1, seeds=1)        # ours worse: paper says better
    d = C.ablation_directions(C.compare_all(R.read_results(tmp_path))).set_index("metric")
    assert d.loc["mAP", "verdict"] == "contradicted" and d.loc["mAP", "seeds"] == "1 vs 1"
    assert d.loc["rank1", "verdict"] == "inconclusive"        # identical hits
    # an older CSV: no seeds / eval_file columns -> never a verdict
    pd.read_csv(path, keep_default_na=False).drop(columns=["seeds", "eval_file"]).to_csv(
        path, index=False)
    old = R.read_results(tmp_path)
    assert math.isnan(old["seeds"].iloc[0]) and (old["eval_file"] == "").all()
    d = C.ablation_directions(C.compare_all(old))
    assert (d["verdict"] == I.NO_DATA).all() and d["ci_low"].isna().all()
    # a re-write prunes per-query files no row refers to
    cfg = make_config("01_bcloss", "smoke", output_dir=tmp_path, device="cpu")
    R.write_results([], cfg)
    assert not list((tmp_path / "results" / "01_bcloss").glob("q-*.npz"))


def test_unreadable_per_query_file_is_named(tmp_path):
    bad = tmp_path / "q-bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="q-bad.npz"):
        I.load_query_file(bad)
    assert I.load_query_file(tmp_path / "missing.npz") is None and I.load_query_file("") is None


def test_index_verdict_counts(tmp_path):
    from reidnb.core.report import _verdict_line

    _, _, path = _write(tmp_path, shift=-0.1, seeds=1)
    res = R._read_one(path)
    assert _verdict_line(res) == "0 reproduced, 1 contradicted, 1 inconclusive of 2"
    old = res.assign(eval_file="")
    assert _verdict_line(old) == ("0 reproduced, 0 contradicted, 2 inconclusive (2 without "
                                  "per-query data) of 2")
    assert _verdict_line(res.iloc[:1]) == ""


def test_pair_verdicts_of_runs_for_paper_direction_tables():
    ap, hit = _q(200)
    a = SimpleNamespace(stage2=_run("a", ap + 0.05, hit))        # SAL SettingRun-like
    b = _run("b", ap, hit)
    v = C.pair_verdicts(a, b, {"rank1": 3.0, "mAP": -2.0, "rank5": 1.0})
    assert v["mAP"]["verdict"] == "contradicted" and v["mAP"]["ci_low"] == pytest.approx(5.0)
    assert v["rank1"]["verdict"] == "inconclusive" and v["rank1"]["seeds"] == "1 vs 1"
    assert v["rank5"]["verdict"] == I.NO_DATA and math.isnan(v["rank5"]["ci_low"])
    nodata = C.pair_verdicts(_Seeds(runs=(b, b)), SimpleNamespace(result=None), {"mAP": 1.0})
    assert nodata["mAP"] == {"ci_low": nodata["mAP"]["ci_low"], "ci_high": nodata["mAP"]["ci_high"],
                             "seeds": "2 vs 1", "verdict": I.NO_DATA}


def test_rank5_rank10_and_minp_intervals_when_measured(tmp_path):
    """Rank-5 / rank-10 / mINP get intervals from their per-query values and survive the
    per-query file; a file without them (older) gives rank-1 and mAP only."""
    v = 200
    ap, hit = _q(v)
    r5a, r5b = np.ones(v), np.where(np.arange(v) % 2 == 0, 1.0, 0.0)     # +50 points
    a = I.QueryData((np.arange(v),), (ap,), (hit,), query_rank5=(r5a,), query_rank10=(r5a,),
                    query_inp=(ap,))
    b = I.QueryData((np.arange(v),), (ap,), (hit,), query_rank5=(r5b,), query_rank10=(r5a,),
                    query_inp=(ap,))
    pair = I.seed_query_bootstrap(a, b)
    assert pair["rank5"].delta == pytest.approx(50.0) and pair["rank5"].low > 30
    assert pair["rank10"].delta == 0.0 and pair["rank10"].width == 0.0
    assert pair.get("mINP").delta == 0.0
    assert I.verdict(+1, pair["rank5"]) == "reproduced"
    path = I.remember_query_file(tmp_path, a)
    I.flush_query_files([path])
    back = I.load_query_file(path)
    assert back.fields().keys() == a.fields().keys()
    old = I.QueryData((np.arange(v),), (ap,), (hit,))               # rank-1 and AP only
    p2 = I.seed_query_bootstrap(old, b)
    assert p2.get("rank5") is None and p2.get("mAP") is not None
    with pytest.raises(KeyError):
        p2["rank10"]

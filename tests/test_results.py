"""reidnb.core.results: published numbers, results CSVs, comparison and ablation directions."""
from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import pandas as pd
import pytest

from reidnb.core import compare as C
from reidnb.core import results as R
from reidnb.core.config import make_config
from reidnb.papers import bcloss  # noqa: F401  (registers the 01_bcloss config)

BC_BASE = dict(method="Baseline", variant="ResNet50, softmax only")
BC_OURS = dict(method="Ours", variant="ResNet50, softmax + batch-contrastive loss (lambda=1)")


@pytest.fixture()
def cfg(tmp_path):
    return make_config("01_bcloss", "smoke", output_dir=tmp_path, device="cpu")


def _row(**kw):
    """A hand-made measured row (not built by result_rows) with every RESULT_COLUMN."""
    row = dict(paper_id="bcloss", paper="x", table="Table 1", dataset="Market-1501",
               protocol="single-query", method="Baseline", is_ours=1,
               variant="ResNet50, softmax only", metric="rank1", value=0.0, reranking=0,
               note="", profile="paper", backbone="resnet50", image_size="256x128",
               epochs=60.0, seconds=10.0, dataset_kind="real")
    row.update(kw)
    return row


# ----------------------------------------------------------------------------- published
def test_published_loads_all_rows_and_columns():
    pub = R.load_published()
    assert len(pub) == 560
    assert tuple(pub.columns) == R.PAPER_COLUMNS
    assert set(pub["paper_id"]) == set(R.PAPER_IDS)
    assert set(pub["metric"]) <= set(R.METRICS)
    t1 = R.load_published("bcloss", "Table 1")
    assert len(t1) == 32
    ours = t1[(t1.method == "Ours") & (t1.metric == "rank1")]
    assert ours["value"].tolist() == [86.40]
    assert (pub["protocol"] == "").sum() > 0  # blanks stay empty strings, not NaN
    t1.loc[:, "value"] = 0.0  # a copy: the cached package data is unchanged
    assert R.load_published("bcloss", "Table 1")["value"].max() > 90


def test_published_unknown_names_are_refused():
    with pytest.raises(ValueError, match="unknown paper_id 'nope'"):
        R.load_published("nope")
    with pytest.raises(ValueError, match="has no table 'Table 9'.*Table 1"):
        R.load_published("bcloss", "Table 9")


# ----------------------------------------------------------------------------- result rows
def test_result_rows_fields(cfg):
    rows = R.result_rows(cfg, paper_id="bcloss", table="Table 1", dataset="market1501",
                         protocol="single-query", **BC_OURS,
                         metrics={"rank1": 55.5, "mAP": 31.25}, reranking=False, seconds=12.5,
                         note="3 epochs")
    assert [r["metric"] for r in rows] == ["rank1", "mAP"]
    assert [r["value"] for r in rows] == [55.5, 31.25]
    r = rows[0]
    assert list(r) == list(R.RESULT_COLUMNS)
    assert r["paper"].startswith("Discriminative feature representation")
    assert r["dataset"] == "Market-1501"  # loader name translated
    assert r["is_ours"] == 1 and r["reranking"] == 0
    assert (r["profile"], r["backbone"], r["image_size"]) == ("smoke", "resnet18", "64x32")
    assert r["epochs"] == 1.0 and r["seconds"] == 12.5
    assert r["dataset_kind"] == "synthetic"
    assert r["note"] == "synthetic stand-in for Market-1501; not comparable; 3 epochs"


def test_result_rows_refuses_bad_input(cfg):
    kw = dict(paper_id="bcloss", table="Table 1", dataset="Market-1501",
              protocol="single-query", reranking=False, seconds=1.0)
    with pytest.raises(ValueError, match="unknown metric 'top1'"):
        R.result_rows(cfg, **kw, **BC_OURS, metrics={"top1": 50.0})
    with pytest.raises(ValueError, match="not a percentage"):
        R.result_rows(cfg, **kw, **BC_OURS, metrics={"rank1": 150.0})
    with pytest.raises(ValueError, match="not a percentage"):
        R.result_rows(cfg, **kw, **BC_OURS, metrics={"rank1": float("nan")})
    with pytest.raises(ValueError, match="(?s)no published row.*method='Baseline' variant="
                                         "'ResNet50, softmax only'.*extra=True"):
        R.result_rows(cfg, **kw, method="Ours", variant="lambda=0.5", metrics={"rank1": 5.0})
    extra = R.result_rows(cfg, **kw, method="Ours", variant="lambda=0.5",
                          metrics={"rank1": 5.0}, extra=True)
    assert extra[0]["variant"] == "lambda=0.5"
    # empty protocol and single-query are the same published row
    kw_blank = dict(kw, protocol="")
    assert R.result_rows(cfg, **kw_blank, **BC_OURS, metrics={"mAP": 1.0})[0]["protocol"] == ""
    real = make_config("01_bcloss", "smoke", dataset="dukemtmcreid", device="cpu",
                       output_dir=cfg.output_dir)
    with pytest.raises(ValueError, match="a real run can only report its own dataset"):
        R.result_rows(real, **kw, **BC_OURS, metrics={"rank1": 5.0})


# ----------------------------------------------------------------------------- write / read
def test_write_read_round_trip(cfg, tmp_path):
    rows = R.result_rows(cfg, paper_id="bcloss", table="Table 1", dataset="Market-1501",
                         protocol="single-query", **BC_BASE,
                         metrics={"rank1": 50.0, "mAP": 30.125}, reranking=False, seconds=3.0)
    rows += R.result_rows(cfg, paper_id="sal", table="Table 4", dataset="CIFAR-100",
                          protocol="", method="ResNet50 (Soft)", variant="ResNet50, softmax",
                          metrics={"error_rate": 40.0}, reranking=False, seconds=4.0,
                          epochs=None)
    path = R.write_results(rows, cfg)
    assert path == tmp_path / "results" / "01_bcloss.csv"
    back = R.read_results(tmp_path)
    assert list(back.columns) == ["notebook", *R.RESULT_COLUMNS]
    assert back["notebook"].unique().tolist() == ["01_bcloss"]
    assert back["value"].tolist() == [50.0, 30.125, 40.0]
    assert back["protocol"].tolist() == ["single-query", "single-query", ""]
    assert back["reranking"].dtype.kind == "i" and back["is_ours"].tolist() == [1, 1, 1]
    assert back["epochs"].tolist() == [1.0, 1.0, 1.0]
    pd.testing.assert_frame_equal(back.drop(columns="notebook"),
                                  pd.DataFrame(rows, columns=list(R.RESULT_COLUMNS)),
                                  check_dtype=False)
    # a second call replaces the file
    R.write_results(rows[:1], cfg)
    assert len(R.read_results(tmp_path)) == 1


def test_write_is_atomic(cfg, tmp_path, monkeypatch):
    rows = R.result_rows(cfg, paper_id="bcloss", table="Table 1", dataset="Market-1501",
                         protocol="single-query", **BC_BASE, metrics={"rank1": 50.0},
                         reranking=False, seconds=3.0)
    path = R.write_results(rows, cfg)
    before = path.read_bytes()

    def broken_to_csv(self, target, *a, **k):
        with open(target, "w") as f:
            f.write("paper_id,pap")  # half a file, then the disk "fails"
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", broken_to_csv)
    with pytest.raises(OSError, match="disk full"):
        R.write_results(rows * 2, cfg)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["01_bcloss.csv"]  # no temp left


def test_write_refuses_incomplete_rows(cfg):
    with pytest.raises(ValueError, match=r"row 0 has missing columns \['seconds'"):
        R.write_results([{k: 0 for k in R.RESULT_COLUMNS if k != "seconds"}], cfg)


def test_read_results_empty_and_bad_csv(tmp_path):
    assert R.read_results(tmp_path).empty
    (tmp_path / "results").mkdir()
    bad = tmp_path / "results" / "03_sal.csv"
    pd.DataFrame([_row()]).drop(columns=["seconds", "dataset_kind"]).to_csv(bad, index=False)
    with pytest.raises(ValueError, match=r"03_sal\.csv.*missing columns \['seconds', "
                                         r"'dataset_kind'\]"):
        R.read_results(tmp_path)
    pd.DataFrame([_row(value="high")]).to_csv(bad, index=False)
    with pytest.raises(ValueError, match=r"03_sal\.csv: column 'value'.*'high'"):
        R.read_results(tmp_path)
    bad.write_text("")
    with pytest.raises(ValueError, match=r"03_sal\.csv: not a readable results CSV"):
        R.read_results(tmp_path)


# ----------------------------------------------------------------------------- compare
def _measured():
    return pd.DataFrame([
        _row(**BC_BASE, metric="rank1", value=80.34),                 # 83.34 published
        _row(**BC_BASE, metric="mAP", value=60.0, protocol=""),       # 63.20; blank protocol
        _row(**BC_OURS, metric="rank1", value=85.0),                  # 86.40, two runs
        _row(**BC_OURS, metric="rank1", value=87.0),                  #   -> mean 86.0
        _row(**BC_OURS, metric="mAP", value=20.0, dataset_kind="synthetic", profile="smoke"),
        _row(**BC_OURS, metric="mINP", value=10.0),                   # not published
        _row(paper_id="sal", table="Table 1", metric="rank1", value=1.0),  # other table
    ])


def test_compare_side_by_side():
    cmp = C.compare(_measured(), "bcloss", "Table 1")
    assert tuple(cmp.columns) == R.COMPARE_COLUMNS
    assert len(cmp) == 8 + 1  # 8 own published cells + the unpublished mINP
    key = cmp.set_index(["method", "metric"])
    assert key.loc[("Baseline", "rank1"), "delta"] == pytest.approx(-3.0)
    assert key.loc[("Baseline", "mAP"), "delta"] == pytest.approx(-3.2)
    assert key.loc[("Baseline", "mAP"), "protocol"] == "single-query"
    ours_r1 = key.loc[("Ours", "rank1")]
    assert (ours_r1["measured"], ours_r1["runs"]) == (pytest.approx(86.0), 2)
    assert ours_r1["delta"] == pytest.approx(-0.4)
    assert ours_r1["status"] == "real"
    assert key.loc[("Ours", "mAP"), "status"] == "synthetic: not comparable"
    assert key.loc[("Ours", "mAP"), "dataset_kind"] == "synthetic"
    for not_run in [("Baseline", "rank5"), ("Baseline", "rank10"), ("Ours", "rank5")]:
        row = key.loc[not_run]
        assert math.isnan(row["measured"]) and math.isnan(row["delta"])
        assert row["status"] == "not run" and row["runs"] == 0
    extra = key.loc[("Ours", "mINP")]
    assert math.isnan(extra["published"]) and extra["status"] == "no published value"
    assert cmp["metric"].tolist()[:4] == ["rank1", "rank5", "rank10", "mAP"]  # paper order
    assert cmp.iloc[-1]["metric"] == "mINP"
    # nothing measured: every own published cell is "not run"
    empty = C.compare(_measured().iloc[:0], "bcloss", "Table 2")
    assert len(empty) == 4 and (empty["status"] == "not run").all()
    with_others = C.compare(_measured(), "bcloss", "Table 1", include_others=True)
    assert len(with_others) == 32 + 1


def test_summary_tables_and_not_run():
    m = _measured()
    tables = C.summary_tables(m)
    assert [(p, t) for p, t, _ in tables] == [("bcloss", "Table 1"), ("sal", "Table 1")]
    missing = C.tables_not_run(m)
    assert ("bcloss", "Table 2") in set(zip(missing.paper_id, missing.table))
    assert ("bcloss", "Table 1") not in set(zip(missing.paper_id, missing.table))
    assert len(missing) == 18 - 2
    assert len(C.tables_not_run(m.iloc[:0])) == 18
    assert C.compare_all(m.iloc[:0]).empty


def test_ablation_directions_hand_worked():
    m = pd.DataFrame([
        _row(**BC_BASE, metric="rank1", value=80.0),
        _row(**BC_OURS, metric="rank1", value=79.0),   # published +3.06, measured -1 -> no
        _row(**BC_BASE, metric="mAP", value=50.0),
        _row(**BC_OURS, metric="mAP", value=52.5),     # published +4.44, measured +2.5 -> yes
        _row(paper_id="sal", table="Table 4", dataset="CIFAR-100", protocol="",
             method="ResNet50 (Soft)", variant="ResNet50, softmax", metric="error_rate",
             value=30.0),
        _row(paper_id="sal", table="Table 4", dataset="CIFAR-100", protocol="",
             method="ResNet50 (Soft+DIL+SAC)", variant="ResNet50, softmax + DIL + SAC",
             metric="error_rate", value=29.0),          # lower error: better, as published
    ])
    d = C.ablation_directions(C.compare_all(m)).set_index(["paper_id", "metric"])
    r1 = d.loc[("bcloss", "rank1")]
    assert r1["published_delta"] == pytest.approx(86.40 - 83.34)
    assert r1["measured_delta"] == pytest.approx(-1.0)
    assert (r1["published_direction"], r1["measured_direction"], r1["agrees"]) == \
        ("better", "worse", False)
    assert r1["reference"] == "Baseline [ResNet50, softmax only]"
    assert d.loc[("bcloss", "mAP"), "agrees"] == True  # noqa: E712
    err = d.loc[("sal", "error_rate")]
    assert err["published_delta"] == pytest.approx(21.75 - 22.02)
    assert (err["published_direction"], err["measured_direction"]) == ("better", "better")
    text = C.ablation_statements(m)
    assert list(text) == list(R.PAPER_IDS)
    # hand-made rows carry no per-query files: never a verdict, whatever the signs say
    assert (d["verdict"] == "inconclusive (no per-query data)").all() and d["ci_low"].isna().all()
    assert d.loc[("bcloss", "mAP"), "seeds"] == "? vs ?"
    assert ("0 of 2 published ablation directions reproduced, 0 contradicted, 0 inconclusive, "
            "2 without per-query data") in text["bcloss"]
    assert "rank1 +3.06/-1.00 inconclusive (no per-query data)" in text["bcloss"]
    assert "(real data)" in text["bcloss"]
    assert "0 of 1" in text["sal"]
    assert text["maskreid"].endswith("not run (no measured rows).")


def test_headline_and_overview():
    m = _measured()
    lines = R.headline(m[m.paper_id == "bcloss"])
    # the paper row, the numbers, then what actually ran (seeds unknown in hand-made rows)
    assert lines[0] == ("bcloss Table 1 · Market-1501 · single-query · "
                        "Baseline [ResNet50, softmax only]: rank1 80.34 "
                        "(ran: resnet50, 256x128, real data)")
    assert len(lines) == 3  # Baseline sq, Baseline blank-protocol mAP, Ours
    assert lines[2].endswith("(ran: resnet50, 256x128, real,synthetic data)")
    small = m[m.paper_id == "bcloss"].iloc[:1].assign(backbone="resnet18", image_size="64x32",
                                                      dataset_kind="synthetic", seeds=5.0)
    assert R.headline(small)[0].endswith(": rank1 80.34 (ran: resnet18, 64x32, synthetic data, "
                                         "5 seeds)")
    ov = R.results_overview(m.assign(notebook="01_bcloss"))
    assert ov["rows"].tolist() == [7]
    distinct = m.drop_duplicates(["dataset", "dataset_kind", "seconds"])["seconds"].sum()
    assert ov["seconds"].tolist() == [round(float(distinct), 1)]
    # a run listed in two tables counts once
    twice = pd.concat([m.iloc[:1], m.iloc[:1].assign(table="Table 9")]).assign(notebook="x")
    assert R.results_overview(twice)["seconds"].tolist() == [round(float(m["seconds"].iloc[0]), 1)]
    assert ov["tables"].tolist() == ["bcloss Table 1, sal Table 1"]


def test_plot_measured_vs_published():
    from reidnb.viz import plot_measured_vs_published

    fig = plot_measured_vs_published(C.compare_all(_measured()))
    ax = fig.axes[0]
    # 2 groups (bcloss real, bcloss synthetic); 3 real + 1 synthetic points drawn
    assert sorted(len(c.get_offsets()) for c in ax.collections) == [1, 3]
    assert "synthetic (not comparable)" in [t.get_text() for t in ax.get_legend().get_texts()]
    empty = plot_measured_vs_published(C.compare_all(_measured().iloc[:0]))
    assert "no measured results yet" in empty.axes[0].texts[0].get_text()


def test_stale_results_are_named(tmp_path):
    import os

    res = tmp_path / "results"
    res.mkdir()
    (res / "01_bcloss.csv").write_text("x")
    (res / "01_bcloss.config.json").write_text("{}")
    (res / "02_maskreid.config.json").write_text("{}")
    (res / "02_maskreid.csv").write_text("x")
    os.utime(res / "01_bcloss.csv", (1_000_000, 1_000_000))      # CSV from an older run
    os.utime(res / "02_maskreid.config.json", (1_000_000, 1_000_000))
    stale = R.stale_results(tmp_path)
    assert list(stale) == ["01_bcloss"] and "did not finish" in stale["01_bcloss"]

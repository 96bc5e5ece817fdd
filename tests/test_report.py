"""reidnb.core.report / python -m reidnb: parameter checks, papermill runs, HTML and index.

Each executed notebook costs a kernel start (~5 s on the shared CPU), so the runs are few:
one ok run of two notebooks and one failing run of two.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from reidnb.core import report
from reidnb.__main__ import main as cli_main

PARAMS = 'profile = "quick"  # profile\noutput_dir = None  # outputs\n'


def _write_nb(path: Path, params: str, body: str) -> None:
    nb = new_notebook(cells=[new_code_cell(params, metadata={"tags": ["parameters"]}),
                             new_code_cell(body)],
                      metadata={"kernelspec": {"name": "python3", "language": "python",
                                               "display_name": "Python 3"}})
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def nbdir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("notebooks")
    # 01 writes a results CSV through the package, so index.html has headline numbers
    _write_nb(d / "01_first.ipynb", PARAMS + "alpha = 1  # only 01 has it\n", """\
from reidnb.core.config import make_config
from reidnb.core.results import result_rows, write_results
cfg = make_config("01_first", profile, output_dir=output_dir, device="cpu")
rows = result_rows(cfg, paper_id="bcloss", table="Table 1", dataset="Market-1501",
                   protocol="single-query", method="Ours",
                   variant="ResNet50, softmax + batch-contrastive loss (lambda=1)",
                   metrics={"rank1": 55.0 + alpha, "mAP": 29.5}, reranking=False, seconds=1.0)
cfg.save()
write_results(rows, cfg)
print("first ran with alpha", alpha)""")
    _write_nb(d / "02_fails.ipynb", PARAMS, 'x = 1\nraise ValueError("boom from 02")')
    _write_nb(d / "03_third.ipynb", PARAMS + "beta = 2  # only 03 has it\n",
              'print("third ran with beta", beta)')
    (d / "notes.ipynb").write_text("not a numbered notebook: ignored")
    return d


def _injected(executed: Path) -> str:
    nb = nbformat.read(executed, as_version=4)
    cells = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    return cells[0].source if cells else ""


def _index_rows(index: Path) -> dict[str, str]:
    """notebook name -> its <tr> text, from index.html."""
    text = index.read_text()
    rows = re.findall(r"<tr><td>(.*?)</tr>", text, flags=re.S)
    out = {}
    for r in rows:
        name = re.sub(r"<[^>]+>", "", r.split("</td>")[0])
        out[name] = r
    return out


# ----------------------------------------------------------------------------- no kernel
def test_parse_param():
    assert report.parse_param("seed=3") == ("seed", 3)
    assert report.parse_param("lr=3.5e-4") == ("lr", 3.5e-4)
    assert report.parse_param("flip=true") == ("flip", True)
    assert report.parse_param("flip=False") == ("flip", False)
    assert report.parse_param("max_iters=None") == ("max_iters", None)
    assert report.parse_param("dims=[1, 2]") == ("dims", [1, 2])
    assert report.parse_param("dataset=market1501") == ("dataset", "market1501")
    assert report.parse_param("backbone='resnet50'") == ("backbone", "resnet50")
    for bad in ("seed", "=3", "not-a-name=1"):
        with pytest.raises(report.ReportError, match="expected name=value"):
            report.parse_param(bad)


def test_discover_select_and_plan(nbdir):
    nbs = report.discover_notebooks(nbdir)
    assert [p.name for p in nbs] == ["01_first.ipynb", "02_fails.ipynb", "03_third.ipynb"]
    assert [p.stem for p in report.select_notebooks(nbs, "1,03")] == ["01_first", "03_third"]
    with pytest.raises(report.ReportError, match="--only 07: no such notebook.*01_first"):
        report.select_notebooks(nbs, "01,07")
    plans = report.plan_parameters(nbs, {"profile": "smoke", "alpha": 3, "beta": 4,
                                         "output_dir": "/o"})
    assert plans[nbs[0]] == {"profile": "smoke", "alpha": 3, "output_dir": "/o"}
    assert plans[nbs[1]] == {"profile": "smoke", "output_dir": "/o"}
    assert plans[nbs[2]] == {"profile": "smoke", "beta": 4, "output_dir": "/o"}
    with pytest.raises(report.ReportError, match="(?s)unknown parameter.*gamma.*01_first: "
                                                 "alpha, output_dir, profile"):
        report.plan_parameters(nbs, {"gamma": 1})


def test_unknown_parameter_refused_before_running(nbdir, tmp_path, capsys):
    out = tmp_path / "out"
    # alpha exists, but not in the only selected notebook (03)
    rc = report.main(["--notebooks-dir", str(nbdir), "--output-dir", str(out), "--only", "03",
                      "-p", "alpha=2"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "unknown parameter(s) alpha" in err and "03_third: beta, output_dir, profile" in err
    assert not out.exists()  # nothing ran, nothing written
    assert report.main(["--notebooks-dir", str(nbdir), "--output-dir", str(out),
                        "-p", "profile=smoke"]) == 2
    assert "use --profile instead" in capsys.readouterr().err
    assert report.main(["--notebooks-dir", str(tmp_path / "none")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as e:
        cli_main(["--help"])
    assert e.value.code == 0
    assert "report" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        cli_main(["report", "--help"])
    text = capsys.readouterr().out
    assert e.value.code == 0
    for opt in ("--profile", "--dataset", "--data-root", "--device", "--only", "--output-dir",
                "-p NAME=VALUE", "--notebooks-dir"):
        assert opt in text


# ----------------------------------------------------------------------------- with kernels
def test_ok_run(nbdir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc = cli_main(["report", "--notebooks-dir", str(nbdir), "--output-dir", "rel_out",
                   "--only", "03", "--profile", "smoke", "-p", "beta=7"])
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    out = tmp_path / "rel_out"
    assert "[1/1] 03_third: ok in" in printed.out
    assert (out / "executed" / "03_third.ipynb").is_file()
    page = (out / "html" / "03_third.html").read_text()
    assert "jp-Cell" in page and "jp-InputArea" in page  # lab template, inputs shown
    assert "third ran with beta 7" in page
    assert not (out / "executed" / "01_first.ipynb").exists()
    inj = _injected(out / "executed" / "03_third.ipynb")
    assert "beta = 7" in inj and 'profile = "smoke"' in inj
    assert f'output_dir = "{out}"' in inj  # relative --output-dir made absolute
    rows = _index_rows(out / "index.html")
    assert list(rows) == ["01_first", "02_fails", "03_third"]
    assert ">ok<" in rows["03_third"] and "smoke" in rows["03_third"]
    assert ">not run<" in rows["01_first"] and ">not run<" in rows["02_fails"]
    assert 'href="html/03_third.html"' in rows["03_third"]


def test_failing_run_stops_and_still_renders(nbdir, tmp_path, capsys):
    out = tmp_path / "out"
    rc = report.main(["--notebooks-dir", str(nbdir), "--output-dir", str(out),
                      "--profile", "smoke", "-p", "alpha=5"])
    printed = capsys.readouterr()
    assert rc == 1
    # In [1] parameters, In [2] papermill's injected parameters, In [3] the raising cell
    assert re.search(r"notebook 02_fails failed in cell In \[3\] .*'x = 1'.*"
                     r"ValueError: boom from 02", printed.err), printed.err
    assert "[1/3] 01_first: ok in" in printed.out and "[2/3] 02_fails: failed in" in printed.out
    assert "03_third" not in printed.out
    assert (out / "html" / "01_first.html").is_file()
    failed_page = (out / "html" / "02_fails.html").read_text()
    assert "boom from 02" in failed_page
    assert not (out / "executed" / "03_third.ipynb").exists()
    # alpha went to 01 only (02 does not declare it)
    assert "alpha = 5" in _injected(out / "executed" / "01_first.ipynb")
    assert "alpha" not in _injected(out / "executed" / "02_fails.ipynb")
    rows = _index_rows(out / "index.html")
    assert ">ok<" in rows["01_first"] and ">failed<" in rows["02_fails"]
    assert ">not run<" in rows["03_third"]
    assert "boom from 02" in rows["02_fails"]
    # headline numbers of 01 from its fresh results CSV (rank1 = 55 + alpha)
    assert "synthetic" in rows["01_first"] and "smoke" in rows["01_first"]
    assert "rank1 60.00, mAP 29.50 (ran: " in rows["01_first"]     # what ran, beside the row
    assert "synthetic data, 1 seed)" in rows["01_first"]
    cfg = json.loads((out / "results" / "01_first.config.json").read_text())
    assert cfg["output_dir"] == str(out)


@pytest.mark.parametrize("argv, msg", [
    (["--data-root", "/tmp"], "--data-root given without --dataset"),
    (["--device", "cuda:7"] if not __import__("torch").cuda.is_available() else ["--device", "mps"],
     "--device: device"),
    (["--dataset", "market"], "unknown dataset 'market'"),
    (["-p", "seed=1.7", "--only", "01"], "seed=1.7"),
    (["-p", "seed=notanint", "--only", "01"], "seed='notanint'"),
])
def test_bad_input_is_refused_before_any_kernel(argv, msg, tmp_path, capsys):
    rc = cli_main(["report", "--profile", "smoke", "--output-dir", str(tmp_path / "o"), *argv])
    err = capsys.readouterr().err
    assert rc == 2 and msg in err, err
    assert not (tmp_path / "o" / "executed").exists()


def test_unwritable_output_dir_is_a_usage_error(tmp_path, capsys):
    import os

    if os.geteuid() == 0:
        blocked = tmp_path / "file"          # root ignores permissions: a file in the way
        blocked.write_text("x")
        out = blocked / "sub"
    else:
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        out = ro / "sub"
    rc = cli_main(["report", "--profile", "smoke", "--only", "05", "--output-dir", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "is not writable" in err and str(out) in err


def test_ctrl_c_still_writes_the_index(nbdir, tmp_path, monkeypatch, capsys):
    import papermill

    real = papermill.execute_notebook
    calls = {"n": 0}

    def interrupted(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(papermill, "execute_notebook", interrupted)
    out = tmp_path / "out"
    rc = report.main(["--profile", "smoke", "--notebooks-dir", str(nbdir), "--output-dir", str(out)])
    assert rc == 130
    page = (out / "index.html").read_text()
    assert "01_first" in page and "interrupted (Ctrl-C)" in page

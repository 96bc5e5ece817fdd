"""Smoke-run every notebooks/NN_*.ipynb with papermill (profile "smoke", CPU, synthetic data).

Tiered as recommenders' notebook tests (STYLE.md item 12): the smoke tier only checks that
every code path runs and that results files have the DESIGN.md columns. All notebooks of a
session share one output folder (so 05_summary, which runs last, sees the others' results)
and one data root with the synthetic set generated once. Each notebook costs a kernel
start (~5-10 s) plus its own smoke work. Select with ``-m notebook``; deselect with
``-m "not notebook"``.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from reidnb.core.results import RESULT_COLUMNS, read_results

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

pytestmark = pytest.mark.notebook


@pytest.fixture(scope="session")
def nb_env(tmp_path_factory) -> dict[str, str]:
    """Session folders: ``data_root`` with the smoke synthetic set, shared ``output_dir``."""
    root = tmp_path_factory.mktemp("notebook_smoke")
    data_root, output_dir = root / "data", root / "outputs"
    os.environ.setdefault("OMP_NUM_THREADS", "2")  # kernels inherit it: 2 shared cores
    try:
        from reidnb.data.datasets import load_dataset
    except ImportError:  # data package not there yet: the notebooks generate it themselves
        pass
    else:
        load_dataset("synthetic", data_root, verbose=False, synthetic_size="smoke", seed=0)
    return {"data_root": str(data_root), "output_dir": str(output_dir)}


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_smoke(notebook: Path, nb_env: dict[str, str]) -> None:
    import papermill

    wanted = {"profile": "smoke", **nb_env}
    declared = papermill.inspect_notebook(str(notebook))
    missing = [k for k in ("profile", "dataset", "data_root", "device", "seed", "output_dir")
               if k not in declared]
    assert not missing, f"{notebook.name}: parameters cell lacks {missing} (DESIGN.md Profiles)"
    executed = Path(nb_env["output_dir"]) / "executed" / notebook.name
    executed.parent.mkdir(parents=True, exist_ok=True)
    try:
        papermill.execute_notebook(
            str(notebook), str(executed), parameters=wanted, kernel_name="python3",
            cwd=str(notebook.parent), progress_bar=False, log_output=False, start_timeout=120)
    except papermill.PapermillExecutionError as e:
        pytest.fail(f"{notebook.name} failed in cell In [{e.exec_count}]: {e.ename}: "
                    f"{e.evalue}\n--- cell source ---\n{e.source}", pytrace=False)
    csv = Path(nb_env["output_dir"]) / "results" / f"{notebook.stem}.csv"
    if csv.exists():  # not every notebook measures something (00_data, 05_summary)
        res = read_results(nb_env["output_dir"])  # raises naming the file if columns lack
        res = res[res["notebook"] == notebook.stem]
        assert list(res.columns[1:]) == list(RESULT_COLUMNS)
        assert len(res) > 0, f"{csv} has no rows"
        assert set(res["profile"]) == {"smoke"}
        assert set(res["dataset_kind"]) == {"synthetic"}
        assert res["value"].between(0, 100).all()

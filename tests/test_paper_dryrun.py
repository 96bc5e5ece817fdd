"""Paper-profile dry runs: every paper notebook on every dataset its tables use.

The paper profile is the product (DESIGN.md "Profiles"): the papers' own backbone, image
size, batch scheme and schedule on the datasets as users download them. This module runs
each paper notebook through papermill at ``profile="paper"`` on generated fixtures in the
official folder layouts (:func:`reidnb.data.synthetic.write_fixtures`: Market-1501 with the
SCHP parsing labels a user adds, DukeMTMC-reID and CUHK03-NP without any, the small sets of
MaskReID Table 1 and CIFAR-100), with the dry-run caps ``max_iters=1`` and ``batch_size=8``
(the paper's batch scheme scaled down: P x K = 2 x 4, MaskReID P/N = 2/6). Everything else is
the paper's: ResNet-50 at 256x128 / 384x192 / 384x128, DGD at 144x56, every variant and table.

A notebook that cannot reach one of the tables its paper publishes on that dataset fails:
the test reads the notebook's results CSV and asserts a measured value for every (paper,
table) of ``paper_results.csv`` on the dataset (small sets and CIFAR-100 with Market-1501,
where the notebook looks for them under the same ``data_root``).

No download: ``REIDNB_OFFLINE=1`` (tests/conftest.py), so a dry run starts from random init
(``pretrained="auto"``, printed). Runs on 2 CPU cores; the cost per case is in the closing
notes of issue 13. Select with ``-m dryrun``; deselect with ``-m "not dryrun"``.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.notebook, pytest.mark.dryrun]

#: Published dataset name -> the ``load_dataset`` name a notebook runs on; the small sets
#: and CIFAR-100 are reached from the Market-1501 run (found under the same data_root).
RUN_ON = {"Market-1501": "market1501", "DukeMTMC-reID": "dukemtmcreid",
          "CUHK03-L": "cuhk03np-labeled", "CUHK03-D": "cuhk03np-detected",
          "CIFAR-100": "market1501", "VIPeR": "market1501", "CUHK03": "market1501",
          "PRID": "market1501", "3DPeS": "market1501", "iLIDS": "market1501",
          "CUHK01": "market1501"}
NOTEBOOK_OF = {"bcloss": "01_bcloss", "maskreid_icme": "02_maskreid", "maskreid": "02_maskreid",
               "sal": "03_sal", "magnifiernet": "04_magnifiernet"}
#: Figures a paper publishes on a dataset (not in paper_results.csv): the file each must draw.
FIGURES_ON = {("04_magnifiernet", "cuhk03np-labeled"): ("fig4_sfb_vs_ab", "fig5_k_hat")}
#: Extra parameters per notebook: seeds beyond the first exercise no other code path.
EXTRA = {"01_bcloss": {"runs": 1}}


def _expected() -> dict[tuple[str, str], set[tuple[str, str]]]:
    """(notebook, dataset) -> {(paper_id, table)} the paper publishes there."""
    from reidnb.core.results import load_published

    pub = load_published()
    out: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for (pid, table, ds), _ in pub.groupby(["paper_id", "table", "dataset"]):
        out.setdefault((NOTEBOOK_OF[pid], RUN_ON[ds]), set()).add((pid, table))
    return out


CASES = sorted(_expected())


@pytest.fixture(scope="session")
def dry_root(tmp_path_factory) -> Path:
    """One data root with every official-layout fixture (Market-1501 with parsing labels)."""
    from reidnb.data.synthetic import write_fixtures

    root = tmp_path_factory.mktemp("paper_dryrun")
    # smaller than the fixture defaults: evaluation is most of a dry run's time on a CPU
    write_fixtures(root / "data", parsing=True, ids={"market1501": (8, 4), "dukemtmcreid": (8, 4),
                                                     "cuhk03np": (8, 4)})
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    return root


def test_every_published_table_has_a_dry_run_case():
    """Each paper notebook is dry-run on every dataset its paper publishes numbers on."""
    cases = set(CASES)
    assert ("04_magnifiernet", "cuhk03np-labeled") in cases
    assert ("04_magnifiernet", "cuhk03np-detected") in cases
    assert ("02_maskreid", "dukemtmcreid") in cases and ("03_sal", "dukemtmcreid") in cases
    assert {nb for nb, _ in cases} == set(NOTEBOOK_OF.values())


@pytest.mark.parametrize("notebook,dataset", CASES, ids=[f"{n}-{d}" for n, d in CASES])
def test_paper_profile_dry_run(notebook: str, dataset: str, dry_root: Path) -> None:
    import papermill

    out = dry_root / "outputs" / f"{notebook}-{dataset}"
    params = dict(profile="paper", dataset=dataset, data_root=str(dry_root / "data"),
                  output_dir=str(out), device="cpu", max_iters=1, batch_size=8,
                  **EXTRA.get(notebook, {}))
    executed = out / "executed.ipynb"
    out.mkdir(parents=True, exist_ok=True)
    try:
        papermill.execute_notebook(
            str(ROOT / "notebooks" / f"{notebook}.ipynb"), str(executed), parameters=params,
            kernel_name="python3", cwd=str(ROOT / "notebooks"), progress_bar=False,
            log_output=False, start_timeout=120)
    except papermill.PapermillExecutionError as e:
        pytest.fail(f"{notebook} on {dataset} (paper dry run) failed in cell In [{e.exec_count}]: "
                    f"{e.ename}: {e.evalue}\n--- cell source ---\n{e.source}", pytrace=False)
    finally:   # ResNet-50 checkpoints with optimiser state are ~100-340 MB each: not kept
        shutil.rmtree(out / "checkpoints", ignore_errors=True)
    rows = pd.read_csv(out / "results" / f"{notebook}.csv")
    measured = rows[rows["value"].notna()]
    have = set(zip(measured["paper_id"], measured["table"]))
    missing = sorted(_expected()[(notebook, dataset)] - have)
    assert not missing, (f"{notebook} on {dataset} at the paper profile reached no measured value "
                         f"for {missing} (their published numbers are on this dataset)")
    assert measured["note"].fillna("").str.contains("DRY RUN").all(), \
        "dry-run rows must say so in their note"
    for fig in FIGURES_ON.get((notebook, dataset), ()):   # published figures, not in the CSV
        assert (out / "figures" / notebook / f"{fig}.png").is_file(), \
            f"{notebook} on {dataset} drew no {fig} (the paper's figure on this dataset)"

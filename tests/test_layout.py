"""The layout DESIGN.md promises: imports point down, modules stay small, notebooks are
committed without outputs and call the package through their paper."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "reidnb"

#: Layer of each top-level part of the package; a module may import its own layer or
#: lower ones only (core <- data, models, losses, evaluation <- viz <- papers).
LAYERS = {"core": 0, "data": 1, "models": 1, "losses": 1, "evaluation": 1, "viz": 2,
          "papers": 3, "__main__": 4, "__init__": 0}
PAPERS = ("bcloss", "maskreid", "sal", "magnifiernet")


def _part(module: str) -> str:
    """'reidnb.data.parts.cache' -> 'data'; 'reidnb' -> '__init__'."""
    bits = module.split(".")
    return bits[1] if len(bits) > 1 else "__init__"


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in the file, function-level ones included."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod == "reidnb":      # from reidnb import viz / from . import report
                out += [(node.lineno, f"reidnb.{a.name}") for a in node.names]
            else:
                out.append((node.lineno, mod))
    return [(ln, m) for ln, m in out if m == "reidnb" or m.startswith("reidnb.")]


def _sources():
    return sorted(p for p in PKG.rglob("*.py") if "__pycache__" not in p.parts)


def test_imports_point_down():
    bad = []
    for path in _sources():
        here = _module_name(path)
        mine = LAYERS[_part(here)]
        for line, mod in _imports(path):
            if mod == "reidnb":
                continue
            theirs = LAYERS.get(_part(mod))
            assert theirs is not None, f"{path}:{line} imports unknown part {mod}"
            if theirs > mine:
                bad.append(f"{path.relative_to(ROOT)}:{line} ({_part(here)}) imports {mod}")
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_papers_do_not_import_each_other():
    bad = []
    for paper in PAPERS:
        folder = PKG / "papers" / paper
        for path in sorted(folder.rglob("*.py")):
            for line, mod in _imports(path):
                for other in PAPERS:
                    if other != paper and mod.startswith(f"reidnb.papers.{other}"):
                        bad.append(f"{path.relative_to(ROOT)}:{line} imports {mod}")
    assert not bad, "\n".join(bad)


def test_a_paper_is_one_folder():
    for paper in PAPERS:
        folder = PKG / "papers" / paper
        for name in ("__init__.py", "config.py", "model.py", "experiments.py", "tables.py"):
            assert (folder / name).is_file(), f"missing {folder / name}"
    leftovers = [p.name for p in PKG.glob("*.py")
                 if p.stem.endswith("_recipes") or p.stem in ("bcloss", "masks", "viz",
                                                               "evaluation", "experiment")]
    assert not leftovers, f"paper or moved modules left at the top level: {leftovers}"


def test_no_module_over_600_lines():
    big = {str(p.relative_to(ROOT)): n for p in _sources()
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > 600}
    assert not big, f"modules over 600 lines (aim ~500): {big}"


def test_every_module_states_its_responsibility():
    missing = [str(p.relative_to(ROOT)) for p in _sources()
               if p.read_text(encoding="utf-8").strip() and ast.get_docstring(
                   ast.parse(p.read_text(encoding="utf-8"))) is None]
    assert not missing, f"modules without an opening docstring: {missing}"


NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_committed_without_outputs(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    dirty = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
             and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, (f"{path.name}: cells {dirty} have outputs or execution counts; clear "
                       "them before committing (Jupyter: Edit > Clear All Outputs)")


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.name[:2] in ("01", "02", "03", "04")],
                         ids=lambda p: p.name)
def test_paper_notebooks_call_their_paper_package(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    paper = {"01": "bcloss", "02": "maskreid", "03": "sal", "04": "magnifiernet"}[path.name[:2]]
    assert f"from reidnb.papers import {paper} as paper" in code
    for other in PAPERS:
        if other != paper:
            assert f"reidnb.papers.{other}" not in code and f"import {other}" not in code

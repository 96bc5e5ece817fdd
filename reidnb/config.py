"""Run configuration of a notebook: profiles (smoke / quick / paper) and a frozen record.

Every notebook opens with a papermill ``parameters`` cell of flat literals; a value of
``None`` means "take it from the profile". The next cell calls :func:`make_config`,
which merges, in this order: the common profile defaults (:data:`PROFILES`), the
notebook's own profile defaults (:data:`NOTEBOOK_PROFILES`), then every parameter the
user set explicitly (an explicit value always wins). The result is a frozen
:class:`RunConfig`, printed and saved as JSON beside the results.

Profiles (DESIGN.md "Profiles"):
- ``smoke``: CI; tiny synthetic set, a few iterations, every code path.
- ``quick``: the embedded default; ResNet-18 at 128x64, a few epochs; whole workbook
  within about 15 minutes on a 2-core CPU.
- ``paper``: the papers' own settings, meant for a GPU and the real datasets.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from .utils import atomic_write_text, resolve_device

__all__ = ["PROJECT_ROOT", "PROFILES", "NOTEBOOK_PROFILES", "RunConfig", "make_config"]

#: The repository root (this file is reidnb/config.py); default home of data/ and outputs/.
PROJECT_ROOT = Path(__file__).resolve().parents[1]

#: Defaults shared by every notebook, per profile.
PROFILES: dict[str, dict[str, Any]] = {
    "smoke": dict(dataset="synthetic", synthetic_size="smoke", backbone="resnet18",
                  pretrained=False, height=64, width=32, epochs=1, max_iters=4,
                  batch_size=16, workers=0, max_train_pids=None, eval_flip=False),
    "quick": dict(dataset="synthetic", synthetic_size="quick", backbone="resnet18",
                  pretrained="auto", height=128, width=64, epochs=6, max_iters=None,
                  batch_size=32, workers=2, max_train_pids=None, eval_flip=False),
    "paper": dict(dataset="market1501", synthetic_size="quick", backbone="resnet50",
                  pretrained=True, height=256, width=128, epochs=None, max_iters=None,
                  batch_size=64, workers=8, max_train_pids=None, eval_flip=False),
}

#: Notebook-specific defaults per profile; merged over :data:`PROFILES`.
NOTEBOOK_PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "00_data": {"smoke": {}, "quick": {}, "paper": {}},
    "01_bcloss": {"smoke": {}, "quick": {}, "paper": {}},
    "02_maskreid": {"smoke": {}, "quick": {}, "paper": {}},
    "03_sal": {"smoke": {}, "quick": {}, "paper": {}},
    "04_magnifiernet": {"smoke": {}, "quick": {}, "paper": {}},
    "05_summary": {"smoke": {}, "quick": {}, "paper": {}},
}

_COMMON_FIELDS = ("profile", "dataset", "data_root", "device", "seed", "output_dir")


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """The resolved, immutable settings of one notebook run.

    Attributes:
        notebook: notebook id, e.g. ``"01_bcloss"``.
        profile: ``"smoke"``, ``"quick"`` or ``"paper"``.
        dataset: dataset name for :func:`reidnb.data.datasets.load_dataset`.
        data_root: folder holding the dataset (``None``: ``data/`` of the project).
        device: resolved torch device string (``"cpu"``, ``"cuda"``).
        seed: global random seed.
        output_dir: folder for ``results/``, ``figures/``, checkpoints.
        options: every other setting (backbone, image size, epochs, ...), read-only.
    """

    notebook: str
    profile: str
    dataset: str
    data_root: str | None
    device: str
    seed: int
    output_dir: str
    options: Mapping[str, Any]

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails: expose options as attributes.
        options = object.__getattribute__(self, "options")
        if name in options:
            return options[name]
        raise AttributeError(f"RunConfig has no setting {name!r}; known: "
                             f"{sorted([*_COMMON_FIELDS, *options])}")

    @property
    def dataset_kind(self) -> str:
        """``"synthetic"`` for the embedded generated set, else ``"real"``."""
        return "synthetic" if self.dataset == "synthetic" else "real"

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["options"] = dict(self.options)
        return d

    def save(self, path: str | Path | None = None) -> Path:
        """Write the config as JSON (atomically) to ``path`` or
        ``output_dir/results/<notebook>.config.json``; returns the path."""
        path = Path(path) if path else Path(self.output_dir) / "results" / f"{self.notebook}.config.json"
        return atomic_write_text(path, json.dumps(self.to_dict(), indent=2, default=str))

    def __str__(self) -> str:
        lines = [f"{self.notebook} resolved configuration:"]
        for k in _COMMON_FIELDS:
            lines.append(f"  {k:16s} = {getattr(self, k)!r}")
        for k, v in self.options.items():
            lines.append(f"  {k:16s} = {v!r}")
        return "\n".join(lines)


def make_config(notebook: str, profile: str = "quick", **params: Any) -> RunConfig:
    """Merge profile defaults with explicit parameters into a :class:`RunConfig`.

    Args:
        notebook: id such as ``"01_bcloss"``; picks :data:`NOTEBOOK_PROFILES` entry.
        profile: ``"smoke"``, ``"quick"`` or ``"paper"``.
        **params: the notebook's parameters; ``None`` means "use the profile default".
            Must include or default ``dataset, data_root, device, seed, output_dir``.

    Raises:
        ValueError: unknown profile, or a CUDA device asked for without one.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {sorted(PROFILES)}")
    merged: dict[str, Any] = dict(PROFILES[profile])
    merged.update(NOTEBOOK_PROFILES.get(notebook, {}).get(profile, {}))
    merged.update({k: v for k, v in params.items() if v is not None})
    seed = int(merged.pop("seed", 0))
    device = str(resolve_device(merged.pop("device", "auto")))
    output_dir = str(Path(merged.pop("output_dir", None) or PROJECT_ROOT / "outputs").resolve())
    dataset = str(merged.pop("dataset"))
    data_root = merged.pop("data_root", None)
    return RunConfig(notebook=notebook, profile=profile, dataset=dataset,
                     data_root=None if data_root in (None, "") else str(data_root),
                     device=device, seed=seed, output_dir=output_dir,
                     options=MappingProxyType(merged))

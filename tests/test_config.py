"""RunConfig: paper defaults, profile merge order, explicit values win, type checks, deviations."""
from __future__ import annotations

import dataclasses
import json
from typing import ClassVar

import pytest

from reidnb.core.config import (COMMON_PROFILES, DataConfig, Deviation, RunConfig,
                                SummaryConfig, config_class, make_config)


@dataclasses.dataclass(frozen=True)
class ToyConfig(RunConfig):
    """A paper whose recipe is lr 0.1, dropout 0.9, 2 stages, batch 32."""

    notebook: str = "99_toy"
    batch_size: int = 32
    lr: float = 0.1
    dropout: float = 0.9
    stages: tuple = (1, 2)
    note: str | None = None

    PROFILES: ClassVar[dict] = {"smoke": dict(lr=0.5), "quick": dict(dropout=0.5, lr=0.01)}
    REASONS: ClassVar[dict] = {"dropout": "0.9 left the softmax at chance (measured)",
                               "quick:lr": "0.1 diverged from random init"}


def test_paper_profile_is_the_class_defaults():
    cfg = ToyConfig.make("paper", device="cpu", output_dir="/tmp/x")
    assert (cfg.lr, cfg.dropout, cfg.batch_size, cfg.backbone) == (0.1, 0.9, 32, "resnet50")
    assert cfg.deviations() == []
    assert cfg.profile == "paper" and cfg.dataset_kind == "real"


def test_merge_order_common_then_paper_profile_then_explicit():
    cfg = ToyConfig.make("quick", device="cpu", output_dir="/tmp/x")
    # common quick: resnet18, batch 32 (same as the toy paper), synthetic, 128x64
    assert cfg.backbone == COMMON_PROFILES["quick"]["backbone"] == "resnet18"
    assert cfg.dataset == "synthetic" and (cfg.height, cfg.width) == (128, 64)
    assert (cfg.lr, cfg.dropout) == (0.01, 0.5)                  # the paper's quick overrides
    cfg2 = ToyConfig.make("quick", device="cpu", lr=0.2, dropout=None, output_dir="/tmp/x")
    assert cfg2.lr == 0.2 and cfg2.dropout == 0.5               # explicit wins; None = default


def test_deviations_are_computed_with_their_reasons():
    cfg = ToyConfig.make("quick", device="cpu", output_dir="/tmp/x")
    dev = {d.name: d for d in cfg.deviations()}
    assert dev["dropout"] == Deviation("dropout", 0.5, 0.9, "0.9 left the softmax at chance (measured)")
    assert dev["lr"].reason == "0.1 diverged from random init"  # profile-specific reason
    assert dev["dataset"].value == "synthetic" and dev["dataset"].paper == "market1501"
    assert "seed" not in dev and "device" not in dev and "workers" not in dev
    assert str(dev["lr"]) == "lr = 0.01 (paper: 0.1): 0.1 diverged from random init"
    frame = cfg.deviations_frame()
    assert list(frame.columns) == ["setting", "this run", "paper", "reason"]
    assert len(frame) == len(dev)


def test_lists_are_tuples_and_compare_equal():
    cfg = ToyConfig.make("paper", device="cpu", stages=[1, 2], output_dir="/tmp/x")
    assert cfg.stages == (1, 2) and cfg.deviations() == []


@pytest.mark.parametrize("bad, msg", [
    (dict(seed=1.7), "seed=1.7 must be int"),
    (dict(seed="3"), "seed='3' must be int"),
    (dict(lr="fast"), "lr='fast' must be float"),
    (dict(batch_size=True), "batch_size=True must be int"),
])
def test_wrong_types_are_refused_naming_the_field(bad, msg):
    with pytest.raises(ValueError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        ToyConfig.make("paper", device="cpu", **bad)


def test_int_is_accepted_for_a_float_field():
    assert ToyConfig.make("paper", device="cpu", lr=1).lr == 1.0


def test_unknown_parameter_and_profile_are_refused():
    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['lrr'\]"):
        ToyConfig.make("paper", device="cpu", lrr=0.1)
    with pytest.raises(ValueError, match="unknown profile 'fast'"):
        ToyConfig.make("fast")


def test_frozen_and_replace():
    cfg = ToyConfig.make("paper", device="cpu", output_dir="/tmp/x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr = 1.0  # type: ignore[misc]
    assert dataclasses.replace(cfg, seed=3).seed == 3


def test_registry_and_make_config(tmp_path):
    assert config_class("99_toy") is ToyConfig
    assert config_class("00_data") is DataConfig and config_class("05_summary") is SummaryConfig
    cfg = make_config("99_toy", "smoke", device="cpu", output_dir=str(tmp_path))
    assert cfg.lr == 0.5 and cfg.max_iters == 4 and cfg.workers == 0
    with pytest.raises(KeyError, match="no config class for notebook 'nope'"):
        config_class("nope")


def test_save_writes_json_with_options(tmp_path):
    cfg = ToyConfig.make("quick", device="cpu", output_dir=str(tmp_path), seed=2)
    path = cfg.save()
    assert path == tmp_path / "results" / "99_toy.config.json"
    d = json.loads(path.read_text())
    assert d["seed"] == 2 and d["notebook"] == "99_toy" and d["options"]["lr"] == 0.01
    assert d["config_class"] == "ToyConfig"
    assert "lr" in str(cfg) and "99_toy" in str(cfg)


def test_cuda_without_gpu_is_refused():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    with pytest.raises(ValueError, match="no CUDA device"):
        ToyConfig.make("paper", device="cuda")


def test_a_notebook_without_a_config_class_gets_the_common_settings():
    cfg = make_config("my_notebook", "smoke", device="cpu", output_dir="/tmp/x")
    assert type(cfg) is RunConfig and cfg.notebook == "my_notebook" and cfg.max_iters == 4
    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['dropout'\].*package is imported"):
        make_config("my_notebook", "smoke", device="cpu", dropout=0.5)


def test_path_objects_are_accepted_for_folders(tmp_path):
    cfg = ToyConfig.make("paper", device="cpu", output_dir=tmp_path, data_root=tmp_path / "d")
    assert cfg.output_dir == str(tmp_path) and cfg.data_root == str(tmp_path / "d")


# ------------------------------------------------------------------ paper-profile dry runs
def test_pk_for_batch_keeps_k_and_halves_it_below_two_identities():
    from reidnb.core.config import pk_for_batch

    assert pk_for_batch(64, 4) == (16, 4)      # BoT 16 x 4
    assert pk_for_batch(8, 4) == (2, 4)        # a dry run's batch 8
    assert pk_for_batch(6, 4) == (2, 3)        # 6 < 2K: K = 3, P = 2
    assert pk_for_batch(4, 4) == (2, 2)
    with pytest.raises(ValueError, match="at least 2 identities"):
        pk_for_batch(3, 4)
    with pytest.raises(ValueError, match="not a multiple of K=4"):
        pk_for_batch(10, 4)


def test_dry_run_scales_each_papers_batch_scheme_and_says_why():
    from reidnb.papers import magnifiernet, maskreid, sal

    mr = maskreid.Config.make("paper", device="cpu", max_iters=2, batch_size=8)
    assert (mr.batch_size, mr.num_pos) == (8, 2)           # 10/64 of 8 = 1.25 -> at least 2
    assert maskreid.Config.make("paper", device="cpu", batch_size=32).num_pos == 5   # 10/64*32
    mn = magnifiernet.Config.make("paper", device="cpu", max_iters=2, batch_size=8)
    assert (mn.batch_size, mn.num_instances) == (8, 4)     # P x K = 2 x 4
    s = sal.Config.make("paper", device="cpu", max_iters=2, batch_size=8)
    assert (s.stage1_batch, s.stage2_p, s.stage2_k) == (8, 2, 4)
    # an explicit value of a scheme field wins over the scaling
    assert sal.Config.make("paper", device="cpu", batch_size=8, stage2_p=4).stage2_p == 4
    reasons = {d.name: d.reason for d in s.deviations()}
    assert reasons["max_iters"].startswith("dry-run cap") and reasons["batch_size"].startswith("dry-run cap")
    assert reasons["stage2_p"].startswith("follows the dry run's batch_size")
    assert mr.dry_run and len(mr.caps()) == 2 and "DRY RUN cap: max_iters = 2" in mr.caps()[0]


def test_dry_run_loads_weights_when_it_can_and_a_full_paper_run_still_demands_them():
    from reidnb.papers import bcloss

    dry = bcloss.Config.make("paper", device="cpu", max_iters=2)
    assert dry.pretrained == "auto" and dry.dry_run
    assert "random init" in {d.name: d.reason for d in dry.deviations()}["pretrained"]
    full = bcloss.Config.make("paper", device="cpu")
    assert full.pretrained is True and not full.dry_run and full.caps() == []
    assert bcloss.Config.make("paper", device="cpu", max_iters=2, pretrained=True).pretrained is True
    # the smoke profile's own caps are not a "dry run" of the paper profile
    assert not bcloss.Config.make("smoke", device="cpu").dry_run


def test_paper_plan_per_dataset_is_the_recipe_not_a_deviation():
    """004 publishes only setting 8 on DukeMTMC-reID: the paper profile there runs just it."""
    from reidnb.papers import magnifiernet, maskreid, sal

    duke = sal.Config.make("paper", device="cpu", dataset="dukemtmcreid")
    assert (duke.settings, duke.cifar_methods) == ("8", ()) and duke.deviations() == []
    every = sal.Config.make("paper", device="cpu", dataset="dukemtmcreid", settings="all")
    assert [(d.name, d.paper) for d in every.deviations()] == [("settings", "8")]
    assert sal.Config.make("paper", device="cpu").settings == "all"          # Market-1501
    assert sal.Config.make("quick", device="cpu", dataset="dukemtmcreid").settings != "8"
    mr = maskreid.Config.make("paper", device="cpu", dataset="dukemtmcreid")
    assert (mr.losses, mr.grid_versions, mr.ablation) == (("ranking",), (), ())
    mn = magnifiernet.Config.make("paper", device="cpu", dataset="cuhk03np-labeled")
    assert len(mn.table2_rows) == 6 and mn.fig4 and mn.k_hats == (2, 4, 6)
    mn = magnifiernet.Config.make("paper", device="cpu", dataset="cuhk03np-detected")
    assert mn.table2_rows == ("G+M+SAB+SFB+SD",) and not mn.fig4 and mn.deviations() == []


def test_a_dry_run_trims_sweeps_to_one_point_per_code_path_and_says_so():
    from reidnb.papers import magnifiernet, maskreid, sal

    s = sal.Config.make("paper", device="cpu", max_iters=1, batch_size=8)
    assert s.settings == "1,3(T),8"
    assert "cover every branch" in {d.name: d.reason for d in s.deviations()}["settings"]
    # the paper's own plan on Duke (setting 8) is already a single point: kept
    assert sal.Config.make("paper", device="cpu", dataset="dukemtmcreid", max_iters=1).settings == "8"
    # explicit wins; a full paper run is never trimmed
    assert sal.Config.make("paper", device="cpu", max_iters=1, settings="all").settings == "all"
    assert sal.Config.make("paper", device="cpu").settings == "all"
    mr = maskreid.Config.make("paper", device="cpu", max_iters=1)
    assert maskreid.grid_cells(mr) == [("maskreid_icme", 1.0, 0.2), ("maskreid", 1.0, 0.15)]
    mn = magnifiernet.Config.make("paper", device="cpu", dataset="cuhk03np-labeled", max_iters=1)
    assert mn.k_hats == (4,)

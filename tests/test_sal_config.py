"""Tests for reidnb.papers.sal.config: the paper's recipe as defaults, the smoke/quick
overrides with their reasons, and the resolved options equal to those of the notebook
before the layout change (values as literals)."""
from __future__ import annotations

import os

import pytest

from reidnb.core.config import make_config
from reidnb.papers import sal as paper

_CIFAR2 = ("ResNet50 (Soft)", "ResNet50 (Soft+DIL+SAC)")

EXPECTED = {
    "smoke": dict(
        dataset="synthetic", backbone="resnet18", pretrained=False, height=64, width=32,
        epochs=2, max_iters=4, batch_size=16, workers=0, max_train_pids=None,
        max_test_pids=None, eval_flip=False, synthetic_size="smoke", stage1_epochs=1,
        stage1_lr=0.01, stage1_step=0, stage1_batch=16, stage2_epochs=1, stage2_lr=0.01,
        stage2_step=0, stage2_p=4, stage2_k=4, settings="2,3,3(T),5,8", attention_images=16,
        cifar_methods=_CIFAR2, cifar_epochs=1, cifar_lr=0.01, cifar_step=0, cifar_batch=16,
        cifar_size=32, cifar_train_subset=64, cifar_test_subset=64),
    "quick": dict(
        dataset="synthetic", backbone="resnet18", pretrained="auto", height=64, width=32,
        epochs=2, max_iters=24, batch_size=32, workers=0, max_train_pids=None,
        max_test_pids=150, eval_flip=False, synthetic_size="quick", stage1_epochs=1,
        stage1_lr=0.01, stage1_step=0, stage1_batch=32, stage2_epochs=1, stage2_lr=0.001,
        stage2_step=0, stage2_p=8, stage2_k=4, settings="1,3,3(T),5,8",
        real_max_train_pids=150, synthetic_max_train_pids=150, attention_images=128,
        cifar_methods=_CIFAR2, cifar_epochs=1, cifar_lr=0.05, cifar_step=0, cifar_batch=64,
        cifar_size=32, cifar_train_subset=5000, cifar_test_subset=2000),
    "paper": dict(
        dataset="market1501", backbone="resnet50", pretrained=True, height=256, width=128,
        epochs=250, max_iters=None, batch_size=128, workers=min(8, len(os.sched_getaffinity(0))), max_train_pids=None,
        max_test_pids=None, eval_flip=False, synthetic_size="quick", stage1_epochs=150,
        stage1_lr=0.1, stage1_step=50, stage1_batch=128, stage2_epochs=100, stage2_lr=1e-4,
        stage2_step=50, stage2_p=18, stage2_k=4, settings="all", attention_images=512,
        cifar_methods=_CIFAR2 + ("ResNet101 (Soft)",), cifar_epochs=30, cifar_lr=0.01,
        cifar_step=10, cifar_batch=128, cifar_size=224, cifar_train_subset=None,
        cifar_test_subset=None),
}


@pytest.mark.parametrize("profile", ["smoke", "quick", "paper"])
def test_resolved_options_equal_the_notebooks_former_ones(profile):
    cfg = paper.Config.make(profile, device="cpu", output_dir="/tmp/o")
    d = cfg.to_dict()
    opts = {**d["options"], "dataset": d["dataset"]}
    for k, want in EXPECTED[profile].items():
        if k == "workers":                         # clamped to the usable CPUs (RunConfig)
            assert opts[k] <= want
            continue
        assert opts[k] == want, k
    assert d["notebook"] == "03_sal" and d["config_class"] == "SALConfig"


def test_defaults_are_the_paper_and_every_quick_deviation_has_a_reason():
    assert paper.Config.make("paper", device="cpu").deviations() == []
    quick = paper.Config.make("quick", device="cpu")
    devs = {d.name: d for d in quick.deviations()}
    assert devs["stage2_lr"].paper == 1e-4 and devs["stage2_lr"].value == 0.001
    assert all(d.reason for d in devs.values()), [n for n, d in devs.items() if not d.reason]
    smoke = paper.Config.make("smoke", device="cpu")
    assert all(d.reason for d in smoke.deviations())


def test_make_config_finds_the_class_and_refuses_unknown_settings():
    cfg = make_config("03_sal", "quick", device="cpu", settings="8", cifar_download=True)
    assert isinstance(cfg, paper.Config) and cfg.settings == "8" and cfg.cifar_download
    with pytest.raises(ValueError, match="unknown setting"):
        paper.Config.make("quick", device="cpu", stage3_lr=0.1)
    with pytest.raises(ValueError, match="stage1_epochs"):
        paper.Config.make("quick", device="cpu", stage1_epochs=1.5)

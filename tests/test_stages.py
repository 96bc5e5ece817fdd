"""Stage: iterations <-> epochs, caps, lr-step rounding, warm-up and milestones in iterations."""
from __future__ import annotations

import pytest

from reidnb.core.stages import Stage, batches_per_epoch, lr_factor, step_milestones


def test_from_iters_paper_001_schedule():
    # 001: 50k iterations at batch 16, lr x0.1 every 20k; Market-1501 has 12,936 train images
    # -> 808 iterations per epoch; steps wanted at 20000, 40000 -> epochs round(24.75)=25,
    # round(49.5)=50 (Python rounds half to even) -> run at 20200 and 40400.
    s = Stage.from_iters("001", 50000, 12936, 16, 0.01, step_iters=20000)
    assert s.iters_per_epoch == 808
    assert s.epochs == 62                       # ceil(50000 / 808) = 62 (61.88)
    assert s.iters == 50000 and s.iter_cap == 50000   # the 62nd epoch is cut
    assert s.milestones == (25, 50)
    assert s.milestone_iters == [20200, 40400]
    assert any("20000 -> run at 20200" in n for n in s.notes)
    assert s.images == 800000


def test_from_iters_smoke_cap_is_recorded():
    s = Stage.from_iters("stage 1", 55000, 640, 64, 0.1, max_iters=4, sampler="anchor", num_pos=10)
    assert (s.iters, s.epochs, s.iter_cap) == (4, 1, 4)
    assert s.notes == ("capped from 55000 by max_iters",)
    assert "P/N 10/54" in s.describe(640)


def test_from_epochs_with_profile_and_smoke_caps():
    # MagnifierNet quick: 1 epoch of 3000 images at P x K 32 = 93 iterations, capped to 25
    s = Stage.from_epochs("stage 1", 1, 3000, 32, 1e-3, iters=25, optimizer="adam",
                          sampler="pk", num_instances=4)
    assert (s.iters_per_epoch, s.iters, s.epochs, s.iter_cap) == (93, 25, 1, 25)
    assert s.notes == ("shortened to 25 iterations by the profile",)
    both = Stage.from_epochs("s", 10, 3000, 32, 1e-3, iters=200, max_iters=4)
    assert both.iters == 4 and len(both.notes) == 2
    whole = Stage.from_epochs("s", 3, 100, 10, 0.1, milestones=(2,), warmup_epochs=1)
    assert (whole.iters, whole.epochs, whole.iter_cap) == (30, 3, None)
    assert whole.milestone_iters == [20] and whole.warmup_iters == 10


def test_sal_step_milestones():
    assert step_milestones(150, 50) == (50, 100)
    assert step_milestones(100, 50) == (50,)
    assert step_milestones(3, 0) == ()
    with pytest.raises(ValueError):
        step_milestones(-1, 2)


def test_lr_factor_warmup_and_steps_by_hand():
    # warm-up 10 iterations from 0.01, x0.1 at iteration 20
    assert lr_factor(0, warmup_iters=10, milestones=(20,)) == pytest.approx(0.01)
    assert lr_factor(5, warmup_iters=10, milestones=(20,)) == pytest.approx(0.505)
    assert lr_factor(19, warmup_iters=10, milestones=(20,)) == pytest.approx(1.0)
    assert lr_factor(20, warmup_iters=10, milestones=(20,)) == pytest.approx(0.1)


@pytest.mark.parametrize("kw, msg", [
    (dict(optimizer="rmsprop"), "optimizer must be one of"),
    (dict(sampler="triplet"), "sampler must be one of"),
])
def test_bad_stage_fields(kw, msg):
    with pytest.raises(ValueError, match=msg):
        Stage.from_epochs("s", 1, 100, 10, 0.1, **kw)


def test_too_few_images_and_bad_lengths():
    with pytest.raises(ValueError, match="5 training images give no batch of 16"):
        batches_per_epoch(5, 16)
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        Stage.from_epochs("s", 0, 100, 10, 0.1)
    with pytest.raises(ValueError, match="iters must be >= 1"):
        Stage.from_iters("s", 0, 100, 10, 0.1)
    with pytest.raises(ValueError, match="lr must be > 0"):
        Stage.from_epochs("s", 1, 100, 10, 0.0)


def test_key_ignores_name_and_notes():
    a = Stage.from_epochs("stage 1", 2, 100, 10, 0.1)
    b = Stage.from_epochs("other name", 2, 100, 10, 0.1, notes=("x",))
    assert a.key() == b.key() and a != b


# ------------------------------------------------------------------ Caffe poly policy

def test_lr_factor_poly_by_hand():
    # Caffe poly: lr = base * (1 - iter/max_iter)^power; base 0.1, 100 iterations, power 0.5
    base = 0.1
    lr = [base * lr_factor(i, policy="poly", power=0.5, max_iters=100) for i in (0, 19, 50, 75, 99, 100)]
    assert lr[0] == pytest.approx(0.1)
    assert lr[1] == pytest.approx(0.1 * 0.9)              # (1 - 0.19)^0.5 = 0.81^0.5 = 0.9
    assert lr[2] == pytest.approx(0.1 * 0.5 ** 0.5)       # 0.070710...
    assert lr[3] == pytest.approx(0.05)                   # 0.25^0.5 = 0.5
    assert lr[4] == pytest.approx(0.01)                   # 0.01^0.5 = 0.1
    assert lr[5] == 0.0
    # poly ignores milestones; with power 1 it is linear
    assert lr_factor(30, policy="poly", power=1.0, max_iters=60, milestones=(10,)) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="max_iters"):
        lr_factor(3, policy="poly", power=0.5)
    with pytest.raises(ValueError, match="policy"):
        lr_factor(3, policy="cosine")


def test_poly_stage_and_scheduler_steps_the_optimiser():
    import torch

    from reidnb.core.stages import WarmupMultiStepLR

    s = Stage.from_iters("stage 1", 100, 640, 64, 0.1, lr_policy="poly", lr_power=0.5)
    assert "poly lr (power 0.5) to 0 at iteration 100" in s.describe()
    kw = s.scheduler_kw()
    assert (kw["policy"], kw["power"], kw["max_iters"], kw["milestones"]) == ("poly", 0.5, 100, [])
    assert s.trainer_kw(40) == {"milestones": [], "gamma": 0.1, "warmup_iters": 0,
                                "lr_policy": "poly", "lr_power": 0.5, "lr_max_iters": 40}
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=s.lr)
    sched = WarmupMultiStepLR(opt, **kw)
    for _ in range(75):
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05)
    state = sched.state_dict()
    sched2 = WarmupMultiStepLR(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1))
    sched2.load_state_dict(state)                          # poly survives a checkpoint
    assert sched2.get_lr()[0] == pytest.approx(0.05)
    old = {k: v for k, v in state.items() if k not in ("policy", "power", "max_iters")}
    sched2.load_state_dict(old)                            # a pre-poly checkpoint: step policy
    assert sched2.get_lr()[0] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="milestones"):
        Stage("s", 10, 5, 0.1, 8, milestones=(1,), lr_policy="poly")


def test_new_fields_stay_out_of_old_run_keys():
    a = Stage("s", 10, 5, 0.1, 8)
    assert set(a.key()).isdisjoint({"lr_policy", "lr_power", "flip_p", "pad"})
    b = Stage("s", 10, 5, 0.1, 8, lr_policy="poly", lr_power=0.5, pad=0, flip_p=0.5)
    assert (b.key()["lr_policy"], b.key()["lr_power"], b.key()["pad"]) == ("poly", 0.5, 0)
    assert "flip_p" not in b.key()
    assert Stage("s", 10, 5, 0.1, 8, pad=0).augmentation() == [
        "horizontal flip p=0.5", "no pad + crop"]
    assert Stage("s", 10, 5, 0.1, 8, pad=8).augmentation()[1].startswith("zero-pad 8 px")


def test_trainer_runs_the_poly_schedule():
    import torch

    from reidnb.core.engine import Trainer
    from reidnb.losses import Term, cross_entropy

    s = Stage.from_iters("stage 1", 100, 640, 64, 0.1, lr_policy="poly", lr_power=0.5)
    tr = Trainer(torch.nn.Linear(2, 2), {"ce": (1.0, Term(cross_entropy, key="logits"))},
                 device="cpu", lr=s.lr, progress=False, **s.trainer_kw())
    tr.scheduler.iteration = 75
    assert tr.scheduler.get_lr()[0] == pytest.approx(0.05)

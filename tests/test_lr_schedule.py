import math

import pytest

from bidl.optim.lr_schedule import LrSchedule
from bidl.registry import BidlError


def test_cosine_annealing_goes_from_base_to_min_lr():
    schedule = LrSchedule(
        dict(policy="CosineAnnealing", min_lr=0.01), max_epochs=10, iters_per_epoch=5
    )
    assert schedule.lr(1.0, 0, 0) == pytest.approx(1.0)
    assert schedule.lr(1.0, 5, 25) == pytest.approx(0.505)
    assert schedule.lr(1.0, 10, 50) == pytest.approx(0.01)


def test_cosine_by_iteration_moves_within_an_epoch():
    schedule = LrSchedule(dict(policy="CosineAnnealing", min_lr=0, by_epoch=False), 2, 10)
    assert schedule.lr(1.0, 0, 10) == pytest.approx(0.5 * (1 + math.cos(math.pi * 10 / 20)))


def test_step_policy_with_list_and_int():
    listed = LrSchedule(dict(policy="step", step=[2, 4], gamma=0.5), 6, 1)
    assert [listed.lr(1.0, e, e) for e in range(6)] == [1, 1, 0.5, 0.5, 0.25, 0.25]
    every = LrSchedule(dict(policy="Step", step=3), 9, 1)
    assert every.lr(1.0, 6, 6) == pytest.approx(0.01)


def test_multistep_milestones():
    schedule = LrSchedule(dict(policy="MultiStepLR", milestones=[1, 3], gamma=0.1), 5, 1)
    assert [round(schedule.lr(1.0, e, e), 6) for e in range(5)] == [1, 0.1, 0.1, 0.01, 0.01]


def test_linear_warmup_starts_at_ratio_and_reaches_regular_lr():
    schedule = LrSchedule(
        dict(policy="Fixed", warmup="linear", warmup_iters=10, warmup_ratio=0.1), 1, 100
    )
    assert schedule.lr(2.0, 0, 0) == pytest.approx(0.2)
    assert schedule.lr(2.0, 0, 5) == pytest.approx(2.0 * (1 - 0.5 * 0.9))
    assert schedule.lr(2.0, 0, 10) == pytest.approx(2.0)


def test_unknown_policy_and_keys_are_reported():
    with pytest.raises(BidlError, match="lr_config.policy 'Cosin'"):
        LrSchedule(dict(policy="Cosin"), 1, 1)
    with pytest.raises(BidlError, match=r"unknown key\(s\) \['milestones'\] for policy 'Step'"):
        LrSchedule(dict(policy="Step", step=2, milestones=[1]), 1, 1)
    with pytest.raises(BidlError, match="needs milestones"):
        LrSchedule(dict(policy="MultiStepLR"), 1, 1)

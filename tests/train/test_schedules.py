import math

import pytest
import torch

from rnnkit.config import OptimConfig
from rnnkit.train.optimizers import clip_gradients
from rnnkit.train.schedules import LearningRateSchedule


def test_warmup_then_cosine_to_the_floor():
    schedule = LearningRateSchedule(OptimConfig(schedule="cosine", warmup_steps=4, min_lr_fraction=0.1))
    assert schedule.factor(0, 0.0) == pytest.approx(0.25)
    assert schedule.factor(3, 0.0) == pytest.approx(1.0)
    assert schedule.factor(10, 0.5) == pytest.approx(0.1 + 0.9 * 0.5)
    assert schedule.factor(10, 1.0) == pytest.approx(0.1)


def test_plateau_drops_after_patience_and_round_trips():
    schedule = LearningRateSchedule(OptimConfig(schedule="plateau", plateau_patience=1, plateau_factor=0.5))
    assert [schedule.observe_validation(loss) for loss in (2.0, 1.5, 1.6, 1.7, 1.8)] == [
        False,
        False,
        False,
        True,
        False,
    ]
    assert schedule.factor(100, 0.3) == 0.5
    copy = LearningRateSchedule(schedule.optim)
    copy.load_state_dict(schedule.state_dict())
    assert copy.state_dict() == schedule.state_dict()


def test_constant_ignores_validation():
    schedule = LearningRateSchedule(OptimConfig())
    assert not any(schedule.observe_validation(loss) for loss in (1.0, 2.0, 3.0, 4.0))
    assert schedule.factor(5, 0.9) == 1.0


def gradients(*values):
    parameters = [torch.nn.Parameter(torch.zeros(len(v))) for v in values]
    for parameter, value in zip(parameters, values):
        parameter.grad = torch.tensor(value)
    return parameters


def test_clipping_by_global_norm():
    parameters = gradients([3.0, 0.0], [4.0])  # ‖g‖ = 5
    norm = clip_gradients(parameters, OptimConfig(clip="norm", clip_threshold=1.0))
    assert norm == pytest.approx(5.0)
    assert torch.allclose(parameters[0].grad, torch.tensor([0.6, 0.0]), atol=1e-6)
    assert torch.allclose(parameters[1].grad, torch.tensor([0.8]), atol=1e-6)


def test_clipping_by_value_and_none():
    parameters = gradients([3.0, -7.0, 0.5])
    clip_gradients(parameters, OptimConfig(clip="value", clip_threshold=5.0))
    assert torch.equal(parameters[0].grad, torch.tensor([3.0, -5.0, 0.5]))
    parameters = gradients([30.0])
    clip_gradients(parameters, OptimConfig(clip="none"))
    assert torch.equal(parameters[0].grad, torch.tensor([30.0]))


def test_non_finite_norm_is_reported_and_gradients_untouched():
    parameters = gradients([math.nan, 1.0])
    assert math.isnan(clip_gradients(parameters, OptimConfig()))
    assert parameters[0].grad[1] == 1.0

import random

import numpy as np
import pytest
import torch

from rnnkit.config import OptimConfig
from rnnkit.errors import UsageError
from rnnkit.rundir import LATEST, MODEL_WEIGHTS, RunDirectory
from rnnkit.train.checkpoint import (
    capture_random_state, flatten_optimizer_state, read_checkpoint, restore_random_state,
    unflatten_optimizer_state, write_checkpoint,
)
from rnnkit.train.optimizers import build_optimizer


def write(tmp_path, step, value=1.0):
    return write_checkpoint(tmp_path / "checkpoints", step, {"w": torch.full((2, 3), value)},
                            {"t": torch.arange(4)}, {"step": step})


def test_latest_points_at_the_newest_and_older_ones_are_removed(tmp_path):
    write(tmp_path, 5)
    (tmp_path / "checkpoints" / ".tmp-left-by-a-kill").mkdir()
    newest = write(tmp_path, 9, value=2.0)
    run = RunDirectory(tmp_path)
    assert run.latest_checkpoint() == newest
    assert sorted(entry.name for entry in (tmp_path / "checkpoints").iterdir()) == [LATEST, "step-00000009"]
    model, trainer, state = read_checkpoint(newest)
    assert torch.equal(model["w"], torch.full((2, 3), 2.0)) and torch.equal(trainer["t"], torch.arange(4))
    assert state["step"] == 9


def test_saving_the_same_step_twice_never_removes_the_latest_first(tmp_path):
    first = write(tmp_path, 3)
    second = write(tmp_path, 3, value=5.0)
    assert first != second and not first.exists()
    assert RunDirectory(tmp_path).latest_checkpoint() == second


def test_truncated_weights_are_an_error(tmp_path):
    directory = write(tmp_path, 1)
    weights = directory / MODEL_WEIGHTS
    weights.write_bytes(weights.read_bytes()[:-5])
    with pytest.raises(UsageError, match="truncated or corrupt"):
        read_checkpoint(directory)


def test_tied_weights_are_saved_as_two_copies(tmp_path):
    shared = torch.ones(3)
    directory = write_checkpoint(tmp_path, 0, {"a": shared, "b": shared}, {}, {})
    model, _, _ = read_checkpoint(directory)
    assert torch.equal(model["a"], model["b"])


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd", "adagrad", "rmsprop"])
def test_optimizer_state_round_trips_exactly(name):
    torch.manual_seed(0)
    parameters = [torch.nn.Parameter(torch.randn(3, 2)), torch.nn.Parameter(torch.randn(4))]
    optim = OptimConfig(optimizer=name, momentum=0.9 if name in ("sgd", "rmsprop") else 0.0)
    optimizer = build_optimizer(parameters, optim)
    for _ in range(2):
        optimizer.zero_grad()
        sum((parameter ** 2).sum() for parameter in parameters).backward()
        optimizer.step()
    tensors, record = flatten_optimizer_state(optimizer.state_dict())
    tensors = {name: tensor.clone() for name, tensor in tensors.items()}  # as a checkpoint file holds them
    copy = [torch.nn.Parameter(parameter.detach().clone()) for parameter in parameters]
    restored = build_optimizer(copy, optim)
    restored.load_state_dict(unflatten_optimizer_state(tensors, record))
    for optimizer_now in (optimizer, restored):
        targets = parameters if optimizer_now is optimizer else copy
        optimizer_now.zero_grad()
        sum((parameter ** 3).sum() for parameter in targets).backward()
        optimizer_now.step()
    for original, again in zip(parameters, copy):
        assert torch.equal(original, again)


def test_random_state_round_trips():
    tensors, record = capture_random_state()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(99), np.random.seed(99), random.seed(99)
    restore_random_state(tensors, record)
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1])
    assert random.random() == expected[2]

import json
import random
import re

import numpy as np
import pytest
import torch

from rnnkit.atomic import UMASK
from rnnkit.config import OptimConfig
from rnnkit.errors import UsageError
from rnnkit.rundir import LATEST, MODEL_WEIGHTS, TRAINER_STATE, RunDirectory
from rnnkit.train.checkpoint import (
    capture_random_state,
    flatten_optimizer_state,
    point,
    prune_checkpoints,
    read_checkpoint,
    restore_random_state,
    unflatten_optimizer_state,
    write_checkpoint,
)
from rnnkit.train.optimizers import build_optimizer

VALID_STATE = {
    "tokens": 0,
    "elapsed_seconds": 1.5,
    "lr_scale": 1.0,
    "rollbacks": 0,
    "data_position": {},
    "schedule": {"plateau_factor": 1.0, "best_loss": None, "evaluations_without_improvement": 0},
    "optimizer": {"param_groups": [], "scalars": {}},
    "random": {"numpy": {}, "python": {}},
    "config": {},
}


SHAPES = {"w": (2, 3)}  # the model's weights as `write` saves them


def write(tmp_path, step, value=1.0, model=None):
    checkpoints = tmp_path / "checkpoints"
    name = write_checkpoint(
        checkpoints,
        step,
        model or {"w": torch.full((2, 3), value)},
        {"t": torch.arange(4)},
        {"step": step, **VALID_STATE},
    )
    point(checkpoints, LATEST, name)
    return checkpoints / name


def test_latest_points_at_the_newest_and_pruning_touches_only_checkpoints(tmp_path):
    write(tmp_path, 5)
    checkpoints = tmp_path / "checkpoints"
    (checkpoints / ".tmp-left-by-a-kill").mkdir()
    (checkpoints / "my-notes").mkdir()  # not rnnkit's: never deleted
    newest = write(tmp_path, 9, value=2.0)
    assert RunDirectory(tmp_path).latest_checkpoint() == newest
    prune_checkpoints(checkpoints, {newest.name})
    assert sorted(entry.name for entry in checkpoints.iterdir()) == [LATEST, "my-notes", "step-00000009"]
    model, trainer, state = read_checkpoint(newest, SHAPES)
    assert torch.equal(model["w"], torch.full((2, 3), 2.0)) and torch.equal(trainer["t"], torch.arange(4))
    assert state["step"] == 9


def test_saving_the_same_step_twice_keeps_both(tmp_path):
    first = write(tmp_path, 3)
    second = write(tmp_path, 3, value=5.0)
    assert (first.name, second.name) == ("step-00000003", "step-00000003.2") and first.exists()
    assert RunDirectory(tmp_path).latest_checkpoint() == second
    assert RunDirectory(tmp_path).checkpoint("step-00000003") == first


def test_checkpoint_files_get_the_umask_s_permissions(tmp_path):
    directory = write(tmp_path, 1)
    assert oct((directory / MODEL_WEIGHTS).stat().st_mode & 0o777) == oct(0o666 & ~UMASK)
    assert oct(directory.stat().st_mode & 0o777) == oct(0o777 & ~UMASK)


def test_truncated_weights_are_an_error(tmp_path):
    directory = write(tmp_path, 1)
    weights = directory / MODEL_WEIGHTS
    weights.write_bytes(weights.read_bytes()[:-5])
    with pytest.raises(UsageError, match="truncated or corrupt"):
        read_checkpoint(directory, SHAPES)


def test_tied_weights_are_saved_as_two_copies(tmp_path):
    shared = torch.ones(3)
    directory = write(tmp_path, 0, model={"a": shared, "b": shared})
    model, _, _ = read_checkpoint(directory, {"a": (3,), "b": (3,)})
    assert torch.equal(model["a"], model["b"])


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("step", None, "step must be an integer >= 0, got null"),
        ("step", -1, "step must be an integer >= 0"),
        ("step", "7", "step must be an integer >= 0"),
        ("lr_scale", float("nan"), "lr_scale must be a finite number > 0, got NaN"),
        ("lr_scale", 0, "lr_scale must be a finite number > 0"),
        ("elapsed_seconds", float("inf"), "elapsed_seconds must be a finite number >= 0"),
        ("schedule", {"plateau_factor": "cosine"}, "schedule must be a table of plateau_factor"),
        ("optimizer", [], "optimizer must be a table of param_groups and scalars"),
        ("best", {"value": "low", "step": 3}, "best must be null or a table of value and step"),
        ("tokens", True, "tokens must be an integer >= 0"),
    ],
)
def test_trainer_state_is_checked_field_by_field(tmp_path, field, value, message):
    directory = write(tmp_path, 1)
    path = directory / TRAINER_STATE
    record = json.loads(path.read_text())
    record[field] = value
    path.write_text(json.dumps(record))
    with pytest.raises(UsageError, match=re.escape(message)):
        read_checkpoint(directory, SHAPES)
    del record[field]
    path.write_text(json.dumps(record))
    if field != "best":
        with pytest.raises(UsageError, match=f"the field '{field}' is missing"):
            read_checkpoint(directory, SHAPES)


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd", "adagrad", "rmsprop"])
def test_optimizer_state_round_trips_exactly(name):
    torch.manual_seed(0)
    parameters = [torch.nn.Parameter(torch.randn(3, 2)), torch.nn.Parameter(torch.randn(4))]
    optim = OptimConfig(optimizer=name, momentum=0.9 if name in ("sgd", "rmsprop") else 0.0)
    optimizer = build_optimizer(parameters, optim)
    for _ in range(2):
        optimizer.zero_grad()
        sum((parameter**2).sum() for parameter in parameters).backward()
        optimizer.step()
    tensors, record = flatten_optimizer_state(optimizer.state_dict())
    tensors = {name: tensor.clone() for name, tensor in tensors.items()}  # as a checkpoint file holds them
    copy = [torch.nn.Parameter(parameter.detach().clone()) for parameter in parameters]
    restored = build_optimizer(copy, optim)
    restored.load_state_dict(unflatten_optimizer_state(tensors, record))
    for optimizer_now in (optimizer, restored):
        targets = parameters if optimizer_now is optimizer else copy
        optimizer_now.zero_grad()
        sum((parameter**3).sum() for parameter in targets).backward()
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

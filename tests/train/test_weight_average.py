"""optim.ema_decay: an exponential moving average of the weights, evaluated in place of the raw weights."""

import io

import numpy as np
import pytest
import torch

from cli_helpers import assert_usage_error
from language_model_helpers import latest_tensors, tiny_config, write_tiny_corpus
from rnnkit.config import OptimConfig
from rnnkit.runs import start_run
from rnnkit.train.optimizers import ExponentialAverage, build_optimizer


def test_the_average_follows_its_formula_and_evaluation_sees_it():
    parameter = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    optimizer = build_optimizer([parameter], OptimConfig(optimizer="sgd", lr=0.1, ema_decay=0.5))
    assert isinstance(optimizer, ExponentialAverage)
    average = parameter.detach().clone()
    for n, target in enumerate((3.0, 5.0, -1.0, 2.0, 0.5), start=1):
        optimizer.zero_grad()
        ((parameter - target) ** 2).sum().backward()
        optimizer.step()
        decay = min(0.5, (1 + n) / (10 + n))
        average = decay * average + (1 - decay) * parameter.detach()
    raw = parameter.detach().clone()
    assert not torch.equal(raw, average)
    with optimizer.averaged():
        torch.testing.assert_close(parameter.detach(), average, rtol=1e-6, atol=1e-7)
    assert torch.equal(parameter.detach(), raw)


def test_the_state_round_trips_without_touching_the_optimisers_own():
    parameter = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    optimizer = build_optimizer([parameter], OptimConfig(optimizer="adam", ema_decay=0.9))
    for _ in range(3):
        optimizer.zero_grad()
        (parameter**2).sum().backward()
        optimizer.step()
    state = optimizer.state_dict()
    assert "weight_average" not in optimizer.optimizer.state[parameter]
    copy = torch.nn.Parameter(parameter.detach().clone())
    restored = build_optimizer([copy], OptimConfig(optimizer="adam", ema_decay=0.9))
    restored.load_state_dict(state)
    assert restored.updates == 3
    assert torch.equal(restored.average[0], optimizer.average[0])
    assert torch.equal(restored.optimizer.state[copy]["exp_avg"], optimizer.optimizer.state[parameter]["exp_avg"])


def test_a_run_saves_the_average_for_eval_and_the_raw_weights_for_resume(tmp_path):
    corpus = write_tiny_corpus(tmp_path, 300)
    config = tiny_config(corpus, "train.max_steps=12", "train.eval_every=4", "optim.ema_decay=0.8")
    start_run(config, str(tmp_path / "run"), progress_stream=io.StringIO()).run()
    tensors = latest_tensors(tmp_path / "run")
    model = {name[len("model/") :]: tensor for name, tensor in tensors.items() if name.startswith("model/")}
    raw = {name[len("trainer/raw.") :]: tensor for name, tensor in tensors.items() if name.startswith("trainer/raw.")}
    assert set(raw) == set(model)
    assert any(not np.array_equal(model[name], raw[name]) for name in model)  # model.safetensors holds the average


@pytest.mark.parametrize("value", ["1.0", "-0.1"])
def test_a_nonsense_decay_is_a_usage_error(tmp_path, capsys, value):
    corpus = write_tiny_corpus(tmp_path, 300)
    assert_usage_error(
        capsys,
        ["train", "--data", str(corpus), "--out", str(tmp_path / "run"), "--set", f"optim.ema_decay={value}"],
        "optim.ema_decay",
    )
    assert not (tmp_path / "run").exists()


def test_the_average_and_nt_asgd_exclude_each_other():
    with pytest.raises(Exception, match="nt-asgd averages the weights itself"):
        OptimConfig(optimizer="nt-asgd", ema_decay=0.99)

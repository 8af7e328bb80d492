"""Non-finite losses and gradients: skipped steps, then a rollback with a lower lr; NaN is never saved."""

import io
import math

import numpy as np
import pytest
import torch

from language_model_helpers import latest_tensors, read_metrics, tiny_config, write_tiny_corpus
from rnnkit.runs import start_run
from rnnkit.train.trainer import TrainingDiverged


def poison_gradients(model: torch.nn.Module, calls: set[int]) -> None:
    """Turn the decoder bias's gradient into NaN on the given backward passes (counted from 1)."""
    count = 0

    def hook(gradient):
        nonlocal count
        count += 1
        return gradient * math.nan if count in calls else gradient

    model.decoder.bias.register_hook(hook)


def trainer_for(tmp_path, *assignments):
    corpus = write_tiny_corpus(tmp_path)
    config = tiny_config(corpus, "optim.lr=0.01", "train.max_bad_steps=3", "train.log_every=1", *assignments)
    return start_run(config, str(tmp_path / "run"), progress_stream=io.StringIO())


def test_a_nan_gradient_skips_the_step(tmp_path):
    trainer = trainer_for(tmp_path, "train.max_steps=6")
    poison_gradients(trainer.model, {3})
    assert trainer.run() == "max_steps"
    events = read_metrics(tmp_path / "run")
    skips = [r for r in events if r["event"] == "skip"]
    assert [(r["step"], r["reason"], r["consecutive"]) for r in skips] == [(3, "non-finite gradient", 1)]
    assert not [r for r in events if r["event"] == "rollback"]
    assert all(
        np.isfinite(value).all() for value in latest_tensors(tmp_path / "run").values() if value.dtype.kind == "f"
    )


def test_consecutive_bad_steps_roll_back_and_lower_the_lr(tmp_path):
    trainer = trainer_for(tmp_path, "train.max_steps=8", "train.checkpoint_every=1e-9")  # a checkpoint after every step
    poison_gradients(trainer.model, {4, 5, 6})
    assert trainer.run() == "max_steps"
    events = read_metrics(tmp_path / "run")
    assert [r["consecutive"] for r in events if r["event"] == "skip"] == [1, 2, 3]
    rollbacks = [r for r in events if r["event"] == "rollback"]
    assert len(rollbacks) == 1
    assert rollbacks[0]["to_step"] == 5 and rollbacks[0]["lr_scale"] == 0.5  # the checkpoint after skipped step 5
    lrs = [r["lr"] for r in events if r["event"] == "train"]
    assert lrs[0] == pytest.approx(0.01) and lrs[-1] == pytest.approx(0.005)
    assert trainer.step == 8 and trainer.lr_scale == 0.5
    assert all(
        np.isfinite(value).all() for value in latest_tensors(tmp_path / "run").values() if value.dtype.kind == "f"
    )


def test_a_nan_loss_is_skipped_with_its_reason(tmp_path):
    trainer = trainer_for(tmp_path, "train.max_steps=4")
    original = trainer.training.loss
    calls = []

    def loss(batch, carry):
        value, count, carry = original(batch, carry)
        calls.append(1)
        return (value * math.inf if len(calls) == 2 else value), count, carry

    trainer.training.loss = loss
    trainer.run()
    skips = [r for r in read_metrics(tmp_path / "run") if r["event"] == "skip"]
    assert [(r["step"], r["reason"], r["loss"]) for r in skips] == [(2, "non-finite loss", None)]


def test_nan_weights_are_never_saved(tmp_path):
    trainer = trainer_for(tmp_path, "train.max_steps=3")
    trainer.run()
    saved = latest_tensors(tmp_path / "run")
    with torch.no_grad():
        trainer.model.decoder.weight[0, 0] = math.nan
    trainer.metrics = None
    trainer.save_checkpoint()  # refuses, and rolls back to the saved weights instead
    assert torch.isfinite(trainer.model.decoder.weight).all()
    for name, value in latest_tensors(tmp_path / "run").items():
        assert np.array_equal(value, saved[name]), name


def test_endless_divergence_stops_training(tmp_path):
    trainer = trainer_for(tmp_path, "train.max_steps=50", "train.max_rollbacks=2")
    poison_gradients(trainer.model, set(range(1, 100)))
    with pytest.raises(TrainingDiverged, match="after 2 rollbacks"):
        trainer.run()
    assert [r["lr_scale"] for r in read_metrics(tmp_path / "run") if r["event"] == "rollback"] == [0.5, 0.25]

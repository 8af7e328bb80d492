"""An interrupted and resumed run ends bit-identical to an uninterrupted one (on CPU)."""

import io
import random

import numpy as np
import pytest
import torch

from helpers import stop_at
from language_model_helpers import (
    assert_identical_tensors,
    latest_tensors,
    read_metrics,
    tiny_config,
    write_tiny_corpus,
)
from rnnkit.runs import resume_run, start_run

STEPS = 14

CONFIGS = {
    # dropout draws from torch's generator, the cosine reads the step limit, periodic evaluation and samples
    # run in between: all of it must come back exactly.
    "lstm-adam-cosine-dropout": [
        "model.num_layers=2",
        "model.dropout=0.3",
        "model.embedding_dropout=0.1",
        "optim.schedule=cosine",
        "optim.warmup_steps=3",
        f"train.max_steps={STEPS}",
        "train.eval_every=4",
        "sample.every=6",
        "sample.length=20",
    ],
    "gru-sgd-plateau": [
        "model.cell=gru",
        "optim.optimizer=sgd",
        "optim.momentum=0.9",
        "optim.lr=0.5",
        "optim.schedule=plateau",
        "optim.plateau_patience=0",
        "train.eval_every=3",
    ],
    "rnn-rmsprop-value-clip": [
        "model.cell=rnn",
        "optim.optimizer=rmsprop",
        "optim.clip=value",
        "optim.clip_threshold=0.05",
        "data.window=7",
    ],
    # the average of the weights is trainer state too, and evaluation reads it
    "adamw-weight-average": [
        "optim.optimizer=adamw",
        "optim.weight_decay=0.1",
        "optim.ema_decay=0.9",
        "model.dropout=0.2",
        "train.eval_every=3",
    ],
}


def scramble_random_generators() -> None:
    """A new process starts from other generator states: the checkpoint must restore them all."""
    torch.manual_seed(1234), np.random.seed(1234), random.seed(1234)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_interrupted_and_resumed_equals_uninterrupted(tmp_path, name):
    corpus = write_tiny_corpus(tmp_path, 300)  # so short that the run crosses an epoch boundary
    config = tiny_config(corpus, f"train.max_steps={STEPS}", *CONFIGS[name])
    start_run(config, str(tmp_path / "straight"), progress_stream=io.StringIO()).run()

    first = start_run(config, str(tmp_path / "interrupted"), progress_stream=io.StringIO())
    stop_at(first, 5)
    assert first.run() == "interrupted"
    scramble_random_generators()
    second = resume_run(str(tmp_path / "interrupted"), {}, progress_stream=io.StringIO())
    stop_at(second, 9)
    assert second.run(resumed=True) == "interrupted"
    scramble_random_generators()
    third = resume_run(str(tmp_path / "interrupted"), {}, progress_stream=io.StringIO())
    assert third.run(resumed=True) == "max_steps"

    assert third.training.epochs_done > 1
    assert_identical_tensors(latest_tensors(tmp_path / "straight"), latest_tensors(tmp_path / "interrupted"))
    straight_evals = [r for r in read_metrics(tmp_path / "straight") if r["event"] == "eval"]
    resumed_evals = [r for r in read_metrics(tmp_path / "interrupted") if r["event"] == "eval"]
    assert [r["nll"] for r in straight_evals] == [r["nll"] for r in resumed_evals]
    if "sample.every=6" in CONFIGS[name]:
        assert (tmp_path / "straight" / "samples.txt").read_text() == (
            tmp_path / "interrupted" / "samples.txt"
        ).read_text()


def test_limits_count_the_whole_run(tmp_path):
    corpus = write_tiny_corpus(tmp_path)
    run = tmp_path / "run"
    first = start_run(tiny_config(corpus, "train.max_steps=6"), str(run), progress_stream=io.StringIO())
    assert first.run() == "max_steps" and first.step == 6
    extended = resume_run(str(run), {"train.max_steps": 10}, progress_stream=io.StringIO())
    assert extended.step == 6
    assert extended.run(resumed=True) == "max_steps" and extended.step == 10
    assert resume_run(str(run), {}, progress_stream=io.StringIO()).run(resumed=True) == "max_steps"
    assert [r["step"] for r in read_metrics(run) if r["event"] == "end"] == [6, 10, 10]


def test_resume_refuses_to_change_the_model(tmp_path):
    from rnnkit.errors import UsageError

    corpus = write_tiny_corpus(tmp_path)
    start_run(tiny_config(corpus, "train.max_steps=2"), str(tmp_path / "run"), progress_stream=io.StringIO()).run()
    with pytest.raises(UsageError, match="cannot change model.hidden_size when resuming"):
        resume_run(str(tmp_path / "run"), {"model.hidden_size": 32})


def test_no_second_checkpoint_of_the_same_state(tmp_path):
    """Ctrl-C right after a periodic checkpoint (no step between) writes nothing new."""
    corpus = write_tiny_corpus(tmp_path)
    trainer = start_run(tiny_config(corpus, "train.max_steps=3"), str(tmp_path / "run"), progress_stream=io.StringIO())
    trainer.run()
    checkpoints = tmp_path / "run" / "checkpoints"
    before = sorted(path.name for path in checkpoints.iterdir())
    trainer.save_checkpoint()
    assert sorted(path.name for path in checkpoints.iterdir()) == before == ["latest", "step-00000003"]

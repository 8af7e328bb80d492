"""The long-memory problems (rnnkit.tasks.memory): the data they make, training through the normal path,
both engines, and the experiment that trains every cell on them."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from cli_helpers import assert_usage_error, run_main
from rnnkit.runs import new_config, open_run, start_run
from rnnkit.tasks.memory.data import adding_batch, copy_batch, training_batch
from rnnkit.tasks.memory.metrics import TRIVIAL_MSE, adding_metrics

TINY = ["task=memory", "model.hidden_size=8", "data.validation_examples=40", "train.eval_every=5", "train.log_every=5"]


def test_the_adding_problem_marks_one_step_in_each_half_and_sums_them():
    batch = adding_batch(np.random.default_rng(0), 500, 20)
    values, markers = batch.inputs[..., 0], batch.inputs[..., 1]
    assert (markers.sum(axis=0) == 2).all()
    assert (markers[:10].sum(axis=0) == 1).all() and (markers[10:].sum(axis=0) == 1).all()
    np.testing.assert_allclose(batch.targets, (values * markers).sum(axis=0), rtol=1e-6)
    always_one = adding_metrics(np.ones(500), batch.targets)["mse"]
    assert abs(always_one - TRIVIAL_MSE) < 0.03  # 1/6, the variance of a sum of two uniforms


def test_selective_copying_scatters_the_symbols_and_asks_them_back_in_order():
    batch = copy_batch(np.random.default_rng(1), 50, 30, 8, 4)
    assert batch.inputs.shape == (34, 50) and batch.targets.shape == (4, 50)
    assert (batch.inputs[30:] == 9).all()  # the go symbols
    for column in range(50):
        data = batch.inputs[:30, column]
        np.testing.assert_array_equal(data[data > 0] - 1, batch.targets[:, column])


def test_training_batches_are_the_same_for_a_seed():
    config = new_config(None, TINY + ["data.problem=copy"], {})
    first, again = training_batch(config, 3), training_batch(config, 3)
    np.testing.assert_array_equal(first.inputs, again.inputs)
    assert not np.array_equal(first.inputs, training_batch(config, 4).inputs)


@pytest.mark.parametrize("problem", ["adding", "copy"])
def test_a_run_trains_evaluates_and_both_engines_agree(tmp_path, problem):
    from rnnkit.tasks.memory.data import validation_set
    from rnnkit.tasks.memory.numpy import model_function as numpy_answers
    from rnnkit.tasks.memory.torch import model_function as torch_answers

    config = new_config(None, TINY + [f"data.problem={problem}", "data.length=12", "train.max_steps=30"], {})
    trainer = start_run(config, str(tmp_path / "run"), io.StringIO())
    assert trainer.run() == "max_steps"
    run = open_run(tmp_path / "run")
    metrics = run.task.evaluate(run, run.directory.checkpoint(), None)
    assert 0 <= metrics["error"] and metrics["examples"] == 40
    validation = validation_set(run.config.data)
    checkpoint = run.directory.checkpoint()
    ours, theirs = torch_answers(run, checkpoint)(validation), numpy_answers(run, checkpoint)(validation)
    if problem == "adding":
        np.testing.assert_allclose(ours, theirs, atol=1e-5)
    else:
        assert (ours == theirs).mean() > 0.99  # argmax of near-equal scores may differ in a tie


def test_bad_settings_are_one_line(tmp_path, capsys):
    base = ["train", "--set", "task=memory", "--out", str(tmp_path / "run"), "--max-steps", "1"]
    assert_usage_error(capsys, [*base, "--data", "sorting"], "data.problem", "adding, copy")
    assert_usage_error(capsys, [*base, "--set", "data.length=1"], "data.length")
    assert_usage_error(capsys, [*base, "--set", "data.copies=50", "--set", "data.length=10"], "data.copies")
    assert_usage_error(
        capsys, [*base, "--set", "data.length=100000", "--set", "data.validation_examples=100000"], "validation"
    )
    assert not (tmp_path / "run").exists()


def test_the_long_memory_experiment_quick(tmp_path, capsys):
    out = tmp_path / "out"
    assert run_main(["experiment", "long-memory", "--quick", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["experiment"] == "long-memory" and results["quick"] is True
    assert len(results["rows"]) == 2 * 2 * 5  # problems x lengths x cells
    for problem in ("adding", "copy"):  # every cell within the LSTM's budget, none far below it
        counts = {row["cell"]: row["parameters"] for row in results["rows"] if row["problem"] == problem}
        assert max(counts.values()) == counts["LSTM"] and min(counts.values()) > 0.9 * counts["LSTM"], counts
    report = (out / "report.md").read_text()
    assert "QUICK SMOKE VERSION" in report and "longest T solved" in report
    assert (out / "long-memory.png").stat().st_size > 1000
    capsys.readouterr()
    assert_usage_error(
        capsys, ["experiment", "long-memory", "--seconds", "-1", "--out", str(tmp_path / "x")], "--seconds"
    )

"""The bidirectional and depth experiments in quick form write their three outputs."""

import json

import pytest

from cli_helpers import run_main
from rnnkit.experiments.bidirectional import matched_hidden, recurrent_parameters
from rnnkit.tasks.tagger.config import ModelConfig
from tagger_helpers import tiny_files


@pytest.mark.parametrize("name, rows", [("bidirectional", 2), ("depth", 6)])
def test_quick_experiment_writes_results_report_and_plot(tmp_path, capsys, name, rows):
    train, dev = tiny_files(tmp_path)
    out = tmp_path / "out"
    assert run_main(["experiment", name, "--data", str(train), "--val", str(dev), "--quick", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert len(results["summary"]) == rows and all(0 <= run["dev_accuracy"] <= 1 for run in results["runs"])
    assert "**Agreement.**" in (out / "report.md").read_text()
    assert (out / f"{name}.png").read_bytes()[:4] == b"\x89PNG"


def test_the_one_way_layer_gets_the_two_way_layer_s_parameter_budget():
    model = ModelConfig()
    hidden = matched_hidden(model, 128)
    two_way = recurrent_parameters(model, 128, True)
    assert hidden > 128 and abs(recurrent_parameters(model, hidden, False) - two_way) < 0.01 * two_way


def test_depth_seeds_can_run_apart(tmp_path, capsys):
    """--first-seed S runs seeds S, S+1, ...: the same runs as one --seeds call, in separate processes."""
    train, dev = tiny_files(tmp_path)
    out = tmp_path / "out"
    arguments = ["experiment", "depth", "--data", str(train), "--val", str(dev), "--quick"]
    assert run_main([*arguments, "--first-seed", "3", "--out", str(out)]) == 0
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert {run["seed"] for run in runs} == {3} and all(run["run"].endswith("-seed3") for run in runs)
    assert run_main([*arguments, "--first-seed", "-1", "--out", str(tmp_path / "bad")]) == 2
    assert "--first-seed must be in [0, 2**31 - seeds], got -1" in capsys.readouterr().err

"""The seeing-inside experiments: the scalar one against its closed form, every quick version writes
results.json, report.md and its plots, and their bad inputs end in one line and exit 2."""

import io
import json
from pathlib import Path

import pytest

from cli_helpers import assert_usage_error, run_main
from rnnkit.experiments.vanishing_scalar import closed_form, state_gradients
from rnnkit.runs import start_run

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("activation", ["linear", "tanh"])
@pytest.mark.parametrize("w", [1.1, 0.9])
def test_scalar_gradients_match_the_closed_form(w, activation):
    autograd, closed = state_gradients(w, 50, activation), closed_form(w, 50, activation)
    assert autograd == pytest.approx(closed, rel=1e-9, abs=1e-300)
    if activation == "linear":
        assert autograd[0] == pytest.approx(w**50, rel=1e-12) and autograd[1] == pytest.approx(w**49, rel=1e-12)


def test_vanishing_scalar_reports_which_exponent_matches(tmp_path):
    out = tmp_path / "out"
    assert run_main(["experiment", "vanishing-scalar", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["matching_exponent"] == {"1.1": "w^50", "0.9": "w^50"}
    rows = {row["w"]: row for row in results["rows"]}
    assert rows[1.1]["from_h0"] == pytest.approx(117.39, abs=0.01) and rows[0.9]["from_h0"] == pytest.approx(
        0.005154, rel=1e-3
    )
    assert abs(rows[1.1]["tanh_from_h1"]) < 1e-3  # tanh makes even w = 1.1 vanish
    assert "| 1.1 | 117.4 |" in (out / "report.md").read_text()
    assert (out / "vanishing-scalar.png").read_bytes()[:8] == PNG


QUICK_OUTPUTS = {
    "gradient-flow": ["gradient-flow.png"],
    "clipping": ["clipping-surface.png", "clipping-char-rnn.png"],
    "sample-progression": ["sample-progression.png"],
    "lstm-vs-gru": ["lstm-vs-gru.png"],
    "interpretable-cells": ["cells-shipped.png", "cells-code.png", "cells-shipped.html", "cells-code.html"],
}


@pytest.mark.parametrize("name", QUICK_OUTPUTS)
def test_quick_version_writes_its_outputs(name, tmp_path):
    out = tmp_path / "out"
    assert run_main(["experiment", name, "--quick", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["experiment"] == name and results["quick"] is True
    assert "QUICK SMOKE VERSION" in (out / "report.md").read_text()
    for plot in QUICK_OUTPUTS[name]:
        data = (out / plot).read_bytes()
        assert data[:8] == PNG if plot.endswith(".png") else data.startswith(b"<!doctype html>")
    if name == "gradient-flow":
        for row in results["rows"]:
            for stage in ("untrained", "trained"):
                assert len(row[stage]["relative_norm"]) == 11 and row[stage]["relative_norm"][0] == 1.0
    if name == "lstm-vs-gru":
        lstm, gru, wide = results["rows"]
        assert (
            gru["parameters"] < lstm["parameters"]
            and abs(wide["parameters"] - lstm["parameters"]) < 0.1 * lstm["parameters"]
        )
    if name == "sample-progression":
        assert [row["step"] for row in results["rows"]] == [1, 2, 3, 4] and all(
            row["sample"] for row in results["rows"]
        )
    if name == "clipping":
        assert (
            results["single_unit"]["clipped"]["largest_gradient"] <= results["single_unit"]["plain"]["largest_gradient"]
        )


def test_bad_inputs(tmp_path, capsys):
    assert_usage_error(
        capsys,
        ["experiment", "gradient-flow", "--steps", "0", "--out", str(tmp_path / "a")],
        "--steps: the gradient flows over T >= 2 steps, got 0",
    )
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    assert_usage_error(capsys, ["experiment", "vanishing-scalar", "--out", str(a_file)], str(a_file))
    assert a_file.read_text() == "x"
    assert_usage_error(capsys, ["experiment", "no-such-thing"], "vanishing-scalar")  # the valid names are listed
    assert_usage_error(
        capsys, ["experiment", "interpretable-cells", "--run", str(tmp_path / "missing")], "no such run directory"
    )


def test_interpretable_cells_refuses_a_classifier_run(tmp_path, capsys):
    from classifier_helpers import tiny_config, tiny_files

    train, dev = tiny_files(tmp_path)
    run = tmp_path / "classifier"
    start_run(tiny_config(train, dev, "train.max_steps=1"), str(run), progress_stream=io.StringIO()).run()
    assert_usage_error(
        capsys,
        ["experiment", "interpretable-cells", "--run", str(run), "--out", str(tmp_path / "o")],
        "is a sentence classifier run; interpretable-cells reads a character language model",
    )
    assert not (tmp_path / "o").exists()


def test_lstm_vs_gru_trains_all_three_at_the_given_learning_rate(tmp_path, capsys):
    out = tmp_path / "out"
    assert run_main(["experiment", "lstm-vs-gru", "--quick", "--lr", "0.001", "--out", str(out)]) == 0
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert [row["lr"] for row in rows] == [0.001] * 3
    for row in rows:
        assert json.loads((Path(row["run"]) / "config.json").read_text())["optim"]["lr"] == 0.001
    assert "Adam at lr 0.001" in (out / "report.md").read_text()
    capsys.readouterr()
    for bad in ("0", "-1", "nan", "1e9"):
        assert_usage_error(
            capsys,
            ["experiment", "lstm-vs-gru", "--quick", "--lr", bad, "--out", str(tmp_path / bad)],
            "--lr must be in (0, 100]",
        )
        assert not (tmp_path / bad).exists()

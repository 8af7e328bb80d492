"""The model shipped inside the package: listed by `rnnkit models`, sampled by name on both engines
with no training, small, and documented by its card; a shipped model is read, never trained."""

import json
import math

from cli_helpers import assert_usage_error, run_main, sample_without_torch
from rnnkit.pretrained import card, resolve_run_path, shipped_models

GREEDY = ["--prime", "ROMEO:\n", "--length", "120", "--temperature", "0"]


def test_the_shakespeare_model_ships_small_with_its_card():
    directory = shipped_models()["shakespeare"]
    size = sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())
    assert size <= 5_500_000  # about 5 MB
    about = card("shakespeare")
    assert about["command"].startswith("rnnkit train") and about["training_seconds"] > 600
    assert 1.0 < about["validation_nll"] <= 1.45
    assert abs(about["validation_bpc"] - about["validation_nll"] / math.log(2)) < 1e-3
    config = json.loads((directory / "config.json").read_text())
    assert config["task"] == "language_model" and config["data"]["corpus"] == "tinyshakespeare"


def test_models_lists_it(capsys):
    assert run_main(["models"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[0]
    assert line.startswith("shakespeare\t") and f"{card('shakespeare')['validation_nll']:.3f}" in line


def test_it_samples_by_name_on_both_engines(capsys):
    assert run_main(["sample", "shakespeare", *GREEDY]) == 0
    torch_text = capsys.readouterr().out
    numpy = sample_without_torch("shakespeare", *GREEDY, "--engine", "numpy")
    assert numpy.returncode == 0, numpy.stderr
    assert numpy.stdout == torch_text
    words = torch_text.split()
    assert len(words) > 10 and sum(word.isalpha() for word in words) > len(words) / 2  # it has learned words


def test_a_directory_of_that_name_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_run_path("shakespeare") == shipped_models()["shakespeare"]
    (tmp_path / "shakespeare").mkdir()
    assert str(resolve_run_path("shakespeare")) == "shakespeare"
    assert str(resolve_run_path("no-such-model")) == "no-such-model"


def test_a_shipped_model_is_never_trained_further(capsys):
    before = {path: path.stat().st_mtime_ns for path in shipped_models()["shakespeare"].rglob("*")}
    assert_usage_error(capsys, ["train", "--resume", "shakespeare"], "names a model shipped with rnnkit")
    assert {path: path.stat().st_mtime_ns for path in shipped_models()["shakespeare"].rglob("*")} == before

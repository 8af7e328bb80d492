"""`rnnkit sample --engine numpy` works without torch and, greedy, writes what the torch engine writes."""

import pytest

from cli_helpers import run_main, sample_without_torch
from language_model_helpers import train_tiny_run, write_tiny_corpus


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("numpy-engine")
    corpus = write_tiny_corpus(directory)
    return train_tiny_run(
        directory / "run", corpus, "model.cell=gru", "model.hidden_size=32", "optim.lr=0.01", "train.max_steps=150"
    )


def test_greedy_numpy_sample_without_torch_equals_torch_sample(trained_run, capsys):
    options = ["--prime", "First Citizen:\n", "--length", "150", "--temperature", "0"]
    assert run_main(["sample", str(trained_run), *options]) == 0
    torch_text = capsys.readouterr().out
    result = sample_without_torch(str(trained_run), *options, "--engine", "numpy")
    assert result.returncode == 0, result.stderr
    assert result.stdout == torch_text
    assert len(set(torch_text[len("First Citizen:\n") :])) > 3


def test_torch_engine_fails_cleanly_without_torch(trained_run):
    result = sample_without_torch(str(trained_run), "--length", "5")
    assert result.returncode != 0 and "torch" in result.stderr  # the check above has teeth: torch is really gone

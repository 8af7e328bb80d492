"""`rnnkit sample --engine numpy` works without torch and, greedy, writes what the torch engine writes."""
import os
import subprocess
import sys

import pytest

from cli_helpers import SOURCE, run_main
from language_model_helpers import train_tiny_run, write_tiny_corpus

WITHOUT_TORCH = """
import sys
sys.modules["torch"] = None  # any `import torch` now raises ImportError
from rnnkit.cli import main
code = main(sys.argv[1:])
loaded = sorted(name for name, module in sys.modules.items() if module is not None and name.split(".")[0] == "torch")
assert not loaded, loaded
sys.exit(code)
"""


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("numpy-engine")
    corpus = write_tiny_corpus(directory)
    return train_tiny_run(directory / "run", corpus, "model.cell=gru", "model.hidden_size=32", "optim.lr=0.01",
                          "train.max_steps=150")


def sample_without_torch(*arguments: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(SOURCE)}
    return subprocess.run([sys.executable, "-c", WITHOUT_TORCH, "sample", *arguments], env=environment,
                          capture_output=True, text=True, timeout=120)


def test_greedy_numpy_sample_without_torch_equals_torch_sample(trained_run, capsys):
    options = ["--prime", "First Citizen:\n", "--length", "150", "--temperature", "0"]
    assert run_main(["sample", str(trained_run), *options]) == 0
    torch_text = capsys.readouterr().out
    result = sample_without_torch(str(trained_run), *options, "--engine", "numpy")
    assert result.returncode == 0, result.stderr
    assert result.stdout == torch_text
    assert len(set(torch_text[len("First Citizen:\n"):])) > 3


def test_torch_engine_fails_cleanly_without_torch(trained_run):
    result = sample_without_torch(str(trained_run), "--length", "5")
    assert result.returncode != 0 and "torch" in result.stderr  # the check above has teeth: torch is really gone

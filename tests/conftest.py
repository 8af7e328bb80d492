import shutil
import sys
from pathlib import Path

import pytest

# Tests import the shared helper as `from helpers import assert_close`.
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True, scope="session")
def token_cache(tmp_path_factory):
    """Token-id caches of the tests go to a temporary directory, not the user's ~/.cache (subprocesses too)."""
    import os

    os.environ["RNNKIT_CACHE"] = str(tmp_path_factory.mktemp("token-cache"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(run directory, corpus) of a tiny language model trained for 5 steps, once per test module."""
    from language_model_helpers import train_tiny_run, write_tiny_corpus

    directory = tmp_path_factory.mktemp("trained")
    corpus = write_tiny_corpus(directory)
    return train_tiny_run(directory / "run", corpus, "train.max_steps=5"), corpus


@pytest.fixture
def run_copy(trained, tmp_path):
    """A copy of the trained run that a test may damage."""
    return shutil.copytree(trained[0], tmp_path / "run")

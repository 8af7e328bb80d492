"""Data-parallel training (torchrun, DistributedDataParallel on gloo) against one process with the same
global batch and seed: after 20 steps in float64 the weights agree to 1e-6."""

import json

import pytest
from distributed_helpers import largest_difference, latest_weights, train

from language_model_helpers import write_tiny_corpus
from rnnkit.rundir import RunDirectory

CHAR_LM = [
    "--max-steps",
    "20",
    "--set",
    "model.embedding_size=8",
    "--set",
    "model.hidden_size=16",
    "--set",
    "train.batch_size=4",
    "--set",
    "data.window=8",
    "--set",
    "train.log_every=5",
    "--set",
    "train.eval_every=10",
    "--set",
    "train.eval_batch_size=2",
    "--set",
    "train.checkpoint_every=3600",
    "--set",
    "sample.every=0",
]


def records(run, event):
    lines = RunDirectory(run).metrics_path.read_text().splitlines()
    return [record for record in map(json.loads, lines) if record["event"] == event]


def test_two_ranks_train_the_char_lm_as_one_process_does(tmp_path):
    corpus = write_tiny_corpus(tmp_path)
    one = train(["--data", str(corpus), "--out", str(tmp_path / "one"), *CHAR_LM])
    assert one.returncode == 0, one.stderr
    two = train(["--data", str(corpus), "--out", str(tmp_path / "two"), *CHAR_LM], ranks=2)
    assert two.returncode == 0, two.stderr
    difference = largest_difference(latest_weights(tmp_path / "one"), latest_weights(tmp_path / "two"))
    print(f"char LM, 2 ranks against 1 process after 20 steps: largest weight difference {difference:.3g}")
    assert difference <= 1e-6
    assert [r["loss"] for r in records(tmp_path / "two", "train")] == pytest.approx(
        [r["loss"] for r in records(tmp_path / "one", "train")], rel=1e-9
    )
    assert [r["nll"] for r in records(tmp_path / "two", "eval")] == pytest.approx(
        [r["nll"] for r in records(tmp_path / "one", "eval")], rel=1e-9
    )
    assert "2 ranks" in two.stderr and two.stderr.count("rnnkit train: stopped at step 20") == 1

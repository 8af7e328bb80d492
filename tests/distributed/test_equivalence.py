"""Data-parallel training (torchrun, DistributedDataParallel on gloo) against one process with the same
global batch and seed: after 20 steps in float64 the weights agree to 1e-6."""

import json
import os
import socket
import subprocess
import sys

import pytest
from distributed_helpers import FLOAT64_TRAIN, TIMEOUT, largest_difference, latest_weights, train

from classifier_helpers import write_labelled
from language_model_helpers import write_tiny_corpus
from rnnkit.rundir import RunDirectory
from tagger_helpers import tiny_files as tagged_files
from translation_helpers import reverse_pairs


def settings(*assignments: str) -> list[str]:
    return [part for assignment in assignments for part in ("--set", assignment)]


COMMON = settings("train.log_every=5", "train.checkpoint_every=3600", "train.eval_batch_size=2", "optim.lr=0.01")
CHAR_LM = settings("model.embedding_size=8", "model.hidden_size=16", "train.batch_size=4", "data.window=8")
CHAR_LM += settings("train.eval_every=10", "sample.every=0")


def records(run, event):
    lines = RunDirectory(run).metrics_path.read_text().splitlines()
    return [record for record in map(json.loads, lines) if record["event"] == event]


def word_lm(directory):
    corpus = write_tiny_corpus(directory, 12000)
    train, validation = directory / "train.txt", directory / "valid.txt"
    lines = corpus.read_text().splitlines()
    train.write_text("\n".join(lines[:-40]) + "\n")
    validation.write_text("\n".join(lines[-40:]) + "\n")
    return ["--data", str(train), "--val", str(validation), *CHAR_LM, *settings("data.tokenizer=word")]


def classifier(directory):
    # 241 sentences in batches of 8: one batch of a single sentence per epoch, which one rank computes
    # at weight 0; dropout off, since each rank draws its own masks
    train, validation = write_labelled(directory, "train.txt", 241, 0), write_labelled(directory, "dev.txt", 30, 1)
    return ["--data", str(train), "--val", str(validation), "--max-steps", "31"] + settings(
        "task=classifier",
        "model.embedding_size=8",
        "model.hidden_size=8",
        "train.batch_size=8",
        "model.dropout=0",
        "model.adversarial=0.5",
        "train.eval_every=15",
    )


def tagger(directory):
    train, validation = tagged_files(directory)
    return ["--data", str(train), "--val", str(validation)] + settings(
        "task=tagger",
        "model.embedding_size=8",
        "model.hidden_size=8",
        "model.char_embedding_size=4",
        "model.char_hidden_size=4",
        "train.batch_size=6",
        "model.dropout=0",
        "model.crf=true",
        "train.eval_every=10",
    )


def translation(directory):
    # 150 pairs in batches of 8; each sentence's loss is a mean over its tokens: ranks share by tokens
    train, validation = directory / "train.tsv", directory / "dev.tsv"
    for path, count, seed in ((train, 150, 0), (validation, 12, 1)):
        path.write_text("".join(f"{s}\t{t}\n" for s, t in reverse_pairs(count, seed)), encoding="utf-8")
    return ["--data", str(train), "--val", str(validation)] + settings(
        "task=translation",
        "data.tokenizer=word",
        "model.attention=bahdanau",
        "model.embedding_size=8",
        "model.hidden_size=8",
        "model.dropout=0",
        "train.batch_size=8",
        "train.eval_every=10",
    )


TASKS = {
    "char LM": lambda directory: ["--data", str(write_tiny_corpus(directory)), *CHAR_LM],
    "word LM": word_lm,
    # some clusters get no target in a step: DistributedDataParallel's find_unused_parameters
    "word LM, adaptive softmax": lambda directory: (
        word_lm(directory) + settings("model.softmax=adaptive", "model.cutoffs=[40, 200]")
    ),
    "classifier": classifier,
    "tagger": tagger,
    "translation": translation,
}


@pytest.mark.parametrize("task", TASKS)
def test_two_ranks_train_as_one_process_does(task, tmp_path):
    argv = ["--max-steps", "20", *TASKS[task](tmp_path), *COMMON]
    one = train([*argv, "--out", str(tmp_path / "one")])
    assert one.returncode == 0, one.stderr
    two = train([*argv, "--out", str(tmp_path / "two")], ranks=2)
    assert two.returncode == 0, two.stderr
    difference = largest_difference(latest_weights(tmp_path / "one"), latest_weights(tmp_path / "two"))
    print(f"{task}, 2 ranks against 1 process: largest weight difference {difference:.3g}")
    assert difference <= 1e-6
    steps = records(tmp_path / "one", "end")[0]["step"]
    assert steps >= 20 and records(tmp_path / "two", "end")[0]["step"] == steps
    for event, metric in (("train", "loss"), ("eval", "loss")):
        assert [r[metric] for r in records(tmp_path / "two", event)] == pytest.approx(
            [r[metric] for r in records(tmp_path / "one", event)], rel=1e-9
        )
    assert "2 ranks" in two.stderr and two.stderr.count("rnnkit train: stopped at step") == 1


@pytest.mark.slow
def test_two_ranks_resume_bit_exact_and_one_process_takes_over(tmp_path):
    """With dropout (each rank draws its own masks), 20 steps at once and 10 + 10 resumed are bit-identical
    on 2 ranks; a run saved by 2 ranks goes on as 1 process, re-sharded, and says so."""
    corpus = write_tiny_corpus(tmp_path)
    argv = ["--data", str(corpus), *CHAR_LM, *COMMON, *settings("model.dropout=0.3", "optim.schedule=constant")]
    whole = train([*argv, "--max-steps", "20", "--out", str(tmp_path / "whole")], ranks=2)
    assert whole.returncode == 0, whole.stderr
    half = train([*argv, "--max-steps", "10", "--out", str(tmp_path / "halves")], ranks=2)
    assert half.returncode == 0, half.stderr
    rest = train(["--resume", str(tmp_path / "halves"), "--max-steps", "20"], ranks=2)
    assert rest.returncode == 0, rest.stderr and "re-sharded" not in rest.stderr
    assert largest_difference(latest_weights(tmp_path / "whole"), latest_weights(tmp_path / "halves")) == 0.0
    alone = train(["--resume", str(tmp_path / "halves"), "--max-steps", "30"])
    assert alone.returncode == 0, alone.stderr
    assert "saved by 2 rank(s) and goes on with 1: the data position was re-sharded" in alone.stderr
    assert records(tmp_path / "halves", "end")[-1]["step"] == 30


@pytest.mark.slow
def test_awd_lstm_regularisers_and_nt_asgd_train_on_two_ranks(tmp_path):
    """DropConnect, locked and embedding dropout, AR/TAR and NT-ASGD's switch to averaging, as the
    awd-lstm-ptb preset trains, on 2 ranks: each draws its own masks, and the run ends as one would."""
    argv = ["awd-lstm-ptb", "--max-steps", "24", *word_lm(tmp_path), *COMMON, "--out", str(tmp_path / "run")]
    argv += settings(
        "model.embedding_size=8", "model.hidden_sizes=[16, 16, 8]", "train.batch_size=4", "optim.nonmono=1",
        "train.eval_every=4", "data.variable_window=false", "optim.lr=30",
    )  # fmt: skip
    two = train(argv, ranks=2, float64=False)
    assert two.returncode == 0, two.stderr
    evals = records(tmp_path / "run", "eval")
    assert len(evals) == 6 and all(0 < record["nll"] < 20 for record in evals)
    assert records(tmp_path / "run", "averaging"), "NT-ASGD never switched to averaging"


@pytest.mark.slow
def test_two_machines_by_rendezvous_train_as_one_process_does(tmp_path):
    """torchrun's multi-node form (--nnodes, c10d rendezvous), played by two launchers on this machine
    with one process each, against one process."""
    with socket.socket() as probe:  # a free port for the rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = ["train", "--data", str(write_tiny_corpus(tmp_path)), "--max-steps", "20", *CHAR_LM, *COMMON]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1"]
    launcher += ["--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "rnnkit-test"]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    nodes = [  # the first machine hosts the rendezvous, the second joins it
        subprocess.Popen([*launcher, "--rdzv-conf", f"is_host={host}", FLOAT64_TRAIN, *argv, "--out",
                          str(tmp_path / "two")], env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
        for host in ("true", "false")
    ]  # fmt: skip
    outputs = [node.communicate(timeout=TIMEOUT) for node in nodes]
    assert all(node.returncode == 0 for node in nodes), outputs
    one = train([*argv[1:], "--out", str(tmp_path / "one")])
    assert one.returncode == 0, one.stderr
    assert largest_difference(latest_weights(tmp_path / "one"), latest_weights(tmp_path / "two")) <= 1e-6

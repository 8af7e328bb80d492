"""Faults under torchrun: a rank killed with kill -9, and SIGTERM to the launcher."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from distributed_helpers import torchrun

from language_model_helpers import write_tiny_corpus
from rnnkit.data.streams import TokenStreams
from rnnkit.errors import UsageError
from rnnkit.metrics_log import read_metrics
from rnnkit.rundir import RunDirectory

TINY = [
    "--set", "model.embedding_size=8", "--set", "model.hidden_size=16", "--set", "train.batch_size=4",
    "--set", "data.window=8", "--set", "train.log_every=5", "--set", "train.eval_every=0",
    "--set", "train.checkpoint_every=0.5", "--set", "optim.schedule=constant",
]  # fmt: skip
DEADLINE = 60.0  # seconds for training to get going, and for the others to stop after a fault


def start(tmp_path):
    corpus = write_tiny_corpus(tmp_path)
    run = tmp_path / "run"
    command = torchrun(2) + [
        "-m",
        "rnnkit",
        "train",
        "--data",
        str(corpus),
        "--out",
        str(run),
        "--max-steps",
        "10000000",
    ]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    launcher = subprocess.Popen(command + TINY, stderr=subprocess.PIPE, text=True, env=environment)
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:  # until it has trained and saved past its first checkpoint
        if len(read_metrics(RunDirectory(run).metrics_path, "checkpoint")) >= 2:
            return launcher, run
        time.sleep(0.2)
    launcher.kill()
    raise AssertionError(f"training did not start: {launcher.communicate()[1]}")


def ranks(launcher, run) -> tuple[int, int]:
    """(rank 0's pid, rank 1's pid): the leader's is in the run's lock."""
    leader = int((run / "lock").read_text())
    children = subprocess.run(["pgrep", "-P", str(launcher.pid)], capture_output=True, text=True).stdout.split()
    (follower,) = [int(pid) for pid in children if int(pid) != leader]
    return leader, follower


def resumes(run) -> None:
    step = read_metrics(RunDirectory(run).metrics_path, "checkpoint")[-1]["step"]
    resumed = subprocess.run(
        [sys.executable, "-m", "rnnkit", "train", "--resume", str(run), "--max-steps", str(step + 5)],
        capture_output=True, text=True, timeout=DEADLINE, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert "saved by 2 rank(s) and goes on with 1" in resumed.stderr


def test_a_killed_rank_stops_the_others_with_one_line_naming_it(tmp_path):
    launcher, run = start(tmp_path)
    _, follower = ranks(launcher, run)
    os.kill(follower, signal.SIGKILL)
    killed = time.monotonic()
    _, stderr = launcher.communicate(timeout=DEADLINE)
    assert time.monotonic() - killed < DEADLINE and launcher.returncode != 0
    lines = [line for line in stderr.splitlines() if line.startswith("rnnkit train:")]
    assert f"rank 1 (process {follower}) has ended" in stderr, stderr
    assert sum("has ended" in line for line in lines) == 1
    assert "rnnkit/" not in stderr  # no traceback through rnnkit's code (torchrun reports the failure its own way)
    resumes(run)


@pytest.mark.slow
def test_sigterm_to_the_launcher_saves_once_from_the_leader_and_exits_like_one_process(tmp_path):
    launcher, run = start(tmp_path)
    saved = len(read_metrics(RunDirectory(run).metrics_path, "checkpoint"))
    launcher.send_signal(signal.SIGTERM)
    _, stderr = launcher.communicate(timeout=DEADLINE)
    assert stderr.count("stopped by SIGTERM") == 1, stderr
    records = read_metrics(RunDirectory(run).metrics_path)
    assert records[-1]["event"] == "end" and records[-1]["reason"] == "interrupted"
    assert len([r for r in records if r["event"] == "checkpoint"]) >= saved
    resumes(run)


def test_bad_worlds_get_one_line_and_a_non_zero_exit(tmp_path):
    corpus = write_tiny_corpus(tmp_path)
    base = [str(corpus), "--max-steps", "3", *TINY]
    cases = {
        "more ranks than streams": (["--set", "train.batch_size=1"], "cannot be shared by 2 ranks"),
        "a device the machine lacks": (["--set", "train.device=cuda"], "train.device = 'cuda'"),
    }
    for name, (extra, message) in cases.items():
        out = tmp_path / name.replace(" ", "-")
        command = torchrun(2) + ["-m", "rnnkit", "train", "--data", *base, *extra, "--out", str(out)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=DEADLINE, env=os.environ)
        ours = [line for line in result.stderr.splitlines() if line.startswith("rnnkit train:")]
        assert result.returncode != 0 and len(ours) == 1 and message in ours[0], (name, result.stderr)
        assert "rnnkit/" not in result.stderr, (name, result.stderr)


def test_a_rank_takes_whole_streams_and_a_slice_of_every_batch():
    ids = np.arange(101)
    whole = TokenStreams(ids, 4, 5).next_window()
    parts = []
    for rank in range(2):
        streams = TokenStreams(ids, 4, 5)
        streams.shard(rank, 2)
        parts.append(streams.next_window().inputs)
    assert (np.concatenate(parts, axis=1) == whole.inputs).all()
    with pytest.raises(UsageError, match="use a multiple of 3"):
        TokenStreams(ids, 4, 5).shard(0, 3)

"""Training one run as one process and as two torchrun ranks, for the tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from safetensors.numpy import load_file

from rnnkit.rundir import MODEL_WEIGHTS, RunDirectory

FLOAT64_TRAIN = str(Path(__file__).with_name("float64_train.py"))
TIMEOUT = 240  # seconds a test's training may take before it counts as a hang


def torchrun(ranks: int) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}"]


def train(argv: list[str], ranks: int = 1, float64: bool = True) -> subprocess.CompletedProcess:
    """`rnnkit train ARGV` as one process (ranks 1) or under torchrun, in float64 unless told otherwise."""
    program = [FLOAT64_TRAIN] if float64 else ["-m", "rnnkit"]
    command = (torchrun(ranks) if ranks > 1 else [sys.executable]) + program + ["train", *argv]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, env=environment)


def latest_weights(run: Path) -> dict:
    return load_file(str(RunDirectory(run).latest_checkpoint() / MODEL_WEIGHTS))


def largest_difference(first: dict, second: dict) -> float:
    assert sorted(first) == sorted(second)
    return max(float(abs(first[name] - second[name]).max()) for name in first)

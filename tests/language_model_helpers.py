"""Tiny language-model runs for the tests: a few thousand characters, a model of a few thousand weights."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

from rnnkit import metrics_log
from rnnkit.config import apply_assignments
from rnnkit.data.text import read_text, resolve_corpus
from rnnkit.rundir import MODEL_WEIGHTS, TRAINER_TENSORS, RunDirectory
from rnnkit.tasks.language_model.config import LanguageModelConfig

TINY_SETTINGS = [
    "model.embedding_size=8",
    "model.hidden_size=16",
    "train.batch_size=4",
    "data.window=8",
    "train.log_every=5",
    "train.eval_every=0",
    "train.checkpoint_every=3600",
    "train.eval_batch_size=2",
    "train.threads=1",
]


def write_tiny_corpus(directory: Path, characters: int = 4000) -> Path:
    path = Path(directory) / "tiny.txt"
    path.write_text(read_text(resolve_corpus("tinyshakespeare"))[:characters], encoding="utf-8")
    return path


def tiny_config(corpus: Path, *assignments: str) -> LanguageModelConfig:
    return apply_assignments(LanguageModelConfig(), [f"data.corpus={corpus}", *TINY_SETTINGS, *assignments])


def train_tiny_run(run_path: Path, corpus: Path, *assignments: str) -> Path:
    """Train a tiny run in this process (quietly) and return its directory."""
    from rnnkit.runs import start_run

    trainer = start_run(tiny_config(corpus, *assignments), str(run_path), progress_stream=io.StringIO())
    trainer.run()
    return run_path


def read_metrics(run_path: Path) -> list[dict]:
    return metrics_log.read_metrics(RunDirectory(run_path).metrics_path)


def latest_tensors(run_path: Path) -> dict[str, np.ndarray]:
    """Every tensor of the latest checkpoint (weights, optimiser, RNG states, carried state)."""
    checkpoint = RunDirectory(run_path).latest_checkpoint()
    weights = {f"model/{name}": value for name, value in load_file(str(checkpoint / MODEL_WEIGHTS)).items()}
    trainer = {f"trainer/{name}": value for name, value in load_file(str(checkpoint / TRAINER_TENSORS)).items()}
    return {**weights, **trainer}


def assert_identical_tensors(first: dict[str, np.ndarray], second: dict[str, np.ndarray]) -> None:
    """Bit-identical: same names, shapes, dtypes and every value equal (NaN nowhere)."""
    assert sorted(first) == sorted(second), f"tensor names differ: {sorted(set(first) ^ set(second))}"
    for name in first:
        a, b = first[name], second[name]
        assert a.dtype == b.dtype and a.shape == b.shape, f"{name}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}"
        differing = np.flatnonzero(a.reshape(-1) != b.reshape(-1))
        assert differing.size == 0, (
            f"{name}: {differing.size} of {a.size} values differ, first at flat index {differing[0]}: "
            f"{a.reshape(-1)[differing[0]]!r} vs {b.reshape(-1)[differing[0]]!r}"
        )

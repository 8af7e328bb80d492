"""Tiny parallel data and runs for the translation tests: the reverse task, whose target is the source's
words (distinct ones) in reverse order, and a tiny run trained on it."""

from __future__ import annotations

import io
import random
from pathlib import Path

from rnnkit.config import apply_assignments
from rnnkit.tasks.translation.config import TranslationConfig

WORDS = "ant bee cat dog eel fox gnu hen ibis jay".split()
TINY_SETTINGS = [
    "data.source=src",
    "data.target=tgt",
    "data.tokenizer=word",
    "model.embedding_size=32",
    "model.hidden_size=32",
    "model.dropout=0.0",
    "model.label_smoothing=0.0",
    "train.batch_size=16",
    "train.log_every=20",
    "train.eval_every=0",
    "train.checkpoint_every=3600",
    "train.eval_batch_size=32",
    "train.threads=1",
    "optim.lr=0.005",
]


def reverse_pairs(count: int, seed: int, lengths: tuple[int, int] = (2, 5)) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    pairs = []
    for _ in range(count):
        words = rng.sample(WORDS, rng.randint(*lengths))  # distinct words: attention finds each by its content
        pairs.append((" ".join(words), " ".join(reversed(words))))
    return pairs


def write_prefix(directory: Path, name: str, pairs: list[tuple[str, str]]) -> Path:
    """PREFIX.src and PREFIX.tgt, line-aligned; returns the prefix."""
    prefix = Path(directory) / name
    prefix.with_name(f"{name}.src").write_text("".join(f"{source}\n" for source, _ in pairs), encoding="utf-8")
    prefix.with_name(f"{name}.tgt").write_text("".join(f"{target}\n" for _, target in pairs), encoding="utf-8")
    return prefix


def tiny_files(directory: Path, count: int = 3000) -> tuple[Path, Path]:
    return write_prefix(directory, "train", reverse_pairs(count, 0)), write_prefix(
        directory, "dev", reverse_pairs(50, 1)
    )


def tiny_config(train: Path, validation: Path, *assignments: str) -> TranslationConfig:
    return apply_assignments(
        TranslationConfig(), [f"data.train={train}", f"data.validation={validation}", *TINY_SETTINGS, *assignments]
    )


def train_tiny_translator(run: Path, train: Path, validation: Path, *assignments: str) -> Path:
    from rnnkit.runs import start_run

    start_run(tiny_config(train, validation, *assignments), str(run), progress_stream=io.StringIO()).run()
    return run

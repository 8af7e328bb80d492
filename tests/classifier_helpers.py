"""Tiny classification data and runs for the tests: sentences whose label the words decide."""

from __future__ import annotations

import io
import random
from pathlib import Path

from rnnkit.config import apply_assignments
from rnnkit.tasks.classifier.config import ClassifierConfig

POSITIVE, NEGATIVE, NEUTRAL = (
    ["good", "great", "fine", "fun"],
    ["bad", "dull", "awful", "poor"],
    ["the", "a", "film", "plot", "is", "was", "and", "very", "quite", "."],
)
TINY_SETTINGS = [
    "model.embedding_size=8",
    "model.hidden_size=8",
    "train.batch_size=8",
    "train.log_every=5",
    "train.eval_every=0",
    "train.checkpoint_every=3600",
    "train.eval_batch_size=16",
    "train.threads=1",
    "optim.lr=0.01",
]


def sentence(rng: random.Random) -> tuple[str, str]:
    label = rng.choice("01")
    words = [rng.choice(NEUTRAL) for _ in range(rng.randint(2, 9))]
    for _ in range(rng.randint(1, 2)):
        words.insert(rng.randrange(len(words) + 1), rng.choice(POSITIVE if label == "1" else NEGATIVE))
    return " ".join(words), label


def write_labelled(directory: Path, name: str, count: int, seed: int) -> Path:
    rng = random.Random(seed)
    path = Path(directory) / name
    path.write_text("".join(f"{label} {text}\n" for text, label in (sentence(rng) for _ in range(count))))
    return path


def tiny_files(directory: Path) -> tuple[Path, Path]:
    return write_labelled(directory, "train.txt", 240, 0), write_labelled(directory, "dev.txt", 60, 1)


def tiny_config(train: Path, validation: Path, *assignments: str) -> ClassifierConfig:
    return apply_assignments(
        ClassifierConfig(), [f"data.train={train}", f"data.validation={validation}", *TINY_SETTINGS, *assignments]
    )


def train_tiny_classifier(run: Path, train: Path, validation: Path, *assignments: str) -> Path:
    from rnnkit.runs import start_run

    start_run(tiny_config(train, validation, *assignments), str(run), progress_stream=io.StringIO()).run()
    return run

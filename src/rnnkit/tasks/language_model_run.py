"""Language-model runs from their configs: a new run, a resumed run, and a trained model loaded
for sampling or evaluation. The command line calls these; the trainer never sees a file name."""
from __future__ import annotations

import random
from pathlib import Path
from typing import TextIO

import numpy as np
import torch

from rnnkit.config import Config, load_config, save_config, with_values
from rnnkit.data.corpus import load_evaluation_ids, load_language_corpus
from rnnkit.data.text import PACKAGED_CORPORA, resolve_corpus
from rnnkit.data.vocabulary import Vocabulary
from rnnkit.device import resolve_device, use_threads
from rnnkit.errors import UsageError
from rnnkit.rundir import MODEL_WEIGHTS, RunDirectory, load_numpy_weights, new_run_path
from rnnkit.tasks.language_model import LanguageModel, LanguageModelTask, evaluate_language_model
from rnnkit.train.trainer import Trainer

# What a resumed run may change: how long and where it trains and how often it reports, never the
# model or the data (the checkpoint would not fit them).
RESUMABLE_KEYS = ("train.max_steps", "train.max_epochs", "train.max_time", "train.device", "train.threads", "train.log_every",
                  "train.eval_every", "train.eval_tokens", "train.sample_every", "train.checkpoint_every")


def training_minimum(config: Config) -> tuple[int, str]:
    """The fewest training tokens that fill one window of every stream, and why."""
    train = config.train
    return train.batch_size * train.window + 1, f"batch_size {train.batch_size} × window {train.window} + 1 for training"


def absolute_data_paths(config: Config) -> Config:
    """Data files as absolute paths, so the run can be resumed or evaluated from any directory."""
    values = {}
    for key in ("corpus", "validation"):
        value = getattr(config.data, key)
        if value and not (value in PACKAGED_CORPORA and not Path(value).exists()):
            values[f"data.{key}"] = str(resolve_corpus(value))
    return with_values(config, values)


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def check_new_run_directory(path: Path) -> None:
    if not path.exists():
        return
    if not path.is_dir():
        raise UsageError(f"{path}: exists and is not a directory")
    if (path / "config.json").exists():
        raise UsageError(f"{path}: already holds a run; continue it with --resume {path}, or choose another --out")
    if any(path.iterdir()):
        raise UsageError(f"{path}: exists and is not empty; choose another --out")


def new_run(config: Config, out: str | None = None, progress_stream: TextIO | None = None) -> Trainer:
    """Check the corpus, create the run directory, and return a trainer ready to run."""
    path = Path(out) if out else new_run_path()
    check_new_run_directory(path)
    config = absolute_data_paths(config)
    corpus = load_language_corpus(config.data, *training_minimum(config))  # before anything is written
    device = resolve_device(config.train.device)
    use_threads(config.train.threads)
    seed_everything(config.train.seed)
    task = LanguageModelTask(config, corpus, device)
    path.mkdir(parents=True, exist_ok=True)
    run = RunDirectory(path)
    corpus.vocabulary.save(run.vocabulary_path)
    save_config(config, run.config_path)
    return Trainer(task, config, run, progress_stream)


def resumed_run(path: str, overrides: dict[str, object], progress_stream: TextIO | None = None) -> Trainer:
    """A trainer restored from the run's latest checkpoint, optionally with new limits."""
    run = RunDirectory.existing(path)
    refused = [key for key in overrides if key not in RESUMABLE_KEYS]
    if refused:
        raise UsageError(f"cannot change {', '.join(refused)} when resuming; a resumed run may change only "
                         f"{', '.join(RESUMABLE_KEYS)}")
    config = with_values(load_config(run.config_path), overrides)
    vocabulary = Vocabulary.load(run.vocabulary_path)
    run.latest_checkpoint()  # fail before reading the corpus if there is nothing to resume
    corpus = load_language_corpus(config.data, *training_minimum(config), vocabulary=vocabulary)
    use_threads(config.train.threads)
    task = LanguageModelTask(config, corpus, resolve_device(config.train.device))
    trainer = Trainer(task, config, run, progress_stream)
    trainer.resume()
    save_config(config, run.config_path)
    return trainer


def load_trained_model(run: RunDirectory, config: Config, vocabulary_size: int) -> tuple[LanguageModel, torch.device]:
    """The model of the run's latest checkpoint, in evaluation mode on the configured device."""
    device = resolve_device(config.train.device)
    use_threads(config.train.threads)
    model = LanguageModel(vocabulary_size, config.model)
    weights = load_numpy_weights(run.latest_checkpoint() / MODEL_WEIGHTS)
    try:
        model.load_state_dict({name: torch.from_numpy(array) for name, array in weights.items()}, strict=True)
    except RuntimeError as error:
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UsageError(f"the weights do not fit the run's model config ({first_line})") from None
    return model.to(device).eval(), device


def evaluate_run(path: str, data: str | None = None) -> dict:
    """{"nll", "bpc", "perplexity", "tokens"} on a text (default: the run's validation text), batch 1."""
    run = RunDirectory.existing(path)
    config = load_config(run.config_path)
    vocabulary = Vocabulary.load(run.vocabulary_path)
    if data:
        ids = load_evaluation_ids(data, vocabulary)
    else:
        ids = load_language_corpus(config.data, 1, "evaluation", vocabulary=vocabulary).validation_ids
    model, device = load_trained_model(run, config, len(vocabulary))
    return evaluate_language_model(model, ids, device, batch_size=1)

"""The language model's data: the corpus read and checked before a run starts, the run's own files
(vocabulary.json, and a BPE vocabulary's tokenizer.json), and its validation text. No torch."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from rnnkit.data.corpus import LanguageCorpus, build_vocabulary, corpus_minimum, load_language_corpus
from rnnkit.data.text import with_absolute_paths
from rnnkit.data.tokenizers import BPE_FILE
from rnnkit.data.vocabulary import Vocabulary
from rnnkit.errors import UsageError
from rnnkit.rundir import VOCABULARY
from rnnkit.tasks.language_model.config import LanguageModelConfig


def training_minimum(config: LanguageModelConfig) -> tuple[int, str]:
    """The fewest training tokens that fill one window of every stream, and why."""
    batch, window = config.train.batch_size, config.data.window
    return batch * window + 1, f"batch_size {batch} × window {window} + 1 for training"


def prepare(config: LanguageModelConfig, run_path: Path | None) -> tuple[LanguageModelConfig, LanguageCorpus]:
    """Read and check the corpus; a new run builds its vocabulary, an existing one reads its own."""
    data = config.data
    if run_path is None:
        config = replace(
            config, data=with_absolute_paths(config.data, ("corpus", "validation"), keep_corpus_names=True)
        )
        data = config.data
        minimum = corpus_minimum(*training_minimum(config), data.validation, data.train_fraction)
        vocabulary = build_vocabulary(
            data.tokenizer,
            data.corpus,
            data.validation,
            data.min_count,
            data.max_vocabulary,
            data.bpe_vocabulary,
            minimum,
        )
    else:
        vocabulary = Vocabulary.load(run_path / VOCABULARY)
    if config.model.softmax == "adaptive" and config.model.cutoffs[-1] >= len(vocabulary):
        raise UsageError(
            f"model.cutoffs: the last cutoff ({config.model.cutoffs[-1]}) must be below the vocabulary "
            f"size ({len(vocabulary)})"
        )
    corpus = load_language_corpus(
        data.corpus, data.validation, data.train_fraction, vocabulary, *training_minimum(config)
    )
    return config, corpus


def save(corpus: LanguageCorpus, directory: Path) -> None:
    """A new run's vocabulary.json and, for BPE, its tokenizer.json (the staging directory is renamed
    into place whole)."""
    corpus.vocabulary.save(directory / VOCABULARY)
    bpe = getattr(corpus.vocabulary.tokenizer, "model", None)
    if bpe is not None:
        bpe.save(str(directory / BPE_FILE))


def load_vocabulary(run_path: Path) -> Vocabulary:
    return Vocabulary.load(run_path / VOCABULARY)


def validation_ids(config: LanguageModelConfig, vocabulary: Vocabulary) -> tuple[np.ndarray, int]:
    """The run's validation text as token ids, and how many of its tokens were read as <unk>."""
    corpus = load_language_corpus(
        config.data.corpus, config.data.validation, config.data.train_fraction, vocabulary, 1, "evaluation"
    )
    return corpus.validation_ids, corpus.out_of_vocabulary

"""The classifier's data: labelled sentences read and encoded as ids, and the run's own files
(vocabulary.json, with `<pad>` and `<unk>` first, and labels.json). No torch."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import numpy as np

from rnnkit.data.labelled import Example, check_columns, long_examples_record, read_examples, truncate_examples
from rnnkit.data.labels import load_labels, save_labels
from rnnkit.data.text import with_absolute_paths
from rnnkit.data.vocabulary import PAD, UNKNOWN, Vocabulary, check_learnable, describe_names, describe_tokens
from rnnkit.errors import UsageError
from rnnkit.rundir import VOCABULARY
from rnnkit.tasks.classifier.config import ClassifierConfig

LABELS = "labels.json"


@dataclass
class Encoded:
    """Examples as token ids and label ids, with the examples themselves (to show mistakes)."""

    examples: list[Example]
    ids: list[np.ndarray]
    labels: np.ndarray

    @cached_property  # read for every batch
    def lengths(self) -> np.ndarray:
        return np.array([len(ids) for ids in self.ids])


@dataclass
class ClassifierData:
    vocabulary: Vocabulary
    labels: list[str]
    train: Encoded | None
    validation: Encoded | None
    vectors: dict[int, np.ndarray] | None = None  # pretrained vectors of a new run, by token id
    vector_lines: int = 0
    long_examples: dict = field(default_factory=dict)  # the start record's word on sentences over data.max_length


def load_vocabulary(path: Path) -> Vocabulary:
    vocabulary = Vocabulary.load(path)
    if vocabulary.tokens[:2] != [PAD, UNKNOWN] or vocabulary.unknown_token != UNKNOWN:
        raise UsageError(f"{path}: a classifier's vocabulary starts with {PAD} and {UNKNOWN}")
    return vocabulary


def encode(examples: list[Example], vocabulary: Vocabulary, labels: list[str], source: str) -> Encoded:
    """Token ids (unknown words are <unk>) and label ids; a label outside the label set is an error."""
    index = {label: number for number, label in enumerate(labels)}
    unknown = sorted({example.label for example in examples} - set(index))
    if unknown:
        raise UsageError(
            f"{source}: labels not in the training set ({describe_names(labels)}): {describe_tokens(unknown)}"
        )
    return Encoded(
        examples,
        [vocabulary.encode(example.tokens) for example in examples],
        np.array([index[example.label] for example in examples], dtype=np.int64),
    )


def prepare(config: ClassifierConfig, run_path: Path | None) -> tuple[ClassifierConfig, ClassifierData]:
    """Read and check the labelled data; a new run builds its vocabulary and label set from the
    training examples (and reads its pretrained vectors), an existing run reads its own."""
    data = config.data
    if not data.train:
        raise UsageError("data.train: no training file; give one with --data FILE (or set data.train)")
    if run_path is None:
        config = replace(
            config,
            data=with_absolute_paths(data, ("train", "validation")),
            model=with_absolute_paths(config.model, ("embeddings_file",)),
        )
        data = config.data
    split = None if data.validation else data.train_fraction
    train, held_out = read_examples(data.train, data.format, data.phrases, data.lowercase, split)
    validation = read_examples(data.validation, data.format, False, data.lowercase)[0] if data.validation else held_out
    if not validation:
        raise UsageError(f"{data.train}: too few sentences to hold out a validation part; give one with --val FILE")
    train, long_train = truncate_examples(train, data.max_length)
    validation, long_validation = truncate_examples(validation, data.max_length)
    if run_path is None:
        counts = Counter(token for example in train for token in example.tokens)
        vocabulary = Vocabulary.from_counts(counts, "word", (PAD, UNKNOWN), data.min_count, data.max_vocabulary)
        labels = sorted({example.label for example in train})
        check_columns(
            len(train), labels, data.train, "a sentence, a tab, a label (tsv) or a label, a space, a sentence"
        )
        check_learnable(vocabulary, 2, labels, data.train, "label")
    else:
        vocabulary, labels = load_run_files(run_path)
    prepared = ClassifierData(
        vocabulary,
        labels,
        encode(train, vocabulary, labels, data.train),
        encode(validation, vocabulary, labels, data.validation or data.train),
        long_examples=long_examples_record(
            long_train + long_validation, data.max_length, "truncated to their first words"
        ),
    )
    if run_path is None and config.model.embeddings_file:
        from rnnkit.data.vectors import read_vectors

        prepared.vectors, prepared.vector_lines = read_vectors(
            config.model.embeddings_file, vocabulary, config.model.embedding_size
        )
        if not prepared.vectors:
            raise UsageError(
                f"{config.model.embeddings_file}: none of its {prepared.vector_lines:,} words is in the vocabulary "
                "(is it for another language, or do its words differ in case? see data.lowercase)"
            )
    return config, prepared


def save(data: ClassifierData, directory: Path) -> None:
    data.vocabulary.save(directory / VOCABULARY)
    save_labels(data.labels, directory / LABELS)


def load_run_files(run_path: Path) -> tuple[Vocabulary, list[str]]:
    """A run's vocabulary and label set."""
    return load_vocabulary(run_path / VOCABULARY), load_labels(run_path / LABELS)

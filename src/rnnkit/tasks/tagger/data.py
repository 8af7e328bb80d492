"""The tagger's data: tagged sentences read and encoded as word, character and tag ids, and the run's
own files (vocabulary.json of words, characters.json, tags.json). No torch."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import numpy as np

from rnnkit.data.labelled import check_columns, long_examples_record
from rnnkit.data.labels import load_labels, save_labels
from rnnkit.data.tagged import TaggedSentence, read_tagged, split_sentences
from rnnkit.data.text import with_absolute_paths
from rnnkit.data.vocabulary import PAD, UNKNOWN, Vocabulary, check_learnable
from rnnkit.errors import UsageError
from rnnkit.rundir import VOCABULARY
from rnnkit.tasks.tagger.config import TaggerConfig

CHARACTERS, TAGS = "characters.json", "tags.json"
MAX_WORD_CHARACTERS = 30  # longer words are read by their first characters (a URL is not a word to spell out)


@dataclass
class EncodedSentences:
    """Sentences as word ids, each word's character ids, and tag ids (-1: a tag not in the tag set)."""

    sentences: list[TaggedSentence]
    words: list[np.ndarray]
    characters: list[list[np.ndarray]]
    tags: list[np.ndarray]

    @cached_property  # read for every batch
    def lengths(self) -> np.ndarray:
        return np.array([len(words) for words in self.words])


@dataclass
class TaggerData:
    vocabulary: Vocabulary
    characters: Vocabulary
    tags: list[str]
    train: EncodedSentences | None
    validation: EncodedSentences | None
    long_examples: dict = field(default_factory=dict)  # the start record's word on sentences over data.max_length


def word_forms(tokens: list[str], lowercase: bool) -> list[str]:
    return [token.lower() for token in tokens] if lowercase else list(tokens)


def encode(sentences: list[TaggedSentence], data: "TaggerData", lowercase: bool) -> EncodedSentences:
    index = {tag: number for number, tag in enumerate(data.tags)}
    return EncodedSentences(
        sentences,
        [data.vocabulary.encode(word_forms(sentence.tokens, lowercase)) for sentence in sentences],
        [
            [data.characters.encode(list(token[:MAX_WORD_CHARACTERS])) for token in sentence.tokens]
            for sentence in sentences
        ],
        [np.array([index.get(tag, -1) for tag in sentence.tags], dtype=np.int64) for sentence in sentences],
    )


def load_run_files(run_path: Path) -> tuple[Vocabulary, Vocabulary, list[str]]:
    vocabulary, characters = Vocabulary.load(run_path / VOCABULARY), Vocabulary.load(run_path / CHARACTERS)
    for path, loaded in ((run_path / VOCABULARY, vocabulary), (run_path / CHARACTERS, characters)):
        if loaded.tokens[:2] != [PAD, UNKNOWN] or loaded.unknown_token != UNKNOWN:
            raise UsageError(f"{path}: a tagger's vocabulary starts with {PAD} and {UNKNOWN}")
    return vocabulary, characters, load_labels(run_path / TAGS)


def prepare(config: TaggerConfig, run_path: Path | None) -> tuple[TaggerConfig, TaggerData]:
    """Read and check the tagged data; a new run builds its word and character vocabularies and its
    tag set from the training sentences, an existing run reads its own."""
    data = config.data
    if not data.train:
        raise UsageError("data.train: no training file; give one with --data FILE (or set data.train)")
    if run_path is None:
        config = replace(config, data=with_absolute_paths(data, ("train", "validation")))
        data = config.data
    train = read_tagged(data.train, data.format, data.column)
    if data.validation:
        validation = read_tagged(data.validation, data.format, data.column)
    else:
        cut = int(len(train) * data.train_fraction)
        train, validation = train[:cut], train[cut:]
        if not train or not validation:
            raise UsageError(f"{data.train}: too few sentences to hold out a validation part; give one with --val FILE")
    train, long_train = split_sentences(train, data.max_length)
    validation, long_validation = split_sentences(validation, data.max_length)
    if run_path is None:
        words = Counter(word for sentence in train for word in word_forms(sentence.tokens, data.lowercase))
        letters = Counter(letter for sentence in train for token in sentence.tokens for letter in token)
        prepared = TaggerData(
            Vocabulary.from_counts(words, "word", (PAD, UNKNOWN), data.min_count, data.max_vocabulary),
            Vocabulary.from_counts(letters, "char", (PAD, UNKNOWN)),
            sorted({tag for sentence in train for tag in sentence.tags}),
            None,
            None,
        )
        check_learnable(prepared.vocabulary, 2, prepared.tags, data.train, "tag")
        check_columns(
            sum(len(sentence.tokens) for sentence in train), prepared.tags, data.train, "a token, a tab, a tag"
        )
    else:
        prepared = TaggerData(*load_run_files(run_path), None, None)
    prepared.train = encode(train, prepared, data.lowercase)
    prepared.validation = encode(validation, prepared, data.lowercase)
    prepared.long_examples = long_examples_record(
        long_train + long_validation, data.max_length, f"split into pieces of at most {data.max_length:,} words"
    )
    return config, prepared


def save(data: TaggerData, directory: Path) -> None:
    data.vocabulary.save(directory / VOCABULARY)
    data.characters.save(directory / CHARACTERS)
    save_labels(data.tags, directory / TAGS)

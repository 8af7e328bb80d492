"""A language-modelling corpus: the training and validation token ids and their vocabulary.

Characters: without a validation file the corpus is split, the first `train_fraction` of its tokens
for training and the rest for validation (nanoGPT's cut); the vocabulary covers both parts, so
validation has no unknown characters. Words and BPE need a validation file; their vocabulary comes
from the training file only (words: `min_count`, `max_vocabulary`, and `<unk>` for the rest; a corpus
that holds `<unk>` itself, as PTB does, keeps it as the same token). A resumed or evaluated run
passes its saved vocabulary instead. Token ids come from the cache (rnnkit.data.token_cache) as
memory maps.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from rnnkit.data.streams import minimum_tokens_for_split
from rnnkit.data.text import iter_lines, resolve_corpus
from rnnkit.data.token_cache import token_ids
from rnnkit.data.tokenizers import make_tokenizer, train_bpe
from rnnkit.data.vocabulary import UNKNOWN, Vocabulary
from rnnkit.errors import UsageError

MINIMUM_VALIDATION_TOKENS = 2  # one prediction needs a token and its successor


@dataclass(frozen=True)
class LanguageCorpus:
    vocabulary: Vocabulary
    train_ids: np.ndarray
    validation_ids: np.ndarray
    out_of_vocabulary: int = 0  # validation tokens read as <unk>


def check_length(path, ids: np.ndarray, unit: str, minimum: int, why: str) -> None:
    if len(ids) == 0:
        raise UsageError(f"{path}: the file is empty; at least {minimum} {unit} are needed ({why})")
    if len(ids) < minimum:
        raise UsageError(f"{path}: too short, {len(ids)} {unit}; at least {minimum} are needed ({why})")


def corpus_minimum(minimum_train_tokens: int, why: str, validation: str, train_fraction: float) -> tuple[int, str]:
    """The fewest tokens the corpus file needs, and why: the training minimum, or with no validation
    file, enough for the split to leave that much training and a little validation."""
    if validation:
        return minimum_train_tokens, why
    minimum = minimum_tokens_for_split(minimum_train_tokens, train_fraction, MINIMUM_VALIDATION_TOKENS)
    return minimum, f"{why}, after a {train_fraction:g} training split"


def build_vocabulary(
    tokenizer: str,
    train: str,
    validation: str,
    min_count: int = 1,
    max_size: int = 0,
    bpe_size: int = 0,
    minimum: tuple[int, str] = (2, "a prediction needs two tokens"),
) -> Vocabulary:
    """A new run's vocabulary (see the module docstring); `minimum` is the training text's least
    length and why, for the message about an empty file."""
    empty = f"{resolve_corpus(train)}: the file is empty; at least {minimum[0]} {{unit}} are needed ({minimum[1]})"
    if tokenizer == "char":
        characters: set[str] = set()
        for path in filter(None, (train, validation)):
            for line in iter_lines(resolve_corpus(path)):
                characters.update(line)
        if not characters:
            raise UsageError(empty.format(unit="characters"))
        return Vocabulary(sorted(characters), "char")
    if not validation:
        raise UsageError(
            f"data.validation: a {tokenizer} model needs a validation file (--val FILE); only character "
            "models split their corpus"
        )
    if tokenizer == "bpe":
        return Vocabulary((model := train_bpe(iter_lines(resolve_corpus(train)), bpe_size, train)).tokens(), model)
    counts: Counter = Counter()
    words = make_tokenizer("word")
    for line in iter_lines(resolve_corpus(train)):
        counts.update(words.split(line))
    if not counts:
        raise UsageError(empty.format(unit="words"))
    vocabulary = Vocabulary.from_counts(counts, "word", (UNKNOWN,), min_count, max_size)
    if len(vocabulary) == 1:
        raise UsageError(
            f"{resolve_corpus(train)}: the vocabulary would hold only {UNKNOWN} (data.min_count "
            f"{min_count}); lower data.min_count"
        )
    return vocabulary


def load_language_corpus(
    corpus: str, validation: str, train_fraction: float, vocabulary: Vocabulary, minimum_train_tokens: int, why: str
) -> LanguageCorpus:
    """The token ids of a corpus and its validation part (a separate file, or the corpus's end)."""
    unit = vocabulary.tokenizer.unit
    ids, _ = token_ids(resolve_corpus(corpus), vocabulary)
    if validation:
        check_length(resolve_corpus(corpus), ids, unit, minimum_train_tokens, why)
        validation_ids, record = token_ids(resolve_corpus(validation), vocabulary)
        check_length(
            resolve_corpus(validation),
            validation_ids,
            unit,
            MINIMUM_VALIDATION_TOKENS,
            "a validation text predicts at least one token",
        )
        return LanguageCorpus(vocabulary, ids, validation_ids, record["out_of_vocabulary"])
    check_length(resolve_corpus(corpus), ids, unit, *corpus_minimum(minimum_train_tokens, why, "", train_fraction))
    cut = int(len(ids) * train_fraction)
    return LanguageCorpus(vocabulary, ids[:cut], ids[cut:])


def load_evaluation_ids(path: str, vocabulary: Vocabulary) -> tuple[np.ndarray, int]:
    """(token ids of a text to evaluate on, how many of its tokens were read as <unk>); without an
    unknown token, every token must be in the run's vocabulary."""
    ids, record = token_ids(resolve_corpus(path), vocabulary)
    check_length(
        resolve_corpus(path),
        ids,
        vocabulary.tokenizer.unit,
        MINIMUM_VALIDATION_TOKENS,
        "evaluation predicts at least one token",
    )
    return ids, record["out_of_vocabulary"]

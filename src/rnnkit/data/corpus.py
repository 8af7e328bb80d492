"""A language-modelling corpus: the training and validation token ids and their vocabulary.

Without a validation file the corpus is split, first `train_fraction` for training and the rest for
validation. The vocabulary covers both parts (so validation has no unknown tokens); a resumed or
evaluated run passes its saved vocabulary instead.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnkit.data.streams import minimum_tokens_for_split, split_train_validation
from rnnkit.data.text import read_text, resolve_corpus
from rnnkit.data.vocabulary import Vocabulary, make_tokenizer
from rnnkit.errors import UsageError

MINIMUM_VALIDATION_TOKENS = 2  # one prediction needs a token and its successor


@dataclass(frozen=True)
class LanguageCorpus:
    vocabulary: Vocabulary
    train_ids: np.ndarray
    validation_ids: np.ndarray


def read_tokens(path: str, tokenizer_name: str, minimum: int, why: str) -> list[str]:
    """The file's tokens; UsageError if there are fewer than `minimum`, saying why that many."""
    resolved = resolve_corpus(path)
    tokenizer = make_tokenizer(tokenizer_name)
    tokens = tokenizer.split(read_text(resolved, minimum_characters=0))
    if not tokens:
        raise UsageError(f"{resolved}: the file is empty; at least {minimum} {tokenizer.unit} are needed ({why})")
    if len(tokens) < minimum:
        raise UsageError(f"{resolved}: too short, {len(tokens)} {tokenizer.unit}; at least {minimum} are needed ({why})")
    return tokens


def load_language_corpus(corpus: str, validation: str, train_fraction: float, tokenizer: str,
                         minimum_train_tokens: int, why: str, vocabulary: Vocabulary | None = None) -> LanguageCorpus:
    """Read, tokenize and split a corpus (see the module docstring); `validation` is a separate
    validation file, or empty to split the corpus at `train_fraction`."""
    if validation:
        train_tokens = read_tokens(corpus, tokenizer, minimum_train_tokens, why)
        validation_tokens = read_tokens(
            validation, tokenizer, MINIMUM_VALIDATION_TOKENS, "a validation text predicts at least one token"
        )
    else:
        minimum = minimum_tokens_for_split(minimum_train_tokens, train_fraction, MINIMUM_VALIDATION_TOKENS)
        tokens = read_tokens(corpus, tokenizer, minimum, f"{why}, after a {train_fraction:g} training split")
        train_tokens, validation_tokens = split_train_validation(tokens, train_fraction)
    if vocabulary is None:
        vocabulary = Vocabulary(sorted(set(train_tokens) | set(validation_tokens)), tokenizer)
    train_ids = encode_from(corpus, vocabulary, train_tokens)
    validation_ids = encode_from(validation or corpus, vocabulary, validation_tokens)
    return LanguageCorpus(vocabulary, train_ids, validation_ids)


def encode_from(path: str, vocabulary: Vocabulary, tokens: list[str]) -> np.ndarray:
    try:
        return vocabulary.encode(tokens)
    except UsageError as error:
        raise UsageError(f"{path}: {error}") from None


def load_evaluation_ids(path: str, vocabulary: Vocabulary) -> np.ndarray:
    """Token ids of a text to evaluate on; every token must be in the run's vocabulary."""
    tokens = read_tokens(path, vocabulary.tokenizer.name, MINIMUM_VALIDATION_TOKENS, "evaluation predicts at least one token")
    return encode_from(path, vocabulary, tokens)

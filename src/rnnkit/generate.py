"""Sampling text from a trained language model: temperature, top-k, top-p, priming, a seed.

An engine is anything with `reset()` and `feed(ids) -> logits of the next token` (V,): the torch
model (rnnkit.tasks.language_model.TorchEngine) or the NumPy one
(rnnkit.tasks.language_model_numpy.NumpyEngine). The choice of each token happens here, in NumPy
float64 with a seeded generator, so both engines choose alike and the same seed gives the same
text. This module imports torch only when the torch engine is asked for.
"""
from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import replace
from typing import TextIO

import numpy as np

from rnnkit.config import Config, SampleConfig, load_config
from rnnkit.data.vocabulary import Vocabulary, describe_tokens
from rnnkit.errors import UsageError
from rnnkit.rundir import MODEL_WEIGHTS, RunDirectory, load_numpy_weights

ENGINES = ("torch", "numpy")
START_TOKEN = "\n"  # with no prime, generation starts as if after a line break


def next_token_probabilities(logits: np.ndarray, temperature: float, top_k: int, top_p: float) -> np.ndarray:
    """softmax(logits / temperature) restricted to the top-k tokens and the top-p nucleus, renormalised."""
    scaled = logits.astype(np.float64) / temperature  # (V,)
    probabilities = np.exp(scaled - scaled.max())
    probabilities /= probabilities.sum()
    order = np.argsort(-probabilities, kind="stable")  # most likely first
    keep = len(order) if top_k == 0 else min(top_k, len(order))
    if top_p < 1:
        # The smallest prefix whose mass reaches top_p; the most likely token always stays.
        reached = np.cumsum(probabilities[order]) >= top_p
        keep = min(keep, int(np.argmax(reached)) + 1 if reached.any() else len(order))
    kept = np.zeros_like(probabilities)
    kept[order[:keep]] = probabilities[order[:keep]]
    return kept / kept.sum()


def choose_token(logits: np.ndarray, settings: SampleConfig, rng: np.random.Generator) -> int:
    if settings.temperature == 0:
        return int(np.argmax(logits))
    probabilities = next_token_probabilities(logits, settings.temperature, settings.top_k, settings.top_p)
    cumulative = np.cumsum(probabilities)
    return int(min(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"), len(cumulative) - 1))


def prime_ids(vocabulary: Vocabulary, prime: str, skip_unknown: bool) -> list[int]:
    """The prime's token ids; its unknown tokens are an error naming them, or dropped if asked."""
    tokens = vocabulary.tokenizer.split(prime)
    unknown = vocabulary.unknown(tokens)
    if unknown and not skip_unknown:
        raise UsageError(
            f"the prime has {vocabulary.tokenizer.unit} not in the vocabulary: {describe_tokens(unknown)} "
            "(use --skip-unknown to drop them)"
        )
    return [int(index) for index in vocabulary.encode([token for token in tokens if token in vocabulary])]


def generate_tokens(engine, vocabulary: Vocabulary, context: list[int], settings: SampleConfig, rng) -> Iterator[str]:
    """Yield `settings.length` tokens, one at a time, continuing the context ids."""
    if not context:
        context = [vocabulary.ids[START_TOKEN] if START_TOKEN in vocabulary else 0]
    engine.reset()
    logits = engine.feed(context)
    for _ in range(settings.length):
        token = choose_token(logits, settings, rng)
        yield vocabulary.tokens[token]
        logits = engine.feed([token])


def generate_text(engine, vocabulary: Vocabulary, prime: str, settings: SampleConfig, seed: int | None) -> str:
    """The prime followed by its continuation, as one string (for samples written during training)."""
    context = prime_ids(vocabulary, prime, skip_unknown=True)
    tokens = generate_tokens(engine, vocabulary, context, settings, np.random.default_rng(seed))
    return prime + vocabulary.tokenizer.join(tokens)


def load_engine(run: RunDirectory, config: Config, vocabulary: Vocabulary, engine: str):
    """The run's latest weights as a generation engine."""
    if engine not in ENGINES:
        raise UsageError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    if engine == "numpy":
        from rnnkit.tasks.language_model_numpy import NumpyEngine

        return NumpyEngine(config.model, load_numpy_weights(run.latest_checkpoint() / MODEL_WEIGHTS))
    from rnnkit.tasks.language_model import TorchEngine
    from rnnkit.tasks.language_model_run import load_trained_model

    return TorchEngine(*load_trained_model(run, config, len(vocabulary)))


def sample_run(run_path: str, overrides: dict[str, object], *, seed: int | None = None, num_samples: int = 1,
               skip_unknown: bool = False, engine: str = "torch", out: TextIO | None = None) -> None:
    """Write samples (the prime, then its continuation) to `out` as they are generated.

    `overrides` replaces keys of the run's [sample] config (length, temperature, top_k, top_p, prime).
    """
    if num_samples < 1:
        raise UsageError(f"num_samples must be 1 or more, got {num_samples}")
    out = out or sys.stdout
    run = RunDirectory.existing(run_path)
    config = load_config(run.config_path)
    settings = replace(config.sample, **overrides)
    vocabulary = Vocabulary.load(run.vocabulary_path)
    context = prime_ids(vocabulary, settings.prime, skip_unknown)
    model = load_engine(run, config, vocabulary, engine)
    rng = np.random.default_rng(seed)
    for number in range(1, num_samples + 1):
        if num_samples > 1:
            out.write(f"--- sample {number} of {num_samples} ---\n")
        out.write(settings.prime)
        for token in generate_tokens(model, vocabulary, context, settings, rng):
            out.write(token)
            out.flush()  # stream: the reader sees each token as it is chosen
        out.write("\n")
    out.flush()

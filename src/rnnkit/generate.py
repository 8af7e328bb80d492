"""Decoding a next-token distribution: temperature, top-k, top-p, priming, a seed. Pure functions.

A model is seen through its step function, `step(ids, state) -> (logits of the next token (V,), state)`,
where `state` is whatever the model carries (None: its initial state) and nothing else is kept
between calls. The torch model and the NumPy engine both provide one. The choice of each token
happens here, in NumPy float64 with a seeded generator, so both engines choose alike and the same
seed gives the same text. This module imports neither torch nor any task.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from rnnkit.data.tokenizers import stream_text
from rnnkit.data.vocabulary import Vocabulary, describe_tokens
from rnnkit.device import check_memory
from rnnkit.errors import UsageError

FEED_WINDOW = 256  # a long prime is fed this many tokens at a time, the state carried: memory stays bounded

StepFunction = Callable[[list[int], object], tuple[np.ndarray, object]]


def next_token_probabilities(logits: np.ndarray, temperature: float, top_k: int, top_p: float) -> np.ndarray:
    """softmax(logits / temperature) restricted to the top-k tokens and the top-p nucleus, renormalised.
    A temperature so small that logits / temperature overflows is greedy."""
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = logits.astype(np.float64) / temperature  # (V,)
        probabilities = np.exp(scaled - scaled.max())
    if not np.isfinite(probabilities).all():
        probabilities = np.zeros_like(scaled)
        probabilities[np.argmax(logits)] = 1.0
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


def choose_token(logits: np.ndarray, settings, rng: np.random.Generator) -> int:
    """The next token id under the sampling settings (temperature, top_k, top_p)."""
    if settings.temperature == 0:
        return int(np.argmax(logits))
    probabilities = next_token_probabilities(logits, settings.temperature, settings.top_k, settings.top_p)
    cumulative = np.cumsum(probabilities)
    return int(min(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"), len(cumulative) - 1))


def start_ids(vocabulary: Vocabulary) -> list[int]:
    """What generation starts from without a prime: the tokens of a line break (char "\n", word <eos>)."""
    tokens = [token for token in vocabulary.tokenizer.split("\n") if token in vocabulary]
    return [vocabulary.ids[token] for token in tokens] or [0]


def prime_ids(vocabulary: Vocabulary, prime: str, skip_unknown: bool) -> list[int]:
    """The prime's token ids. Its unknown tokens are <unk> when the vocabulary has it; otherwise an
    error naming them, or dropped if asked."""
    tokens = vocabulary.tokenizer.split(prime)
    if vocabulary.unknown_token is not None:
        return [int(index) for index in vocabulary.encode(tokens)]
    unknown = vocabulary.unknown(tokens)
    if unknown and not skip_unknown:
        raise UsageError(
            f"the prime has {vocabulary.tokenizer.unit} not in the vocabulary: {describe_tokens(unknown)} "
            "(use --skip-unknown to drop them)"
        )
    return [int(index) for index in vocabulary.encode([token for token in tokens if token in vocabulary])]


def feed(step: StepFunction, ids: list[int], state=None, window: int = FEED_WINDOW) -> tuple[np.ndarray, object]:
    """Run the model over ids (at least one), `window` at a time with the state carried; the logits
    after the last id and the state."""
    logits = None
    for start in range(0, len(ids), window):
        logits, state = step(ids[start : start + window], state)
    return logits, state


def generate_tokens(
    step: StepFunction, vocabulary: Vocabulary, context: list[int], settings, rng: np.random.Generator
) -> Iterator[str]:
    """Yield `settings.length` tokens, one at a time, continuing the context ids."""
    logits, state = feed(step, context or start_ids(vocabulary))
    for count in range(1, settings.length + 1):
        token = choose_token(logits, settings, rng)
        yield vocabulary.tokens[token]
        if count < settings.length:  # the last token needs no successor
            logits, state = step([token], state)


def log_softmax(scores: np.ndarray) -> np.ndarray:
    shifted = scores.astype(np.float64) - scores.max()
    return shifted - np.log(np.exp(shifted).sum())


def beam_search(
    step: StepFunction, context: list[int], width: int, length: int, end: int | None = None, length_penalty: float = 0.0
) -> list[tuple[list[int], float, float]]:
    """The `width` most likely continuations of the context (EQUATIONS.md, "Sampling and beam search"): each step
    every live hypothesis is extended by each token, and the `width` best by ranking score stay; a
    hypothesis that reaches `end` or `length` tokens is finished and leaves the beam. The ranking score
    is logp / |y|^length_penalty (0: the raw sum of log-probabilities). Returns (ids, logp, score),
    best first. Works for any model that gives next-token scores through a step function."""

    def rank(logp: float, size: int) -> float:
        return logp / size**length_penalty if size else logp

    logits, state = feed(step, context)
    check_memory(16 * width * len(logits), f"--beam {width} over {len(logits):,} tokens needs")
    live = [([], 0.0, logits, state)]  # (ids, logp, next-token scores, state)
    finished: list[tuple[list[int], float]] = []
    for _ in range(length):
        candidates = []
        for ids, logp, scores, state in live:
            log_probabilities = log_softmax(scores)
            for token in np.argsort(-log_probabilities, kind="stable")[:width]:
                candidates.append((ids + [int(token)], logp + float(log_probabilities[token]), state))
        candidates.sort(key=lambda c: -rank(c[1], len(c[0])))
        live = []
        for ids, logp, state in candidates[:width]:
            if (end is not None and ids[-1] == end) or len(ids) == length:
                finished.append((ids, logp))
            else:
                scores, new_state = step([ids[-1]], state)
                live.append((ids, logp, scores, new_state))
        if not live:
            break
    finished += [(ids, logp) for ids, logp, _, _ in live]
    ranked = sorted(finished, key=lambda f: -rank(f[1], len(f[0])))[:width]
    return [(ids, logp, rank(logp, len(ids))) for ids, logp in ranked]


def generate_text(step: StepFunction, vocabulary: Vocabulary, settings, seed: int | None) -> str:
    """The settings' prime followed by its continuation, as one string (for samples written during
    training; prime tokens outside the vocabulary are dropped)."""
    context = prime_ids(vocabulary, settings.prime, skip_unknown=True)
    tokens = generate_tokens(step, vocabulary, context, settings, np.random.default_rng(seed))
    return settings.prime + "".join(stream_text(vocabulary.tokenizer, tokens, settings.prime))

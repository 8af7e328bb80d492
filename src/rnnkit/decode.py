"""Greedy and beam-search decoding of a batch of sentences at once, over any conditional model's
next-token log-probabilities (the translation task's two engines give them). NumPy only.

A `Decoder` is made for one batch of B inputs and a beam width W; it holds B*W rows, row b*W + k being
hypothesis k of sentence b, so a row never changes sentence and whatever is per sentence (an encoder's
memory) is never reordered:

    step(tokens (N,), state) -> (log-probabilities (N, V), attention weights (N, S) or None, state)
    select(state, rows (N,)) -> the state of the given rows, in that order
    start() -> the state before the first token (every row the same)

Beam search follows EQUATIONS.md ("Sampling and beam search"), as rnnkit.generate.beam_search does for one
sequence: every step each live hypothesis is extended by each of its W best tokens, the W best
extensions stay, and one that ends (the end token, or the sentence's length limit) leaves the beam.
Hypotheses are ranked by logp / |y|^α (α the length penalty; |y| counts the end token), so a width of 1
is greedy decoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


class Decoder(Protocol):
    def start(self) -> object: ...

    def step(self, tokens: np.ndarray, state) -> tuple[np.ndarray, np.ndarray | None, object]: ...

    def select(self, state, rows: np.ndarray) -> object: ...


@dataclass
class Hypothesis:
    ids: list[int]  # the tokens chosen, the end token included if it was reached
    logp: float  # the sum of their log-probabilities
    score: float  # the ranking score, logp / len(ids)^α
    attention: np.ndarray | None  # (len(ids), S): each step's attention weights, if tracked


def rank(logp: float, length: int, length_penalty: float) -> float:
    return logp / length**length_penalty if length else logp


def greedy_search(decoder: Decoder, batch: int, max_lengths: np.ndarray, start: int, end: int, track: bool = False):
    """The most likely token at every step, for each of `batch` sentences, until its end token or its
    length limit. Returns one Hypothesis per sentence."""
    state = decoder.start()
    tokens = np.full(batch, start, dtype=np.int64)
    chosen, logps, weights = [], np.zeros(batch), []
    done = np.zeros(batch, dtype=bool)
    lengths = np.zeros(batch, dtype=np.int64)
    for t in range(int(max_lengths.max())):
        log_probabilities, attention, state = decoder.step(tokens, state)
        tokens = log_probabilities.argmax(axis=1)
        live = ~done
        logps[live] += log_probabilities[np.arange(batch), tokens][live]
        lengths[live] += 1
        chosen.append(tokens)
        if track:
            weights.append(attention)
        done |= (tokens == end) | (t + 1 >= max_lengths)
        if done.all():
            break
    results = []
    for b in range(batch):
        ids = [int(step[b]) for step in chosen[: lengths[b]]]
        attention = np.stack([step[b] for step in weights[: lengths[b]]]) if track else None
        results.append(Hypothesis(ids, float(logps[b]), float(logps[b]), attention))
    return results


def beam_search(
    decoder: Decoder,
    batch: int,
    width: int,
    max_lengths: np.ndarray,
    start: int,
    end: int,
    length_penalty: float = 0.0,
    track: bool = False,
) -> list[list[Hypothesis]]:
    """The `width` best hypotheses of each of `batch` sentences, best first (see the module's text)."""
    W = width
    state = decoder.start()
    scores = np.full((batch, W), -np.inf)
    scores[:, 0] = 0.0  # one live hypothesis per sentence at first: the others are copies of it
    history = np.zeros((batch, W, 0), dtype=np.int64)
    attention_history = None
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]
    tokens = np.full(batch * W, start, dtype=np.int64)
    for t in range(int(max_lengths.max())):
        log_probabilities, attention, state = decoder.step(tokens, state)
        V = log_probabilities.shape[1]
        k = min(W, V)
        best = (
            np.argpartition(-log_probabilities, k - 1, axis=1)[:, :k]
            if k < V
            else np.tile(np.arange(V), (batch * W, 1))
        )
        values = np.take_along_axis(log_probabilities, best, axis=1).reshape(batch, W, k)  # (B, W, k)
        candidates = scores[:, :, None] + values  # (B, W, k): -inf for dead hypotheses
        flat = candidates.reshape(batch, W * k)
        order = np.argsort(-flat, axis=1, kind="stable")[:, :W]  # the W best extensions of each sentence
        new_scores = np.take_along_axis(flat, order, axis=1)  # (B, W)
        origin = order // k  # (B, W): the hypothesis each extends
        new_tokens = np.take_along_axis(best.reshape(batch, W * k), order, axis=1)  # (B, W)
        valid = np.isfinite(new_scores)
        rows = (np.arange(batch)[:, None] * W + origin).reshape(-1)  # (B*W,)
        history = np.concatenate(
            [np.take_along_axis(history, origin[..., None], axis=1), new_tokens[..., None]], axis=2
        )
        if track:
            step_attention = attention.reshape(batch, W, 1, -1)
            previous = (
                np.take_along_axis(attention_history, origin[..., None, None], axis=1)
                if attention_history is not None
                else np.zeros((batch, W, 0, step_attention.shape[-1]))
            )
            attention_history = np.concatenate(
                [previous, np.take_along_axis(step_attention, origin[..., None, None], axis=1)], axis=2
            )
        ends = valid & ((new_tokens == end) | (t + 1 >= max_lengths[:, None]))
        for b, j in zip(*np.nonzero(ends)):
            ids = history[b, j].tolist()
            weights = attention_history[b, j] if track else None
            finished[b].append(
                Hypothesis(ids, float(new_scores[b, j]), rank(new_scores[b, j], len(ids), length_penalty), weights)
            )
        scores = np.where(valid & ~ends, new_scores, -np.inf)
        if not np.isfinite(scores).any():
            break
        state = decoder.select(state, rows)
        tokens = np.where(np.isfinite(scores).reshape(-1), new_tokens.reshape(-1), end)
    return [sorted(found, key=lambda h: -h.score)[:W] for found in finished]


def search_all(
    decoder_for,
    sources: list,
    width: int,
    max_lengths: np.ndarray,
    start: int,
    end: int,
    length_penalty: float = 0.0,
    track: bool = False,
    batch_size: int = 32,
) -> list[Hypothesis]:
    """The best hypothesis for each of many inputs (e.g. arrays of source ids), searched in batches of
    inputs of similar length: greedy for a width of 1, else beam search. decoder_for(inputs, width) makes
    the Decoder of a batch."""
    lengths = np.array([len(source) for source in sources])
    order = np.argsort(lengths, kind="stable")
    results: list = [None] * len(sources)
    for first in range(0, len(sources), batch_size):
        indices = order[first : first + batch_size]
        decoder = decoder_for([sources[i] for i in indices], width)
        limits = np.asarray(max_lengths)[indices]
        if width == 1:
            found = greedy_search(decoder, len(indices), limits, start, end, track)
        else:
            found = [
                best[0] for best in beam_search(decoder, len(indices), width, limits, start, end, length_penalty, track)
            ]
        for index, hypothesis in zip(indices, found):
            results[index] = hypothesis
    return results

"""The tagger's forward pass and decoding in the NumPy engine, for `rnnkit predict --engine numpy`.

It reads the same weights (torch.nn names) into rnnkit.reference's layers (CRF included) and never
imports torch. Every weight's shape is checked against the config and the run's vocabularies and tag
set before anything runs. One sentence at a time, float64.

Dimension letters: T time (words), N words, C characters, E, F, H, D, K as in torch.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rnnkit import reference
from rnnkit.reference import crf_log_partition, crf_log_partition_backward, crf_viterbi
from rnnkit.reference.crf import logsumexp
from rnnkit.tasks.numpy_layers import layer_shapes, load_layer, read_weights, recurrent_layer
from rnnkit.tasks.tagger.config import ModelConfig
from rnnkit.tasks.tagger.data import TaggerData

SPELLER_PREFIX = "characters.rnn."


def recurrent_stack(architecture: ModelConfig) -> list[tuple[str, object]]:
    """(weight-name prefix, NumPy layer) of each recurrent module, as the torch engine builds them."""
    directions = 2 if architecture.bidirectional else 1
    char_size = 2 * architecture.char_hidden_size if architecture.char_encoder == "bilstm" else 0
    input_size = architecture.embedding_size + char_size
    if not architecture.residual:
        return [
            (
                "rnn.",
                recurrent_layer(
                    architecture,
                    input_size,
                    architecture.hidden_size,
                    architecture.num_layers,
                    architecture.bidirectional,
                ),
            )
        ]
    sizes = [input_size] + [directions * architecture.hidden_size] * (architecture.num_layers - 1)
    return [
        (f"layers.{k}.", recurrent_layer(architecture, size, architecture.hidden_size, 1, architecture.bidirectional))
        for k, size in enumerate(sizes)
    ]


def expected_shapes(architecture: ModelConfig, stack, speller, words: int, characters: int, tags: int) -> dict:
    directions = 2 if architecture.bidirectional else 1
    shapes = {"word_embedding.weight": (words, architecture.embedding_size)}
    if speller is not None:
        shapes["characters.embedding.weight"] = (characters, architecture.char_embedding_size)
        shapes |= layer_shapes(SPELLER_PREFIX, speller)
    for prefix, layer in stack:
        shapes |= layer_shapes(prefix, layer)
    shapes |= {"output.weight": (tags, directions * architecture.hidden_size), "output.bias": (tags,)}
    if architecture.crf:
        shapes |= {"crf.transitions": (tags, tags), "crf.start": (tags,), "crf.end": (tags,)}
    return shapes


def tag_probabilities(emissions: np.ndarray, crf: tuple | None) -> np.ndarray:
    """Each word's probability of each tag (T, K): the softmax of its scores, or with a CRF (transitions,
    start, end) the marginals, which are the gradient of log Z with respect to the emissions."""
    if crf is None:
        return np.exp(emissions - logsumexp(emissions, axis=-1)[:, None])
    _, cache = crf_log_partition(emissions, *crf)
    return crf_log_partition_backward(1.0, cache)["emissions"]


def model_function(run, checkpoint: Path, prepared: TaggerData, probabilities: bool = False):
    """EncodedSentences -> predicted tag ids per sentence, with the NumPy engine (rnnkit.tasks.engines);
    with `probabilities`, (tag ids, each word's tag probabilities (T, K)) per sentence."""
    architecture = run.config.model
    stack = recurrent_stack(architecture)
    speller = (
        reference.LSTM(architecture.char_embedding_size, architecture.char_hidden_size, bidirectional=True)
        if architecture.char_encoder == "bilstm"
        else None
    )
    weights = read_weights(
        checkpoint,
        expected_shapes(
            architecture, stack, speller, len(prepared.vocabulary), len(prepared.characters), len(prepared.tags)
        ),
    )
    for prefix, layer in stack:
        load_layer(layer, weights, prefix)
    if speller is not None:
        load_layer(speller, weights, SPELLER_PREFIX)

    def spell(spellings: list[np.ndarray]) -> np.ndarray:
        lengths = np.array([max(len(spelling), 1) for spelling in spellings])
        x = np.zeros((lengths.max(), len(spellings), architecture.char_embedding_size))  # (C, N, E_c)
        for column, spelling in enumerate(spellings):
            x[: len(spelling), column] = weights["characters.embedding.weight"][spelling]
        _, (h_n, _) = speller.forward(x, None, lengths)  # (2, N, Hc)
        return np.concatenate([h_n[0], h_n[1]], axis=-1)  # (N, F)

    def tag(words: np.ndarray, spellings: list[np.ndarray]) -> np.ndarray:
        x = weights["word_embedding.weight"][words]  # (T, E)
        if speller is not None:
            x = np.concatenate([x, spell(spellings)], axis=-1)  # (T, E+F)
        x = x[:, None, :]  # (T, 1, ·)
        for k, (_, layer) in enumerate(stack):
            y, _ = layer.forward(x)
            x = y + x if architecture.residual and k > 0 else y  # (T, 1, D*H)
        emissions = x[:, 0] @ weights["output.weight"].T + weights["output.bias"]  # (T, K)
        crf = (weights["crf.transitions"], weights["crf.start"], weights["crf.end"]) if architecture.crf else None
        tags = crf_viterbi(emissions, *crf) if crf else emissions.argmax(axis=-1)
        return (tags, tag_probabilities(emissions, crf)) if probabilities else tags

    return lambda encoded: [tag(words, spellings) for words, spellings in zip(encoded.words, encoded.characters)]

"""The language model's forward pass in the NumPy engine, for `rnnkit sample --engine numpy`.

It reads the same weights (torch.nn names) into rnnkit.reference's layers and never imports torch, so
sampling works where torch is not installed. Every weight's shape is checked against the config and
the vocabulary, and every value for finiteness, before anything runs.

Dimension letters: T time, E embedding size, H hidden size, V vocabulary.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rnnkit.data.vocabulary import Vocabulary
from rnnkit.tasks.language_model.config import ModelConfig
from rnnkit.tasks.numpy_layers import layer_shapes, load_layer, log_softmax, read_weights, recurrent_layer


def recurrent_modules(architecture: ModelConfig) -> list[tuple[str, object]]:
    """(weight-name prefix, NumPy layer) of each recurrent module, as the torch engine builds them."""
    if not architecture.per_layer:
        return [
            (
                "rnn.",
                recurrent_layer(
                    architecture, architecture.embedding_size, architecture.hidden_size, architecture.num_layers
                ),
            )
        ]
    sizes = architecture.layer_sizes
    inputs = (architecture.embedding_size, *sizes[:-1])
    return [
        (f"layers.{k}.", recurrent_layer(architecture, size_in, size))
        for k, (size_in, size) in enumerate(zip(inputs, sizes))
    ]


def adaptive_shapes(architecture: ModelConfig, vocabulary_size: int) -> dict[str, tuple[int, ...]]:
    """torch.nn.AdaptiveLogSoftmaxWithLoss's weights (no biases)."""
    size, cutoffs = architecture.layer_sizes[-1], [*architecture.cutoffs, vocabulary_size]
    shapes = {"adaptive.head.weight": (cutoffs[0] + len(cutoffs) - 1, size)}
    for i, (start, stop, projection) in enumerate(zip(cutoffs[:-1], cutoffs[1:], architecture.projection_sizes)):
        shapes[f"adaptive.tail.{i}.0.weight"] = (projection, size)
        shapes[f"adaptive.tail.{i}.1.weight"] = (stop - start, projection)
    return shapes


def expected_shapes(architecture: ModelConfig, vocabulary_size: int, modules) -> dict[str, tuple[int, ...]]:
    """Every weight of the language model (the torch engine's LanguageModel) with its shape."""
    shapes = {} if architecture.tied_adaptive else {"embedding.weight": (vocabulary_size, architecture.embedding_size)}
    for prefix, layer in modules:
        shapes |= layer_shapes(prefix, layer)
    if architecture.softmax == "adaptive":
        return shapes | adaptive_shapes(architecture, vocabulary_size)
    return shapes | {
        "decoder.weight": (vocabulary_size, architecture.layer_sizes[-1]),
        "decoder.bias": (vocabulary_size,),
    }


def adaptive_input(weights: dict[str, np.ndarray], ids: np.ndarray, cutoffs: list[int]) -> np.ndarray:
    """The input vectors (T, E) of ids (T,) read from a tied adaptive softmax (LanguageModel.embed)."""
    vectors = np.empty((len(ids), weights["adaptive.head.weight"].shape[1]))
    for row, token in enumerate(ids):
        if token < cutoffs[0]:
            vectors[row] = weights["adaptive.head.weight"][token]
            continue
        i = (
            int(np.searchsorted(cutoffs, token, side="right")) - 1
        )  # token's cluster: cutoffs[i] <= token < cutoffs[i+1]
        vectors[row] = (
            weights[f"adaptive.tail.{i}.1.weight"][token - cutoffs[i]] @ weights[f"adaptive.tail.{i}.0.weight"]
        )
    return vectors


def adaptive_log_prob(weights: dict[str, np.ndarray], h: np.ndarray, cutoffs: list[int]) -> np.ndarray:
    """The adaptive softmax's log-probabilities (V,) of one output h (H,): the head's shortlist, and each
    cluster's tokens as the head's cluster log-probability plus the cluster's own."""
    head = log_softmax(weights["adaptive.head.weight"] @ h)  # (shortlist + clusters,)
    pieces = [head[: cutoffs[0]]]
    for i in range(len(cutoffs) - 1):
        cluster = weights[f"adaptive.tail.{i}.1.weight"] @ (weights[f"adaptive.tail.{i}.0.weight"] @ h)
        pieces.append(log_softmax(cluster) + head[cutoffs[0] + i])
    return np.concatenate(pieces)


def model_function(run, checkpoint: Path, vocabulary: Vocabulary):
    """Sampling's view of the checkpoint's model in float64 (rnnkit.tasks.engines):
    step(ids, state) -> (scores of the next token (V,), state)."""
    architecture, vocabulary_size = run.config.model, len(vocabulary)
    modules = recurrent_modules(architecture)
    weights = read_weights(checkpoint, expected_shapes(architecture, vocabulary_size, modules))
    for prefix, layer in modules:
        load_layer(layer, weights, prefix)
    cutoffs = [*architecture.cutoffs, vocabulary_size]

    def step(ids: list[int], state):
        x = (
            adaptive_input(weights, np.asarray(ids), cutoffs)
            if architecture.tied_adaptive
            else weights["embedding.weight"][np.asarray(ids)]
        )[:, None, :]  # (T, 1, E)
        state = state or [None] * len(modules)
        new_state = []
        for (_, layer), layer_state in zip(modules, state):
            x, final = layer.forward(x, layer_state)  # (T, 1, H)
            new_state.append(final)
        h = x[-1, 0]  # (H,)
        if architecture.softmax == "adaptive":
            return adaptive_log_prob(weights, h, cutoffs), new_state
        return weights["decoder.weight"] @ h + weights["decoder.bias"], new_state  # (V,)

    return step

"""The language model's forward pass in NumPy alone, for `rnnkit sample --engine numpy`.

It reads the same weights (torch.nn names) through the NumPy engine (rnnkit.reference) and never
imports torch, so sampling works where torch is not installed. Every weight's shape is checked
against the config and the vocabulary, and every value for finiteness, before anything runs.

Dimension letters: T time, E embedding size, H hidden size, V vocabulary.
"""
from __future__ import annotations

import numpy as np

from rnnkit import reference
from rnnkit.rundir import check_numpy_weights
from rnnkit.spec import layer_parameter_shapes

LAYERS = {"rnn": reference.RNN, "lstm": reference.LSTM, "gru": reference.GRU}


def recurrent_modules(model) -> list[tuple[str, object]]:
    """(weight-name prefix, NumPy layer) of each recurrent module, as language_model_torch builds them."""
    keywords = model.cell_spec().keywords()
    if not model.per_layer:
        return [("rnn.", LAYERS[model.cell](model.embedding_size, model.hidden_size, model.num_layers, **keywords))]
    sizes = model.layer_sizes
    inputs = (model.embedding_size, *sizes[:-1])
    return [(f"layers.{k}.", LAYERS[model.cell](size_in, size, 1, **keywords))
            for k, (size_in, size) in enumerate(zip(inputs, sizes))]


def adaptive_shapes(model, vocabulary_size: int) -> dict[str, tuple[int, ...]]:
    """torch.nn.AdaptiveLogSoftmaxWithLoss's weights (no biases)."""
    size, cutoffs = model.layer_sizes[-1], [*model.cutoffs, vocabulary_size]
    shapes = {"adaptive.head.weight": (cutoffs[0] + len(cutoffs) - 1, size)}
    for i, (start, stop, projection) in enumerate(zip(cutoffs[:-1], cutoffs[1:], model.projection_sizes)):
        shapes[f"adaptive.tail.{i}.0.weight"] = (projection, size)
        shapes[f"adaptive.tail.{i}.1.weight"] = (stop - start, projection)
    return shapes


def expected_shapes(model, vocabulary_size: int) -> dict[str, tuple[int, ...]]:
    """Every weight of the language model (see LanguageModel) with its shape."""
    shapes = {} if model.tied_adaptive else {"embedding.weight": (vocabulary_size, model.embedding_size)}
    for prefix, layer in recurrent_modules(model):
        shapes |= {prefix + name: shape for name, shape in layer_parameter_shapes(
            model.cell_spec(), layer.input_size, layer.hidden_size, layer.num_layers).items()}
    if model.softmax == "adaptive":
        return shapes | adaptive_shapes(model, vocabulary_size)
    return shapes | {"decoder.weight": (vocabulary_size, model.layer_sizes[-1]), "decoder.bias": (vocabulary_size,)}


def adaptive_input(weights: dict[str, np.ndarray], ids: np.ndarray, cutoffs: list[int]) -> np.ndarray:
    """The input vectors (T, E) of ids (T,) read from a tied adaptive softmax (LanguageModel.embed)."""
    vectors = np.empty((len(ids), weights["adaptive.head.weight"].shape[1]))
    for row, token in enumerate(ids):
        if token < cutoffs[0]:
            vectors[row] = weights["adaptive.head.weight"][token]
            continue
        i = int(np.searchsorted(cutoffs, token, side="right")) - 1  # token's cluster: cutoffs[i] <= token < cutoffs[i+1]
        vectors[row] = weights[f"adaptive.tail.{i}.1.weight"][token - cutoffs[i]] @ weights[f"adaptive.tail.{i}.0.weight"]
    return vectors


def log_softmax(scores: np.ndarray) -> np.ndarray:
    shifted = scores - scores.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def adaptive_log_prob(weights: dict[str, np.ndarray], h: np.ndarray, cutoffs: list[int]) -> np.ndarray:
    """The adaptive softmax's log-probabilities (V,) of one output h (H,): the head's shortlist, and each
    cluster's tokens as the head's cluster log-probability plus the cluster's own."""
    head = log_softmax(weights["adaptive.head.weight"] @ h)  # (shortlist + clusters,)
    pieces = [head[: cutoffs[0]]]
    for i in range(len(cutoffs) - 1):
        cluster = weights[f"adaptive.tail.{i}.1.weight"] @ (weights[f"adaptive.tail.{i}.0.weight"] @ h)
        pieces.append(log_softmax(cluster) + head[cutoffs[0] + i])
    return np.concatenate(pieces)


def numpy_step_function(model, weights: dict[str, np.ndarray], vocabulary_size: int, source):
    """Sampling's view of the model in float64: step(ids, state) -> (scores of the next token (V,), state)."""
    check_numpy_weights(weights, expected_shapes(model, vocabulary_size), source)
    weights = {name: value.astype(np.float64) for name, value in weights.items()}
    modules = recurrent_modules(model)
    for prefix, layer in modules:
        layer.load_state_dict({name[len(prefix):]: value for name, value in weights.items() if name.startswith(prefix)})
    cutoffs = [*model.cutoffs, vocabulary_size]

    def step(ids: list[int], state):
        x = (adaptive_input(weights, np.asarray(ids), cutoffs) if model.tied_adaptive
             else weights["embedding.weight"][np.asarray(ids)])[:, None, :]  # (T, 1, E)
        state = state or [None] * len(modules)
        new_state = []
        for (_, layer), layer_state in zip(modules, state):
            x, final = layer.forward(x, layer_state)  # (T, 1, H)
            new_state.append(final)
        h = x[-1, 0]  # (H,)
        if model.softmax == "adaptive":
            return adaptive_log_prob(weights, h, cutoffs), new_state
        return weights["decoder.weight"] @ h + weights["decoder.bias"], new_state  # (V,)

    return step

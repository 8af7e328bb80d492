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

RECURRENT_PREFIX = "rnn."


def build_reference_layer(model):
    """The NumPy twin of rnnkit.tasks.language_model_torch.build_recurrent_layer."""
    layer = {"rnn": reference.RNN, "lstm": reference.LSTM, "gru": reference.GRU}[model.cell]
    return layer(model.embedding_size, model.hidden_size, model.num_layers, **model.cell_spec().keywords())


def expected_shapes(model, vocabulary_size: int) -> dict[str, tuple[int, ...]]:
    """Every weight of the language model (see LanguageModel) with its shape."""
    recurrent = layer_parameter_shapes(model.cell_spec(), model.embedding_size, model.hidden_size, model.num_layers)
    return {"embedding.weight": (vocabulary_size, model.embedding_size),
            **{RECURRENT_PREFIX + name: shape for name, shape in recurrent.items()},
            "decoder.weight": (vocabulary_size, model.hidden_size), "decoder.bias": (vocabulary_size,)}


def numpy_step_function(model, weights: dict[str, np.ndarray], vocabulary_size: int, source):
    """Sampling's view of the model in float64: step(ids, state) -> (logits of the next token (V,), state)."""
    check_numpy_weights(weights, expected_shapes(model, vocabulary_size), source)
    embedding = weights["embedding.weight"].astype(np.float64)  # (V, E)
    decoder_weight = weights["decoder.weight"].astype(np.float64)  # (V, H)
    decoder_bias = weights["decoder.bias"].astype(np.float64)  # (V,)
    layer = build_reference_layer(model)
    layer.load_state_dict({name[len(RECURRENT_PREFIX):]: value for name, value in weights.items()
                           if name.startswith(RECURRENT_PREFIX)})

    def step(ids: list[int], state):
        x = embedding[np.asarray(ids)][:, None, :]  # (T, 1, E)
        output, state = layer.forward(x, state)  # (T, 1, H)
        return output[-1, 0] @ decoder_weight.T + decoder_bias, state  # (V,)

    return step

"""The sentence classifier's forward pass in NumPy alone, for `rnnkit predict --engine numpy`.

It reads the same weights (torch.nn names) through the NumPy engine (rnnkit.reference) and never
imports torch. Every weight's shape is checked against the config, vocabulary and label set, and
every value for finiteness, before anything runs.

Dimension letters: T time (words), B batch, E embedding size, H hidden size, D directions, K labels.
"""
from __future__ import annotations

import numpy as np

from rnnkit import reference
from rnnkit.rundir import check_numpy_weights
from rnnkit.spec import layer_parameter_shapes

RECURRENT_PREFIX = "rnn."
LAYERS = {"rnn": reference.RNN, "lstm": reference.LSTM, "gru": reference.GRU}


def expected_shapes(model, vocabulary_size: int, label_count: int) -> dict[str, tuple[int, ...]]:
    directions = 2 if model.bidirectional else 1
    recurrent = layer_parameter_shapes(model.cell_spec(), model.embedding_size, model.hidden_size, model.num_layers,
                                       bidirectional=model.bidirectional)
    return {"embedding.weight": (vocabulary_size, model.embedding_size),
            **{RECURRENT_PREFIX + name: shape for name, shape in recurrent.items()},
            "output.weight": (label_count, directions * model.hidden_size), "output.bias": (label_count,)}


def numpy_probability_function(model, weights: dict[str, np.ndarray], vocabulary_size: int, label_count: int, source):
    """Token-id arrays -> probabilities (N, K), in float64."""
    check_numpy_weights(weights, expected_shapes(model, vocabulary_size, label_count), source)
    embedding = weights["embedding.weight"].astype(np.float64)  # (V, E)
    output_weight, output_bias = weights["output.weight"].astype(np.float64), weights["output.bias"].astype(np.float64)
    layer = LAYERS[model.cell](model.embedding_size, model.hidden_size, model.num_layers,
                               bidirectional=model.bidirectional, **model.cell_spec().keywords())
    layer.load_state_dict({name[len(RECURRENT_PREFIX):]: value for name, value in weights.items()
                           if name.startswith(RECURRENT_PREFIX)})
    directions = 2 if model.bidirectional else 1

    def probabilities(sequences: list[np.ndarray]) -> np.ndarray:
        lengths = np.array([len(ids) for ids in sequences])
        x = np.zeros((lengths.max(), len(sequences), model.embedding_size))  # (T, B, E)
        for column, ids in enumerate(sequences):
            x[: len(ids), column] = embedding[ids]
        output, state = layer.forward(x, None, lengths)  # (T, B, D*H)
        h_n = state[0] if isinstance(state, tuple) else state  # (L*D, B, H)
        if model.pooling == "last":
            vector = np.concatenate(list(h_n[-directions:]), axis=-1)  # (B, D*H)
        else:
            mask = (np.arange(len(x))[:, None] < lengths[None, :])[..., None]  # (T, B, 1)
            if model.pooling == "max":
                vector = np.where(mask, output, -np.inf).max(axis=0)  # (B, D*H)
            else:
                vector = (output * mask).sum(axis=0) / lengths[:, None]  # (B, D*H)
        logits = vector @ output_weight.T + output_bias  # (B, K)
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return exp / exp.sum(axis=1, keepdims=True)

    return probabilities

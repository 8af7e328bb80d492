"""The sentence classifier's forward pass in the NumPy engine, for `rnnkit predict --engine numpy`.

It reads the same weights (torch.nn names) into rnnkit.reference's layers and never imports torch.
Every weight's shape is checked against the config, vocabulary and label set, and every value for
finiteness, before anything runs.

Dimension letters: T time (words), B batch, E embedding size, H hidden size, D directions, K labels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rnnkit.data.vocabulary import Vocabulary
from rnnkit.tasks.classifier.config import ModelConfig
from rnnkit.tasks.numpy_layers import layer_shapes, load_layer, read_weights, recurrent_layer

RECURRENT_PREFIX = "rnn."


def expected_shapes(architecture: ModelConfig, layer, vocabulary_size: int, label_count: int) -> dict:
    directions = 2 if architecture.bidirectional else 1
    return {
        "embedding.weight": (vocabulary_size, architecture.embedding_size),
        **layer_shapes(RECURRENT_PREFIX, layer),
        "output.weight": (label_count, directions * architecture.hidden_size),
        "output.bias": (label_count,),
    }


def model_function(run, checkpoint: Path, vocabulary: Vocabulary, labels: list[str]):
    """Token-id arrays -> probabilities (N, K), in float64 (rnnkit.tasks.engines)."""
    architecture = run.config.model
    layer = recurrent_layer(
        architecture,
        architecture.embedding_size,
        architecture.hidden_size,
        architecture.num_layers,
        architecture.bidirectional,
    )
    weights = read_weights(checkpoint, expected_shapes(architecture, layer, len(vocabulary), len(labels)))
    load_layer(layer, weights, RECURRENT_PREFIX)
    embedding, output_weight, output_bias = (
        weights["embedding.weight"],
        weights["output.weight"],
        weights["output.bias"],
    )
    directions = 2 if architecture.bidirectional else 1

    def probabilities(sequences: list[np.ndarray]) -> np.ndarray:
        lengths = np.array([len(ids) for ids in sequences])
        x = np.zeros((lengths.max(), len(sequences), architecture.embedding_size))  # (T, B, E)
        for column, ids in enumerate(sequences):
            x[: len(ids), column] = embedding[ids]
        output, state = layer.forward(x, None, lengths)  # (T, B, D*H)
        h_n = state[0] if isinstance(state, tuple) else state  # (L*D, B, H)
        if architecture.pooling == "last":
            vector = np.concatenate(list(h_n[-directions:]), axis=-1)  # (B, D*H)
        else:
            mask = (np.arange(len(x))[:, None] < lengths[None, :])[..., None]  # (T, B, 1)
            if architecture.pooling == "max":
                vector = np.where(mask, output, -np.inf).max(axis=0)  # (B, D*H)
            else:
                vector = (output * mask).sum(axis=0) / lengths[:, None]  # (B, D*H)
        logits = vector @ output_weight.T + output_bias  # (B, K)
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return exp / exp.sum(axis=1, keepdims=True)

    return probabilities

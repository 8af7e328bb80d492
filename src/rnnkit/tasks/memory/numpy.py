"""The long-memory problems' forward pass in the NumPy engine: the same answers in float64 over
rnnkit.reference, without torch.

Dimension letters: T steps, B batch, C copies, E embedding, H hidden, K symbols.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rnnkit.tasks.memory.data import Batch, vocabulary_size
from rnnkit.tasks.numpy_layers import layer_shapes, load_layer, read_weights, recurrent_layer


def model_function(run, checkpoint: Path):
    """The checkpoint's model as a function: a Batch -> its answers, sums (B,) or symbols (C, B)."""
    config = run.config
    architecture, problem = config.model, config.data.problem
    layer = recurrent_layer(
        architecture, architecture.embedding_size, architecture.hidden_size, architecture.num_layers
    )
    outputs = 1 if problem == "adding" else config.data.symbols
    expected = layer_shapes("rnn.", layer) | {
        "output.weight": (outputs, architecture.hidden_size),
        "output.bias": (outputs,),
    }
    if problem == "copy":
        expected["embedding.weight"] = (vocabulary_size(config.data), architecture.embedding_size)
    else:
        expected |= {"input.weight": (architecture.embedding_size, 2), "input.bias": (architecture.embedding_size,)}
    weights = read_weights(checkpoint, expected)
    load_layer(layer, weights, "rnn.")

    def answers(batch: Batch) -> np.ndarray:
        if problem == "copy":
            x = weights["embedding.weight"][batch.inputs]  # (T + C, B, E)
        else:
            x = batch.inputs.astype(np.float64) @ weights["input.weight"].T + weights["input.bias"]  # (T, B, E)
        output, _ = layer.forward(x)  # (T, B, H)
        if problem == "adding":
            return output[-1] @ weights["output.weight"][0] + weights["output.bias"][0]  # (B,)
        scores = output[-config.data.copies :] @ weights["output.weight"].T + weights["output.bias"]  # (C, B, K)
        return scores.argmax(axis=-1)

    return answers

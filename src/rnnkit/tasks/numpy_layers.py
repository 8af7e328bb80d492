"""What the tasks' NumPy engines share: their recurrent layers built over rnnkit.reference from the
[model] settings, their checked float64 weights, and the softmax. Nothing here imports torch.

Dimension letters: V classes (tokens, labels, tags).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rnnkit import reference
from rnnkit.config import CellSettings
from rnnkit.rundir import read_model_weights

LAYERS = {
    "rnn": reference.RNN,
    "lstm": reference.LSTM,
    "gru": reference.GRU,
    "mingru": reference.MinGRU,
    "minlstm": reference.MinLSTM,
}


def recurrent_layer(
    architecture: CellSettings, input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False
) -> reference.RecurrentLayer:
    """The NumPy layer of the cell and variant the [model] settings name (as torch_layers builds its twin)."""
    return LAYERS[architecture.cell](
        input_size, hidden_size, num_layers, bidirectional=bidirectional, **architecture.cell_spec().keywords()
    )


def layer_shapes(prefix: str, layer: reference.RecurrentLayer) -> dict[str, tuple[int, ...]]:
    """The layer's weights under the name prefix the torch model gives them (e.g. "rnn."), with shapes."""
    return {prefix + name: value.shape for name, value in layer.state_dict().items()}


def load_layer(layer: reference.RecurrentLayer, weights: dict[str, np.ndarray], prefix: str) -> None:
    """The weights under the prefix into the layer (strict: every one of its weights, nothing else)."""
    layer.load_state_dict({name[len(prefix) :]: value for name, value in weights.items() if name.startswith(prefix)})


def read_weights(checkpoint: Path, expected: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """The checkpoint's weights, checked against the expected names and shapes, in float64."""
    return {name: value.astype(np.float64) for name, value in read_model_weights(checkpoint, expected).items()}


def log_softmax(scores: np.ndarray) -> np.ndarray:
    """log softmax over the last axis (..., V), shifted by the maximum so that nothing overflows."""
    shifted = scores - scores.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))

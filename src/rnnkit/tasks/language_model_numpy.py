"""The language model's forward pass in NumPy alone, for `rnnkit sample --engine numpy`.

It reads the same weights (torch.nn names) through the NumPy engine (rnnkit.reference) and never
imports torch, so sampling works where torch is not installed.

Dimension letters: T time, E embedding size, H hidden size, V vocabulary.
"""
from __future__ import annotations

import numpy as np

from rnnkit import reference
from rnnkit.config import ModelConfig
from rnnkit.errors import UsageError

RECURRENT_PREFIX = "rnn."


def build_reference_layer(model: ModelConfig):
    """The NumPy twin of rnnkit.tasks.language_model.build_recurrent_layer."""
    layer = {"rnn": reference.RNN, "lstm": reference.LSTM, "gru": reference.GRU}[model.cell]
    return layer(model.embedding_size, model.hidden_size, model.num_layers, **model.cell_spec().keywords())


class NumpyEngine:
    """Step-by-step generation in float64: feed token ids, get the next token's logits."""

    def __init__(self, model: ModelConfig, weights: dict[str, np.ndarray]) -> None:
        try:
            self.embedding = weights["embedding.weight"].astype(np.float64)  # (V, E)
            self.decoder_weight = weights["decoder.weight"].astype(np.float64)  # (V, H)
            self.decoder_bias = weights["decoder.bias"].astype(np.float64)  # (V,)
            self.rnn = build_reference_layer(model)
            self.rnn.load_state_dict(
                {name[len(RECURRENT_PREFIX):]: value for name, value in weights.items() if name.startswith(RECURRENT_PREFIX)}
            )
        except (KeyError, ValueError) as error:
            raise UsageError(f"the weights do not fit the run's model config ({error})") from None
        self.reset()

    def reset(self) -> None:
        self.state = None  # zeros, as the torch model starts

    def feed(self, ids: list[int]) -> np.ndarray:
        x = self.embedding[np.asarray(ids)][:, None, :]  # (T, 1, E)
        output, self.state = self.rnn.forward(x, self.state)  # (T, 1, H)
        return output[-1, 0] @ self.decoder_weight.T + self.decoder_bias  # (V,)

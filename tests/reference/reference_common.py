"""Shared pieces of the NumPy-engine tests: the variants, a random problem, its loss and gradients."""

from __future__ import annotations

import numpy as np

from helpers import VARIANTS, variant_id  # noqa: F401  (re-exported for the tests here)
from rnnkit import reference

CLASSES = {"rnn": reference.RNN, "lstm": reference.LSTM, "gru": reference.GRU}


def make_layer(kind, keywords, input_size=3, hidden_size=2, num_layers=1, bidirectional=False, seed=0, **options):
    return CLASSES[kind](
        input_size, hidden_size, num_layers, bidirectional=bidirectional, seed=seed, **keywords, **options
    )


class Problem:
    """Random input, initial state and upstream gradients for a layer; the scalar loss
    sum(output * d_output) + sum(final * d_final) over every final state."""

    def __init__(self, layer, steps, batch, lengths=None, seed=1):
        rng = np.random.default_rng(seed)
        states = 2 if layer.spec.has_cell_state else 1
        state_shape = (layer.num_layers * layer.directions, batch, layer.hidden_size)
        self.layer, self.lengths = layer, lengths
        self.x = rng.standard_normal((steps, batch, layer.input_size))  # (T, B, I)
        self.hx = [rng.standard_normal(state_shape) for _ in range(states)]  # (L*D, B, H)
        self.d_output = rng.standard_normal((steps, batch, layer.directions * layer.hidden_size))  # (T, B, D*H)
        self.d_state = [rng.standard_normal(state_shape) for _ in range(states)]  # (L*D, B, H)

    def pack(self, states):
        return tuple(states) if self.layer.spec.has_cell_state else states[0]

    def unpack(self, state):
        return tuple(state) if self.layer.spec.has_cell_state else (state,)

    def loss(self) -> float:
        output, state = self.layer.forward(self.x, self.pack(self.hx), self.lengths)
        finals = self.unpack(state)
        return float((output * self.d_output).sum() + sum((s * d).sum() for s, d in zip(finals, self.d_state)))

    def gradients(self) -> dict[str, np.ndarray]:
        """The reference's gradients of the loss: every parameter, 'x' and 'hx0' ('hx1' for c)."""
        self.layer.forward(self.x, self.pack(self.hx), self.lengths)
        d_x, d_hx, grads = self.layer.backward(self.d_output, self.pack(self.d_state))
        return {"x": d_x, **{f"hx{k}": d for k, d in enumerate(self.unpack(d_hx))}, **grads}

    def finite_differences(self, epsilon=1e-6) -> dict[str, np.ndarray]:
        """Central differences of the loss for every element of every parameter, x and hx."""
        arrays = {"x": self.x, **{f"hx{k}": h for k, h in enumerate(self.hx)}, **dict(self.layer.named_parameters())}
        gradients = {}
        for name, array in arrays.items():
            gradient = np.zeros_like(array)
            for index in np.ndindex(array.shape):
                saved = array[index]
                array[index] = saved + epsilon
                plus = self.loss()
                array[index] = saved - epsilon
                minus = self.loss()
                array[index] = saved
                gradient[index] = (plus - minus) / (2 * epsilon)
            gradients[name] = gradient
        return gradients

"""One direction of one layer over a padded, time-major batch: the loop over time and its BPTT.

Dimension letters: T time, B batch, I input features, H hidden units.

A state is a tuple: (h,) for RNN and GRU, (h, c) for LSTM, each (B, H). A sequence b has
lengths[b] real steps; at a padded step its state stays unchanged and its output is zero. The
reverse direction reads each sequence from its own last real step backwards.
"""

from __future__ import annotations

import numpy as np

from rnnkit.reference import cells
from rnnkit.spec import CellSpec

State = tuple[np.ndarray, ...]


STEP_FUNCTIONS = {"rnn": "rnn", "gru": "gru", "mingru": "minimal", "minlstm": "minimal"}  # cells.<name>_step_*


def step_forward(spec: CellSpec, params: dict, x: np.ndarray, state: State):
    """One cell step on a state tuple: returns (new state, cache)."""
    if spec.kind == "lstm":
        (h, c), cache = cells.lstm_step_forward(spec, params, x, *state)
        return (h, c), cache
    h, cache = getattr(cells, f"{STEP_FUNCTIONS[spec.kind]}_step_forward")(spec, params, x, *state)
    return (h,), cache


def step_backward(spec: CellSpec, d_state: State, cache):
    """Backward of step_forward: returns (dx, d_state_prev, grads)."""
    if spec.kind == "lstm":
        dx, dh_prev, dc_prev, grads = cells.lstm_step_backward(*d_state, cache)
        return dx, (dh_prev, dc_prev), grads
    dx, dh_prev, grads = getattr(cells, f"{STEP_FUNCTIONS[spec.kind]}_step_backward")(*d_state, cache)
    return dx, (dh_prev,), grads


def reading_order(lengths: np.ndarray, steps: int) -> np.ndarray:
    """Time index the reverse direction reads at each step, per sequence; padded steps stay put.

    The map is its own inverse, so the same gather turns outputs back into input order.
    """
    t = np.arange(steps)[:, None]  # (T, 1)
    return np.where(t < lengths, lengths - 1 - t, t)  # (T, B)


def reorder(array: np.ndarray, order: np.ndarray) -> np.ndarray:
    return array[order, np.arange(array.shape[1])]  # (T, B, ·)


def direction_forward(spec: CellSpec, params: dict, x: np.ndarray, state: State, lengths: np.ndarray, reverse: bool):
    """Run one direction over x (T, B, I): returns (outputs (T, B, H), final state, cache)."""
    steps = x.shape[0]
    order = reading_order(lengths, steps) if reverse else None
    if reverse:
        x = reorder(x, order)  # (T, B, I)
    outputs = np.zeros(x.shape[:2] + state[0].shape[1:], dtype=x.dtype)  # (T, B, H)
    caches = []
    for t in range(steps):
        real = (t < lengths)[:, None]  # (B, 1)
        new_state, cache = step_forward(spec, params, x[t], state)
        state = tuple(np.where(real, new, old) for new, old in zip(new_state, state))
        outputs[t] = np.where(real, new_state[0], 0.0)  # (B, H)
        caches.append(cache)
    if reverse:
        outputs = reorder(outputs, order)  # (T, B, H)
    return outputs, state, (spec, x.shape, lengths, order, caches)


def direction_backward(d_outputs: np.ndarray, d_state: State, cache):
    """Backward of direction_forward: returns (d_x (T, B, I), d_state of the initial state, grads)."""
    spec, x_shape, lengths, order, caches = cache
    if order is not None:
        d_outputs = reorder(d_outputs, order)  # (T, B, H)
    d_x = np.zeros(x_shape, dtype=d_outputs.dtype)  # (T, B, I)
    grads: dict[str, np.ndarray] = {}
    for t in reversed(range(len(caches))):
        real = (t < lengths)[:, None]  # (B, 1)
        d_new = [np.where(real, d, 0.0) for d in d_state]  # gradients of the cell's new state
        d_new[0] = d_new[0] + np.where(real, d_outputs[t], 0.0)  # (B, H)  the output is the new h
        d_x[t], d_prev, step_grads = step_backward(spec, tuple(d_new), caches[t])
        d_state = tuple(np.where(real, dp, d) for dp, d in zip(d_prev, d_state))
        for name, value in step_grads.items():
            grads[name] = grads[name] + value if name in grads else value
    if order is not None:
        d_x = reorder(d_x, order)  # (T, B, I)
    return d_x, d_state, grads

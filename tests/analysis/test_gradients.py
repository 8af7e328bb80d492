"""Gradient flow through time against direct autograd on a hand-unrolled cell, and the step Jacobians
of a vanilla RNN against their closed form diag(φ'(a_t)) W_hh."""

import pytest
import torch

from rnnkit import nn as rnn
from rnnkit.analysis import gradient_flow, step_jacobian_singular_values, weight_singular_values


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_gradient_flow_equals_autograd_through_a_hand_unrolled_cell(cell):
    torch.manual_seed(0)
    layer = {"rnn": rnn.RNN, "lstm": rnn.LSTM, "gru": rnn.GRU}[cell](3, 4).double()
    twin = {"rnn": rnn.RNNCell, "lstm": rnn.LSTMCell, "gru": rnn.GRUCell}[cell](3, 4).double()
    twin.load_state_dict({name[:-3]: value for name, value in layer.state_dict().items()})
    x = torch.randn(7, 2, 3, dtype=torch.float64)
    flow = gradient_flow(layer, x)
    state = None
    hs = []
    for t in range(7):
        state = twin(x[t], state)
        h = state[0] if cell == "lstm" else state
        hs.append(h)
    gradients = torch.autograd.grad(hs[-1].sum(), hs[:-1])
    expected = torch.stack([g.norm(dim=-1) for g in gradients]).mean(dim=1)
    torch.testing.assert_close(flow, expected)
    assert flow.shape == (6,)


def test_rnn_step_jacobians_are_diag_tanh_prime_times_w_hh():
    torch.manual_seed(1)
    layer = rnn.RNN(3, 4).double()
    x = torch.randn(5, 3, dtype=torch.float64)
    singular = step_jacobian_singular_values(layer, x)
    h = torch.zeros(4, dtype=torch.float64)
    expected = []
    with torch.no_grad():
        for t in range(5):
            a = layer.weight_ih_l0 @ x[t] + layer.bias_ih_l0 + layer.weight_hh_l0 @ h + layer.bias_hh_l0
            if t > 0:
                expected.append(torch.linalg.svdvals(torch.diag(1 - torch.tanh(a) ** 2) @ layer.weight_hh_l0))
            h = torch.tanh(a)
    torch.testing.assert_close(singular, torch.stack(expected))
    blocks = weight_singular_values(rnn.LSTM(3, 4))
    assert list(blocks) == ["i", "f", "g", "o"] and all(v.shape == (4,) for v in blocks.values())


def test_bad_arguments():
    with pytest.raises(ValueError, match="expected an rnnkit.nn recurrent layer"):
        gradient_flow(torch.nn.LSTM(3, 4), torch.randn(5, 1, 3))
    with pytest.raises(ValueError, match="T >= 2 steps"):
        gradient_flow(rnn.LSTM(3, 4), torch.randn(1, 1, 3))

"""The variants of EQUATIONS.md: parameter layout, exact equations, every layer option."""

import math

import pytest
import torch
from common import OUR_CLASSES, VARIANTS, random_batch, variant_id
from torch.nn.utils.rnn import pack_padded_sequence

from helpers import assert_close
from rnnkit import nn as rnn


@pytest.mark.parametrize(
    "kwargs,rows,peephole_rows",
    [
        ({}, 4, 0),
        ({"peephole": True}, 4, 3),
        ({"gates": ""}, 1, 0),
        ({"gates": "", "peephole": True}, 1, None),
        ({"gates": "fo"}, 3, 0),
        ({"gates": "io", "peephole": True}, 3, 2),
        ({"coupled": True}, 3, 0),
        ({"coupled": True, "peephole": True}, 3, 2),
    ],
)
def test_lstm_parameter_layout(kwargs, rows, peephole_rows):
    layer = rnn.LSTM(3, 5, num_layers=2, bidirectional=True, **kwargs)
    shapes = {name: tuple(p.shape) for name, p in layer.named_parameters()}
    for suffix in ("_l0", "_l0_reverse", "_l1", "_l1_reverse"):
        assert shapes[f"weight_hh{suffix}"] == (rows * 5, 5)
        assert shapes[f"bias_ih{suffix}"] == (rows * 5,)
        if peephole_rows:
            assert shapes[f"weight_ch{suffix}"] == (peephole_rows * 5,)
        else:
            assert f"weight_ch{suffix}" not in shapes
    assert shapes["weight_ih_l1"] == (rows * 5, 10)


def test_gru_without_reset_gate_has_two_blocks():
    shapes = {name: tuple(p.shape) for name, p in rnn.GRU(3, 5, reset_gate=False).named_parameters()}
    assert shapes["weight_ih_l0"] == (10, 3)


def test_gateless_lstm_is_exactly_the_accumulator():
    torch.manual_seed(0)
    layer = rnn.LSTM(3, 4, gates="").double()
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    output, (h_n, c_n) = layer(x)
    h = c = torch.zeros(2, 4, dtype=torch.float64)
    for t in range(6):
        g = torch.tanh(x[t] @ layer.weight_ih_l0.T + layer.bias_ih_l0 + h @ layer.weight_hh_l0.T + layer.bias_hh_l0)
        c = c + g
        h = torch.tanh(c)
        assert_close(output[t], h, f"h_{t}", rtol=1e-13, atol=1e-14)
    assert_close(c_n[0], c, "c_n", rtol=1e-13, atol=1e-14)


def test_peephole_lstm_step_by_hand():
    torch.manual_seed(0)
    cell = rnn.LSTMCell(3, 4, peephole=True).double()
    x, h, c = (torch.randn(2, n, dtype=torch.float64) for n in (3, 4, 4))
    W = x @ cell.weight_ih.T + cell.bias_ih + h @ cell.weight_hh.T + cell.bias_hh
    zi, zf, zg, zo = W.chunk(4, dim=1)
    pi, pf, po = cell.weight_ch.chunk(3)
    i, f = torch.sigmoid(zi + pi * c), torch.sigmoid(zf + pf * c)
    c_new = f * c + i * torch.tanh(zg)
    h_new = torch.sigmoid(zo + po * c_new) * torch.tanh(c_new)
    h_ours, c_ours = cell(x, (h, c))
    assert_close(h_ours, h_new, "h", rtol=1e-13, atol=1e-14)
    assert_close(c_ours, c_new, "c", rtol=1e-13, atol=1e-14)


def test_coupled_lstm_uses_one_minus_f():
    torch.manual_seed(0)
    cell = rnn.LSTMCell(3, 4, coupled=True).double()
    x, h, c = (torch.randn(2, n, dtype=torch.float64) for n in (3, 4, 4))
    zf, zg, zo = (x @ cell.weight_ih.T + cell.bias_ih + h @ cell.weight_hh.T + cell.bias_hh).chunk(3, dim=1)
    f = torch.sigmoid(zf)
    c_new = f * c + (1 - f) * torch.tanh(zg)
    assert_close(cell(x, (h, c))[1], c_new, "c", rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("reset", ["after", "before"])
def test_gru_reset_forms_by_hand(reset):
    torch.manual_seed(0)
    cell = rnn.GRUCell(3, 4, reset=reset).double()
    x, h = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64)
    xr, xz, xn = (x @ cell.weight_ih.T + cell.bias_ih).chunk(3, dim=1)
    Wr, Wz, Wn = cell.weight_hh.chunk(3)
    br, bz, bn = cell.bias_hh.chunk(3)
    r, z = torch.sigmoid(xr + h @ Wr.T + br), torch.sigmoid(xz + h @ Wz.T + bz)
    if reset == "after":
        n = torch.tanh(xn + r * (h @ Wn.T + bn))
    else:
        n = torch.tanh(xn + (r * h) @ Wn.T + bn)
    assert_close(cell(x, h), (1 - z) * n + z * h, "h", rtol=1e-13, atol=1e-14)


def test_forget_bias_sets_the_total_forget_bias():
    layer = rnn.LSTM(3, 4, num_layers=2, forget_bias=1.0)
    for suffix in ("_l0", "_l1"):
        total = getattr(layer, "bias_ih" + suffix) + getattr(layer, "bias_hh" + suffix)
        assert torch.allclose(total[4:8], torch.ones(4))
        assert not torch.allclose(total[:4], torch.ones(4))
    cell = rnn.LSTMCell(3, 4, gates="fo", forget_bias=2.0)
    assert torch.allclose((cell.bias_ih + cell.bias_hh)[:4], torch.full((4,), 2.0))


@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
def test_every_variant_with_every_layer_option(variant):
    """2 layers, both directions, dropout, batch_first, packed input: the packed batch equals each
    sequence run alone, and gradients reach every parameter."""
    kind, kwargs = variant
    torch.manual_seed(0)
    layer = OUR_CLASSES[kind](3, 5, num_layers=2, bidirectional=True, dropout=0.3, batch_first=True, **kwargs).double()
    x, lengths = random_batch()
    batch_first_x = x.transpose(0, 1)
    layer.train()
    out, _ = layer(pack_padded_sequence(batch_first_x, lengths, batch_first=True, enforce_sorted=False))
    loss = out.data.pow(2).sum() + sum(p.sum() * 0 for p in layer.parameters())
    loss.backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reached {name}"
    layer.eval()
    out, state = layer(pack_padded_sequence(batch_first_x, lengths, batch_first=True, enforce_sorted=False))
    padded, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True)
    final_h = state[0] if kind == "lstm" else state
    for b, n in enumerate(lengths.tolist()):
        alone, alone_state = layer(batch_first_x[b : b + 1, :n])
        assert_close(padded[b, :n], alone[0], f"sequence {b} output", rtol=1e-12, atol=1e-13)
        alone_h = alone_state[0] if kind == "lstm" else alone_state
        assert_close(final_h[:, b], alone_h[:, 0], f"sequence {b} final h", rtol=1e-12, atol=1e-13)
        assert torch.all(padded[b, n:] == 0)


def test_relu_rnn_is_not_tanh():
    torch.manual_seed(0)
    layer = rnn.RNN(3, 4, nonlinearity="relu")
    out, _ = layer(torch.randn(5, 2, 3) * 3)
    assert (out >= 0).all() and (out > 1).any()
    assert math.isclose(float((out == 0).float().mean()), 0.5, abs_tol=0.4)

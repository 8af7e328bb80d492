"""Wrong arguments raise errors that name the argument, what was given and what is accepted."""
import pytest
import torch

from rnnkit import nn as rnn


@pytest.mark.parametrize(
    "build,message",
    [
        (lambda: rnn.LSTM(3, 4, gates="ifx"), "gates: unknown gate letter(s) 'x'"),
        (lambda: rnn.LSTM(3, 4, gates="oi"), "gates: got 'oi'"),
        (lambda: rnn.LSTM(3, 4, gates="fo", coupled=True), "coupled: coupled=True"),
        (lambda: rnn.LSTMCell(3, 4, gates="if", coupled=True, peephole=1), "peephole: expected True or False"),
        (lambda: rnn.GRU(3, 4, reset="middle"), "reset: got 'middle', expected 'after' or 'before'"),
        (lambda: rnn.RNN(3, 4, nonlinearity="sigmoid"), "nonlinearity: got 'sigmoid'"),
        (lambda: rnn.LSTM(3, 4, proj_size=2), "proj_size: got 2"),
        (lambda: rnn.LSTM(0, 4), "input_size: expected a positive integer, got 0"),
        (lambda: rnn.GRU(3, 4, num_layers=2, dropout=1.5), "dropout: expected a probability in [0, 1], got 1.5"),
        (lambda: rnn.LSTM(3, 4, peephole=True, fused=True), "fused: fused=True needs the standard"),
    ],
)
def test_bad_constructor_arguments(build, message):
    with pytest.raises(ValueError) as error:
        build()
    assert message in str(error.value)


def test_unknown_variant_keyword_for_the_cell_kind():
    with pytest.raises(TypeError):
        rnn.GRU(3, 4, peephole=True)


@pytest.mark.parametrize("fused", [True, False])
def test_bad_forward_arguments(fused):
    layer = rnn.LSTM(3, 4, num_layers=2, fused=fused)
    with pytest.raises(ValueError, match=r"input: LSTM expects a 3-D .* got 4-D"):
        layer(torch.randn(2, 2, 2, 3))
    with pytest.raises(RuntimeError, match="input: input.size\\(-1\\) must be equal to input_size. Expected 3, got 5"):
        layer(torch.randn(2, 2, 5))
    with pytest.raises(RuntimeError, match=r"hx: expected h_0 of shape \(2, 2, 4\)"):
        layer(torch.randn(5, 2, 3), (torch.zeros(1, 2, 4), torch.zeros(1, 2, 4)))
    with pytest.raises(ValueError, match=r"hx: LSTM expects a tuple \(h_0, c_0\)"):
        layer(torch.randn(5, 2, 3), torch.zeros(2, 2, 4))
    with pytest.raises(ValueError, match="input: dtype torch.float64 does not match"):
        layer(torch.randn(5, 2, 3, dtype=torch.float64))


def test_state_dict_with_missing_or_misshapen_entries():
    layer = rnn.LSTM(3, 4, peephole=True)
    state = layer.state_dict()
    del state["weight_ch_l0"]
    with pytest.raises(RuntimeError, match="weight_ch_l0"):
        layer.load_state_dict(state, strict=True)
    with pytest.raises(RuntimeError, match="weight_hh_l0"):
        rnn.LSTM(3, 4).load_state_dict({**rnn.LSTM(3, 4).state_dict(), "weight_hh_l0": torch.zeros(16, 5)})
    with pytest.raises(RuntimeError, match="weight_ih_l0"):
        rnn.LSTM(3, 4, gates="fo").load_state_dict(torch.nn.LSTM(3, 4).state_dict())

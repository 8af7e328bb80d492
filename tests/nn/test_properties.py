"""Properties every recurrent layer must have, for every variant (DESIGN.md habit 5)."""

import pytest
import torch
from common import OUR_CLASSES, VARIANTS, variant_id

from helpers import assert_close
from rnnkit import nn as rnn

CELLS = {"rnn": rnn.RNNCell, "lstm": rnn.LSTMCell, "gru": rnn.GRUCell}


def _layer(kind, kwargs, **options):
    torch.manual_seed(0)
    return OUR_CLASSES[kind](3, 5, **options, **kwargs).double()


def _h(state):
    return state[0] if isinstance(state, tuple) else state


def _detach(state):
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
def test_windowed_forward_with_carried_state_equals_one_long_forward(variant):
    kind, kwargs = variant
    layer = _layer(*variant, num_layers=2)
    x = torch.randn(12, 3, 3, dtype=torch.float64)
    whole, whole_state = layer(x)
    state, pieces = None, []
    for window in x.split(5):
        out, state = layer(window, state)
        pieces.append(out)
        state = _detach(state)  # truncated BPTT: values flow on, gradients stop
        assert not _h(state).requires_grad
    assert_close(torch.cat(pieces), whole, "windowed output", rtol=1e-12, atol=1e-13)
    assert_close(_h(state), _h(whole_state), "final h", rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
def test_reverse_direction_equals_forward_on_flipped_input(variant):
    kind, kwargs = variant
    layer = _layer(kind, kwargs, bidirectional=True)
    with torch.no_grad():
        for name, p in layer.named_parameters():
            if name.endswith("_reverse"):
                p.copy_(getattr(layer, name[: -len("_reverse")]))
    x = torch.randn(7, 2, 3, dtype=torch.float64)
    out, state = layer(x)
    flipped_out, flipped_state = layer(x.flip(0))
    assert_close(out[:, :, 5:], flipped_out[:, :, :5].flip(0), "reverse output", rtol=1e-12, atol=1e-13)
    assert_close(_h(state)[1], _h(flipped_state)[0], "reverse final h", rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
def test_one_step_layer_equals_the_cell(variant):
    kind, kwargs = variant
    layer = _layer(kind, kwargs)
    cell = CELLS[kind](3, 5, **kwargs).double()
    cell.load_state_dict({name[: -len("_l0")]: p for name, p in layer.state_dict().items()}, strict=True)
    x = torch.randn(1, 4, 3, dtype=torch.float64)
    h0 = torch.randn(1, 4, 5, dtype=torch.float64)
    layer_state = (h0, torch.randn_like(h0)) if kind == "lstm" else h0
    cell_state = tuple(s[0] for s in layer_state) if kind == "lstm" else h0[0]
    out, _ = layer(x, layer_state)
    assert_close(out[0], _h(cell(x[0], cell_state)), "h_1", rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
def test_padded_steps_leave_final_state_unchanged(variant):
    kind, kwargs = variant
    layer = _layer(kind, kwargs, num_layers=2, bidirectional=True)
    x = torch.randn(8, 3, 3, dtype=torch.float64)
    lengths = torch.tensor([8, 5, 3])
    _, state = layer(torch.nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False))
    garbage = x.clone()
    garbage[5:, 1] = 1e3  # whatever sits past a sequence's end must not matter
    garbage[3:, 2] = -1e3
    _, state2 = layer(torch.nn.utils.rnn.pack_padded_sequence(garbage, lengths, enforce_sorted=False))
    truncated = layer(x[:3, 2:3])[1]
    for a, b in zip(_h(state), _h(state2)):
        assert_close(a, b, "final state with garbage padding", rtol=0, atol=0)
    assert_close(_h(state)[:, 2], _h(truncated)[:, 0], "final state = state at own last step", rtol=1e-12, atol=1e-13)


def test_detached_state_has_no_gradient_path():
    layer = rnn.LSTM(3, 5, fused=False)
    x = torch.randn(4, 2, 3, requires_grad=True)
    _, state = layer(x)
    out, _ = layer(torch.randn(4, 2, 3), _detach(state))
    out.sum().backward()
    assert x.grad is None

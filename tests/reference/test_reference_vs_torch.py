"""The NumPy engine against torch.nn autograd in float64, for the cells torch.nn has.

torch.nn's weights load into the reference with strict=True (same names, shapes and gate order);
outputs, final states, d_input, d_hx and every parameter gradient agree to ~1e-10.
"""

import numpy as np
import pytest
import torch
from reference_common import Problem, make_layer
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from helpers import assert_close

STANDARD = [("rnn", {"nonlinearity": "tanh"}), ("rnn", {"nonlinearity": "relu"}), ("lstm", {}), ("gru", {})]
TORCH_CLASSES = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}
TOLERANCE = {"rtol": 1e-10, "atol": 1e-10}


def torch_results(module, problem):
    """Output, final states and gradients of the problem's loss by torch autograd."""
    x = torch.tensor(problem.x, requires_grad=True)  # (T, B, I)
    hx = [torch.tensor(h, requires_grad=True) for h in problem.hx]  # (L*D, B, H)
    state = tuple(hx) if len(hx) == 2 else hx[0]
    if problem.lengths is None:
        output, final = module(x, state)
    else:
        packed = pack_padded_sequence(x, torch.tensor(problem.lengths), enforce_sorted=False)
        packed_output, final = module(packed, state)
        output, _ = pad_packed_sequence(packed_output, total_length=x.shape[0])  # (T, B, D*H)
    finals = final if len(hx) == 2 else (final,)
    loss = (output * torch.from_numpy(problem.d_output)).sum()
    loss = loss + sum((s * torch.from_numpy(d)).sum() for s, d in zip(finals, problem.d_state))
    loss.backward()
    grads = {"x": x.grad, **{f"hx{k}": h.grad for k, h in enumerate(hx)}}
    grads.update({name: p.grad for name, p in module.named_parameters()})
    return output, finals, grads


@pytest.mark.parametrize("lengths", [None, [4, 1, 3]], ids=["full", "padded"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("kind, keywords", STANDARD, ids=["rnn-tanh", "rnn-relu", "lstm", "gru"])
def test_matches_torch_autograd(kind, keywords, num_layers, bidirectional, lengths):
    torch.manual_seed(0)
    module = TORCH_CLASSES[kind](3, 2, num_layers, bidirectional=bidirectional, **keywords).double()
    layer = make_layer(kind, keywords, 3, 2, num_layers, bidirectional)
    layer.load_state_dict({name: p.detach().numpy() for name, p in module.state_dict().items()}, strict=True)
    problem = Problem(layer, steps=4, batch=3, lengths=lengths)

    output, state = layer.forward(problem.x, problem.pack(problem.hx), lengths)
    torch_output, torch_finals, torch_grads = torch_results(module, problem)
    assert_close(output, torch_output, name="output", **TOLERANCE)
    for name, ours, theirs in zip(("h_n", "c_n"), problem.unpack(state), torch_finals):
        assert_close(ours, theirs, name=name, **TOLERANCE)
    ours = problem.gradients()
    assert set(ours) == set(torch_grads)
    for name, gradient in torch_grads.items():
        assert_close(ours[name], gradient, name=name, **TOLERANCE)


def test_reference_state_dict_loads_into_torch_strictly():
    layer = make_layer("gru", {}, 3, 2, num_layers=2, bidirectional=True)
    module = torch.nn.GRU(3, 2, 2, bidirectional=True).double()
    module.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()}, strict=True)
    x = np.random.default_rng(0).standard_normal((3, 2, 3))  # (T, B, I)
    output, h_n = layer.forward(x)
    torch_output, torch_h_n = module(torch.from_numpy(x))
    assert_close(output, torch_output, name="output", **TOLERANCE)
    assert_close(h_n, torch_h_n, name="h_n", **TOLERANCE)

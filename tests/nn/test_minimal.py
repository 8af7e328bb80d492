"""minGRU and minLSTM (rnnkit.nn.minimal): the parallel scan against the step-by-step loop, the torch engine
against the NumPy engine's hand-written BPTT, autograd's gradcheck, long and saturated sequences."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit import reference
from rnnkit.nn import MinGRU, MinGRUCell, MinLSTM, MinLSTMCell
from rnnkit.spec import CellSpec

LAYERS = {"mingru": MinGRU, "minlstm": MinLSTM}
CELLS = {"mingru": MinGRUCell, "minlstm": MinLSTMCell}


def run(layer, x, lengths, h0, mode):
    """Outputs (T, B, D*H), h_n and the gradients of a loss of both with respect to x, h0 (if given) and every
    parameter, in the given mode."""
    layer.mode = mode
    x = x.detach().requires_grad_(True)
    h0 = h0.detach().requires_grad_(True) if h0 is not None else None
    if lengths is not None:
        packed, h_n = layer(pack_padded_sequence(x, lengths, enforce_sorted=False), h0)
        output = pad_packed_sequence(packed, total_length=x.shape[0])[0]
    else:
        output, h_n = layer(x, h0)
    weights = torch.linspace(-1, 1, output.numel(), dtype=output.dtype).reshape(output.shape)
    loss = (output * weights).sum() + (h_n**2).sum()
    inputs = [x, *([h0] if h0 is not None else []), *layer.parameters()]
    return output.detach(), h_n.detach(), torch.autograd.grad(loss, inputs)


CASES = [
    # (layers, bidirectional, packed lengths, initial state)
    (1, False, None, False),
    (1, False, None, True),
    (2, True, None, True),
    (1, False, [9, 4, 1], True),
    (2, True, [9, 6, 2], False),
    (3, True, [9, 9, 3], True),
]


@pytest.mark.parametrize("kind", sorted(LAYERS))
@pytest.mark.parametrize("layers, bidirectional, lengths, with_state", CASES)
def test_parallel_equals_sequential_in_float64(kind, layers, bidirectional, lengths, with_state):
    torch.manual_seed(0)
    layer = LAYERS[kind](4, 5, layers, bidirectional=bidirectional, dtype=torch.float64)
    x = torch.randn(9, 3, 4, dtype=torch.float64) * 2
    h0 = torch.randn(layers * (2 if bidirectional else 1), 3, 5, dtype=torch.float64) * 3 if with_state else None
    lengths = torch.tensor(lengths) if lengths is not None else None
    parallel, sequential = run(layer, x, lengths, h0, "parallel"), run(layer, x, lengths, h0, "sequential")
    torch.testing.assert_close(parallel[0], sequential[0], rtol=0, atol=1e-10)
    torch.testing.assert_close(parallel[1], sequential[1], rtol=0, atol=1e-10)
    assert len(parallel[2]) == len(sequential[2])
    for ours, loop in zip(parallel[2], sequential[2]):
        torch.testing.assert_close(ours, loop, rtol=0, atol=1e-10)
    if lengths is not None:  # padded steps output zeros
        assert (parallel[0][lengths.min() :, lengths.argmin()] == 0).all()


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_float32_parallel_at_4096_steps(kind):
    torch.manual_seed(1)
    layer = LAYERS[kind](8, 16, dtype=torch.float64)
    x = torch.randn(4096, 2, 8, dtype=torch.float64)
    h0 = torch.randn(1, 2, 16, dtype=torch.float64)
    exact, exact_h = run(layer, x, None, h0, "sequential")[:2]
    single = layer.float()
    output, h_n, _ = run(single, x.float(), None, h0.float(), "parallel")
    torch.testing.assert_close(output.double(), exact, rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(h_n.double(), exact_h, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("kind", sorted(LAYERS))
@pytest.mark.parametrize("mode", ["parallel", "sequential"])
def test_autograd_gradcheck(kind, mode):
    torch.manual_seed(2)
    layer = LAYERS[kind](3, 2, 2, bidirectional=True, dtype=torch.float64, mode=mode)
    x = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(4, 2, 2, dtype=torch.float64, requires_grad=True)

    def function(x, h0, *weights):
        parameters = dict(zip([name for name, _ in layer.named_parameters()], weights))
        output, h_n = torch.func.functional_call(layer, parameters, (x, h0))
        return output, h_n

    assert torch.autograd.gradcheck(function, (x, h0, *[p.detach().requires_grad_(True) for p in layer.parameters()]))


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_the_torch_engine_against_the_numpy_engine(kind):
    rng = np.random.default_rng(3)
    ours = getattr(reference, LAYERS[kind].__name__)(4, 3, 2, bidirectional=True, seed=1)
    x, h0 = rng.standard_normal((7, 3, 4)), rng.standard_normal((4, 3, 3))
    lengths = np.array([7, 2, 5])
    output, h_n = ours.forward(x, h0, lengths)
    d_output, d_h_n = rng.standard_normal(output.shape), rng.standard_normal(h_n.shape)
    d_x, d_h0, grads = ours.backward(d_output, d_h_n)
    layer = LAYERS[kind](4, 3, 2, bidirectional=True, dtype=torch.float64)
    layer.load_state_dict({name: torch.from_numpy(value) for name, value in ours.state_dict().items()}, strict=True)
    x_t, h0_t = torch.tensor(x, requires_grad=True), torch.tensor(h0, requires_grad=True)
    packed, h_n_t = layer(pack_padded_sequence(x_t, torch.tensor(lengths), enforce_sorted=False), h0_t)
    output_t = pad_packed_sequence(packed, total_length=7)[0]
    ((output_t * torch.from_numpy(d_output)).sum() + (h_n_t * torch.from_numpy(d_h_n)).sum()).backward()
    np.testing.assert_allclose(output_t.detach().numpy(), output, atol=1e-12)
    np.testing.assert_allclose(h_n_t.detach().numpy(), h_n, atol=1e-12)
    np.testing.assert_allclose(x_t.grad.numpy(), d_x, atol=1e-12)
    np.testing.assert_allclose(h0_t.grad.numpy(), d_h0, atol=1e-12)
    for name, parameter in layer.named_parameters():
        np.testing.assert_allclose(parameter.grad.numpy(), grads[name], atol=1e-12, err_msg=name)


@pytest.mark.parametrize("kind", sorted(LAYERS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("bias", [-40.0, 40.0])
def test_ten_thousand_saturated_steps_stay_finite(kind, dtype, bias):
    """Gates driven to 0 or 1 (biases of ±40, big inputs) for T = 10,000: outputs and gradients finite."""
    torch.manual_seed(4)
    layer = LAYERS[kind](3, 4, dtype=dtype)
    with torch.no_grad():
        layer.bias_ih_l0[:8] = bias  # the gate blocks (minLSTM's third block is the candidate)
    x = (torch.randn(10_000, 2, 3, dtype=dtype) * 50).requires_grad_(True)
    output, h_n = layer(x, torch.randn(1, 2, 4, dtype=dtype))
    (output.sum() + h_n.sum()).backward()
    assert torch.isfinite(output).all() and torch.isfinite(h_n).all()
    assert torch.isfinite(x.grad).all() and all(torch.isfinite(p.grad).all() for p in layer.parameters())
    sequential = LAYERS[kind](3, 4, dtype=dtype, mode="sequential")
    sequential.load_state_dict(layer.state_dict())
    with torch.no_grad():
        expected = sequential(x, None)[0]
        torch.testing.assert_close(layer(x)[0], expected, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_cells_batch_first_and_unbatched_agree_with_the_layer(kind):
    torch.manual_seed(5)
    layer = LAYERS[kind](3, 4, dtype=torch.float64)
    cell = CELLS[kind](3, 4, dtype=torch.float64)
    cell.load_state_dict({"weight_ih": layer.weight_ih_l0, "bias_ih": layer.bias_ih_l0})
    x, h0 = torch.randn(6, 2, 3, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64)
    output, h_n = layer(x, h0[None])
    h = h0
    for t in range(6):
        h = cell(x[t], h)
        torch.testing.assert_close(h, output[t])
    torch.testing.assert_close(h, h_n[0])
    first = LAYERS[kind](3, 4, batch_first=True, dtype=torch.float64)
    first.load_state_dict(layer.state_dict())
    torch.testing.assert_close(first(x.transpose(0, 1), h0[None])[0].transpose(0, 1), output)
    torch.testing.assert_close(layer(x[:, 0], h0[:1])[0], output[:, 0])  # unbatched
    assert layer.mode is None and layer(x[:1])[0].shape == (1, 2, 4)  # one step: the loop


def test_half_precision_is_scanned_in_float32():
    torch.manual_seed(6)
    layer = MinGRU(4, 8)
    x = torch.randn(2048, 2, 4)
    expected = layer(x)[0]
    half = MinGRU(4, 8, dtype=torch.bfloat16)
    half.load_state_dict(layer.state_dict())
    output = half(x.bfloat16())[0]
    assert output.dtype == torch.bfloat16 and torch.isfinite(output.float()).all()
    torch.testing.assert_close(output.float(), expected, rtol=0.05, atol=0.05)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="mode: expected 'parallel' or 'sequential'"):
        MinGRU(3, 4, mode="fast")
    with pytest.raises(TypeError, match="peephole"):
        MinLSTM(3, 4, peephole=True)
    with pytest.raises(ValueError, match="minlstm has no variants"):
        CellSpec("minlstm", peephole=True)
    with pytest.raises(ValueError, match="hidden_size"):
        MinGRU(3, 0)
    with pytest.raises(ValueError, match="hx has shape"):
        MinGRU(3, 4)(torch.randn(5, 2, 3), torch.randn(2, 2, 4))
    with pytest.raises(ValueError, match="features"):
        MinGRU(3, 4)(torch.randn(5, 2, 7))

"""rnnkit.nn against torch.nn: same weights in, same outputs, states and gradients out."""

import itertools

import pytest
import torch
from common import TORCH_CLASSES, layer_pair, packed, random_batch
from torch.nn.utils.rnn import PackedSequence

from helpers import assert_close
from rnnkit import nn as rnn
from rnnkit.nn import kernels

KINDS = ["rnn", "lstm", "gru"]
GRID = list(itertools.product(KINDS, [1, 2], [False, True], [False, True], ["padded", "packed"], [False, True]))


def _flatten(outputs):
    """Output tensor(s) and final state(s) of a layer call, as a flat list of tensors."""
    output, state = outputs
    if isinstance(output, PackedSequence):
        output = output.data
    return [output] + (list(state) if isinstance(state, tuple) else [state])


def _run(layer, x, hx, upstream_seed=7):
    tensors = _flatten(layer(x, hx))
    generator = torch.Generator().manual_seed(upstream_seed)
    loss = sum((t * torch.randn(t.shape, dtype=t.dtype, generator=generator)).sum() for t in tensors)
    loss.backward()
    return tensors


@pytest.mark.parametrize("kind,num_layers,bidirectional,batch_first,form,fused", GRID, ids=lambda v: str(v))
def test_outputs_states_and_gradients_equal_torch(kind, num_layers, bidirectional, batch_first, form, fused):
    theirs, ours = layer_pair(kind, num_layers, bidirectional, batch_first, fused=fused)
    x, lengths = random_batch()
    directions = 2 if bidirectional else 1
    h0 = torch.randn(num_layers * directions, 4, 5, dtype=torch.float64)
    hx = (h0, torch.randn_like(h0)) if kind == "lstm" else h0
    results = []
    for layer in (theirs, ours):
        xin = x.clone().requires_grad_(True)
        hin = tuple(h.clone().requires_grad_(True) for h in hx) if kind == "lstm" else hx.clone().requires_grad_(True)
        data = xin.transpose(0, 1) if batch_first else xin
        if form == "packed":
            data = packed(xin, lengths)  # packing is always time-major here
        tensors = _run(layer, data, hin)
        grads = [xin.grad] + ([h.grad for h in hin] if kind == "lstm" else [hin.grad])
        results.append((tensors, grads, {n: p.grad for n, p in layer.named_parameters()}))
    (t_out, t_grads, t_params), (o_out, o_grads, o_params) = results
    for i, (a, b) in enumerate(zip(o_out, t_out)):
        assert_close(a, b, f"output/state {i}", rtol=1e-10, atol=1e-12)
    for i, (a, b) in enumerate(zip(o_grads, t_grads)):
        assert_close(a, b, f"input/state gradient {i}", rtol=1e-10, atol=1e-12)
    assert o_params.keys() == t_params.keys()
    for name in t_params:
        assert_close(o_params[name], t_params[name], f"grad {name}", rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_state_dicts_interchange_both_ways(kind):
    ours = rnn.__dict__[kind.upper()](4, 6, num_layers=2, bidirectional=True)
    theirs = TORCH_CLASSES[kind](4, 6, num_layers=2, bidirectional=True)
    theirs.load_state_dict(ours.state_dict(), strict=True)
    ours2 = rnn.__dict__[kind.upper()](4, 6, num_layers=2, bidirectional=True)
    ours2.load_state_dict(theirs.state_dict(), strict=True)
    for name, value in ours.state_dict().items():
        assert torch.equal(ours2.state_dict()[name], value), name
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_default_layer_uses_torch_kernel_and_agrees_in_float32(kind):
    theirs = TORCH_CLASSES[kind](8, 16, 2)
    ours = rnn.__dict__[kind.upper()](8, 16, 2)
    assert ours.fused
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(10, 3, 8)
    assert torch.equal(ours(x)[0], theirs(x)[0])


def test_default_gru_layer_on_the_cpu_runs_rnnkit_kernel_and_agrees_in_float32(monkeypatch):
    theirs, ours = torch.nn.GRU(8, 16, 2), rnn.GRU(8, 16, 2)
    ours.load_state_dict(theirs.state_dict())
    calls = []
    original = kernels.FusedRecurrence.forward
    monkeypatch.setattr(
        kernels.FusedRecurrence, "forward", staticmethod(lambda *args: calls.append(1) or original(*args))
    )
    x = torch.randn(10, 3, 8)
    assert_close(ours(x)[0], theirs(x)[0], "output", rtol=1e-5, atol=1e-6)
    assert len(calls) == 2  # one call per layer


@pytest.mark.parametrize("kind", KINDS)
def test_unbatched_input_matches_torch(kind):
    theirs, ours = layer_pair(kind, num_layers=2, bidirectional=True)
    x = torch.randn(5, 3, dtype=torch.float64)
    for a, b in zip(_flatten(ours(x)), _flatten(theirs(x))):
        assert_close(a, b, "unbatched", rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_cells_match_torch_cells(kind):
    torch.manual_seed(3)
    name = {"rnn": "RNNCell", "lstm": "LSTMCell", "gru": "GRUCell"}[kind]
    theirs = getattr(torch.nn, name)(3, 5).double()
    ours = getattr(rnn, name)(3, 5).double()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(4, 3, dtype=torch.float64)
    h = torch.randn(4, 5, dtype=torch.float64)
    hx = (h, torch.randn_like(h)) if kind == "lstm" else h
    a, b = ours(x, hx), theirs(x, hx)
    for u, v in zip(a if kind == "lstm" else [a], b if kind == "lstm" else [b]):
        assert_close(u, v, name, rtol=1e-12, atol=1e-14)
    # unbatched, default state
    a, b = ours(x[0]), theirs(x[0])
    for u, v in zip(a if kind == "lstm" else [a], b if kind == "lstm" else [b]):
        assert_close(u, v, name + " unbatched", rtol=1e-12, atol=1e-14)


def test_dropout_between_layers_only_in_training():
    torch.manual_seed(0)
    layer = rnn.LSTM(3, 5, num_layers=2, dropout=0.5, fused=False)
    x = torch.randn(4, 2, 3)
    layer.eval()
    assert torch.equal(layer(x)[0], layer(x)[0])
    layer.train()
    torch.manual_seed(1)
    first = layer(x)[0]
    torch.manual_seed(2)
    assert not torch.equal(first, layer(x)[0])
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        single = rnn.LSTM(3, 5, num_layers=1, dropout=0.5, fused=False).train()  # no layer after the last: no dropout
    assert torch.equal(single(x)[0], single(x)[0])

"""PyTorch's own sample inputs for its recurrent modules (torch.testing._internal.common_modules, the
inputs of PyTorch's test_modules), run through rnnkit.nn with torch.nn's weights: the same outputs, and
first and second derivatives that pass gradcheck and gradgradcheck, as test_modules asks of torch.nn.
Inputs that need proj_size are left out (rnnkit refuses it)."""

import pytest
import torch
from torch.testing._internal import common_modules  # needs expecttest (requirements-dev.txt)

from rnnkit import nn as rnn

NAMES = ("RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell")
CASES = [
    (info.module_cls.__name__, number, sample)
    for info in common_modules.module_db
    if info.module_cls.__name__ in NAMES and info.module_cls.__module__.startswith("torch.nn")
    for number, sample in enumerate(
        info.module_inputs_func(info, device="cpu", dtype=torch.float64, requires_grad=True, training=False)
    )
    if sample.forward_input is not None and not sample.constructor_input.kwargs.get("proj_size")
]
FAST = {"GRU", "GRUCell"}  # the cells on rnnkit's own kernel by default; the others run torch's, so are slow-marked


def tensors(value) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, torch.nn.utils.rnn.PackedSequence):
        return [value.data]
    return [tensor for item in value for tensor in tensors(item)]


def twins(name: str, sample):
    args, kwargs = sample.constructor_input.args, sample.constructor_input.kwargs
    torch.manual_seed(0)
    theirs = getattr(torch.nn, name)(*args, **kwargs).double().eval()
    ours = getattr(rnn, name)(*args, **kwargs).double().eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return ours, theirs


def test_the_sample_inputs_cover_every_class():
    assert {name for name, _, _ in CASES} == set(NAMES) and len(CASES) > 50


@pytest.mark.parametrize(
    "name, number, sample",
    [pytest.param(*case, marks=[] if case[0] in FAST else [pytest.mark.slow]) for case in CASES],
    ids=[f"{name}-{number}" for name, number, _ in CASES],
)
def test_pytorch_s_sample_inputs(name, number, sample):
    ours, theirs = twins(name, sample)
    args, kwargs = sample.forward_input.args, sample.forward_input.kwargs
    torch.testing.assert_close(tensors(ours(*args, **kwargs)), tensors(theirs(*args, **kwargs)))
    names = [parameter_name for parameter_name, _ in ours.named_parameters()]

    def function(*parameters):
        return tuple(tensors(torch.func.functional_call(ours, dict(zip(names, parameters)), args, kwargs)))

    parameters = tuple(parameter.detach().requires_grad_() for parameter in ours.parameters())
    assert torch.autograd.gradcheck(function, parameters, check_batched_grad=False)
    assert torch.autograd.gradgradcheck(function, parameters, check_batched_grad=False)

"""Compatibility with torch.nn, part 2: what users do to a layer's weights and to the module.

Weight norm (both APIs), parametrizations, pruning, AWD-LSTM's weight drop, tying, re-assignment,
extra parameters, functional_call, device/dtype moves, whole-module pickles and quantization. Each
check is done to a torch.nn module and to an rnnkit.nn module holding the same weights, and the two
must give the same outputs and the same gradients (variants, which torch.nn lacks, are checked
against themselves without the change)."""

import copy
import io
import warnings

import pytest
import torch
import torch.nn.functional as F
from compat import LAYERS, NAMES, assert_same_tensors, bit_exact, torch_class
from torch.nn.utils import parametrize, prune

from rnnkit import nn as rnn


def _weight_norm(module, name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.nn.utils.weight_norm is deprecated, still used
        torch.nn.utils.weight_norm(module, name)


class Doubled(torch.nn.Module):
    def forward(self, weight):
        return 2 * weight


def weight_drop(module, name, p=0.5):
    """AWD-LSTM's weight drop: the raw weight becomes `{name}_raw`; before each call the used weight
    is a dropped-out copy, assigned as a plain tensor attribute."""
    raw = getattr(module, name)
    del module._parameters[name]
    module.register_parameter(name + "_raw", torch.nn.Parameter(raw.detach().clone()))

    def assign(module, args):
        setattr(module, name, F.dropout(getattr(module, name + "_raw"), p, training=module.training))

    module.register_forward_pre_hook(assign)


REPARAMETRISATIONS = {
    "weight_norm": _weight_norm,
    "parametrizations.weight_norm": torch.nn.utils.parametrizations.weight_norm,
    "register_parametrization": lambda m, name: parametrize.register_parametrization(m, name, Doubled()),
    "prune.l1_unstructured": lambda m, name: prune.l1_unstructured(m, name, amount=0.3),
    "weight_drop": weight_drop,
}


def _inputs(name, dtype=torch.float64):
    generator = torch.Generator().manual_seed(3)
    shape = (5, 2, 3) if name in LAYERS else (2, 3)
    return torch.randn(shape, dtype=dtype, generator=generator)


def _twins(name, fused=None, **kwargs):
    """A torch.nn module and an rnnkit.nn module with the same float64 weights."""
    torch.manual_seed(0)
    theirs = torch_class(name)(3, 4, **kwargs).double()
    ours = getattr(rnn, name)(3, 4, fused=fused, **kwargs).double()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return theirs, ours


def _call_and_backward(module, x):
    torch.manual_seed(7)  # the same dropout masks for both modules
    result = module(x)
    loss = sum((t * (i + 1)).sum() for i, t in enumerate(_flat(result)))
    loss.backward()
    return result, {name: p.grad for name, p in module.named_parameters()}


def _flat(result):
    return [result] if isinstance(result, torch.Tensor) else [t for part in result for t in _flat(part)]


def assert_same_behaviour(theirs, ours, name, exact):
    x = _inputs(name)
    their_result, their_grads = _call_and_backward(theirs, x)
    our_result, our_grads = _call_and_backward(ours, x)
    assert_same_tensors(our_result, their_result, f"{name} outputs", exact)
    assert our_grads.keys() == their_grads.keys()
    for key in their_grads:
        assert_same_tensors(our_grads[key], their_grads[key], f"{name} gradient of {key}", exact)


@pytest.mark.parametrize("how", list(REPARAMETRISATIONS))
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("fused", [None, False])
def test_reparametrised_recurrent_weight(name, how, fused):
    theirs, ours = _twins(name, fused, **({"num_layers": 2} if name in LAYERS else {}))
    weight = "weight_hh_l0" if name in LAYERS else "weight_hh"
    for module in (theirs, ours):
        REPARAMETRISATIONS[how](module, weight)
    for step in range(2):  # a second call after the first one's backward
        assert_same_behaviour(theirs, ours, name, exact=bit_exact(name, "fused" if fused is None else "equations"))
        theirs.zero_grad(), ours.zero_grad()
    assert ours.state_dict().keys() == theirs.state_dict().keys()


@pytest.mark.parametrize(
    "variant",
    [
        ("LSTM", {"peephole": True}),
        ("LSTM", {"gates": "if"}),
        ("GRU", {"reset": "before"}),
        ("LSTMCell", {"coupled": True}),
        ("GRUCell", {"reset_gate": False}),
    ],
    ids=str,
)
@pytest.mark.parametrize("how", ["parametrizations.weight_norm", "register_parametrization", "weight_drop"])
def test_reparametrised_variant_equals_the_variant_with_the_computed_weight(variant, how):
    name, keywords = variant
    weight = "weight_hh_l0" if name in LAYERS else "weight_hh"
    torch.manual_seed(0)
    reparametrised = getattr(rnn, name)(3, 4, **keywords).double()
    plain = copy.deepcopy(reparametrised)
    REPARAMETRISATIONS[how](reparametrised, weight)
    x = _inputs(name)
    torch.manual_seed(7)
    expected_weight = None
    if how == "weight_drop":
        mask = F.dropout(torch.ones_like(getattr(plain, weight)), 0.5, training=True)
        expected_weight = getattr(plain, weight) * mask
    with torch.no_grad():
        getattr(plain, weight).copy_(
            expected_weight if expected_weight is not None else getattr(reparametrised, weight)
        )
    torch.manual_seed(7)
    assert_same_tensors(reparametrised(x), plain(x), f"{name} {keywords} with {how}", exact=True)


def test_weight_drop_changes_the_mask_at_every_call_and_only_in_training():
    layer = rnn.LSTM(3, 4).double()
    weight_drop(layer, "weight_hh_l0", p=0.5)
    x = _inputs("LSTM")
    first, second = layer(x)[0], layer(x)[0]
    assert not torch.equal(first, second)
    layer.eval()
    assert torch.equal(layer(x)[0], layer(x)[0])


@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize("fused", [None, False])
def test_weights_tied_across_layers_of_one_module(name, fused):
    torch.manual_seed(0)
    theirs = torch_class(name)(3, 3, num_layers=3).double()
    ours = getattr(rnn, name)(3, 3, num_layers=3, fused=fused).double()
    ours.load_state_dict(theirs.state_dict())
    for module in (theirs, ours):
        module.weight_hh_l2 = module.weight_hh_l0
        module.weight_ih_l1 = module.weight_ih_l0
    assert len(list(ours.parameters())) == len(list(theirs.parameters()))
    assert_same_behaviour(theirs, ours, name, exact=bit_exact(name, "fused" if fused is None else "equations"))


@pytest.mark.parametrize("name", NAMES)
def test_weight_tied_between_two_modules(name):
    torch.manual_seed(0)
    their_pair = [torch_class(name)(3, 4).double() for _ in range(2)]
    our_pair = [getattr(rnn, name)(3, 4).double() for _ in range(2)]
    weight = "weight_hh_l0" if name in LAYERS else "weight_hh"
    for mine, its in zip(our_pair, their_pair):
        mine.load_state_dict(its.state_dict())
    for first, second in (their_pair, our_pair):
        setattr(second, weight, getattr(first, weight))
    x = _inputs(name)
    for index in (0, 1):
        assert_same_tensors(our_pair[index](x), their_pair[index](x), f"{name} module {index}", exact=bit_exact(name))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("fused", [None, False])
def test_every_parameter_deleted_and_re_assigned(name, fused):
    theirs, ours = _twins(name, fused, **({"num_layers": 2} if name in LAYERS else {}))
    for module in (theirs, ours):
        for key in [k for k, _ in module.named_parameters()][::-1]:  # reversed: the dict order changes
            value = getattr(module, key)
            delattr(module, key)
            setattr(module, key, value)
    assert_same_behaviour(theirs, ours, name, exact=bit_exact(name, "fused" if fused is None else "equations"))


@pytest.mark.parametrize("name", LAYERS)
def test_extra_parameter_on_the_module(name):
    theirs, ours = _twins(name)
    for module in (theirs, ours):
        torch.manual_seed(5)
        module.initial_state = torch.nn.Parameter(torch.randn(1, 2, 4, dtype=torch.float64))
        module.register_buffer("step_count", torch.zeros(()))
    x = _inputs(name)
    results = []
    for module in (theirs, ours):
        hx = (module.initial_state, module.initial_state) if name == "LSTM" else module.initial_state
        output, _ = module(x, hx)
        output.sum().backward()
        results.append((output, module.initial_state.grad))
    assert_same_tensors(results[1], results[0], f"{name} with a learnable initial state", exact=bit_exact(name))


@pytest.mark.parametrize("name", NAMES)
def test_functional_call_with_other_weights(name):
    theirs, ours = _twins(name)
    replacement = {key: torch.randn_like(value) for key, value in theirs.named_parameters()}
    x = _inputs(name)
    assert_same_tensors(
        torch.func.functional_call(ours, replacement, (x,)),
        torch.func.functional_call(theirs, replacement, (x,)),
        f"{name} functional_call",
        exact=bit_exact(name),
    )
    assert_same_tensors(ours(x), theirs(x), f"{name} after functional_call", exact=bit_exact(name))  # own weights again


@pytest.mark.parametrize("name", NAMES)
def test_dtype_moves_and_copies(name):
    theirs, ours = _twins(name)
    for move in (lambda m: m.float(), lambda m: m.double(), copy.deepcopy, lambda m: m.to(torch.float64)):
        theirs, ours = move(theirs), move(ours)
        x = _inputs(name, dtype=next(theirs.parameters()).dtype)
        assert_same_tensors(ours(x), theirs(x), f"{name} after a move", exact=bit_exact(name))


@pytest.mark.parametrize("name", NAMES)
def test_whole_module_pickle_loads_with_the_documented_safe_globals(name):
    keywords = {"peephole": True} if name.startswith("LSTM") else {}
    model = torch.nn.Sequential(getattr(rnn, name)(3, 4, **keywords))
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    with pytest.raises(Exception, match="Weights only load failed"):  # as for torch.nn's own classes
        torch.load(buffer, weights_only=True)
    buffer.seek(0)
    with torch.serialization.safe_globals([*rnn.SAFE_GLOBALS, torch.nn.Sequential]):
        loaded = torch.load(buffer, weights_only=True)
    x = _inputs(name, dtype=torch.float32)
    assert loaded[0].spec == model[0].spec
    assert_same_tensors(loaded(x), model(x), f"{name} after a pickle round trip")


@pytest.mark.parametrize("name", NAMES)
def test_to_torch_gives_the_twin_with_the_same_outputs(name):
    model = torch.nn.Sequential(getattr(rnn, name)(3, 4).double())
    converted = rnn.to_torch(model)
    assert type(converted[0]) is torch_class(name) and type(model[0]) is getattr(rnn, name)
    x = _inputs(name)
    assert_same_tensors(converted(x), model(x), f"{name} to_torch", exact=bit_exact(name))


def test_to_torch_refuses_a_variant():
    with pytest.raises(ValueError, match="submodule 'encoder' is the variant 'lstm peephole'"):
        rnn.to_torch(torch.nn.ModuleDict({"encoder": rnn.LSTM(3, 4, peephole=True)}))


def test_dynamic_quantization_warns_then_works_through_to_torch():
    model = torch.nn.Sequential(rnn.LSTM(3, 4), torch.nn.Linear(4, 2))
    quantize = torch.ao.quantization.quantize_dynamic
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        left = quantize(model, {rnn.LSTM, torch.nn.Linear})
    assert type(left[0]) is rnn.LSTM  # quantize_dynamic selects modules by their exact class
    assert any("rnnkit modules have no quantized version" in str(w.message) for w in caught)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantized = quantize(rnn.to_torch(model), {torch.nn.LSTM, torch.nn.Linear})
    assert type(quantized[0]) is torch.ao.nn.quantized.dynamic.LSTM

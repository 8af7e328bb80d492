"""Compatibility with torch.nn, part 1: constructor arguments, forward arguments, warnings, repr.

Every case runs on torch.nn and on rnnkit.nn (on both of rnnkit's engines where the case reaches the
forward pass) and asserts the same exception type and message, or the same result. The variants'
own arguments and the deliberate differences are at the end."""

import pytest
import torch
from common import OUR_CLASSES
from compat import (
    CELLS,
    LAYERS,
    NAMES,
    assert_same_outcome,
    assert_same_tensors,
    bit_exact,
    our_classes,
    outcome,
    torch_class,
)
from torch.nn.utils.rnn import pack_padded_sequence

from helpers import VARIANTS, variant_id
from rnnkit import nn as rnn

LAYER_ARGUMENTS = [
    ((3, 5), {"bias": 0}),
    ((3, 5), {"bias": 1}),
    ((3, 5), {"bias": "True"}),
    ((3, 5), {"batch_first": 0}),
    ((3, 5), {"batch_first": 1}),
    ((3, 5), {"batch_first": "False"}),
    (("3", 5), {}),
    ((3.0, 5), {}),
    ((3, "5"), {}),
    ((3, 2.5), {}),
    ((0, 5), {}),
    ((-1, 5), {}),
    ((10, 0, 1), {}),
    ((10, -2), {}),
    ((10, 10, 0), {}),
    ((10, 10, 2.5), {}),
    ((3, 5, 2), {"dropout": -0.1}),
    ((3, 5, 2), {"dropout": 1.5}),
    ((3, 5, 2), {"dropout": True}),
    ((3, 5, 2), {"dropout": "0.1"}),
    ((3, 5), {"dropout": 0.5}),  # a warning: dropout needs num_layers > 1
    ((3, 5, 2), {"dropout": 0.5, "bidirectional": True, "bias": False, "batch_first": True}),  # all fine
]
CELL_ARGUMENTS = [
    (("3", 5), {}),
    ((3.0, 5), {}),
    ((3, 2.5), {}),
    ((-1, 5), {}),
    ((3, -5), {}),
    ((3, 0), {}),  # hidden_size 0 is accepted by torch's cells
    ((3, 5), {"bias": False}),
]


@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize("args,kwargs", LAYER_ARGUMENTS, ids=str)
def test_layer_constructor_arguments(name, args, kwargs):
    theirs = outcome(lambda: torch_class(name)(*args, **kwargs))
    assert_same_outcome(outcome(lambda: getattr(rnn, name)(*args, **kwargs)), theirs, f"{name}{args} {kwargs}")


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("args,kwargs", CELL_ARGUMENTS, ids=str)
def test_cell_constructor_arguments(name, args, kwargs):
    theirs = outcome(lambda: torch_class(name)(*args, **kwargs))
    assert_same_outcome(outcome(lambda: getattr(rnn, name)(*args, **kwargs)), theirs, f"{name}{args} {kwargs}")


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("RNN", {"nonlinearity": "sigmoid"}),
        ("RNN", {"proj_size": 2}),
        ("GRU", {"proj_size": 0}),
        ("LSTM", {"proj_size": -1}),
        ("LSTM", {"proj_size": 5}),
    ],
)
def test_torch_s_own_refusals(name, kwargs):
    theirs = outcome(lambda: torch_class(name)(3, 5, **kwargs))
    assert theirs.error is ValueError
    assert_same_outcome(outcome(lambda: getattr(rnn, name)(3, 5, **kwargs)), theirs, f"{name} {kwargs}")


def _layer_forward_cases(name):
    """(description, layer arguments, forward arguments) for one layer class: valid and invalid calls."""
    lstm = name == "LSTM"

    def state(*shape):
        return (torch.zeros(*shape), torch.zeros(*shape)) if lstm else torch.zeros(*shape)

    packed = pack_padded_sequence(torch.randn(5, 2, 3), [5, 3])
    cases = [
        ("1-D input", {}, (torch.randn(3),)),
        ("4-D input", {}, (torch.randn(2, 2, 2, 3),)),
        ("wrong input_size", {}, (torch.randn(5, 2, 7),)),
        ("float64 input", {}, (torch.randn(5, 2, 3, dtype=torch.float64),)),
        ("batched input, 2-D state", {}, (torch.randn(5, 2, 3), state(2, 4))),
        ("unbatched input, 3-D state", {}, (torch.randn(5, 3), state(1, 1, 4))),
        ("state of the wrong layer count", {"num_layers": 2}, (torch.randn(5, 2, 3), state(1, 2, 4))),
        ("state of the wrong batch", {}, (torch.randn(5, 2, 3), state(1, 3, 4))),
        ("state of the wrong size", {"bidirectional": True}, (torch.randn(5, 2, 3), state(2, 2, 5))),
        ("batch_first, state of the wrong batch", {"batch_first": True}, (torch.randn(2, 5, 3), state(1, 5, 4))),
        ("packed, state of the wrong size", {}, (packed, state(1, 2, 5))),
        ("unbatched", {"num_layers": 2}, (torch.randn(5, 3), state(2, 4))),
        ("unbatched, batch_first", {"batch_first": True, "bidirectional": True}, (torch.randn(5, 3),)),
        ("packed", {"bidirectional": True}, (packed, state(2, 2, 4))),
        ("a sequence of length 0", {}, (torch.randn(0, 2, 3),)),
        ("batch_first, a sequence of length 0", {"batch_first": True}, (torch.randn(2, 0, 3),)),
        ("unbatched, a sequence of length 0", {}, (torch.randn(0, 3),)),
        ("a batch of 0 sequences", {}, (torch.randn(5, 0, 3),)),
    ]
    if lstm:
        cases += [
            ("cell state of the wrong size", {}, (torch.randn(5, 2, 3), (torch.zeros(1, 2, 4), torch.zeros(1, 2, 5)))),
            ("a tensor as the (h, c) state", {}, (torch.randn(5, 2, 3), torch.zeros(1, 2, 4))),
        ]
    else:
        cases += [("a tuple as the state", {}, (torch.randn(5, 2, 3), (torch.zeros(1, 2, 4),)))]
    return cases


LAYER_FORWARD_CASES = [(name, *case) for name in LAYERS for case in _layer_forward_cases(name)]


@pytest.mark.parametrize("engine", ["fused", "equations"])
@pytest.mark.parametrize("name,what,kwargs,inputs", LAYER_FORWARD_CASES, ids=lambda v: v if isinstance(v, str) else "")
def test_layer_forward_arguments(name, what, kwargs, inputs, engine):
    torch.manual_seed(0)
    theirs_layer = torch_class(name)(3, 4, **kwargs)
    ours_layer = our_classes(name)[engine](3, 4, **kwargs)
    ours_layer.load_state_dict(theirs_layer.state_dict())
    theirs, ours = outcome(lambda: theirs_layer(*inputs)), outcome(lambda: ours_layer(*inputs))
    if what.startswith("packed, state") and name == "LSTM":
        # torch.nn.LSTM does not check the state of a packed batch and its kernel answers with an
        # unrelated message ("got an incorrect number of RNN parameters"); rnnkit checks it as for
        # padded input ("Expected hidden[0] size ..."). The exception type is the same.
        assert ours.error is theirs.error is RuntimeError and "Expected hidden[0] size" in ours.message
        return
    assert_same_outcome(ours, theirs, f"{name} {what}")
    if theirs.error is None:
        assert_same_tensors(ours.value, theirs.value, f"{name} {what}", exact=bit_exact(name, engine))


@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
@pytest.mark.parametrize("engine", ["fused", "equations"])
def test_every_variant_refuses_a_sequence_of_length_0_as_torch_does(variant, engine):
    kind, keywords = variant
    layer = OUR_CLASSES[kind](3, 4, fused=engine == "fused", **keywords)
    with pytest.raises(RuntimeError, match="^Expected sequence length to be larger than 0 in RNN$"):
        layer(torch.randn(0, 2, 3))


def _cell_forward_cases(name):
    lstm = name == "LSTMCell"

    def state(*shape):
        return (torch.zeros(*shape), torch.zeros(*shape)) if lstm else torch.zeros(*shape)

    return [
        ("3-D input", (torch.randn(1, 3, 3), state(3, 4))),
        ("4-D state", (torch.randn(3, 3), state(3, 1, 1, 4))),
        ("wrong input_size", (torch.randn(3, 11), state(3, 4))),
        ("wrong hidden_size", (torch.randn(3, 3), state(3, 21))),
        ("batch mismatch", (torch.randn(3, 3), state(5, 4))),
        ("unbatched", (torch.randn(3), state(4))),
        ("unbatched, no state", (torch.randn(3),)),
        ("batched", (torch.randn(2, 3), state(2, 4))),
    ]


CELL_FORWARD_CASES = [(name, *case) for name in CELLS for case in _cell_forward_cases(name)]


@pytest.mark.parametrize("engine", ["fused", "equations"])
@pytest.mark.parametrize("name,what,inputs", CELL_FORWARD_CASES, ids=lambda v: v if isinstance(v, str) else "")
def test_cell_forward_arguments(name, what, inputs, engine):
    torch.manual_seed(0)
    theirs_cell = torch_class(name)(3, 4)
    ours_cell = our_classes(name)[engine](3, 4)
    ours_cell.load_state_dict(theirs_cell.state_dict())
    theirs, ours = outcome(lambda: theirs_cell(*inputs)), outcome(lambda: ours_cell(*inputs))
    assert_same_outcome(ours, theirs, f"{name} {what}")
    if theirs.error is None:
        assert_same_tensors(ours.value, theirs.value, f"{name} {what}", exact=bit_exact(name, engine))


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("engine", ["fused", "equations"])
def test_cells_of_hidden_size_zero(name, engine):
    theirs, ours = torch_class(name)(3, 0), our_classes(name)[engine](3, 0)
    x = torch.randn(2, 3)
    assert_same_tensors(ours(x), theirs(x), f"{name}(3, 0)")


@pytest.mark.parametrize(
    "name,args,kwargs",
    [
        ("LSTM", (3, 4), {}),
        ("LSTM", (3, 4, 2), {"bias": False, "batch_first": True, "dropout": 0.5, "bidirectional": True}),
        ("GRU", (3, 4), {"bidirectional": True}),
        ("RNN", (3, 4, 3), {}),
        ("LSTMCell", (3, 4), {}),
        ("GRUCell", (3, 4), {"bias": False}),
        ("RNNCell", (3, 4), {}),
    ],
)
def test_repr_equals_torch_s_for_what_torch_shows(name, args, kwargs):
    assert repr(getattr(rnn, name)(*args, **kwargs)) == repr(torch_class(name)(*args, **kwargs))


@pytest.mark.parametrize(
    "module,text",
    [
        # torch's RNN leaves out nonlinearity and its RNNCell writes relu unquoted; rnnkit writes the keyword.
        (lambda: rnn.RNN(3, 4, nonlinearity="relu"), "RNN(3, 4, nonlinearity='relu')"),
        (lambda: rnn.RNNCell(3, 4, nonlinearity="relu"), "RNNCell(3, 4, nonlinearity='relu')"),
        (lambda: rnn.LSTM(3, 4, 2, peephole=True, gates="if"), "LSTM(3, 4, num_layers=2, peephole=True, gates='if')"),
        (lambda: rnn.LSTM(3, 4, gates="", forget_bias=1.0), "LSTM(3, 4, gates='', forget_bias=1.0)"),
        (lambda: rnn.LSTMCell(3, 4, coupled=True), "LSTMCell(3, 4, coupled=True)"),
        (lambda: rnn.GRU(3, 4, reset="before", reset_gate=False), "GRU(3, 4, reset='before', reset_gate=False)"),
        (lambda: rnn.GRUCell(3, 4, fused=False), "GRUCell(3, 4, fused=False)"),
        (lambda: rnn.LSTM(3, 4, bidirectional=True, fused=False), "LSTM(3, 4, bidirectional=True, fused=False)"),
    ],
)
def test_repr_adds_the_keywords_that_differ_from_the_defaults(module, text):
    assert repr(module()) == text


@pytest.mark.parametrize("name", NAMES)
def test_isinstance_of_torch_s_base_classes(name):
    base = torch.nn.RNNBase if name in LAYERS else torch.nn.RNNCellBase
    assert isinstance(getattr(rnn, name)(3, 4), base)
    assert not isinstance(getattr(rnn, name)(3, 4), torch_class(name))  # a variant is not torch's class


@pytest.mark.parametrize("name", LAYERS)
def test_mode_and_weight_bookkeeping_attributes(name):
    kwargs = {"num_layers": 2, "bidirectional": True}
    theirs, ours = torch_class(name)(3, 4, **kwargs), getattr(rnn, name)(3, 4, **kwargs)
    ours.load_state_dict(theirs.state_dict())
    assert ours.mode == theirs.mode
    assert ours._flat_weights_names == theirs._flat_weights_names
    assert ours._all_weights == theirs._all_weights
    for mine, its in zip(ours.all_weights, theirs.all_weights, strict=True):
        assert all(torch.equal(a, b) for a, b in zip(mine, its, strict=True))
    assert [w is p for w, p in zip(ours._flat_weights, ours.parameters())] == [True] * len(ours._flat_weights)


def test_variant_layout_in_the_weight_bookkeeping():
    layer = rnn.LSTM(3, 4, num_layers=2, peephole=True, gates="fo", bidirectional=True)
    assert layer._all_weights[1] == [
        "weight_ih_l0_reverse",
        "weight_hh_l0_reverse",
        "bias_ih_l0_reverse",
        "bias_hh_l0_reverse",
        "weight_ch_l0_reverse",
    ]
    assert [tuple(w.shape) for w in layer.all_weights[2]] == [(12, 8), (12, 4), (12,), (12,), (8,)]
    assert layer._flat_weights_names == [name for name, _ in layer.named_parameters()]


# ---- the variants' own arguments, and the deliberate differences ------------------------------
@pytest.mark.parametrize(
    "build,error,message",
    [
        (lambda: rnn.LSTM(3, 4, gates="ifx"), ValueError, "gates: unknown gate letter(s) 'x'"),
        (lambda: rnn.LSTM(3, 4, gates="oi"), ValueError, "gates: got 'oi'"),
        (lambda: rnn.LSTM(3, 4, gates="fo", coupled=True), ValueError, "coupled: coupled=True"),
        (
            lambda: rnn.LSTMCell(3, 4, gates="if", coupled=True, peephole=1),
            ValueError,
            "peephole: expected True or False",
        ),
        (lambda: rnn.GRU(3, 4, reset="middle"), ValueError, "reset: got 'middle', expected 'after' or 'before'"),
        (lambda: rnn.LSTM(3, 4, proj_size=2), ValueError, "proj_size: got 2; rnnkit layers support only proj_size=0"),
        (lambda: rnn.LSTM(3, 4, fused=1), TypeError, "fused should be of type bool or None, got: int"),
        (lambda: rnn.GRU(3, 4, peephole=True), TypeError, "unexpected keyword argument 'peephole'"),
        # torch's RNNCell accepts an unknown nonlinearity and fails at its first forward call; rnnkit refuses
        # it when the cell is made, with the message of torch's RNN.
        (lambda: rnn.RNNCell(3, 4, nonlinearity="sigmoid"), ValueError, "Unknown nonlinearity 'sigmoid'"),
    ],
)
def test_variant_arguments(build, error, message):
    with pytest.raises(error) as raised:
        build()
    assert message in str(raised.value)


@pytest.mark.parametrize(
    "name,kwargs",
    [("LSTM", {"proj_size": 2}), ("LSTM", {"fused": 1}), ("LSTMCell", {"fused": 1}), ("GRUCell", {"fused": 1})],
)
def test_a_refused_layer_still_has_a_repr(name, kwargs):
    """A traceback (pytest's, a debugger's) prints the half-made module: its repr must not fail too."""
    cls = getattr(rnn, name)
    layer = cls.__new__(cls)
    with pytest.raises((ValueError, TypeError)):
        layer.__init__(3, 4, **kwargs)
    assert repr(layer).startswith(name + "(3, 4")

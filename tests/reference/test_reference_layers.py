"""The NumPy engine's public face: no torch, parameters, state_dict, dtypes and bad input."""

import subprocess
import sys

import numpy as np
import pytest
from reference_common import Problem, make_layer

from helpers import assert_close
from rnnkit import reference
from rnnkit.spec import CellSpec, layer_parameter_shapes

NO_TORCH = """
import sys
sys.modules["torch"] = None  # any `import torch` now raises ImportError
import numpy as np
from rnnkit import reference
for layer in (reference.RNN(3, 2), reference.LSTM(3, 2, 2, bidirectional=True, peephole=True),
              reference.GRU(3, 2, reset="before")):
    output, _ = layer.forward(np.ones((2, 1, 3)), lengths=[1])
    layer.backward(np.ones_like(output))
loaded = sorted(m for m in sys.modules if m == "rnnkit" or m.startswith("rnnkit."))
print(" ".join(loaded))
"""


def test_runs_without_torch_and_imports_only_the_spec_of_rnnkit():
    result = subprocess.run([sys.executable, "-c", NO_TORCH], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    loaded = set(result.stdout.split())
    assert "rnnkit.reference" in loaded
    assert {m for m in loaded if not m.startswith("rnnkit.reference")} == {"rnnkit", "rnnkit.spec"}


@pytest.mark.parametrize("num_layers, bidirectional, bias", [(1, False, True), (2, True, True), (2, True, False)])
def test_parameter_names_and_shapes_are_the_specs(num_layers, bidirectional, bias):
    layer = reference.LSTM(3, 4, num_layers, bias, bidirectional, peephole=True, gates="fo")
    spec = CellSpec("lstm", peephole=True, gates="fo")
    expected = layer_parameter_shapes(spec, 3, 4, num_layers, bias, bidirectional)
    assert {name: value.shape for name, value in layer.state_dict().items()} == expected
    assert list(layer.state_dict()) == list(expected)
    assert layer.weight_ch_l0.shape == (8,)


def test_initialisation_is_torchs_range_and_seeded():
    first, second = reference.GRU(3, 4, seed=7), reference.GRU(3, 4, seed=7)
    for name, value in first.state_dict().items():
        assert_close(value, second.state_dict()[name], name=name, rtol=0, atol=0)
        assert np.abs(value).max() <= 0.5, f"{name} outside ±1/sqrt(hidden_size)"


def test_forget_bias_sets_the_total_forget_bias():
    layer = reference.LSTM(3, 2, bidirectional=True, coupled=True, forget_bias=1.0)  # row blocks f, g, o
    for suffix in ("_l0", "_l0_reverse"):
        bias_ih, bias_hh = layer.state_dict()["bias_ih" + suffix], layer.state_dict()["bias_hh" + suffix]
        assert_close(bias_ih[:2] + bias_hh[:2], np.ones(2), name="b_if + b_hf" + suffix, rtol=0, atol=0)


def test_state_dict_round_trip_and_copies():
    source, target = reference.RNN(3, 2, 2, seed=1), reference.RNN(3, 2, 2, seed=2)
    target.load_state_dict(source.state_dict())
    x = np.random.default_rng(0).standard_normal((3, 2, 3))
    assert_close(target.forward(x)[0], source.forward(x)[0], name="output", rtol=0, atol=0)
    state = target.state_dict()
    state["weight_ih_l0"][...] = 0.0
    assert np.abs(target.weight_ih_l0).max() > 0, "state_dict() must return copies"


def test_load_state_dict_names_the_bad_entry():
    layer = reference.LSTM(3, 2)
    good = layer.state_dict()
    with pytest.raises(ValueError, match=r"missing keys \['bias_hh_l0'\]"):
        layer.load_state_dict({k: v for k, v in good.items() if k != "bias_hh_l0"})
    with pytest.raises(ValueError, match=r"unexpected keys \['weight_ch_l0'\]"):
        layer.load_state_dict({**good, "weight_ch_l0": np.zeros(6)})
    with pytest.raises(ValueError, match=r"weight_hh_l0 has shape \(8, 3\), expected \(8, 2\)"):
        layer.load_state_dict({**good, "weight_hh_l0": np.zeros((8, 3))})
    with pytest.raises(ValueError, match=r"weight_hh_l0 has shape \(8, 3\)"):
        layer.load_state_dict({"weight_hh_l0": np.zeros((8, 3))}, strict=False)
    layer.load_state_dict({"weight_ch_l0": np.zeros(6), "bias_ih_l0": np.zeros(8)}, strict=False)
    assert_close(layer.bias_ih_l0, np.zeros(8), name="bias_ih_l0", rtol=0, atol=0)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m: m.forward(np.zeros((2, 3))), r"x: .*\(T, B, input_size=3\).*got shape \(2, 3\)"),
        (lambda m: m.forward(np.zeros((2, 1, 4))), r"x: .*input_size=3.*got shape \(2, 1, 4\)"),
        (lambda m: m.forward(np.zeros((2, 1, 3)), hx=np.zeros((1, 1, 2))), r"hx: .*pair \(h, c\)"),
        (
            lambda m: m.forward(np.zeros((2, 1, 3)), hx=(np.zeros((1, 1, 2)), np.zeros((2, 1, 2)))),
            r"hx: .*shape \(2, 1, 2\).*got h of shape \(1, 1, 2\)",
        ),
        (
            lambda m: m.forward(np.zeros((2, 2, 3)), lengths=[2, 3]),
            r"lengths: expected 2 integers .* in 1\.\.2 .*got \[2, 3\]",
        ),
        (lambda m: m.forward(np.zeros((2, 2, 3)), lengths=[2, 0]), r"lengths: .*got \[2, 0\]"),
        (lambda m: m.forward(np.zeros((2, 2, 3)), lengths=[2]), r"lengths: expected 2 integers"),
        (lambda m: m.forward(np.zeros((2, 2, 3)), lengths=[1.5, 2]), r"lengths: .*got \[1\.5, 2\.0\]"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call(reference.LSTM(3, 2, num_layers=2))


def test_bad_gradients_and_order_of_calls():
    layer = reference.GRU(3, 2)
    with pytest.raises(RuntimeError, match="call forward first"):
        layer.backward(np.zeros((2, 1, 2)))
    output, _ = layer.forward(np.zeros((2, 1, 3)))
    with pytest.raises(ValueError, match=r"d_output: expected the output's shape \(2, 1, 2\), got \(2, 1, 3\)"):
        layer.backward(np.zeros((2, 1, 3)))
    with pytest.raises(ValueError, match=r"d_state: expected an array of shape \(1, 1, 2\)"):
        layer.backward(output, np.zeros((2, 1, 2)))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: reference.LSTM(3, 2, gates="ix"), "gates: unknown gate letter"),
        (lambda: reference.LSTM(3, 2, gates="fi"), "gates: .*in that order"),
        (lambda: reference.LSTM(3, 2, gates="fo", coupled=True), "coupled: .*needs both 'i' and 'f'"),
        (lambda: reference.GRU(3, 2, reset="middle"), "reset: got 'middle'"),
        (lambda: reference.RNN(3, 2, nonlinearity="sigmoid"), "nonlinearity: got 'sigmoid'"),
        (lambda: reference.RNN(0, 2), "input_size: expected a positive integer, got 0"),
        (lambda: reference.RNN(3, 2, dtype=np.int64), "dtype: expected numpy.float32 or numpy.float64"),
    ],
)
def test_bad_constructor_arguments_raise_value_error(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_lstm_state_gradient_entries_may_be_none():
    layer = make_layer("lstm", {}, num_layers=2)
    problem = Problem(layer, steps=3, batch=2)
    layer.forward(problem.x, problem.pack(problem.hx))
    d_x, d_hx, grads = layer.backward(problem.d_output, (None, problem.d_state[1]))
    layer.forward(problem.x, problem.pack(problem.hx))
    zeros = np.zeros_like(problem.d_state[0])
    d_x_zeros, d_hx_zeros, grads_zeros = layer.backward(problem.d_output, (zeros, problem.d_state[1]))
    assert_close(d_x, d_x_zeros, name="d_x", rtol=0, atol=0)
    assert_close(d_hx[1], d_hx_zeros[1], name="d_c0", rtol=0, atol=0)


def test_float32_layers_compute_in_float32_close_to_float64():
    layer64 = make_layer("lstm", {"peephole": True}, num_layers=2, bidirectional=True)
    layer32 = make_layer("lstm", {"peephole": True}, num_layers=2, bidirectional=True, dtype=np.float32)
    layer32.load_state_dict(layer64.state_dict())
    problem = Problem(layer64, steps=3, batch=2, lengths=[3, 2])
    output64, _ = layer64.forward(problem.x, problem.pack(problem.hx), problem.lengths)
    d_x64, _, grads64 = layer64.backward(problem.d_output)
    output32, _ = layer32.forward(problem.x, problem.pack(problem.hx), problem.lengths)
    d_x32, _, grads32 = layer32.backward(problem.d_output)
    assert output32.dtype == d_x32.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads32.values())
    assert_close(output32, output64, name="output", rtol=1e-5, atol=1e-6)
    assert_close(d_x32, d_x64, name="d_x", rtol=1e-4, atol=1e-5)
    for name, gradient in grads64.items():
        assert_close(grads32[name], gradient, name=name, rtol=1e-4, atol=1e-5)

"""Properties every cell of the NumPy engine must have (DESIGN.md, habit 5), for every variant."""

import numpy as np
import pytest
from reference_common import VARIANTS, Problem, make_layer, variant_id

from helpers import assert_close
from rnnkit.reference import cells

TIGHT = {"rtol": 1e-12, "atol": 1e-12}


def copy_weights(source, *targets):
    for target in targets:
        target.load_state_dict(source.state_dict())


@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
def test_windows_with_carried_state_equal_one_long_window(variant):
    long, first, second = (make_layer(*variant, num_layers=2, seed=seed) for seed in range(3))
    copy_weights(long, first, second)
    problem = Problem(long, steps=5, batch=2)
    x, hx = problem.x, problem.pack(problem.hx)
    output, state = long.forward(x, hx)
    d_x, d_hx, grads = long.backward(problem.d_output, problem.pack(problem.d_state))

    output_1, state_1 = first.forward(x[:2], hx)
    output_2, state_2 = second.forward(x[2:], state_1)
    assert_close(np.concatenate([output_1, output_2]), output, name="output", **TIGHT)
    for name, windowed, whole in zip(("h_n", "c_n"), problem.unpack(state_2), problem.unpack(state)):
        assert_close(windowed, whole, name=name, **TIGHT)

    # The gradient w.r.t. the second window's initial state is what flows into the first's final state.
    d_x_2, d_state_1, grads_2 = second.backward(problem.d_output[2:], problem.pack(problem.d_state))
    d_x_1, d_hx_1, grads_1 = first.backward(problem.d_output[:2], d_state_1)
    assert_close(np.concatenate([d_x_1, d_x_2]), d_x, name="d_x", **TIGHT)
    for name, windowed, whole in zip(("d_h0", "d_c0"), problem.unpack(d_hx_1), problem.unpack(d_hx)):
        assert_close(windowed, whole, name=name, **TIGHT)
    for name, gradient in grads.items():
        assert_close(grads_1[name] + grads_2[name], gradient, name=name, **TIGHT)


def as_tuple(state):
    return state if isinstance(state, tuple) else (state,)


def flip_each(array, lengths):
    """Reverse each sequence b within its first lengths[b] steps; padding stays in place."""
    flipped = array.copy()
    for b, n in enumerate(lengths):
        flipped[:n, b] = array[:n, b][::-1]
    return flipped


@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
def test_reverse_direction_is_forward_direction_on_flipped_sequences(variant):
    bidirectional, forward_only = make_layer(*variant, bidirectional=True), make_layer(*variant, seed=1)
    weights = {name: value for name, value in bidirectional.state_dict().items() if not name.endswith("_reverse")}
    bidirectional.load_state_dict({**weights, **{name + "_reverse": value for name, value in weights.items()}})
    forward_only.load_state_dict(weights)
    lengths, hidden = [4, 2, 3], bidirectional.hidden_size
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 3))  # (T, B, I)
    d_reverse_output = rng.standard_normal((4, 3, hidden))  # (T, B, H)

    output, state = bidirectional.forward(x, lengths=lengths)
    d_output = np.concatenate([np.zeros_like(d_reverse_output), d_reverse_output], axis=2)  # (T, B, 2H)
    d_x, _, grads = bidirectional.backward(d_output)
    flipped_output, flipped_state = forward_only.forward(flip_each(x, lengths), lengths=lengths)
    flipped_d_x, _, flipped_grads = forward_only.backward(flip_each(d_reverse_output, lengths))

    assert_close(output[:, :, hidden:], flip_each(flipped_output, lengths), name="reverse output", **TIGHT)
    for ours, flipped in zip(as_tuple(state), as_tuple(flipped_state)):
        assert_close(ours[1], flipped[0], name="reverse final state", **TIGHT)
    assert_close(d_x, flip_each(flipped_d_x, lengths), name="d_x", **TIGHT)
    for name, gradient in flipped_grads.items():
        assert_close(grads[name + "_reverse"], gradient, name=name + "_reverse", **TIGHT)


@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
def test_one_step_equals_the_cell(variant):
    layer = make_layer(*variant)
    problem = Problem(layer, steps=1, batch=2)
    output, state = layer.forward(problem.x, problem.pack(problem.hx))
    d_x, d_hx, grads = layer.backward(problem.d_output, problem.pack(problem.d_state))

    params = {name.removesuffix("_l0"): value for name, value in layer.state_dict().items()}
    state_0 = [h[0] for h in problem.hx]  # each (B, H)
    d_h = problem.d_output[0] + problem.d_state[0][0]  # (B, H): the output is h_1 = h_n
    if layer.spec.kind == "lstm":
        (h, c), cache = cells.lstm_step_forward(layer.spec, params, problem.x[0], *state_0)
        step_d_x, *step_d_state, step_grads = cells.lstm_step_backward(d_h, problem.d_state[1][0], cache)
        expected_state = (h, c)
    else:
        step_forward = cells.rnn_step_forward if layer.spec.kind == "rnn" else cells.gru_step_forward
        step_backward = cells.rnn_step_backward if layer.spec.kind == "rnn" else cells.gru_step_backward
        h, cache = step_forward(layer.spec, params, problem.x[0], *state_0)
        step_d_x, *step_d_state, step_grads = step_backward(d_h, cache)
        expected_state = (h,)

    assert_close(output[0], h, name="output", **TIGHT)
    for ours, expected in zip(problem.unpack(state), expected_state):
        assert_close(ours[0], expected, name="final state", **TIGHT)
    assert_close(d_x[0], step_d_x, name="d_x", **TIGHT)
    for ours, expected in zip(problem.unpack(d_hx), step_d_state):
        assert_close(ours[0], expected, name="d_hx", **TIGHT)
    for name, gradient in step_grads.items():
        assert_close(grads[name + "_l0"], gradient, name=name, **TIGHT)


@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
def test_padded_steps_leave_final_states_unchanged(variant):
    layer = make_layer(*variant, num_layers=2, bidirectional=True)
    lengths = [4, 1, 3]
    problem = Problem(layer, steps=4, batch=3, lengths=lengths)
    output, state = layer.forward(problem.x, problem.pack(problem.hx), lengths)
    d_x, _, _ = layer.backward(problem.d_output, problem.pack(problem.d_state))

    noisy = problem.x.copy()  # (T, B, I)
    for b, n in enumerate(lengths):
        noisy[n:, b] = 1e3
        assert_close(d_x[n:, b], np.zeros_like(d_x[n:, b]), name=f"d_x at padded steps of sequence {b}", atol=0)
    noisy_output, noisy_state = layer.forward(noisy, problem.pack(problem.hx), lengths)
    assert_close(noisy_output, output, name="output with noise in the padding", rtol=0, atol=0)
    for ours, noisy_final in zip(problem.unpack(state), problem.unpack(noisy_state)):
        assert_close(noisy_final, ours, name="final state with noise in the padding", rtol=0, atol=0)

    for b, n in enumerate(lengths):
        alone_hx = problem.pack([h[:, b : b + 1] for h in problem.hx])
        alone_output, alone_state = layer.forward(problem.x[:n, b : b + 1], alone_hx)
        assert_close(output[:n, b], alone_output[:, 0], name=f"output of sequence {b}", **TIGHT)
        assert_close(output[n:, b], np.zeros_like(output[n:, b]), name=f"padded output of sequence {b}", atol=0)
        for ours, alone in zip(problem.unpack(state), problem.unpack(alone_state)):
            assert_close(ours[:, b], alone[:, 0], name=f"final state of sequence {b}", **TIGHT)


def test_gateless_lstm_is_c_plus_g():
    """gates="": c_t = c_{t-1} + g_t and h_t = tanh(c_t), bit for bit."""
    layer = make_layer("lstm", {"gates": ""}, input_size=3, hidden_size=2)
    p = layer.state_dict()
    assert p["weight_ih_l0"].shape == (2, 3) and p["weight_hh_l0"].shape == (2, 2)  # the g block only
    problem = Problem(layer, steps=3, batch=2)
    output, (h_n, c_n) = layer.forward(problem.x, problem.pack(problem.hx))
    h, c = problem.hx[0][0], problem.hx[1][0]  # (B, H)
    for t in range(3):
        W_ig, b_ig, W_hg, b_hg = p["weight_ih_l0"], p["bias_ih_l0"], p["weight_hh_l0"], p["bias_hh_l0"]
        g = np.tanh((problem.x[t] @ W_ig.T + b_ig) + (h @ W_hg.T + b_hg))  # (B, H)
        c = c + g
        h = np.tanh(c)
        assert_close(output[t], h, name=f"h_{t + 1}", rtol=0, atol=0)
    assert_close(h_n[0], h, name="h_n", rtol=0, atol=0)
    assert_close(c_n[0], c, name="c_n", rtol=0, atol=0)

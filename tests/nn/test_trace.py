"""rnnkit.nn.trace: what it records equals what the layer computes, for every cell and variant."""

import pytest
import torch

from helpers import VARIANTS, variant_id
from nn.common import OUR_CLASSES, packed, random_batch
from rnnkit import nn as rnn

GATES = {"rnn": set(), "lstm": set("ifgo"), "gru": set("rzn")}


@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
@pytest.mark.parametrize("form", ["padded", "packed"])
def test_traced_states_equal_the_layer_s_outputs(variant, form):
    kind, keywords = variant
    torch.manual_seed(0)
    layer = OUR_CLASSES[kind](3, 5, num_layers=2, bidirectional=True, **keywords).double()
    x, lengths = random_batch()
    data = packed(x, lengths) if form == "packed" else x
    expected = layer(data)
    with rnn.trace(layer) as recorded:
        output, state = layer(data)
    torch.testing.assert_close(
        output.data if form == "packed" else output, expected[0].data if form == "packed" else expected[0]
    )
    assert set(recorded.keys()) == {"l0", "l0_reverse", "l1", "l1_reverse"}
    if form == "packed":
        output, _ = torch.nn.utils.rnn.pad_packed_sequence(output)
    torch.testing.assert_close(recorded["l1"]["h"], output[..., :5])  # the top layer's outputs, both directions
    torch.testing.assert_close(recorded["l1_reverse"]["h"], output[..., 5:])
    h_n = state[0] if isinstance(state, tuple) else state
    steps = lengths - 1 if form == "packed" else torch.full((4,), 5)
    torch.testing.assert_close(recorded["l0"]["h"][steps, torch.arange(4)], h_n[0])  # each sequence's own end
    if kind == "lstm":
        torch.testing.assert_close(recorded["l0"]["c"][steps, torch.arange(4)], state[1][0])
        c, h = recorded["l0"]["c"], recorded["l0"]["h"]
        o = recorded["l0"].get("o", torch.ones_like(c))
        torch.testing.assert_close(h, o * torch.tanh(c))  # h = o ⊙ tanh(c), step by step
    present = set(recorded["l0"]) - {"c", "h"}
    expected_gates = (
        GATES[kind] if kind != "lstm" else {"g"} | set(keywords["gates"]) | ({"i"} if keywords["coupled"] else set())
    )
    if kind == "gru" and not keywords["reset_gate"]:
        expected_gates = {"z", "n"}
    assert present == expected_gates
    assert all(value.shape == (6, 4, 5) for value in recorded["l1"].values())


def test_tracing_uses_the_equations_and_leaves_the_layer_as_it_was():
    torch.manual_seed(1)
    layer = rnn.LSTM(3, 4)
    x = torch.randn(5, 2, 3)
    fused_output = layer(x)[0]
    with rnn.trace(layer) as recorded:
        traced_output = layer(x)[0]
        layer(x)  # a second call continues in time
    torch.testing.assert_close(traced_output, fused_output, rtol=1e-5, atol=1e-6)
    assert recorded["l0"]["f"].shape == (10, 2, 4) and layer._trace is None
    assert not recorded["l0"]["h"].requires_grad  # detached unless keep_graph


def test_trace_names_layers_by_their_place_in_the_model():
    model = torch.nn.ModuleDict({"encoder": rnn.GRU(3, 4), "decoder": rnn.RNN(4, 4)})
    with rnn.trace(model) as recorded:
        model["decoder"](model["encoder"](torch.randn(5, 1, 3))[0])
    assert set(recorded.keys()) == {"encoder.l0", "decoder.l0"}
    with pytest.raises(KeyError, match="no trace named 'l0'; recorded: encoder.l0, decoder.l0"):
        recorded["l0"]
    with pytest.raises(ValueError, match="Linear holds no rnnkit.nn recurrent layer"):
        with rnn.trace(torch.nn.Linear(3, 4)):
            pass

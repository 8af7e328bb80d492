"""AWD-LSTM's regularisers in rnnkit.nn: locked dropout, embedding dropout, DropConnect on weight_hh."""

import pytest
import torch
from torch.nn import functional as F

from rnnkit import nn as rnn
from rnnkit.nn import layers as layer_module
from rnnkit.nn.regularisers import LockedDropout, WeightDropGRU, WeightDropLSTM, embedding_dropout


def test_locked_dropout_shares_its_mask_over_time():
    torch.manual_seed(0)
    dropout = LockedDropout(0.5).train()
    y = dropout(torch.ones(7, 3, 10))
    assert torch.equal(y, y[:1].expand_as(y))  # every step the same mask
    assert set(y.unique().tolist()) == {0.0, 2.0}  # kept values scaled by 1 / (1 - p)
    assert torch.equal(dropout.eval()(y), y)


def test_embedding_dropout_drops_whole_word_types():
    torch.manual_seed(1)
    embedding = torch.nn.Embedding(20, 6)
    ids = torch.arange(20).repeat(3).reshape(3, 20)  # every word three times
    dropped = embedding_dropout(embedding, ids, 0.5, training=True)
    rows_zero = (dropped == 0).all(dim=-1)  # (3, 20)
    assert torch.equal(rows_zero, rows_zero[:1].expand_as(rows_zero)) and 0 < rows_zero[0].sum() < 20
    kept = ~rows_zero[0]
    torch.testing.assert_close(dropped[0, kept], 2 * embedding.weight[kept])
    assert torch.equal(embedding_dropout(embedding, ids, 0.5, training=False), embedding(ids))


@pytest.mark.parametrize("layer_class, plain_class", [(WeightDropLSTM, rnn.LSTM), (WeightDropGRU, rnn.GRU)])
def test_weight_drop_one_mask_per_call_gradients_reach_the_raw_weight(layer_class, plain_class, monkeypatch):
    torch.manual_seed(2)
    dropped = layer_class(4, 5, num_layers=2, weight_drop=0.5).double().train()
    plain = plain_class(4, 5, num_layers=2).double()
    plain.load_state_dict(dropped.state_dict())  # the raw weights are the parameters, under torch's names
    x = torch.randn(6, 3, 4, dtype=torch.float64)
    fused_calls = []
    original = layer_module.RecurrentLayer._run_fused
    monkeypatch.setattr(
        layer_module.RecurrentLayer, "_run_fused", lambda self, *a: fused_calls.append(1) or original(self, *a)
    )
    torch.manual_seed(3)
    output, _ = dropped(x)
    assert fused_calls, "a standard cell with weight drop still runs the fused kernel"
    torch.manual_seed(3)  # the same masks, drawn as effective_weights draws them, given to the plain layer
    masks = {
        name: F.dropout(torch.ones_like(getattr(dropped, name)), 0.5)
        for name in dropped._flat_weights_names
        if name.startswith("weight_hh")
    }
    with torch.no_grad():
        for name, mask in masks.items():
            getattr(plain, name).mul_(mask)
    expected, _ = plain(x)
    torch.testing.assert_close(output, expected)  # one mask, used at every time step
    upstream = torch.randn_like(output)
    (output * upstream).sum().backward()
    (expected * upstream).sum().backward()
    for name, mask in masks.items():
        raw_gradient = getattr(dropped, name).grad
        assert raw_gradient is not None and bool((raw_gradient[mask == 0] == 0).all())
        torch.testing.assert_close(raw_gradient, getattr(plain, name).grad * mask)  # d/dW of (W ⊙ mask)
        assert bool((raw_gradient[mask != 0] != 0).any())
    dropped.eval()
    plain.load_state_dict(dropped.state_dict())
    assert torch.equal(dropped(x)[0], plain(x)[0])  # no effect in evaluation mode


def test_weight_drop_layers_are_refused_a_nonsense_probability():
    with pytest.raises(ValueError, match="weight_drop: expected a probability in"):
        WeightDropLSTM(3, 4, weight_drop=1.0)

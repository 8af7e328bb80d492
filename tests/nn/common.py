"""Builders shared by the rnnkit.nn tests."""

from __future__ import annotations

import torch
from torch.nn.utils.rnn import pack_padded_sequence

from helpers import VARIANTS, variant_id  # noqa: F401  (re-exported for the tests here)
from rnnkit import nn as rnn

TORCH_CLASSES = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}
OUR_CLASSES = {"rnn": rnn.RNN, "lstm": rnn.LSTM, "gru": rnn.GRU}


def random_batch(T=6, B=4, input_size=3, lengths=(6, 2, 5, 1), dtype=torch.float64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(T, B, input_size, dtype=dtype, generator=generator)
    return x, torch.tensor(lengths[:B])


def packed(x, lengths):
    return pack_padded_sequence(x, lengths, enforce_sorted=False)


def layer_pair(kind, num_layers=1, bidirectional=False, batch_first=False, fused=False, input_size=3, H=5, **kwargs):
    """A torch.nn layer and an rnnkit.nn layer holding the same float64 weights."""
    torch.manual_seed(1)
    theirs = TORCH_CLASSES[kind](
        input_size, H, num_layers, batch_first=batch_first, bidirectional=bidirectional, **kwargs
    ).double()
    ours = OUR_CLASSES[kind](
        input_size, H, num_layers, batch_first=batch_first, bidirectional=bidirectional, fused=fused, **kwargs
    ).double()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return theirs, ours

"""Builders shared by the rnnkit.nn tests."""
from __future__ import annotations

import torch
from torch.nn.utils.rnn import pack_padded_sequence

from rnnkit import nn as rnn

TORCH_CLASSES = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}
OUR_CLASSES = {"rnn": rnn.RNN, "lstm": rnn.LSTM, "gru": rnn.GRU}

# Every variant of EQUATIONS.md, as (kind, keyword arguments).
VARIANTS = [
    ("rnn", {"nonlinearity": "tanh"}),
    ("rnn", {"nonlinearity": "relu"}),
    ("lstm", {}),
    ("lstm", {"peephole": True}),
    ("lstm", {"gates": ""}),
    ("lstm", {"gates": "i"}),
    ("lstm", {"gates": "f"}),
    ("lstm", {"gates": "o"}),
    ("lstm", {"gates": "if"}),
    ("lstm", {"gates": "io"}),
    ("lstm", {"gates": "fo"}),
    ("lstm", {"gates": "io", "peephole": True}),
    ("lstm", {"coupled": True}),
    ("lstm", {"coupled": True, "peephole": True}),
    ("lstm", {"forget_bias": 1.0}),
    ("gru", {}),
    ("gru", {"reset": "before"}),
    ("gru", {"reset_gate": False}),
]


def variant_id(variant) -> str:
    kind, kwargs = variant
    return kind + "".join(f"-{k}={v}" for k, v in kwargs.items())


def random_batch(T=6, B=4, I=3, lengths=(6, 2, 5, 1), dtype=torch.float64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(T, B, I, dtype=dtype, generator=generator)
    return x, torch.tensor(lengths[:B])


def packed(x, lengths):
    return pack_padded_sequence(x, lengths, enforce_sorted=False)


def layer_pair(kind, num_layers=1, bidirectional=False, batch_first=False, fused=False, I=3, H=5, **kwargs):
    """A torch.nn layer and an rnnkit.nn layer holding the same float64 weights."""
    torch.manual_seed(1)
    theirs = TORCH_CLASSES[kind](I, H, num_layers, batch_first=batch_first, bidirectional=bidirectional, **kwargs).double()
    ours = OUR_CLASSES[kind](I, H, num_layers, batch_first=batch_first, bidirectional=bidirectional, fused=fused, **kwargs).double()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return theirs, ours

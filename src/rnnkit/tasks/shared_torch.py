"""PyTorch pieces that several tasks' models share."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnkit import nn as rnn_layers
from rnnkit.config import SequenceModelSettings

LAYERS = {"rnn": rnn_layers.RNN, "lstm": rnn_layers.LSTM, "gru": rnn_layers.GRU}


def build_recurrent_layer(model: SequenceModelSettings, input_size: int, bidirectional: bool = False) -> nn.Module:
    """The rnnkit.nn layer (any cell, any variant, stacked) a model config describes, time-major;
    model.dropout applies between its layers."""
    between_layers = model.dropout if model.num_layers > 1 else 0.0
    return LAYERS[model.cell](input_size, model.hidden_size, num_layers=model.num_layers, dropout=between_layers,
                              bidirectional=bidirectional, **model.cell_spec().keywords())


def word_dropout(ids: Tensor, probability: float, unknown_id: int, padding_id: int) -> Tensor:
    """In training, each real token becomes the unknown token with the given probability."""
    if probability == 0:
        return ids
    dropped = (torch.rand(ids.shape, device=ids.device) < probability) & (ids != padding_id)
    return torch.where(dropped, torch.full_like(ids, unknown_id), ids)

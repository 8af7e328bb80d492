"""PyTorch pieces that several tasks' models share."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnkit import nn as rnn_layers
from rnnkit.config import SequenceModelSettings
from rnnkit.nn.regularisers import WeightDropGRU, WeightDropLSTM, WeightDropRNN

LAYERS = {"rnn": rnn_layers.RNN, "lstm": rnn_layers.LSTM, "gru": rnn_layers.GRU}


WEIGHT_DROP_LAYERS = {"rnn": WeightDropRNN, "lstm": WeightDropLSTM, "gru": WeightDropGRU}


def build_recurrent_layer(model: SequenceModelSettings, input_size: int, bidirectional: bool = False,
                          hidden_size: int | None = None, num_layers: int | None = None,
                          between_layers: float | None = None, weight_drop: float = 0.0) -> nn.Module:
    """The rnnkit.nn layer (any cell, any variant, stacked) a model config describes, time-major.
    By default its size and depth are the config's and model.dropout applies between its layers;
    with weight_drop, DropConnect masks its recurrent weights in training."""
    num_layers = model.num_layers if num_layers is None else num_layers
    between_layers = model.dropout if between_layers is None else between_layers
    keywords = {"weight_drop": weight_drop} if weight_drop else {}
    layer = WEIGHT_DROP_LAYERS[model.cell] if weight_drop else LAYERS[model.cell]
    return layer(input_size, hidden_size or model.hidden_size, num_layers=num_layers,
                 dropout=between_layers if num_layers > 1 else 0.0, bidirectional=bidirectional,
                 **model.cell_spec().keywords(), **keywords)


class ExampleBatches:
    """The trainer's Task methods of a task whose examples are independent sentences read in
    LengthBatches (`self.batches`): no state is carried between batches and nothing is sampled."""

    sample_every = 0

    @property
    def epochs_done(self) -> float:
        return self.batches.epochs_done

    def data_position(self) -> dict:
        return self.batches.position()

    def restore_data_position(self, position: dict) -> None:
        self.batches.restore(position)

    def initial_carry(self) -> dict[str, Tensor]:
        return {}

    def sample(self, seed: int) -> None:
        return None


def word_dropout(ids: Tensor, probability: float, unknown_id: int, padding_id: int) -> Tensor:
    """In training, each real token becomes the unknown token with the given probability."""
    if probability == 0:
        return ids
    dropped = (torch.rand(ids.shape, device=ids.device) < probability) & (ids != padding_id)
    return torch.where(dropped, torch.full_like(ids, unknown_id), ids)

"""What the tasks' PyTorch engines share: their recurrent layers built from the [model] settings, word
dropout, loading a trained model, and the trainer's methods of tasks whose examples are independent
sentences."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from rnnkit import nn as rnn_layers
from rnnkit.config import SequenceModelSettings
from rnnkit.device import resolve_device, use_threads
from rnnkit.errors import UsageError
from rnnkit.nn.regularisers import WeightDropGRU, WeightDropLSTM, WeightDropRNN
from rnnkit.rundir import read_model_weights

LAYERS = {
    "rnn": rnn_layers.RNN,
    "lstm": rnn_layers.LSTM,
    "gru": rnn_layers.GRU,
    "mingru": rnn_layers.MinGRU,
    "minlstm": rnn_layers.MinLSTM,
}
WEIGHT_DROP_LAYERS = {"rnn": WeightDropRNN, "lstm": WeightDropLSTM, "gru": WeightDropGRU}


def build_recurrent_layer(
    architecture: SequenceModelSettings,
    input_size: int,
    bidirectional: bool = False,
    hidden_size: int | None = None,
    num_layers: int | None = None,
    between_layers: float | None = None,
    weight_drop: float = 0.0,
) -> nn.Module:
    """The rnnkit.nn layer (any cell, any variant, stacked; minGRU and minLSTM by their scan) the [model]
    settings describe, time-major.
    By default its size and depth are the settings' and model.dropout applies between its layers;
    with weight_drop, DropConnect masks its recurrent weights in training."""
    num_layers = architecture.num_layers if num_layers is None else num_layers
    between_layers = architecture.dropout if between_layers is None else between_layers
    keywords = {"weight_drop": weight_drop} if weight_drop else {}
    if weight_drop and architecture.cell not in WEIGHT_DROP_LAYERS:
        raise UsageError(
            f"model.weight_drop masks the recurrent weights, which model.cell = {architecture.cell!r} does not "
            "have; leave it at 0"
        )
    layer = WEIGHT_DROP_LAYERS[architecture.cell] if weight_drop else LAYERS[architecture.cell]
    return layer(
        input_size,
        hidden_size or architecture.hidden_size,
        num_layers=num_layers,
        dropout=between_layers if num_layers > 1 else 0.0,
        bidirectional=bidirectional,
        **architecture.cell_spec().keywords(),
        **keywords,
    )


def load_model(run, checkpoint: Path, build: Callable[[], nn.Module]) -> tuple[nn.Module, torch.device]:
    """The model `build` makes, with the checkpoint's weights (checked to fit it), in evaluation mode on
    the run's configured device."""
    device = resolve_device(run.config.train.device)
    use_threads(run.config.train.threads)
    model = build()
    expected = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
    model.load_state_dict(read_model_weights(checkpoint, expected, "pt"), strict=True)
    return model.to(device).eval(), device


class ExampleBatches:
    """The trainer's Training methods of a task whose examples are independent sentences read in
    LengthBatches (`self.batches`): no state is carried between batches and no text is generated.

    With several ranks (`shard`), every rank reads the same seeded order of global batches and takes
    its slice of each. Its loss, a mean over its slice, is scaled by its share of the batch's units
    (what the task's loss averages over: sentences or words) times the ranks, so that the gradients
    DistributedDataParallel averages are those of the whole batch's mean. A rank whose slice is empty
    (a last batch smaller than the ranks) computes one sentence at weight 0.
    """

    sample_every = 0
    rank, ranks = 0, 1

    def units(self, indices: np.ndarray) -> int:
        """What the task's loss averages over, in these examples (sentences, or their words)."""
        return len(indices)

    def shard(self, rank: int, size: int) -> None:
        examples, batch_size = len(self.batches.lengths), self.batches.batch_size
        if size > min(batch_size, examples):
            raise UsageError(
                f"{size} ranks cannot share batches of {min(batch_size, examples)} examples "
                f"(train.batch_size {batch_size}, {examples} training examples): use at most that many ranks"
            )
        self.rank, self.ranks = rank, size

    def next_share(self) -> tuple[np.ndarray, float]:
        """This rank's examples of the next global batch, and the factor its mean loss is scaled by (1
        alone; 0 for an empty slice, which then computes the batch's first example)."""
        indices = self.batches.next_batch()
        if self.ranks == 1:
            return indices, 1.0
        mine = np.array_split(indices, self.ranks)[self.rank]
        if len(mine) == 0:
            return indices[:1], 0.0
        return mine, self.units(mine) * self.ranks / self.units(indices)

    @property
    def epochs_done(self) -> float:
        return self.batches.epochs_done

    def data_position(self) -> dict:
        return self.batches.position()

    def restore_data_position(self, position: dict) -> None:
        self.batches.restore(position)

    def initial_carry(self) -> dict[str, Tensor]:
        return {}

    def start_record(self) -> dict:
        return {}

    def generate(self, seed: int) -> None:
        return None


def word_dropout(ids: Tensor, probability: float, unknown_id: int, padding_id: int) -> Tensor:
    """In training, each real token becomes the unknown token with the given probability."""
    if probability == 0:
        return ids
    dropped = (torch.rand(ids.shape, device=ids.device) < probability) & (ids != padding_id)
    return torch.where(dropped, torch.full_like(ids, unknown_id), ids)

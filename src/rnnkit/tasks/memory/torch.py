"""The long-memory problems' PyTorch engine: the model, its loss, validation and training.

The input (copying's symbols embedded, the adding problem's two numbers projected by a linear layer, both
to model.embedding_size) goes through a recurrent layer (any cell of rnnkit.nn, the scan cells included);
a linear layer reads out the answer: from the last step's output for the adding problem (one number), from each go
step's output for selective copying (a score per data symbol).

Dimension letters: T steps, B batch, C copies, E embedding, H hidden, K symbols.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.errors import UsageError
from rnnkit.tasks.memory.config import MemoryConfig
from rnnkit.tasks.memory.data import Batch, slice_batch, training_batch, validation_set, vocabulary_size
from rnnkit.tasks.memory.metrics import BEST_METRIC, HIGHER_IS_BETTER, adding_metrics, copy_metrics
from rnnkit.tasks.torch_layers import build_recurrent_layer, load_model


class MemoryModel(nn.Module):
    def __init__(self, config: MemoryConfig) -> None:
        super().__init__()
        self.problem, self.copies = config.data.problem, config.data.copies
        architecture = config.model
        if self.problem == "copy":
            self.embedding = nn.Embedding(vocabulary_size(config.data), architecture.embedding_size)
        else:  # the two numbers of a step, projected to the same size as copying's symbol vectors
            self.input = nn.Linear(2, architecture.embedding_size)
        self.rnn = build_recurrent_layer(architecture, architecture.embedding_size)
        self.output = nn.Linear(architecture.hidden_size, 1 if self.problem == "adding" else config.data.symbols)

    def forward(self, inputs: Tensor) -> Tensor:
        """adding: (T, B, 2) -> the sums (B,); copy: ids (T + C, B) -> scores (C, B, K)."""
        x = self.embedding(inputs) if self.problem == "copy" else self.input(inputs)
        output, _ = self.rnn(x)
        if self.problem == "adding":
            return self.output(output[-1]).squeeze(-1)
        return self.output(output[-self.copies :])


def batch_loss(model: MemoryModel, inputs: Tensor, targets: Tensor) -> Tensor:
    answers = model(inputs)
    if model.problem == "adding":
        return F.mse_loss(answers, targets)
    return F.cross_entropy(answers.reshape(-1, answers.shape[-1]), targets.reshape(-1))


@torch.no_grad()
def answers_of(model: MemoryModel, batch: Batch, device: torch.device, batch_size: int) -> np.ndarray:
    """The model's answers to every example, in evaluation mode: sums (B,), or symbols (C, B)."""
    was_training = model.training
    model.eval()
    parts = []
    for start in range(0, batch.targets.shape[-1], batch_size):
        inputs = torch.from_numpy(batch.inputs[:, start : start + batch_size]).to(device)
        answers = model(inputs)
        parts.append((answers if model.problem == "adding" else answers.argmax(dim=-1)).cpu().numpy())
    model.train(was_training)
    return np.concatenate(parts, axis=-1)


def metrics_of(config: MemoryConfig, answers: np.ndarray, batch: Batch) -> dict:
    if config.data.problem == "adding":
        return adding_metrics(answers, batch.targets)
    return copy_metrics(answers, batch.targets, config.data.symbols)


class MemoryTraining:
    """What the trainer drives (rnnkit.train.trainer.Training): a fresh batch every step, so there are no
    epochs; the data position is the number of batches drawn."""

    best_metric, higher_is_better, count_unit = BEST_METRIC, HIGHER_IS_BETTER, "sequences"
    sample_every = 0
    epochs_done = 0.0

    def __init__(self, config: MemoryConfig, data: None, device: torch.device) -> None:
        self.config, self.device = config, device
        self.model = MemoryModel(config).to(device)
        self.validation = validation_set(config.data)
        self.batches, self.rank, self.ranks = 0, 0, 1

    def start_record(self) -> dict:
        return {}

    def initial_carry(self) -> dict[str, Tensor]:
        return {}

    def shard(self, rank: int, size: int) -> None:
        if self.config.train.batch_size % size:
            raise UsageError(
                f"train.batch_size {self.config.train.batch_size} does not divide among {size} ranks; "
                "choose a multiple of the ranks"
            )
        self.rank, self.ranks = rank, size

    def data_position(self) -> dict:
        return {"batches": self.batches}

    def restore_data_position(self, position: dict) -> None:
        self.batches = int(position["batches"])

    def next_batch(self) -> Batch:
        batch = training_batch(self.config, self.batches)
        self.batches += 1
        if self.ranks > 1:  # every rank draws the global batch and takes its own equal slice
            share = self.config.train.batch_size // self.ranks
            batch = slice_batch(batch, slice(self.rank * share, (self.rank + 1) * share))
        return batch

    def loss(self, batch: Batch, carry: dict[str, Tensor]) -> tuple[Tensor, int, dict[str, Tensor]]:
        inputs, targets = (torch.from_numpy(array).to(self.device) for array in (batch.inputs, batch.targets))
        return batch_loss(self.model, inputs, targets), int(batch.targets.shape[-1]), {}

    def validate(self) -> dict:
        answers = answers_of(self.model, self.validation, self.device, self.config.train.eval_batch_size)
        metrics = metrics_of(self.config, answers, self.validation)
        return {"loss": metrics["mse"] if "mse" in metrics else metrics["error"], **metrics}

    def generate(self, seed: int) -> None:
        return None


def load_checkpoint_model(run, checkpoint: Path) -> tuple[MemoryModel, torch.device]:
    return load_model(run, checkpoint, lambda: MemoryModel(run.config))


def model_function(run, checkpoint: Path):
    """The checkpoint's model as a function: a Batch -> its answers (rnnkit.tasks.engines)."""
    model, device = load_checkpoint_model(run, checkpoint)
    return lambda batch: answers_of(model, batch, device, run.config.train.eval_batch_size)

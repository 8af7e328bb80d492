"""The long-memory problems, made from a seed (EQUATIONS.md, "Long-memory problems"). No torch.

- adding (Hochreiter & Schmidhuber 1997, in the form of Le, Jaitly & Hinton 2015): T steps of two
  numbers, a value uniform in [0, 1) and a marker. Exactly two steps are marked, one in the first half
  and one in the second; the answer, read after the last step, is the sum of their two values.
- copy (selective copying, Gu & Dao 2023): T steps of a noise symbol with `copies` data symbols at
  random places among them, then `copies` go symbols; at each go step the answer is the next data
  symbol, in the order they came. The first one may be T steps back.

Every training batch is drawn afresh from (train.seed, the batch's number), so a resumed run reads the
same batches; the validation set comes from data.validation_seed.

Dimension letters: T steps, B batch, C copies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnkit.errors import UsageError
from rnnkit.tasks.memory.config import DataConfig, MemoryConfig

NOISE = 0  # copy: symbol ids are 0 (noise), 1..symbols (data), symbols + 1 (go)
MAX_VALIDATION_VALUES = 50_000_000  # numbers in the validation set, at most


@dataclass
class Batch:
    inputs: np.ndarray  # adding: (T, B, 2) float32; copy: (T + C, B) int64 symbol ids
    targets: np.ndarray  # adding: (B,) float32 sums; copy: (C, B) int64 data symbols, 0-based


def vocabulary_size(data: DataConfig) -> int:
    return data.symbols + 2


def adding_batch(rng: np.random.Generator, batch: int, length: int) -> Batch:
    values = rng.random((length, batch), dtype=np.float32)  # (T, B)
    half = length // 2
    first = rng.integers(0, half, batch)  # (B,)
    second = rng.integers(half, length, batch)  # (B,)
    markers = np.zeros((length, batch), dtype=np.float32)
    columns = np.arange(batch)
    markers[first, columns] = 1.0
    markers[second, columns] = 1.0
    sums = values[first, columns] + values[second, columns]  # (B,)
    return Batch(np.stack([values, markers], axis=-1), sums.astype(np.float32))


def copy_batch(rng: np.random.Generator, batch: int, length: int, symbols: int, copies: int) -> Batch:
    inputs = np.full((length + copies, batch), NOISE, dtype=np.int64)
    inputs[length:] = symbols + 1  # the go symbols
    data = rng.integers(0, symbols, (copies, batch))  # (C, B), 0-based
    for column in range(batch):
        places = np.sort(rng.choice(length, copies, replace=False))
        inputs[places, column] = data[:, column] + 1
    return Batch(inputs, data.astype(np.int64))


def make_batch(data: DataConfig, rng: np.random.Generator, batch: int) -> Batch:
    if data.problem == "adding":
        return adding_batch(rng, batch, data.length)
    return copy_batch(rng, batch, data.length, data.symbols, data.copies)


def training_batch(config: MemoryConfig, number: int) -> Batch:
    """The number-th training batch (train.batch_size examples), the same for a given train.seed."""
    return make_batch(config.data, np.random.default_rng([config.train.seed, number]), config.train.batch_size)


def validation_set(data: DataConfig) -> Batch:
    return make_batch(data, np.random.default_rng([data.validation_seed, data.length]), data.validation_examples)


def prepare(config: MemoryConfig, run_path) -> tuple[MemoryConfig, None]:
    """Nothing to read: the problems are made, not loaded. The validation set must fit in memory."""
    data = config.data
    values = data.validation_examples * (data.length + data.copies) * (2 if data.problem == "adding" else 1)
    if values > MAX_VALIDATION_VALUES:
        raise UsageError(
            f"data.validation_examples x data.length = {values:,} numbers; at most {MAX_VALIDATION_VALUES:,}: "
            "use fewer validation examples"
        )
    return config, None


def save(data: None, directory) -> None:
    """The problems have no files of their own."""


def slice_batch(batch: Batch, part: slice) -> Batch:
    """Some of a batch's examples (one rank's share)."""
    return Batch(batch.inputs[:, part], batch.targets[..., part])

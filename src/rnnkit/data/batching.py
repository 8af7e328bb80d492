"""Batches of variable-length examples: similar lengths together, a new order every epoch.

Each epoch draws a permutation of the examples from a generator seeded by (seed, epoch), cuts it
into pools of POOL_BATCHES batches, sorts each pool by length, cuts the pools into batches and
shuffles the order of the batches. Batches hold examples of similar length (little padding), yet
every epoch differs. Since an epoch's order depends only on (seed, epoch), a position (epoch, batch)
is all it takes to restore the reader exactly.
"""

from __future__ import annotations

import numpy as np

from rnnkit.errors import UsageError

POOL_BATCHES = 50  # batches per sorting pool: more means less padding, fewer means more randomness


class LengthBatches:
    def __init__(self, lengths: np.ndarray, batch_size: int, seed: int) -> None:
        if len(lengths) == 0:
            raise UsageError("no examples to batch")
        self.lengths, self.batch_size, self.seed = np.asarray(lengths), batch_size, seed
        self.batches_per_epoch = -(-len(lengths) // batch_size)
        self.epoch, self.batch_index = 0, 0
        self.order = self.epoch_order(0)

    def epoch_order(self, epoch: int) -> list[np.ndarray]:
        """The batches (arrays of example indices) of an epoch, in the order they are read."""
        rng = np.random.default_rng([self.seed, epoch])
        permutation = rng.permutation(len(self.lengths))
        pool_size = self.batch_size * POOL_BATCHES
        batches = []
        for start in range(0, len(permutation), pool_size):
            pool = permutation[start : start + pool_size]
            pool = pool[np.argsort(self.lengths[pool], kind="stable")]
            batches += [pool[i : i + self.batch_size] for i in range(0, len(pool), self.batch_size)]
        return [batches[i] for i in rng.permutation(len(batches))]

    @property
    def epochs_done(self) -> float:
        return self.epoch + self.batch_index / self.batches_per_epoch

    def next_batch(self) -> np.ndarray:
        batch = self.order[self.batch_index]
        self.batch_index += 1
        if self.batch_index == len(self.order):
            self.epoch, self.batch_index = self.epoch + 1, 0
            self.order = self.epoch_order(self.epoch)
        return batch

    def position(self) -> dict:
        return {"epoch": self.epoch, "batch": self.batch_index}

    def restore(self, position: dict) -> None:
        epoch, batch = position.get("epoch"), position.get("batch")
        valid = isinstance(epoch, int) and isinstance(batch, int) and not isinstance(epoch, bool)
        if not (valid and epoch >= 0 and 0 <= batch < self.batches_per_epoch):
            raise UsageError(
                f"data position {position!r} does not fit these examples ({self.batches_per_epoch} batches per epoch)"
            )
        self.epoch, self.batch_index = epoch, batch
        self.order = self.epoch_order(epoch)

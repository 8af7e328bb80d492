"""The train/validation split and the parallel streams that truncated BPTT reads.

Dimension letters: N tokens, B streams (the batch), L tokens per stream, T window length.

The training tokens are cut into B contiguous streams of L tokens; each batch is the next window
of T steps of every stream, so the hidden state at the end of one window is the right state to start
the next one with. Order is fixed (no shuffling), so a position (epoch, token offset) is all it takes
to restore the reader exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rnnkit.errors import UsageError


def split_train_validation(tokens: Sequence, train_fraction: float) -> tuple[Sequence, Sequence]:
    """First `train_fraction` of the tokens train, the rest validate (nanoGPT's int(N * 0.9) cut)."""
    cut = int(len(tokens) * train_fraction)
    return tokens[:cut], tokens[cut:]


def minimum_tokens_for_split(train_tokens: int, train_fraction: float, validation_tokens: int = 2) -> int:
    """The fewest tokens whose split leaves at least the given numbers on each side."""
    total = max(math.ceil(train_tokens / train_fraction), train_tokens + validation_tokens)
    while int(total * train_fraction) < train_tokens or total - int(total * train_fraction) < validation_tokens:
        total += 1
    return total


@dataclass(frozen=True)
class Window:
    inputs: np.ndarray  # (T, B) token ids
    targets: np.ndarray  # (T, B) the next token of each input
    starts_epoch: bool  # the first window of a pass: there is no state to carry into it
    lr_factor: float = 1.0  # variable-length windows scale the learning rate by their length / window


class TokenStreams:
    """B contiguous streams of the token ids, read window by window, epoch after epoch.

    The ids may be a read-only memory map: windows are gathered from it as they are read, so memory
    does not grow with the corpus. With `variable`, a window's length is drawn as AWD-LSTM does, from
    N(window, 5) with probability 0.95 and N(window / 2, 5) otherwise, at least 5 steps, and the
    learning rate is scaled by length / window; the draw depends only on (seed, epoch, offset), and
    the position is a token offset, so a resumed run reads exactly the same windows.
    """

    def __init__(self, ids: np.ndarray, batch_size: int, window: int, variable: bool = False, seed: int = 0) -> None:
        self.ids, self.batch_size, self.window, self.variable, self.seed = ids, batch_size, window, variable, seed
        self.stream_length = (len(ids) - 1) // batch_size  # L: inputs need their next token as target
        if self.stream_length < 1:
            raise UsageError(
                f"{len(ids)} tokens cannot make {batch_size} streams; at least {batch_size + 1} are needed"
            )
        self.windows_per_epoch = math.ceil(self.stream_length / window)  # of fixed length
        self.epoch, self.offset = 0, 0
        self.first, self.count = 0, batch_size  # the streams this reader returns: all, unless sharded

    def shard(self, rank: int, size: int) -> None:
        """Read only rank `rank`'s contiguous share of the streams, of `size` ranks: every rank keeps the
        same position, so together they read exactly the windows one reader of all streams would."""
        if size > self.batch_size or self.batch_size % size:
            raise UsageError(
                f"train.batch_size {self.batch_size} cannot be shared by {size} ranks: each rank reads "
                f"batch_size / ranks whole streams, so use a multiple of {size}"
            )
        self.count = self.batch_size // size
        self.first = rank * self.count

    @property
    def epochs_done(self) -> float:
        """Passes completed, with the fraction of the current one (e.g. 2.25)."""
        return self.epoch + self.offset / self.stream_length

    def window_length(self) -> int:
        if not self.variable:
            return self.window
        rng = np.random.default_rng([self.seed, self.epoch, self.offset])
        centre = self.window if rng.random() < 0.95 else self.window / 2
        return max(5, int(rng.normal(centre, 5)))

    def rows(self, start: int, stop: int, shift: int) -> np.ndarray:
        """Steps start..stop of every stream read, shifted by `shift` tokens: (stop - start, B) int64."""
        starts = np.arange(self.first, self.first + self.count) * self.stream_length + start + shift
        return np.stack([np.asarray(self.ids[a : a + stop - start], dtype=np.int64) for a in starts], axis=1)

    def next_window(self) -> Window:
        length = self.window_length()
        start, stop = self.offset, min(self.offset + length, self.stream_length)
        window = Window(
            self.rows(start, stop, 0),
            self.rows(start, stop, 1),
            starts_epoch=start == 0,
            lr_factor=length / self.window if self.variable else 1.0,
        )
        self.offset = stop
        if self.offset == self.stream_length:
            self.epoch, self.offset = self.epoch + 1, 0
        return window

    def position(self) -> dict:
        return {"epoch": self.epoch, "offset": self.offset}

    def restore(self, position: dict) -> None:
        epoch = position.get("epoch")
        if "window" in position and "offset" not in position and isinstance(position["window"], int):
            position = {"epoch": epoch, "offset": position["window"] * self.window}  # checkpoints before offsets
        offset = position.get("offset")
        valid = all(isinstance(v, int) and not isinstance(v, bool) for v in (epoch, offset))
        if not (valid and epoch >= 0 and 0 <= offset < self.stream_length):
            raise UsageError(
                f"data position {position!r} does not fit this corpus ({self.stream_length} tokens per stream)"
            )
        self.epoch, self.offset = epoch, offset

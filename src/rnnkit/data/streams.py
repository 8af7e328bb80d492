"""The train/validation split and the parallel streams that truncated BPTT reads.

Dimension letters: N tokens, B streams (the batch), L tokens per stream, T window length.

The training tokens are cut into B contiguous streams of L tokens; each batch is the next window
of T steps of every stream, so the hidden state at the end of one window is the right state to start
the next one with. Order is fixed (no shuffling), so a position (epoch, window) is all it takes to
restore the reader exactly.
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


class TokenStreams:
    """B contiguous streams of the token ids, read window by window, epoch after epoch."""

    def __init__(self, ids: np.ndarray, batch_size: int, window: int) -> None:
        self.batch_size, self.window = batch_size, window
        self.stream_length = (len(ids) - 1) // batch_size  # L: inputs need their next token as target
        if self.stream_length < 1:
            raise UsageError(f"{len(ids)} tokens cannot make {batch_size} streams; at least {batch_size + 1} are needed")
        used = batch_size * self.stream_length
        self.inputs = np.ascontiguousarray(ids[:used].reshape(batch_size, self.stream_length).T)  # (L, B)
        self.targets = np.ascontiguousarray(ids[1 : used + 1].reshape(batch_size, self.stream_length).T)  # (L, B)
        self.windows_per_epoch = math.ceil(self.stream_length / window)
        self.epoch, self.window_index = 0, 0

    @property
    def epochs_done(self) -> float:
        """Passes completed, with the fraction of the current one (e.g. 2.25)."""
        return self.epoch + self.window_index / self.windows_per_epoch

    def next_window(self) -> Window:
        start = self.window_index * self.window
        stop = min(start + self.window, self.stream_length)
        window = Window(self.inputs[start:stop], self.targets[start:stop], starts_epoch=self.window_index == 0)
        self.window_index += 1
        if self.window_index == self.windows_per_epoch:
            self.epoch, self.window_index = self.epoch + 1, 0
        return window

    def position(self) -> dict:
        return {"epoch": self.epoch, "window": self.window_index}

    def restore(self, position: dict) -> None:
        epoch, window = position.get("epoch"), position.get("window")
        if not (isinstance(epoch, int) and isinstance(window, int) and epoch >= 0 and 0 <= window < self.windows_per_epoch):
            raise UsageError(
                f"data position {position!r} does not fit this corpus ({self.windows_per_epoch} windows per epoch)"
            )
        self.epoch, self.window_index = epoch, window

"""The machine: the `train.device` setting made concrete (nothing in rnnkit hard-codes a device),
CPU threads, and whether a model fits in memory at all."""

from __future__ import annotations

import os
from collections.abc import Callable

import torch

from rnnkit.errors import UsageError


def use_threads(threads: int) -> None:
    """Set torch's CPU thread count (0: leave torch's default). Small models on a shared machine run
    faster on one thread than on threads that wait for each other."""
    if threads:
        torch.set_num_threads(threads)


def resolve_device(name: str) -> torch.device:
    """'auto' is cuda when available, else cpu; asking for cuda without it is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("train.device = 'cuda' but torch sees no CUDA device; use 'cpu' or 'auto'")
    return torch.device(name)


def physical_memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not every system reports it
        return None


def check_model_size(build: Callable[[], torch.nn.Module], copies: int) -> None:
    """Build the model on the meta device (nothing is allocated) and refuse it with one line if
    `copies` of its parameters (weights, gradients, optimiser state) exceed the machine's memory."""
    with torch.device("meta"):
        model = build()
    parameters = sum(parameter.numel() for parameter in model.parameters())
    needed = parameters * 4 * copies  # float32
    memory = physical_memory_bytes()
    if memory is not None and needed > memory:
        raise UsageError(
            f"the model is too large: {parameters:,} parameters need about {needed / 2**30:,.1f} GiB "
            f"({copies} float32 copies), and this machine has {memory / 2**30:,.1f} GiB"
        )

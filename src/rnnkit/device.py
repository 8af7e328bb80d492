"""The machine: the `train.device` setting made concrete (nothing in rnnkit hard-codes a device),
CPU threads, and whether a model (or any other large piece of work) fits in memory at all. torch is
imported only by the functions that need it, so the NumPy engine can ask about memory too."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from rnnkit.errors import UsageError

if TYPE_CHECKING:  # annotations only: torch is imported where it is used
    import torch


def use_threads(threads: int) -> None:
    """Set torch's CPU thread count (0: leave torch's default). Small models on a shared machine run
    faster on one thread than on threads that wait for each other."""
    if threads:
        import torch

        torch.set_num_threads(threads)


def resolve_device(name: str) -> torch.device:
    """'auto' is cuda when available, else cpu; asking for cuda without it is an error."""
    import torch

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


def check_memory(needed: float, what: str, detail: str = "") -> None:
    """One line if `needed` bytes exceed the machine's memory: "{what} about N GiB{detail}, and this
    machine has M GiB" (`what` ends with its verb, e.g. "--beam 50 needs")."""
    memory = physical_memory_bytes()
    if memory is not None and needed > memory:
        raise UsageError(
            f"{what} about {needed / 2**30:,.1f} GiB{detail}, and this machine has {memory / 2**30:,.1f} GiB"
        )


def check_model_size(build: Callable[[], torch.nn.Module], copies: int) -> None:
    """Build the model on the meta device (nothing is allocated) and refuse it with one line if
    `copies` of its parameters (weights, gradients, optimiser state) exceed the machine's memory, or if
    its tensors are too large for torch even to describe."""
    import torch

    try:
        with torch.device("meta"):
            model = build()
    except (RuntimeError, OverflowError, MemoryError) as error:  # e.g. "Storage size calculation overflowed"
        raise UsageError(f"the model is too large to build ({str(error).splitlines()[0][:120]})") from None
    parameters = sum(parameter.numel() for parameter in model.parameters())
    check_memory(
        parameters * 4 * copies,
        f"the model is too large: {parameters:,} parameters need",
        f" ({copies} float32 copies)",
    )

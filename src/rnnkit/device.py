"""The `train.device` setting made concrete. Nothing in rnnkit hard-codes a device."""
from __future__ import annotations

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

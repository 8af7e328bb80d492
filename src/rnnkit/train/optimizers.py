"""Optimisers and gradient clipping, chosen by the [optim] config section."""
from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from rnnkit.config import OptimConfig
from rnnkit.errors import UsageError


def build_optimizer(parameters: Iterable[torch.nn.Parameter], optim: OptimConfig) -> torch.optim.Optimizer:
    """The configured optimiser; a setting torch refuses is one UsageError (the config checks the
    ranges first, so this is a second line of defence)."""
    try:
        return _build(list(parameters), optim)
    except ValueError as error:
        raise UsageError(f"optim: torch refuses the optimiser settings ({error})") from None


def _build(parameters: list[torch.nn.Parameter], optim: OptimConfig) -> torch.optim.Optimizer:
    if optim.optimizer == "adam":
        return torch.optim.Adam(parameters, lr=optim.lr, betas=(optim.beta1, optim.beta2), eps=optim.eps,
                                weight_decay=optim.weight_decay)
    if optim.optimizer == "adamw":
        return torch.optim.AdamW(parameters, lr=optim.lr, betas=(optim.beta1, optim.beta2), eps=optim.eps,
                                 weight_decay=optim.weight_decay)
    if optim.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=optim.lr, momentum=optim.momentum, weight_decay=optim.weight_decay)
    if optim.optimizer == "adagrad":
        return torch.optim.Adagrad(parameters, lr=optim.lr, eps=optim.eps, weight_decay=optim.weight_decay)
    return torch.optim.RMSprop(parameters, lr=optim.lr, eps=optim.eps, weight_decay=optim.weight_decay,
                               momentum=optim.momentum)


def clip_gradients(parameters: list[torch.nn.Parameter], optim: OptimConfig) -> float:
    """Clip as configured and return the global gradient norm before clipping (inf/nan if non-finite).

    By norm: if ‖g‖ > τ then g ← g · τ/‖g‖, all parameters together. By value: each component to [−c, c].
    """
    gradients = [parameter.grad for parameter in parameters if parameter.grad is not None]
    norm = float(torch.nn.utils.get_total_norm(gradients))
    if not math.isfinite(norm):
        return norm  # the step will be skipped: leave the gradients as they are
    if optim.clip == "norm":
        torch.nn.utils.clip_grads_with_norm_(parameters, optim.clip_threshold, torch.tensor(norm))
    elif optim.clip == "value":
        torch.nn.utils.clip_grad_value_(parameters, optim.clip_threshold)
    return norm

"""Optimisers and gradient clipping, chosen by the [optim] config section."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

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


def fused(parameters: list[torch.nn.Parameter]) -> dict:
    """torch's fused (single-kernel) update where it has one: on CPU it is several times faster than
    the loop over tensors, which matters most for large embedding matrices."""
    devices = {parameter.device.type for parameter in parameters}
    floating = all(parameter.is_floating_point() for parameter in parameters)
    return {"fused": True} if floating and devices <= {"cpu", "cuda"} else {}


def _build(parameters: list[torch.nn.Parameter], optim: OptimConfig) -> torch.optim.Optimizer:
    optimizer = _build_one(parameters, optim)
    return ExponentialAverage(optimizer, parameters, optim.ema_decay) if optim.ema_decay else optimizer


def _build_one(parameters: list[torch.nn.Parameter], optim: OptimConfig) -> torch.optim.Optimizer:
    if optim.optimizer == "nt-asgd":
        return NTASGD(parameters, optim)
    if optim.optimizer == "adam":
        return torch.optim.Adam(
            parameters,
            lr=optim.lr,
            betas=(optim.beta1, optim.beta2),
            eps=optim.eps,
            weight_decay=optim.weight_decay,
            **fused(parameters),
        )
    if optim.optimizer == "adamw":
        return torch.optim.AdamW(
            parameters,
            lr=optim.lr,
            betas=(optim.beta1, optim.beta2),
            eps=optim.eps,
            weight_decay=optim.weight_decay,
            **fused(parameters),
        )
    if optim.optimizer == "sgd":
        return torch.optim.SGD(
            parameters, lr=optim.lr, momentum=optim.momentum, weight_decay=optim.weight_decay, **fused(parameters)
        )
    if optim.optimizer == "adagrad":
        return torch.optim.Adagrad(
            parameters, lr=optim.lr, eps=optim.eps, weight_decay=optim.weight_decay, **fused(parameters)
        )
    return torch.optim.RMSprop(
        parameters, lr=optim.lr, eps=optim.eps, weight_decay=optim.weight_decay, momentum=optim.momentum
    )


class Wrapper:
    """What the trainer uses of a torch optimiser, handed on to the one in `self.optimizer`."""

    optimizer: torch.optim.Optimizer

    @property
    def param_groups(self):
        return self.optimizer.param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        self.optimizer.step()


class NTASGD(Wrapper):
    """Non-monotonically triggered averaged SGD (Merity et al. 2017; EQUATIONS.md, "Word-level regularisers"):
    plain SGD until the validation loss has not beaten the best of the evaluations from more than `nonmono` evaluations
    ago; from then on averaged SGD (torch.optim.ASGD with t0 = 0, whose average starts at its second
    step), and evaluation uses that running average of the weights (`averaged()`). It offers what the
    trainer uses of a torch optimiser (param_groups, zero_grad, step, state_dict, load_state_dict); its
    state_dict is torch's for the optimiser in use plus {"averaging", "history"}."""

    def __init__(self, parameters: list[torch.nn.Parameter], optim: OptimConfig) -> None:
        self.parameters, self.settings = parameters, optim
        self.averaging, self.history = False, []
        self.optimizer = torch.optim.SGD(parameters, lr=optim.lr, weight_decay=optim.weight_decay, **fused(parameters))

    def observe_validation(self, loss: float) -> bool:
        """Record a validation loss; True when it switches to averaging."""
        nonmono = self.settings.nonmono
        switch = not self.averaging and len(self.history) > nonmono and loss > min(self.history[:-nonmono])
        self.history.append(loss)
        if switch:
            lr = self.optimizer.param_groups[0]["lr"]
            self.optimizer = torch.optim.ASGD(
                self.parameters, lr=lr, t0=0, lambd=0.0, weight_decay=self.settings.weight_decay
            )
            self.averaging = True
        return switch

    @contextmanager
    def averaged(self) -> Iterator[None]:
        """Within the block the parameters hold their running average (while averaging); then their own values."""
        if not self.averaging or not self.optimizer.state:
            yield
            return
        states = [self.optimizer.state.get(parameter, {}) for parameter in self.parameters]
        with holding(
            self.parameters, [state.get("ax", parameter) for state, parameter in zip(states, self.parameters)]
        ):
            yield

    def state_dict(self) -> dict:
        return {**self.optimizer.state_dict(), "averaging": self.averaging, "history": list(self.history)}

    def load_state_dict(self, state: dict) -> None:
        state = dict(state)
        self.averaging, self.history = bool(state.pop("averaging")), [float(loss) for loss in state.pop("history")]
        if self.averaging and isinstance(self.optimizer, torch.optim.SGD):
            self.optimizer = torch.optim.ASGD(
                self.parameters, lr=self.settings.lr, t0=0, lambd=0.0, weight_decay=self.settings.weight_decay
            )
        self.optimizer.load_state_dict(state)


class ExponentialAverage(Wrapper):
    """Any optimiser plus an exponential moving average of the weights: after the n-th step,
    a <- a + (1 - d_n)(theta - a) with d_n = min(decay, (1 + n)/(10 + n)), so that the first steps do not
    leave the average near the initial weights. Evaluation, `eval` and
    `sample` use the average (`averaged()`), as with NT-ASGD, and the raw weights go on training. The
    state_dict is the optimiser's, each parameter's average under its state as "weight_average", plus
    "average_updates"."""

    averaging = True

    def __init__(self, optimizer, parameters: list[torch.nn.Parameter], decay: float) -> None:
        self.optimizer, self.parameters, self.decay = optimizer, parameters, decay
        self.average = [parameter.detach().clone() for parameter in parameters]
        self.updates = 0

    def step(self) -> None:
        self.optimizer.step()
        self.updates += 1
        weight = 1.0 - min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))
        with torch.no_grad():
            for average, parameter in zip(self.average, self.parameters):
                average.lerp_(parameter, weight)

    def averaged(self):
        """Within the block the parameters hold their average; then their own values."""
        return holding(self.parameters, self.average)

    def state_dict(self) -> dict:
        inner = self.optimizer.state_dict()
        state = {index: dict(values) for index, values in inner["state"].items()}  # torch's own dicts stay untouched
        for index, average in enumerate(self.average):
            state.setdefault(index, {})["weight_average"] = average.clone()
        return {**inner, "state": state, "average_updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        state = dict(state)
        self.updates = int(state.pop("average_updates"))
        inner: dict = {}
        for index, average in enumerate(self.average):
            values = dict(state["state"].get(index, {}))
            average.copy_(values.pop("weight_average"))
            if values:
                inner[index] = values
        self.optimizer.load_state_dict({**state, "state": inner})


@contextmanager
def holding(parameters: list[torch.nn.Parameter], values: list[torch.Tensor]) -> Iterator[None]:
    """Within the block each parameter holds the given value; afterwards its own again."""
    saved = [parameter.detach().clone() for parameter in parameters]
    with torch.no_grad():
        for parameter, value in zip(parameters, values):
            parameter.copy_(value)
    try:
        yield
    finally:
        with torch.no_grad():
            for parameter, value in zip(parameters, saved):
                parameter.copy_(value)


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

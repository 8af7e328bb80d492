"""The compatibility suite's shared part: torch.nn's six classes beside rnnkit's, and a way to
record what a call does (its result, or its exception's type and message, and its warnings), so that
a test can assert that torch.nn and rnnkit.nn behave the same."""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, field

import torch

from rnnkit import nn as rnn

NAMES = ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"]
LAYERS, CELLS = NAMES[:3], NAMES[3:]


def torch_class(name: str):
    return getattr(torch.nn, name)


def our_classes(name: str) -> dict:
    """rnnkit's class on each of its engines: the fused kernels and the equations."""
    cls = getattr(rnn, name)
    return {"fused": cls, "equations": functools.partial(cls, fused=False)}


@dataclass
class Outcome:
    value: object = None
    error: type | None = None
    message: str = ""
    warnings: list[str] = field(default_factory=list)

    def describe(self) -> str:
        result = f"raised {self.error.__name__}: {self.message}" if self.error else "returned"
        return result + (f" (warned: {self.warnings})" if self.warnings else "")


def outcome(call) -> Outcome:
    """Run call() and record what happened."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = call()
        except Exception as error:  # the point is to record any exception
            return Outcome(error=type(error), message=str(error), warnings=[str(w.message) for w in caught])
    return Outcome(value=value, warnings=[str(w.message) for w in caught])


def assert_same_outcome(ours: Outcome, theirs: Outcome, what: str) -> None:
    """The same exception type and message (or none), and the same warnings."""
    assert (ours.error, ours.message, ours.warnings) == (theirs.error, theirs.message, theirs.warnings), (
        f"{what}: torch.nn {theirs.describe()}; rnnkit.nn {ours.describe()}"
    )


def tensors_of(value) -> list[torch.Tensor]:
    """The tensors in a layer's or cell's result, flattened: output, then states."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, torch.nn.utils.rnn.PackedSequence):
        return [value.data]
    return [t for part in value for t in tensors_of(part)]


def bit_exact(name: str, engine: str = "fused") -> bool:
    """Whether rnnkit.nn computes with torch.nn's own kernel, so that results must match bit for bit:
    on the fused path of every class but the GRU layer, whose CPU kernel is rnnkit's (it agrees to rounding)."""
    return engine == "fused" and name != "GRU"


def assert_same_tensors(ours, theirs, what: str, exact: bool = True) -> None:
    """Equal tensors: bit for bit (torch's kernels, see bit_exact), or to float32 rounding (rnnkit's)."""
    tolerance = {"rtol": 0.0, "atol": 0.0} if exact else {"rtol": 1e-5, "atol": 1e-6}
    ours, theirs = tensors_of(ours), tensors_of(theirs)
    assert len(ours) == len(theirs), f"{what}: {len(ours)} tensors, torch.nn gives {len(theirs)}"
    for index, (a, b) in enumerate(zip(ours, theirs)):
        assert a.shape == b.shape, f"{what}, tensor {index}: shape {tuple(a.shape)}, torch.nn {tuple(b.shape)}"
        torch.testing.assert_close(a, b, **tolerance, msg=lambda m: f"{what}, tensor {index}: {m}")

"""The choice of engine for a trained model, the same for every task.

`rnnkit sample` and `rnnkit predict` take `--engine torch` (the default) or `--engine numpy`, the
NumPy engine, which runs the same forward pass over rnnkit.reference in float64 and never imports
torch. Each task package has both engines as modules `torch.py` and `numpy.py`, and each defines
`model_function(run, checkpoint, *context)`: the checkpoint's model as the function its command calls
(the language model's step function, the classifier's probabilities, the tagger's tags). Only the
chosen module is imported.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from rnnkit.errors import UsageError
from rnnkit.tasks import Option

ENGINES = ("torch", "numpy")
ENGINE_OPTION = Option(
    ("--engine",),
    {
        "choices": ENGINES,
        "default": "torch",
        "help": "torch (default), or numpy: the NumPy engine alone, without importing torch",
    },
)


def check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise UsageError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    return engine


def model_function(task_package: str, engine: str, run, checkpoint: Path, *context):
    """The task's `model_function` of the chosen engine, for a checkpoint of the run."""
    module = importlib.import_module(f"{task_package}.{check_engine(engine)}")
    return module.model_function(run, checkpoint, *context)

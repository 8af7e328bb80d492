"""The tasks, one package each, and the registry through which the run lifecycle (rnnkit.runs) and the
command line find them. Registering a task is one line in TASK_PACKAGES; the package defines `TASK`,
which has every member of the `Task` protocol below.

A task package is built in three floors, and imports go only downwards:

    tasks/<name>/__init__.py      the task's face: TASK, its commands and their command-line options
    tasks/<name>/torch.py         the PyTorch engine: the network, its loss, what the trainer drives
    tasks/<name>/numpy.py         the NumPy engine: the same forward pass over rnnkit.reference
    tasks/<name>/config.py, data.py, metrics.py    torch-free: config sections, data, metrics

`engines.py` chooses between the two engines for every task. Task packages are imported only when a
run of theirs is opened, and an engine only when it is chosen, so a command pays only for what it uses
and the NumPy engine never imports torch.
"""

from __future__ import annotations

import importlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

from rnnkit.config import RunConfig
from rnnkit.errors import UsageError

TASK_PACKAGES = {
    "language_model": "rnnkit.tasks.language_model",
    "classifier": "rnnkit.tasks.classifier",
    "tagger": "rnnkit.tasks.tagger",
    "translation": "rnnkit.tasks.translation",
    "memory": "rnnkit.tasks.memory",
}


@dataclass(frozen=True)
class Option:
    """A command-line option that one of a task's commands takes: argparse's flags and keywords. Options
    of one task with the same `group` are mutually exclusive. Two tasks may offer the same option (same
    flags, same keywords); the command line lists it once and refuses it for a run whose task lacks it."""

    flags: tuple[str, ...]
    keywords: dict[str, Any] = field(default_factory=dict)
    group: str = ""


# Options that several tasks take.
EVAL_DATA_OPTION = Option(
    ("--data",), {"metavar": "FILE", "help": "data to evaluate on (default: the run's validation data)"}
)
TEXTS_OPTION = Option(
    ("texts",), {"nargs": "*", "metavar": "TEXT", "help": "inputs to label (default: lines of standard input)"}
)

SCORE_FILE_OPTION = Option(
    ("file",),
    {
        "nargs": "?",
        "metavar": "FILE",
        "help": "what to score: a text (language models), or sentence pairs as a TSV file or a prefix of two "
        "files (translation); - or nothing: standard input",
    },
)

# A command's handler: (the opened run, its chosen checkpoint directory, the option values by argparse
# destination, where its output goes). Errors are UsageError, never a traceback.
Command = Callable[[Any, Path, dict, TextIO], None]


class Task(Protocol):
    """A task as the registry holds it (each package's TASK)."""

    name: str  # the value of the config key `task`, e.g. "language_model"
    summary: str  # what it trains, for help text, e.g. "language model"
    config_class: type[RunConfig]  # its configuration, with the sections it owns
    data_keys: Mapping[str, str]  # the config keys --data and --val set: {"train": ..., "validation": ...}
    resumable_keys: Sequence[str]  # its own config keys that `train --resume` may change
    commands: Mapping[str, Command]  # beyond `train`: "eval", "sample", "predict", "score" -> handler
    options: Mapping[str, Sequence[Option]]  # command -> the options it adds to that command

    def upgrade_record(self, record: dict) -> dict: ...  # an older config.json layout in today's

    def prepare(self, config: RunConfig, run_path: Path | None) -> tuple[RunConfig, Any]: ...

    # Read and check the data before anything is written; run_path is None for a new run, else the
    # run's own files (vocabulary, labels) are read.

    def save(self, data: Any, directory: Path) -> None: ...  # a new run's own files

    def build_model(self, config: RunConfig, data: Any) -> Any: ...  # its network (torch.nn.Module)

    def build_training(self, config: RunConfig, data: Any, device: Any) -> Any: ...

    # What the trainer drives (rnnkit.train.trainer.Training), on the device.

    def evaluate(self, run: Any, checkpoint: Path, data_path: str | None) -> dict: ...

    # The metrics of a checkpoint on a data file (None: the run's validation data): `rnnkit eval`.


def get_task(name: str) -> Task:
    """The TASK of a registered task package."""
    if name not in TASK_PACKAGES:
        raise UsageError(f"unknown task {name!r}; known tasks: {', '.join(TASK_PACKAGES)}")
    return importlib.import_module(TASK_PACKAGES[name]).TASK


def best_metric_of(name: str) -> tuple[str, bool]:
    """(the validation metric that picks a task's best checkpoint, whether higher is better), from its
    torch-free metrics module."""
    if name not in TASK_PACKAGES:
        raise UsageError(f"unknown task {name!r}; known tasks: {', '.join(TASK_PACKAGES)}")
    metrics = importlib.import_module(f"{TASK_PACKAGES[name]}.metrics")
    return metrics.BEST_METRIC, metrics.HIGHER_IS_BETTER


def all_tasks() -> list[Task]:
    return [get_task(name) for name in TASK_PACKAGES]


EXPORT_OPTIONS = (
    Option(("--format",), {"choices": ["onnx"], "default": "onnx", "help": "the file format (default onnx)"}),
    Option(("--out",), {"metavar": "FILE", "help": "where to write it (default: RUN's name + .onnx, here)"}),
)


def export_command(run, checkpoint: Path, options: dict, out: TextIO) -> None:
    """`rnnkit export`, the same for every task (its `exported_model` says what the file computes): the
    ONNX file written and checked with onnxruntime, and one JSON line on it."""
    from rnnkit.export import CHECKED, export_onnx, graph_inputs, operators

    path = Path(options.get("out") or f"{run.path.name}.onnx")
    exported = run.task.exported_model(run, checkpoint)
    difference = export_onnx(exported, path)
    record = {
        "file": str(path),
        "format": "onnx",
        "checkpoint": checkpoint.name,
        "inputs": graph_inputs(path),
        "outputs": exported.describes,
        "operators": operators(path),
        "checked_sizes": [list(size) for size in CHECKED],
        "largest_difference": difference,
    }
    out.write(json.dumps(record) + "\n")
    out.flush()


def eval_command(run, checkpoint: Path, options: dict, out: TextIO) -> None:
    """`rnnkit eval`, the same for every task: its metrics as one JSON object."""
    write_metrics(run.task.evaluate(run, checkpoint, options.get("data")), out)


def write_metrics(metrics: dict, out: TextIO) -> None:
    """Metrics as one JSON line (a NaN or infinity is null)."""
    finite = {
        name: value if not isinstance(value, float) or math.isfinite(value) else None for name, value in metrics.items()
    }
    out.write(json.dumps(finite, allow_nan=False) + "\n")
    out.flush()

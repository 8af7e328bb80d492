"""One module per task, and the registry through which the run lifecycle (rnnkit.train.runs) and the
command line find them. Registering a task is one line here; the task module defines `TASK`:

    name            the value of the config key `task`, e.g. "language_model"
    summary         what it trains, for help text, e.g. "language model"
    config_class    its configuration: a subclass of rnnkit.config.RunConfig with the sections it owns
    commands        which commands beyond `train` apply to its runs: "eval", "sample", "predict"
    upgrade_record(record) -> record           an older config.json layout in today's
    prepare(config, run_path) -> (config, data) read and check the data before anything is written;
                                               run_path is None for a new run, else the run's files are read
    save(data, directory)                      the task's own files of a new run (vocabulary, labels, ...)
    model(config, data) -> nn.Module           its network, built on the current default device
    build(config, data, device) -> Task        what the trainer drives (rnnkit.train.trainer.Task)
    evaluate(run, checkpoint, data_path) -> dict          `rnnkit eval`
    sample(run, checkpoint, options, out) / predict(...)   the other commands it lists

Task modules are imported only when a run of theirs is opened, so a command pays only for its task.
"""
from __future__ import annotations

import importlib

from rnnkit.errors import UsageError

TASK_MODULES = {
    "language_model": "rnnkit.tasks.language_model",
    "classifier": "rnnkit.tasks.classifier",
    "tagger": "rnnkit.tasks.tagger",
}


ENGINES = ("torch", "numpy")  # what --engine chooses for sample and predict


def check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise UsageError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    return engine


def get_task(name: str):
    """The TASK of a registered task module."""
    if name not in TASK_MODULES:
        raise UsageError(f"unknown task {name!r}; known tasks: {', '.join(TASK_MODULES)}")
    return importlib.import_module(TASK_MODULES[name]).TASK


def all_tasks() -> list:
    return [get_task(name) for name in TASK_MODULES]

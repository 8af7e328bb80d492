"""The long-memory problems: can a recurrent cell carry what it saw T steps back? Its definition (TASK)
and its command, `eval`.

Two problems with a known answer, made from a seed rather than read from files (`data.py`): the adding
problem (a number to predict) and selective copying (symbols to give back). They are what
`rnnkit experiment long-memory` trains every cell on. Below this face: `config.py`, `data.py` and
`metrics.py` (no torch) and the engines `torch.py` and `numpy.py`.

    rnnkit train --set task=memory --data adding --set data.length=200 --set model.cell=mingru
"""

from __future__ import annotations

from pathlib import Path

from rnnkit.errors import UsageError
from rnnkit.tasks import eval_command
from rnnkit.tasks.memory import data
from rnnkit.tasks.memory.config import MemoryConfig


def evaluate_run(run, checkpoint: Path, data_path: str | None) -> dict:
    """`rnnkit eval`: the metrics on the run's validation set (the problem makes its own data)."""
    from rnnkit.tasks.memory.torch import metrics_of, model_function

    if data_path:
        raise UsageError("a long-memory run makes its own data; --data does not apply")
    validation = data.validation_set(run.config.data)
    return metrics_of(run.config, model_function(run, checkpoint)(validation), validation)


class MemoryTask:
    """The long-memory problems as the registry holds them (rnnkit.tasks.Task)."""

    name = "memory"
    summary = "long-memory problem"
    config_class = MemoryConfig
    data_keys = {"train": "data.problem", "validation": "data.problem"}  # --data adding | copy
    resumable_keys = ()
    commands = {"eval": eval_command}
    options = {"eval": ()}
    prepare = staticmethod(data.prepare)
    save = staticmethod(data.save)
    evaluate = staticmethod(evaluate_run)

    @staticmethod
    def upgrade_record(record: dict) -> dict:
        return record

    @staticmethod
    def build_model(config: MemoryConfig, prepared):
        from rnnkit.tasks.memory.torch import MemoryModel

        return MemoryModel(config)

    @staticmethod
    def build_training(config: MemoryConfig, prepared, device):
        from rnnkit.tasks.memory.torch import MemoryTraining

        return MemoryTraining(config, prepared, device)


TASK = MemoryTask()

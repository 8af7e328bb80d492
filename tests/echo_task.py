"""A stand-in task for the tests of the task registry: its runs have `eval` and nothing else."""

from dataclasses import dataclass

from rnnkit.config import RunConfig
from rnnkit.tasks import EVAL_DATA_OPTION, eval_command


@dataclass(frozen=True)
class EchoConfig(RunConfig):
    task: str = "echo"


class EchoTask:
    name = "echo"
    summary = "test task that answers"
    config_class = EchoConfig
    data_keys = {}
    resumable_keys = ()
    commands = {"eval": eval_command}
    options = {"eval": (EVAL_DATA_OPTION,)}

    @staticmethod
    def upgrade_record(record):
        return record

    @staticmethod
    def evaluate(run, checkpoint, data_path):
        return {"answer": 42.0, "checkpoint": checkpoint.name, "nan": float("nan")}


TASK = EchoTask()

"""metrics.jsonl: what training records for programs, one JSON object per line, and how to read it back.

Every record has `event` (its kind) and `elapsed` (seconds of training when it was written, the run's
earlier sessions included). The kinds and their fields are `EVENTS` below: the trainer writes records
only through `MetricsLog.write`, which checks each against its kind, and every reader (experiments,
benchmarks, tools, a viewer) goes through `read_metrics`. Some kinds carry fields that depend on the
task (its validation metrics, the unit it counts in); `Event.task_fields` says which.

The file is appended to while training runs, so a reader may meet a last line that is only half
written; `read_metrics` leaves it out. This module needs only the standard library.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from rnnkit.errors import UsageError

COMMON_FIELDS = {
    "event": "the kind of record (a key of EVENTS)",
    "elapsed": "seconds of training when written, the run's earlier sessions included",
}


@dataclass(frozen=True)
class Event:
    """One kind of record: what it reports, its fields, and what a task may add to it."""

    name: str
    summary: str
    fields: dict[str, str]  # field -> meaning; every record of this kind has them (besides COMMON_FIELDS)
    optional: dict[str, str] = field(default_factory=dict)  # fields that only some records have
    task_fields: str = ""  # the task's own fields that may follow, described; "" when there are none

    def check(self, record: dict) -> None:
        """ValueError unless the record has this kind's fields and no field it does not describe."""
        missing = [name for name in (*COMMON_FIELDS, *self.fields) if name not in record]
        unknown = [
            name
            for name in record
            if name not in COMMON_FIELDS and name not in self.fields and name not in self.optional
        ]
        if missing or (unknown and not self.task_fields):
            raise ValueError(f"a {self.name!r} record: missing {missing}, not described {unknown}")


RUN_OPENED = {"step": "the step training starts from", "parameters": "the model's parameter count"}
EVENTS = {
    event.name: event
    for event in (
        Event(
            "start",
            "training of a new run began",
            RUN_OPENED,
            optional={"preset": "the preset it started from (absent: the task's defaults, or an older run)"},
            task_fields="the task's start record, e.g. the classifier's pretrained_vectors",
        ),
        Event(
            "resume",
            "training of a run went on from its latest checkpoint",
            RUN_OPENED,
            optional={"preset": "as for start, when torchrun's ranks open a run the leader has just created"},
            task_fields="the task's start record, as for start",
        ),
        Event(
            "train",
            "progress since the previous train record (every train.log_every steps)",
            {
                "step": "steps done",
                "epoch": "passes over the training data done",
                "loss": "the mean training loss of those steps (null if every one was skipped)",
                "lr": "the learning rate",
                "gradient_norm": "the mean global gradient norm of those steps, before clipping (null if none)",
            },
            task_fields="<unit>_per_second: training speed in the task's count unit (tokens, sentences)",
        ),
        Event(
            "eval",
            "a validation",
            {"step": "steps done", "loss": "the validation loss the schedules watch"},
            task_fields="the task's validation metrics (its best_metric among them: nll, accuracy, ...)",
        ),
        Event(
            "lr_drop",
            "the plateau schedule lowered the learning rate",
            {"step": "steps done", "plateau_factor": "the factor now applied to optim.lr"},
        ),
        Event("averaging", "NT-ASGD switched to averaging the weights", {"step": "steps done"}),
        Event(
            "checkpoint",
            "a checkpoint was saved",
            {"step": "its step"},
            optional={"best": "true when it holds the best validation metric so far"},
        ),
        Event(
            "checkpoint_refused",
            "a checkpoint was not saved (the weights were not finite)",
            {"step": "steps done", "reason": "why"},
        ),
        Event(
            "skip",
            "a step was skipped",
            {
                "step": "its number",
                "reason": "non-finite loss or non-finite gradient",
                "loss": "its loss (null if not finite)",
                "consecutive": "skipped steps in a row",
            },
        ),
        Event(
            "rollback",
            "training went back to the last checkpoint with a lower learning rate",
            {
                "to_step": "the checkpoint's step",
                "lr_scale": "the learning rate's new scale",
                "rollbacks": "rollbacks so far",
            },
        ),
        Event(
            "end",
            "training stopped",
            {"step": "steps done", "reason": "max_steps, max_epochs, max_time, patience or interrupted"},
            task_fields="<unit>: what the whole run trained on, in the task's count unit",
        ),
    )
}


def finite_or_none(value: float) -> float | None:
    """JSON has no NaN or infinity; a non-finite number is recorded as null."""
    return value if math.isfinite(value) else None


def check_record(record: dict) -> None:
    """ValueError unless the record is one of EVENTS with that kind's fields."""
    event = EVENTS.get(record.get("event"))
    if event is None:
        raise ValueError(f"unknown metrics event {record.get('event')!r}; known: {', '.join(EVENTS)}")
    event.check(record)


class MetricsLog:
    """Appends one checked JSON record per line; each line is flushed as it is written. A failed write is
    one UsageError naming the file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.file = open(path, "a", encoding="utf-8")
        except OSError as error:
            raise UsageError(f"cannot write {path}: {error.strerror}") from None

    def write(self, record: dict) -> None:
        """Append the record; a NaN or infinite number in it (a diverged loss, an overflowing perplexity) is
        written as null, since JSON has neither."""
        check_record(record)
        record = {name: finite_or_none(value) if isinstance(value, float) else value for name, value in record.items()}
        try:
            self.file.write(json.dumps(record, allow_nan=False) + "\n")
            self.file.flush()
        except OSError as error:
            raise UsageError(f"cannot write {self.path}: {error.strerror}") from None

    def close(self) -> None:
        try:
            self.file.close()
        except OSError:
            pass  # the failed write was reported already


def read_metrics(path: Path | str, event: str | None = None) -> list[dict]:
    """The records of a metrics.jsonl (only those of one kind, if `event` is given), in order. A last
    line without its line end is being written and is left out; any other line that is not a record
    is an error naming it. A run that has logged nothing yet (no file) has no records."""
    path = Path(path)
    if event is not None and event not in EVENTS:
        raise UsageError(f"unknown metrics event {event!r}; known: {', '.join(EVENTS)}")
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror}") from None
    lines = text.split("\n")
    complete, partial = lines[:-1], lines[-1]  # the text after the last line end: "" or a line being written
    records = []
    for number, line in enumerate(complete, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if not isinstance(record, dict) or not isinstance(record.get("event"), str):
            raise UsageError(f"{path}, line {number}: not a metrics record")
        if event is None or record["event"] == event:
            records.append(record)
    return records if not partial.strip() else records + _finished(partial, event)


def _finished(line: str, event: str | None) -> list[dict]:
    """A last line with no line end: its record if it is whole (the writer may have stopped just before
    the line end), else nothing."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return []
    if isinstance(record, dict) and isinstance(record.get("event"), str) and event in (None, record["event"]):
        return [record]
    return []

"""The run lifecycle, the same for every task: a new run, a resumed run, and an existing run opened
to evaluate, sample or predict from. The command line and the experiments call these; the task is found through
the registry (rnnkit.tasks) from the config's `task` key, and training is handed to the one loop
(rnnkit.train).

A new run is checked whole before anything is written (config, paths, data, the model's size), then
assembled in a staging directory beside its final place: config.json, the task's files and the first
checkpoint. The staging directory is renamed into place, so a run directory either does not exist or
can be resumed, evaluated and sampled. Training holds the run's lock (RunLock) until it ends.

Opening a run imports no torch (the NumPy engine samples without it); training imports it.
"""

from __future__ import annotations

import os
import random
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, TypeVar

from rnnkit.atomic import fsync_directory, make_directory, make_temporary_directory
from rnnkit.config import (
    DEFAULT_PRESET,
    RunConfig,
    apply_assignments,
    config_from_dict,
    config_to_dict,
    read_config_record,
    read_preset,
    save_config,
    split_assignment,
    task_of,
    with_values,
)
from rnnkit.errors import UsageError
from rnnkit.pretrained import resolve_run_path
from rnnkit.rundir import (
    BEST,
    CONFIG,
    LATEST,
    TRAINER_STATE,
    RunDirectory,
    describe_problems,
    enclosing_run,
    fingerprints,
    new_run_path,
    path_problem,
    pin_checkpoint,
    read_trainer_state,
)
from rnnkit.tasks import Task, get_task

if TYPE_CHECKING:
    from rnnkit.train.distributed import World
    from rnnkit.train.trainer import Trainer

# What a resumed run may change: how long and where it trains and how often it reports, never the
# model or the data (the checkpoint would not fit them). A task may add its own (Task.resumable_keys).
RESUMABLE_KEYS = (
    "train.max_steps",
    "train.max_epochs",
    "train.max_time",
    "train.device",
    "train.threads",
    "train.log_every",
    "train.tensorboard",
    "train.checkpoint_steps",
    "train.eval_every",
    "train.eval_batch_size",
    "train.patience",
    "train.checkpoint_every",
    "train.keep_checkpoints",
    "train.keep_every",
)
STAGING_PREFIX = ".rnnkit-staging-"
T = TypeVar("T")
TRAINING_COPIES = 4  # weights, gradients and two optimiser moments


@dataclass(frozen=True)
class OpenedRun:
    """An existing run read for evaluation, sampling or prediction (no lock: training may go on)."""

    directory: RunDirectory
    task: Task
    config: RunConfig

    @property
    def path(self) -> Path:
        return self.directory.path


def open_run(path: str | Path) -> OpenedRun:
    """A run directory, or a shipped model by name (rnnkit.pretrained), read for its config and task."""
    directory = RunDirectory.existing(resolve_run_path(path))
    record = read_config_record(directory.config_path)
    task = get_task(task_of(record))
    config = config_from_dict(task.upgrade_record(record), task.config_class, str(directory.config_path))
    return OpenedRun(directory, task, config)


def open_run_for(command: str, path: str | Path) -> OpenedRun:
    """An existing run whose task has the command; otherwise one line saying whose command it is."""
    run = open_run(path)
    if command not in run.task.commands:
        raise UsageError(
            f"{run.path} is a {run.task.summary} run; `rnnkit {command}` does not apply to it "
            f"(it has: {', '.join(('train',) + tuple(run.task.commands))})"
        )
    return run


def new_config(preset: str | None, assignments: list[str], values: dict[str, object]) -> RunConfig:
    """The configuration of a new run: defaults, then the preset, then --set, then flag values
    ({'section.key': value}). The task is the preset's, unless --set task=NAME chooses another; with
    no preset, that task starts from its defaults (else from the default preset)."""
    chosen = [text for section, _, text in map(split_assignment, assignments) if not section]
    used = preset_used(preset, assignments)
    record, source = read_preset(used) if used else ({}, "defaults")
    task_name = chosen[-1] if chosen else task_of(record)
    task = get_task(task_name)
    config = config_from_dict({**record, "task": task_name}, task.config_class, source)
    config = apply_assignments(config, [a for a in assignments if split_assignment(a)[0]])
    return with_values(config, values)


def preset_used(preset: str | None, assignments: list[str]) -> str | None:
    """The preset a new run starts from: the one named, else the default one unless --set task=NAME
    chose a task (which then starts from its defaults: None)."""
    chosen = any(not section for section, _, _ in map(split_assignment, assignments))
    return preset or (None if chosen else DEFAULT_PRESET)


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def check_new_run_path(out: str | None) -> Path:
    """Where a new run may go: a new or empty directory, not inside another run."""
    if out == "":
        raise UsageError("--out: the path is empty; give the directory for the new run")
    path = Path(out) if out else new_run_path()
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(f"--out {path!r}: the name holds bytes that are not UTF-8; choose a name in UTF-8") from None
    try:
        outer = enclosing_run(Path(os.path.realpath(path)))
        if outer is not None:
            raise UsageError(f"{path}: is inside the run directory {outer}; choose an --out outside it")
        if path.exists() or path.is_symlink():
            if not path.is_dir():
                raise UsageError(f"{path}: exists and is not a directory")
            if (path / CONFIG).exists():
                raise UsageError(
                    f"{path}: already holds a run; continue it with --resume {path}, or choose another --out"
                )
            if any(path.iterdir()):
                raise UsageError(f"{path}: exists and is not empty; choose another --out")
    except OSError as error:
        raise UsageError(path_problem(path, error)) from None
    for ancestor in reversed([path.parent, *path.parent.parents]):
        try:
            if not stat.S_ISDIR(os.stat(ancestor).st_mode):
                raise UsageError(f"{path}: {ancestor} is not a directory")
        except FileNotFoundError:
            break  # this one and those below it will be created
        except OSError as error:
            raise UsageError(path_problem(ancestor, error)) from None
    return path


def staging_directory(path: Path) -> Path:
    """A fresh directory beside `path` (its parents created) in which to assemble the run."""
    try:
        make_directory(path.parent, exist_ok=True)
        return make_temporary_directory(path.parent, STAGING_PREFIX)
    except OSError as error:
        raise UsageError(f"cannot create the run directory: {path_problem(path, error)}") from None


def publish(staging: Path, path: Path) -> None:
    """Rename the assembled run into place (replacing nothing but an empty directory)."""
    try:
        os.rename(staging, path)
        fsync_directory(path.parent)
    except OSError as error:
        raise UsageError(f"cannot create the run directory: {path_problem(path, error)}") from None


def start_run(config: RunConfig, out: str | None, progress_stream: TextIO | None = None) -> Trainer:
    """Check everything, create the run directory with its first checkpoint, and return a trainer
    ready to run that holds the run's lock."""
    from rnnkit.device import check_model_size, resolve_device, use_threads
    from rnnkit.train.trainer import Trainer

    task = get_task(config.task)
    path = check_new_run_path(out)
    config, data = task.prepare(config, None)
    device = resolve_device(config.train.device)
    use_threads(config.train.threads)
    check_model_size(lambda: task.build_model(config, data), TRAINING_COPIES)
    seed_everything(config.train.seed)
    training = task.build_training(config, data, device)
    staging = staging_directory(path)
    lock = None
    try:
        lock = RunDirectory(staging).lock()
        save_config(config, staging / CONFIG)
        task.save(data, staging)
        trainer = Trainer(training, config, RunDirectory(staging), progress_stream)
        trainer.save_checkpoint()  # the first rollback target, and what --resume starts from
        publish(staging, path)
    except BaseException:
        if lock is not None:
            lock.release()
        shutil.rmtree(staging, ignore_errors=True)
        raise
    trainer.run_directory, trainer.lock = RunDirectory(path), lock
    return trainer


def resumable_keys(task: Task) -> tuple[str, ...]:
    return RESUMABLE_KEYS + tuple(task.resumable_keys)


def check_checkpoint_matches(run: OpenedRun, config: RunConfig, checkpoint: Path) -> None:
    """config.json and the task's files (vocabulary, labels, tags, ...) may have been edited since the
    checkpoint was written: every config key the checkpoint depends on must still have the value it was
    trained with, and every file the fingerprint it had. A checkpoint that keeps no trainer state (a
    shipped model's) or no fingerprints (written by an older version) is checked as far as it can be."""
    if not (checkpoint / TRAINER_STATE).exists() and checkpoint.is_dir():
        return
    state = read_trainer_state(checkpoint)
    saved_record = run.task.upgrade_record(state["config"])
    try:
        saved = config_to_dict(config_from_dict(saved_record, run.task.config_class))
    except UsageError as error:
        raise UsageError(f"{checkpoint}: its config is not valid ({error})") from None
    current, resumable = config_to_dict(config), resumable_keys(run.task)
    changed = [
        f"{section}.{key} ({saved[section][key]!r} -> {value!r})"
        for section, values in current.items()
        if isinstance(values, dict)
        for key, value in values.items()
        if f"{section}.{key}" not in resumable and saved.get(section, {}).get(key) != value
    ]
    if changed:
        raise UsageError(
            f"{run.directory.config_path} was changed after {checkpoint.name} was saved: "
            f"{describe_problems(changed)}; restore it, or start a new run"
        )
    if "files" in state:
        files = fingerprints(run.path)
        # the files the checkpoint names (a file added to the run directory later is not the model's)
        edited = sorted(name for name in state["files"] if files.get(name) != state["files"][name])
        if edited:
            raise UsageError(
                f"{run.path}: {describe_problems(edited)} changed after {checkpoint.name} was saved (they give the "
                "model's ids their meaning); restore them, or start a new run"
            )


READ_ATTEMPTS = 5  # resolutions of `latest` or `best` tried while a training process prunes what they named


def read_checkpoint(run: OpenedRun, which: str | None, read: Callable[[Path], T]) -> T:
    """read(the checkpoint directory that `which` names: latest, best, a kept step-N, or None for best else
    latest), once it is checked to match the run's config and files. A run may be training meanwhile:
    when the checkpoint that `latest` or `best` named is pruned while it is read, the pointer is
    resolved again, so a reader always ends with a complete checkpoint."""
    for attempt in range(READ_ATTEMPTS):
        checkpoint = run.directory.checkpoint(which)
        try:
            with pin_checkpoint(checkpoint):
                check_checkpoint_matches(run, run.config, checkpoint)
                return read(checkpoint)
        except UsageError:
            if which not in (None, LATEST, BEST) or attempt == READ_ATTEMPTS - 1 or not moved(run, which, checkpoint):
                raise
    raise AssertionError("unreachable")


def moved(run: OpenedRun, which: str | None, checkpoint: Path) -> bool:
    """Whether the pointer names another checkpoint now (the one read was replaced, and may be half pruned)."""
    try:
        return run.directory.checkpoint(which) != checkpoint
    except UsageError:
        return False


def resume_run(
    path: str | Path, overrides: dict[str, object], progress_stream: TextIO | None = None, world: World | None = None
) -> Trainer:
    """A trainer that continues the run from its latest checkpoint (or starts it from step 0 with
    its saved config, if it has none), optionally with new limits; it holds the run's lock. With
    several ranks (torchrun) every rank calls it: the leader holds the lock and writes, and the ranks
    go on only if every one of them could open the run."""
    from rnnkit.device import check_model_size, resolve_device, use_threads
    from rnnkit.train.distributed import ALONE, go_on_together
    from rnnkit.train.trainer import Trainer

    world = world or ALONE

    if resolve_run_path(path) != Path(path):
        raise UsageError(
            f"{path}: no such run directory ({path} names a model shipped with rnnkit, which is read, "
            "never trained further)"
        )
    lock, ready = None, False
    try:
        run = open_run(path)
        lock = run.directory.lock() if world.leader else None
        resumable = resumable_keys(run.task)
        refused = [key for key in overrides if key not in resumable]
        if refused:
            raise UsageError(
                f"cannot change {', '.join(refused)} when resuming; a resumed run may change only "
                f"{', '.join(resumable)}"
            )
        config = with_values(run.config, overrides)
        checkpoint = run.directory.pointed_checkpoint(LATEST)
        if checkpoint is not None:
            check_checkpoint_matches(run, config, checkpoint)
        config, data = run.task.prepare(config, run.path)
        device = resolve_device(config.train.device)
        use_threads(config.train.threads)
        check_model_size(lambda: run.task.build_model(config, data), TRAINING_COPIES)
        if checkpoint is None:
            seed_everything(config.train.seed)
        trainer = Trainer(run.task.build_training(config, data, device), config, run.directory, progress_stream)
        ready = True
        go_on_together(world)
        trainer.join_world(world)
        if checkpoint is None:
            trainer.save_checkpoint()
        else:
            trainer.resume()
        if world.leader:
            save_config(config, run.directory.config_path)
    except BaseException as error:
        if lock is not None:
            lock.release()
        if not ready:
            go_on_together(world, error)
        raise
    trainer.lock = lock
    return trainer


def start_parallel_run(
    config: RunConfig, out: str | None, world: World, progress_stream: TextIO | None = None
) -> Trainer:
    """torchrun's ranks start one new run: the leader creates it as one process would (its directory,
    files and first checkpoint), then every rank opens it at that checkpoint and joins the others."""
    from rnnkit.device import resolve_device
    from rnnkit.train.distributed import Agreement, LeaderFailed

    agreement = Agreement(world, resolve_device(config.train.device))
    path, problem = None, None
    if world.leader:
        try:
            trainer = start_run(config, out, progress_stream)
            path = str(trainer.run_directory.path)
        except BaseException as error:
            agreement.broadcast((None, str(error)))
            raise
        trainer.lock.release()  # taken again at once by the leader's resume_run below
    path, problem = agreement.broadcast((path, problem))
    if path is None:
        raise LeaderFailed(problem)
    return resume_run(path, {}, progress_stream, world)
